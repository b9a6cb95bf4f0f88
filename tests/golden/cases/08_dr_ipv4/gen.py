#!/usr/bin/python3
"""DR IPv4: only the MACs change."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

syn = from_router(IP(src=CLIENT4, dst=VIP4, ttl=33, tos=0x08) /
                  TCP(sport=45000, dport=80, flags="S", options=[("SAckOK", b"")]))
data = from_router(IP(src=CLIENT4, dst=VIP4, ttl=33) / TCP(sport=45000, dport=80, flags="PA") /
                   Raw(b"z" * 300))
write_case(send=[syn, data],
           expect=[dr(syn, backend_mac(3)), dr(data, backend_mac(3))])
