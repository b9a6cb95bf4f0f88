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

// A precomputed outer header for one backend of a TUN/GUE VIP: Ethernet (untagged) + outer IP
// (+ UDP) with every per-packet field (lengths, TOS, flow label, GUE source port, inner protocol,
// IPv4 checksum) left zero. EncapTunnelWithTemplate copies it and patches those fields, the IPv4
// checksum incrementally from `ip_sum`. Built off the hot path (with the snapshot).
struct TunnelTemplate {
  uint8_t bytes[64];
  uint8_t header_len = 0;  // Ethernet + overhead; 0 = no template (use EncapTunnel)
  uint8_t overhead = 0;    // EncapOverhead(outer family, gue)
  bool outer_v4 = true;
  bool gue = false;
  uint32_t ip_sum = 0;  // IPv4: folded one's complement sum of the outer header as templated
};

// Fills `out` for tunnels described by `t` (flow_hash unused). GUE over IPv6 needs a checksum
// over the whole payload and gets no template (header_len stays 0), nor does an outer family
// other than IPv4/IPv6.
void BuildTunnelTemplate(const TunnelParams& t, TunnelTemplate* out);

// EncapTunnel for an untagged frame (p.l3_offset == 14) with a template built from the same
// TunnelParams: the same output bytes and the same failures, in a fraction of the work.
bool EncapTunnelWithTemplate(Frame* f, const ParsedPacket& p, const TunnelTemplate& t,
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

}  // namespace lb

#endif  // LBNODE_DATAPLANE_CORE_REWRITE_H_
