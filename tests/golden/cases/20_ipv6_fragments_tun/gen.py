#!/usr/bin/python3
"""IPv6 fragments of one datagram all reach the same backend (TUN)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

dgram = (IPv6(src=CLIENT6, dst=VIP6) / IPv6ExtHdrFragment(id=0x1234) /
         UDP(sport=47001, dport=5000) / Raw(bytes(1200)))
frags = [from_router(f) for f in fragment6(dgram, 700)]
assert len(frags) == 2
write_case(send=frags, expect=[tunnel(f, backend6(1), backend_mac(1)) for f in frags])
