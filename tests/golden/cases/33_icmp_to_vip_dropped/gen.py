#!/usr/bin/python3
"""ICMP to a VIP that is neither an echo request nor an error is dropped."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

ok = from_router(IP(src=CLIENT4, dst=VIP4) / ICMP(type=8, code=0, id=5, seq=5))
send = [
    # Timestamps set: scapy's default is the current time.
    from_router(IP(src=CLIENT4, dst=VIP4) /
                ICMP(type=13, id=1, seq=1, ts_ori=1000, ts_rx=0, ts_tx=0)),
    from_router(IP(src=CLIENT4, dst=VIP4) / ICMP(type=8, code=1, id=2, seq=2)),
    from_router(IPv6(src=CLIENT6, dst=VIP6) / ICMPv6EchoReply(id=3, seq=3)),
    ok,
]
write_case(send=send, expect=[echo_reply(ok)])
