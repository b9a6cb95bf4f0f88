#!/usr/bin/python3
"""Full NAT IPv4 UDP: checksum updated, a zero checksum stays zero."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

q1 = from_router(IP(src=CLIENT4, dst=VIP4, id=21) / UDP(sport=46001, dport=53) /
                 Raw(b"\xab\xcd\x01\x00" + b"w" * 25))
q2 = from_router(IP(src=CLIENT4, dst=VIP4, id=22) / UDP(sport=46002, dport=53, chksum=0) /
                 Raw(b"\xab\xce\x01\x00" + b"v" * 25))
write_case(send=[q1, q2],
           expect=[nat(q1, NAT4, NAT_PORT_MIN, backend4(2), 53, backend_mac(2)),
                   nat(q2, NAT4, NAT_PORT_MIN + 1, backend4(2), 53, backend_mac(2))])
