#!/usr/bin/python3
"""Packets to a VIP address on a port/protocol no VIP serves are dropped (no_service)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

ok = from_router(IP(src=CLIENT4, dst=VIP4) / TCP(sport=40200, dport=80, flags="S"))
send = [
    from_router(IP(src=CLIENT4, dst=VIP4) / TCP(sport=40201, dport=81, flags="S")),
    from_router(IP(src=CLIENT4, dst=VIP4) / UDP(sport=40202, dport=80) / Raw(b"udp")),
    ok,
    from_router(IPv6(src=CLIENT6, dst=VIP6) / TCP(sport=40203, dport=80, flags="S")),
    # A later UDP fragment: the address has no UDP VIP at all.
    from_router(IP(src=CLIENT4, dst=VIP4, proto=17, frag=64, id=5) / Raw(bytes(24))),
]
write_case(send=send, expect=[tunnel(ok, backend4(1), backend_mac(1))])
