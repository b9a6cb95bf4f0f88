#!/usr/bin/python3
"""ICMP fragmentation-needed about a VIP flow follows the flow to its backend (TUN)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

syn = from_router(IP(src=CLIENT4, dst=VIP4, id=1) / TCP(sport=40000, dport=80, flags="S"))
# A router on the way back to the client cannot forward the backend's 1500-byte reply (sent
# from the VIP): it tells the VIP. The quoted packet is VIP:80 -> client:40000.
frag_needed = from_router(
    IP(src="192.0.2.1", dst=VIP4, ttl=250, id=0xBEEF) /
    ICMP(type=3, code=4, nexthopmtu=1400) /
    IP(src=VIP4, dst=CLIENT4, ttl=63, id=555, flags="DF", len=1500) /
    TCP(sport=80, dport=40000, flags="A", seq=5001, ack=1001, chksum=0x1234))
# The same about a flow this node has no entry for: Maglev picks (the one backend).
frag_needed2 = from_router(
    IP(src="192.0.2.1", dst=VIP4, ttl=250, id=0xBEF0) /
    ICMP(type=3, code=4, nexthopmtu=1400) /
    IP(src=VIP4, dst=CLIENT4, ttl=63, id=556, flags="DF", len=1500) /
    TCP(sport=80, dport=40077, flags="A", chksum=0x1234))
write_case(send=[syn, frag_needed, frag_needed2],
           expect=[tunnel(p, backend4(1), backend_mac(1))
                   for p in (syn, frag_needed, frag_needed2)])
