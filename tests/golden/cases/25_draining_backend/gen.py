#!/usr/bin/python3
"""New flows skip draining backends."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
from golden import *  # noqa: E402,F401,F403

send = [from_router(IP(src=CLIENT4, dst=VIP4, id=i) /
                    TCP(sport=48000 + i, dport=80, flags="S", seq=i))
        for i in range(8)]
write_case(send=send, expect=[tunnel(p, backend4(2), backend_mac(2)) for p in send])
