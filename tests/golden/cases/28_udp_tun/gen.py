#!/usr/bin/python3
"""UDP over TUN: datagrams with and without checksum, encapsulated unchanged."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

send = [
    from_router(IP(src=CLIENT4, dst=VIP4, id=1) / UDP(sport=53000, dport=53) / Raw(b"\x01" * 40)),
    from_router(IP(src=CLIENT4, dst=VIP4, id=2) / UDP(sport=53001, dport=53, chksum=0) /
                Raw(b"\x02" * 40)),
    from_router(IP(src=CLIENT4, dst=VIP4, id=3, tos=0xB8) / UDP(sport=53002, dport=53) /
                Raw(bytes(range(256)) * 4)),
]
write_case(send=send, expect=[tunnel(p, backend4(1), backend_mac(1)) for p in send])
