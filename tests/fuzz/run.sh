#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a bounded time (default 60 s).
# Usage: tests/fuzz/run.sh [seconds]   Crashes are written to build-fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
build=build-fuzz
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DLB_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  >/dev/null
cmake --build "$build" --target parser_fuzz >/dev/null
corpus="$build/corpus/parser"
mkdir -p "$corpus" "$build/artifacts"
# Seeds: well-formed frames of each shape the parser knows, written by scapy.
/usr/bin/python3 - "$corpus" <<'PY'
import logging, sys
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import Ether, Dot1Q, IP, IPv6, TCP, UDP, ICMP, ARP, raw
from scapy.layers.inet6 import (IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
                                ICMPv6PacketTooBig)
d = sys.argv[1]
inner4 = IP(src="203.0.113.1", dst="192.0.2.10") / TCP(sport=80, dport=40000)
inner6 = IPv6(src="2001:db8:100::1", dst="2001:db8::10") / TCP(sport=443, dport=50000)
seeds = [
    Ether() / IP(dst="203.0.113.1", options=b"\x94\x04\x00\x00") / TCP(dport=80, flags="S"),
    Ether() / Dot1Q(vlan=5) / IP(dst="203.0.113.1") / UDP(dport=53) / (b"x" * 20),
    Ether() / Dot1Q(vlan=5) / Dot1Q(vlan=6) / IP(dst="203.0.113.1", flags="MF") / UDP(),
    Ether() / IP(dst="203.0.113.1", frag=100) / (b"y" * 16),
    Ether() / IP(dst="203.0.113.1") / ICMP(type=3, code=4) / raw(inner4)[:28],
    Ether() / IP(dst="203.0.113.1") / ICMP(type=8) / b"ping",
    Ether() / IPv6(dst="2001:db8:100::1") / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() /
    TCP(dport=443),
    Ether() / IPv6(dst="2001:db8:100::1") / IPv6ExtHdrFragment(m=1) / UDP(dport=53),
    Ether() / IPv6(dst="2001:db8:100::1") / ICMPv6PacketTooBig() / raw(inner6),
    Ether() / ARP(pdst="10.0.0.1"),
]
for i, s in enumerate(seeds):
    open(f"{d}/seed{i}", "wb").write(raw(s))
PY
echo "fuzz: parser_fuzz for ${secs}s"
"$build/tests/fuzz/parser_fuzz" "$corpus" -max_total_time="$secs" -max_len=2048 \
  -artifact_prefix="$build/artifacts/" -print_final_stats=1 2>&1 | tail -n 12
