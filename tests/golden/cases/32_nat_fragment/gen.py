#!/usr/bin/python3
"""Fragments to a full-NAT VIP are dropped (nat_fragment)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

dgram = IP(src=CLIENT4, dst=VIP4, id=0x5555) / UDP(sport=47100, dport=53) / Raw(bytes(1200))
frags = [from_router(f) for f in fragment(dgram, fragsize=800)]
assert len(frags) == 2
whole = from_router(IP(src=CLIENT4, dst=VIP4, id=0x5556) / UDP(sport=47101, dport=53) /
                    Raw(bytes(100)))
write_case(send=frags + [whole],
           expect=[nat(whole, NAT4, NAT_PORT_MIN, backend4(1), 53, backend_mac(1))])
