#include "dataplane/core/flow_key.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <bitset>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace lb {
namespace {

FlowKey MakeV4(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
               uint8_t proto = IPPROTO_TCP) {
  FlowKey k;
  k.family = IpFamily::kIpv4;
  k.src = IpAddr::V4(src);
  k.dst = IpAddr::V4(dst);
  k.src_port = htons(sport);
  k.dst_port = htons(dport);
  k.proto = proto;
  return k;
}

TEST(FlowKey, ReversedSwapsEndpoints) {
  const FlowKey k = MakeV4(0x0a000001, 0xcb007101, 40000, 80);
  const FlowKey r = k.Reversed();
  EXPECT_EQ(r.src, k.dst);
  EXPECT_EQ(r.dst, k.src);
  EXPECT_EQ(ntohs(r.src_port), 80);
  EXPECT_EQ(ntohs(r.dst_port), 40000);
  EXPECT_EQ(r.Reversed(), k);
  EXPECT_EQ(k.ToString(), "10.0.0.1:40000 -> 203.0.113.1:80 proto 6");
}

TEST(FlowKey, HashIsDirectionalAndSymmetricVariantIsNot) {
  const FlowKey k = MakeV4(0x0a000001, 0xcb007101, 40000, 80);
  EXPECT_NE(FlowHash(k), FlowHash(k.Reversed()));
  EXPECT_EQ(SymmetricFlowHash(k), SymmetricFlowHash(k.Reversed()));
  // Same addresses, ports swapped between the two sides: a different flow.
  EXPECT_NE(SymmetricFlowHash(k), SymmetricFlowHash(MakeV4(0x0a000001, 0xcb007101, 80, 40000)));
}

TEST(FlowKey, HashDependsOnEveryFieldAndSeed) {
  const FlowKey base = MakeV4(0x0a000001, 0xcb007101, 40000, 80);
  std::set<uint64_t> seen = {FlowHash(base)};
  FlowKey k = base;
  k.src = IpAddr::V4(0x0a000002);
  seen.insert(FlowHash(k));
  k = base;
  k.dst = IpAddr::V4(0xcb007102);
  seen.insert(FlowHash(k));
  k = base;
  k.src_port = htons(40001);
  seen.insert(FlowHash(k));
  k = base;
  k.dst_port = htons(81);
  seen.insert(FlowHash(k));
  k = base;
  k.proto = IPPROTO_UDP;
  seen.insert(FlowHash(k));
  k = base;
  k.family = IpFamily::kIpv6;
  seen.insert(FlowHash(k));
  seen.insert(FlowHash(base, kFlowHashSeed + 1));
  EXPECT_EQ(seen.size(), 8u);
}

// Flows that differ only in the client port (the common case behind one client address) must
// spread evenly over the low bits (connection-table buckets) and over a prime modulus (Maglev).
TEST(FlowKey, HashSpreadsSequentialPorts) {
  constexpr int kFlows = 1 << 16;
  constexpr int kBuckets = 256;
  std::vector<int> low(kBuckets), mod(kBuckets);
  std::vector<int> bit_ones(64);
  for (int i = 0; i < kFlows; ++i) {
    const uint64_t h = FlowHash(MakeV4(0xc0000201, 0xcb007101, static_cast<uint16_t>(i), 443));
    ++low[h & (kBuckets - 1)];
    ++mod[(h % 65537) % kBuckets];
    for (int b = 0; b < 64; ++b) bit_ones[b] += (h >> b) & 1;
  }
  const double expected = static_cast<double>(kFlows) / kBuckets;  // 256 per bucket
  for (int b = 0; b < kBuckets; ++b) {
    EXPECT_NEAR(low[b], expected, expected * 0.3) << "low bits bucket " << b;
    EXPECT_NEAR(mod[b], expected, expected * 0.3) << "mod bucket " << b;
  }
  for (int b = 0; b < 64; ++b) EXPECT_NEAR(bit_ones[b], kFlows / 2, kFlows * 0.02) << "bit " << b;
}

// Nodes of one fleet may run different releases during an upgrade; they must keep mapping flows
// to the same Maglev slots. This pins the hash of a few keys: if it fails, the change breaks
// flow affinity across a mixed fleet, and needs a versioned migration rather than a new value.
TEST(FlowKey, HashIsStableAcrossReleases) {
  const FlowKey v4 = MakeV4(0xc0000201, 0xcb007101, 40000, 80);
  FlowKey v6;
  v6.family = IpFamily::kIpv6;
  inet_pton(AF_INET6, "2001:db8::10", v6.src.bytes);
  inet_pton(AF_INET6, "2001:db8:100::1", v6.dst.bytes);
  v6.src_port = htons(50000);
  v6.dst_port = htons(443);
  v6.proto = IPPROTO_TCP;
  const uint8_t empty = 0;
  EXPECT_EQ(FlowHash(v4), 0xbd063d2122fcf812ULL);
  EXPECT_EQ(FlowHash(v6), 0x94ede44c74f76ed1ULL);
  EXPECT_EQ(HashBytes(&empty, 0, 0), 0x05844b3a71d7545dULL);
}

}  // namespace
}  // namespace lb
