#!/usr/bin/python3
"""VLAN tags are kept by full NAT, DR and echo replies too."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

TAG = [(0x8100, 42, 1)]
nat_syn = from_router(IP(src=CLIENT4, dst=VIP4, id=1) / TCP(sport=45000, dport=80, flags="S"),
                      vlans=TAG)
dr_syn = from_router(IP(src=CLIENT4, dst=VIP4, id=2) / TCP(sport=45001, dport=443, flags="S"),
                     vlans=TAG)
echo = from_router(IP(src=CLIENT4, dst=VIP4, id=3) / ICMP(type=8, id=9, seq=9) / Raw(b"ping"),
                   vlans=TAG)
echo6 = from_router(IPv6(src=CLIENT6, dst=VIP6) / ICMPv6EchoRequest(id=9, seq=9, data=b"ping6"),
                    vlans=TAG)
write_case(send=[nat_syn, dr_syn, echo, echo6],
           expect=[nat(nat_syn, NAT4, NAT_PORT_MIN, backend4(1), 8080, backend_mac(1)),
                   dr(dr_syn, backend_mac(2)), echo_reply(echo), echo_reply(echo6)])
