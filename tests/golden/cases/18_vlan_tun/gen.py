#!/usr/bin/python3
"""VLAN-tagged input: the tags are kept on the encapsulated output (TUN)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

tagged = from_router(IP(src=CLIENT4, dst=VIP4, id=3) / TCP(sport=40100, dport=80, flags="S"),
                     vlans=[(0x8100, 100, 3)])
qinq = from_router(IP(src=CLIENT4, dst=VIP4, id=4) / TCP(sport=40101, dport=80, flags="S"),
                   vlans=[(0x88A8, 10, 5), (0x8100, 200, 0)])
tagged6 = from_router(IPv6(src=CLIENT6, dst=VIP6) / TCP(sport=40102, dport=443, flags="S"),
                      vlans=[(0x8100, 100, 3)])
write_case(send=[tagged, qinq, tagged6],
           expect=[tunnel(tagged, backend4(1), backend_mac(1)),
                   tunnel(qinq, backend4(1), backend_mac(1)),
                   tunnel(tagged6, backend6(1), backend_mac(1))])
