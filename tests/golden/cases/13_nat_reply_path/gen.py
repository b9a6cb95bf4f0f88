#!/usr/bin/python3
"""Full NAT reply path: the backend's SYN-ACK to NAT4:20000 goes back as VIP -> client."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

syn = from_router(IP(src=CLIENT4, dst=VIP4, id=31) /
                  TCP(sport=40000, dport=80, flags="S", seq=1000))
synack = from_backend(1, IP(src=backend4(1), dst=NAT4, ttl=64, id=77) /
                      TCP(sport=8080, dport=NAT_PORT_MIN, flags="SA", seq=5000, ack=1001,
                          options=[("MSS", 1400)]))
ack = from_router(IP(src=CLIENT4, dst=VIP4, id=32) /
                  TCP(sport=40000, dport=80, flags="A", seq=1001, ack=5001))
data = from_backend(1, IP(src=backend4(1), dst=NAT4, ttl=64, id=78) /
                    TCP(sport=8080, dport=NAT_PORT_MIN, flags="PA", seq=5001, ack=1001) /
                    Raw(b"HTTP/1.1 200 OK\r\n\r\n"))
write_case(send=[syn, synack, ack, data],
           expect=[nat(syn, NAT4, NAT_PORT_MIN, backend4(1), 8080, backend_mac(1)),
                   nat(synack, VIP4, 80, CLIENT4, 40000, GATEWAY_MAC),
                   nat(ack, NAT4, NAT_PORT_MIN, backend4(1), 8080, backend_mac(1)),
                   nat(data, VIP4, 80, CLIENT4, 40000, GATEWAY_MAC)])
