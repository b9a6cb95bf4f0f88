#!/usr/bin/python3
"""An all-ports VIP (port 0) takes every TCP port; a VIP on a specific port wins."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

send, expect = [], []
for dport in (80, 8080, 1, 65535):
    p = from_router(IP(src=CLIENT4, dst=VIP4) / TCP(sport=40300, dport=dport, flags="S"))
    send.append(p)
    expect.append(tunnel(p, backend4(1), backend_mac(1)))
p443 = from_router(IP(src=CLIENT4, dst=VIP4) / TCP(sport=40300, dport=443, flags="S"))
send.append(p443)
expect.append(tunnel(p443, backend4(2), backend_mac(2)))
# The all-ports VIP is TCP only.
send.append(from_router(IP(src=CLIENT4, dst=VIP4) / UDP(sport=40300, dport=53) / Raw(b"q")))
write_case(send=send, expect=expect)
