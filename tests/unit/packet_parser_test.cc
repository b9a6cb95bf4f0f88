#include "dataplane/core/packet_parser.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/lib/packet_builder.h"

namespace lb {
namespace {

using testing::Bytes;
using testing::PacketBuilder;

// Parses a copy of `b` in a buffer of exactly b.size() bytes, so that ASan catches any read past
// the end of the frame.
ParsedPacket Parse(const Bytes& b) {
  auto exact = std::make_unique<uint8_t[]>(b.size() + (b.empty() ? 1 : 0));
  if (!b.empty()) std::memcpy(exact.get(), b.data(), b.size());
  return ParsePacket(exact.get(), b.size());
}

IpAddr A4(const std::string& s) { return IpAddr::FromV4Bytes(testing::V4(s).data()); }
IpAddr A6(const std::string& s) { return IpAddr::FromV6Bytes(testing::V6(s).data()); }

Bytes TcpV4(uint8_t flags = kTcpSyn) {
  return PacketBuilder()
      .Ether()
      .Ipv4("192.0.2.10", "203.0.113.1", IPPROTO_TCP, 61)
      .Tcp(40000, 80, flags)
      .Payload(10)
      .Finish();
}

TEST(PacketParser, Ipv4Tcp) {
  const ParsedPacket p = Parse(TcpV4(kTcpSyn | kTcpAck));
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.l3, L3Kind::kIpv4);
  EXPECT_EQ(p.ether_type, 0x0800);
  EXPECT_EQ(p.l3_offset, 14);
  EXPECT_EQ(p.l4_offset, 34);
  EXPECT_EQ(p.l3_end, 14 + 20 + 20 + 10);
  EXPECT_EQ(p.l4_proto, IPPROTO_TCP);
  EXPECT_EQ(p.ttl, 61);
  EXPECT_EQ(p.tcp_flags, kTcpSyn | kTcpAck);
  EXPECT_EQ(p.fragment, Fragment::kNone);
  EXPECT_FALSE(p.icmp_error);
  EXPECT_EQ(p.flow.family, IpFamily::kIpv4);
  EXPECT_EQ(p.flow.proto, IPPROTO_TCP);
  EXPECT_EQ(p.flow.src, A4("192.0.2.10"));
  EXPECT_EQ(p.flow.dst, A4("203.0.113.1"));
  EXPECT_EQ(ntohs(p.flow.src_port), 40000);
  EXPECT_EQ(ntohs(p.flow.dst_port), 80);
}

TEST(PacketParser, Ipv4OptionsMoveTheL4Header) {
  const Bytes opts = {0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00};  // router alert, NOPs, EOL
  const ParsedPacket p = Parse(PacketBuilder()
                                   .Ether()
                                   .Ipv4("10.0.0.1", "10.0.0.2", IPPROTO_UDP, 64, opts)
                                   .Udp(5353, 53)
                                   .Finish());
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.l4_offset, 14 + 28);
  EXPECT_EQ(ntohs(p.flow.src_port), 5353);
  EXPECT_EQ(ntohs(p.flow.dst_port), 53);
}

TEST(PacketParser, EthernetPaddingIsNotPartOfTheDatagram) {
  Bytes b = PacketBuilder().Ether().Ipv4("10.0.0.1", "10.0.0.2", IPPROTO_UDP).Udp(1, 2).Finish();
  ASSERT_EQ(b.size(), 42u);
  b.resize(60, 0);  // minimum Ethernet frame
  const ParsedPacket p = Parse(b);
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.l3_end, 42);
}

TEST(PacketParser, VlanTags) {
  const Bytes one = PacketBuilder()
                        .Ether()
                        .Vlan(0x2064)
                        .Ipv4("10.0.0.1", "10.0.0.2", IPPROTO_TCP)
                        .Tcp(1000, 443)
                        .Finish();
  ParsedPacket p = Parse(one);
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.vlan_count, 1);
  EXPECT_EQ(p.vlan_tci, 0x2064);
  EXPECT_EQ(p.l3_offset, 18);
  EXPECT_EQ(p.l4_offset, 38);
  EXPECT_EQ(ntohs(p.flow.dst_port), 443);

  const Bytes two = PacketBuilder()
                        .Ether()
                        .Vlan(0x0100, 0x88a8)
                        .Vlan(0x0200)
                        .Ipv6("2001:db8::1", "2001:db8::2", IPPROTO_UDP)
                        .Udp(1, 2)
                        .Finish();
  p = Parse(two);
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.vlan_count, 2);
  EXPECT_EQ(p.vlan_tci, 0x0100);  // outermost
  EXPECT_EQ(p.l3_offset, 22);
  EXPECT_EQ(p.l3, L3Kind::kIpv6);

  const Bytes three = PacketBuilder()
                          .Ether()
                          .Vlan(1, 0x88a8)
                          .Vlan(2)
                          .Vlan(3)
                          .Ipv4("10.0.0.1", "10.0.0.2", IPPROTO_TCP)
                          .Tcp(1, 2)
                          .Finish();
  EXPECT_EQ(Parse(three).status, ParseStatus::kTooManyVlanTags);

  Bytes cut = PacketBuilder().Ether(0x8100).Finish();
  cut.push_back(0);
  cut.push_back(1);  // two of the tag's four bytes
  EXPECT_EQ(Parse(cut).status, ParseStatus::kTruncatedVlan);
}

TEST(PacketParser, ArpAndOtherEthertypes) {
  Bytes arp = PacketBuilder().Ether(0x0806).Finish();
  const Bytes body = {0, 1, 8, 0, 6, 4, 0, 1};  // Ethernet/IPv4, request
  arp.insert(arp.end(), body.begin(), body.end());
  arp.resize(arp.size() + 20, 0);  // sender/target hardware and protocol addresses
  ParsedPacket p = Parse(arp);
  EXPECT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.l3, L3Kind::kArp);
  arp.resize(arp.size() - 1);
  EXPECT_EQ(Parse(arp).status, ParseStatus::kTruncatedArp);
  arp.resize(14 + 7);
  EXPECT_EQ(Parse(arp).status, ParseStatus::kTruncatedArp);

  Bytes lldp = PacketBuilder().Ether(0x88cc).Payload(30).Finish();
  p = Parse(lldp);
  EXPECT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.l3, L3Kind::kOther);
  EXPECT_EQ(p.ether_type, 0x88cc);
}

TEST(PacketParser, Ipv4Fragments) {
  // First fragment: offset 0, more-fragments set; it carries the ports.
  Bytes first = PacketBuilder()
                    .Ether()
                    .Ipv4("10.0.0.1", "10.0.0.2", IPPROTO_UDP, 64, {}, 0x2000)
                    .Udp(7000, 53)
                    .Payload(16)
                    .Finish();
  // The UDP length describes the whole datagram, longer than this fragment.
  first[14 + 20 + 4] = 0x05;
  first[14 + 20 + 5] = 0xdc;
  ParsedPacket p = Parse(first);
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.fragment, Fragment::kFirst);
  EXPECT_EQ(ntohs(p.flow.src_port), 7000);

  const Bytes later = PacketBuilder()
                          .Ether()
                          .Ipv4("10.0.0.1", "10.0.0.2", IPPROTO_UDP, 64, {}, 0x2000 | 185)
                          .Payload(24)
                          .Finish();
  p = Parse(later);
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.fragment, Fragment::kLater);
  EXPECT_EQ(p.l4_proto, IPPROTO_UDP);
  EXPECT_EQ(p.flow.src_port, 0);
  EXPECT_EQ(p.flow.dst_port, 0);
  EXPECT_EQ(p.flow.src, A4("10.0.0.1"));

  // Last fragment (offset set, MF clear) is also a later fragment.
  const Bytes last = PacketBuilder()
                         .Ether()
                         .Ipv4("10.0.0.1", "10.0.0.2", IPPROTO_TCP, 64, {}, 100)
                         .Payload(8)
                         .Finish();
  EXPECT_EQ(Parse(last).fragment, Fragment::kLater);

  // A first fragment too short for the TCP header (the RFC 1858 tiny-fragment attack).
  const Bytes tiny = PacketBuilder()
                         .Ether()
                         .Ipv4("10.0.0.1", "10.0.0.2", IPPROTO_TCP, 64, {}, 0x2000)
                         .Payload(8)
                         .Finish();
  EXPECT_EQ(Parse(tiny).status, ParseStatus::kTruncatedTcp);
}

TEST(PacketParser, Ipv6WithExtensionHeaders) {
  const Bytes b = PacketBuilder()
                      .Ether()
                      .Ipv6("2001:db8::10", "2001:db8:100::1", IPPROTO_HOPOPTS, 33)
                      .Ipv6Ext(IPPROTO_DSTOPTS)
                      .Ipv6Ext(IPPROTO_ROUTING, 2)
                      .Ipv6Ext(IPPROTO_TCP)
                      .Tcp(50000, 443, kTcpAck)
                      .Finish();
  const ParsedPacket p = Parse(b);
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.l3, L3Kind::kIpv6);
  EXPECT_EQ(p.ttl, 33);
  EXPECT_EQ(p.l4_proto, IPPROTO_TCP);
  EXPECT_EQ(p.l4_offset, 14 + 40 + 8 + 24 + 8);
  EXPECT_EQ(p.flow.family, IpFamily::kIpv6);
  EXPECT_EQ(p.flow.src, A6("2001:db8::10"));
  EXPECT_EQ(p.flow.dst, A6("2001:db8:100::1"));
  EXPECT_EQ(ntohs(p.flow.src_port), 50000);
  EXPECT_EQ(p.tcp_flags, kTcpAck);
}

TEST(PacketParser, Ipv6Fragments) {
  const Bytes first = PacketBuilder()
                          .Ether()
                          .Ipv6("2001:db8::1", "2001:db8::2", IPPROTO_FRAGMENT)
                          .Ipv6Fragment(IPPROTO_UDP, 0, true)
                          .Udp(1234, 53)
                          .Payload(32)
                          .Finish();
  ParsedPacket p = Parse(first);
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.fragment, Fragment::kFirst);
  EXPECT_EQ(ntohs(p.flow.dst_port), 53);

  const Bytes later = PacketBuilder()
                          .Ether()
                          .Ipv6("2001:db8::1", "2001:db8::2", IPPROTO_FRAGMENT)
                          .Ipv6Fragment(IPPROTO_UDP, 5, false)
                          .Payload(40)
                          .Finish();
  p = Parse(later);
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.fragment, Fragment::kLater);
  EXPECT_EQ(p.l4_proto, IPPROTO_UDP);
  EXPECT_EQ(p.flow.src_port, 0);

  // An atomic fragment (offset 0, no more fragments) is a whole packet.
  const Bytes atomic = PacketBuilder()
                           .Ether()
                           .Ipv6("2001:db8::1", "2001:db8::2", IPPROTO_FRAGMENT)
                           .Ipv6Fragment(IPPROTO_TCP, 0, false)
                           .Tcp(1, 2)
                           .Finish();
  p = Parse(atomic);
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.fragment, Fragment::kNone);
  EXPECT_EQ(ntohs(p.flow.dst_port), 2);
}

TEST(PacketParser, Ipv6ExtensionChainLimits) {
  PacketBuilder b;
  b.Ether().Ipv6("2001:db8::1", "2001:db8::2", IPPROTO_DSTOPTS);
  for (size_t i = 0; i < kMaxIpv6ExtHeaders; ++i) b.Ipv6Ext(IPPROTO_DSTOPTS);
  b.Ipv6Ext(IPPROTO_TCP).Tcp(1, 2);
  EXPECT_EQ(Parse(b.Finish()).status, ParseStatus::kTooManyIpv6ExtHeaders);

  // The extension header claims more bytes than the payload has.
  Bytes cut = PacketBuilder()
                  .Ether()
                  .Ipv6("2001:db8::1", "2001:db8::2", IPPROTO_HOPOPTS)
                  .Ipv6Ext(IPPROTO_TCP, 3)
                  .Finish();
  cut[14 + 40 + 1] = 10;
  EXPECT_EQ(Parse(cut).status, ParseStatus::kTruncatedIpv6ExtHeader);

  // No next header: a valid packet with nothing after the IPv6 header.
  const ParsedPacket none =
      Parse(PacketBuilder().Ether().Ipv6("2001:db8::1", "2001:db8::2", IPPROTO_NONE).Finish());
  EXPECT_EQ(none.status, ParseStatus::kOk);
  EXPECT_EQ(none.l4_proto, IPPROTO_NONE);
}

TEST(PacketParser, IcmpEchoIsNotAnError) {
  const ParsedPacket p = Parse(PacketBuilder()
                                   .Ether()
                                   .Ipv4("192.0.2.1", "203.0.113.1", IPPROTO_ICMP)
                                   .Icmp(8, 0, 0x00010001)
                                   .Payload(56)
                                   .Finish());
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.icmp_type, 8);
  EXPECT_FALSE(p.icmp_error);
  EXPECT_EQ(p.flow.dst, A4("203.0.113.1"));
}

// A router on the path from a backend to the client sends "fragmentation needed" to the VIP
// (the source of the backend's reply). The parser must hand back the client's flow to the VIP.
TEST(PacketParser, IcmpFragmentationNeededCarriesTheClientFlow) {
  const Bytes reply = PacketBuilder()
                          .Ether()
                          .Ipv4("203.0.113.1", "192.0.2.10", IPPROTO_TCP)
                          .Tcp(80, 40000, kTcpAck)
                          .Payload(1400)
                          .Finish();
  const Bytes quoted(reply.begin() + 14, reply.begin() + 14 + 20 + 8);
  const ParsedPacket p = Parse(PacketBuilder()
                                   .Ether()
                                   .Ipv4("198.51.100.7", "203.0.113.1", IPPROTO_ICMP)
                                   .Icmp(3, 4, 1400)
                                   .Raw(quoted)
                                   .Finish());
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_TRUE(p.icmp_error);
  EXPECT_EQ(p.icmp_type, 3);
  EXPECT_EQ(p.icmp_code, 4);
  EXPECT_EQ(p.inner_l3_offset, 14 + 20 + 8);
  EXPECT_EQ(p.flow.src, A4("192.0.2.10"));
  EXPECT_EQ(p.flow.dst, A4("203.0.113.1"));
  EXPECT_EQ(ntohs(p.flow.src_port), 40000);
  EXPECT_EQ(ntohs(p.flow.dst_port), 80);
  EXPECT_EQ(p.flow.proto, IPPROTO_TCP);
  // Same key as the client's own packets, so the same connection-table entry and backend.
  const ParsedPacket client = Parse(PacketBuilder()
                                        .Ether()
                                        .Ipv4("192.0.2.10", "203.0.113.1", IPPROTO_TCP)
                                        .Tcp(40000, 80, kTcpAck)
                                        .Finish());
  EXPECT_EQ(p.flow, client.flow);
}

TEST(PacketParser, Icmpv6PacketTooBigCarriesTheClientFlow) {
  const Bytes reply = PacketBuilder()
                          .Ether()
                          .Ipv6("2001:db8:100::1", "2001:db8::10", IPPROTO_TCP)
                          .Tcp(443, 50000, kTcpAck)
                          .Payload(1300)
                          .Finish();
  const Bytes quoted(reply.begin() + 14, reply.begin() + 14 + 40 + 20 + 100);
  const ParsedPacket p = Parse(PacketBuilder()
                                   .Ether()
                                   .Ipv6("2001:db8:ffff::1", "2001:db8:100::1", IPPROTO_ICMPV6)
                                   .Icmp(2, 0, 1280)
                                   .Raw(quoted)
                                   .Finish());
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_TRUE(p.icmp_error);
  EXPECT_EQ(p.flow.family, IpFamily::kIpv6);
  EXPECT_EQ(p.flow.src, A6("2001:db8::10"));
  EXPECT_EQ(p.flow.dst, A6("2001:db8:100::1"));
  EXPECT_EQ(ntohs(p.flow.src_port), 50000);
  EXPECT_EQ(ntohs(p.flow.dst_port), 443);
}

TEST(PacketParser, IcmpErrorWithBadInnerPacket) {
  const Bytes inner =
      PacketBuilder().Ether().Ipv4("203.0.113.1", "192.0.2.10", IPPROTO_UDP).Udp(53, 3333).Finish();
  // Only the IP header and two bytes of the UDP header quoted: no destination port.
  const Bytes short_quote(inner.begin() + 14, inner.begin() + 14 + 22);
  EXPECT_EQ(Parse(PacketBuilder()
                      .Ether()
                      .Ipv4("198.51.100.7", "203.0.113.1", IPPROTO_ICMP)
                      .Icmp(11, 0)
                      .Raw(short_quote)
                      .Finish())
                .status,
            ParseStatus::kTruncatedIcmpInner);
  // An IPv6 header quoted inside an ICMPv4 error.
  const Bytes v6 =
      PacketBuilder().Ether().Ipv6("2001:db8::1", "2001:db8::2", IPPROTO_UDP).Udp(1, 2).Finish();
  EXPECT_EQ(Parse(PacketBuilder()
                      .Ether()
                      .Ipv4("198.51.100.7", "203.0.113.1", IPPROTO_ICMP)
                      .Icmp(3, 1)
                      .Raw(Bytes(v6.begin() + 14, v6.end()))
                      .Finish())
                .status,
            ParseStatus::kBadIcmpInner);
  // The ICMP header itself cut short.
  Bytes icmp = PacketBuilder()
                   .Ether()
                   .Ipv4("198.51.100.7", "203.0.113.1", IPPROTO_ICMP)
                   .Payload({3, 4, 0, 0})
                   .Finish();
  EXPECT_EQ(Parse(icmp).status, ParseStatus::kTruncatedIcmp);
}

// Katran-style fixture table: description, frame, expected verdict.
struct MalformedCase {
  const char* description;
  Bytes frame;
  ParseStatus expected;
};

std::vector<MalformedCase> MalformedCases() {
  std::vector<MalformedCase> cases;
  auto with = [](Bytes b, size_t off, uint8_t v) {
    b[off] = v;
    return b;
  };
  const Bytes tcp4 = TcpV4();
  const Bytes tcp6 =
      PacketBuilder().Ether().Ipv6("2001:db8::1", "2001:db8::2", IPPROTO_TCP).Tcp(1, 2).Finish();
  const Bytes udp4 =
      PacketBuilder().Ether().Ipv4("10.0.0.1", "10.0.0.2", IPPROTO_UDP).Udp(1, 2).Finish();
  cases.push_back({"empty frame", {}, ParseStatus::kTruncatedEthernet});
  cases.push_back({"13 bytes", Bytes(13, 0), ParseStatus::kTruncatedEthernet});
  cases.push_back({"IPv4 ethertype, 19 bytes of header",
                   Bytes(tcp4.begin(), tcp4.begin() + 14 + 19), ParseStatus::kTruncatedIpv4});
  cases.push_back({"IPv4 version 6", with(tcp4, 14, 0x65), ParseStatus::kBadIpv4Version});
  cases.push_back({"IHL 4", with(tcp4, 14, 0x44), ParseStatus::kBadIpv4Ihl});
  cases.push_back({"IHL 15 beyond frame", Bytes(tcp4.begin(), tcp4.begin() + 14 + 40),
                   ParseStatus::kBadIpv4Ihl});
  cases.back().frame[14] = 0x4f;
  cases.push_back(
      {"total length 19", with(with(tcp4, 16, 0), 17, 19), ParseStatus::kBadIpv4TotalLength});
  cases.push_back(
      {"total length beyond frame", with(tcp4, 16, 0x05), ParseStatus::kBadIpv4TotalLength});
  cases.push_back(
      {"TCP data offset 4", with(tcp4, 14 + 20 + 12, 0x40), ParseStatus::kBadTcpDataOffset});
  cases.push_back({"TCP data offset beyond datagram", with(tcp4, 14 + 20 + 12, 0xf0),
                   ParseStatus::kBadTcpDataOffset});
  cases.push_back({"UDP length 7", with(udp4, 14 + 20 + 5, 7), ParseStatus::kBadUdpLength});
  cases.push_back(
      {"UDP length beyond datagram", with(udp4, 14 + 20 + 5, 9), ParseStatus::kBadUdpLength});
  cases.push_back({"IPv6 39 bytes of header", Bytes(tcp6.begin(), tcp6.begin() + 14 + 39),
                   ParseStatus::kTruncatedIpv6});
  cases.push_back({"IPv6 version 4", with(tcp6, 14, 0x40), ParseStatus::kBadIpv6Version});
  cases.push_back({"IPv6 payload length beyond frame", with(tcp6, 14 + 4, 0x10),
                   ParseStatus::kBadIpv6PayloadLength});
  cases.push_back(
      {"IPv6 TCP cut by payload length", with(tcp6, 14 + 5, 19), ParseStatus::kTruncatedTcp});
  cases.push_back({"frame over 64 KiB", Bytes(70000, 0), ParseStatus::kFrameTooLong});
  return cases;
}

TEST(PacketParser, MalformedFixtures) {
  for (const MalformedCase& c : MalformedCases()) {
    const ParsedPacket p = Parse(c.frame);
    EXPECT_EQ(p.status, c.expected) << c.description << ": got " << ParseStatusName(p.status);
  }
}

// Every prefix of a valid packet that cuts into the IP datagram must be a named drop, and the
// parse must stay inside the prefix (ASan checks the latter in the sanitizer build).
TEST(PacketParser, EveryTruncationIsADrop) {
  const std::vector<Bytes> frames = {
      TcpV4(),
      PacketBuilder()
          .Ether()
          .Vlan(7)
          .Ipv6("2001:db8::1", "2001:db8::2", IPPROTO_HOPOPTS)
          .Ipv6Ext(IPPROTO_FRAGMENT)
          .Ipv6Fragment(IPPROTO_UDP, 0, true)
          .Udp(1, 2)
          .Payload(3)
          .Finish(),
  };
  for (const Bytes& full : frames) {
    ASSERT_EQ(Parse(full).status, ParseStatus::kOk);
    for (size_t n = 0; n < full.size(); ++n) {
      const ParsedPacket p = Parse(Bytes(full.begin(), full.begin() + n));
      EXPECT_NE(p.status, ParseStatus::kOk) << "prefix of " << n << " bytes";
    }
  }
}

void ExpectSameParse(const ParsedPacket& a, const ParsedPacket& b, const std::string& what) {
  EXPECT_EQ(a.status, b.status) << what;
  EXPECT_EQ(a.l3, b.l3) << what;
  EXPECT_EQ(a.vlan_count, b.vlan_count) << what;
  EXPECT_EQ(a.vlan_tci, b.vlan_tci) << what;
  EXPECT_EQ(a.ether_type, b.ether_type) << what;
  EXPECT_EQ(a.l3_offset, b.l3_offset) << what;
  EXPECT_EQ(a.l4_offset, b.l4_offset) << what;
  EXPECT_EQ(a.l3_end, b.l3_end) << what;
  EXPECT_EQ(a.l4_proto, b.l4_proto) << what;
  EXPECT_EQ(a.ttl, b.ttl) << what;
  EXPECT_EQ(a.fragment, b.fragment) << what;
  EXPECT_EQ(a.tcp_flags, b.tcp_flags) << what;
  EXPECT_EQ(a.icmp_type, b.icmp_type) << what;
  EXPECT_EQ(a.icmp_code, b.icmp_code) << what;
  EXPECT_EQ(a.icmp_error, b.icmp_error) << what;
  EXPECT_EQ(a.inner_l3_offset, b.inner_l3_offset) << what;
  EXPECT_EQ(a.flow, b.flow) << what << ": " << a.flow.ToString() << " vs " << b.flow.ToString();
}

// ParsePacket tries a fast path for plain TCP/UDP before the general parser: both must agree on
// every input. Seeds of every shape, each with every byte of its headers flipped in a few ways
// and every truncation, cover both sides of each fast-path condition.
TEST(PacketParser, FastPathMatchesGeneralParser) {
  std::vector<Bytes> seeds = {
      TcpV4(),
      PacketBuilder()
          .Ether()
          .Ipv4("192.0.2.1", "203.0.113.1", IPPROTO_UDP)
          .Udp(5, 53)
          .Payload(9)
          .Finish(),
      PacketBuilder()
          .Ether()
          .Ipv6("2001:db8::1", "2001:db8::2", IPPROTO_TCP)
          .Tcp(1, 443, kTcpAck)
          .Payload(4)
          .Finish(),
      PacketBuilder().Ether().Ipv6("2001:db8::1", "2001:db8::2", IPPROTO_UDP).Udp(7, 53).Finish(),
      PacketBuilder()
          .Ether()
          .Vlan(5)
          .Ipv4("192.0.2.1", "203.0.113.1", IPPROTO_TCP)
          .Tcp(1, 80, 2)
          .Finish(),
      PacketBuilder()
          .Ether()
          .Ipv6("2001:db8::1", "2001:db8::2", IPPROTO_FRAGMENT)
          .Ipv6Fragment(IPPROTO_UDP, 0, true)
          .Udp(1, 2)
          .Payload(3)
          .Finish(),
  };
  // Ethernet padding after a short datagram (a 64-byte minimum frame).
  Bytes padded =
      PacketBuilder().Ether().Ipv4("192.0.2.1", "203.0.113.1", IPPROTO_UDP).Udp(5, 53).Finish();
  padded.resize(60, 0);
  seeds.push_back(padded);
  size_t fast = 0;
  for (const Bytes& seed : seeds) {
    std::vector<Bytes> variants;
    for (size_t n = 0; n <= seed.size(); ++n) variants.emplace_back(seed.begin(), seed.begin() + n);
    for (size_t i = 12; i < std::min<size_t>(seed.size(), 80); ++i) {
      for (uint8_t x : {0x01, 0x10, 0x40, 0x80, 0xff}) {
        Bytes v = seed;
        v[i] ^= x;
        variants.push_back(v);
      }
    }
    for (const Bytes& v : variants) {
      ParsedPacket general;
      internal::ParsePacketGeneral(v.data(), v.size(), &general);
      const ParsedPacket p = Parse(v);
      ExpectSameParse(p, general, "frame of " + std::to_string(v.size()) + " bytes");
      fast += p.status == ParseStatus::kOk && p.vlan_count == 0 && p.fragment == Fragment::kNone;
    }
  }
  EXPECT_GT(fast, 100u);  // the comparison did exercise the fast path
}

TEST(PacketParser, StatusNames) {
  EXPECT_STREQ(ParseStatusName(ParseStatus::kOk), "ok");
  EXPECT_STREQ(ParseStatusName(ParseStatus::kTruncatedIpv4), "truncated_ipv4");
  EXPECT_STREQ(ParseStatusName(ParseStatus::kBadIpv6PayloadLength), "bad_ipv6_payload_length");
  EXPECT_STREQ(ParseStatusName(ParseStatus::kTruncatedIcmpInner), "truncated_icmp_inner");
  for (int i = 0; i < static_cast<int>(ParseStatus::kCount); ++i) {
    EXPECT_GT(std::strlen(ParseStatusDescription(static_cast<ParseStatus>(i))), 1u);
  }
}

}  // namespace
}  // namespace lb
