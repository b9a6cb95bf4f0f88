// PipelineHarness: runs a real Dataplane (workers on lcores, RCU snapshots) between ring-backed
// DPDK ports (net_ring, rte_eth_from_rings) so tests inject frames and read what the workers
// transmit on the uplink and toward the kernel. One EAL per test process (PipelineEnvironment).
#ifndef LBNODE_TESTS_PIPELINE_HARNESS_H_
#define LBNODE_TESTS_PIPELINE_HARNESS_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "control/snapshot_builder.h"
#include "dataplane/dpdk/dataplane.h"
#include "tests/lib/packet_builder.h"

struct rte_ring;
struct rte_mempool;

namespace lb::testing {

// Initialises the EAL without hugepages or PCI, with 3 lcores (main + 2 workers).
absl::Status InitTestEal();
// Whether InitTestEal ran (and succeeded) in this process.
bool EalStarted();

class PipelineHarness {
 public:
  static absl::StatusOr<std::unique_ptr<PipelineHarness>> Create(uint32_t workers = 1,
                                                                 uint32_t conn_table_size = 1u
                                                                                            << 16);
  ~PipelineHarness();

  // Builds and publishes a snapshot; static neighbours from `node` resolve next hops.
  absl::Status Apply(const v1::ServiceConfig& services, const v1::NodeParams& node);

  // Enqueues a frame on uplink RX queue `queue` (what the network sends the node).
  void Send(const Bytes& frame, uint16_t queue = 0);
  // Enqueues a frame on the exception port's RX queue (what the kernel sends).
  void SendFromKernel(const Bytes& frame, uint16_t queue = 0);
  // Collects frames the workers transmitted, until `count` arrived or `timeout` passed.
  std::vector<Bytes> ReceiveUplink(
      size_t count, std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));
  std::vector<Bytes> ReceiveKernel(
      size_t count, std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));
  // Waits until the workers have taken in `rx` frames in total (processed or dropped).
  bool WaitProcessed(uint64_t rx,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

  Dataplane& dataplane() { return *dp_; }
  SnapshotBuilder& builder() { return builder_; }
  MacAddr uplink_mac() const { return dp_->uplink_mac(); }

 private:
  PipelineHarness() = default;
  std::vector<Bytes> Drain(std::vector<rte_ring*>& rings, size_t count,
                           std::chrono::milliseconds timeout);

  std::vector<rte_ring*> up_rx_, up_tx_, ex_rx_, ex_tx_;
  rte_mempool* pool_ = nullptr;
  std::unique_ptr<Dataplane> dp_;
  SnapshotBuilder builder_;
  std::string uplink_name_, exception_name_;
};

}  // namespace lb::testing

#endif  // LBNODE_TESTS_PIPELINE_HARNESS_H_
