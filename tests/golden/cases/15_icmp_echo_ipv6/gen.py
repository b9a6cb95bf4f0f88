#!/usr/bin/python3
"""ICMPv6 echo requests to an IPv6 VIP are answered by the node."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

req = from_router(IPv6(src=CLIENT6, dst=VIP6, hlim=33, tc=0x10, fl=0x12345) /
                  ICMPv6EchoRequest(id=0x4242, seq=7, data=b"ping6-payload-0123456789"))
write_case(send=[req], expect=[echo_reply(req)])
