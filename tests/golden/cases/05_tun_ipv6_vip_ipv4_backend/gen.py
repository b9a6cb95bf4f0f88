#!/usr/bin/python3
"""TUN across families: IPv6 VIP, IPv4 backend (IPv6-in-IPv4)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

syn = from_router(IPv6(src=CLIENT6, dst=VIP6, tc=0x2A, fl=0x54321, hlim=60) /
                  TCP(sport=42001, dport=443, flags="S", seq=43))
write_case(send=[syn], expect=[tunnel(syn, backend4(2), backend_mac(2))])
