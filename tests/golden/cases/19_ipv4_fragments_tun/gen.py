#!/usr/bin/python3
"""IPv4 fragments of one datagram all reach the same backend (TUN)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

dgram = IP(src=CLIENT4, dst=VIP4, id=0x4321) / UDP(sport=47000, dport=5000) / Raw(bytes(1200))
frags = [from_router(f) for f in fragment(dgram, fragsize=800)]
assert len(frags) == 2
write_case(send=frags, expect=[tunnel(f, backend4(1), backend_mac(1)) for f in frags])
