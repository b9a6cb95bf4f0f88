#!/usr/bin/python3
"""GUE across families to a custom GUE port: IPv4 in UDP over IPv6 to port 7777."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

send = [from_router(IP(src=CLIENT4, dst=VIP4, tos=0x48, id=i) /
                    TCP(sport=40800 + i, dport=80, flags="S") / Raw(b"g" * i))
        for i in range(3)]
write_case(send=send,
           expect=[tunnel(p, backend6(2), backend_mac(2), gue=True, gue_port=7777) for p in send])
