#include "tests/pipeline/harness.h"

#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"

namespace lb::testing {

namespace {
std::atomic<bool> eal_started{false};
}  // namespace

bool EalStarted() { return eal_started.load(); }

absl::Status InitTestEal() {
  const std::string prefix = absl::StrCat("lbtest", getpid());
  absl::Status st = InitEal({"--no-huge", "-m", "512", "--no-pci", "--file-prefix", prefix,
                             "--lcores", "0@0,1@1,2@0", "--main-lcore", "0", "--log-level",
                             "lib.eal:error", "--no-telemetry"});
  if (st.ok()) eal_started = true;
  return st;
}

absl::StatusOr<std::unique_ptr<PipelineHarness>> PipelineHarness::Create(uint32_t workers,
                                                                         uint32_t conn_size) {
  if (absl::Status st = InitTestEal(); !st.ok()) return st;
  static std::atomic<int> instance{0};
  const int n = instance++;
  std::unique_ptr<PipelineHarness> h(new PipelineHarness());
  h->pool_ = rte_pktmbuf_pool_create(absl::StrCat("lbt_pool", n).c_str(), 8191, 256, 0,
                                     RTE_MBUF_DEFAULT_BUF_SIZE, 0);
  if (h->pool_ == nullptr) return absl::ResourceExhaustedError("test mbuf pool");
  const auto make_rings = [&](const char* what, std::vector<rte_ring*>* rings) {
    for (uint32_t q = 0; q < workers; ++q) {
      rings->push_back(rte_ring_create(absl::StrCat("lbt_", what, n, "_", q).c_str(), 4096, 0,
                                       RING_F_SP_ENQ | RING_F_SC_DEQ));
    }
  };
  make_rings("urx", &h->up_rx_);
  make_rings("utx", &h->up_tx_);
  make_rings("erx", &h->ex_rx_);
  make_rings("etx", &h->ex_tx_);
  h->uplink_name_ = absl::StrCat("lbt_up", n);
  h->exception_name_ = absl::StrCat("lbt_ex", n);
  if (rte_eth_from_rings(h->uplink_name_.c_str(), h->up_rx_.data(), workers, h->up_tx_.data(),
                         workers, 0) < 0 ||
      rte_eth_from_rings(h->exception_name_.c_str(), h->ex_rx_.data(), workers, h->ex_tx_.data(),
                         workers, 0) < 0) {
    return absl::InternalError("rte_eth_from_rings failed");
  }
  DataplaneOptions o;
  // rte_eth_from_rings names the ports net_ring_<name>.
  h->uplink_name_ = "net_ring_" + h->uplink_name_;
  h->exception_name_ = "net_ring_" + h->exception_name_;
  o.uplink = h->uplink_name_;
  o.exception = h->exception_name_;
  o.workers = workers;
  o.conn_table_size = conn_size;
  o.mbufs = 4095;
  o.max_vips = 1024;
  o.max_backends = 8192;
  auto dp = Dataplane::Start(o);
  if (!dp.ok()) return dp.status();
  h->dp_ = *std::move(dp);
  h->builder_ = SnapshotBuilder(BuildLimits{o.max_vips, o.max_backends});
  return h;
}

PipelineHarness::~PipelineHarness() {
  dp_.reset();
  for (auto* rings : {&up_rx_, &up_tx_, &ex_rx_, &ex_tx_}) {
    for (rte_ring* r : *rings) {
      void* m;
      while (rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    }
  }
  uint16_t port;
  if (rte_eth_dev_get_port_by_name(uplink_name_.c_str(), &port) == 0) rte_eth_dev_close(port);
  if (rte_eth_dev_get_port_by_name(exception_name_.c_str(), &port) == 0) rte_eth_dev_close(port);
}

absl::Status PipelineHarness::Apply(const v1::ServiceConfig& services, const v1::NodeParams& node) {
  std::vector<std::pair<std::pair<IpAddr, IpFamily>, MacAddr>> statics;
  auto params = NodeParamsFromProto(node, dp_->uplink_mac(), &statics);
  if (!params.ok()) return params.status();
  const NeighborLookup lookup = [&statics](const IpAddr& a, IpFamily f,
                                           bool) -> std::optional<MacAddr> {
    for (const auto& [ip, mac] : statics) {
      if (ip.first == a && ip.second == f) return mac;
    }
    return std::nullopt;
  };
  auto snap = builder_.Build(services, *params, lookup);
  if (!snap.ok()) return snap.status();
  dp_->Publish(*std::move(snap));
  return absl::OkStatus();
}

namespace {
void Enqueue(rte_mempool* pool, rte_ring* ring, const Bytes& frame) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  if (m == nullptr) return;
  char* d = rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size()));
  if (d == nullptr) {
    rte_pktmbuf_free(m);
    return;
  }
  std::memcpy(d, frame.data(), frame.size());
  while (rte_ring_enqueue(ring, m) != 0) std::this_thread::yield();
}
}  // namespace

void PipelineHarness::Send(const Bytes& frame, uint16_t queue) {
  Enqueue(pool_, up_rx_[queue], frame);
}

void PipelineHarness::SendFromKernel(const Bytes& frame, uint16_t queue) {
  Enqueue(pool_, ex_rx_[queue], frame);
}

std::vector<Bytes> PipelineHarness::Drain(std::vector<rte_ring*>& rings, size_t count,
                                          std::chrono::milliseconds timeout) {
  std::vector<Bytes> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < count && std::chrono::steady_clock::now() < deadline) {
    bool any = false;
    for (rte_ring* r : rings) {
      void* p;
      while (out.size() < count && rte_ring_dequeue(r, &p) == 0) {
        rte_mbuf* m = static_cast<rte_mbuf*>(p);
        const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
        out.emplace_back(d, d + rte_pktmbuf_data_len(m));
        rte_pktmbuf_free(m);
        any = true;
      }
    }
    if (!any) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return out;
}

std::vector<Bytes> PipelineHarness::ReceiveUplink(size_t count, std::chrono::milliseconds timeout) {
  return Drain(up_tx_, count, timeout);
}

std::vector<Bytes> PipelineHarness::ReceiveKernel(size_t count, std::chrono::milliseconds timeout) {
  return Drain(ex_tx_, count, timeout);
}

bool PipelineHarness::WaitProcessed(uint64_t rx, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (dp_->Collect().total.rx_packets >= rx) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

}  // namespace lb::testing
