#!/usr/bin/python3
"""ICMPv6 packet-too-big about a VIP flow follows the flow to its backend (TUN)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

syn = from_router(IPv6(src=CLIENT6, dst=VIP6, fl=0x777) / TCP(sport=50000, dport=443, flags="S"))
ptb = from_router(
    IPv6(src="2001:db8:ffff::1", dst=VIP6, hlim=250) /
    ICMPv6PacketTooBig(mtu=1280) /
    IPv6(src=VIP6, dst=CLIENT6, hlim=63, plen=1440) /
    TCP(sport=443, dport=50000, flags="A", seq=1, ack=1, chksum=0x4321) / Raw(b"r" * 40))
write_case(send=[syn, ptb],
           expect=[tunnel(syn, backend6(1), backend_mac(1)),
                   tunnel(ptb, backend6(1), backend_mac(1))])
