#!/usr/bin/python3
"""Full NAT IPv6 round trip: the backend's reply to [NAT6]:20000 returns as [VIP]:443 -> client."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

syn = from_router(IPv6(src=CLIENT6, dst=VIP6, hlim=64) /
                  TCP(sport=50002, dport=443, flags="S", seq=1))
synack = from_backend(1, IPv6(src=backend6(1), dst=NAT6, hlim=64, fl=0x9999) /
                      TCP(sport=8443, dport=NAT_PORT_MIN, flags="SA", seq=100, ack=2))
write_case(send=[syn, synack],
           expect=[nat(syn, NAT6, NAT_PORT_MIN, backend6(1), 8443, backend_mac(1)),
                   nat(synack, VIP6, 443, CLIENT6, 50002, GATEWAY_MAC)])
