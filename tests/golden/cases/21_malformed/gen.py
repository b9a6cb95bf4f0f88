#!/usr/bin/python3
"""Malformed frames are dropped and counted, whatever their destination."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

def eth(ethertype):
    return Ether(dst=NODE_MAC, src=ROUTER_MAC, type=ethertype)


tcp4 = IP(src=CLIENT4, dst=VIP4) / TCP(sport=40000, dport=80, flags="S")
send = [
    # truncated_ethernet: shorter than an Ethernet header.
    bytes(eth(0x0800))[:10],
    # truncated_vlan: an 802.1Q ethertype with half a tag.
    eth(0x8100) / Raw(b"\x00\x64"),
    # too_many_vlan_tags: three tags.
    from_router(tcp4, vlans=[(0x88A8, 1, 0), (0x8100, 2, 0), (0x8100, 3, 0)]),
    # truncated_ipv4: 12 bytes of an IPv4 header.
    eth(0x0800) / Raw(bytes(tcp4)[:12]),
    # bad_ipv4_version: version 5 under the IPv4 ethertype.
    eth(0x0800) / Raw(b"\x55" + bytes(tcp4)[1:]),
    # bad_ipv4_ihl: IHL 4 (16 bytes).
    from_router(IP(src=CLIENT4, dst=VIP4, ihl=4) / TCP(sport=40000, dport=80)),
    # bad_ipv4_total_length: total length 1000 in a 54-byte frame.
    from_router(IP(src=CLIENT4, dst=VIP4, len=1000) / TCP(sport=40000, dport=80)),
    # truncated_tcp: 10 bytes of TCP header.
    from_router(IP(src=CLIENT4, dst=VIP4, proto=6) / Raw(bytes(TCP(sport=40000, dport=80))[:10])),
    # bad_tcp_data_offset: data offset 3 words.
    from_router(IP(src=CLIENT4, dst=VIP4) / TCP(sport=40000, dport=80, dataofs=3)),
    # bad_udp_length: UDP length 4.
    from_router(IP(src=CLIENT4, dst=VIP4) / UDP(sport=40000, dport=80, len=4) / Raw(b"abcd")),
    # truncated_ipv6: 20 bytes of an IPv6 header.
    eth(0x86DD) / Raw(bytes(IPv6(src=CLIENT6, dst=VIP6))[:20]),
    # bad_ipv6_payload_length: payload length 1000 in a short frame.
    from_router(IPv6(src=CLIENT6, dst=VIP6, plen=1000) / TCP(sport=40000, dport=443)),
    # bad_icmp_inner: an ICMP error whose quoted packet is not IPv4.
    from_router(IP(src="192.0.2.1", dst=VIP4) / ICMP(type=3, code=1) / Raw(bytes(28))),
    # truncated_icmp_inner: an ICMP error quoting 10 bytes of an IPv4 header.
    from_router(IP(src="192.0.2.1", dst=VIP4) / ICMP(type=3, code=1) /
                Raw(bytes(IP(src=VIP4, dst=CLIENT4))[:10])),
]
write_case(send=send, expect=[])
