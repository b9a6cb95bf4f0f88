#include "dataplane/core/packet_parser.h"

#include <netinet/in.h>

#include <cstring>

#include "dataplane/core/snake_names.h"

namespace lb {
namespace {

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherArp = 0x0806;
constexpr uint16_t kEtherIpv6 = 0x86dd;
constexpr uint16_t kEtherVlan = 0x8100;
constexpr uint16_t kEtherQinQ = 0x88a8;
constexpr uint16_t kEtherQinQOld = 0x9100;

constexpr size_t kEtherHeaderLen = 14;
constexpr size_t kIpv4MinHeaderLen = 20;
constexpr size_t kIpv6HeaderLen = 40;
constexpr size_t kIcmpHeaderLen = 8;

inline uint16_t Read16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
// Ports stay in network order, as the FlowKey keeps them.
inline uint16_t ReadPort(const uint8_t* p) {
  uint16_t v;
  __builtin_memcpy(&v, p, 2);
  return v;
}

inline bool HasPorts(uint8_t proto) {
  return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

inline bool IsIcmpError(uint8_t proto, uint8_t type) {
  if (proto == IPPROTO_ICMP) {
    return type == 3 /*dest unreachable*/ || type == 11 /*time exceeded*/ ||
           type == 12 /*parameter problem*/;
  }
  return type >= 1 && type <= 4;  // ICMPv6: unreachable, too big, time exceeded, param problem
}

struct Ipv6Chain {
  uint8_t next_header;
  size_t offset;  // start of the header after the chain
  Fragment fragment = Fragment::kNone;
};

// Walks IPv6 extension headers from `chain->offset` up to `end`. Stops at the first header that
// is not an extension header, or after a non-first fragment header (what follows is fragment
// payload, not a header).
ParseStatus WalkIpv6Extensions(const uint8_t* data, size_t end, Ipv6Chain* chain) {
  for (size_t n = 0;; ++n) {
    const uint8_t nh = chain->next_header;
    const bool generic = nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
                         nh == 135 /*mobility*/ || nh == 139 /*HIP*/ || nh == 140 /*shim6*/;
    if (!generic && nh != IPPROTO_FRAGMENT && nh != IPPROTO_AH) return ParseStatus::kOk;
    if (n == kMaxIpv6ExtHeaders) return ParseStatus::kTooManyIpv6ExtHeaders;
    const size_t avail = end - chain->offset;
    const uint8_t* h = data + chain->offset;
    size_t hlen;
    if (nh == IPPROTO_FRAGMENT) {
      hlen = 8;
      if (avail < hlen) return ParseStatus::kTruncatedIpv6ExtHeader;
      const uint16_t off_flags = Read16(h + 2);
      if ((off_flags >> 3) != 0) {
        chain->fragment = Fragment::kLater;
      } else if (off_flags & 1) {
        chain->fragment = Fragment::kFirst;
      }
    } else {
      if (avail < 2) return ParseStatus::kTruncatedIpv6ExtHeader;
      hlen = nh == IPPROTO_AH ? (static_cast<size_t>(h[1]) + 2) * 4
                              : (static_cast<size_t>(h[1]) + 1) * 8;
      if (avail < hlen) return ParseStatus::kTruncatedIpv6ExtHeader;
    }
    chain->next_header = h[0];
    chain->offset += hlen;
    if (chain->fragment == Fragment::kLater) return ParseStatus::kOk;
  }
}

// Parses the IP header quoted inside an ICMP error (RFC 792 / RFC 4443: the header and at least
// 8 bytes of its payload) and sets out->flow to that packet's flow reversed. The quoted packet
// is usually cut short, so its length fields are not checked against the frame.
ParseStatus ParseIcmpInner(const uint8_t* data, size_t off, size_t end, ParsedPacket* out) {
  out->inner_l3_offset = static_cast<uint16_t>(off);
  const size_t avail = end - off;
  const uint8_t* ip = data + off;
  FlowKey inner;
  size_t l4;
  uint8_t proto;
  bool later_fragment = false;
  if (out->flow.family == IpFamily::kIpv4) {
    if (avail < kIpv4MinHeaderLen) return ParseStatus::kTruncatedIcmpInner;
    if ((ip[0] >> 4) != 4) return ParseStatus::kBadIcmpInner;
    const size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
    if (ihl < kIpv4MinHeaderLen) return ParseStatus::kBadIcmpInner;
    if (avail < ihl) return ParseStatus::kTruncatedIcmpInner;
    proto = ip[9];
    later_fragment = (Read16(ip + 6) & 0x1fff) != 0;
    inner.family = IpFamily::kIpv4;
    inner.src = IpAddr::FromV4Bytes(ip + 12);
    inner.dst = IpAddr::FromV4Bytes(ip + 16);
    l4 = off + ihl;
  } else {
    if (avail < kIpv6HeaderLen) return ParseStatus::kTruncatedIcmpInner;
    if ((ip[0] >> 4) != 6) return ParseStatus::kBadIcmpInner;
    Ipv6Chain chain{ip[6], off + kIpv6HeaderLen};
    const ParseStatus st = WalkIpv6Extensions(data, end, &chain);
    if (st != ParseStatus::kOk) return ParseStatus::kTruncatedIcmpInner;
    proto = chain.next_header;
    later_fragment = chain.fragment == Fragment::kLater;
    inner.family = IpFamily::kIpv6;
    inner.src = IpAddr::FromV6Bytes(ip + 8);
    inner.dst = IpAddr::FromV6Bytes(ip + 24);
    l4 = chain.offset;
  }
  inner.proto = proto;
  if (HasPorts(proto) && !later_fragment) {
    if (end - l4 < 4) return ParseStatus::kTruncatedIcmpInner;
    inner.src_port = ReadPort(data + l4);
    inner.dst_port = ReadPort(data + l4 + 2);
  }
  out->flow = inner.Reversed();
  return ParseStatus::kOk;
}

// Parses the L4 header at out->l4_offset, bounded by the end of the IP datagram.
ParseStatus ParseL4(const uint8_t* data, size_t end, ParsedPacket* out) {
  const size_t off = out->l4_offset;
  const size_t avail = end - off;
  const uint8_t* h = data + off;
  switch (out->l4_proto) {
    case IPPROTO_TCP: {
      if (avail < 20) return ParseStatus::kTruncatedTcp;
      const size_t doff = static_cast<size_t>(h[12] >> 4) * 4;
      if (doff < 20 || doff > avail) return ParseStatus::kBadTcpDataOffset;
      out->flow.src_port = ReadPort(h);
      out->flow.dst_port = ReadPort(h + 2);
      out->tcp_flags = h[13];
      return ParseStatus::kOk;
    }
    case IPPROTO_UDP: {
      if (avail < 8) return ParseStatus::kTruncatedUdp;
      const size_t ulen = Read16(h + 4);
      // A first fragment carries only part of the datagram that the UDP length describes.
      if (ulen < 8 || (out->fragment == Fragment::kNone && ulen > avail)) {
        return ParseStatus::kBadUdpLength;
      }
      out->flow.src_port = ReadPort(h);
      out->flow.dst_port = ReadPort(h + 2);
      return ParseStatus::kOk;
    }
    case IPPROTO_SCTP: {
      if (avail >= 4) {
        out->flow.src_port = ReadPort(h);
        out->flow.dst_port = ReadPort(h + 2);
      }
      return ParseStatus::kOk;
    }
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6: {
      const bool family_matches =
          (out->l4_proto == IPPROTO_ICMP) == (out->flow.family == IpFamily::kIpv4);
      if (!family_matches) return ParseStatus::kOk;  // opaque payload, like any other protocol
      if (avail < kIcmpHeaderLen) return ParseStatus::kTruncatedIcmp;
      out->icmp_type = h[0];
      out->icmp_code = h[1];
      if (!IsIcmpError(out->l4_proto, h[0])) return ParseStatus::kOk;
      out->icmp_error = true;
      return ParseIcmpInner(data, off + kIcmpHeaderLen, end, out);
    }
    default:
      return ParseStatus::kOk;
  }
}

ParseStatus ParseIpv4(const uint8_t* data, size_t len, ParsedPacket* out) {
  const size_t off = out->l3_offset;
  const size_t avail = len - off;
  const uint8_t* ip = data + off;
  out->l3 = L3Kind::kIpv4;
  if (avail < kIpv4MinHeaderLen) return ParseStatus::kTruncatedIpv4;
  if ((ip[0] >> 4) != 4) return ParseStatus::kBadIpv4Version;
  const size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
  if (ihl < kIpv4MinHeaderLen || ihl > avail) return ParseStatus::kBadIpv4Ihl;
  const size_t total = Read16(ip + 2);
  if (total < ihl || total > avail) return ParseStatus::kBadIpv4TotalLength;
  out->l3_end = static_cast<uint16_t>(off + total);
  out->ttl = ip[8];
  out->l4_proto = ip[9];
  out->l4_offset = static_cast<uint16_t>(off + ihl);
  out->flow.family = IpFamily::kIpv4;
  out->flow.proto = ip[9];
  out->flow.src = IpAddr::FromV4Bytes(ip + 12);
  out->flow.dst = IpAddr::FromV4Bytes(ip + 16);
  const uint16_t frag = Read16(ip + 6);
  if ((frag & 0x1fff) != 0) {
    out->fragment = Fragment::kLater;
    return ParseStatus::kOk;
  }
  if (frag & 0x2000) out->fragment = Fragment::kFirst;
  return ParseL4(data, out->l3_end, out);
}

ParseStatus ParseIpv6(const uint8_t* data, size_t len, ParsedPacket* out) {
  const size_t off = out->l3_offset;
  const size_t avail = len - off;
  const uint8_t* ip = data + off;
  out->l3 = L3Kind::kIpv6;
  if (avail < kIpv6HeaderLen) return ParseStatus::kTruncatedIpv6;
  if ((ip[0] >> 4) != 6) return ParseStatus::kBadIpv6Version;
  const size_t payload = Read16(ip + 4);
  if (payload > avail - kIpv6HeaderLen) return ParseStatus::kBadIpv6PayloadLength;
  const size_t end = off + kIpv6HeaderLen + payload;
  out->l3_end = static_cast<uint16_t>(end);
  out->ttl = ip[7];
  out->flow.family = IpFamily::kIpv6;
  out->flow.src = IpAddr::FromV6Bytes(ip + 8);
  out->flow.dst = IpAddr::FromV6Bytes(ip + 24);
  Ipv6Chain chain{ip[6], off + kIpv6HeaderLen};
  const ParseStatus st = WalkIpv6Extensions(data, end, &chain);
  out->l4_proto = chain.next_header;
  out->flow.proto = chain.next_header;
  out->l4_offset = static_cast<uint16_t>(chain.offset);
  out->fragment = chain.fragment;
  if (st != ParseStatus::kOk || chain.fragment == Fragment::kLater) return st;
  return ParseL4(data, end, out);
}

constexpr const char* kNames[] = {
#define LB_PARSE_STATUS_NAME(name, desc) #name,
    LB_PARSE_STATUS_LIST(LB_PARSE_STATUS_NAME)
#undef LB_PARSE_STATUS_NAME
};
constexpr const char* kDescriptions[] = {
#define LB_PARSE_STATUS_DESC(name, desc) desc,
    LB_PARSE_STATUS_LIST(LB_PARSE_STATUS_DESC)
#undef LB_PARSE_STATUS_DESC
};
static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<size_t>(ParseStatus::kCount));

}  // namespace

const char* ParseStatusName(ParseStatus s) {
  static const auto* const kSnake =
      new SnakeNames<static_cast<size_t>(ParseStatus::kCount)>(kNames);
  const size_t i = static_cast<size_t>(s);
  return i < static_cast<size_t>(ParseStatus::kCount) ? kSnake->names[i] : "unknown";
}

const char* ParseStatusDescription(ParseStatus s) {
  const size_t i = static_cast<size_t>(s);
  return i < static_cast<size_t>(ParseStatus::kCount) ? kDescriptions[i] : "unknown";
}

namespace internal {

__attribute__((noinline)) void ParsePacketGeneral(const uint8_t* data, size_t len,
                                                  ParsedPacket* out) {
  *out = ParsedPacket();
  if (len > 0xffff) {
    out->status = ParseStatus::kFrameTooLong;
    return;
  }
  if (len < kEtherHeaderLen) {
    out->status = ParseStatus::kTruncatedEthernet;
    return;
  }
  size_t off = kEtherHeaderLen;
  uint16_t ether_type = Read16(data + 12);
  while (ether_type == kEtherVlan || ether_type == kEtherQinQ || ether_type == kEtherQinQOld) {
    if (out->vlan_count == kMaxVlanTags) {
      out->status = ParseStatus::kTooManyVlanTags;
      return;
    }
    if (len - off < 4) {
      out->status = ParseStatus::kTruncatedVlan;
      return;
    }
    if (out->vlan_count == 0) out->vlan_tci = Read16(data + off);
    ether_type = Read16(data + off + 2);
    off += 4;
    ++out->vlan_count;
  }
  out->ether_type = ether_type;
  out->l3_offset = static_cast<uint16_t>(off);
  switch (ether_type) {
    case kEtherIpv4:
      out->status = ParseIpv4(data, len, out);
      return;
    case kEtherIpv6:
      out->status = ParseIpv6(data, len, out);
      return;
    case kEtherArp: {
      out->l3 = L3Kind::kArp;
      // Fixed part (8 bytes), then two hardware and two protocol addresses.
      if (len - off < 8) {
        out->status = ParseStatus::kTruncatedArp;
        return;
      }
      const size_t addrs = 2 * (static_cast<size_t>(data[off + 4]) + data[off + 5]);
      if (len - off - 8 < addrs) out->status = ParseStatus::kTruncatedArp;
      return;
    }
    default:
      out->l3 = L3Kind::kOther;
      return;
  }
}

}  // namespace internal

ParsedPacket ParsePacket(const uint8_t* data, size_t len) {
  ParsedPacket p;
  ParsePacket(data, len, &p);
  return p;
}

}  // namespace lb
