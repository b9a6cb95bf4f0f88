#include "dataplane/core/vip_table.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/lib/packet_builder.h"

namespace lb {
namespace {

VipKey V4Key(const std::string& a, uint16_t port, uint8_t proto = IPPROTO_TCP) {
  return {IpAddr::FromV4Bytes(testing::V4(a).data()), htons(port), proto, IpFamily::kIpv4};
}
VipKey V6Key(const std::string& a, uint16_t port, uint8_t proto = IPPROTO_TCP) {
  return {IpAddr::FromV6Bytes(testing::V6(a).data()), htons(port), proto, IpFamily::kIpv6};
}
uint32_t Find(const VipTable& t, const VipKey& k) {
  return t.Lookup(k.addr, k.family, k.port, k.proto);
}

TEST(VipTable, ExactPortThenAllPorts) {
  auto t = VipTable::Build({V4Key("203.0.113.1", 80), V4Key("203.0.113.1", 0),
                            V4Key("203.0.113.1", 53, IPPROTO_UDP), V6Key("2001:db8::1", 443)});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(Find(*t, V4Key("203.0.113.1", 80)), 0u);
  EXPECT_EQ(Find(*t, V4Key("203.0.113.1", 8080)), 1u);  // all-ports VIP
  EXPECT_EQ(Find(*t, V4Key("203.0.113.1", 53, IPPROTO_UDP)), 2u);
  EXPECT_EQ(Find(*t, V4Key("203.0.113.1", 54, IPPROTO_UDP)), kNoVip);  // no all-ports UDP VIP
  EXPECT_EQ(Find(*t, V6Key("2001:db8::1", 443)), 3u);
  EXPECT_EQ(Find(*t, V6Key("2001:db8::1", 80)), kNoVip);
  EXPECT_EQ(Find(*t, V4Key("203.0.113.2", 80)), kNoVip);
  EXPECT_TRUE(t->HasAddress(V4Key("203.0.113.1", 0).addr, IpFamily::kIpv4));
  EXPECT_TRUE(t->HasAddress(V6Key("2001:db8::1", 0).addr, IpFamily::kIpv6));
  EXPECT_FALSE(t->HasAddress(V4Key("203.0.113.2", 0).addr, IpFamily::kIpv4));
  // An IPv4 address and the IPv6 address with the same leading bytes are different VIPs.
  EXPECT_FALSE(t->HasAddress(V4Key("203.0.113.1", 0).addr, IpFamily::kIpv6));
}

TEST(VipTable, RejectsDuplicates) {
  EXPECT_FALSE(VipTable::Build({V4Key("10.0.0.1", 80), V4Key("10.0.0.1", 80)}).ok());
  EXPECT_TRUE(VipTable::Build({V4Key("10.0.0.1", 80), V4Key("10.0.0.1", 80, IPPROTO_UDP)}).ok());
}

TEST(VipTable, TenThousandVips) {
  std::vector<VipKey> keys;
  for (uint32_t i = 0; i < 10000; ++i) {
    keys.push_back({IpAddr::V4(0x0a000000u + i), htons(static_cast<uint16_t>(80 + i % 3)),
                    IPPROTO_TCP, IpFamily::kIpv4});
  }
  auto t = VipTable::Build(keys);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->size(), 10000u);
  for (uint32_t i = 0; i < keys.size(); ++i) ASSERT_EQ(Find(*t, keys[i]), i);
  EXPECT_EQ(t->Lookup(IpAddr::V4(0x0b000000u), IpFamily::kIpv4, htons(80), IPPROTO_TCP), kNoVip);
}

TEST(VipTable, ExplicitValues) {
  auto t = VipTable::Build({V4Key("10.0.0.1", 80), V4Key("10.0.0.2", 80)}, {7, 3});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(Find(*t, V4Key("10.0.0.1", 80)), 7u);
  EXPECT_EQ(Find(*t, V4Key("10.0.0.2", 80)), 3u);
  EXPECT_FALSE(VipTable::Build({V4Key("10.0.0.1", 80)}, {1, 2}).ok());
}

TEST(VipTable, FragmentsMapToOneVipPerAddressAndProtocol) {
  const IpAddr a = V4Key("203.0.113.1", 0).addr;
  // No all-ports VIP: the lowest port wins, whatever the order of the keys.
  auto t = VipTable::Build(
      {V4Key("203.0.113.1", 443), V4Key("203.0.113.1", 80), V4Key("203.0.113.1", 53, IPPROTO_UDP)});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->LookupFragment(a, IpFamily::kIpv4, IPPROTO_TCP), 1u);
  EXPECT_EQ(t->LookupFragment(a, IpFamily::kIpv4, IPPROTO_UDP), 2u);
  EXPECT_EQ(t->LookupFragment(a, IpFamily::kIpv6, IPPROTO_TCP), kNoVip);
  // An all-ports VIP takes every fragment of its protocol.
  t = VipTable::Build({V4Key("203.0.113.1", 80), V4Key("203.0.113.1", 0)});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->LookupFragment(a, IpFamily::kIpv4, IPPROTO_TCP), 1u);
}

TEST(VipTable, EmptyTableFindsNothing) {
  VipTable t;
  EXPECT_EQ(Find(t, V4Key("10.0.0.1", 80)), kNoVip);
  EXPECT_FALSE(t.HasAddress(IpAddr::V4(1), IpFamily::kIpv4));
}

}  // namespace
}  // namespace lb
