// Parser cost per packet (ns/packet) for the frame shapes a load balancer sees most.
#include <netinet/in.h>

#include <vector>

#include "benchmark/benchmark.h"
#include "dataplane/core/packet_parser.h"
#include "tests/lib/packet_builder.h"

namespace lb {
namespace {

using testing::Bytes;
using testing::PacketBuilder;

Bytes Frame(int shape) {
  switch (shape) {
    case 0:
      return PacketBuilder()
          .Ether()
          .Ipv4("192.0.2.10", "203.0.113.1", IPPROTO_TCP)
          .Tcp(40000, 80, 0x10)
          .Payload(6)
          .Finish();
    case 1:
      return PacketBuilder()
          .Ether()
          .Ipv6("2001:db8::10", "2001:db8:100::1", IPPROTO_TCP)
          .Tcp(40000, 443, 0x10)
          .Finish();
    case 2:
      return PacketBuilder()
          .Ether()
          .Vlan(100)
          .Ipv4("192.0.2.10", "203.0.113.1", IPPROTO_UDP)
          .Udp(5000, 53)
          .Payload(18)
          .Finish();
    default: {
      const Bytes inner = PacketBuilder()
                              .Ether()
                              .Ipv4("203.0.113.1", "192.0.2.10", IPPROTO_TCP)
                              .Tcp(80, 40000)
                              .Finish();
      return PacketBuilder()
          .Ether()
          .Ipv4("198.51.100.1", "203.0.113.1", IPPROTO_ICMP)
          .Icmp(3, 4, 1400)
          .Raw(Bytes(inner.begin() + 14, inner.end()))
          .Finish();
    }
  }
}

void BM_Parse(benchmark::State& state) {
  const Bytes frame = Frame(static_cast<int>(state.range(0)));
  ParsedPacket p;
  for (auto _ : state) {
    ParsePacket(frame.data(), frame.size(), &p);
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(state.range(0) == 0   ? "ipv4_tcp"
                 : state.range(0) == 1 ? "ipv6_tcp"
                 : state.range(0) == 2 ? "vlan_ipv4_udp"
                                       : "icmp_frag_needed");
}
BENCHMARK(BM_Parse)->DenseRange(0, 3);

// Parse plus flow hash: what the worker does before its connection-table lookup.
void BM_ParseAndHash(benchmark::State& state) {
  const Bytes frame = Frame(0);
  ParsedPacket p;
  for (auto _ : state) {
    ParsePacket(frame.data(), frame.size(), &p);
    benchmark::DoNotOptimize(FlowHash(p.flow));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseAndHash);

}  // namespace
}  // namespace lb

BENCHMARK_MAIN();
