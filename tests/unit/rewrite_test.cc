#include "dataplane/core/rewrite.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/lib/packet_builder.h"

namespace lb {
namespace {

using testing::Bytes;
using testing::InternetChecksum;
using testing::PacketBuilder;

constexpr uint32_t kHeadroom = 128;
constexpr uint8_t kCanary = 0xee;
constexpr uint8_t kPad = 0x5a;

const Bytes kInDst = {0x02, 0, 0, 0, 0, 0x01};  // the LB's MAC, as the client side sent it
const Bytes kInSrc = {0x02, 0, 0, 0, 0, 0x02};  // the router's
const MacAddr kSrcMac = {{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01}};
const MacAddr kDstMac = {{0x02, 0x11, 0x22, 0x33, 0x44, 0x02}};

IpAddr A4(const std::string& s) { return IpAddr::FromV4Bytes(testing::V4(s).data()); }
IpAddr A6(const std::string& s) { return IpAddr::FromV6Bytes(testing::V6(s).data()); }

uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
Bytes Slice(const Bytes& b, size_t from, size_t to) {
  return Bytes(b.begin() + static_cast<ptrdiff_t>(from), b.begin() + static_cast<ptrdiff_t>(to));
}
Bytes MacBytes(const MacAddr& m) { return Bytes(m.bytes, m.bytes + 6); }

ParsedPacket Parse(const Bytes& b) { return ParsePacket(b.data(), b.size()); }

// A frame at the end of an exactly sized heap buffer (ASan sees any write past it), preceded by
// `headroom` canary bytes (the tests see writes into headroom the rewrite did not claim).
class Buffer {
 public:
  explicit Buffer(const Bytes& frame, uint32_t headroom = kHeadroom)
      : size_(headroom + frame.size()), mem_(new uint8_t[size_]) {
    std::memset(mem_.get(), kCanary, headroom);
    std::memcpy(mem_.get() + headroom, frame.data(), frame.size());
    frame_ = {mem_.get() + headroom, static_cast<uint32_t>(frame.size()), headroom};
  }
  Frame* frame() { return &frame_; }
  const uint8_t* start() const { return mem_.get(); }
  // The frame as the rewrite left it.
  Bytes Out() const { return Bytes(frame_.data, frame_.data + frame_.len); }
  // The whole buffer, headroom included.
  Bytes All() const { return Bytes(mem_.get(), mem_.get() + size_); }
  bool HeadroomIntact() const {
    for (const uint8_t* q = mem_.get(); q < frame_.data; ++q) {
      if (*q != kCanary) return false;
    }
    return true;
  }

 private:
  size_t size_;
  std::unique_ptr<uint8_t[]> mem_;
  Frame frame_;
};

// ---- Checksums, recomputed from scratch ----------------------------------------------------

uint32_t SumWords(const uint8_t* d, size_t len) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < len; i += 2) s += Get16(d + i);
  if (len & 1) s += static_cast<uint32_t>(d[len - 1]) << 8;
  return s;
}

uint16_t Ipv4HeaderChecksum(const uint8_t* ip) {
  Bytes h(ip, ip + (ip[0] & 0x0f) * 4);
  h[10] = h[11] = 0;
  return InternetChecksum(h.data(), h.size());
}

size_t L4ChecksumOffset(uint8_t proto) {
  return proto == IPPROTO_TCP ? 16 : proto == IPPROTO_UDP ? 6 : 2;  // ICMP, ICMPv6
}

// The checksum of the L4 segment of `p` (TCP, UDP, ICMP, ICMPv6; pseudo-header from the IP
// header), computed with the field zeroed, before the UDP rule "0 is sent as 0xffff".
uint16_t RawL4Checksum(const Bytes& frame, const ParsedPacket& p) {
  const uint8_t* ip = frame.data() + p.l3_offset;
  Bytes seg = Slice(frame, p.l4_offset, p.l3_end);
  const size_t off = L4ChecksumOffset(p.l4_proto);
  seg[off] = seg[off + 1] = 0;
  uint32_t pseudo = 0;
  if (p.l4_proto != IPPROTO_ICMP) {
    pseudo = p.l3 == L3Kind::kIpv4 ? SumWords(ip + 12, 8) : SumWords(ip + 8, 32);
    pseudo += p.l4_proto + static_cast<uint32_t>(seg.size());
  }
  return InternetChecksum(seg.data(), seg.size(), pseudo);
}

uint16_t L4Checksum(const Bytes& frame, const ParsedPacket& p) {
  const uint16_t c = RawL4Checksum(frame, p);
  return p.l4_proto == IPPROTO_UDP && c == 0 ? 0xffff : c;
}

uint16_t StoredL4Checksum(const Bytes& frame, const ParsedPacket& p) {
  return Get16(frame.data() + p.l4_offset + L4ChecksumOffset(p.l4_proto));
}

void FixIpv4Checksum(Bytes* frame, size_t l3) {
  Put16(frame->data() + l3 + 10, Ipv4HeaderChecksum(frame->data() + l3));
}

// ---- Input frames --------------------------------------------------------------------------

// Ether + `vlans` tags (802.1ad outer tag when there are two), then the IP layers `ip` adds.
template <typename Fn>
Bytes Build(int vlans, Fn ip) {
  PacketBuilder b;
  b.Ether(0, kInDst, kInSrc);
  if (vlans == 1) b.Vlan(0x0064);
  if (vlans == 2) b.Vlan(0x0100, 0x88a8).Vlan(0x2064);
  ip(b);
  return b.Finish();
}

Bytes TcpV4(int vlans = 0, uint8_t ttl = 61) {
  return Build(vlans, [&](PacketBuilder& b) {
    b.Ipv4("192.0.2.10", "203.0.113.1", IPPROTO_TCP, ttl).Tcp(40000, 443, 0x18).Payload(37, 0x3c);
  });
}
Bytes UdpV4(int vlans = 0) {
  return Build(vlans, [](PacketBuilder& b) {
    b.Ipv4("192.0.2.10", "203.0.113.1", IPPROTO_UDP, 61).Udp(5353, 53).Payload(21, 0x71);
  });
}
Bytes TcpV6(int vlans = 0, uint8_t hops = 61) {
  return Build(vlans, [&](PacketBuilder& b) {
    b.Ipv6("2001:db8:1::10", "2001:db8:2::1", IPPROTO_TCP, hops)
        .Tcp(40000, 443, 0x18)
        .Payload(33, 0x3c);
  });
}
Bytes UdpV6(int vlans = 0) {
  return Build(vlans, [](PacketBuilder& b) {
    b.Ipv6("2001:db8:1::10", "2001:db8:2::1", IPPROTO_UDP, 61).Udp(5353, 53).Payload(19, 0x71);
  });
}

// Sets the IPv4 TOS / IPv6 traffic class of the frame's IP header (checksum kept valid).
void SetTos(Bytes* f, uint8_t tos) {
  const ParsedPacket p = Parse(*f);
  uint8_t* ip = f->data() + p.l3_offset;
  if (p.l3 == L3Kind::kIpv4) {
    ip[1] = tos;
    FixIpv4Checksum(f, p.l3_offset);
  } else {
    ip[0] = static_cast<uint8_t>(0x60 | tos >> 4);
    ip[1] = static_cast<uint8_t>(tos << 4 | (ip[1] & 0x0f));
  }
}

Bytes Padded(Bytes f, size_t n) {
  f.insert(f.end(), n, kPad);
  return f;
}

Bytes Arp() {
  Bytes arp = PacketBuilder().Ether(0x0806).Finish();
  const Bytes body = {0, 1, 8, 0, 6, 4, 0, 1};
  arp.insert(arp.end(), body.begin(), body.end());
  arp.resize(arp.size() + 20, 0x01);
  return arp;
}

Bytes Lldp() { return PacketBuilder().Ether(0x88cc).Payload(46).Finish(); }

// Applies `fn` to a frame expected to be rejected; checks the whole buffer (headroom included),
// the data pointer, length and headroom are exactly as before.
template <typename Fn>
void ExpectRejected(const Bytes& in, Fn fn, uint32_t headroom = kHeadroom) {
  Buffer buf(in, headroom);
  const Bytes before = buf.All();
  const ParsedPacket p = Parse(in);
  EXPECT_FALSE(fn(buf.frame(), p));
  EXPECT_EQ(buf.All(), before);
  EXPECT_EQ(buf.frame()->data, buf.start() + headroom);
  EXPECT_EQ(buf.frame()->len, in.size());
  EXPECT_EQ(buf.frame()->headroom, headroom);
}

// ---- MacAddr, EncapOverhead, ChecksumAdjust ------------------------------------------------

TEST(MacAddr, Equality) {
  MacAddr a = kSrcMac;
  EXPECT_TRUE(a == kSrcMac);
  EXPECT_FALSE(a == kDstMac);
  a.bytes[5] ^= 1;
  EXPECT_FALSE(a == kSrcMac);
  a = kSrcMac;
  a.bytes[0] ^= 0x80;
  EXPECT_FALSE(a == kSrcMac);
}

TEST(EncapOverhead, PerFamilyAndGue) {
  EXPECT_EQ(EncapOverhead(IpFamily::kIpv4, false), 20u);
  EXPECT_EQ(EncapOverhead(IpFamily::kIpv4, true), 28u);
  EXPECT_EQ(EncapOverhead(IpFamily::kIpv6, false), 40u);
  EXPECT_EQ(EncapOverhead(IpFamily::kIpv6, true), 48u);
}

TEST(ChecksumAdjust, Rfc1624Example) {
  // RFC 1624 section 4: m = 0x5555 becomes 0x3285 under HC = 0xDD2F; the answer is 0x0000
  // (eqn 2 of RFC 1141 wrongly gives 0xFFFF).
  const uint8_t old_bytes[] = {0x55, 0x55};
  const uint8_t new_bytes[] = {0x32, 0x85};
  EXPECT_EQ(ChecksumAdjust(0xdd2f, old_bytes, new_bytes, 2), 0x0000);
  EXPECT_EQ(ChecksumAdjust(0x0000, new_bytes, old_bytes, 2), 0xdd2f);
}

TEST(ChecksumAdjust, TtlDecrementOfARealHeader) {
  Bytes f = TcpV4();
  uint8_t* ip = f.data() + 14;
  const uint8_t old_word[] = {ip[8], ip[9]};
  const uint8_t new_word[] = {static_cast<uint8_t>(ip[8] - 1), ip[9]};
  const uint16_t adjusted = ChecksumAdjust(Get16(ip + 10), old_word, new_word, 2);
  ip[8] = new_word[0];
  EXPECT_EQ(adjusted, Ipv4HeaderChecksum(ip));
}

TEST(ChecksumAdjust, MatchesFullRecomputationOnRandomData) {
  std::mt19937 rng(0x1624);
  // Bytes biased towards 0x00 and 0xff, where one's complement corner cases (carries, the two
  // zeros) live.
  auto byte = [&rng]() -> uint8_t {
    switch (rng() % 4) {
      case 0:
        return 0x00;
      case 1:
        return 0xff;
      default:
        return static_cast<uint8_t>(rng());
    }
  };
  int checked = 0;
  for (int i = 0; i < 4000; ++i) {
    const size_t len = 2 * (2 + rng() % 40);  // 4..82 bytes
    Bytes data(len);
    for (uint8_t& b : data) b = byte();
    // Never all zero (the first word is never edited): then the true checksum is never 0xffff and
    // eqn 3 must match recomputation exactly, 0x0000 included.
    data[0] = 0x45;
    uint16_t csum = InternetChecksum(data.data(), len);
    for (int edit = 0; edit < 3; ++edit) {  // successive adjustments
      const size_t off = 2 + 2 * (rng() % ((len - 2) / 2));
      const size_t n = 2 * (1 + rng() % ((len - off) / 2));
      Bytes repl(n);
      for (uint8_t& b : repl) b = byte();
      csum = ChecksumAdjust(csum, &data[off], repl.data(), n);
      std::copy(repl.begin(), repl.end(), data.begin() + static_cast<ptrdiff_t>(off));
      ASSERT_EQ(csum, InternetChecksum(data.data(), len))
          << "case " << i << " edit " << edit << " off " << off << " n " << n;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 12000);
}

// ---- DR ------------------------------------------------------------------------------------

TEST(RewriteDr, RewritesOnlyTheMacs) {
  for (const Bytes& in : {TcpV4(), TcpV6(1), UdpV4(2)}) {
    Buffer buf(in);
    RewriteDr(buf.frame(), kSrcMac, kDstMac);
    const Bytes out = buf.Out();
    ASSERT_EQ(out.size(), in.size());
    EXPECT_EQ(Slice(out, 0, 6), MacBytes(kDstMac));
    EXPECT_EQ(Slice(out, 6, 12), MacBytes(kSrcMac));
    EXPECT_EQ(Slice(out, 12, out.size()), Slice(in, 12, in.size()));
    EXPECT_EQ(buf.frame()->headroom, kHeadroom);
    EXPECT_TRUE(buf.HeadroomIntact());
  }
}

// ---- TUN / GUE -----------------------------------------------------------------------------

constexpr uint64_t kFlowHash = 0x123456789abcdef0ULL;
// 49152 + (kFlowHash >> 16) % 16384 = 49152 + 0x1abc.
constexpr uint16_t kExpectedGueSrcPort = 55996;
constexpr uint32_t kExpectedFlowLabel = 0xcdef0;  // low 20 bits of kFlowHash
constexpr uint8_t kInnerTos = 0xb9;               // DSCP EF, ECT(1)

TunnelParams Tunnel(IpFamily outer, bool gue) {
  TunnelParams t;
  t.src_mac = kSrcMac;
  t.dst_mac = kDstMac;
  t.outer_family = outer;
  if (outer == IpFamily::kIpv4) {
    t.outer_src = A4("198.51.100.1");
    t.outer_dst = A4("10.1.2.3");
  } else {
    t.outer_src = A6("2001:db8:ff::1");
    t.outer_dst = A6("2001:db8:be::7");
  }
  t.outer_ttl = 33;
  t.gue = gue;
  t.gue_dst_port = 6081;
  t.flow_hash = kFlowHash;
  return t;
}

struct TunCase {
  IpFamily inner;
  IpFamily outer;
  bool gue;
  int vlans;
};

std::string TunCaseName(const ::testing::TestParamInfo<TunCase>& info) {
  const TunCase& c = info.param;
  return std::string(c.inner == IpFamily::kIpv4 ? "V4" : "V6") + "In" +
         (c.outer == IpFamily::kIpv4 ? "V4" : "V6") + (c.gue ? "Gue" : "Ip") + "Vlans" +
         std::to_string(c.vlans);
}

std::vector<TunCase> AllTunCases() {
  std::vector<TunCase> cases;
  for (IpFamily inner : {IpFamily::kIpv4, IpFamily::kIpv6}) {
    for (IpFamily outer : {IpFamily::kIpv4, IpFamily::kIpv6}) {
      for (bool gue : {false, true}) {
        for (int vlans : {0, 1, 2}) cases.push_back({inner, outer, gue, vlans});
      }
    }
  }
  return cases;
}

class EncapTunnelTest : public ::testing::TestWithParam<TunCase> {};

// Checks everything a backend sees in `out`, the encapsulation of `in` (whose IP packet ends at
// in_p.l3_end; anything after is padding).
void ExpectTunnel(const Bytes& in, const Bytes& out, const TunnelParams& t) {
  const ParsedPacket in_p = Parse(in);
  ASSERT_EQ(in_p.status, ParseStatus::kOk);
  const bool outer_v4 = t.outer_family == IpFamily::kIpv4;
  const bool inner_v4 = in_p.l3 == L3Kind::kIpv4;
  const size_t l2 = in_p.l3_offset;
  const size_t overhead = (outer_v4 ? 20 : 40) + (t.gue ? 8 : 0);
  const size_t inner_len = in_p.l3_end - in_p.l3_offset;

  // Length: L2 + outer headers + the inner IP packet; Ethernet padding is gone.
  ASSERT_EQ(out.size(), l2 + overhead + inner_len);
  const ParsedPacket p = Parse(out);
  ASSERT_EQ(p.status, ParseStatus::kOk) << ParseStatusName(p.status);
  EXPECT_EQ(p.l3_end, out.size());

  // L2: new MACs; VLAN tags kept as they were, the outer header right after them.
  EXPECT_EQ(Slice(out, 0, 6), MacBytes(t.dst_mac));
  EXPECT_EQ(Slice(out, 6, 12), MacBytes(t.src_mac));
  EXPECT_EQ(p.vlan_count, in_p.vlan_count);
  EXPECT_EQ(p.vlan_tci, in_p.vlan_tci);
  EXPECT_EQ(Slice(out, 12, l2 - 2), Slice(in, 12, l2 - 2));  // TPIDs and TCIs
  EXPECT_EQ(p.l3_offset, l2);
  EXPECT_EQ(p.ether_type, outer_v4 ? 0x0800 : 0x86dd);
  EXPECT_EQ(p.l3, outer_v4 ? L3Kind::kIpv4 : L3Kind::kIpv6);

  // Outer IP header.
  const uint8_t* ip = out.data() + l2;
  const uint8_t* inner = in.data() + l2;
  const uint8_t tos = inner_v4 ? inner[1] : static_cast<uint8_t>(inner[0] << 4 | inner[1] >> 4);
  const uint8_t proto = t.gue ? IPPROTO_UDP : inner_v4 ? IPPROTO_IPIP : IPPROTO_IPV6;
  EXPECT_EQ(p.flow.family, t.outer_family);
  EXPECT_EQ(p.flow.src, t.outer_src);
  EXPECT_EQ(p.flow.dst, t.outer_dst);
  EXPECT_EQ(p.l4_proto, proto);
  EXPECT_EQ(p.ttl, t.outer_ttl);
  EXPECT_EQ(p.fragment, Fragment::kNone);
  if (outer_v4) {
    EXPECT_EQ(ip[0], 0x45);
    EXPECT_EQ(ip[1], tos);
    EXPECT_EQ(Get16(ip + 2), overhead + inner_len);
    EXPECT_EQ(Get16(ip + 4), 0);       // ID
    EXPECT_EQ(Get16(ip + 6), 0x4000);  // DF, offset 0
    EXPECT_EQ(Get16(ip + 10), Ipv4HeaderChecksum(ip));
  } else {
    EXPECT_EQ(ip[0] >> 4, 6);
    EXPECT_EQ(static_cast<uint8_t>(ip[0] << 4 | ip[1] >> 4), tos);
    const uint32_t label = static_cast<uint32_t>(ip[1] & 0x0f) << 16 | Get16(ip + 2);
    EXPECT_EQ(label, t.flow_hash & 0xfffff);
    EXPECT_EQ(Get16(ip + 4), overhead - 40 + inner_len);
  }

  // GUE: UDP with an entropy source port.
  if (t.gue) {
    EXPECT_EQ(p.l4_offset, l2 + overhead - 8);
    const uint8_t* udp = out.data() + p.l4_offset;
    const uint16_t sport = Get16(udp);
    EXPECT_EQ(sport, 49152 + (t.flow_hash >> 16) % 16384);
    EXPECT_GE(sport, 49152);
    EXPECT_EQ(ntohs(p.flow.src_port), sport);
    EXPECT_EQ(ntohs(p.flow.dst_port), t.gue_dst_port);
    EXPECT_EQ(Get16(udp + 4), 8 + inner_len);
    if (outer_v4) {
      EXPECT_EQ(Get16(udp + 6), 0);
    } else {
      EXPECT_NE(Get16(udp + 6), 0);
      EXPECT_EQ(Get16(udp + 6), L4Checksum(out, p));
    }
  } else {
    EXPECT_EQ(p.l4_offset, l2 + overhead);
  }

  // The inner IP packet, byte for byte.
  EXPECT_EQ(Slice(out, l2 + overhead, out.size()), Slice(in, l2, in_p.l3_end));
}

TEST_P(EncapTunnelTest, BuildsWhatTheBackendExpects) {
  const TunCase& c = GetParam();
  Bytes in = c.inner == IpFamily::kIpv4 ? TcpV4(c.vlans) : UdpV6(c.vlans);
  SetTos(&in, kInnerTos);
  in = Padded(in, 6);
  const ParsedPacket in_p = Parse(in);
  ASSERT_EQ(in_p.status, ParseStatus::kOk);
  ASSERT_EQ(in_p.l3_end + 6u, in.size());

  const TunnelParams t = Tunnel(c.outer, c.gue);
  Buffer buf(in);
  ASSERT_TRUE(EncapTunnel(buf.frame(), in_p, t));
  const size_t overhead = EncapOverhead(c.outer, c.gue);
  EXPECT_EQ(buf.frame()->data, buf.start() + kHeadroom - overhead);
  EXPECT_EQ(buf.frame()->headroom, kHeadroom - overhead);
  EXPECT_TRUE(buf.HeadroomIntact());
  ExpectTunnel(in, buf.Out(), t);
}

INSTANTIATE_TEST_SUITE_P(AllFamilies, EncapTunnelTest, ::testing::ValuesIn(AllTunCases()),
                         TunCaseName);

TEST(EncapTunnel, FixedFlowHashGivesKnownPortAndLabel) {
  const Bytes in = TcpV4();
  Buffer buf(in);
  ASSERT_TRUE(EncapTunnel(buf.frame(), Parse(in), Tunnel(IpFamily::kIpv6, true)));
  const Bytes out = buf.Out();
  const uint8_t* ip = out.data() + 14;
  EXPECT_EQ(static_cast<uint32_t>(ip[1] & 0x0f) << 16 | Get16(ip + 2), kExpectedFlowLabel);
  EXPECT_EQ(Get16(ip + 40), kExpectedGueSrcPort);
  EXPECT_EQ(Get16(ip + 42), 6081);
}

TEST(EncapTunnel, GueSourcePortSpreadsOverTheDynamicRange) {
  const Bytes in = TcpV4();
  const ParsedPacket in_p = Parse(in);
  TunnelParams t = Tunnel(IpFamily::kIpv4, true);
  std::vector<bool> seen(16384, false);
  size_t distinct = 0;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) {
    t.flow_hash = rng();
    Buffer buf(in);
    ASSERT_TRUE(EncapTunnel(buf.frame(), in_p, t));
    const uint16_t sport = Get16(buf.frame()->data + 14 + 20);
    ASSERT_GE(sport, 49152);
    if (!seen[sport - 49152]) ++distinct;
    seen[sport - 49152] = true;
  }
  EXPECT_GT(distinct, 190u);
}

TEST(EncapTunnel, DefaultGuePortIs6080) {
  const Bytes in = UdpV4();
  TunnelParams t = Tunnel(IpFamily::kIpv4, true);
  t.gue_dst_port = kGueDefaultPort;
  Buffer buf(in);
  ASSERT_TRUE(EncapTunnel(buf.frame(), Parse(in), t));
  EXPECT_EQ(Get16(buf.frame()->data + 14 + 20 + 2), 6080);
}

TEST(EncapTunnel, CutsPaddingOfAMinimumSizeFrame) {
  const Bytes small =
      PacketBuilder().Ether().Ipv4("192.0.2.10", "203.0.113.1", IPPROTO_UDP).Udp(1, 2).Finish();
  ASSERT_EQ(small.size(), 42u);
  Bytes in = small;
  in.resize(60, 0);  // minimum Ethernet frame, zero padding
  for (IpFamily outer : {IpFamily::kIpv4, IpFamily::kIpv6}) {
    for (bool gue : {false, true}) {
      Buffer buf(in);
      const TunnelParams t = Tunnel(outer, gue);
      ASSERT_TRUE(EncapTunnel(buf.frame(), Parse(in), t));
      EXPECT_EQ(buf.frame()->len, 42 + EncapOverhead(outer, gue));
      ExpectTunnel(in, buf.Out(), t);
    }
  }
}

TEST(EncapTunnel, InnerDscpAndTrafficClassAreCopied) {
  for (uint8_t tos : {0x00, 0x02, 0x2e, 0xb8, 0xfd}) {
    for (bool inner_v6 : {false, true}) {
      for (IpFamily outer : {IpFamily::kIpv4, IpFamily::kIpv6}) {
        Bytes in = inner_v6 ? TcpV6() : TcpV4();
        SetTos(&in, tos);
        Buffer buf(in);
        ASSERT_TRUE(EncapTunnel(buf.frame(), Parse(in), Tunnel(outer, false)));
        const uint8_t* ip = buf.frame()->data + 14;
        const uint8_t got =
            outer == IpFamily::kIpv4 ? ip[1] : static_cast<uint8_t>(ip[0] << 4 | ip[1] >> 4);
        EXPECT_EQ(got, tos);
      }
    }
  }
}

TEST(EncapTunnel, Ipv6OuterUdpChecksumZeroIsSentAsAllOnes) {
  // Pick the outer source address so that the UDP checksum computes to zero: with the last word
  // of the address 0 the checksum is C, so a last word of C makes the sum 0xffff.
  const Bytes in = TcpV4();
  const ParsedPacket in_p = Parse(in);
  TunnelParams t = Tunnel(IpFamily::kIpv6, true);
  t.outer_src.bytes[14] = t.outer_src.bytes[15] = 0;
  uint16_t c;
  {
    Buffer buf(in);
    ASSERT_TRUE(EncapTunnel(buf.frame(), in_p, t));
    const Bytes out = buf.Out();
    c = RawL4Checksum(out, Parse(out));
  }
  t.outer_src.bytes[14] = static_cast<uint8_t>(c >> 8);
  t.outer_src.bytes[15] = static_cast<uint8_t>(c);
  Buffer buf(in);
  ASSERT_TRUE(EncapTunnel(buf.frame(), in_p, t));
  const Bytes out = buf.Out();
  const ParsedPacket p = Parse(out);
  ASSERT_EQ(RawL4Checksum(out, p), 0);
  EXPECT_EQ(StoredL4Checksum(out, p), 0xffff);
  ExpectTunnel(in, out, t);
}

// A UDP-over-IPv4 frame whose IP packet is `inner_len` bytes.
Bytes BigUdpV4(size_t inner_len) {
  return PacketBuilder()
      .Ether()
      .Ipv4("192.0.2.10", "203.0.113.1", IPPROTO_UDP)
      .Udp(1000, 2000)
      .Payload(inner_len - 28, 0xc7)
      .Finish();
}

TEST(EncapTunnel, ResultOfExactly65535BytesIsAccepted) {
  for (auto [outer, gue] : {std::pair{IpFamily::kIpv4, false}, std::pair{IpFamily::kIpv6, true}}) {
    const size_t overhead = EncapOverhead(outer, gue);
    const Bytes in = BigUdpV4(65535 - 14 - overhead);
    ASSERT_EQ(Parse(in).status, ParseStatus::kOk);
    const TunnelParams t = Tunnel(outer, gue);
    Buffer buf(in);
    ASSERT_TRUE(EncapTunnel(buf.frame(), Parse(in), t));
    EXPECT_EQ(buf.frame()->len, 65535u);
    ExpectTunnel(in, buf.Out(), t);
  }
}

TEST(EncapTunnel, RejectsAResultOver65535Bytes) {
  for (IpFamily outer : {IpFamily::kIpv4, IpFamily::kIpv6}) {
    for (bool gue : {false, true}) {
      const Bytes in = BigUdpV4(65535 - 14 - EncapOverhead(outer, gue) + 1);
      ASSERT_EQ(Parse(in).status, ParseStatus::kOk);
      const TunnelParams t = Tunnel(outer, gue);
      ExpectRejected(in, [&](Frame* f, const ParsedPacket& p) { return EncapTunnel(f, p, t); });
    }
  }
}

TEST(EncapTunnel, RejectsShortHeadroom) {
  for (IpFamily outer : {IpFamily::kIpv4, IpFamily::kIpv6}) {
    for (bool gue : {false, true}) {
      const TunnelParams t = Tunnel(outer, gue);
      const uint32_t need = static_cast<uint32_t>(EncapOverhead(outer, gue));
      auto encap = [&](Frame* f, const ParsedPacket& p) { return EncapTunnel(f, p, t); };
      ExpectRejected(TcpV4(1), encap, need - 1);
      ExpectRejected(TcpV6(), encap, 0);
      // Exactly enough works.
      const Bytes in = TcpV4(1);
      Buffer buf(in, need);
      ASSERT_TRUE(EncapTunnel(buf.frame(), Parse(in), t));
      EXPECT_EQ(buf.frame()->data, buf.start());
      EXPECT_EQ(buf.frame()->headroom, 0u);
      ExpectTunnel(in, buf.Out(), t);
    }
  }
}

TEST(EncapTunnel, RejectsNonIpAndBrokenFrames) {
  const TunnelParams t = Tunnel(IpFamily::kIpv4, false);
  auto encap = [&](Frame* f, const ParsedPacket& p) { return EncapTunnel(f, p, t); };
  ExpectRejected(Arp(), encap);
  ExpectRejected(Lldp(), encap);
  Bytes truncated = TcpV4();
  truncated.resize(14 + 20 + 10);  // TCP header cut short, IPv4 total length beyond the frame
  ASSERT_NE(Parse(truncated).status, ParseStatus::kOk);
  ExpectRejected(truncated, encap);
  Bytes bad_tcp = TcpV4();
  bad_tcp[14 + 20 + 12] = 0x40;  // data offset 4 words
  ASSERT_EQ(Parse(bad_tcp).status, ParseStatus::kBadTcpDataOffset);
  ExpectRejected(bad_tcp, encap);
}

TEST(EncapTunnel, RejectsAnOuterFamilyOfNone) {
  TunnelParams t = Tunnel(IpFamily::kIpv4, false);
  t.outer_family = IpFamily::kNone;
  ExpectRejected(TcpV4(), [&](Frame* f, const ParsedPacket& p) { return EncapTunnel(f, p, t); });
}

// The template path must give what EncapTunnel gives, byte for byte, success or failure, for
// every untagged frame; GUE over IPv6 (a checksum over the payload) has no template.
TEST(EncapTunnelWithTemplate, SameBytesAsEncapTunnel) {
  std::vector<Bytes> inputs = {TcpV4(),
                               UdpV6(),
                               TcpV6(),
                               Padded(TcpV4(), 6),
                               Arp(),
                               Lldp(),
                               BigUdpV4(65535 - 14 - 20),
                               BigUdpV4(65535 - 14 - 20 + 1),
                               BigUdpV4(65535 - 14 - 28)};
  inputs.push_back(PacketBuilder()
                       .Ether()
                       .Ipv4("192.0.2.10", "203.0.113.1", IPPROTO_UDP, 64, {}, 0x0010)
                       .Payload(40, 0x11)
                       .Finish());
  for (uint8_t tos : {0x00, 0x01, 0xb8, 0xff}) {
    Bytes v4 = TcpV4();
    SetTos(&v4, tos);
    inputs.push_back(v4);
    Bytes v6 = UdpV6();
    SetTos(&v6, tos);
    inputs.push_back(v6);
  }
  size_t compared = 0;
  for (IpFamily outer : {IpFamily::kIpv4, IpFamily::kIpv6}) {
    for (bool gue : {false, true}) {
      for (uint64_t hash : {kFlowHash, uint64_t{0}, ~uint64_t{0}}) {
        TunnelParams t = Tunnel(outer, gue);
        t.flow_hash = hash;
        TunnelTemplate tmpl;
        BuildTunnelTemplate(t, &tmpl);
        if (gue && outer == IpFamily::kIpv6) {
          EXPECT_EQ(tmpl.header_len, 0);
          continue;
        }
        ASSERT_EQ(tmpl.header_len, 14 + EncapOverhead(outer, gue));
        for (const Bytes& in : inputs) {
          for (uint32_t headroom : {kHeadroom, static_cast<uint32_t>(tmpl.overhead),
                                    static_cast<uint32_t>(tmpl.overhead) - 1}) {
            const ParsedPacket p = Parse(in);
            Buffer general(in, headroom);
            Buffer fast(in, headroom);
            const bool ok = EncapTunnel(general.frame(), p, t);
            ASSERT_EQ(EncapTunnelWithTemplate(fast.frame(), p, tmpl, hash), ok);
            EXPECT_EQ(fast.All(), general.All());
            EXPECT_EQ(fast.frame()->data - fast.start(), general.frame()->data - general.start());
            EXPECT_EQ(fast.frame()->len, general.frame()->len);
            EXPECT_EQ(fast.frame()->headroom, general.frame()->headroom);
            compared += ok;
          }
        }
      }
    }
  }
  EXPECT_GT(compared, 100u);
}

TEST(EncapTunnel, FragmentsAreTunneledWhole) {
  const Bytes later = PacketBuilder()
                          .Ether()
                          .Ipv4("192.0.2.10", "203.0.113.1", IPPROTO_UDP, 64, {}, 0x0010)
                          .Payload(40, 0x11)
                          .Finish();
  ASSERT_EQ(Parse(later).fragment, Fragment::kLater);
  const TunnelParams t = Tunnel(IpFamily::kIpv6, true);
  Buffer buf(later);
  ASSERT_TRUE(EncapTunnel(buf.frame(), Parse(later), t));
  ExpectTunnel(later, buf.Out(), t);
}

// ---- NAT -----------------------------------------------------------------------------------

NatParams Nat4() {
  NatParams n;
  n.src_mac = kSrcMac;
  n.dst_mac = kDstMac;
  n.new_src = A4("10.200.0.1");
  n.new_dst = A4("10.1.2.3");
  n.new_src_port = htons(61000);
  n.new_dst_port = htons(8443);
  return n;
}

NatParams Nat6() {
  NatParams n = Nat4();
  n.family = IpFamily::kIpv6;
  n.new_src = A6("fd00:200::1");
  n.new_dst = A6("fd00:1::2:3");
  return n;
}

// What a correct full NAT of `in` is, built the slow way: fields written one by one, checksums
// recomputed from scratch.
Bytes ExpectedNat(const Bytes& in, const NatParams& n) {
  Bytes out = in;
  const ParsedPacket p = Parse(in);
  uint8_t* ip = out.data() + p.l3_offset;
  uint8_t* l4 = out.data() + p.l4_offset;
  std::memcpy(out.data(), n.dst_mac.bytes, 6);
  std::memcpy(out.data() + 6, n.src_mac.bytes, 6);
  if (p.l3 == L3Kind::kIpv4) {
    if (n.decrement_ttl) --ip[8];
    std::memcpy(ip + 12, n.new_src.bytes, 4);
    std::memcpy(ip + 16, n.new_dst.bytes, 4);
    FixIpv4Checksum(&out, p.l3_offset);
  } else {
    if (n.decrement_ttl) --ip[7];
    std::memcpy(ip + 8, n.new_src.bytes, 16);
    std::memcpy(ip + 24, n.new_dst.bytes, 16);
  }
  std::memcpy(l4, &n.new_src_port, 2);
  std::memcpy(l4 + 2, &n.new_dst_port, 2);
  const bool no_udp_checksum =
      p.l4_proto == IPPROTO_UDP && p.l3 == L3Kind::kIpv4 && StoredL4Checksum(in, p) == 0;
  if (!no_udp_checksum) Put16(l4 + L4ChecksumOffset(p.l4_proto), L4Checksum(out, p));
  return out;
}

// Applies NAT and checks the output against ExpectedNat and by re-parsing.
void ExpectNat(const Bytes& in, const NatParams& n) {
  const ParsedPacket in_p = Parse(in);
  ASSERT_EQ(in_p.status, ParseStatus::kOk);
  Buffer buf(in);
  ASSERT_TRUE(RewriteNat(buf.frame(), in_p, n));
  EXPECT_TRUE(buf.HeadroomIntact());
  EXPECT_EQ(buf.frame()->headroom, kHeadroom);
  const Bytes out = buf.Out();
  ASSERT_EQ(out.size(), in.size());
  EXPECT_EQ(out, ExpectedNat(in, n));

  const ParsedPacket p = Parse(out);
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(Slice(out, 0, 6), MacBytes(n.dst_mac));
  EXPECT_EQ(Slice(out, 6, 12), MacBytes(n.src_mac));
  EXPECT_EQ(p.vlan_count, in_p.vlan_count);
  EXPECT_EQ(p.flow.family, in_p.flow.family);
  EXPECT_EQ(p.flow.proto, in_p.flow.proto);
  EXPECT_EQ(p.flow.src, n.new_src);
  EXPECT_EQ(p.flow.dst, n.new_dst);
  EXPECT_EQ(p.flow.src_port, n.new_src_port);
  EXPECT_EQ(p.flow.dst_port, n.new_dst_port);
  EXPECT_EQ(p.ttl, n.decrement_ttl ? in_p.ttl - 1 : in_p.ttl);
  EXPECT_EQ(p.l3_end, in_p.l3_end);
  if (p.l3 == L3Kind::kIpv4) {
    EXPECT_EQ(Get16(out.data() + p.l3_offset + 10), Ipv4HeaderChecksum(out.data() + p.l3_offset));
  }
  const uint16_t stored = StoredL4Checksum(out, p);
  if (p.l4_proto == IPPROTO_UDP && p.l3 == L3Kind::kIpv4 && StoredL4Checksum(in, in_p) == 0) {
    EXPECT_EQ(stored, 0);
  } else if (p.fragment == Fragment::kNone) {
    EXPECT_EQ(stored, L4Checksum(out, p));
  }
}

TEST(RewriteNat, TcpV4) {
  ExpectNat(TcpV4(), Nat4());
  ExpectNat(TcpV4(1), Nat4());
  ExpectNat(Padded(TcpV4(2), 9), Nat4());
}

TEST(RewriteNat, TcpV6) {
  ExpectNat(TcpV6(), Nat6());
  ExpectNat(TcpV6(2), Nat6());
}

TEST(RewriteNat, UdpV4WithChecksum) {
  const Bytes in = UdpV4(1);
  ASSERT_NE(StoredL4Checksum(in, Parse(in)), 0);
  ExpectNat(in, Nat4());
}

TEST(RewriteNat, UdpV4WithoutChecksumStaysWithout) {
  Bytes in = UdpV4();
  Put16(in.data() + 14 + 20 + 6, 0);
  ExpectNat(in, Nat4());
  Buffer buf(in);
  ASSERT_TRUE(RewriteNat(buf.frame(), Parse(in), Nat4()));
  EXPECT_EQ(Get16(buf.frame()->data + 14 + 20 + 6), 0);
}

TEST(RewriteNat, UdpV6) { ExpectNat(UdpV6(1), Nat6()); }

// Finds the last word of new_src that makes the NAT'd UDP checksum compute to zero, and checks
// that it goes out as 0xffff.
void ExpectUdpZeroSentAsAllOnes(const Bytes& in, NatParams n) {
  const size_t last = (Parse(in).l3 == L3Kind::kIpv4 ? 4 : 16) - 2;
  n.new_src.bytes[last] = n.new_src.bytes[last + 1] = 0;
  const Bytes probe = ExpectedNat(in, n);
  const uint16_t c = RawL4Checksum(probe, Parse(probe));
  n.new_src.bytes[last] = static_cast<uint8_t>(c >> 8);
  n.new_src.bytes[last + 1] = static_cast<uint8_t>(c);
  Buffer buf(in);
  ASSERT_TRUE(RewriteNat(buf.frame(), Parse(in), n));
  const Bytes out = buf.Out();
  const ParsedPacket p = Parse(out);
  ASSERT_EQ(RawL4Checksum(out, p), 0);
  EXPECT_EQ(StoredL4Checksum(out, p), 0xffff);
  ExpectNat(in, n);
}

TEST(RewriteNat, UdpV6ZeroChecksumIsSentAsAllOnes) { ExpectUdpZeroSentAsAllOnes(UdpV6(), Nat6()); }

TEST(RewriteNat, UdpV4ZeroChecksumIsSentAsAllOnes) { ExpectUdpZeroSentAsAllOnes(UdpV4(), Nat4()); }

TEST(RewriteNat, WithoutTtlDecrement) {
  NatParams n = Nat4();
  n.decrement_ttl = false;
  ExpectNat(TcpV4(0, 1), n);  // TTL 1 is fine when it is not decremented
  NatParams n6 = Nat6();
  n6.decrement_ttl = false;
  ExpectNat(TcpV6(0, 1), n6);
}

TEST(RewriteNat, TtlTwoBecomesOne) {
  ExpectNat(TcpV4(0, 2), Nat4());
  ExpectNat(TcpV6(0, 2), Nat6());
}

TEST(RewriteNat, Ipv4OptionsAndIpv6ExtensionHeaders) {
  const Bytes opts = {0x94, 0x04, 0x00, 0x00};  // router alert
  ExpectNat(PacketBuilder()
                .Ether()
                .Ipv4("192.0.2.10", "203.0.113.1", IPPROTO_TCP, 64, opts)
                .Tcp(40000, 443)
                .Payload(11)
                .Finish(),
            Nat4());
  ExpectNat(PacketBuilder()
                .Ether()
                .Ipv6("2001:db8:1::10", "2001:db8:2::1", IPPROTO_DSTOPTS)
                .Ipv6Ext(IPPROTO_UDP, 1)
                .Udp(5353, 53)
                .Payload(13)
                .Finish(),
            Nat6());
}

TEST(RewriteNat, FirstFragmentGetsTheWholeDatagramsChecksum) {
  // The L4 checksum covers the whole datagram; NAT of the first fragment must leave it as NAT of
  // the unfragmented datagram would.
  const Bytes whole = PacketBuilder()
                          .Ether()
                          .Ipv4("192.0.2.10", "203.0.113.1", IPPROTO_UDP)
                          .Udp(5353, 53)
                          .Payload(64, 0x42)
                          .Finish();
  Bytes first = Slice(whole, 0, 14 + 20 + 24);
  Put16(first.data() + 14 + 2, 20 + 24);
  Put16(first.data() + 14 + 6, 0x2000);  // MF, offset 0
  FixIpv4Checksum(&first, 14);
  ASSERT_EQ(Parse(first).fragment, Fragment::kFirst);
  Buffer a(whole);
  Buffer b(first);
  ASSERT_TRUE(RewriteNat(a.frame(), Parse(whole), Nat4()));
  ASSERT_TRUE(RewriteNat(b.frame(), Parse(first), Nat4()));
  EXPECT_EQ(Slice(b.Out(), 14 + 20, first.size()), Slice(a.Out(), 14 + 20, first.size()));
  const Bytes out = b.Out();
  EXPECT_EQ(Get16(out.data() + 14 + 10), Ipv4HeaderChecksum(out.data() + 14));
  EXPECT_EQ(Get16(out.data() + 14 + 6), 0x2000);
}

TEST(RewriteNat, RejectsLaterFragments) {
  auto nat4 = [](Frame* f, const ParsedPacket& p) { return RewriteNat(f, p, Nat4()); };
  auto nat6 = [](Frame* f, const ParsedPacket& p) { return RewriteNat(f, p, Nat6()); };
  const Bytes later4 = PacketBuilder()
                           .Ether()
                           .Ipv4("192.0.2.10", "203.0.113.1", IPPROTO_UDP, 64, {}, 0x0003)
                           .Payload(24)
                           .Finish();
  ASSERT_EQ(Parse(later4).fragment, Fragment::kLater);
  ExpectRejected(later4, nat4);
  const Bytes later6 = PacketBuilder()
                           .Ether()
                           .Ipv6("2001:db8:1::10", "2001:db8:2::1", IPPROTO_FRAGMENT)
                           .Ipv6Fragment(IPPROTO_TCP, 5, false)
                           .Payload(24)
                           .Finish();
  ASSERT_EQ(Parse(later6).fragment, Fragment::kLater);
  ExpectRejected(later6, nat6);
}

TEST(RewriteNat, RejectsTtlThatWouldReachZero) {
  auto nat4 = [](Frame* f, const ParsedPacket& p) { return RewriteNat(f, p, Nat4()); };
  auto nat6 = [](Frame* f, const ParsedPacket& p) { return RewriteNat(f, p, Nat6()); };
  ExpectRejected(TcpV4(0, 1), nat4);
  ExpectRejected(TcpV4(0, 0), nat4);
  ExpectRejected(TcpV6(0, 1), nat6);
  ExpectRejected(TcpV6(1, 0), nat6);
}

TEST(RewriteNat, RejectsMismatchedFamily) {
  ExpectRejected(TcpV4(), [](Frame* f, const ParsedPacket& p) { return RewriteNat(f, p, Nat6()); });
  ExpectRejected(UdpV6(), [](Frame* f, const ParsedPacket& p) { return RewriteNat(f, p, Nat4()); });
  // An IPv6 NAT address whose last 96 bits are zero is still an IPv6 address.
  NatParams prefix_like = Nat6();
  prefix_like.new_src = A6("2001:db8::");
  ExpectNat(TcpV6(), prefix_like);
}

TEST(RewriteNat, RejectsOtherProtocolsAndBrokenFrames) {
  auto nat4 = [](Frame* f, const ParsedPacket& p) { return RewriteNat(f, p, Nat4()); };
  ExpectRejected(
      PacketBuilder().Ether().Ipv4("192.0.2.10", "203.0.113.1", IPPROTO_ICMP).Icmp(8, 0).Finish(),
      nat4);
  ExpectRejected(PacketBuilder()
                     .Ether()
                     .Ipv4("192.0.2.10", "203.0.113.1", IPPROTO_SCTP)
                     .Payload(Bytes{0x13, 0x88, 0x13, 0x89, 0, 0, 0, 0, 0, 0, 0, 0})
                     .Finish(),
                 nat4);
  ExpectRejected(Arp(), nat4);
  ExpectRejected(Lldp(), nat4);
  Bytes bad_udp = UdpV4();
  Put16(bad_udp.data() + 14 + 20 + 4, 4);  // UDP length below 8
  ASSERT_EQ(Parse(bad_udp).status, ParseStatus::kBadUdpLength);
  ExpectRejected(bad_udp, nat4);
}

// ---- ICMP echo -----------------------------------------------------------------------------

Bytes EchoV4(int vlans = 0, uint8_t type = 8, uint8_t code = 0) {
  return Build(vlans, [&](PacketBuilder& b) {
    b.Ipv4("192.0.2.10", "203.0.113.1", IPPROTO_ICMP, 57)
        .Icmp(type, code, 0x12340007)
        .Payload(48, 0x61);
  });
}
Bytes EchoV6(int vlans = 0, uint8_t type = 128, uint8_t code = 0) {
  return Build(vlans, [&](PacketBuilder& b) {
    b.Ipv6("2001:db8:1::10", "2001:db8:2::1", IPPROTO_ICMPV6, 57)
        .Icmp(type, code, 0x12340007)
        .Payload(48, 0x61);
  });
}

Bytes ExpectedEchoReply(const Bytes& in) {
  Bytes out = in;
  const ParsedPacket p = Parse(in);
  for (int i = 0; i < 6; ++i) std::swap(out[i], out[6 + i]);
  uint8_t* ip = out.data() + p.l3_offset;
  uint8_t* icmp = out.data() + p.l4_offset;
  if (p.l3 == L3Kind::kIpv4) {
    ip[8] = 64;
    for (int i = 0; i < 4; ++i) std::swap(ip[12 + i], ip[16 + i]);
    FixIpv4Checksum(&out, p.l3_offset);
    icmp[0] = 0;
  } else {
    ip[7] = 64;
    for (int i = 0; i < 16; ++i) std::swap(ip[8 + i], ip[24 + i]);
    icmp[0] = 129;
  }
  Put16(icmp + 2, L4Checksum(out, p));
  return out;
}

void ExpectEchoReply(const Bytes& in) {
  const ParsedPacket in_p = Parse(in);
  ASSERT_EQ(in_p.status, ParseStatus::kOk);
  Buffer buf(in);
  ASSERT_TRUE(MakeEchoReply(buf.frame(), in_p));
  EXPECT_TRUE(buf.HeadroomIntact());
  const Bytes out = buf.Out();
  ASSERT_EQ(out.size(), in.size());
  EXPECT_EQ(out, ExpectedEchoReply(in));

  const ParsedPacket p = Parse(out);
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(Slice(out, 0, 6), Slice(in, 6, 12));
  EXPECT_EQ(Slice(out, 6, 12), Slice(in, 0, 6));
  EXPECT_EQ(p.vlan_count, in_p.vlan_count);
  EXPECT_EQ(p.flow.src, in_p.flow.dst);
  EXPECT_EQ(p.flow.dst, in_p.flow.src);
  EXPECT_EQ(p.ttl, 64);
  EXPECT_EQ(p.icmp_type, p.l3 == L3Kind::kIpv4 ? 0 : 129);
  EXPECT_EQ(p.icmp_code, 0);
  EXPECT_FALSE(p.icmp_error);
  if (p.l3 == L3Kind::kIpv4) {
    EXPECT_EQ(Get16(out.data() + p.l3_offset + 10), Ipv4HeaderChecksum(out.data() + p.l3_offset));
  }
  EXPECT_EQ(StoredL4Checksum(out, p), L4Checksum(out, p));
  // Identifier, sequence number and data come back unchanged.
  EXPECT_EQ(Slice(out, p.l4_offset + 4, out.size()), Slice(in, in_p.l4_offset + 4, in.size()));
}

TEST(MakeEchoReply, Ipv4) {
  ExpectEchoReply(EchoV4());
  ExpectEchoReply(EchoV4(2));
  ExpectEchoReply(Padded(EchoV4(1), 5));
}

TEST(MakeEchoReply, Ipv6) {
  ExpectEchoReply(EchoV6());
  ExpectEchoReply(EchoV6(1));
}

TEST(MakeEchoReply, RejectsEverythingElse) {
  auto reply = [](Frame* f, const ParsedPacket& p) { return MakeEchoReply(f, p); };
  ExpectRejected(EchoV4(0, 0), reply);    // echo reply
  ExpectRejected(EchoV6(0, 129), reply);  // echo reply
  ExpectRejected(EchoV4(0, 8, 1), reply);
  ExpectRejected(EchoV6(0, 128, 1), reply);
  ExpectRejected(EchoV4(0, 13), reply);   // timestamp
  ExpectRejected(EchoV6(0, 135), reply);  // neighbor solicitation
  ExpectRejected(EchoV4(0, 128), reply);  // ICMPv6's echo type in ICMPv4
  ExpectRejected(TcpV4(), reply);
  ExpectRejected(UdpV6(), reply);
  ExpectRejected(Arp(), reply);
  ExpectRejected(Lldp(), reply);
  // ICMPv6 numbers carried over IPv4 (and the other way round).
  ExpectRejected(PacketBuilder()
                     .Ether()
                     .Ipv4("192.0.2.10", "203.0.113.1", IPPROTO_ICMPV6)
                     .Payload(Bytes{128, 0, 0, 0, 0, 0, 0, 0})
                     .Finish(),
                 reply);
  ExpectRejected(PacketBuilder()
                     .Ether()
                     .Ipv6("2001:db8:1::10", "2001:db8:2::1", IPPROTO_ICMP)
                     .Payload(Bytes{8, 0, 0, 0, 0, 0, 0, 0})
                     .Finish(),
                 reply);
  // An ICMP error quoting an echo request.
  const Bytes quoted = EchoV4();
  ExpectRejected(PacketBuilder()
                     .Ether()
                     .Ipv4("198.51.100.9", "192.0.2.10", IPPROTO_ICMP)
                     .Icmp(3, 4, 1400)
                     .Raw(Slice(quoted, 14, 14 + 28))
                     .Finish(),
                 reply);
  // Parse errors.
  Bytes cut = EchoV4();
  cut.resize(14 + 20 + 4);
  ASSERT_NE(Parse(cut).status, ParseStatus::kOk);
  ExpectRejected(cut, reply);
  Bytes short_icmp = PacketBuilder()
                         .Ether()
                         .Ipv4("192.0.2.10", "203.0.113.1", IPPROTO_ICMP)
                         .Payload(Bytes{8, 0, 0, 0})
                         .Finish();
  ASSERT_EQ(Parse(short_icmp).status, ParseStatus::kTruncatedIcmp);
  ExpectRejected(short_icmp, reply);
  // Fragmented echo requests.
  Bytes first = EchoV4();
  Put16(first.data() + 14 + 6, 0x2000);
  FixIpv4Checksum(&first, 14);
  ASSERT_EQ(Parse(first).fragment, Fragment::kFirst);
  ExpectRejected(first, reply);
}

}  // namespace
}  // namespace lb
