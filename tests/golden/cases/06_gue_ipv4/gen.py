#!/usr/bin/python3
"""GUE over IPv4: IPv4 in UDP to port 6080, UDP checksum 0, source port masked."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

send, expect = [], []
for sport in (43000, 43001, 43002):
    syn = from_router(IP(src=CLIENT4, dst=VIP4, tos=0x04, id=sport) /
                      TCP(sport=sport, dport=80, flags="S", seq=sport))
    send.append(syn)
    expect.append(tunnel(syn, backend4(1), backend_mac(1), gue=True))
ack = from_router(IP(src=CLIENT4, dst=VIP4, id=1) / TCP(sport=43000, dport=80, flags="A") /
                  Raw(b"data"))
send.append(ack)
expect.append(tunnel(ack, backend4(1), backend_mac(1), gue=True))
write_case(send=send, expect=expect)
