#include "dataplane/core/rewrite.h"

#include <netinet/in.h>

#include <cstring>

namespace lb {
namespace {

constexpr size_t kEtherHeaderLen = 14;
constexpr size_t kIpv4HeaderLen = 20;
constexpr size_t kIpv6HeaderLen = 40;
constexpr size_t kUdpHeaderLen = 8;
constexpr size_t kTcpHeaderLen = 20;
constexpr size_t kIcmpHeaderLen = 8;
constexpr size_t kMaxFrameLen = 0xffff;

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86dd;

constexpr uint8_t kEchoReplyTtl = 64;
constexpr uint32_t kGueSrcPortBase = 49152;   // start of the dynamic port range (RFC 6335)
constexpr uint32_t kGueSrcPortRange = 16384;  // 49152..65535

// Checksum arithmetic works on 16-bit words as loaded from memory in host byte order (RFC 1071
// section 2(B): the one's complement sum is byte-order independent), so a checksum field loaded
// the same way is updated and stored back without byte swaps.
inline uint16_t Load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline void Store16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline uint32_t Load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
// Big-endian (wire order) field values.
inline void Write16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

inline uint16_t Fold(uint64_t sum) {
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// One's complement sum (unfolded) of `len` bytes, in memory word order. A trailing odd byte is
// padded with a zero byte, as RFC 1071 prescribes.
inline uint64_t Sum(const uint8_t* p, size_t len, uint64_t sum) {
  size_t i = 0;
  for (; i + 4 <= len; i += 4) sum += Load32(p + i);
  if (i + 2 <= len) {
    sum += Load16(p + i);
    i += 2;
  }
  if (i < len) {
    const uint8_t tail[2] = {p[i], 0};
    sum += Load16(tail);
  }
  return sum;
}

// Accumulates ~m + m' over changed words (RFC 1624 eqn 3) and applies it to checksums.
class ChecksumDelta {
 public:
  // `len` bytes at `old_bytes` become the bytes at `new_bytes`; call before overwriting.
  void Change(const uint8_t* old_bytes, const uint8_t* new_bytes, size_t len) {
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
      sum_ += static_cast<uint32_t>(~Load32(old_bytes + i));
      sum_ += Load32(new_bytes + i);
    }
    for (; i + 2 <= len; i += 2) {
      sum_ += static_cast<uint16_t>(~Load16(old_bytes + i));
      sum_ += Load16(new_bytes + i);
    }
    if (i < len) {
      const uint8_t o[2] = {old_bytes[i], 0};
      const uint8_t n[2] = {new_bytes[i], 0};
      sum_ += static_cast<uint16_t>(~Load16(o));
      sum_ += Load16(n);
    }
  }
  void Add(const ChecksumDelta& other) { sum_ += other.sum_; }
  // HC' = ~(~HC + sum(~m + m')), on a checksum in memory word order.
  uint16_t Apply(uint16_t checksum) const {
    return static_cast<uint16_t>(~Fold(sum_ + static_cast<uint16_t>(~checksum)));
  }

 private:
  uint64_t sum_ = 0;
};

inline void WriteMacs(uint8_t* frame, const MacAddr& src, const MacAddr& dst) {
  std::memcpy(frame, dst.bytes, 6);
  std::memcpy(frame + 6, src.bytes, 6);
}

template <size_t N>
inline void SwapBytes(uint8_t* a, uint8_t* b) {
  uint8_t tmp[N];
  std::memcpy(tmp, a, N);
  std::memcpy(a, b, N);
  std::memcpy(b, tmp, N);
}

// True when `p` describes a complete IPv4/IPv6 datagram that lies inside a frame of `len` bytes.
inline bool IsIpDatagram(const ParsedPacket& p, uint32_t len) {
  if (p.status != ParseStatus::kOk) return false;
  size_t min_header;
  if (p.l3 == L3Kind::kIpv4 && p.flow.family == IpFamily::kIpv4) {
    min_header = kIpv4HeaderLen;
  } else if (p.l3 == L3Kind::kIpv6 && p.flow.family == IpFamily::kIpv6) {
    min_header = kIpv6HeaderLen;
  } else {
    return false;
  }
  return p.l3_offset >= kEtherHeaderLen && p.l3_end <= len &&
         static_cast<size_t>(p.l3_offset) + min_header <= p.l3_end &&
         p.l4_offset >= p.l3_offset + min_header && p.l4_offset <= p.l3_end;
}

}  // namespace

bool MacAddr::operator==(const MacAddr& o) const {
  return std::memcmp(bytes, o.bytes, sizeof(bytes)) == 0;
}

size_t EncapOverhead(IpFamily outer, bool gue) {
  size_t n;
  switch (outer) {
    case IpFamily::kIpv4:
      n = kIpv4HeaderLen;
      break;
    case IpFamily::kIpv6:
      n = kIpv6HeaderLen;
      break;
    default:
      return 0;
  }
  return gue ? n + kUdpHeaderLen : n;
}

void RewriteDr(Frame* f, const MacAddr& src, const MacAddr& dst) { WriteMacs(f->data, src, dst); }

bool EncapTunnel(Frame* f, const ParsedPacket& p, const TunnelParams& t) {
  const bool outer_v4 = t.outer_family == IpFamily::kIpv4;
  if (!outer_v4 && t.outer_family != IpFamily::kIpv6) return false;
  if (!IsIpDatagram(p, f->len)) return false;
  const size_t overhead = EncapOverhead(t.outer_family, t.gue);
  if (f->headroom < overhead) return false;
  const size_t l2_len = p.l3_offset;
  const size_t inner_len = static_cast<size_t>(p.l3_end) - p.l3_offset;
  const size_t new_len = l2_len + overhead + inner_len;
  if (new_len > kMaxFrameLen) return false;

  const bool inner_v4 = p.l3 == L3Kind::kIpv4;
  const uint8_t* inner = f->data + l2_len;  // stays where it is
  const uint8_t tos = inner_v4 ? inner[1] : static_cast<uint8_t>(inner[0] << 4 | inner[1] >> 4);
  const uint8_t proto = t.gue ? IPPROTO_UDP : inner_v4 ? IPPROTO_IPIP : IPPROTO_IPV6;

  uint8_t* const data = f->data - overhead;
  // Only VLAN tags (bytes 12 .. l2_len-2) need to move: the MACs and the ethertype are written
  // below. An untagged frame moves nothing (the common case: no memmove call per packet).
  if (l2_len > kEtherHeaderLen) {
    std::memmove(data + 12, f->data + 12, l2_len - kEtherHeaderLen);
  }
  f->data = data;
  f->headroom -= static_cast<uint32_t>(overhead);
  f->len = static_cast<uint32_t>(new_len);
  WriteMacs(data, t.src_mac, t.dst_mac);
  Write16(data + l2_len - 2, outer_v4 ? kEtherIpv4 : kEtherIpv6);

  uint8_t* const outer = data + l2_len;
  const size_t outer_ip_len = outer_v4 ? kIpv4HeaderLen : kIpv6HeaderLen;
  if (outer_v4) {
    outer[0] = 0x45;
    outer[1] = tos;
    Write16(outer + 2, static_cast<uint16_t>(overhead + inner_len));
    Write16(outer + 4, 0);       // ID: unused with DF set (RFC 6864)
    Write16(outer + 6, 0x4000);  // DF
    outer[8] = t.outer_ttl;
    outer[9] = proto;
    Store16(outer + 10, 0);
    std::memcpy(outer + 12, t.outer_src.bytes, 4);
    std::memcpy(outer + 16, t.outer_dst.bytes, 4);
    Store16(outer + 10, static_cast<uint16_t>(~Fold(Sum(outer, kIpv4HeaderLen, 0))));
  } else {
    const uint32_t flow_label = static_cast<uint32_t>(t.flow_hash) & 0xfffff;
    outer[0] = static_cast<uint8_t>(0x60 | tos >> 4);
    outer[1] = static_cast<uint8_t>(tos << 4 | flow_label >> 16);
    Write16(outer + 2, static_cast<uint16_t>(flow_label));
    Write16(outer + 4, static_cast<uint16_t>(overhead - kIpv6HeaderLen + inner_len));
    outer[6] = proto;
    outer[7] = t.outer_ttl;
    std::memcpy(outer + 8, t.outer_src.bytes, 16);
    std::memcpy(outer + 24, t.outer_dst.bytes, 16);
  }
  if (t.gue) {
    uint8_t* const udp = outer + outer_ip_len;
    const uint16_t udp_len = static_cast<uint16_t>(kUdpHeaderLen + inner_len);
    Write16(udp, static_cast<uint16_t>(kGueSrcPortBase + (t.flow_hash >> 16) % kGueSrcPortRange));
    Write16(udp + 2, t.gue_dst_port);
    Write16(udp + 4, udp_len);
    Store16(udp + 6, 0);  // IPv4: no checksum (RFC 768; the inner packet carries its own)
    if (!outer_v4) {
      // RFC 8200 section 8.1: UDP over IPv6 needs a checksum (the RFC 6935/6936 zero-checksum
      // exception is not used). Pseudo-header: addresses, upper-layer length, next header.
      uint64_t sum = Sum(outer + 8, 32, 0);
      sum += htons(udp_len);
      sum += htons(IPPROTO_UDP);
      sum = Sum(udp, kUdpHeaderLen + inner_len, sum);
      const uint16_t c = static_cast<uint16_t>(~Fold(sum));
      Store16(udp + 6, c == 0 ? 0xffff : c);
    }
  }
  return true;
}

void BuildTunnelTemplate(const TunnelParams& t, TunnelTemplate* out) {
  *out = TunnelTemplate();
  std::memset(out->bytes, 0, sizeof(out->bytes));
  const bool v4 = t.outer_family == IpFamily::kIpv4;
  if ((!v4 && t.outer_family != IpFamily::kIpv6) || (t.gue && !v4)) return;
  out->kind = !v4 ? TunnelKind::kIp6 : t.gue ? TunnelKind::kGue4 : TunnelKind::kIpip4;
  out->overhead = static_cast<uint8_t>(EncapOverhead(t.outer_family, t.gue));
  out->header_len = static_cast<uint8_t>(kEtherHeaderLen + out->overhead);
  uint8_t* const b = out->bytes;
  WriteMacs(b, t.src_mac, t.dst_mac);
  Write16(b + 12, v4 ? kEtherIpv4 : kEtherIpv6);
  uint8_t* const ip = b + kEtherHeaderLen;
  const uint8_t proto = t.gue ? IPPROTO_UDP : 0;  // TUN: set per packet from the inner family
  if (v4) {
    ip[0] = 0x45;
    Write16(ip + 6, 0x4000);  // DF
    ip[8] = t.outer_ttl;
    ip[9] = proto;
    std::memcpy(ip + 12, t.outer_src.bytes, 4);
    std::memcpy(ip + 16, t.outer_dst.bytes, 4);
    // Words 0, 1 and 4 are added per packet as they are then; word 5 is the checksum (zero).
    out->ip_sum_rest = Fold(Sum(ip + 4, 4, Sum(ip + 12, 8, 0)));
  } else {
    ip[0] = 0x60;
    ip[6] = proto;
    ip[7] = t.outer_ttl;
    std::memcpy(ip + 8, t.outer_src.bytes, 16);
    std::memcpy(ip + 24, t.outer_dst.bytes, 16);
  }
  if (t.gue) Write16(ip + kIpv4HeaderLen + 2, t.gue_dst_port);
}

bool EncapTunnelWithTemplate(Frame* f, const ParsedPacket& p, const TunnelTemplate& t,
                             uint64_t flow_hash) {
  // What EncapTunnelParsed trusts its caller for.
  if (!IsIpDatagram(p, f->len) || p.l3_offset != kEtherHeaderLen) return false;
  return EncapTunnelParsed(f, p, t, flow_hash);
}

namespace {

// One body per family, so that every checksum delta has a constant length and unrolls.
template <bool v4>
bool RewriteNatFamily(Frame* f, const ParsedPacket& p, const NatParams& n, bool tcp) {
  uint8_t* const ip = f->data + p.l3_offset;
  uint8_t* const l4 = f->data + p.l4_offset;
  uint8_t* const ttl = ip + (v4 ? 8 : 7);
  if (n.decrement_ttl && *ttl <= 1) return false;

  constexpr size_t addr_len = v4 ? 4 : 16;
  uint8_t* const addrs = ip + (v4 ? 12 : 8);  // source then destination
  uint8_t new_addrs[32];
  std::memcpy(new_addrs, n.new_src.bytes, addr_len);
  std::memcpy(new_addrs + addr_len, n.new_dst.bytes, addr_len);
  uint8_t new_ports[4];
  std::memcpy(new_ports, &n.new_src_port, 2);
  std::memcpy(new_ports + 2, &n.new_dst_port, 2);

  ChecksumDelta addr_delta;
  addr_delta.Change(addrs, new_addrs, 2 * addr_len);
  ChecksumDelta l4_delta = addr_delta;  // the pseudo-header holds the addresses
  l4_delta.Change(l4, new_ports, 4);

  if constexpr (v4) {
    ChecksumDelta ip_delta = addr_delta;
    if (n.decrement_ttl) {
      const uint8_t new_word[2] = {static_cast<uint8_t>(*ttl - 1), ip[9]};
      ip_delta.Change(ttl, new_word, 2);
    }
    Store16(ip + 10, ip_delta.Apply(Load16(ip + 10)));
  }
  if (n.decrement_ttl) --*ttl;

  uint8_t* const csum = l4 + (tcp ? 16 : 6);
  const uint16_t old_csum = Load16(csum);
  if (tcp) {
    Store16(csum, l4_delta.Apply(old_csum));
  } else if (!(v4 && old_csum == 0)) {  // a zero UDP checksum over IPv4 means "none"
    const uint16_t c = l4_delta.Apply(old_csum);
    Store16(csum, c == 0 ? 0xffff : c);
  }
  std::memcpy(addrs, new_addrs, 2 * addr_len);
  std::memcpy(l4, new_ports, 4);
  WriteMacs(f->data, n.src_mac, n.dst_mac);
  return true;
}

}  // namespace

bool RewriteNat(Frame* f, const ParsedPacket& p, const NatParams& n) {
  if (!IsIpDatagram(p, f->len) || p.fragment == Fragment::kLater) return false;
  const bool tcp = p.l4_proto == IPPROTO_TCP;
  if (!tcp && p.l4_proto != IPPROTO_UDP) return false;
  if (static_cast<size_t>(p.l4_offset) + (tcp ? kTcpHeaderLen : kUdpHeaderLen) > p.l3_end) {
    return false;
  }
  const bool v4 = p.l3 == L3Kind::kIpv4;
  if (n.family != (v4 ? IpFamily::kIpv4 : IpFamily::kIpv6)) return false;
  return v4 ? RewriteNatFamily<true>(f, p, n, tcp) : RewriteNatFamily<false>(f, p, n, tcp);
}

bool MakeEchoReply(Frame* f, const ParsedPacket& p) {
  if (!IsIpDatagram(p, f->len) || p.fragment != Fragment::kNone) return false;
  if (static_cast<size_t>(p.l4_offset) + kIcmpHeaderLen > p.l3_end) return false;
  const bool v4 = p.l3 == L3Kind::kIpv4;
  uint8_t* const ip = f->data + p.l3_offset;
  uint8_t* const icmp = f->data + p.l4_offset;
  if (v4) {
    if (p.l4_proto != IPPROTO_ICMP || icmp[0] != 8 || icmp[1] != 0) return false;
  } else {
    if (p.l4_proto != IPPROTO_ICMPV6 || icmp[0] != 128 || icmp[1] != 0) return false;
  }

  SwapBytes<6>(f->data, f->data + 6);
  if (v4) {
    const uint8_t new_word[2] = {kEchoReplyTtl, ip[9]};
    ChecksumDelta ip_delta;
    ip_delta.Change(ip + 8, new_word, 2);
    Store16(ip + 10, ip_delta.Apply(Load16(ip + 10)));
    ip[8] = kEchoReplyTtl;
    SwapBytes<4>(ip + 12, ip + 16);  // the header sum does not change
  } else {
    ip[7] = kEchoReplyTtl;
    SwapBytes<16>(ip + 8, ip + 24);  // the pseudo-header sum does not change
  }
  const uint8_t reply[2] = {static_cast<uint8_t>(v4 ? 0 : 129), 0};
  ChecksumDelta icmp_delta;
  icmp_delta.Change(icmp, reply, 2);
  Store16(icmp + 2, icmp_delta.Apply(Load16(icmp + 2)));
  icmp[0] = reply[0];
  return true;
}

uint16_t ChecksumAdjust(uint16_t checksum, const void* old_bytes, const void* new_bytes,
                        size_t len) {
  ChecksumDelta d;
  d.Change(static_cast<const uint8_t*>(old_bytes), static_cast<const uint8_t*>(new_bytes), len);
  // `checksum` is the field's value (host order); the delta is in memory word order.
  return ntohs(d.Apply(htons(checksum)));
}

}  // namespace lb
