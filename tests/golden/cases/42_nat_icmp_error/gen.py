#!/usr/bin/python3
"""ICMP errors about a full-NAT VIP's flows are dropped (nat_icmp_error)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

syn = from_router(IP(src=CLIENT4, dst=VIP4) / TCP(sport=44000, dport=80, flags="S"))
frag_needed = from_router(
    IP(src="192.0.2.1", dst=VIP4) / ICMP(type=3, code=4, nexthopmtu=1400) /
    IP(src=VIP4, dst=CLIENT4, len=1500) / TCP(sport=80, dport=44000, flags="A"))
write_case(send=[syn, frag_needed],
           expect=[nat(syn, NAT4, NAT_PORT_MIN, backend4(1), 80, backend_mac(1))])
