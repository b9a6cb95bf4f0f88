// Forwarder units (DPDK-free): full-NAT session bookkeeping, timeouts, re-picks, and robustness
// against mutated frames (every frame sent to the uplink keeps valid checksums).
#include "dataplane/core/forwarder.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <map>
#include <memory>

#include "dataplane/core/conn_table.h"
#include "dataplane/core/maglev.h"
#include "dataplane/core/packet_parser.h"
#include "gtest/gtest.h"
#include "tests/lib/packet_builder.h"

namespace lb {
namespace {
using testing::Bytes;
using testing::PacketBuilder;

IpAddr A4(const char* s) {
  IpAddr a{};
  inet_pton(AF_INET, s, a.bytes);
  return a;
}

struct World {
  std::shared_ptr<Snapshot> s = std::make_shared<Snapshot>();
  std::unique_ptr<ConnTable> conns;
  std::unique_ptr<WorkerCounters> counters;
  std::unique_ptr<Forwarder> fwd;
  World(ForwardingMode mode, uint8_t proto, uint32_t capacity, uint32_t worker = 0,
        uint32_t workers = 1,
        std::vector<std::pair<const char*, BackendState>> bes = {
            {"10.1.0.1", BackendState::kActive}}) {
    VipKey key{A4("192.0.2.10"), htons(80), proto, IpFamily::kIpv4};
    s->vip_table = *VipTable::Build({key}, {1});
    s->vips.resize(2);
    VipEntry& v = s->vips[1];
    v.handle = 1;
    v.key = key;
    v.mode = mode;
    std::vector<MaglevBackend> mb;
    s->backends.resize(bes.size() + 1);
    for (size_t i = 0; i < bes.size(); ++i) {
      BackendEntry& b = s->backends[i + 1];
      b.handle = static_cast<uint32_t>(i + 1);
      b.vip = 1;
      b.addr = A4(bes[i].first);
      b.family = IpFamily::kIpv4;
      b.state = bes[i].second;
      b.resolved = true;
      b.next_hop_mac = MacAddr{{2, 0, 0, 0, 0, static_cast<uint8_t>(i + 1)}};
      mb.push_back({BackendId(b.addr), b.state == BackendState::kActive ? 1u : 0u});
      v.backends.push_back(static_cast<uint32_t>(i + 1));
    }
    v.maglev = std::make_shared<const MaglevTable>(*MaglevTable::Build(mb, 251));
    s->node.nat_addrs4 = {A4("198.51.100.1")};
    s->node.has_gateway_mac4 = true;
    s->node.gateway_mac4 = MacAddr{{2, 0, 0, 0, 0, 0xfe}};
    s->node.port_mac = MacAddr{{2, 0, 0, 0, 0, 1}};  // PacketBuilder's default destination
    conns = ConnTable::Create(capacity);
    counters = std::make_unique<WorkerCounters>(16, 16);
    fwd =
        std::make_unique<Forwarder>(ForwarderConfig{worker, workers}, conns.get(), counters.get());
  }
  Action Run(Bytes& frame, uint32_t now, Frame* out = nullptr, ParsedPacket* pp = nullptr) {
    std::vector<uint8_t> buf(128 + frame.size());
    std::memcpy(buf.data() + 128, frame.data(), frame.size());
    Frame f{buf.data() + 128, static_cast<uint32_t>(frame.size()), 128};
    ParsedPacket p = ParsePacket(f.data, f.len);
    Action a = fwd->Process(&f, p, *s, now);
    frame.assign(f.data, f.data + f.len);
    if (out) *out = f;
    if (pp) *pp = p;
    return a;
  }
};

Bytes Udp4(const char* src, const char* dst, uint16_t sp, uint16_t dp) {
  return PacketBuilder().Ether().Ipv4(src, dst, IPPROTO_UDP).Udp(sp, dp).Payload(8).Finish();
}
Bytes Tcp4(const char* src, const char* dst, uint16_t sp, uint16_t dp, uint8_t flags) {
  return PacketBuilder().Ether().Ipv4(src, dst, IPPROTO_TCP).Tcp(sp, dp, flags).Finish();
}
// A later fragment (offset 8 bytes, more fragments) of a TCP datagram: no ports.
Bytes TcpFragment4(const char* src, const char* dst) {
  return PacketBuilder()
      .Ether()
      .Ipv4(src, dst, IPPROTO_TCP, 64, {}, /*frag=*/0x2001)
      .Payload(16)
      .Finish();
}

// A switch floods unknown unicast: a frame for another host's MAC must not be forwarded (another
// node may own it), while broadcast and multicast still reach the kernel (ARP, OSPF).
TEST(Forwarder, UnicastForAnotherMacIsDroppedBroadcastGoesToTheKernel) {
  World w(ForwardingMode::kTun, IPPROTO_TCP, 1 << 12);
  w.s->node.has_tunnel_src4 = true;
  Bytes other = PacketBuilder()
                    .Ether(0, {0x02, 0, 0, 0, 0, 0x77})
                    .Ipv4("203.0.113.5", "192.0.2.10", IPPROTO_TCP)
                    .Tcp(40000, 80, kTcpSyn)
                    .Finish();
  EXPECT_EQ(w.Run(other, 0), Action::kDrop);
  EXPECT_EQ(w.counters->drops[static_cast<size_t>(Drop::kNotOurMac)], 1u);
  Bytes ours = Tcp4("203.0.113.5", "192.0.2.10", 40000, 80, kTcpSyn);
  EXPECT_EQ(w.Run(ours, 1), Action::kUplink);
  Bytes arp = PacketBuilder().Ether(0x0806, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}).Finish();
  arp.insert(arp.end(), {0, 1, 8, 0, 6, 4, 0, 1});
  arp.resize(arp.size() + 20, 0);
  EXPECT_EQ(w.Run(arp, 2), Action::kKernel);
  Bytes ospf = PacketBuilder()
                   .Ether(0, {0x01, 0x00, 0x5e, 0, 0, 5})
                   .Ipv4("192.0.2.1", "224.0.0.5", 89, 1)
                   .Payload(40)
                   .Finish();
  EXPECT_EQ(w.Run(ospf, 3), Action::kKernel);
}

// 1. The reverse-entry insert in AllocateNatPort can evict the forward entry that Send still
// points at; Send then writes NAT fields into the reverse entry.
TEST(Forwarder, NatReverseInsertNeverEvictsItsForwardEntry) {
  World w(ForwardingMode::kNat, IPPROTO_UDP, 8);  // one bucket of 8 ways
  // Fill the bucket with long-lived entries (e.g. TCP flows, 300 s left).
  for (int i = 0; i < 8; ++i) {
    FlowKey k;
    k.family = IpFamily::kIpv4;
    k.proto = IPPROTO_TCP;
    k.src = A4("203.0.113.99");
    k.dst = A4("192.0.2.77");
    k.src_port = htons(static_cast<uint16_t>(1000 + i));
    ConnValue v;
    w.conns->Insert(k, FlowHash(k), v, 0, 300000);
  }
  Bytes f = Udp4("203.0.113.5", "192.0.2.10", 5555, 80);
  ASSERT_EQ(w.Run(f, 0), Action::kUplink);
  ParsedPacket out = ParsePacket(f.data(), f.size());
  const uint16_t nat_port = ntohs(out.flow.src_port);
  // Backend replies to the NAT address and port it saw.
  Bytes r = Udp4("10.1.0.1", "198.51.100.1", 80, nat_port);
  ASSERT_EQ(w.Run(r, 1), Action::kUplink);
  ParsedPacket rp = ParsePacket(r.data(), r.size());
  // The reply must go back to the client's port 5555.
  EXPECT_EQ(ntohs(rp.flow.dst_port), 5555) << "reply sent to port " << ntohs(rp.flow.dst_port);
  // And the forward entry should still exist (next client packet reuses the NAT port).
  Bytes f2 = Udp4("203.0.113.5", "192.0.2.10", 5555, 80);
  ASSERT_EQ(w.Run(f2, 2), Action::kUplink);
  ParsedPacket out2 = ParsePacket(f2.data(), f2.size());
  EXPECT_EQ(ntohs(out2.flow.src_port), nat_port);
}

// 2. A reverse entry that expires (or is evicted) before its forward entry frees the port for a
// new flow while the old flow still uses it: two clients share one backend-side 5-tuple.
TEST(Forwarder, NatPortIsNeverSharedByTwoLiveFlows) {
  World w(ForwardingMode::kNat, IPPROTO_TCP, 1 << 12);
  w.s->node.nat_port_min = 2000;
  w.s->node.nat_port_max = 2000;  // one port makes reuse immediate; a big range only delays it
  Bytes a = Tcp4("203.0.113.5", "192.0.2.10", 40000, 80, kTcpSyn);
  ASSERT_EQ(w.Run(a, 0), Action::kUplink);
  // The backend resets the connection: the reverse entry gets the 10 s closing timeout, the
  // forward entry keeps 300 s.
  Bytes rst = Tcp4("10.1.0.1", "198.51.100.1", 80, 2000, kTcpRst | kTcpAck);
  ASSERT_EQ(w.Run(rst, 1), Action::kUplink);
  // 11 s later another client connects: port 2000 looks free.
  Bytes c = Tcp4("203.0.113.6", "192.0.2.10", 40001, 80, kTcpSyn);
  ASSERT_EQ(w.Run(c, 11001), Action::kUplink);
  ParsedPacket cp = ParsePacket(c.data(), c.size());
  // Client A sends again (retransmission / reuse of its 4-tuple). Its session is gone and the
  // only port is C's now: A must be refused, never sent on C's backend-side tuple.
  Bytes a2 = Tcp4("203.0.113.5", "192.0.2.10", 40000, 80, kTcpSyn);
  const Action a2_action = w.Run(a2, 11002);
  ParsedPacket ap = ParsePacket(a2.data(), a2.size());
  if (a2_action == Action::kUplink) {
    EXPECT_FALSE(ap.flow == cp.flow)
        << "two clients share backend-side tuple " << ap.flow.ToString();
  } else {
    EXPECT_EQ(w.counters->drops[static_cast<size_t>(Drop::kNatPortsExhausted)], 1u);
  }
}

// 4. An ICMP error about a TCP flow lowers the flow's idle timeout to the UDP one.
TEST(Forwarder, IcmpErrorDoesNotChangeTheFlowTimeout) {
  World w(ForwardingMode::kDr, IPPROTO_TCP, 1 << 12);
  Bytes syn = Tcp4("203.0.113.5", "192.0.2.10", 40000, 80, kTcpAck);
  ASSERT_EQ(w.Run(syn, 0), Action::kUplink);
  // Router says "fragmentation needed" about a packet the VIP sent to the client.
  Bytes quoted = Tcp4("192.0.2.10", "203.0.113.5", 80, 40000, kTcpAck);
  Bytes inner(quoted.begin() + 14, quoted.begin() + 14 + 28);
  Bytes err = PacketBuilder()
                  .Ether()
                  .Ipv4("198.18.0.1", "192.0.2.10", IPPROTO_ICMP)
                  .Icmp(3, 4, 1400)
                  .Raw(inner)
                  .Finish();
  ASSERT_EQ(w.Run(err, 1000), Action::kUplink);
  FlowKey k;
  k.family = IpFamily::kIpv4;
  k.proto = IPPROTO_TCP;
  k.src = A4("203.0.113.5");
  k.dst = A4("192.0.2.10");
  k.src_port = htons(40000);
  k.dst_port = htons(80);
  EXPECT_NE(w.conns->Find(k, FlowHash(k), 200000), nullptr) << "TCP entry gone after 200 s";
}

// 5. After a NAT re-pick the old reverse entry still translates the old backend's packets.
TEST(Forwarder, NatRepickRemovesTheOldReverseEntry) {
  World w(ForwardingMode::kNat, IPPROTO_TCP, 1 << 12, 0, 1,
          {{"10.1.0.1", BackendState::kActive}, {"10.1.0.2", BackendState::kActive}});
  Bytes a = Tcp4("203.0.113.5", "192.0.2.10", 40000, 80, kTcpSyn);
  ASSERT_EQ(w.Run(a, 0), Action::kUplink);
  ParsedPacket ap = ParsePacket(a.data(), a.size());
  const IpAddr old_backend = ap.flow.dst;
  const uint16_t old_port = ntohs(ap.flow.src_port);
  // Mark that backend down (new snapshot).
  auto s2 = std::make_shared<Snapshot>(*w.s);
  std::vector<MaglevBackend> mb;
  for (size_t i = 1; i < s2->backends.size(); ++i) {
    if (s2->backends[i].addr == old_backend) s2->backends[i].state = BackendState::kDown;
    mb.push_back({BackendId(s2->backends[i].addr),
                  s2->backends[i].state == BackendState::kActive ? 1u : 0u});
  }
  s2->vips[1].maglev = std::make_shared<const MaglevTable>(*MaglevTable::Build(mb, 251));
  w.s = s2;
  Bytes a2 = Tcp4("203.0.113.5", "192.0.2.10", 40000, 80, kTcpAck);
  ASSERT_EQ(w.Run(a2, 10), Action::kUplink);
  EXPECT_EQ(w.counters->conn_repicked, 1u);
  char buf[64];
  inet_ntop(AF_INET, old_backend.bytes, buf, sizeof buf);
  Bytes late = Tcp4(buf, "198.51.100.1", 80, old_port, kTcpAck);
  EXPECT_NE(w.Run(late, 20), Action::kUplink) << "down backend's packet still NATed to client";
}

// 6. Partition consistency: every port AllocateNatPort can hand out maps back to its worker.
TEST(Forwarder, NatPortOwnershipMatchesAllocation) {
  for (uint32_t workers = 1; workers <= 70; ++workers) {
    for (uint32_t lo : {1u, 1024u, 65000u, 65535u}) {
      for (uint32_t hi : {lo, lo + 1, lo + 2, lo + 5, lo + 69, lo + 1000, 65535u}) {
        if (hi > 65535 || hi < lo) continue;
        NodeParams n;
        n.nat_port_min = lo;
        n.nat_port_max = hi;
        const uint32_t total = hi - lo + 1, per = total / workers;
        for (uint32_t id = 0; id < workers; ++id) {
          if (per == 0) break;
          const uint32_t start = lo + id * per;
          const uint32_t cnt = id + 1 == workers ? total - id * per : per;
          for (uint32_t p = start; p < start + cnt; ++p) {
            ASSERT_EQ(Forwarder::NatPortOwner(n, p, workers), id)
                << workers << " " << lo << "-" << hi;
          }
        }
      }
    }
  }
}

// 7. TCP closing timeout: a client FIN then the last ACK puts the entry back to 300 s.
TEST(Forwarder, ClosingTimeoutSticksAfterFinalAck) {
  World w(ForwardingMode::kDr, IPPROTO_TCP, 1 << 12);
  Bytes fin = Tcp4("203.0.113.5", "192.0.2.10", 40000, 80, kTcpFin | kTcpAck);
  ASSERT_EQ(w.Run(fin, 0), Action::kUplink);
  Bytes ack = Tcp4("203.0.113.5", "192.0.2.10", 40000, 80, kTcpAck);
  ASSERT_EQ(w.Run(ack, 10), Action::kUplink);
  FlowKey k;
  k.family = IpFamily::kIpv4;
  k.proto = IPPROTO_TCP;
  k.src = A4("203.0.113.5");
  k.dst = A4("192.0.2.10");
  k.src_port = htons(40000);
  k.dst_port = htons(80);
  EXPECT_EQ(w.conns->Find(k, FlowHash(k), 60000), nullptr) << "closed flow held for 300 s";
}

}  // namespace
}  // namespace lb
namespace lb {
namespace {
// 9. A cleanly closed NAT connection keeps its port for the full TCP timeout.
TEST(ForwarderNatTimeouts, ClosedOrUnansweredSessionsReleaseTheirPort) {
  World w(ForwardingMode::kNat, IPPROTO_TCP, 1 << 12);
  w.s->node.nat_port_min = 2000;
  w.s->node.nat_port_max = 2000;
  const char* C = "203.0.113.5";
  const char* V = "192.0.2.10";
  const char* B = "10.1.0.1";
  const char* N = "198.51.100.1";
  Bytes p;
  p = Tcp4(C, V, 40000, 80, kTcpSyn);
  ASSERT_EQ(w.Run(p, 0), Action::kUplink);
  p = Tcp4(B, N, 80, 2000, kTcpSyn | kTcpAck);
  ASSERT_EQ(w.Run(p, 1), Action::kUplink);
  p = Tcp4(C, V, 40000, 80, kTcpAck);
  ASSERT_EQ(w.Run(p, 2), Action::kUplink);
  p = Tcp4(C, V, 40000, 80, kTcpFin | kTcpAck);
  ASSERT_EQ(w.Run(p, 3), Action::kUplink);
  p = Tcp4(B, N, 80, 2000, kTcpFin | kTcpAck);
  ASSERT_EQ(w.Run(p, 4), Action::kUplink);
  p = Tcp4(C, V, 40000, 80, kTcpAck);
  ASSERT_EQ(w.Run(p, 5), Action::kUplink);
  // 30 s later (3x the closing timeout) a new client connects.
  p = Tcp4("203.0.113.6", V, 40001, 80, kTcpSyn);
  EXPECT_EQ(w.Run(p, 30000), Action::kUplink) << "port still held by the closed connection";
  // An unanswered SYN also holds the port for 300 s.
  World w2(ForwardingMode::kNat, IPPROTO_TCP, 1 << 12);
  w2.s->node.nat_port_min = 2000;
  w2.s->node.nat_port_max = 2000;
  p = Tcp4("203.0.113.66", V, 1234, 80, kTcpSyn);
  ASSERT_EQ(w2.Run(p, 0), Action::kUplink);
  p = Tcp4("203.0.113.6", V, 40001, 80, kTcpSyn);
  EXPECT_EQ(w2.Run(p, 120000), Action::kUplink) << "spoofed SYN holds the port 120 s later";
}
}  // namespace
}  // namespace lb
#include <random>
namespace lb {
namespace {
TEST(ForwarderRobustness, MutatedFramesNeverCrash) {
  std::mt19937_64 rng(42);
  for (ForwardingMode mode :
       {ForwardingMode::kDr, ForwardingMode::kTun, ForwardingMode::kGue, ForwardingMode::kNat}) {
    World w(mode, IPPROTO_UDP, 1 << 10, 1, 3);
    w.s->node.has_tunnel_src4 = true;
    w.s->node.tunnel_src4 = A4("198.51.100.9");
    const Bytes q = Udp4("192.0.2.10", "203.0.113.5", 80, 5555);
    std::vector<Bytes> seeds = {
        Udp4("203.0.113.5", "192.0.2.10", 5555, 80),
        Tcp4("203.0.113.5", "192.0.2.10", 1, 80, 2),
        Udp4("10.1.0.1", "198.51.100.1", 80, 40000),
        PacketBuilder()
            .Ether()
            .Ipv4("203.0.113.5", "192.0.2.10", IPPROTO_ICMP)
            .Icmp(8, 0, 7)
            .Payload(20)
            .Finish(),
        PacketBuilder()
            .Ether()
            .Ipv4("198.18.0.1", "192.0.2.10", IPPROTO_ICMP)
            .Icmp(3, 4, 1400)
            .Raw(Bytes(q.begin() + 14, q.end()))
            .Finish(),
        PacketBuilder()
            .Ether()
            .Vlan(5)
            .Ipv4("203.0.113.5", "192.0.2.10", IPPROTO_UDP, 64, {}, 0x2000)
            .Udp(1, 80)
            .Payload(30)
            .Finish(),
    };
    for (int it = 0; it < 400000; ++it) {
      Bytes f = seeds[rng() % seeds.size()];
      const int muts = 1 + rng() % 4;
      for (int m = 0; m < muts; ++m) {
        switch (rng() % 3) {
          case 0:
            if (!f.empty()) f[rng() % f.size()] = static_cast<uint8_t>(rng());
            break;
          case 1:
            if (f.size() > 1) f.resize(rng() % f.size());
            break;
          case 2:
            f.resize(f.size() + rng() % 40, static_cast<uint8_t>(rng()));
            break;
        }
      }
      if (f.empty()) f.push_back(0);
      w.Run(f, static_cast<uint32_t>(it));
    }
  }
}
}  // namespace
}  // namespace lb
namespace lb {
namespace {
// Returns true if every checksum of an IPv4 frame (outer, and for IPIP/GUE the inner) is right.
// fix=true rewrites them instead.
uint32_t Sum16(const uint8_t* p, size_t n, uint32_t s = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) s += p[i] << 8 | p[i + 1];
  if (n & 1) s += p[n - 1] << 8;
  return s;
}
uint16_t Fin(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}
bool CheckIp4(uint8_t* ip, size_t avail, bool fix, int depth = 0) {
  if (avail < 20 || (ip[0] >> 4) != 4) return true;
  size_t ihl = (ip[0] & 15) * 4, tot = ip[2] << 8 | ip[3];
  if (ihl < 20 || tot < ihl || tot > avail) return true;
  bool ok = true;
  if (fix) {
    ip[10] = ip[11] = 0;
    uint16_t c = Fin(Sum16(ip, ihl));
    ip[10] = c >> 8;
    ip[11] = c & 0xff;
  } else
    ok &= Fin(Sum16(ip, ihl)) == 0;
  const bool frag = ((ip[6] << 8 | ip[7]) & 0x3fff) != 0;
  uint8_t* l4 = ip + ihl;
  size_t l4len = tot - ihl;
  if (frag) return ok;
  uint8_t proto = ip[9];
  if (proto == IPPROTO_IPIP && depth == 0) return ok & CheckIp4(l4, l4len, fix, 1);
  size_t co;
  if (proto == IPPROTO_TCP) {
    if (l4len < 20) return ok;
    co = 16;
  } else if (proto == IPPROTO_UDP) {
    if (l4len < 8) return ok;
    co = 6;
    if (depth == 0 && (l4[2] << 8 | l4[3]) == 6080) ok &= CheckIp4(l4 + 8, l4len - 8, fix, 1);
    if (!fix && l4[6] == 0 && l4[7] == 0) return ok;
  } else if (proto == IPPROTO_ICMP) {
    if (l4len < 8) return ok;
    co = 2;
    if (fix) {
      l4[2] = l4[3] = 0;
      uint16_t c = Fin(Sum16(l4, l4len));
      l4[2] = c >> 8;
      l4[3] = c & 0xff;
      return ok;
    }
    return ok & (Fin(Sum16(l4, l4len)) == 0);
  } else
    return ok;
  uint32_t ps = Sum16(ip + 12, 8) + proto + l4len;
  if (fix) {
    l4[co] = l4[co + 1] = 0;
    uint16_t c = Fin(Sum16(l4, l4len, ps));
    if (proto == IPPROTO_UDP && c == 0) c = 0xffff;
    l4[co] = c >> 8;
    l4[co + 1] = c & 0xff;
    return ok;
  }
  return ok & (Fin(Sum16(l4, l4len, ps)) == 0);
}
bool Check(Bytes& f, bool fix) {
  size_t off = 14;
  if (f.size() < 14) return true;
  uint16_t et = f[12] << 8 | f[13];
  while (et == 0x8100 && f.size() >= off + 4) {
    et = f[off + 2] << 8 | f[off + 3];
    off += 4;
  }
  if (et != 0x0800) return true;
  return CheckIp4(f.data() + off, f.size() - off, fix);
}
TEST(ForwarderRobustness, EveryForwardedFrameHasValidChecksums) {
  std::mt19937_64 rng(7);
  uint64_t checked = 0, bad = 0;
  for (ForwardingMode mode :
       {ForwardingMode::kDr, ForwardingMode::kTun, ForwardingMode::kGue, ForwardingMode::kNat}) {
    World w(mode, IPPROTO_UDP, 1 << 10);
    w.s->node.has_tunnel_src4 = true;
    w.s->node.tunnel_src4 = A4("198.51.100.9");
    const Bytes q = Udp4("192.0.2.10", "203.0.113.5", 80, 5555);
    std::vector<Bytes> seeds = {
        Udp4("203.0.113.5", "192.0.2.10", 5555, 80),
        PacketBuilder()
            .Ether()
            .Ipv4("203.0.113.5", "192.0.2.10", IPPROTO_UDP, 64, {1, 1, 1, 1})
            .Udp(7, 80)
            .Payload(13)
            .Finish(),
        Udp4("10.1.0.1", "198.51.100.1", 80, 1024),
        PacketBuilder()
            .Ether()
            .Ipv4("203.0.113.5", "192.0.2.10", IPPROTO_ICMP)
            .Icmp(8, 0, 7)
            .Payload(21)
            .Finish(),
        PacketBuilder()
            .Ether()
            .Vlan(5)
            .Ipv4("203.0.113.5", "192.0.2.10", IPPROTO_UDP)
            .Udp(1, 80)
            .Payload(30)
            .Finish(),
    };
    for (int it = 0; it < 200000; ++it) {
      Bytes f = seeds[rng() % seeds.size()];
      const size_t l3 = f[12] == 0x81 ? 18 : 14;
      // mutate header bytes except version/ihl/length/proto/dst
      for (int m = 0; m < 3; ++m) {
        size_t pos = l3 + rng() % (f.size() - l3);
        if (pos == l3 || pos == l3 + 2 || pos == l3 + 3 || pos == l3 + 9 ||
            (pos >= l3 + 16 && pos < l3 + 20))
          continue;
        f[pos] = static_cast<uint8_t>(rng());
      }
      Check(f, true);
      if (!Check(f, false)) continue;
      if (w.Run(f, static_cast<uint32_t>(it)) == Action::kUplink) {
        ++checked;
        if (!Check(f, false)) ++bad;
      }
    }
  }
  EXPECT_GT(checked, 1000u);
  EXPECT_EQ(bad, 0u);
}
// ProcessBurst (the worker's passes) decides exactly as Process does packet by packet: same
// actions, same bytes out, same counters, also when one burst holds several packets of a flow
// that its own first packet creates, FIN-closed flows, fragments, ICMP and foreign traffic; and
// in a later burst, established flows (full NAT: their reverse entries prefetched) mixed with
// the backend's replies to the full-NAT address (hashed in the first pass) and strays to it.
// Both with one VIP address and with a VIP table large enough for ProcessBurst's other layout
// (every address slot prefetched before any packet is classified).
TEST(Forwarder, BurstDecidesAsSinglePackets) {
  for (const bool large : {false, true})
    for (ForwardingMode mode : {ForwardingMode::kDr, ForwardingMode::kTun, ForwardingMode::kNat}) {
      SCOPED_TRACE(::testing::Message() << "mode " << static_cast<int>(mode) << " large " << large);
      World burst(mode, IPPROTO_TCP, 1 << 10), single(mode, IPPROTO_TCP, 1 << 10);
      for (World* w : {&burst, &single}) {
        w->s->node.has_tunnel_src4 = true;
        w->s->node.tunnel_src4 = A4("192.0.2.200");
        if (large) {
          // The test's VIP and 999 more addresses (198.18.0.0/16) for the same VIP entry.
          std::vector<VipKey> keys = {w->s->vips[1].key};
          for (uint32_t i = 1; i < 1000; ++i) {
            keys.push_back(
                VipKey{IpAddr::V4(0xc6120000u + i), htons(80), IPPROTO_TCP, IpFamily::kIpv4});
          }
          w->s->vip_table = *VipTable::Build(keys, std::vector<uint32_t>(keys.size(), 1));
        }
        ASSERT_EQ(w->s->vip_table.Large(), large);
        PrepareSnapshot(w->s.get());
      }
      EXPECT_EQ(burst.s->has_nat_vip, mode == ForwardingMode::kNat);
      // Runs `in` as one burst through `burst` and packet by packet through `single`; returns
      // single's output frames.
      auto run = [&](const std::vector<Bytes>& in, uint32_t now) {
        EXPECT_LE(in.size(), Forwarder::kMaxBurst);
        std::vector<std::vector<uint8_t>> bufs(in.size(), std::vector<uint8_t>(256));
        std::vector<Frame> frames;
        for (size_t i = 0; i < in.size(); ++i) {
          std::memcpy(bufs[i].data() + 128, in[i].data(), in[i].size());
          frames.push_back(Frame{bufs[i].data() + 128, static_cast<uint32_t>(in[i].size()), 128});
        }
        Action actions[Forwarder::kMaxBurst];
        burst.fwd->ProcessBurst(frames.data(), static_cast<uint32_t>(frames.size()), *burst.s, now,
                                actions);
        std::vector<Bytes> out;
        for (size_t i = 0; i < in.size(); ++i) {
          Bytes expect = in[i];
          const Action a = single.Run(expect, now);
          EXPECT_EQ(actions[i], a) << "packet " << i;
          EXPECT_EQ(Bytes(frames[i].data, frames[i].data + frames[i].len), expect)
              << "packet " << i;
          out.push_back(expect);
        }
        return out;
      };
      std::vector<Bytes> in;
      for (int round = 0; round < 2; ++round) {
        for (uint16_t port = 1000; port < 1008; ++port) {
          in.push_back(Tcp4("203.0.113.5", "192.0.2.10", port, 80, kTcpAck));
        }
        in.push_back(Tcp4("203.0.113.5", "192.0.2.10", 1003, 80, kTcpFin | kTcpAck));
        in.push_back(Tcp4("203.0.113.6", "192.0.2.10", 2000, 443, kTcpSyn));  // no such service
        in.push_back(Tcp4("203.0.113.6", "192.0.2.99", 2000, 80, kTcpSyn));   // not a VIP
        in.push_back(TcpFragment4("203.0.113.7", "192.0.2.10"));
        in.push_back(PacketBuilder()
                         .Ether()
                         .Ipv4("203.0.113.8", "192.0.2.10", IPPROTO_ICMP)
                         .Icmp(8, 0)
                         .Payload(8)
                         .Finish());
        Bytes cut = Tcp4("203.0.113.5", "192.0.2.10", 1000, 80, kTcpAck);
        cut.resize(30);  // truncated IPv4 header
        in.push_back(cut);
      }
      const std::vector<Bytes> first = run(in, 7);

      // Second burst: the same flows again, and what the backend would answer to each forwarded
      // full-NAT packet (to the NAT address and port it was given), and strays to that address.
      std::vector<Bytes> again;
      for (uint16_t port = 1000; port < 1008; ++port) {
        again.push_back(Tcp4("203.0.113.5", "192.0.2.10", port, 80, kTcpAck));
      }
      size_t replies = 0;
      for (size_t i = 0; i < 8 && mode == ForwardingMode::kNat; ++i) {
        const ParsedPacket fp = ParsePacket(first[i].data(), first[i].size());
        ASSERT_EQ(fp.status, ParseStatus::kOk);
        char nat[INET_ADDRSTRLEN], backend[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, fp.flow.src.bytes, nat, sizeof(nat));
        inet_ntop(AF_INET, fp.flow.dst.bytes, backend, sizeof(backend));
        again.push_back(
            Tcp4(backend, nat, ntohs(fp.flow.dst_port), ntohs(fp.flow.src_port), kTcpAck));
        ++replies;
      }
      again.push_back(Tcp4("10.1.0.1", "198.51.100.1", 80, 500, kTcpAck));    // below the range
      again.push_back(Tcp4("10.1.0.1", "198.51.100.1", 80, 60000, kTcpAck));  // no such session
      again.push_back(TcpFragment4("10.1.0.1", "198.51.100.1"));
      const uint64_t to_kernel_before = burst.counters->to_kernel;
      const uint64_t no_session_before =
          burst.counters->drops[static_cast<size_t>(Drop::kNatNoSession)];
      run(again, 9);
      // What the strays do, pinned (not only compared): below the port range and the fragment go
      // to the kernel, the unknown port is a counted drop.
      EXPECT_EQ(burst.counters->to_kernel - to_kernel_before, 2u);
      EXPECT_EQ(burst.counters->drops[static_cast<size_t>(Drop::kNatNoSession)] - no_session_before,
                1u);

      EXPECT_EQ(burst.counters->to_backend, single.counters->to_backend);
      EXPECT_GT(burst.counters->to_backend, 0u);
      EXPECT_EQ(burst.counters->conn_hits, single.counters->conn_hits);
      EXPECT_EQ(burst.counters->conn_misses, single.counters->conn_misses);
      EXPECT_EQ(burst.counters->to_kernel, single.counters->to_kernel);
      EXPECT_EQ(burst.counters->nat_replies, single.counters->nat_replies);
      EXPECT_EQ(burst.counters->nat_replies, replies);
      for (size_t d = 0; d < static_cast<size_t>(Drop::kCount); ++d) {
        EXPECT_EQ(burst.counters->drops[d], single.counters->drops[d]) << DropName(Drop(d));
      }
      EXPECT_EQ(burst.conns->CountLive(10), single.conns->CountLive(10));
    }
}

}  // namespace
}  // namespace lb
