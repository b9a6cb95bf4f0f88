#!/usr/bin/python3
"""Packets to a NAT address and port in the NAT range that no session owns are dropped."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

send = [
    from_backend(1, IP(src=backend4(1), dst=NAT4) / TCP(sport=80, dport=NAT_PORT_MIN, flags="SA")),
    from_backend(1, IP(src=backend4(1), dst=NAT4) / TCP(sport=80, dport=29999, flags="A")),
    from_backend(1, IPv6(src=backend6(1), dst=NAT6) / UDP(sport=53, dport=25000) / Raw(b"x")),
]
write_case(send=send, expect=[])
