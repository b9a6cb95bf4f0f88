#!/usr/bin/python3
"""A full-NAT session answers only to its backend's address and port."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

syn = from_router(IP(src=CLIENT4, dst=VIP4) / TCP(sport=42000, dport=80, flags="S"))
other_backend = from_backend(2, IP(src=backend4(2), dst=NAT4) /
                             TCP(sport=8080, dport=NAT_PORT_MIN, flags="SA"))
other_port = from_backend(1, IP(src=backend4(1), dst=NAT4) /
                          TCP(sport=9999, dport=NAT_PORT_MIN, flags="SA"))
udp = from_backend(1, IP(src=backend4(1), dst=NAT4) /
                   UDP(sport=8080, dport=NAT_PORT_MIN) / Raw(b"u"))
good = from_backend(1, IP(src=backend4(1), dst=NAT4) /
                    TCP(sport=8080, dport=NAT_PORT_MIN, flags="SA"))
write_case(send=[syn, other_backend, other_port, udp, good],
           expect=[nat(syn, NAT4, NAT_PORT_MIN, backend4(1), 8080, backend_mac(1)),
                   nat(good, VIP4, 80, CLIENT4, 42000, GATEWAY_MAC)])
