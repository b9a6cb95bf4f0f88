// Packet parser: classifies one Ethernet frame and extracts what the forwarding plane needs
// (layer offsets, the flow's 5-tuple, fragment state, TCP flags, ICMP error contents). DPDK-free:
// it takes bytes and a length, so unit tests, the fuzzer and pcap tools share it. Pure function of
// its input: any thread may call it.
//
// Invariant: the parser never reads outside [data, data + len). Every truncated or inconsistent
// header yields a ParseStatus naming the reason, which the worker counts as a drop.
#ifndef LBNODE_DATAPLANE_CORE_PACKET_PARSER_H_
#define LBNODE_DATAPLANE_CORE_PACKET_PARSER_H_

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>

#include "dataplane/core/flow_key.h"

namespace lb {

// X-macro: name, description. Order is ABI for counters: append only.
#define LB_PARSE_STATUS_LIST(X)                                                     \
  X(kOk, "ok")                                                                      \
  X(kTruncatedEthernet, "frame shorter than an Ethernet header")                    \
  X(kTruncatedVlan, "VLAN tag cut short")                                           \
  X(kTooManyVlanTags, "more than two VLAN tags")                                    \
  X(kTruncatedArp, "ARP message cut short")                                         \
  X(kTruncatedIpv4, "IPv4 header cut short")                                        \
  X(kBadIpv4Version, "IPv4 ethertype but version field is not 4")                   \
  X(kBadIpv4Ihl, "IPv4 header length below 20 bytes or beyond the frame")           \
  X(kBadIpv4TotalLength, "IPv4 total length below header length or beyond frame")   \
  X(kTruncatedIpv6, "IPv6 header cut short")                                        \
  X(kBadIpv6Version, "IPv6 ethertype but version field is not 6")                   \
  X(kBadIpv6PayloadLength, "IPv6 payload length beyond the frame (or jumbogram)")   \
  X(kTruncatedIpv6ExtHeader, "IPv6 extension header cut short")                     \
  X(kTooManyIpv6ExtHeaders, "IPv6 extension header chain too long")                 \
  X(kTruncatedTcp, "TCP header cut short")                                          \
  X(kBadTcpDataOffset, "TCP data offset below 5 words or beyond the datagram")      \
  X(kTruncatedUdp, "UDP header cut short")                                          \
  X(kBadUdpLength, "UDP length below 8 or beyond the datagram")                     \
  X(kTruncatedIcmp, "ICMP header cut short")                                        \
  X(kTruncatedIcmpInner, "ICMP error without a complete inner IP header and ports") \
  X(kBadIcmpInner, "ICMP error whose inner packet is not IP of the same family")    \
  X(kFrameTooLong, "frame longer than 65535 bytes")

enum class ParseStatus : uint8_t {
#define LB_PARSE_STATUS_ENUM(name, desc) name,
  LB_PARSE_STATUS_LIST(LB_PARSE_STATUS_ENUM)
#undef LB_PARSE_STATUS_ENUM
      kCount
};

// Stable snake_case name for counters and logs ("truncated_ipv4", ...).
const char* ParseStatusName(ParseStatus s);
const char* ParseStatusDescription(ParseStatus s);

enum class L3Kind : uint8_t {
  kOther = 0,  // an ethertype the LB does not handle (goes to the exception path)
  kArp,
  kIpv4,
  kIpv6,
};

enum class Fragment : uint8_t {
  kNone = 0,  // not a fragment
  kFirst,     // offset 0 with more-fragments set: carries the L4 header
  kLater,     // offset > 0: no L4 header, ports unknown
};

// TCP flag bits as on the wire.
inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpAck = 0x10;

inline constexpr size_t kMaxVlanTags = 2;
inline constexpr size_t kMaxIpv6ExtHeaders = 8;

struct ParsedPacket {
  ParseStatus status = ParseStatus::kOk;
  L3Kind l3 = L3Kind::kOther;
  uint8_t vlan_count = 0;
  uint16_t vlan_tci = 0;    // outermost tag, host order
  uint16_t ether_type = 0;  // after VLAN tags, host order
  uint16_t l3_offset = 0;   // start of the ARP/IP header
  uint16_t l4_offset = 0;   // start of the L4 header (after IPv4 options / IPv6 ext headers)
  uint16_t l3_end = 0;      // end of the IP datagram; bytes after it are Ethernet padding
  uint8_t l4_proto = 0;     // IPPROTO_* after extension headers (IPv6: the final next header)
  uint8_t ttl = 0;          // IPv4 TTL or IPv6 hop limit
  Fragment fragment = Fragment::kNone;
  uint8_t tcp_flags = 0;  // valid when l4_proto is TCP and the L4 header is present
  uint8_t icmp_type = 0;  // ICMP or ICMPv6 (outer)
  uint8_t icmp_code = 0;
  bool icmp_error = false;  // an ICMP error carrying an inner packet (flow is then the inner's)
  uint16_t inner_l3_offset = 0;  // ICMP error: start of the inner IP header
  // The flow this packet belongs to, in the client->VIP direction. For an ICMP error it is the
  // inner packet's flow reversed: an error about a packet the VIP sent (src VIP, dst client) is
  // routed like the client's flow to the VIP, so it reaches the backend that owns that flow.
  // Ports are zero for later fragments and for protocols without ports.
  FlowKey flow;
};

namespace internal {
// The general parser alone, without the fast path for plain TCP/UDP that ParsePacket tries
// first. Both must give the same result for every input: tests compare them.
void ParsePacketGeneral(const uint8_t* data, size_t len, ParsedPacket* out);

// The fast path's own constants and readers (packet_parser.cc has the general parser's).
inline constexpr uint16_t kFastEtherIpv4 = 0x0800;
inline constexpr uint16_t kFastEtherIpv6 = 0x86dd;
inline constexpr size_t kFastEtherLen = 14;
inline constexpr size_t kFastIpv4Len = 20;
inline constexpr size_t kFastIpv6Len = 40;
inline uint16_t FastRead16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint16_t FastReadPort(const uint8_t* p) {
  uint16_t v;
  __builtin_memcpy(&v, p, 2);
  return v;
}

// The common case in one pass: an untagged IPv4 datagram without options and not fragmented, or
// an IPv6 one without extension headers, carrying a well-formed TCP or UDP header. It fills `out`
// exactly as the general parser would and returns true; anything else (including every error)
// returns false, and the general parser starts over. Inline in ParsePacket, and so in the
// worker's burst loop: no call per packet.
inline bool ParseFast(const uint8_t* data, size_t len, ParsedPacket* out) {
  if (len < kFastEtherLen + kFastIpv4Len || len > 0xffff) return false;
  const uint16_t ether_type = FastRead16(data + 12);
  const uint8_t* ip = data + kFastEtherLen;
  const size_t avail = len - kFastEtherLen;
  size_t l4_off;
  size_t end;
  uint8_t proto;
  if (ether_type == kFastEtherIpv4) {
    // Version 4, IHL 5; no MF and offset 0 (DF allowed); total length inside the frame.
    const size_t total = FastRead16(ip + 2);
    if (ip[0] != 0x45 || (FastRead16(ip + 6) & 0x3fff) != 0 || total < kFastIpv4Len ||
        total > avail) {
      return false;
    }
    proto = ip[9];
    l4_off = kFastEtherLen + kFastIpv4Len;
    end = kFastEtherLen + total;
  } else if (ether_type == kFastEtherIpv6) {
    if (avail < kFastIpv6Len || (ip[0] >> 4) != 6) return false;
    const size_t payload = FastRead16(ip + 4);
    if (payload > avail - kFastIpv6Len) return false;
    proto = ip[6];
    l4_off = kFastEtherLen + kFastIpv6Len;
    end = l4_off + payload;
  } else {
    return false;
  }
  const uint8_t* h = data + l4_off;
  const size_t l4_avail = end - l4_off;
  if (proto == IPPROTO_TCP) {
    if (l4_avail < 20) return false;
    const size_t doff = static_cast<size_t>(h[12] >> 4) * 4;
    if (doff < 20 || doff > l4_avail) return false;
  } else if (proto == IPPROTO_UDP) {
    if (l4_avail < 8) return false;
    const size_t ulen = FastRead16(h + 4);
    if (ulen < 8 || ulen > l4_avail) return false;
  } else {
    return false;
  }
  *out = ParsedPacket();
  out->ether_type = ether_type;
  out->l3_offset = kFastEtherLen;
  out->l4_offset = static_cast<uint16_t>(l4_off);
  out->l3_end = static_cast<uint16_t>(end);
  out->l4_proto = proto;
  out->flow.proto = proto;
  if (ether_type == kFastEtherIpv4) {
    out->l3 = L3Kind::kIpv4;
    out->ttl = ip[8];
    out->flow.family = IpFamily::kIpv4;
    __builtin_memcpy(out->flow.src.bytes, ip + 12, 4);
    __builtin_memcpy(out->flow.dst.bytes, ip + 16, 4);
  } else {
    out->l3 = L3Kind::kIpv6;
    out->ttl = ip[7];
    out->flow.family = IpFamily::kIpv6;
    __builtin_memcpy(out->flow.src.bytes, ip + 8, 16);
    __builtin_memcpy(out->flow.dst.bytes, ip + 24, 16);
  }
  out->flow.src_port = FastReadPort(h);
  out->flow.dst_port = FastReadPort(h + 2);
  if (proto == IPPROTO_TCP) out->tcp_flags = h[13];
  return true;
}

}  // namespace internal

// Parses one Ethernet frame. On a drop the status names the reason and the other fields hold
// whatever was parsed before it.
ParsedPacket ParsePacket(const uint8_t* data, size_t len);
inline void ParsePacket(const uint8_t* data, size_t len, ParsedPacket* out) {
  if (internal::ParseFast(data, len, out)) [[likely]] {
    return;
  }
  internal::ParsePacketGeneral(data, len, out);
}

}  // namespace lb

#endif  // LBNODE_DATAPLANE_CORE_PACKET_PARSER_H_
