// In-process pipeline benchmark: mbufs through parse -> VIP -> connection table -> Maglev ->
// rewrite (TUN encapsulation unless a row says otherwise) on one core, no port I/O (the same
// work as Katran's BPF_PROG_TEST_RUN figures). Each burst of 32 goes through the worker's own
// Forwarder::ProcessBurst: parse and prefetch the bucket, prefetch the entry, decide and rewrite.
//
// Usage: pipeline_bench [packets per row] [filter] [--huge] [--big]
//   filter: run only the rows whose name ("section: row") contains it, e.g. "1 flow",
//           "targets", "modes: IPv6"; several filters separated by '|';
//   --huge: connection tables on transparent huge pages (2 MiB) as well as 4 KiB pages;
//   --big:  the flows sweep goes up to 2^24 flows (a 2^25-entry table, 2.3 GiB).
// Prints ns/packet and Mpps per row, and the connection table's bytes per entry.
#include <netinet/in.h>
#include <rte_eal.h>
#include <rte_mbuf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "control/snapshot_builder.h"
#include "dataplane/core/forwarder.h"
#include "dataplane/dpdk/dataplane.h"
#include "tests/lib/packet_builder.h"

namespace lb {
namespace {

using testing::Bytes;
using testing::PacketBuilder;

constexpr char kUsage[] =
    "Usage: pipeline_bench [packets per row] [filter] [--huge] [--big]\n"
    "  packets per row  packets pushed through each row (default 20000000, rounded up to bursts of "
    "32)\n"
    "  filter           run only the rows whose name (\"section: row\") contains it, e.g.\n"
    "                   \"1 flow\", \"targets\", \"modes: IPv6\"; several separated by '|'\n"
    "  --huge           also run with connection tables on transparent huge pages (2 MiB)\n"
    "  --big            the flows sweep goes up to 2^24 flows (a 2^25-entry table, 2.3 GiB)\n"
    "Prints ns/packet and Mpps per row (4 KiB pages, and 2 MiB pages with --huge), and the\n"
    "connection table's bytes per entry. One core, no port I/O. Every row includes the\n"
    "benchmark's own refill of each burst (frame bytes and mbuf lengths, as a NIC writes them),\n"
    "which the row \"targets: burst refill alone\" measures by itself.\n";

constexpr uint32_t kBurst = 32;
constexpr size_t kStride = 128;  // bytes per frame in the source array
constexpr size_t kCopy = 80;     // bytes copied per frame into its mbuf (covers 60 and 74)

struct Setup {
  IpFamily family = IpFamily::kIpv4;
  ForwardingMode mode = ForwardingMode::kTun;
  uint32_t vips = 1;
  uint32_t backends = 100;
  uint32_t maglev = kMaglevDefaultSize;
};

std::string VipAddress(const Setup& s, uint32_t i) {
  if (s.family == IpFamily::kIpv4) {
    const uint32_t a = 0x6440'0000u + i;  // 100.64.0.0 + i
    return absl::StrCat(a >> 24, ".", (a >> 16) & 0xff, ".", (a >> 8) & 0xff, ".", a & 0xff);
  }
  return absl::StrCat("2001:db8:100::", absl::Hex(i + 1));
}

std::string BackendAddress(const Setup& s, uint32_t j) {
  if (s.family == IpFamily::kIpv4) {
    const uint32_t a = 0x0a01'0001u + j;  // 10.1.0.1 + j
    return absl::StrCat(a >> 24, ".", (a >> 16) & 0xff, ".", (a >> 8) & 0xff, ".", a & 0xff);
  }
  return absl::StrCat("2001:db8:be::", absl::Hex(j + 1));
}

v1::ForwardingMode ProtoMode(ForwardingMode m) {
  switch (m) {
    case ForwardingMode::kDr:
      return v1::FORWARDING_MODE_DR;
    case ForwardingMode::kGue:
      return v1::FORWARDING_MODE_GUE;
    case ForwardingMode::kNat:
      return v1::FORWARDING_MODE_NAT;
    default:
      return v1::FORWARDING_MODE_TUN;
  }
}

std::shared_ptr<const Snapshot> MakeSnapshot(const Setup& s) {
  v1::ServiceConfig c;
  for (uint32_t i = 0; i < s.vips; ++i) {
    v1::Vip* v = c.add_vips();
    v->set_address(VipAddress(s, i));
    v->set_port(80);
    v->set_protocol(v1::PROTOCOL_TCP);
    v->set_mode(ProtoMode(s.mode));
    v->set_maglev_table_size(s.maglev);
    for (uint32_t j = 0; j < s.backends; ++j) v->add_backends()->set_address(BackendAddress(s, j));
  }
  NodeParams node;
  node.tunnel_src4 = IpAddr::V4(0xc0000264);
  node.has_tunnel_src4 = true;
  node.tunnel_src6 = IpAddr::FromV6Bytes(testing::V6("2001:db8:ff::1").data());
  node.has_tunnel_src6 = true;
  node.port_mac = MacAddr{{0x02, 0, 0, 0, 0, 0x01}};  // the frames' destination MAC
  if (s.mode == ForwardingMode::kNat) {
    // Only then: NAT source addresses make the worker check non-VIP traffic for NAT replies.
    node.nat_addrs4 = {IpAddr::V4(0xc00002c8)};
    node.nat_addrs6 = {IpAddr::FromV6Bytes(testing::V6("2001:db8:ff::2").data())};
    node.gateway_mac4 = node.gateway_mac6 = MacAddr{{2, 0, 0, 0, 9, 9}};
    node.has_gateway_mac4 = node.has_gateway_mac6 = true;
  }
  SnapshotBuilder builder(BuildLimits{1u << 16, 1u << 20});
  auto snap = builder.Build(c, node, [](const IpAddr&, IpFamily, bool) {
    return std::optional<MacAddr>(MacAddr{{2, 0, 0, 0, 1, 1}});
  });
  if (!snap.ok()) {
    std::fprintf(stderr, "%s\n", snap.status().ToString().c_str());
    std::exit(1);
  }
  return *snap;
}

// `n` frames in one array (kStride apart): TCP ACKs of distinct flows (client address and port
// vary with the flow number, offset by `first`), to VIP flow % vips, or to a non-VIP address.
std::vector<uint8_t> MakeFrames(const Setup& s, uint32_t n, uint32_t first, bool to_vip) {
  std::vector<Bytes> templates;
  for (uint32_t i = 0; i < (to_vip ? s.vips : 1); ++i) {
    PacketBuilder b;
    b.Ether();
    if (s.family == IpFamily::kIpv4) {
      b.Ipv4("198.18.0.1", to_vip ? VipAddress(s, i) : "192.0.2.50", IPPROTO_TCP);
    } else {
      b.Ipv6("2001:db8:c::1", to_vip ? VipAddress(s, i) : "2001:db8:99::1", IPPROTO_TCP);
    }
    b.Tcp(1024, 80, kTcpAck);
    if (s.family == IpFamily::kIpv4) b.Payload(6);  // 60 bytes: 64 on the wire
    templates.push_back(b.Finish());
  }
  std::vector<uint8_t> frames(static_cast<size_t>(n) * kStride);
  const size_t src_off = s.family == IpFamily::kIpv4 ? 14 + 12 : 14 + 8 + 12;  // last 4 bytes
  const size_t port_off = s.family == IpFamily::kIpv4 ? 14 + 20 : 14 + 40;
  for (uint32_t k = 0; k < n; ++k) {
    const uint32_t f = first + k;
    const Bytes& t = templates[to_vip ? f % s.vips : 0];
    uint8_t* out = frames.data() + static_cast<size_t>(k) * kStride;
    std::memcpy(out, t.data(), t.size());
    const uint32_t client = htonl(0xc612'0000u + (f >> 6));  // 198.18.0.0 + f / 64
    std::memcpy(out + src_off, &client, 4);
    const uint16_t port = htons(static_cast<uint16_t>(1024 + (f & 63)));
    std::memcpy(out + port_off, &port, 2);
  }
  return frames;
}

size_t FrameLen(const Setup& s) { return s.family == IpFamily::kIpv4 ? 60 : 74; }

// Connection-table memory from mmap: 4 KiB pages, or transparent huge pages with `huge`.
struct TableMemory {
  void* p = nullptr;
  size_t len = 0;
  TableMemory(size_t bytes, bool huge) {
    constexpr size_t k2M = 2u << 20;
    len = (bytes + k2M - 1) / k2M * k2M + k2M;
    p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      std::perror("mmap");
      std::exit(1);
    }
    uint8_t* aligned =
        reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + k2M - 1) / k2M * k2M);
    madvise(p, len, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    base = aligned;
  }
  ~TableMemory() { munmap(p, len); }
  uint8_t* base = nullptr;
};

uint64_t AnonHugeKiB() {
  std::ifstream in("/proc/self/smaps_rollup");
  std::string key;
  uint64_t v;
  while (in >> key) {
    if (key == "AnonHugePages:" && in >> v) return v;
  }
  return 0;
}

struct Row {
  double ns = 0;
  double huge_share = 0;  // of the table memory on huge pages (0..1)
};

// Runs `packets` packets cycling over `n` frames through one Forwarder; returns ns/packet.
Row Run(const Setup& setup, const Snapshot& snap, const std::vector<uint8_t>& frames_src,
        uint32_t n, uint64_t packets, uint32_t capacity, bool warm, bool huge, rte_mempool* pool,
        bool process = true) {
  const uint64_t huge_before = AnonHugeKiB();
  TableMemory mem(ConnTable::MemoryBytes(capacity), huge);
  ConnTable table(mem.base, capacity);  // clears (and so faults in) the memory
  Row row;
  row.huge_share = static_cast<double>(AnonHugeKiB() - huge_before) * 1024 /
                   static_cast<double>(ConnTable::MemoryBytes(capacity));
  WorkerCounters counters(snap.vips.size(), snap.backends.size());
  Forwarder fwd(ForwarderConfig{}, &table, &counters);
  const size_t len = FrameLen(setup);
  const uint32_t now = 1000;
  if (warm) {
    ParsedPacket p;
    uint8_t copy[kStride];
    for (uint32_t i = 0; i < n; ++i) {
      std::memcpy(copy, frames_src.data() + static_cast<size_t>(i) * kStride, kStride);
      Frame fr{copy, static_cast<uint32_t>(len), 0};
      ParsePacket(copy, len, &p);
      // Headroom 0 makes an encapsulation fail, but the flow is inserted first.
      fwd.Process(&fr, p, snap, now);
    }
    counters = WorkerCounters(snap.vips.size(), snap.backends.size());
  }
  rte_mbuf* burst[kBurst];
  if (rte_pktmbuf_alloc_bulk(pool, burst, kBurst) != 0) std::exit(1);
  Frame frames[kBurst];
  Action actions[kBurst];
  size_t next = 0;
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t done = 0; done < packets; done += kBurst) {
    // Refill the burst as a NIC would: fresh frame bytes at the default headroom.
    for (uint32_t i = 0; i < kBurst; ++i) {
      rte_mbuf* m = burst[i];
      m->data_off = RTE_PKTMBUF_HEADROOM;
      m->data_len = static_cast<uint16_t>(len);
      m->pkt_len = static_cast<uint32_t>(len);
      std::memcpy(rte_pktmbuf_mtod(m, void*), frames_src.data() + next * kStride, kCopy);
      next = next + 1 == n ? 0 : next + 1;
      frames[i] = Frame{rte_pktmbuf_mtod(m, uint8_t*), m->data_len, rte_pktmbuf_headroom(m)};
    }
    // The worker's code for a burst (dataplane.cc calls the same).
    if (process) {
      fwd.ProcessBurst(frames, kBurst, snap, now, actions);
    } else {
      asm volatile("" : : "r"(frames) : "memory");  // the refill alone, kept by the compiler
    }
  }
  const double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  rte_pktmbuf_free_bulk(burst, kBurst);
  // A benchmark that silently measured drops would be worse than none.
  const uint64_t forwarded = counters.to_backend + counters.to_kernel;
  if (process && forwarded < packets / 2) {
    std::fprintf(stderr, "only %llu of %llu packets forwarded: the benchmark is broken\n",
                 static_cast<unsigned long long>(forwarded),
                 static_cast<unsigned long long>(packets));
    for (size_t d = 0; d < static_cast<size_t>(Drop::kCount); ++d) {
      if (counters.drops[d] != 0) {
        std::fprintf(stderr, "  %s: %llu\n", DropName(static_cast<Drop>(d)),
                     static_cast<unsigned long long>(counters.drops[d]));
      }
    }
    std::exit(1);
  }
  row.ns = ns / static_cast<double>(packets);
  return row;
}

std::string Pow2(uint64_t v) { return absl::StrCat("2^", __builtin_ctzll(v)); }

const char* FamilyName(IpFamily f) { return f == IpFamily::kIpv4 ? "IPv4" : "IPv6"; }

}  // namespace
}  // namespace lb

int main(int argc, char** argv) {
  using namespace lb;
  uint64_t packets = 20'000'000ull;
  std::string only;
  bool huge = false;
  bool big = false;
  int positional = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    } else if (a == "--huge") {
      huge = true;
    } else if (a == "--big") {
      big = true;
    } else if (a.size() > 1 && a[0] == '-') {
      std::fprintf(stderr, "pipeline_bench: unknown option '%s'\n%s", a.c_str(), kUsage);
      return 2;
    } else if (positional == 0) {
      ++positional;
      uint64_t n = 0;
      if (!absl::SimpleAtoi(a, &n) || n == 0 || n > 100'000'000'000ull) {
        std::fprintf(
            stderr,
            "pipeline_bench: packets per row must be a number from 1 to 10^11, got '%s'\n%s",
            a.c_str(), kUsage);
        return 2;
      }
      packets = n;
    } else if (positional == 1) {
      ++positional;
      only = a;
    } else {
      std::fprintf(stderr, "pipeline_bench: unexpected argument '%s'\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  packets = (packets + kBurst - 1) / kBurst * kBurst;
  // The filter may name several parts, separated by '|'.
  std::vector<std::string> filters;
  for (size_t at = 0; !only.empty();) {
    const size_t bar = only.find('|', at);
    filters.push_back(only.substr(at, bar == std::string::npos ? std::string::npos : bar - at));
    if (bar == std::string::npos) break;
    at = bar + 1;
  }
  const auto wanted = [&filters](const std::string& name) {
    if (filters.empty()) return true;
    for (const std::string& f : filters) {
      if (name.find(f) != std::string::npos) return true;
    }
    return false;
  };
  const std::string prefix = absl::StrCat("lbbench", getpid());
  if (!InitEal({"--no-huge", "-m", "128", "--no-pci", "--file-prefix", prefix, "-l", "0",
                "--log-level", "lib.eal:error", "--no-telemetry"})
           .ok()) {
    return 1;
  }
  rte_mempool* pool =
      rte_pktmbuf_pool_create("bench_pool", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
  if (pool == nullptr) return 1;
  std::vector<bool> page_kinds = {false};
  if (huge) page_kinds.push_back(true);

  // One row: `flows` established flows (or that many new ones, or non-VIP traffic), on both page
  // sizes when --huge.
  // kRefillOnly: the benchmark's own share of every row (frame bytes and mbuf lengths written as
  // a NIC would, Frames set up as the worker does) without ProcessBurst.
  enum class Traffic { kEstablished, kNew, kNonVip, kRefillOnly };
  int rows_run = 0;
  const auto row = [&](const std::string& section, const std::string& name, const Setup& s,
                       uint32_t flows, Traffic traffic, const char* target = "") {
    const std::string full = absl::StrCat(section, ": ", name);
    if (!wanted(full)) return;
    ++rows_run;
    const auto snap = MakeSnapshot(s);
    const bool is_new = traffic == Traffic::kNew;
    const uint32_t n =
        is_new ? static_cast<uint32_t>(std::min<uint64_t>(packets, 1u << 22)) : flows;
    const uint64_t pk = is_new ? n / kBurst * kBurst : packets;
    const std::vector<uint8_t> frames =
        MakeFrames(s, n, is_new ? 0x4000'0000u : 0, traffic != Traffic::kNonVip);
    // Room for every flow at load 1/2 (NAT: two entries per flow), and never below 2^22.
    uint64_t cap =
        std::max<uint64_t>(1u << 22, 2ull * n * (s.mode == ForwardingMode::kNat ? 2 : 1));
    cap = std::min<uint64_t>(
        ConnTable::RoundCapacity(static_cast<uint32_t>(std::min<uint64_t>(cap, 1u << 31))),
        1u << 31);
    std::printf("%-50s", full.c_str());
    for (bool h : page_kinds) {
      const Row r = Run(s, *snap, frames, n, pk, static_cast<uint32_t>(cap),
                        traffic == Traffic::kEstablished, h, pool, traffic != Traffic::kRefillOnly);
      std::printf(" %9.1f %7.2f", r.ns, 1000.0 / r.ns);
      if (h && r.huge_share < 0.9) std::printf(" (only %.0f%% on huge pages)", 100 * r.huge_share);
    }
    std::printf("  %6s  %s\n", Pow2(cap).c_str(), target);
    std::fflush(stdout);
  };
  const auto header = [&](const std::string& title) {
    std::printf("\n%-50s", title.c_str());
    for (bool h : page_kinds) std::printf(" %9s %7s", h ? "ns/pkt 2M" : "ns/pkt", "Mpps");
    std::printf("  %6s  %s\n", "table", "issue 7 target");
  };

  const Setup base;  // IPv4, TUN, 1 VIP, 100 backends, M = 65537
  const std::string t = "targets";
  header("targets (1 core, IPv4 TCP, TUN, 1 VIP, 100 backends)");
  row(t, "established, 1 flow", base, 1, Traffic::kEstablished, "<= 30 ns");
  row(t, "established, 2^20 flows", base, 1u << 20, Traffic::kEstablished, "<= 80 ns");
  row(t, "new flow per packet (every flow inserted)", base, 0, Traffic::kNew, "<= 150 ns");
  row(t, "non-VIP pass-through (to the kernel)", base, 1, Traffic::kNonVip, "<= 15 ns");
  row(t, "burst refill alone (in every row)", base, 1, Traffic::kRefillOnly, "(harness)");

  header("flows (IPv4, TUN, 1 VIP, 100 backends)");
  for (int e = 10; e <= (big ? 24 : 22); e += 2) {
    row("flows", absl::StrCat("established, 2^", e, " flows"), base, 1u << e,
        Traffic::kEstablished);
  }

  header("backends (IPv4, TUN, 1 VIP, 2^16 flows)");
  for (uint32_t b : {10u, 100u, 1000u, 10000u}) {
    Setup s = base;
    s.backends = b;
    row("backends", absl::StrCat(b, " backends, 2^16 flows"), s, 1u << 16, Traffic::kEstablished);
  }

  header("VIPs (IPv4, TUN, 10 backends each, 2^16 flows)");
  for (uint32_t v : {1u, 10u, 100u, 1000u, 10000u}) {
    Setup s = base;
    s.vips = v;
    s.backends = 10;
    // 10,000 tables of 65537 slots would take 2.6 GB: many VIPs get smaller tables.
    s.maglev = v <= 100 ? kMaglevDefaultSize : 4093;
    row("vips", absl::StrCat(v, " VIPs, 2^16 flows, M=", s.maglev), s, 1u << 16,
        Traffic::kEstablished);
  }

  header("modes (1 VIP, 100 backends)");
  for (IpFamily fam : {IpFamily::kIpv4, IpFamily::kIpv6}) {
    for (ForwardingMode m :
         {ForwardingMode::kDr, ForwardingMode::kTun, ForwardingMode::kGue, ForwardingMode::kNat}) {
      Setup s = base;
      s.family = fam;
      s.mode = m;
      const std::string name = absl::StrCat(FamilyName(fam), " ", ForwardingModeName(m));
      row("modes", name + ", 1 flow", s, 1, Traffic::kEstablished);
      row("modes", name + ", 2^20 flows", s, 1u << 20, Traffic::kEstablished);
      row("modes", name + ", new flows", s, 0, Traffic::kNew);
    }
  }

  std::printf(
      "\nconnection table: %zu bytes per entry (64-byte key+value line, 8 bytes of bucket "
      "header); 2^22 entries per worker = %zu MiB\n",
      ConnTable::MemoryBytes(1u << 22) / (1u << 22), ConnTable::MemoryBytes(1u << 22) >> 20);
  const std::string runtime_dir = rte_eal_get_runtime_dir();
  rte_eal_cleanup();
  std::error_code ec;
  std::filesystem::remove_all(runtime_dir, ec);
  if (rows_run == 0) {
    std::fprintf(stderr, "pipeline_bench: no row matches the filter '%s'\n", only.c_str());
    return 2;
  }
  return 0;
}
