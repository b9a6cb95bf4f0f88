"""Shared addresses and packet helpers for the golden cases' gen.py scripts.

Every expected packet is built here with scapy from the documented header rules
(dataplane/core/rewrite.h), never captured from lbnode:
  TUN/GUE  outer IPv4: IHL 5, TOS copied from the inner packet, ID 0, DF, TTL 64, proto 4/41
           (GUE: 17), checksum computed by scapy. Outer IPv6: traffic class copied, flow label
           (hash-dependent, masked by the runner) written as 0, hop limit 64, next header 4/41
           (GUE: 17). Inner packet = the received IP datagram unchanged, Ethernet padding cut.
           GUE: UDP source port hash-dependent (masked; written as 49152), destination port
           the node's GUE port (6080), checksum 0 over IPv4, valid checksum over IPv6 (masked,
           verified by the runner). L2: dst = backend (next hop) MAC, src = node.port_mac,
           VLAN tags of the received frame kept, last ethertype = outer family.
  DR       only the MACs change: dst = backend MAC, src = node.port_mac.
  NAT      addresses and ports rewritten, TTL/hop limit - 1, MACs: src node.port_mac, dst backend
           MAC (replies: the gateway MAC); checksums recomputed from scratch by scapy; a zero
           UDP checksum over IPv4 stays zero.
  Echo     MACs swapped, addresses swapped, TTL/hop limit 64, type 0 / 129, checksums fixed.

Run the scripts with /usr/bin/python3 (the system Python has scapy); tests/golden/regen.sh runs
them all.
"""

import os
import struct
import sys

from scapy.all import (  # noqa: F401  (re-exported for the gen.py scripts)
    ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, ICMPv6EchoReply, ICMPv6EchoRequest,
    ICMPv6ND_NS, ICMPv6PacketTooBig, IPv6, IPv6ExtHdrFragment, Padding, Raw,
    fragment, fragment6)

# The node (see each case.textproto: node { ... }).
NODE_MAC = "02:00:00:00:00:01"      # node.port_mac: source MAC of everything the node sends
ROUTER_MAC = "02:00:00:00:00:fe"    # the upstream router: sends clients' packets to the node
GATEWAY_MAC = ROUTER_MAC            # node.gateway_mac_ipv4/6: where full-NAT replies go
TUN_SRC4 = "192.0.2.100"            # node.tunnel_source_ipv4 (also a node address)
TUN_SRC6 = "2001:db8:ffff::100"     # node.tunnel_source_ipv6
NAT4 = "192.0.2.200"                # node.nat_addresses
NAT6 = "2001:db8:ffff::200"
NAT_PORT_MIN = 20000                # node.nat_port_min: worker 0's first allocation
GUE_PORT = 6080                     # default node.gue_port
GUE_SPORT_PLACEHOLDER = 49152       # GUE source port: masked by the runner

VIP4 = "203.0.113.1"
VIP4_B = "203.0.113.2"
VIP6 = "2001:db8:100::1"
CLIENT4 = "198.51.100.7"
CLIENT6 = "2001:db8:c::7"


def backend4(i):
    return "10.0.1.%d" % i


def backend6(i):
    return "2001:db8:b::%d" % i


def backend_mac(i):
    return "02:00:00:00:01:%02x" % i


def from_router(l3, vlans=()):
    """A frame from the upstream router to the node. `vlans`: (tpid, vid, prio) outermost first."""
    return _l2(NODE_MAC, ROUTER_MAC, vlans) / l3


def from_backend(i, l3):
    """A frame a backend sends to the node (full-NAT replies)."""
    return Ether(src=backend_mac(i), dst=NODE_MAC) / l3


def _l2(dst, src, vlans):
    if not vlans:
        return Ether(dst=dst, src=src)
    frame = Ether(dst=dst, src=src, type=vlans[0][0])
    for k, (_, vid, prio) in enumerate(vlans):
        nxt = vlans[k + 1][0] if k + 1 < len(vlans) else None
        tag = Dot1Q(vlan=vid, prio=prio)
        if nxt is not None:
            tag.type = nxt
        frame = frame / tag
    return frame


def split_frame(frame):
    """(l2 header bytes, IP datagram bytes without Ethernet padding, family) of a frame."""
    b = bytes(frame)
    off = 14
    etype = struct.unpack("!H", b[12:14])[0]
    while etype in (0x8100, 0x88A8, 0x9100):
        etype = struct.unpack("!H", b[off + 2:off + 4])[0]
        off += 4
    if etype == 0x0800:
        total = struct.unpack("!H", b[off + 2:off + 4])[0]
        return b[:off], b[off:off + total], 4
    if etype == 0x86DD:
        plen = struct.unpack("!H", b[off + 4:off + 6])[0]
        return b[:off], b[off:off + 40 + plen], 6
    raise ValueError("not an IP frame")


def _mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def _rewrite_l2(l2, dst, src, ethertype):
    """The received L2 header with new MACs and, after its VLAN tags, a new ethertype."""
    return _mac_bytes(dst) + _mac_bytes(src) + l2[12:-2] + struct.pack("!H", ethertype)


def tunnel(frame, backend_ip, dst_mac, gue=False, gue_port=GUE_PORT):
    """What the node sends for `frame` in TUN (IP-in-IP) or GUE mode to `backend_ip`."""
    l2, inner, family = split_frame(frame)
    tos = inner[1] if family == 4 else ((inner[0] & 0x0F) << 4) | (inner[1] >> 4)
    proto = 17 if gue else (4 if family == 4 else 41)
    if ":" in backend_ip:
        outer = IPv6(tc=tos, fl=0, nh=proto, hlim=64, src=TUN_SRC6, dst=backend_ip)
        ethertype = 0x86DD
    else:
        outer = IP(ihl=5, tos=tos, id=0, flags="DF", frag=0, ttl=64, proto=proto,
                   src=TUN_SRC4, dst=backend_ip)
        ethertype = 0x0800
    if gue:
        # IPv4: no UDP checksum. IPv6: scapy computes one (over the placeholders; masked).
        udp = UDP(sport=GUE_SPORT_PLACEHOLDER, dport=gue_port,
                  chksum=None if ethertype == 0x86DD else 0)
        outer = outer / udp
    outer = outer / Raw(inner)
    return _rewrite_l2(l2, dst_mac, NODE_MAC, ethertype) + bytes(outer)


def dr(frame, dst_mac):
    """What the node sends for `frame` in DR mode: only the MACs change."""
    b = bytes(frame)
    return _mac_bytes(dst_mac) + _mac_bytes(NODE_MAC) + b[12:]


def nat(frame, src, sport, dst, dport, dst_mac):
    """`frame` after full NAT: new addresses and ports, TTL - 1, checksums recomputed."""
    p = Ether(bytes(frame))
    p.dst = dst_mac
    p.src = NODE_MAC
    if IP in p:
        ip = p[IP]
        ip.ttl -= 1
        del ip.chksum
    else:
        ip = p[IPv6]
        ip.hlim -= 1
    ip.src = src
    ip.dst = dst
    l4 = p[TCP] if TCP in p else p[UDP]
    l4.sport = sport
    l4.dport = dport
    if not (UDP in p and IP in p and l4.chksum == 0):  # a zero UDP checksum over IPv4 stays
        del l4.chksum
    return bytes(p)


def echo_reply(frame):
    """The node's answer to an ICMP / ICMPv6 echo request to a VIP."""
    p = Ether(bytes(frame))
    p.src, p.dst = p.dst, p.src
    if IP in p:
        ip = p[IP]
        ip.ttl = 64
        del ip.chksum
        p[ICMP].type = 0
        del p[ICMP].chksum
    else:
        ip = p[IPv6]
        ip.hlim = 64
        req = p[ICMPv6EchoRequest]
        reply = ICMPv6EchoReply(id=req.id, seq=req.seq, data=req.data)
        req.underlayer.remove_payload()
        ip.add_payload(reply)
    ip.src, ip.dst = ip.dst, ip.src
    return bytes(p)


def write_pcap(path, frames):
    """A classic little-endian pcap (Ethernet) with fixed timestamps, so output is reproducible."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, frame in enumerate(frames):
            b = bytes(frame)
            f.write(struct.pack("<IIII", 1700000000, i, len(b), len(b)))
            f.write(b)


def write_case(send, expect, expect_kernel=None):
    """Writes send.pcap, expect.pcap and (when not None) expect_kernel.pcap next to gen.py."""
    here = os.path.dirname(os.path.abspath(sys.argv[0]))
    write_pcap(os.path.join(here, "send.pcap"), send)
    write_pcap(os.path.join(here, "expect.pcap"), expect)
    kernel = os.path.join(here, "expect_kernel.pcap")
    if expect_kernel is None:
        if os.path.exists(kernel):
            os.remove(kernel)
    else:
        write_pcap(kernel, expect_kernel)
