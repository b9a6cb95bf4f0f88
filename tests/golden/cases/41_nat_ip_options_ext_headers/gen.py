#!/usr/bin/python3
"""Full NAT with IPv4 options and an IPv6 extension header before TCP."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

from scapy.all import IPOption_RR, IPv6ExtHdrDestOpt  # noqa: E402

opt4 = from_router(IP(src=CLIENT4, dst=VIP4, options=[IPOption_RR(routers=["192.0.2.9"])]) /
                   TCP(sport=43000, dport=80, flags="S") / Raw(b"o4"))
ext6 = from_router(IPv6(src=CLIENT6, dst=VIP6) / IPv6ExtHdrDestOpt() /
                   TCP(sport=43001, dport=443, flags="S") / Raw(b"e6"))
write_case(send=[opt4, ext6],
           expect=[nat(opt4, NAT4, NAT_PORT_MIN, backend4(1), 80, backend_mac(1)),
                   nat(ext6, NAT6, NAT_PORT_MIN + 1, backend6(1), 443, backend_mac(1))])
