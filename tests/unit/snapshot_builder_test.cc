#include "control/snapshot_builder.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <set>
#include <string>

#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace lb {
namespace {

v1::ServiceConfig Parse(const std::string& text) {
  v1::ServiceConfig c;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &c)) << text;
  return c;
}

const char kTwoVips[] = R"pb(
  version: 7
  vips {
    address: "203.0.113.1"
    port: 80
    protocol: PROTOCOL_TCP
    mode: FORWARDING_MODE_TUN
    backends { address: "10.0.1.1" }
    backends { address: "10.0.1.2" weight: 3 }
    backends { address: "2001:db8::3" }
  }
  vips {
    address: "2001:db8:100::1"
    port: 0
    protocol: PROTOCOL_UDP
    mode: FORWARDING_MODE_NAT
    backends { address: "2001:db8::9" }
  }
)pb";

NeighborLookup AllResolved() {
  return [](const IpAddr&, IpFamily, bool) {
    return std::optional<MacAddr>(MacAddr{{2, 0, 0, 0, 0, 1}});
  };
}

TEST(ValidateServiceConfig, AcceptsAGoodConfig) {
  EXPECT_TRUE(ValidateServiceConfig(Parse(kTwoVips)).ok());
}

// Every bad field is rejected with a message naming it.
TEST(ValidateServiceConfig, NamesTheBadField) {
  struct Case {
    const char* config;
    absl::StatusCode code;
    const char* field;
  };
  const Case cases[] = {
      {R"pb(vips { address: "203.0.113" protocol: PROTOCOL_TCP mode: FORWARDING_MODE_TUN })pb",
       absl::StatusCode::kInvalidArgument, "vips[0].address"},
      {R"pb(vips {
              address: "10.0.0.1"
              port: 70000
              protocol: PROTOCOL_TCP
              mode: FORWARDING_MODE_TUN
            })pb",
       absl::StatusCode::kInvalidArgument, "vips[0].port"},
      {R"pb(vips { address: "10.0.0.1" mode: FORWARDING_MODE_TUN })pb",
       absl::StatusCode::kInvalidArgument, "vips[0].protocol"},
      {R"pb(vips { address: "10.0.0.1" protocol: PROTOCOL_TCP })pb",
       absl::StatusCode::kInvalidArgument, "vips[0].mode"},
      {R"pb(vips {
              address: "10.0.0.1"
              protocol: PROTOCOL_TCP
              mode: FORWARDING_MODE_DR
              maglev_table_size: 65536
            })pb",
       absl::StatusCode::kInvalidArgument, "vips[0].maglev_table_size"},
      {R"pb(vips {
              address: "10.0.0.1"
              protocol: PROTOCOL_TCP
              mode: FORWARDING_MODE_DR
              backends { address: "2001:db8::1" }
            })pb",
       absl::StatusCode::kInvalidArgument, "vips[0].backends[0].address"},
      {R"pb(vips {
              address: "10.0.0.1"
              protocol: PROTOCOL_TCP
              mode: FORWARDING_MODE_TUN
              backends { address: "10.0.1.1" weight: 70000 }
            })pb",
       absl::StatusCode::kInvalidArgument, "vips[0].backends[0].weight"},
      {R"pb(vips {
              address: "10.0.0.1"
              port: 80
              protocol: PROTOCOL_TCP
              mode: FORWARDING_MODE_TUN
              backends { address: "10.0.1.1" port: 8080 }
            })pb",
       absl::StatusCode::kInvalidArgument, "vips[0].backends[0].port"},
      {R"pb(vips {
              address: "10.0.0.1"
              port: 0
              protocol: PROTOCOL_TCP
              mode: FORWARDING_MODE_NAT
              backends { address: "10.0.1.1" port: 8080 }
            })pb",
       absl::StatusCode::kInvalidArgument, "vips[0].backends[0].port"},
      {R"pb(vips {
              address: "10.0.0.1"
              port: 80
              protocol: PROTOCOL_TCP
              mode: FORWARDING_MODE_TUN
              backends { address: "10.0.1.1" }
              backends { address: "10.0.1.1" }
            })pb",
       absl::StatusCode::kAlreadyExists, "vips[0].backends[1]"},
      {R"pb(vips {
              address: "2001:db8::1"
              port: 80
              protocol: PROTOCOL_TCP
              mode: FORWARDING_MODE_TUN
            }
            vips {
              address: "2001:DB8:0::1"
              port: 80
              protocol: PROTOCOL_TCP
              mode: FORWARDING_MODE_DR
            })pb",
       absl::StatusCode::kAlreadyExists, "vips[1]"},
  };
  for (const Case& c : cases) {
    const absl::Status st = ValidateServiceConfig(Parse(c.config));
    EXPECT_EQ(st.code(), c.code) << c.config << "\n -> " << st;
    EXPECT_NE(st.message().find(c.field), std::string::npos) << st << " should name " << c.field;
  }
}

TEST(SnapshotBuilder, BuildsVipsBackendsAndMaglev) {
  SnapshotBuilder b;
  auto snap = b.Build(Parse(kTwoVips), NodeParams{}, AllResolved());
  ASSERT_TRUE(snap.ok()) << snap.status();
  const Snapshot& s = **snap;
  EXPECT_EQ(s.version, 7u);
  IpAddr vip = IpAddr::V4(0xcb007101);
  const uint32_t vi = s.vip_table.Lookup(vip, IpFamily::kIpv4, htons(80), IPPROTO_TCP);
  ASSERT_NE(vi, kNoVip);
  const VipEntry& v = s.vips[vi];
  EXPECT_EQ(v.mode, ForwardingMode::kTun);
  ASSERT_EQ(v.backends.size(), 3u);
  const std::vector<uint32_t> slots = v.maglev->SlotCounts();
  // Weights 1:3:1 give shares 1/5, 3/5, 1/5 of the table.
  EXPECT_NEAR(slots[1], 3.0 * slots[0], 5.0);
  EXPECT_NEAR(slots[2], slots[0], 2.0);
  EXPECT_EQ(s.backends[v.backends[2]].family, IpFamily::kIpv6);
  // All-ports UDP VIP in full NAT.
  IpAddr vip6;
  inet_pton(AF_INET6, "2001:db8:100::1", vip6.bytes);
  const uint32_t v6 = s.vip_table.Lookup(vip6, IpFamily::kIpv6, htons(5353), IPPROTO_UDP);
  ASSERT_NE(v6, kNoVip);
  EXPECT_EQ(s.vips[v6].mode, ForwardingMode::kNat);
  EXPECT_TRUE(b.unresolved().empty());
}

TEST(SnapshotBuilder, HandlesAreStableAndMaglevTablesReused) {
  SnapshotBuilder b;
  v1::ServiceConfig c = Parse(kTwoVips);
  auto first = b.Build(c, NodeParams{}, AllResolved());
  ASSERT_TRUE(first.ok());
  // Reorder VIPs and change the other VIP: handles of unchanged pairs and the Maglev table stay.
  c.mutable_vips()->SwapElements(0, 1);
  c.mutable_vips(0)->mutable_backends(0)->set_weight(5);
  auto second = b.Build(c, NodeParams{}, AllResolved());
  ASSERT_TRUE(second.ok());
  const auto find = [](const Snapshot& s) -> const VipEntry& {
    return s
        .vips[s.vip_table.Lookup(IpAddr::V4(0xcb007101), IpFamily::kIpv4, htons(80), IPPROTO_TCP)];
  };
  const VipEntry& a = find(**first);
  const VipEntry& z = find(**second);
  EXPECT_EQ(a.handle, z.handle);
  EXPECT_EQ(a.maglev, z.maglev) << "unchanged backends: the same table object";
  for (size_t i = 0; i < a.backends.size(); ++i) {
    EXPECT_EQ((*first)->backends[a.backends[i]].handle, (*second)->backends[z.backends[i]].handle);
  }
  // A weight change rebuilds the table.
  c.mutable_vips(1)->mutable_backends(1)->set_weight(1);
  auto third = b.Build(c, NodeParams{}, AllResolved());
  ASSERT_TRUE(third.ok());
  EXPECT_NE(find(**third).maglev, a.maglev);
}

TEST(SnapshotBuilder, ReusedIndexGetsANewGeneration) {
  // Freed indices come back only once fresh ones run out: 4 backends use indices 1-4 of 4.
  SnapshotBuilder b(BuildLimits{16, 5});
  v1::ServiceConfig c = Parse(kTwoVips);
  auto first = b.Build(c, NodeParams{}, AllResolved());
  ASSERT_TRUE(first.ok());
  const VipEntry& v = (*first)->vips[(*first)->vip_table.Lookup(
      IpAddr::V4(0xcb007101), IpFamily::kIpv4, htons(80), IPPROTO_TCP)];
  const uint32_t removed = (*first)->backends[v.backends[0]].handle;
  c.mutable_vips(0)->mutable_backends()->DeleteSubrange(0, 1);
  ASSERT_TRUE(b.Build(c, NodeParams{}, AllResolved()).ok());
  c.mutable_vips(0)->add_backends()->set_address("10.0.1.77");
  auto third = b.Build(c, NodeParams{}, AllResolved());
  ASSERT_TRUE(third.ok());
  EXPECT_EQ((*third)->Backend(removed), nullptr) << "an entry naming the old backend is stale";
  bool index_reused = false;
  for (const BackendEntry& e : (*third)->backends) {
    if (e.handle != 0 && HandleIndex(e.handle) == HandleIndex(removed)) {
      index_reused = true;
      EXPECT_NE(e.handle, removed);
    }
  }
  EXPECT_TRUE(index_reused);
}

TEST(SnapshotBuilder, FreshIndicesBeforeReuse) {
  SnapshotBuilder b;
  v1::ServiceConfig c = Parse(kTwoVips);
  ASSERT_TRUE(b.Build(c, NodeParams{}, AllResolved()).ok());
  std::set<uint32_t> seen;
  // Replace one backend 50 times: each newcomer gets an index never used before.
  for (int i = 0; i < 50; ++i) {
    c.mutable_vips(0)->mutable_backends(0)->set_address("10.9.0." + std::to_string(i + 1));
    auto s = b.Build(c, NodeParams{}, AllResolved());
    ASSERT_TRUE(s.ok());
    const VipEntry& v = (*s)->vips[(*s)->vip_table.Lookup(IpAddr::V4(0xcb007101), IpFamily::kIpv4,
                                                          htons(80), IPPROTO_TCP)];
    EXPECT_TRUE(seen.insert(HandleIndex((*s)->backends[v.backends[0]].handle)).second);
  }
}

TEST(SnapshotBuilder, NatAddressThatIsAlsoAVipIsRejected) {
  SnapshotBuilder b;
  NodeParams node;
  node.nat_addrs4.push_back(IpAddr::V4(0xcb007101));  // 203.0.113.1, the first VIP
  auto st = b.Build(Parse(kTwoVips), node, AllResolved());
  EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.status().message().find("vips[0].address"), std::string::npos) << st.status();
}

TEST(SnapshotBuilder, LimitsFailWithoutChangingAnything) {
  SnapshotBuilder b(BuildLimits{4, 4});   // 3 VIPs, 3 backends (index 0 is never used)
  v1::ServiceConfig c = Parse(kTwoVips);  // 2 VIPs, 4 backends
  auto st = b.Build(c, NodeParams{}, AllResolved());
  EXPECT_EQ(st.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(st.status().message().find("vips[1].backends[0]"), std::string::npos) << st.status();
  c.mutable_vips(0)->mutable_backends()->DeleteSubrange(0, 1);  // 3 backends fit
  auto ok = b.Build(c, NodeParams{}, AllResolved());
  ASSERT_TRUE(ok.ok()) << ok.status();
  // The failed build consumed no handle: the survivors got the lowest indices.
  for (const BackendEntry& e : (*ok)->backends) {
    if (e.handle != 0) {
      EXPECT_LE(HandleIndex(e.handle), 3u);
    }
  }
}

TEST(SnapshotBuilder, DrainingAndDownGetNoSlotsUnresolvedAreListed) {
  SnapshotBuilder b;
  v1::ServiceConfig c = Parse(kTwoVips);
  c.mutable_vips(0)->mutable_backends(0)->set_state(v1::BACKEND_STATE_DRAINING);
  c.mutable_vips(0)->mutable_backends(1)->set_state(v1::BACKEND_STATE_DOWN);
  auto snap =
      b.Build(c, NodeParams{}, [](const IpAddr& a, IpFamily f, bool) -> std::optional<MacAddr> {
        if (f == IpFamily::kIpv4 && a == IpAddr::V4(0x0a000101)) return MacAddr{{2, 0, 0, 0, 0, 1}};
        return std::nullopt;
      });
  ASSERT_TRUE(snap.ok());
  const VipEntry& v = (*snap)->vips[(*snap)->vip_table.Lookup(
      IpAddr::V4(0xcb007101), IpFamily::kIpv4, htons(80), IPPROTO_TCP)];
  const std::vector<uint32_t> slots = v.maglev->SlotCounts();
  EXPECT_EQ(slots[0], 0u);
  EXPECT_EQ(slots[1], 0u);
  EXPECT_EQ(slots[2], v.maglev->size());
  EXPECT_EQ((*snap)->backends[v.backends[0]].state, BackendState::kDraining);
  EXPECT_TRUE((*snap)->backends[v.backends[0]].resolved);
  EXPECT_FALSE((*snap)->backends[v.backends[1]].resolved);
  EXPECT_EQ(b.unresolved().size(), 3u);  // 10.0.1.2, 2001:db8::3, 2001:db8::9
}

TEST(NodeParamsFromProto, ParsesAndRejects) {
  v1::NodeParams p;
  p.set_tunnel_source_ipv4("192.0.2.1");
  p.add_nat_addresses("192.0.2.200");
  p.add_nat_addresses("2001:db8::200");
  p.set_gateway_mac_ipv4("02:00:00:00:00:fe");
  p.add_static_neighbors()->set_address("10.0.1.1");
  p.mutable_static_neighbors(0)->set_mac("02:00:00:00:01:01");
  std::vector<std::pair<std::pair<IpAddr, IpFamily>, MacAddr>> statics;
  auto n = NodeParamsFromProto(p, MacAddr{{2, 1, 1, 1, 1, 1}}, &statics);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_TRUE(n->has_tunnel_src4);
  EXPECT_FALSE(n->has_tunnel_src6);
  EXPECT_EQ(n->nat_addrs4.size(), 1u);
  EXPECT_EQ(n->nat_addrs6.size(), 1u);
  EXPECT_EQ(n->port_mac, (MacAddr{{2, 1, 1, 1, 1, 1}}));
  EXPECT_EQ(statics.size(), 1u);

  p.set_tunnel_source_ipv6("192.0.2.9");
  auto bad = NodeParamsFromProto(p, MacAddr{}, nullptr);
  EXPECT_NE(bad.status().message().find("node.tunnel_source_ipv6"), std::string::npos);
  p.clear_tunnel_source_ipv6();
  p.mutable_static_neighbors(0)->set_mac("02:00:00:00:01");
  bad = NodeParamsFromProto(p, MacAddr{}, nullptr);
  EXPECT_NE(bad.status().message().find("node.static_neighbors[0].mac"), std::string::npos);
  p.mutable_static_neighbors(0)->set_mac("02:00:00:00:01:01");
  p.set_nat_port_min(5000);
  p.set_nat_port_max(4000);
  EXPECT_FALSE(NodeParamsFromProto(p, MacAddr{}, nullptr).ok());
}

}  // namespace
}  // namespace lb
