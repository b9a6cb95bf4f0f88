#!/usr/bin/python3
"""VIPs of different modes side by side: TUN, DR and full NAT."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

tun1 = from_router(IP(src=CLIENT4, dst=VIP4, id=1) / TCP(sport=40600, dport=80, flags="S"))
dr1 = from_router(IP(src=CLIENT4, dst=VIP4, id=2) / TCP(sport=40601, dport=443, flags="S"))
nat1 = from_router(IP(src=CLIENT4, dst=VIP4_B, id=3) / TCP(sport=40602, dport=80, flags="S"))
tun2 = from_router(IP(src=CLIENT4, dst=VIP4, id=4) / TCP(sport=40600, dport=80, flags="A"))
dr2 = from_router(IP(src=CLIENT4, dst=VIP4, id=5) / TCP(sport=40601, dport=443, flags="A"))
nat2 = from_router(IP(src=CLIENT4, dst=VIP4_B, id=6) / TCP(sport=40602, dport=80, flags="A"))
write_case(send=[tun1, dr1, nat1, tun2, dr2, nat2],
           expect=[tunnel(tun1, backend4(1), backend_mac(1)),
                   dr(dr1, backend_mac(2)),
                   nat(nat1, NAT4, NAT_PORT_MIN, backend4(3), 8080, backend_mac(3)),
                   tunnel(tun2, backend4(1), backend_mac(1)),
                   dr(dr2, backend_mac(2)),
                   nat(nat2, NAT4, NAT_PORT_MIN, backend4(3), 8080, backend_mac(3))])
