#!/usr/bin/python3
"""Full NAT IPv6 TCP: NAT6:20000 -> backend:8443, hop limit - 1."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

syn = from_router(IPv6(src=CLIENT6, dst=VIP6, hlim=64, tc=0x28, fl=0x2468) /
                  TCP(sport=50001, dport=443, flags="S", seq=1234))
data = from_router(IPv6(src=CLIENT6, dst=VIP6, hlim=64, tc=0x28, fl=0x2468) /
                   TCP(sport=50001, dport=443, flags="PA", seq=1235, ack=1) / Raw(b"t" * 77))
write_case(send=[syn, data],
           expect=[nat(syn, NAT6, NAT_PORT_MIN, backend6(1), 8443, backend_mac(1)),
                   nat(data, NAT6, NAT_PORT_MIN, backend6(1), 8443, backend_mac(1))])
