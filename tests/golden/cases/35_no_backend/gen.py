#!/usr/bin/python3
"""A VIP without a backend that can take a new flow drops it (no_backend)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

send = [from_router(IP(src=CLIENT4, dst=VIP4) / TCP(sport=40700, dport=port, flags="S"))
        for port in (80, 443, 8080)]
write_case(send=send, expect=[])
