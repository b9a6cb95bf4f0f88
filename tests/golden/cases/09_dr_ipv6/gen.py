#!/usr/bin/python3
"""DR IPv6: only the MACs change."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

p = from_router(IPv6(src=CLIENT6, dst=VIP6, tc=0x10, fl=0x12345, hlim=20) /
                UDP(sport=46000, dport=53) / Raw(b"\x12\x34" + b"q" * 30))
write_case(send=[p], expect=[dr(p, backend_mac(3))])
