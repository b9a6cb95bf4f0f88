#!/usr/bin/python3
"""TUN across families: IPv4 VIP, IPv6 backend (IPv4-in-IPv6)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

syn = from_router(IP(src=CLIENT4, dst=VIP4, tos=0x10, ttl=61, id=9) /
                  TCP(sport=42000, dport=80, flags="S", seq=42))
write_case(send=[syn], expect=[tunnel(syn, backend6(2), backend_mac(2))])
