#!/usr/bin/python3
"""Full NAT routes: a packet whose TTL would reach 0 is dropped (ttl_exceeded)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

syn_ttl1 = from_router(IP(src=CLIENT4, dst=VIP4, ttl=1, id=1) /
                       TCP(sport=40400, dport=80, flags="S", seq=10))
syn_ttl2 = from_router(IP(src=CLIENT4, dst=VIP4, ttl=2, id=2) /
                       TCP(sport=40400, dport=80, flags="S", seq=10))
reply_ttl1 = from_backend(1, IP(src=backend4(1), dst=NAT4, ttl=1) /
                          TCP(sport=80, dport=NAT_PORT_MIN, flags="SA", seq=70, ack=11))
reply = from_backend(1, IP(src=backend4(1), dst=NAT4, ttl=64) /
                     TCP(sport=80, dport=NAT_PORT_MIN, flags="SA", seq=70, ack=11))
write_case(send=[syn_ttl1, syn_ttl2, reply_ttl1, reply],
           expect=[nat(syn_ttl2, NAT4, NAT_PORT_MIN, backend4(1), 80, backend_mac(1)),
                   nat(reply, VIP4, 80, CLIENT4, 40400, GATEWAY_MAC)])
