#!/usr/bin/python3
"""TUN IPv6: IPv6-in-IPv6 to an IPv6 backend; traffic class copied, outer flow label masked."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

syn = from_router(IPv6(src=CLIENT6, dst=VIP6, tc=0xB8, fl=0xABCDE, hlim=50) /
                  TCP(sport=50000, dport=443, flags="S", seq=1, options=[("MSS", 1440)]))
ack = from_router(IPv6(src=CLIENT6, dst=VIP6, tc=0xB8, fl=0xABCDE, hlim=50) /
                  TCP(sport=50000, dport=443, flags="A", seq=2, ack=77) / Raw(b"x" * 100))
write_case(send=[syn, ack],
           expect=[tunnel(syn, backend6(1), backend_mac(1)),
                   tunnel(ack, backend6(1), backend_mac(1))])
