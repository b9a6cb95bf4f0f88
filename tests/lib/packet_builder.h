// PacketBuilder: builds Ethernet frames layer by layer for tests (parser units, pipeline tests,
// fuzz seeds). Lengths and checksums are filled in by Finish() unless a test overrides them to
// build a malformed packet on purpose. Test-only; not thread-safe.
#ifndef LBNODE_TESTS_LIB_PACKET_BUILDER_H_
#define LBNODE_TESTS_LIB_PACKET_BUILDER_H_

#include <cstdint>
#include <string>
#include <vector>

namespace lb::testing {

using Bytes = std::vector<uint8_t>;

// Address helpers: "10.0.0.1" / "2001:db8::1" to network-order bytes.
Bytes V4(const std::string& s);
Bytes V6(const std::string& s);

class PacketBuilder {
 public:
  PacketBuilder& Ether(uint16_t ether_type = 0, const Bytes& dst_mac = {},
                       const Bytes& src_mac = {});
  PacketBuilder& Vlan(uint16_t tci, uint16_t tpid = 0x8100);
  // IPv4 header; options appended as given (length must be a multiple of 4).
  PacketBuilder& Ipv4(const std::string& src, const std::string& dst, uint8_t proto,
                      uint8_t ttl = 64, const Bytes& options = {}, uint16_t frag_field = 0);
  PacketBuilder& Ipv6(const std::string& src, const std::string& dst, uint8_t next_header,
                      uint8_t hop_limit = 64);
  // A generic IPv6 extension header (hop-by-hop, routing, destination options): 8*len8+8 bytes.
  PacketBuilder& Ipv6Ext(uint8_t next_header, uint8_t len8 = 0);
  PacketBuilder& Ipv6Fragment(uint8_t next_header, uint16_t offset8, bool more);
  PacketBuilder& Tcp(uint16_t sport, uint16_t dport, uint8_t flags = 0x02,
                     const Bytes& options = {});
  PacketBuilder& Udp(uint16_t sport, uint16_t dport);
  PacketBuilder& Icmp(uint8_t type, uint8_t code, uint32_t rest = 0);
  PacketBuilder& Payload(const Bytes& data);
  PacketBuilder& Payload(size_t n, uint8_t fill = 0xab);
  // Appends the bytes of another finished packet from its L3 header on (ICMP error quotes).
  PacketBuilder& Raw(const Bytes& data);

  // Fixes ethertypes, IP lengths, UDP length and checksums; returns the frame.
  Bytes Finish();

 private:
  enum class Kind { kEther, kVlan, kIpv4, kIpv6, kIpv6Ext, kTcp, kUdp, kIcmp, kIcmp6, kRaw };
  struct Layer {
    Kind kind;
    size_t offset;
  };
  Bytes buf_;
  std::vector<Layer> layers_;
};

// Offset of the L3 header in a frame built with one Ether() and `vlans` tags.
inline size_t L3Offset(size_t vlans = 0) { return 14 + 4 * vlans; }

// RFC 1071 checksum over bytes (no pseudo-header).
uint16_t InternetChecksum(const uint8_t* data, size_t len, uint32_t initial = 0);

}  // namespace lb::testing

#endif  // LBNODE_TESTS_LIB_PACKET_BUILDER_H_
