#!/usr/bin/python3
"""Writes a pcap of N distinct TCP flows to one VIP, one minimum-size frame per flow.

Used by bench/run_all.sh as the replay source of a DPDK net_pcap port (infinite_rx=1): every
frame is a different 5-tuple (client address and source port vary), all to VIP:port, TCP ACK
(an established flow's mid-stream packet). IPv4 frames are 60 bytes (64 on the wire with the
FCS); IPv6 frames are 74 bytes (the smallest Ethernet + IPv6 + TCP frame, 78 on the wire).

scapy builds the template frame; the per-flow frames are that template with the source address
and port patched and both checksums recomputed, which is what makes 2^16+ flows take a second
instead of a minute. A few frames are re-parsed with scapy to check the patching.

Usage: gen_traffic.py --flows 1024 [--first 0] --family 4 --vip 203.0.113.1 --port 80 --out x.pcap
"""
import argparse
import ipaddress
import struct
import sys

from scapy.all import IP, TCP, Ether, IPv6, Raw, raw  # /usr/bin/python3 has scapy


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def client_addr(family: int, flow: int) -> bytes:
    # Distinct per flow together with the source port: 256 ports per address.
    host = (flow >> 8) + 1
    if family == 4:
        # 198.18.0.0/15 (benchmarking range), 2^17 addresses.
        return ipaddress.IPv4Address(0xC6120000 + host % 0x1FFFF).packed
    return ipaddress.IPv6Address((0x2001_0DB8_00FF << 80) | host).packed  # 2001:db8:ff::/48


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=1024)
    ap.add_argument("--first", type=int, default=0, help="first flow number (disjoint sets)")
    ap.add_argument("--family", type=int, choices=(4, 6), default=4)
    ap.add_argument("--vip", default=None, help="default 203.0.113.1 or 2001:db8:100::1")
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--src-mac", default="02:00:00:00:aa:01", help="the router's MAC")
    ap.add_argument("--dst-mac", default="02:70:63:61:70:00", help="the node's MAC (net_pcap0)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.flows < 1 or a.first < 0 or a.first + a.flows > 1 << 24:
        ap.error("--first + --flows must be in 1..2^24")
    vip = a.vip or ("203.0.113.1" if a.family == 4 else "2001:db8:100::1")

    eth = Ether(src=a.src_mac, dst=a.dst_mac)
    if a.family == 4:
        tmpl = eth / IP(src="198.18.0.1", dst=vip, ttl=64, id=1) / TCP(
            sport=1024, dport=a.port, flags="A", seq=1, ack=1, window=512) / Raw(b"\0" * 6)
        l3, l3len, saddr_off, alen = 14, 20, 14 + 12, 4
    else:
        tmpl = eth / IPv6(src="2001:db8:ff::1", dst=vip, hlim=64) / TCP(
            sport=1024, dport=a.port, flags="A", seq=1, ack=1, window=512)
        l3, l3len, saddr_off, alen = 14, 40, 14 + 8, 16
    base = bytearray(raw(tmpl))
    l4 = l3 + l3len
    tcp_len = len(base) - l4
    daddr = bytes(base[saddr_off + alen:saddr_off + 2 * alen])

    out = open(a.out, "wb")
    # pcap global header: microsecond timestamps, Ethernet link type.
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    frames = []
    for flow in range(a.first, a.first + a.flows):
        f = bytearray(base)
        src = client_addr(a.family, flow)
        f[saddr_off:saddr_off + alen] = src
        struct.pack_into("!H", f, l4, 1024 + (flow & 0xFF) * 251)  # 1024..65029, distinct
        if a.family == 4:
            struct.pack_into("!H", f, l3 + 10, 0)
            struct.pack_into("!H", f, l3 + 10, csum(bytes(f[l3:l4])))
            pseudo = src + daddr + struct.pack("!BBH", 0, 6, tcp_len)
        else:
            pseudo = src + daddr + struct.pack("!IxxxB", tcp_len, 6)
        struct.pack_into("!H", f, l4 + 16, 0)
        struct.pack_into("!H", f, l4 + 16, csum(pseudo + bytes(f[l4:])))
        i = flow - a.first
        out.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(f), len(f)))
        out.write(f)
        if flow - a.first in (0, 1, a.flows // 2, a.flows - 1):
            frames.append(bytes(f))
    out.close()

    # Check: scapy recomputes the same checksums on the patched frames.
    for f in frames:
        p = Ether(f)
        ip = p[IP] if a.family == 4 else p[IPv6]
        q = p.copy()
        if a.family == 4:
            del q[IP].chksum
        del q[TCP].chksum
        q = Ether(raw(q))
        if raw(q) != f:
            print("gen_traffic: checksum mismatch on %s" % p.summary(), file=sys.stderr)
            return 1
        if ip.dst != ipaddress.ip_address(vip).compressed:
            print("gen_traffic: wrong destination %s" % ip.dst, file=sys.stderr)
            return 1
    print("%s: %d flows (from %d), IPv%d, %d-byte frames, to %s:%d" %
          (a.out, a.flows, a.first, a.family, len(base), vip, a.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
