// Pipeline tests: real workers and RCU snapshots between net_ring ports. Each test injects frames
// as the network or the kernel would, and asserts every header field a backend, client or kernel
// would see.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "gtest/gtest.h"
#include "tests/lib/packet_builder.h"
#include "tests/pipeline/harness.h"

namespace lb::testing {
namespace {

constexpr char kVip4[] = "203.0.113.1";
constexpr char kVip6[] = "2001:db8:100::1";
constexpr char kClient4[] = "198.51.100.7";
constexpr char kClient6[] = "2001:db8:c::7";
constexpr char kTunSrc4[] = "192.0.2.100";
constexpr char kTunSrc6[] = "2001:db8:ffff::100";
constexpr char kNatAddr4[] = "192.0.2.200";
constexpr char kNatAddr6[] = "2001:db8:ffff::200";
const Bytes kGatewayMac = {0x02, 0, 0, 0, 0, 0xfe};

Bytes BackendMac(int i) { return {0x02, 0, 0, 0, 1, static_cast<uint8_t>(i)}; }
std::string Backend4(int i) { return "10.0.1." + std::to_string(i); }
std::string Backend6(int i) { return "2001:db8:b::" + std::to_string(i); }

std::string MacText(const Bytes& m) {
  char b[32];
  std::snprintf(b, sizeof(b), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return b;
}

const Bytes kNodeMac = {0x02, 0, 0, 0, 0, 0x01};  // PacketBuilder's default destination MAC

v1::NodeParams Node() {
  v1::NodeParams n;
  n.set_port_mac("02:00:00:00:00:01");
  n.set_tunnel_source_ipv4(kTunSrc4);
  n.set_tunnel_source_ipv6(kTunSrc6);
  n.add_nat_addresses(kNatAddr4);
  n.add_nat_addresses(kNatAddr6);
  n.set_nat_port_min(20000);
  n.set_nat_port_max(29999);
  n.set_gateway_mac_ipv4(MacText(kGatewayMac));
  n.set_gateway_mac_ipv6(MacText(kGatewayMac));
  for (int i = 1; i <= 9; ++i) {
    for (const std::string& a : {Backend4(i), Backend6(i)}) {
      v1::StaticNeighbor* sn = n.add_static_neighbors();
      sn->set_address(a);
      sn->set_mac(MacText(BackendMac(i)));
    }
  }
  return n;
}

v1::Vip* AddVip(v1::ServiceConfig* c, const std::string& addr, uint32_t port,
                v1::ForwardingMode mode, const std::vector<std::string>& backends,
                v1::Protocol proto = v1::PROTOCOL_TCP) {
  v1::Vip* v = c->add_vips();
  v->set_address(addr);
  v->set_port(port);
  v->set_protocol(proto);
  v->set_mode(mode);
  for (const std::string& b : backends) v->add_backends()->set_address(b);
  return v;
}

Bytes Syn4(uint16_t sport, const std::string& client = kClient4, uint8_t flags = 0x02) {
  return PacketBuilder()
      .Ether(0, kNodeMac, kGatewayMac)
      .Ipv4(client, kVip4, IPPROTO_TCP, 60)
      .Tcp(sport, 80, flags)
      .Payload(12)
      .Finish();
}

// Index of the backend whose MAC a forwarded frame carries (1-based), or 0.
int BackendOf(const Bytes& out) {
  if (out.size() < 6 || out[0] != 0x02 || out[4] != 1) return 0;
  return out[5];
}

void ExpectIpv4HeaderChecksumOk(const Bytes& f, size_t l3) {
  const size_t ihl = (f[l3] & 0x0f) * 4u;
  EXPECT_EQ(InternetChecksum(&f[l3], ihl), 0) << "IPv4 header checksum";
}

uint16_t L4Checksum(const Bytes& f, size_t l3, bool v6, uint8_t proto, size_t l4, size_t end) {
  uint32_t sum = 0;
  const auto add = [&sum](const uint8_t* p, size_t n) {
    for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  };
  if (v6) {
    add(&f[l3 + 8], 32);
  } else {
    add(&f[l3 + 12], 8);
  }
  sum += proto + static_cast<uint32_t>(end - l4);
  return InternetChecksum(&f[l4], end - l4, sum);
}

class Pipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    auto h = PipelineHarness::Create(GetParamWorkers());
    ASSERT_TRUE(h.ok()) << h.status();
    h_ = *std::move(h);
  }
  virtual uint32_t GetParamWorkers() { return 1; }
  std::unique_ptr<PipelineHarness> h_;
};

TEST_F(Pipeline, TunIpv4EncapsulatesToOneBackendPerFlow) {
  v1::ServiceConfig c;
  AddVip(&c, kVip4, 80, v1::FORWARDING_MODE_TUN, {Backend4(1), Backend4(2), Backend4(3)});
  ASSERT_TRUE(h_->Apply(c, Node()).ok());

  const Bytes in = Syn4(40000);
  h_->Send(in);
  auto out = h_->ReceiveUplink(1);
  ASSERT_EQ(out.size(), 1u);
  const Bytes& f = out[0];
  const int b = BackendOf(f);
  ASSERT_GE(b, 1);
  ASSERT_LE(b, 3);
  EXPECT_EQ(Bytes(f.begin() + 6, f.begin() + 12), kNodeMac);
  EXPECT_EQ(f[12], 0x08);
  EXPECT_EQ(f[13], 0x00);
  EXPECT_EQ(f[14], 0x45);
  EXPECT_EQ(f[14 + 9], 4) << "IP-in-IP";
  EXPECT_EQ(Bytes(f.begin() + 26, f.begin() + 30), V4(kTunSrc4));
  EXPECT_EQ(Bytes(f.begin() + 30, f.begin() + 34), V4(Backend4(b)));
  ExpectIpv4HeaderChecksumOk(f, 14);
  EXPECT_EQ(Bytes(f.begin() + 34, f.end()), Bytes(in.begin() + 14, in.end())) << "inner intact";

  // Later packets of the flow (ACKs) go to the same backend; other flows spread over all three.
  for (int i = 0; i < 5; ++i) h_->Send(Syn4(40000, kClient4, 0x10));
  for (const Bytes& o : h_->ReceiveUplink(5)) EXPECT_EQ(BackendOf(o), b);
  std::set<int> seen;
  for (uint16_t p = 1000; p < 1100; ++p) h_->Send(Syn4(p));
  for (const Bytes& o : h_->ReceiveUplink(100)) seen.insert(BackendOf(o));
  EXPECT_EQ(seen, (std::set<int>{1, 2, 3}));
  const auto counters = h_->dataplane().Collect();
  EXPECT_EQ(counters.total.to_backend, 106u);
  EXPECT_EQ(counters.total.conn_misses, 101u);
  EXPECT_EQ(counters.total.conn_hits, 5u);
}

TEST_F(Pipeline, DrRewritesOnlyMacs) {
  v1::ServiceConfig c;
  AddVip(&c, kVip4, 80, v1::FORWARDING_MODE_DR, {Backend4(4)});
  ASSERT_TRUE(h_->Apply(c, Node()).ok());
  const Bytes in = Syn4(41000);
  h_->Send(in);
  auto out = h_->ReceiveUplink(1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(Bytes(out[0].begin(), out[0].begin() + 6), BackendMac(4));
  EXPECT_EQ(Bytes(out[0].begin() + 6, out[0].begin() + 12), kNodeMac);
  EXPECT_EQ(Bytes(out[0].begin() + 12, out[0].end()), Bytes(in.begin() + 12, in.end()));
}

TEST_F(Pipeline, GueIpv6CarriesTheInnerPacketInUdp) {
  v1::ServiceConfig c;
  AddVip(&c, kVip6, 443, v1::FORWARDING_MODE_GUE, {Backend6(5)});
  ASSERT_TRUE(h_->Apply(c, Node()).ok());
  const Bytes in = PacketBuilder()
                       .Ether()
                       .Ipv6(kClient6, kVip6, IPPROTO_TCP)
                       .Tcp(50000, 443)
                       .Payload(20)
                       .Finish();
  h_->Send(in);
  auto out = h_->ReceiveUplink(1);
  ASSERT_EQ(out.size(), 1u);
  const Bytes& f = out[0];
  EXPECT_EQ(BackendOf(f), 5);
  EXPECT_EQ(f[12], 0x86);
  EXPECT_EQ(f[13], 0xdd);
  EXPECT_EQ(f[14 + 6], IPPROTO_UDP);
  EXPECT_EQ(Bytes(f.begin() + 22, f.begin() + 38), V6(kTunSrc6));
  EXPECT_EQ(Bytes(f.begin() + 38, f.begin() + 54), V6(Backend6(5)));
  EXPECT_EQ(f[54 + 2] << 8 | f[54 + 3], 6080) << "GUE destination port";
  EXPECT_EQ(L4Checksum(f, 14, true, IPPROTO_UDP, 54, f.size()), 0) << "UDP checksum";
  EXPECT_EQ(Bytes(f.begin() + 62, f.end()), Bytes(in.begin() + 14, in.end()));
}

TEST_F(Pipeline, FullNatRoundTrip) {
  v1::ServiceConfig c;
  v1::Vip* v = AddVip(&c, kVip4, 80, v1::FORWARDING_MODE_NAT, {Backend4(6)});
  v->mutable_backends(0)->set_port(8080);
  ASSERT_TRUE(h_->Apply(c, Node()).ok());
  h_->Send(Syn4(42000));
  auto out = h_->ReceiveUplink(1);
  ASSERT_EQ(out.size(), 1u);
  const Bytes& f = out[0];
  EXPECT_EQ(BackendOf(f), 6);
  EXPECT_EQ(Bytes(f.begin() + 26, f.begin() + 30), V4(kNatAddr4));
  EXPECT_EQ(Bytes(f.begin() + 30, f.begin() + 34), V4(Backend4(6)));
  EXPECT_EQ(f[14 + 8], 59) << "TTL decremented";
  const uint16_t nat_port = static_cast<uint16_t>(f[34] << 8 | f[35]);
  EXPECT_GE(nat_port, 20000);
  EXPECT_LE(nat_port, 29999);
  EXPECT_EQ(f[36] << 8 | f[37], 8080);
  ExpectIpv4HeaderChecksumOk(f, 14);
  EXPECT_EQ(L4Checksum(f, 14, false, IPPROTO_TCP, 34, f.size()), 0) << "TCP checksum";

  // The backend answers the NAT address; the node turns it back into VIP -> client.
  const Bytes reply = PacketBuilder()
                          .Ether(0, kNodeMac, BackendMac(6))
                          .Ipv4(Backend4(6), kNatAddr4, IPPROTO_TCP, 64)
                          .Tcp(8080, nat_port, 0x12)
                          .Payload(3)
                          .Finish();
  h_->Send(reply);
  out = h_->ReceiveUplink(1);
  ASSERT_EQ(out.size(), 1u);
  const Bytes& r = out[0];
  EXPECT_EQ(Bytes(r.begin(), r.begin() + 6), kGatewayMac);
  EXPECT_EQ(Bytes(r.begin() + 26, r.begin() + 30), V4(kVip4));
  EXPECT_EQ(Bytes(r.begin() + 30, r.begin() + 34), V4(kClient4));
  EXPECT_EQ(r[34] << 8 | r[35], 80);
  EXPECT_EQ(r[36] << 8 | r[37], 42000);
  ExpectIpv4HeaderChecksumOk(r, 14);
  EXPECT_EQ(L4Checksum(r, 14, false, IPPROTO_TCP, 34, r.size()), 0);
  EXPECT_EQ(h_->dataplane().Collect().total.nat_replies, 1u);

  // A packet to the NAT address on a port no session owns is dropped and counted.
  h_->Send(PacketBuilder()
               .Ether()
               .Ipv4(Backend4(6), kNatAddr4, IPPROTO_TCP)
               .Tcp(8080, 20001, 0x10)
               .Finish());
  ASSERT_TRUE(h_->WaitProcessed(3));
  EXPECT_EQ(h_->ReceiveUplink(1, std::chrono::milliseconds(100)).size(), 0u);
  EXPECT_EQ(h_->dataplane().Collect().total.drops[static_cast<size_t>(Drop::kNatNoSession)], 1u);
}

TEST_F(Pipeline, ExceptionPathBothWays) {
  v1::ServiceConfig c;
  AddVip(&c, kVip4, 80, v1::FORWARDING_MODE_TUN, {Backend4(1)});
  ASSERT_TRUE(h_->Apply(c, Node()).ok());
  Bytes arp = PacketBuilder().Ether(0x0806, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}).Finish();
  arp.insert(arp.end(), {0, 1, 8, 0, 6, 4, 0, 1});
  arp.resize(arp.size() + 20, 0);
  const Bytes ospf = PacketBuilder()
                         .Ether(0, {0x01, 0x00, 0x5e, 0, 0, 5})
                         .Ipv4("192.0.2.1", "224.0.0.5", 89, 1)
                         .Payload(44)
                         .Finish();
  const Bytes to_node =
      PacketBuilder().Ether().Ipv4(kClient4, "192.0.2.100", IPPROTO_TCP).Tcp(1, 22).Finish();
  for (const Bytes& b : {arp, ospf, to_node}) h_->Send(b);
  auto k = h_->ReceiveKernel(3);
  ASSERT_EQ(k.size(), 3u);
  EXPECT_EQ(k[0], arp);
  EXPECT_EQ(k[1], ospf);
  EXPECT_EQ(k[2], to_node);
  h_->SendFromKernel(ospf);
  auto up = h_->ReceiveUplink(1);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0], ospf);
  const auto counters = h_->dataplane().Collect();
  EXPECT_EQ(counters.total.to_kernel, 3u);
  EXPECT_EQ(counters.total.from_kernel, 1u);
}

TEST_F(Pipeline, EchoRequestToVipIsAnswered) {
  v1::ServiceConfig c;
  AddVip(&c, kVip4, 80, v1::FORWARDING_MODE_TUN, {Backend4(1)});
  ASSERT_TRUE(h_->Apply(c, Node()).ok());
  h_->Send(PacketBuilder()
               .Ether({}, kNodeMac, kGatewayMac)
               .Ipv4(kClient4, kVip4, IPPROTO_ICMP)
               .Icmp(8, 0, 0x12340001)
               .Payload(32)
               .Finish());
  auto out = h_->ReceiveUplink(1);
  ASSERT_EQ(out.size(), 1u);
  const Bytes& r = out[0];
  EXPECT_EQ(Bytes(r.begin(), r.begin() + 6), kGatewayMac);
  EXPECT_EQ(Bytes(r.begin() + 26, r.begin() + 30), V4(kVip4));
  EXPECT_EQ(Bytes(r.begin() + 30, r.begin() + 34), V4(kClient4));
  EXPECT_EQ(r[34], 0) << "echo reply";
  EXPECT_EQ(InternetChecksum(&r[34], r.size() - 34), 0);
}

TEST_F(Pipeline, DrainingKeepsFlowsDownMovesThem) {
  v1::ServiceConfig c;
  v1::Vip* v = AddVip(&c, kVip4, 80, v1::FORWARDING_MODE_TUN, {Backend4(1), Backend4(2)});
  ASSERT_TRUE(h_->Apply(c, Node()).ok());
  // 200 flows established over both backends.
  std::map<uint16_t, int> backend_of;
  for (uint16_t p = 2000; p < 2200; ++p) h_->Send(Syn4(p));
  auto out = h_->ReceiveUplink(200);
  ASSERT_EQ(out.size(), 200u);
  for (const Bytes& o : out)
    backend_of[static_cast<uint16_t>(o[34 + 20] << 8 | o[34 + 21])] = BackendOf(o);
  ASSERT_EQ(backend_of.size(), 200u);

  v->mutable_backends(0)->set_state(v1::BACKEND_STATE_DRAINING);
  ASSERT_TRUE(h_->Apply(c, Node()).ok());
  for (uint16_t p = 2000; p < 2200; ++p) h_->Send(Syn4(p, kClient4, 0x10));
  for (const Bytes& o : h_->ReceiveUplink(200)) {
    const uint16_t p = static_cast<uint16_t>(o[34 + 20] << 8 | o[34 + 21]);
    EXPECT_EQ(BackendOf(o), backend_of[p]) << "established flow kept its backend";
  }
  for (uint16_t p = 3000; p < 3100; ++p) h_->Send(Syn4(p));
  for (const Bytes& o : h_->ReceiveUplink(100)) EXPECT_EQ(BackendOf(o), 2) << "new flows";

  v->mutable_backends(0)->set_state(v1::BACKEND_STATE_DOWN);
  ASSERT_TRUE(h_->Apply(c, Node()).ok());
  for (uint16_t p = 2000; p < 2200; ++p) h_->Send(Syn4(p, kClient4, 0x10));
  int moved = 0;
  for (const Bytes& o : h_->ReceiveUplink(200)) {
    EXPECT_EQ(BackendOf(o), 2);
    moved += backend_of[static_cast<uint16_t>(o[34 + 20] << 8 | o[34 + 21])] == 1;
  }
  EXPECT_GT(moved, 0);
  EXPECT_EQ(h_->dataplane().Collect().total.conn_repicked, static_cast<uint64_t>(moved));
}

// Config changes while traffic flows: every packet of an established flow keeps its backend and
// nothing is dropped, across many snapshot swaps.
TEST_F(Pipeline, ConfigChangesUnderTrafficDisturbNoFlow) {
  v1::ServiceConfig c;
  v1::Vip* v =
      AddVip(&c, kVip4, 80, v1::FORWARDING_MODE_TUN, {Backend4(1), Backend4(2), Backend4(3)});
  AddVip(&c, kVip4, 443, v1::FORWARDING_MODE_TUN, {Backend4(7)});
  ASSERT_TRUE(h_->Apply(c, Node()).ok());
  constexpr int kFlows = 500;
  std::map<uint16_t, int> backend_of;
  for (int i = 0; i < kFlows; ++i) h_->Send(Syn4(static_cast<uint16_t>(5000 + i)));
  for (const Bytes& o : h_->ReceiveUplink(kFlows)) {
    backend_of[static_cast<uint16_t>(o[54] << 8 | o[55])] = BackendOf(o);
  }
  ASSERT_EQ(backend_of.size(), static_cast<size_t>(kFlows));

  std::atomic<bool> done{false};
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> received_count{0};
  std::thread sender([&] {
    // Keep at most 2048 packets in flight: the test's own TX ring (4096) must never fill when
    // the receiving thread is slow on a loaded machine, or the test would measure itself.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (int round = 0; round < 40 && !done; ++round) {
      for (int i = 0; i < kFlows; ++i) {
        while (sent - received_count >= 2048 && std::chrono::steady_clock::now() < deadline) {
          std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
        h_->Send(Syn4(static_cast<uint16_t>(5000 + i), kClient4, 0x10));
        ++sent;
      }
    }
  });
  std::vector<Bytes> received;
  std::thread receiver([&] {
    while (!done || received.size() < sent) {
      auto got = h_->ReceiveUplink(kFlows, std::chrono::milliseconds(50));
      received.insert(received.end(), got.begin(), got.end());
      received_count = received.size();
      if (done && got.empty()) break;
    }
  });
  // Meanwhile: add backends, change weights, touch the other VIP.
  for (int change = 0; change < 20; ++change) {
    if (change % 4 == 0) v->add_backends()->set_address(Backend4(4 + change / 4));
    v->mutable_backends(change % v->backends_size())->set_weight(1 + change % 3);
    c.mutable_vips(1)->mutable_backends(0)->set_weight(1 + change);
    ASSERT_TRUE(h_->Apply(c, Node()).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  sender.join();
  done = true;
  receiver.join();
  const uint64_t total_sent = sent;
  EXPECT_EQ(received.size(), total_sent) << "no packet lost";
  int moved = 0;
  for (const Bytes& o : received) {
    moved += BackendOf(o) != backend_of[static_cast<uint16_t>(o[54] << 8 | o[55])];
  }
  EXPECT_EQ(moved, 0) << "established flows moved";
  const auto counters = h_->dataplane().Collect();
  for (size_t d = 0; d < static_cast<size_t>(Drop::kCount); ++d) {
    EXPECT_EQ(counters.total.drops[d], 0u) << DropName(static_cast<Drop>(d));
  }
  std::printf(
      "config changes under traffic: %llu packets of %d flows across 20 snapshots, "
      "%zu forwarded, %d moved to another backend\n",
      static_cast<unsigned long long>(total_sent), kFlows, received.size(), moved);
}

// A mid-stream packet of a flow this node never saw (ECMP moved it here) reaches the backend a
// node that saw the SYN chose: both use the same Maglev table.
TEST_F(Pipeline, MidStreamPacketFollowsMaglevLikeAnotherNode) {
  v1::ServiceConfig c;
  AddVip(&c, kVip4, 80, v1::FORWARDING_MODE_TUN,
         {Backend4(1), Backend4(2), Backend4(3), Backend4(4), Backend4(5)});
  ASSERT_TRUE(h_->Apply(c, Node()).ok());
  std::map<uint16_t, int> first;
  for (uint16_t p = 7000; p < 7100; ++p) h_->Send(Syn4(p));
  for (const Bytes& o : h_->ReceiveUplink(100))
    first[static_cast<uint16_t>(o[54] << 8 | o[55])] = BackendOf(o);
  h_.reset();  // a different node: fresh connection table, same config
  auto other = PipelineHarness::Create();
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->Apply(c, Node()).ok());
  for (uint16_t p = 7000; p < 7100; ++p) (*other)->Send(Syn4(p, kClient4, 0x10));
  auto out = (*other)->ReceiveUplink(100);
  ASSERT_EQ(out.size(), 100u);
  for (const Bytes& o : out) {
    EXPECT_EQ(BackendOf(o), first[static_cast<uint16_t>(o[54] << 8 | o[55])]);
  }
}

class PipelineTwoWorkers : public Pipeline {
  uint32_t GetParamWorkers() override { return 2; }
};

// With two workers, a full-NAT reply that arrives on the other worker's queue is handed to the
// worker that owns the session (by its port), and comes out rewritten.
TEST_F(PipelineTwoWorkers, NatReplyOnTheOtherQueueIsHandedOver) {
  v1::ServiceConfig c;
  AddVip(&c, kVip4, 80, v1::FORWARDING_MODE_NAT, {Backend4(6)});
  ASSERT_TRUE(h_->Apply(c, Node()).ok());
  for (uint16_t q = 0; q < 2; ++q) {
    h_->Send(Syn4(static_cast<uint16_t>(43000 + q)), q);
    auto out = h_->ReceiveUplink(1);
    ASSERT_EQ(out.size(), 1u);
    const uint16_t nat_port = static_cast<uint16_t>(out[0][34] << 8 | out[0][35]);
    EXPECT_EQ(nat_port < 25000, q == 0) << "worker " << q << "'s share of the port range";
    h_->Send(PacketBuilder()
                 .Ether()
                 .Ipv4(Backend4(6), kNatAddr4, IPPROTO_TCP)
                 .Tcp(80, nat_port, 0x12)
                 .Finish(),
             static_cast<uint16_t>(1 - q));
    out = h_->ReceiveUplink(1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(Bytes(out[0].begin() + 30, out[0].begin() + 34), V4(kClient4));
    EXPECT_EQ(out[0][36] << 8 | out[0][37], 43000 + q);
  }
  EXPECT_EQ(h_->dataplane().Collect().total.handoffs, 2u);
}

}  // namespace
}  // namespace lb::testing
