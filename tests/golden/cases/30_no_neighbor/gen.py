#!/usr/bin/python3
"""Backends (and the NAT gateway) without a resolved MAC: dropped no_neighbor."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

to_unresolved = [from_router(IP(src=CLIENT4, dst=VIP4, id=i) /
                             TCP(sport=40500 + i, dport=80, flags="S")) for i in range(2)]
to_resolved = from_router(IP(src=CLIENT4, dst=VIP4, id=9) / TCP(sport=40509, dport=443, flags="S"))
nat_syn = from_router(IP(src=CLIENT4, dst=VIP4_B, id=10) / TCP(sport=40510, dport=80, flags="S"))
nat_reply = from_backend(1, IP(src=backend4(1), dst=NAT4) /
                         TCP(sport=80, dport=NAT_PORT_MIN, flags="SA"))
write_case(send=to_unresolved + [to_resolved, nat_syn, nat_reply],
           expect=[tunnel(to_resolved, backend4(1), backend_mac(1)),
                   nat(nat_syn, NAT4, NAT_PORT_MIN, backend4(1), 80, backend_mac(1))])
