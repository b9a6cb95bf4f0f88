#include "dataplane/dpdk/dataplane.h"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "dataplane/core/packet_parser.h"

namespace lb {
namespace {

constexpr uint16_t kBurst = Forwarder::kMaxBurst;
constexpr uint32_t kHandoffRing = 1024;
// Idle back-off: after this many empty polls a worker sleeps, doubling the sleep up to the cap.
// The cap bounds the added latency for the first packet after a quiet spell, and keeps BFD
// (100 ms timers) and OSPF hellos far inside their budgets.
constexpr uint32_t kIdlePollsBeforeSleep = 256;
constexpr uint32_t kIdleSleepMinUs = 10;
constexpr uint32_t kIdleSleepMaxUs = 200;

std::string RteError() { return rte_strerror(rte_errno); }

std::atomic<bool> eal_ready{false};

std::string PortNames() {
  std::vector<std::string> names;
  uint16_t p;
  RTE_ETH_FOREACH_DEV(p) {
    char name[RTE_ETH_NAME_MAX_LEN];
    if (rte_eth_dev_get_name_by_port(p, name) == 0) names.push_back(name);
  }
  return names.empty() ? "none" : absl::StrJoin(names, ", ");
}

}  // namespace

absl::Status InitEal(const std::vector<std::string>& args) {
  static std::mutex mu;
  static absl::Status* result = nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (result != nullptr) return *result;
  // rte_eal_init keeps pointers into argv: the strings must live for the process.
  static std::vector<std::string>* storage = new std::vector<std::string>();
  storage->push_back("lbnode");
  storage->insert(storage->end(), args.begin(), args.end());
  static std::vector<char*>* argv = new std::vector<char*>();
  for (std::string& s : *storage) argv->push_back(s.data());
  argv->push_back(nullptr);
  const int rc = rte_eal_init(static_cast<int>(storage->size()), argv->data());
  result = new absl::Status(
      rc < 0 ? absl::InternalError(absl::StrCat("rte_eal_init(", absl::StrJoin(args, " "),
                                                ") failed: ", RteError()))
             : absl::OkStatus());
  eal_ready.store(result->ok());
  return *result;
}

void CleanupEal() {
  if (!eal_ready.exchange(false)) return;
  const std::string runtime_dir = rte_eal_get_runtime_dir();
  rte_eal_cleanup();
  std::error_code ec;
  std::filesystem::remove_all(runtime_dir, ec);  // /var/run/dpdk/<file prefix>
}

absl::StatusOr<MacAddr> PortMac(const std::string& name) {
  uint16_t port;
  if (rte_eth_dev_get_port_by_name(name.c_str(), &port) != 0) {
    return absl::NotFoundError(absl::StrCat("port \"", name, "\" not found; ports: ", PortNames()));
  }
  struct rte_ether_addr mac;
  if (int rc = rte_eth_macaddr_get(port, &mac); rc != 0) {
    return absl::InternalError(absl::StrCat("MAC of ", name, ": ", rte_strerror(-rc)));
  }
  MacAddr m;
  std::memcpy(m.bytes, mac.addr_bytes, 6);
  return m;
}

struct Dataplane::Worker {
  uint32_t id = 0;
  unsigned lcore = 0;
  Dataplane* dp = nullptr;
  void* conn_memory = nullptr;
  std::unique_ptr<ConnTable> conns;
  std::unique_ptr<WorkerCounters> counters;
  std::unique_ptr<Forwarder> forwarder;
  struct rte_ring* handoff = nullptr;
  struct rte_eth_dev_tx_buffer* tx_uplink = nullptr;
  struct rte_eth_dev_tx_buffer* tx_exception = nullptr;
  std::atomic<uint64_t> loops{0};
  std::atomic<uint32_t> stall_ms{0};  // fault injection (StallWorker)
};

absl::Status Dataplane::SetupPort(uint16_t port, uint16_t queues, bool rss) {
  struct rte_eth_dev_info info;
  if (int rc = rte_eth_dev_info_get(port, &info); rc != 0) {
    return absl::InternalError(absl::StrCat("port ", port, ": dev_info: ", rte_strerror(-rc)));
  }
  if (queues > info.max_rx_queues || queues > info.max_tx_queues) {
    return absl::InvalidArgumentError(
        absl::StrCat("port ", port, " (", info.driver_name, ") has ", info.max_rx_queues, " RX / ",
                     info.max_tx_queues, " TX queues; ", queues, " workers need one pair each"));
  }
  struct rte_eth_conf conf;
  std::memset(&conf, 0, sizeof(conf));
  if (rss && queues > 1 && info.flow_type_rss_offloads != 0) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf =
        (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
  }
  if (int rc = rte_eth_dev_configure(port, queues, queues, &conf); rc != 0) {
    return absl::InternalError(absl::StrCat("port ", port, ": configure: ", rte_strerror(-rc)));
  }
  uint16_t rxd = options_.rx_ring, txd = options_.tx_ring;
  rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd);
  const int socket = rte_eth_dev_socket_id(port) < 0 ? 0 : rte_eth_dev_socket_id(port);
  for (uint16_t q = 0; q < queues; ++q) {
    if (int rc = rte_eth_rx_queue_setup(port, q, rxd, socket, nullptr, pool_); rc != 0) {
      return absl::InternalError(
          absl::StrCat("port ", port, ": rx queue ", q, ": ", rte_strerror(-rc)));
    }
    if (int rc = rte_eth_tx_queue_setup(port, q, txd, socket, nullptr); rc != 0) {
      return absl::InternalError(
          absl::StrCat("port ", port, ": tx queue ", q, ": ", rte_strerror(-rc)));
    }
  }
  rte_eth_promiscuous_enable(port);  // not every PMD supports it; the uplink MAC still works
  if (int rc = rte_eth_dev_start(port); rc != 0) {
    return absl::InternalError(absl::StrCat("port ", port, ": start: ", rte_strerror(-rc)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Dataplane>> Dataplane::Start(
    const DataplaneOptions& options, std::shared_ptr<const Snapshot> initial) {
  if (!eal_ready.load()) {
    return absl::FailedPreconditionError("the EAL is not initialised (InitEal first)");
  }
  std::unique_ptr<Dataplane> dp(new Dataplane());
  dp->options_ = options;
  if (options.workers == 0) return absl::InvalidArgumentError("workers must be at least 1");
  if (options.workers > rte_lcore_count() - 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.workers, " workers need as many worker lcores; the EAL has ",
                     rte_lcore_count() - 1, " (give more cores with -l)"));
  }
  if (rte_eth_dev_get_port_by_name(options.uplink.c_str(), &dp->uplink_) != 0) {
    return absl::NotFoundError(
        absl::StrCat("uplink port \"", options.uplink, "\" not found; ports: ", PortNames()));
  }
  if (!options.exception.empty()) {
    if (rte_eth_dev_get_port_by_name(options.exception.c_str(), &dp->exception_) != 0) {
      return absl::NotFoundError(absl::StrCat("exception port \"", options.exception,
                                              "\" not found; ports: ", PortNames()));
    }
    if (dp->exception_ == dp->uplink_) {
      return absl::InvalidArgumentError("the exception port must differ from the uplink");
    }
    dp->has_exception_ = true;
  }
  static std::atomic<int> instance{0};
  const int n = instance++;
  const std::string pool_name = absl::StrCat("lb_mbufs_", n);
  // Enough for every RX and TX ring full, the handoff rings, the per-lcore caches and a burst in
  // flight per worker; a smaller pool would starve RX under load without any error.
  const uint32_t ports = options.exception.empty() ? 1 : 2;
  const uint32_t needed =
      options.workers * (ports * (options.rx_ring + options.tx_ring) + kHandoffRing + 4 * kBurst) +
      256 * (rte_lcore_count() + 1);
  const uint32_t mbufs = std::max(options.mbufs, needed);
  dp->pool_ = rte_pktmbuf_pool_create(pool_name.c_str(), mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                      rte_socket_id());
  if (dp->pool_ == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "mbuf pool of ", mbufs, " buffers: ", RteError(), " (raise -m or reserve hugepages)"));
  }
  const uint16_t queues = static_cast<uint16_t>(options.workers);
  if (absl::Status st = dp->SetupPort(dp->uplink_, queues, true); !st.ok()) return st;
  if (dp->has_exception_) {
    if (absl::Status st = dp->SetupPort(dp->exception_, queues, false); !st.ok()) return st;
  }
  struct rte_ether_addr mac;
  if (rte_eth_macaddr_get(dp->uplink_, &mac) == 0) {
    std::memcpy(dp->uplink_mac_.bytes, mac.addr_bytes, 6);
  }

  const size_t rcu_size = rte_rcu_qsbr_get_memsize(options.workers);
  dp->rcu_ =
      static_cast<struct rte_rcu_qsbr*>(rte_zmalloc("lb_rcu", rcu_size, RTE_CACHE_LINE_SIZE));
  if (dp->rcu_ == nullptr || rte_rcu_qsbr_init(dp->rcu_, options.workers) != 0) {
    return absl::ResourceExhaustedError("RCU state: " + RteError());
  }
  // Workers always see a snapshot; the first one forwards nothing (every VIP lookup misses).
  dp->current_ = initial != nullptr ? std::move(initial) : std::make_shared<Snapshot>();
  dp->snapshot_.store(dp->current_.get(), std::memory_order_release);

  const uint32_t capacity = ConnTable::RoundCapacity(options.conn_table_size);
  unsigned lcore = rte_get_next_lcore(-1, 1, 0);
  for (uint32_t i = 0; i < options.workers; ++i, lcore = rte_get_next_lcore(lcore, 1, 0)) {
    auto w = std::make_unique<Worker>();
    w->id = i;
    w->lcore = lcore;
    w->dp = dp.get();
    const int socket = static_cast<int>(rte_lcore_to_socket_id(lcore));
    w->conn_memory = rte_zmalloc_socket("lb_conns", ConnTable::MemoryBytes(capacity),
                                        RTE_CACHE_LINE_SIZE, socket);
    if (w->conn_memory == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "connection table of ", capacity, " entries (", ConnTable::MemoryBytes(capacity) >> 20,
          " MiB) for worker ", i, ": out of DPDK memory (raise -m or reserve hugepages)"));
    }
    w->conns = std::make_unique<ConnTable>(w->conn_memory, capacity);
    w->counters = std::make_unique<WorkerCounters>(options.max_vips, options.max_backends);
    w->forwarder = std::make_unique<Forwarder>(ForwarderConfig{i, options.workers}, w->conns.get(),
                                               w->counters.get());
    const std::string ring = absl::StrCat("lb_handoff_", n, "_", i);
    w->handoff = rte_ring_create(ring.c_str(), kHandoffRing, socket, RING_F_SC_DEQ);
    if (w->handoff == nullptr) return absl::ResourceExhaustedError("handoff ring: " + RteError());
    for (auto** buf : {&w->tx_uplink, &w->tx_exception}) {
      *buf = static_cast<struct rte_eth_dev_tx_buffer*>(
          rte_zmalloc_socket("lb_txbuf", RTE_ETH_TX_BUFFER_SIZE(kBurst), 0, socket));
      if (*buf == nullptr) return absl::ResourceExhaustedError("tx buffer: " + RteError());
      rte_eth_tx_buffer_init(*buf, kBurst);
      rte_eth_tx_buffer_set_err_callback(*buf, rte_eth_tx_buffer_count_callback,
                                         &w->counters->drops[static_cast<size_t>(Drop::kTxFull)]);
    }
    rte_rcu_qsbr_thread_register(dp->rcu_, i);
    dp->workers_.push_back(std::move(w));
  }
  dp->running_.store(true);
  dp->stopped_ = false;
  for (auto& w : dp->workers_) {
    if (int rc = rte_eal_remote_launch(&Dataplane::WorkerMain, w.get(), w->lcore); rc != 0) {
      dp->Stop();
      return absl::InternalError(
          absl::StrCat("launching worker on lcore ", w->lcore, ": ", rte_strerror(-rc)));
    }
  }
  return dp;
}

int Dataplane::WorkerMain(void* arg) {
  auto* w = static_cast<Worker*>(arg);
  w->dp->RunWorker(w);
  return 0;
}

void Dataplane::RunWorker(Worker* w) {
  const uint16_t q = static_cast<uint16_t>(w->id);
  const uint64_t tsc_per_ms = rte_get_tsc_hz() / 1000;
  Forwarder& fwd = *w->forwarder;
  WorkerCounters& counters = *w->counters;
  struct rte_mbuf* pkts[kBurst];
  uint32_t idle_polls = 0;
  uint32_t sleep_us = kIdleSleepMinUs;

  rte_rcu_qsbr_thread_online(rcu_, w->id);
  const auto dispatch = [&](struct rte_mbuf* m, Action action) {
    switch (action) {
      case Action::kUplink:
        rte_eth_tx_buffer(uplink_, q, w->tx_uplink, m);
        break;
      case Action::kKernel:
        if (has_exception_) {
          rte_eth_tx_buffer(exception_, q, w->tx_exception, m);
        } else {
          rte_pktmbuf_free(m);
        }
        break;
      case Action::kHandoff:
        if (rte_ring_enqueue(workers_[fwd.handoff_worker()]->handoff, m) != 0) {
          counters.AddDrop(Drop::kHandoffFull);
          rte_pktmbuf_free(m);
        }
        break;
      case Action::kDrop:
        rte_pktmbuf_free(m);
        break;
    }
  };
  // Forwarder::ProcessBurst parses and classifies the whole burst, starting each flow's
  // connection-table loads, before it decides on any packet: with a table far larger than the
  // caches, the misses of a burst overlap instead of stalling each packet twice in turn.
  Frame frames[kBurst];
  Action actions[kBurst];
  struct rte_mbuf* single[kBurst];
  const auto process_burst = [&](struct rte_mbuf** ms, uint32_t n, const Snapshot& snap,
                                 uint32_t now) {
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; ++i) {
      struct rte_mbuf* m = ms[i];
      if (m->nb_segs > 1) [[unlikely]] {
        counters.AddDrop(Drop::kMultiSegment);
        rte_pktmbuf_free(m);
        continue;
      }
      frames[k] = Frame{rte_pktmbuf_mtod(m, uint8_t*), m->data_len, rte_pktmbuf_headroom(m)};
      single[k++] = m;
    }
    fwd.ProcessBurst(frames, k, snap, now, actions);
    for (uint32_t i = 0; i < k; ++i) {
      struct rte_mbuf* m = single[i];
      if (actions[i] == Action::kUplink) {
        m->data_off = static_cast<uint16_t>(frames[i].data - static_cast<uint8_t*>(m->buf_addr));
        m->data_len = static_cast<uint16_t>(frames[i].len);
        m->pkt_len = frames[i].len;
      }
      dispatch(m, actions[i]);
    }
  };

  while (running_.load(std::memory_order_relaxed)) {
    if (const uint32_t stall = w->stall_ms.load(std::memory_order_relaxed)) [[unlikely]] {
      // Fault injection: spin without progress, forwarding or quiescent points, like a worker
      // caught in a loop. The watchdog must notice.
      const uint64_t until = rte_get_tsc_cycles() + stall * tsc_per_ms;
      while (rte_get_tsc_cycles() < until && running_.load(std::memory_order_relaxed)) {
        rte_pause();
      }
      w->stall_ms.store(0, std::memory_order_relaxed);
    }
    w->loops.fetch_add(1, std::memory_order_relaxed);
    const Snapshot& snap = *snapshot_.load(std::memory_order_acquire);
    const uint32_t now = static_cast<uint32_t>(rte_get_tsc_cycles() / tsc_per_ms);
    uint32_t work = 0;

    const uint16_t n = rte_eth_rx_burst(uplink_, q, pkts, kBurst);
    counters.rx_packets += n;
    for (uint16_t i = 0; i < n; ++i) counters.rx_bytes += rte_pktmbuf_pkt_len(pkts[i]);
    process_burst(pkts, n, snap, now);
    work += n;
    // A few buckets per loop: the sweep goes round a 2^20-entry table in about 1 s when busy.
    w->conns->ExpireSome(now, 4);
    const unsigned handed =
        rte_ring_dequeue_burst(w->handoff, reinterpret_cast<void**>(pkts), kBurst, nullptr);
    process_burst(pkts, handed, snap, now);
    work += handed;
    if (has_exception_) {
      // What the kernel sends (ARP, ND, OSPF, BFD, the node's own traffic) goes out unchanged.
      const uint16_t k = rte_eth_rx_burst(exception_, q, pkts, kBurst);
      for (uint16_t i = 0; i < k; ++i) rte_eth_tx_buffer(uplink_, q, w->tx_uplink, pkts[i]);
      counters.from_kernel += k;
      work += k;
      rte_eth_tx_buffer_flush(exception_, q, w->tx_exception);
    }
    rte_eth_tx_buffer_flush(uplink_, q, w->tx_uplink);
    rte_rcu_qsbr_quiescent(rcu_, w->id);

    if (work != 0 || options_.busy_poll) {
      idle_polls = 0;
      sleep_us = kIdleSleepMinUs;
      continue;
    }
    if (++idle_polls < kIdlePollsBeforeSleep) continue;
    // Offline while asleep: Publish() need not wait for a sleeping worker, which holds no
    // snapshot reference across the sleep.
    rte_rcu_qsbr_thread_offline(rcu_, w->id);
    usleep(sleep_us);
    sleep_us = sleep_us * 2 > kIdleSleepMaxUs ? kIdleSleepMaxUs : sleep_us * 2;
    rte_rcu_qsbr_thread_online(rcu_, w->id);
  }
  rte_rcu_qsbr_thread_offline(rcu_, w->id);
}

void Dataplane::StallWorker(uint32_t worker, uint32_t ms) {
  if (worker < workers_.size()) workers_[worker]->stall_ms.store(ms, std::memory_order_relaxed);
}

bool Dataplane::Publish(std::shared_ptr<const Snapshot> snapshot) {
  std::shared_ptr<const Snapshot> old = std::move(current_);
  current_ = std::move(snapshot);
  snapshot_.store(current_.get(), std::memory_order_release);
  if (rcu_ == nullptr) return true;
  const uint64_t token = rte_rcu_qsbr_start(rcu_);
  // Every online worker passes a quiescent point within one loop (at most one burst of work).
  // A worker that does not within a second is stuck: keep the old snapshot alive forever rather
  // than free memory it may still read, and report it.
  const uint64_t deadline = rte_get_tsc_cycles() + rte_get_tsc_hz();
  while (rte_rcu_qsbr_check(rcu_, token, false) == 0) {
    if (rte_get_tsc_cycles() > deadline) {
      leaked_.push_back(std::move(old));
      return false;
    }
    rte_pause();
  }
  return true;
}

std::vector<uint64_t> Dataplane::CountConnectionsByVip() const {
  std::vector<uint64_t> out(options_.max_vips + 1, 0);
  const uint32_t now = static_cast<uint32_t>(rte_get_tsc_cycles() / (rte_get_tsc_hz() / 1000));
  for (const auto& w : workers_) {
    w->conns->ForEachLive(now, [&out](const FlowKey&, const ConnValue& v, uint32_t) {
      if (v.flags & kConnReverse) return;
      const uint32_t index = HandleIndex(v.vip);
      if (index < out.size()) ++out[index];
    });
  }
  return out;
}

DataplaneCounters Dataplane::Collect() const {
  DataplaneCounters out;
  out.total.vips.assign(options_.max_vips, {});
  out.total.backends.assign(options_.max_backends, {});
  for (const auto& w : workers_) {
    const WorkerCounters& c = *w->counters;
    WorkerCounters& t = out.total;
    t.rx_packets += c.rx_packets;
    t.rx_bytes += c.rx_bytes;
    t.to_backend += c.to_backend;
    t.to_kernel += c.to_kernel;
    t.from_kernel += c.from_kernel;
    t.echo_replies += c.echo_replies;
    t.icmp_errors += c.icmp_errors;
    t.nat_replies += c.nat_replies;
    t.handoffs += c.handoffs;
    t.conn_hits += c.conn_hits;
    t.conn_misses += c.conn_misses;
    t.conn_repicked += c.conn_repicked;
    t.nat_reverse_restored += c.nat_reverse_restored;
    t.nat_reallocated += c.nat_reallocated;
    for (size_t i = 0; i < static_cast<size_t>(Drop::kCount); ++i) t.drops[i] += c.drops[i];
    for (size_t i = 0; i < static_cast<size_t>(ParseStatus::kCount); ++i) {
      t.parse_drops[i] += c.parse_drops[i];
    }
    for (size_t i = 0; i < c.vips.size(); ++i) {
      t.vips[i].packets += c.vips[i].packets;
      t.vips[i].bytes += c.vips[i].bytes;
    }
    for (size_t i = 0; i < c.backends.size(); ++i) {
      t.backends[i].packets += c.backends[i].packets;
      t.backends[i].bytes += c.backends[i].bytes;
    }
    const ConnTableStats& s = w->conns->stats();
    out.conn_stats.inserts += s.inserts;
    out.conn_stats.evicted_live += s.evicted_live;
    out.conn_stats.reused_expired += s.reused_expired;
    out.conn_stats.erased += s.erased;
    out.conn_stats.swept += s.swept;
    out.conn_capacity += w->conns->capacity();
    out.worker_loops.push_back(w->loops.load(std::memory_order_relaxed));
    out.worker_rx.push_back(c.rx_packets);
  }
  // Live from the port while it runs; after Stop(), the figures read just before stopping it.
  struct rte_eth_stats stats;
  if (!stopped_ && rte_eth_stats_get(uplink_, &stats) == 0) {
    out.uplink_imissed = stats.imissed;
    out.uplink_rx_nombuf = stats.rx_nombuf;
    out.uplink_oerrors = stats.oerrors;
  } else {
    out.uplink_imissed = stopped_imissed_;
    out.uplink_rx_nombuf = stopped_rx_nombuf_;
    out.uplink_oerrors = stopped_oerrors_;
  }
  return out;
}

void Dataplane::Stop() {
  if (stopped_) return;
  stopped_ = true;
  running_.store(false);
  for (auto& w : workers_) rte_eal_wait_lcore(w->lcore);
  struct rte_eth_stats stats;
  if (rte_eth_stats_get(uplink_, &stats) == 0) {
    stopped_imissed_ = stats.imissed;
    stopped_rx_nombuf_ = stats.rx_nombuf;
    stopped_oerrors_ = stats.oerrors;
  }
  rte_eth_dev_stop(uplink_);
  if (has_exception_) rte_eth_dev_stop(exception_);
}

void Dataplane::StopAndClose() {
  Stop();
  rte_eth_dev_close(uplink_);
  if (has_exception_) rte_eth_dev_close(exception_);
}

Dataplane::~Dataplane() {
  Stop();
  for (auto& w : workers_) {
    // Packets still handed over are returned to the pool.
    void* m;
    while (w->handoff != nullptr && rte_ring_dequeue(w->handoff, &m) == 0) {
      rte_pktmbuf_free(static_cast<struct rte_mbuf*>(m));
    }
    rte_ring_free(w->handoff);
    rte_free(w->tx_uplink);
    rte_free(w->tx_exception);
    w->conns.reset();
    rte_free(w->conn_memory);
  }
  rte_free(rcu_);
  // The mbuf pool stays: the stopped ports' queues may still reference its buffers.
}

}  // namespace lb
