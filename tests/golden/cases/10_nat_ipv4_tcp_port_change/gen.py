#!/usr/bin/python3
"""Full NAT IPv4 TCP, backend port 8080: source NAT4:20000+, TTL - 1."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

syn = from_router(IP(src=CLIENT4, dst=VIP4, ttl=64, id=11) /
                  TCP(sport=40000, dport=80, flags="S", seq=100, options=[("MSS", 1460)]))
ack = from_router(IP(src=CLIENT4, dst=VIP4, ttl=64, id=12) /
                  TCP(sport=40000, dport=80, flags="PA", seq=101, ack=501) / Raw(b"hello"))
syn2 = from_router(IP(src=CLIENT4, dst=VIP4, ttl=100, id=13) /
                   TCP(sport=40001, dport=80, flags="S", seq=900))
write_case(send=[syn, ack, syn2],
           expect=[nat(syn, NAT4, NAT_PORT_MIN, backend4(1), 8080, backend_mac(1)),
                   nat(ack, NAT4, NAT_PORT_MIN, backend4(1), 8080, backend_mac(1)),
                   nat(syn2, NAT4, NAT_PORT_MIN + 1, backend4(1), 8080, backend_mac(1))])
