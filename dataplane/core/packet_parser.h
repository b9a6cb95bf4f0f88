// Packet parser: classifies one Ethernet frame and extracts what the forwarding plane needs
// (layer offsets, the flow's 5-tuple, fragment state, TCP flags, ICMP error contents). DPDK-free:
// it takes bytes and a length, so unit tests, the fuzzer and pcap tools share it. Pure function of
// its input: any thread may call it.
//
// Invariant: the parser never reads outside [data, data + len). Every truncated or inconsistent
// header yields a ParseStatus naming the reason, which the worker counts as a drop.
#ifndef LBNODE_DATAPLANE_CORE_PACKET_PARSER_H_
#define LBNODE_DATAPLANE_CORE_PACKET_PARSER_H_

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

// Parses one Ethernet frame. On a drop the status names the reason and the other fields hold
// whatever was parsed before it.
ParsedPacket ParsePacket(const uint8_t* data, size_t len);
void ParsePacket(const uint8_t* data, size_t len, ParsedPacket* out);

namespace internal {
// The general parser alone, without the fast path for plain TCP/UDP that ParsePacket tries
// first. Both must give the same result for every input: tests compare them.
void ParsePacketGeneral(const uint8_t* data, size_t len, ParsedPacket* out);
}  // namespace internal

}  // namespace lb

#endif  // LBNODE_DATAPLANE_CORE_PACKET_PARSER_H_
