#!/usr/bin/python3
"""TUN IPv4: a SYN (TOS, TTL, options) and a padded 60-byte SYN, IP-in-IP to the one backend."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

syn = from_router(IP(src=CLIENT4, dst=VIP4, ttl=57, tos=0x28, id=4242) /
                  TCP(sport=40000, dport=80, flags="S", seq=1000, options=[("MSS", 1460)]))
# 54 bytes of headers padded to the 60-byte Ethernet minimum: the padding is not encapsulated.
padded = from_router(IP(src=CLIENT4, dst=VIP4, id=7) / TCP(sport=40001, dport=80, flags="S") /
                     Padding(b"\x00" * 6))
assert len(bytes(padded)) == 60
write_case(send=[syn, padded],
           expect=[tunnel(syn, backend4(1), backend_mac(1)),
                   tunnel(padded, backend4(1), backend_mac(1))])
