#!/usr/bin/python3
"""Full NAT on an all-ports VIP keeps the client's port both ways."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

send, expect = [], []
for i, dport in enumerate((8443, 25)):
    syn = from_router(IP(src=CLIENT4, dst=VIP4, id=i) /
                      TCP(sport=41000 + i, dport=dport, flags="S"))
    reply = from_backend(1, IP(src=backend4(1), dst=NAT4) /
                         TCP(sport=dport, dport=NAT_PORT_MIN + i, flags="SA"))
    send += [syn, reply]
    expect += [nat(syn, NAT4, NAT_PORT_MIN + i, backend4(1), dport, backend_mac(1)),
               nat(reply, VIP4, dport, CLIENT4, 41000 + i, GATEWAY_MAC)]
write_case(send=send, expect=expect)
