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

// Resolve answers the worker's three questions in one probe: it must agree with them everywhere,
// including addresses with more services than its inline slot holds.
TEST(VipTable, ResolveAgreesWithHasAddressLookupAndLookupFragment) {
  std::vector<VipKey> keys;
  const uint8_t protos[] = {IPPROTO_TCP, IPPROTO_UDP};
  for (uint32_t a = 0; a < 40; ++a) {
    // Address a has a % 9 services: 0..8, i.e. below, at and above the inline capacity.
    for (uint32_t j = 0; j < a % 9; ++j) {
      const uint16_t port = static_cast<uint16_t>(j == 3 ? 0 : 80 + 7 * j);
      keys.push_back(
          {IpAddr::V4(0xcb007100u + a), htons(port), protos[(a + j) % 2], IpFamily::kIpv4});
      keys.push_back({V6Key("2001:db8::" + std::to_string(a + 1), 0).addr, htons(port),
                      protos[j % 2], IpFamily::kIpv6});
    }
  }
  auto t = VipTable::Build(keys);
  ASSERT_TRUE(t.ok());
  size_t found = 0;
  for (uint32_t a = 0; a < 45; ++a) {
    for (IpFamily family : {IpFamily::kIpv4, IpFamily::kIpv6}) {
      const IpAddr addr = family == IpFamily::kIpv4
                              ? IpAddr::V4(0xcb007100u + a)
                              : V6Key("2001:db8::" + std::to_string(a + 1), 0).addr;
      for (uint8_t proto : {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP}) {
        for (uint16_t port : {0, 80, 87, 94, 101, 108, 115, 122, 129, 136, 443}) {
          const uint16_t nport = htons(port);
          for (bool fragment : {false, true}) {
            const uint32_t want = !t->HasAddress(addr, family) ? kNotVipAddress
                                  : fragment ? t->LookupFragment(addr, family, proto)
                                             : t->Lookup(addr, family, nport, proto);
            ASSERT_EQ(t->Resolve(addr, family, nport, proto, fragment), want)
                << "address #" << a << " port " << port << " proto " << int{proto};
            found += want < keys.size();
          }
        }
      }
    }
  }
  EXPECT_GT(found, 500u);
  EXPECT_EQ(VipTable().Resolve(IpAddr::V4(1), IpFamily::kIpv4, 0, IPPROTO_TCP, false),
            kNotVipAddress);
}

TEST(VipTable, EmptyTableFindsNothing) {
  VipTable t;
  EXPECT_EQ(Find(t, V4Key("10.0.0.1", 80)), kNoVip);
  EXPECT_FALSE(t.HasAddress(IpAddr::V4(1), IpFamily::kIpv4));
}

}  // namespace
}  // namespace lb
