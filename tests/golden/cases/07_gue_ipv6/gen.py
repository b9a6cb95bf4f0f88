#!/usr/bin/python3
"""GUE over IPv6: IPv6 in UDP; checksum, source port and flow label masked and verified."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

send, expect = [], []
for sport in (44000, 44001):
    p = from_router(IPv6(src=CLIENT6, dst=VIP6, tc=0x20, fl=0x11111, hlim=55) /
                    TCP(sport=sport, dport=443, flags="S", seq=7) / Raw(b"y" * 21))
    send.append(p)
    expect.append(tunnel(p, backend6(1), backend_mac(1), gue=True))
write_case(send=send, expect=expect)
