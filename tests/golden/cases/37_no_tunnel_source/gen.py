#!/usr/bin/python3
"""TUN to an IPv6 backend without node.tunnel_source_ipv6 is dropped."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

v6_backend = from_router(IP(src=CLIENT4, dst=VIP4) / TCP(sport=40900, dport=80, flags="S"))
v4_backend = from_router(IP(src=CLIENT4, dst=VIP4) / TCP(sport=40901, dport=443, flags="S"))
write_case(send=[v6_backend, v4_backend],
           expect=[tunnel(v4_backend, backend4(1), backend_mac(1))])
