#!/usr/bin/python3
"""ICMP echo requests to an IPv4 VIP are answered by the node."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

send = [from_router(IP(src=CLIENT4, dst=VIP4, ttl=50, id=600 + i) /
                    ICMP(type=8, id=0x1234, seq=i) / Raw(bytes(range(32))))
        for i in (1, 2)]
write_case(send=send, expect=[echo_reply(p) for p in send])
