// Dataplane: the DPDK side of lbnode. It initialises the EAL, sets up the uplink and the
// exception-path port, launches one worker per lcore (one RX/TX queue pair each on both ports),
// and publishes config snapshots to the workers with RCU (rte_rcu_qsbr): Publish() swaps the
// pointer, waits until every online worker has passed a quiescent point, then frees the old
// snapshot. Forwarding never stops for a change.
//
// Threads: Start/Publish/Stop/Collect* are for one control thread. Workers run Forwarder::Process
// on lcores. The EAL is process-wide and can be initialised once (InitEal is idempotent).
#ifndef LBNODE_DATAPLANE_DPDK_DATAPLANE_H_
#define LBNODE_DATAPLANE_DPDK_DATAPLANE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dataplane/core/conn_table.h"
#include "dataplane/core/forwarder.h"
#include "dataplane/core/snapshot.h"

struct rte_mempool;
struct rte_rcu_qsbr;

namespace lb {

// Initialises the EAL with `args` (argv without the program name) once per process; later calls
// return the first call's result.
absl::Status InitEal(const std::vector<std::string>& args);

// Releases the EAL (rte_eal_cleanup) and removes its runtime directory
// (/var/run/dpdk/<file prefix>), if InitEal succeeded; for the end of the process, on every exit
// path (an lbnode that fails after the EAL started must not leave the directory behind).
void CleanupEal();

// The MAC address of ethdev `name` (after InitEal).
absl::StatusOr<MacAddr> PortMac(const std::string& name);

struct DataplaneOptions {
  std::string uplink;     // ethdev name of the uplink (e.g. "net_af_packet0", "0000:03:00.0")
  std::string exception;  // ethdev name of the exception path (e.g. "net_tap0"); "" = none
  uint32_t workers = 1;   // worker lcores: the first `workers` lcores after the main one
  uint32_t conn_table_size = 1u << 20;  // entries per worker
  uint32_t mbufs = 8191;                // at least; raised to what the rings and workers need
  uint32_t max_vips = 4096;
  uint32_t max_backends = 65536;
  bool busy_poll = false;  // true: never sleep when idle (benchmarks); false: back off
  uint16_t rx_ring = 1024;
  uint16_t tx_ring = 1024;
};

// Sum of all workers' counters plus connection-table figures.
struct DataplaneCounters {
  WorkerCounters total{0, 0};
  uint64_t conn_live = 0;  // not filled by Collect(): costs a table scan per worker
  uint64_t conn_capacity = 0;
  ConnTableStats conn_stats;
  std::vector<uint64_t> worker_loops;  // per worker, grows while the worker makes progress
  std::vector<uint64_t> worker_rx;     // per worker: packets taken from the uplink
  // The uplink port's own drops (rte_eth_stats): packets the NIC could not deliver because the
  // workers were behind (imissed) or the mbuf pool was empty (rx_nombuf), and TX errors.
  uint64_t uplink_imissed = 0;
  uint64_t uplink_rx_nombuf = 0;
  uint64_t uplink_oerrors = 0;
};

class Dataplane {
 public:
  // `initial` is what the workers forward from their first packet on (nullptr: nothing, every
  // VIP lookup misses) — a restarted node must not forward a single packet without its config.
  static absl::StatusOr<std::unique_ptr<Dataplane>> Start(
      const DataplaneOptions& options, std::shared_ptr<const Snapshot> initial = nullptr);
  ~Dataplane();

  // Makes `snapshot` current for every worker; returns after no worker can still see the old one.
  // Returns false if a worker did not pass a quiescent point within a second (it is stuck): the
  // old snapshot is then kept alive for good rather than freed under the worker's feet.
  bool Publish(std::shared_ptr<const Snapshot> snapshot);
  std::shared_ptr<const Snapshot> current() const { return current_; }

  // Sums the workers' counters (VIP/backend arrays included).
  DataplaneCounters Collect() const;

  // Live connections per VIP handle index (forward entries; full-NAT reverse entries are not
  // counted twice), over every worker's table. The scan runs while the workers write: each
  // entry read is a plain load of memory that stays mapped, so a racing update can only make
  // the count off by the flows changing at that instant. Costs a pass over every table.
  std::vector<uint64_t> CountConnectionsByVip() const;

  // Fault injection for tests (lbnode --fault-injection, SIGUSR2): worker `worker` spins for
  // `ms` without forwarding, counting loops or passing quiescent points, as a stuck worker would.
  void StallWorker(uint32_t worker, uint32_t ms);

  MacAddr uplink_mac() const { return uplink_mac_; }
  uint16_t uplink_port() const { return uplink_; }
  uint32_t workers() const { return static_cast<uint32_t>(workers_.size()); }
  // Stops the workers and the ports. Idempotent; the destructor calls it.
  void Stop();
  // Stops, then closes both ports (pcap ports flush their files on close).
  void StopAndClose();

 private:
  struct Worker;
  Dataplane() = default;
  absl::Status SetupPort(uint16_t port, uint16_t queues, bool rss);
  static int WorkerMain(void* arg);
  void RunWorker(Worker* w);

  DataplaneOptions options_;
  uint16_t uplink_ = 0;
  uint16_t exception_ = 0;
  bool has_exception_ = false;
  MacAddr uplink_mac_{};
  ::rte_mempool* pool_ = nullptr;
  ::rte_rcu_qsbr* rcu_ = nullptr;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<const Snapshot*> snapshot_{nullptr};
  std::shared_ptr<const Snapshot> current_;
  std::vector<std::shared_ptr<const Snapshot>> leaked_;  // old snapshots a stuck worker may read
  std::atomic<bool> running_{false};
  bool stopped_ = true;
  // The uplink's drop figures, read by Stop() so they outlive the port.
  uint64_t stopped_imissed_ = 0;
  uint64_t stopped_rx_nombuf_ = 0;
  uint64_t stopped_oerrors_ = 0;
};

}  // namespace lb

#endif  // LBNODE_DATAPLANE_DPDK_DATAPLANE_H_
