// In-process pipeline benchmark: mbufs through parse -> VIP -> connection table -> Maglev -> TUN
// encapsulation on one core, no port I/O (the same work as Katran's BPF_PROG_TEST_RUN figures).
// Prints ns/packet for: one established flow; 2^10..2^20 established flows; a new flow per packet
// (every one inserted); non-VIP pass-through. 64-byte TCP frames, 100 backends, M = 65537.
#include <netinet/in.h>
#include <rte_eal.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "control/snapshot_builder.h"
#include "dataplane/core/forwarder.h"
#include "dataplane/dpdk/dataplane.h"
#include "tests/lib/packet_builder.h"

namespace lb {
namespace {

using testing::Bytes;
using testing::PacketBuilder;

constexpr uint32_t kBurst = 32;

std::shared_ptr<const Snapshot> MakeSnapshot(int backends) {
  v1::ServiceConfig c;
  v1::Vip* v = c.add_vips();
  v->set_address("203.0.113.1");
  v->set_port(80);
  v->set_protocol(v1::PROTOCOL_TCP);
  v->set_mode(v1::FORWARDING_MODE_TUN);
  for (int i = 0; i < backends; ++i) {
    v->add_backends()->set_address(absl::StrCat("10.1.", i / 250, ".", i % 250 + 1));
  }
  NodeParams node;
  node.tunnel_src4 = IpAddr::V4(0xc0000264);
  node.has_tunnel_src4 = true;
  node.port_mac = MacAddr{{0x02, 0, 0, 0, 0, 0x01}};  // the frames' destination MAC
  SnapshotBuilder builder;
  auto snap = builder.Build(c, node, [](const IpAddr&, IpFamily, bool) {
    return std::optional<MacAddr>(MacAddr{{2, 0, 0, 0, 1, 1}});
  });
  if (!snap.ok()) {
    std::fprintf(stderr, "%s\n", snap.status().ToString().c_str());
    std::exit(1);
  }
  return *snap;
}

Bytes MakeFrame(uint32_t flow, bool to_vip) {
  const std::string client = absl::StrCat("198.", 18 + (flow >> 24) % 2, ".", (flow >> 16) & 0xff,
                                          ".", (flow >> 8) & 0xff);
  return PacketBuilder()
      .Ether()
      .Ipv4(client, to_vip ? "203.0.113.1" : "192.0.2.50", IPPROTO_TCP)
      .Tcp(static_cast<uint16_t>(1024 + (flow & 0xff) * 200 + (flow >> 26)), 80, 0x10)
      .Payload(6)
      .Finish();
}

struct Result {
  std::string name;
  double ns_per_packet;
};

// Runs `packets` packets cycling over `frames` through one Forwarder; returns ns/packet.
double Run(const std::vector<Bytes>& frames, uint64_t packets, const Snapshot& snap,
           ConnTable* table, rte_mempool* pool, bool warm) {
  WorkerCounters counters(16, 1024);
  Forwarder fwd(ForwarderConfig{}, table, &counters);
  rte_mbuf* burst[kBurst];
  if (rte_pktmbuf_alloc_bulk(pool, burst, kBurst) != 0) std::exit(1);
  ParsedPacket parsed[kBurst];
  uint64_t hashes[kBurst];
  const uint32_t now = 1000;
  if (warm) {
    for (size_t i = 0; i < frames.size(); ++i) {
      Bytes f = frames[i];
      Frame fr{f.data(), static_cast<uint32_t>(f.size()), 0};
      ParsePacket(f.data(), f.size(), &parsed[0]);
      // Headroom 0 makes the encap fail, but the flow is inserted first: warms the table.
      fwd.Process(&fr, parsed[0], snap, now);
    }
  }
  size_t next = 0;
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t done = 0; done < packets; done += kBurst) {
    // Refill the burst as a NIC would: fresh frame bytes at the default headroom.
    for (uint32_t i = 0; i < kBurst; ++i) {
      rte_mbuf* m = burst[i];
      const Bytes& f = frames[next];
      next = next + 1 == frames.size() ? 0 : next + 1;
      m->data_off = RTE_PKTMBUF_HEADROOM;
      m->data_len = static_cast<uint16_t>(f.size());
      m->pkt_len = f.size();
      std::memcpy(rte_pktmbuf_mtod(m, void*), f.data(), 64);
    }
    // The worker's two passes (dataplane.cc): parse and prefetch the table buckets, then decide.
    for (uint32_t i = 0; i < kBurst; ++i) {
      if (i + 1 < kBurst) rte_prefetch0(rte_pktmbuf_mtod(burst[i + 1], void*));
      ParsePacket(rte_pktmbuf_mtod(burst[i], uint8_t*), burst[i]->data_len, &parsed[i]);
      hashes[i] = fwd.Prefetch(parsed[i]);
    }
    for (uint32_t i = 0; i < kBurst; ++i) {
      rte_mbuf* m = burst[i];
      Frame fr{rte_pktmbuf_mtod(m, uint8_t*), m->data_len, rte_pktmbuf_headroom(m)};
      fwd.Process(&fr, parsed[i], snap, now, hashes[i]);
    }
  }
  const double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  rte_pktmbuf_free_bulk(burst, kBurst);
  // A benchmark that silently measured drops would be worse than none.
  const uint64_t forwarded = counters.to_backend + counters.to_kernel;
  if (forwarded < packets / 2) {
    std::fprintf(stderr, "only %llu of %llu packets forwarded: the benchmark is broken\n",
                 static_cast<unsigned long long>(forwarded),
                 static_cast<unsigned long long>(packets));
    std::exit(1);
  }
  if (counters.drops[static_cast<size_t>(Drop::kEncapFailed)] != 0 && !warm) {
    std::fprintf(stderr, "unexpected encap failures\n");
  }
  return ns / static_cast<double>(packets);
}

}  // namespace
}  // namespace lb

int main(int argc, char** argv) {
  using namespace lb;
  const uint64_t packets = argc > 1 ? std::stoull(argv[1]) : 20'000'000ull;
  // Optional second argument: run only scenarios whose name contains it (e.g. "1 flow").
  const std::string only = argc > 2 ? argv[2] : "";
  const auto wanted = [&only](const std::string& name) {
    return only.empty() || name.find(only) != std::string::npos;
  };
  const std::string prefix = absl::StrCat("lbbench", getpid());
  if (!InitEal({"--no-huge", "-m", "1024", "--no-pci", "--file-prefix", prefix, "-l", "0",
                "--log-level", "lib.eal:error", "--no-telemetry"})
           .ok()) {
    return 1;
  }
  rte_mempool* pool =
      rte_pktmbuf_pool_create("bench_pool", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
  const auto snap = MakeSnapshot(100);
  const uint32_t capacity = 1u << 22;
  void* mem = rte_zmalloc("bench_conns", ConnTable::MemoryBytes(capacity), 64);
  if (pool == nullptr || mem == nullptr) return 1;

  std::printf("%-44s %12s %10s\n", "scenario (1 core, 64-byte TCP, 100 backends)", "ns/packet",
              "Mpps");
  const auto print = [](const std::string& name, double ns) {
    std::printf("%-44s %12.1f %10.2f\n", name.c_str(), ns, 1000.0 / ns);
  };
  if (wanted("established, 1 flow")) {
    ConnTable table(mem, capacity);
    print("established, 1 flow", Run({MakeFrame(1, true)}, packets, *snap, &table, pool, true));
  }
  for (uint32_t flows : {1u << 10, 1u << 16, 1u << 20}) {
    if (!wanted(absl::StrCat("established, 2^", __builtin_ctz(flows), " flows"))) continue;
    ConnTable table(mem, capacity);
    std::vector<Bytes> frames;
    for (uint32_t f = 0; f < flows; ++f) frames.push_back(MakeFrame(f * 2654435761u, true));
    print(absl::StrCat("established, 2^", __builtin_ctz(flows), " flows"),
          Run(frames, packets, *snap, &table, pool, true));
  }
  if (wanted("new flow")) {
    // Every packet a new flow: distinct 5-tuples, never seen before, each inserted.
    ConnTable table(mem, capacity);
    std::vector<Bytes> frames;
    const uint32_t n = 1u << 21;
    for (uint32_t f = 0; f < n; ++f) frames.push_back(MakeFrame(f * 2654435761u + 7, true));
    print("new flow per packet (every flow inserted)",
          Run(frames, std::min<uint64_t>(packets, n), *snap, &table, pool, false));
  }
  if (wanted("non-VIP")) {
    ConnTable table(mem, capacity);
    print("non-VIP pass-through (to the kernel)",
          Run({MakeFrame(3, false)}, packets, *snap, &table, pool, false));
  }
  std::printf("connection table: %zu bytes per entry; 2^22 entries per worker = %zu MiB\n",
              ConnTable::MemoryBytes(1u << 22) / (1u << 22),
              ConnTable::MemoryBytes(1u << 22) >> 20);
  rte_free(mem);
  const std::string runtime_dir = rte_eal_get_runtime_dir();
  rte_eal_cleanup();
  std::error_code ec;
  std::filesystem::remove_all(runtime_dir, ec);
  return 0;
}
