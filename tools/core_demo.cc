// lb_core_demo: shows what the packet core does, on made-up traffic, without DPDK. It parses a few
// frames, spreads 200,000 client flows over a VIP's backends with Maglev, removes a backend and
// counts the flows that move, and shows that the connection table keeps established flows on
// their backend across that change. Single-threaded; prints a report and exits.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdio>
#include <string>
#include <vector>

#include "dataplane/core/conn_table.h"
#include "dataplane/core/flow_key.h"
#include "dataplane/core/maglev.h"
#include "dataplane/core/packet_parser.h"
#include "tests/lib/packet_builder.h"

namespace {

using lb::testing::Bytes;
using lb::testing::PacketBuilder;

constexpr uint32_t kFlows = 200000;

void ShowParse(const char* what, const Bytes& frame) {
  const lb::ParsedPacket p = lb::ParsePacket(frame.data(), frame.size());
  if (p.status != lb::ParseStatus::kOk) {
    std::printf("  %-34s -> drop: %s (%s)\n", what, lb::ParseStatusName(p.status),
                lb::ParseStatusDescription(p.status));
    return;
  }
  std::printf("  %-34s -> %s%s\n", what, p.flow.ToString().c_str(),
              p.icmp_error ? "  [ICMP error: inner flow]" : "");
}

// Distinct flows: 256 client addresses, consecutive source ports.
lb::FlowKey ClientFlow(uint32_t f) {
  lb::FlowKey k;
  k.family = lb::IpFamily::kIpv4;
  k.proto = IPPROTO_TCP;
  k.src = lb::IpAddr::V4(0xc6336400u | (f & 0xff));  // 198.51.100.0/24
  k.dst = lb::IpAddr::V4(0xcb007101u);               // VIP 203.0.113.1
  k.src_port = htons(static_cast<uint16_t>(1024 + f / 256));
  k.dst_port = htons(80);
  return k;
}

std::string BackendName(uint32_t i) { return "10.0.1." + std::to_string(i + 1); }

}  // namespace

int main() {
  std::printf("== 1. Parser: what the worker extracts from a frame\n");
  ShowParse("TCP SYN to the VIP", PacketBuilder()
                                      .Ether()
                                      .Ipv4("198.51.100.7", "203.0.113.1", IPPROTO_TCP)
                                      .Tcp(40000, 80)
                                      .Finish());
  ShowParse("IPv6 TCP behind a VLAN tag", PacketBuilder()
                                              .Ether()
                                              .Vlan(100)
                                              .Ipv6("2001:db8::7", "2001:db8:100::1", IPPROTO_TCP)
                                              .Tcp(50000, 443)
                                              .Finish());
  const Bytes reply = PacketBuilder()
                          .Ether()
                          .Ipv4("203.0.113.1", "198.51.100.7", IPPROTO_TCP)
                          .Tcp(80, 40000, lb::kTcpAck)
                          .Finish();
  ShowParse("ICMP frag-needed about a reply", PacketBuilder()
                                                  .Ether()
                                                  .Ipv4("192.0.2.254", "203.0.113.1", IPPROTO_ICMP)
                                                  .Icmp(3, 4, 1400)
                                                  .Raw(Bytes(reply.begin() + 14, reply.end()))
                                                  .Finish());
  Bytes bad =
      PacketBuilder().Ether().Ipv4("198.51.100.7", "203.0.113.1", IPPROTO_TCP).Tcp(1, 80).Finish();
  bad[14] = 0x43;  // IHL 3 words
  ShowParse("IPv4 header with IHL 3", bad);

  std::printf("\n== 2. Maglev: VIP 203.0.113.1:80 with 4 backends, table size %u\n",
              lb::kMaglevDefaultSize);
  std::vector<lb::MaglevBackend> backends;
  for (uint32_t i = 0; i < 4; ++i) {
    backends.push_back({lb::BackendId(lb::IpAddr::V4(0x0a000101u + i)), 1});
  }
  auto table = lb::MaglevTable::Build(backends);
  if (!table.ok()) {
    std::fprintf(stderr, "maglev: %s\n", table.status().ToString().c_str());
    return 1;
  }
  std::vector<lb::FlowKey> flows(kFlows);
  std::vector<uint32_t> chosen(kFlows);
  std::vector<uint32_t> per_backend(4);
  for (uint32_t f = 0; f < kFlows; ++f) {
    flows[f] = ClientFlow(f);
    chosen[f] = table->Lookup(lb::FlowHash(flows[f]));
    ++per_backend[chosen[f]];
  }
  const std::vector<uint32_t> slots = table->SlotCounts();
  for (uint32_t i = 0; i < 4; ++i) {
    std::printf("  backend %-9s slots %5u  flows %6u (%.1f%%)\n", BackendName(i).c_str(), slots[i],
                per_backend[i], 100.0 * per_backend[i] / kFlows);
  }

  std::printf("\n== 3. Backend %s fails: rebuild with 3 backends\n", BackendName(2).c_str());
  std::vector<lb::MaglevBackend> three = backends;
  three[2].weight = 0;
  auto after = lb::MaglevTable::Build(three);
  if (!after.ok()) return 1;
  uint32_t moved = 0, moved_other = 0;
  for (uint32_t f = 0; f < kFlows; ++f) {
    const uint32_t now = after->Lookup(lb::FlowHash(flows[f]));
    if (now != chosen[f]) {
      ++moved;
      if (chosen[f] != 2) ++moved_other;
    }
  }
  std::printf("  slots changed: %zu of %u\n", lb::MaglevTable::Diff(*table, *after).size(),
              table->size());
  std::printf(
      "  flows moved: %.2f%% (ideal: the failed backend's 25%%); flows of healthy "
      "backends moved: %.3f%%\n",
      100.0 * moved / kFlows, 100.0 * moved_other / kFlows);

  std::printf("\n== 4. Connection table: established flows keep their backend\n");
  auto conns = lb::ConnTable::Create(1u << 19);
  uint32_t now = 1000;
  const uint32_t timeout = 300000;
  for (uint32_t f = 0; f < kFlows; ++f) {
    lb::ConnValue v;
    v.backend = chosen[f];
    conns->Insert(flows[f], lb::FlowHash(flows[f]), v, now, now + timeout);
  }
  // A backend is added (weight change on another): the new table differs, the table does not.
  std::vector<lb::MaglevBackend> five = backends;
  five.push_back({lb::BackendId(lb::IpAddr::V4(0x0a000105u)), 1});
  auto grown = lb::MaglevTable::Build(five);
  if (!grown.ok()) return 1;
  uint32_t kept = 0, would_move = 0;
  now += 1000;
  for (uint32_t f = 0; f < kFlows; ++f) {
    const uint64_t h = lb::FlowHash(flows[f]);
    if (grown->Lookup(h) != chosen[f]) ++would_move;
    const lb::ConnValue* v = conns->Lookup(flows[f], h, now, now + timeout);
    if (v != nullptr && v->backend == chosen[f]) ++kept;
  }
  std::printf("  capacity %u entries, %llu live, %zu bytes per entry\n", conns->capacity(),
              static_cast<unsigned long long>(conns->CountLive(now)),
              lb::ConnTable::MemoryBytes(conns->capacity()) / conns->capacity());
  std::printf("  adding backend 10.0.1.5 would remap %.2f%% of flows by Maglev alone;\n",
              100.0 * would_move / kFlows);
  std::printf("  the connection table keeps %u of %u established flows (%.2f%%) on their backend\n",
              kept, kFlows, 100.0 * kept / kFlows);
  std::printf("  (flows missing were evicted from full buckets: %llu)\n",
              static_cast<unsigned long long>(conns->stats().evicted_live));
  return 0;
}
