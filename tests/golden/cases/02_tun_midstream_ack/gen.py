#!/usr/bin/python3
"""TUN IPv4: mid-stream packets of a flow the node never saw a SYN for are forwarded."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

ack1 = from_router(IP(src=CLIENT4, dst=VIP4, id=100) /
                   TCP(sport=41000, dport=80, flags="PA", seq=5000, ack=9000) /
                   Raw(b"GET / HTTP/1.1\r\n\r\n"))
ack2 = from_router(IP(src=CLIENT4, dst=VIP4, id=101) /
                   TCP(sport=41000, dport=80, flags="A", seq=5018, ack=9100))
write_case(send=[ack1, ack2],
           expect=[tunnel(ack1, backend4(1), backend_mac(1)),
                   tunnel(ack2, backend4(1), backend_mac(1))])
