// Header rewrites of the forwarding modes (LVS names): DR (MAC rewrite), TUN (IP-in-IP, and GUE:
// IP in UDP), full NAT, and ICMP echo replies for VIPs. DPDK-free: they work on a frame in a
// buffer with headroom, so unit tests and the worker share them. Pure functions of their inputs;
// any thread may call them on a frame it owns.
//
// Invariants: a rewrite either completes and leaves every checksum of the output valid, or
// returns false and leaves the frame untouched (the caller counts the drop). Egress frames keep
// the ingress frame's VLAN tags (outer headers go between the tags and the original IP header).
// Checksums are updated incrementally (RFC 1624) where the payload is unchanged.
#ifndef LBNODE_DATAPLANE_CORE_REWRITE_H_
#define LBNODE_DATAPLANE_CORE_REWRITE_H_

#include <cstddef>
#include <cstdint>

#include "dataplane/core/flow_key.h"
#include "dataplane/core/packet_parser.h"

namespace lb {

struct MacAddr {
  uint8_t bytes[6];
  bool operator==(const MacAddr& o) const;
};

// A frame in a buffer: `data` points at the Ethernet header, `len` bytes follow, and `headroom`
// bytes before `data` may be claimed by encapsulation (which moves `data` back).
struct Frame {
  uint8_t* data;
  uint32_t len;
  uint32_t headroom;
};

inline constexpr uint16_t kGueDefaultPort = 6080;

struct TunnelParams {
  MacAddr src_mac;   // the egress port's MAC
  MacAddr dst_mac;   // the next hop's MAC (the backend's, when it is on the segment)
  IpAddr outer_src;  // a node address of outer_family
  IpAddr outer_dst;  // the backend
  IpFamily outer_family = IpFamily::kIpv4;
  uint8_t outer_ttl = 64;
  bool gue = false;  // IP in UDP (GUE variant 1: the UDP payload is the IP packet)
  uint16_t gue_dst_port = kGueDefaultPort;  // host order
  uint64_t flow_hash = 0;  // entropy for the GUE source port and the IPv6 flow label
};

struct NatParams {
  IpFamily family = IpFamily::kIpv4;  // of the packet and of both new addresses
  MacAddr src_mac;
  MacAddr dst_mac;
  IpAddr new_src;  // same family as the packet
  IpAddr new_dst;
  uint16_t new_src_port;  // network order
  uint16_t new_dst_port;  // network order
  bool decrement_ttl = true;
};

// Bytes of headroom TUN/GUE encapsulation needs for an outer header of `outer` family.
size_t EncapOverhead(IpFamily outer, bool gue);

// DR: rewrites the Ethernet source and destination MACs; nothing else changes.
void RewriteDr(Frame* f, const MacAddr& src, const MacAddr& dst);

// TUN/GUE: inserts the outer IP (and UDP) header after the L2 header, rewrites the MACs and sets
// the ethertype for the outer family. The inner IP packet (from p.l3_offset to p.l3_end; Ethernet
// padding is cut) is not modified. Inner IPv4/IPv6 in either outer family. Returns false when
// the headroom is short, when p is not an IP packet, or when the result would exceed 65535 bytes.
bool EncapTunnel(Frame* f, const ParsedPacket& p, const TunnelParams& t);

// The outer headers that have a template (GUE over IPv6 needs a checksum over the payload and
// has none).
enum class TunnelKind : uint8_t {
  kNone = 0,
  kIpip4,  // IPv4 outer, IP in IP (protocol 4 or 41 by the inner family)
  kGue4,   // IPv4 outer, UDP (GUE variant 1)
  kIp6,    // IPv6 outer, IP in IPv6 (next header 4 or 41)
};

// A precomputed outer header for one backend of a TUN/GUE VIP: Ethernet (untagged) + outer IP
// (+ UDP) with every per-packet field (lengths, TOS, flow label, GUE source port, inner protocol,
// IPv4 checksum) left zero. The encapsulation copies it and patches those fields, the IPv4
// checksum from `ip_sum_rest`. Built off the hot path (with the snapshot).
struct TunnelTemplate {
  uint8_t bytes[64];
  uint8_t header_len = 0;  // Ethernet + overhead; 0 = no template (use EncapTunnel)
  uint8_t overhead = 0;    // EncapOverhead(outer family, gue)
  TunnelKind kind = TunnelKind::kNone;
  // IPv4: the folded one's complement sum of the outer header's words other than the three that
  // are patched per packet (version/TOS, total length, TTL/protocol) and the checksum.
  uint16_t ip_sum_rest = 0;
};

// Fills `out` for tunnels described by `t` (flow_hash unused). GUE over IPv6 gets no template
// (header_len stays 0, kind kNone), nor does an outer family other than IPv4/IPv6.
void BuildTunnelTemplate(const TunnelParams& t, TunnelTemplate* out);

// EncapTunnel for an untagged frame (p.l3_offset == 14) with a template built from the same
// TunnelParams: the same output bytes and the same failures, in a fraction of the work.
bool EncapTunnelWithTemplate(Frame* f, const ParsedPacket& p, const TunnelTemplate& t,
                             uint64_t flow_hash);

// EncapTunnelWithTemplate without the checks the parser already made, for the forwarder's fast
// path. The caller guarantees that `p` is ParsePacket's result for this frame with status kOk,
// l3 IPv4 or IPv6, and no VLAN tag (so l3_offset is 14 and l3_end <= f->len). It still fails
// (false, frame untouched) when the headroom is short, the result would exceed 65535 bytes, or
// the template is empty. Inline: one body per TunnelKind, with constant sizes.
inline bool EncapTunnelParsed(Frame* f, const ParsedPacket& p, const TunnelTemplate& t,
                              uint64_t flow_hash);

// Full NAT: rewrites source and destination address and port (TCP or UDP), decrements the TTL /
// hop limit when asked, rewrites the MACs, and updates the IPv4 header checksum and the L4
// checksum incrementally (a UDP checksum of zero over IPv4 stays zero). Returns false for a
// packet that is not TCP/UDP of the params' family, a later fragment, or a TTL that would reach 0.
bool RewriteNat(Frame* f, const ParsedPacket& p, const NatParams& n);

// Turns an ICMP echo request (IPv4 type 8, ICMPv6 type 128) into its reply in place: swaps MACs
// and addresses, sets TTL/hop limit to 64, sets the reply type and fixes the checksums
// incrementally. Returns false for anything else.
bool MakeEchoReply(Frame* f, const ParsedPacket& p);

// RFC 1624 incremental update: the checksum after `old_bytes` became `new_bytes` (len even).
// `checksum` and the result are the field's value in host order (as read big-endian from the
// wire); the bytes are in wire order, starting at an even offset of the checksummed data.
uint16_t ChecksumAdjust(uint16_t checksum, const void* old_bytes, const void* new_bytes,
                        size_t len);

namespace internal {

// Wire-order (big-endian) stores, and 16-bit words in memory order for checksums (RFC 1071
// section 2(B): the one's complement sum does not depend on the byte order).
inline void PutBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline uint16_t MemWord(const uint8_t* p) {
  uint16_t v;
  __builtin_memcpy(&v, p, 2);
  return v;
}

template <TunnelKind K>
inline bool EncapBody(Frame* f, bool inner_v4, uint32_t l3_end, const TunnelTemplate& t,
                      uint64_t flow_hash) {
  constexpr uint32_t kEther = 14;
  constexpr uint32_t kOverhead = K == TunnelKind::kIp6 ? 40 : K == TunnelKind::kGue4 ? 28 : 20;
  constexpr uint32_t kHeader = kEther + kOverhead;
  const uint32_t inner_len = l3_end - kEther;
  if (f->headroom < kOverhead || kHeader + inner_len > 0xffff) return false;
  const uint8_t* const inner = f->data + kEther;  // stays where it is
  const uint8_t tos = inner_v4 ? inner[1] : static_cast<uint8_t>(inner[0] << 4 | inner[1] >> 4);
  const uint8_t proto = inner_v4 ? 4 : 41;  // IPPROTO_IPIP, IPPROTO_IPV6
  uint8_t* const data = f->data - kOverhead;
  __builtin_memcpy(data, t.bytes, kHeader);
  f->data = data;
  f->headroom -= kOverhead;
  f->len = kHeader + inner_len;
  uint8_t* const outer = data + kEther;
  if constexpr (K == TunnelKind::kIp6) {
    const uint32_t flow_label = static_cast<uint32_t>(flow_hash) & 0xfffff;
    const uint32_t word0 = 6u << 28 | static_cast<uint32_t>(tos) << 20 | flow_label;
    PutBe16(outer, static_cast<uint16_t>(word0 >> 16));
    PutBe16(outer + 2, static_cast<uint16_t>(word0));
    PutBe16(outer + 4, static_cast<uint16_t>(inner_len));
    outer[6] = proto;
  } else {
    outer[1] = tos;
    PutBe16(outer + 2, static_cast<uint16_t>(kOverhead + inner_len));
    if constexpr (K == TunnelKind::kIpip4) outer[9] = proto;
    // At most four 16-bit terms: two folds leave 16 bits.
    uint32_t sum = t.ip_sum_rest + MemWord(outer) + MemWord(outer + 2) + MemWord(outer + 8);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    const uint16_t csum = static_cast<uint16_t>(~sum);
    __builtin_memcpy(outer + 10, &csum, 2);
    if constexpr (K == TunnelKind::kGue4) {
      uint8_t* const udp = outer + 20;
      // The dynamic port range 49152..65535 (RFC 6335), as EncapTunnel.
      PutBe16(udp, static_cast<uint16_t>(49152 + ((flow_hash >> 16) & 0x3fff)));
      PutBe16(udp + 4, static_cast<uint16_t>(8 + inner_len));
    }
  }
  return true;
}

}  // namespace internal

inline bool EncapTunnelParsed(Frame* f, const ParsedPacket& p, const TunnelTemplate& t,
                              uint64_t flow_hash) {
  const bool inner_v4 = p.l3 == L3Kind::kIpv4;
  switch (t.kind) {
    case TunnelKind::kIpip4:
      return internal::EncapBody<TunnelKind::kIpip4>(f, inner_v4, p.l3_end, t, flow_hash);
    case TunnelKind::kGue4:
      return internal::EncapBody<TunnelKind::kGue4>(f, inner_v4, p.l3_end, t, flow_hash);
    case TunnelKind::kIp6:
      return internal::EncapBody<TunnelKind::kIp6>(f, inner_v4, p.l3_end, t, flow_hash);
    case TunnelKind::kNone:
      break;
  }
  return false;
}

}  // namespace lb

#endif  // LBNODE_DATAPLANE_CORE_REWRITE_H_
