#!/usr/bin/python3
"""Traffic that is not for a VIP goes to the exception path unchanged."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

send = [
    Ether(dst="ff:ff:ff:ff:ff:ff", src=ROUTER_MAC) /
    ARP(op=1, hwsrc=ROUTER_MAC, psrc="192.0.2.1", pdst=TUN_SRC4),
    Ether(dst="01:00:5e:00:00:05", src=ROUTER_MAC) /
    IP(src="192.0.2.1", dst="224.0.0.5", proto=89, ttl=1, tos=0xC0) / Raw(bytes(range(44))),
    from_router(IP(src=CLIENT4, dst=TUN_SRC4) / TCP(sport=50505, dport=22, flags="S")),
    from_router(IP(src=CLIENT4, dst=TUN_SRC4) / ICMP(type=8, id=1, seq=1) / Raw(b"node")),
    Ether(dst="33:33:ff:00:01:00", src=ROUTER_MAC) /
    IPv6(src="fe80::1", dst="ff02::1:ff00:100", hlim=255) / ICMPv6ND_NS(tgt=TUN_SRC6),
    Ether(dst="01:80:c2:00:00:0e", src=ROUTER_MAC, type=0x88CC) / Raw(bytes(range(30))),
    # The NAT address, but outside node.nat_port_min..max: the node's own.
    from_router(IP(src=CLIENT4, dst=NAT4) / TCP(sport=50506, dport=22, flags="S")),
    from_router(IP(src=CLIENT4, dst=NAT4) / TCP(sport=50507, dport=19999, flags="S")),
    from_router(IP(src=CLIENT4, dst=NAT4) / UDP(sport=50508, dport=30000) / Raw(b"u")),
    # A later fragment to the NAT address carries no ports: not a NAT reply.
    from_router(IP(src=backend4(1), dst=NAT4, proto=6, frag=100, id=9) / Raw(bytes(16))),
    # An address next to the VIP.
    from_router(IP(src=CLIENT4, dst=VIP4_B) / UDP(sport=50509, dport=80) / Raw(b"v")),
]
write_case(send=send, expect=[], expect_kernel=send)
