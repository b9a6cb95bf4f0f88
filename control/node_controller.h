// NodeController: lbnode's desired state and everything that follows from it. It owns the
// service config (VIPs, backends), the drain state and the health verdicts; every change goes
// through one path: validate the whole result, build one dataplane snapshot, persist the state
// (atomically), publish the snapshot, emit an event. A change that fails any step before the
// publish changes nothing, so a rejected API call leaves the node exactly as it was.
//
// It also decides what the node announces (the announce gate): a VIP's address is announced only
// while the dataplane forwards, every worker makes progress, the node and the VIP are not
// drained, the health checks have all given a first verdict, and the VIP has at least one backend
// taking new flows. Routes are per address: an address shared by several VIPs (ports) stays
// announced while any of them wants it.
//
// Threads: the API methods are thread-safe (one mutex). Tick() runs on the main loop; it does the
// slow work (watchdog, connection counts, talking to BIRD) without holding the mutex while it
// waits on BIRD.
#ifndef LBNODE_CONTROL_NODE_CONTROLLER_H_
#define LBNODE_CONTROL_NODE_CONTROLLER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "control/state_store.h"
#include "dataplane/core/snapshot.h"
#include "dataplane/dpdk/dataplane.h"
#include "lb/v1/service.pb.h"

namespace lb {

// Canonical VIP identity: "192.0.2.1:80/tcp", "[2001:db8::1]:0/udp" (addresses normalised).
absl::StatusOr<std::string> VipKeyString(const v1::VipKey& key);
v1::VipKey KeyOf(const v1::Vip& vip);
// The health target key of a backend of a VIP: "<vip key>|<normalised backend address>".
std::string HealthKey(const std::string& vip_key, const std::string& backend_address);

// Fan-out of events to Watch streams. Each subscriber has a bounded queue; a subscriber that
// falls behind loses its oldest events and is told how many (an event saying so).
class EventBus {
 public:
  class Subscription {
   public:
    // Waits up to `timeout` for the next event; nullopt on timeout or when closed.
    std::optional<v1::Event> Next(std::chrono::milliseconds timeout);
    bool closed() const;

   private:
    friend class EventBus;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<v1::Event> queue_;
    uint64_t lost_ = 0;
    bool closed_ = false;
  };

  std::shared_ptr<Subscription> Subscribe();
  void Unsubscribe(const std::shared_ptr<Subscription>& s);
  void Publish(const v1::Event& event);
  void CloseAll();

  static constexpr size_t kQueueLimit = 4096;

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<Subscription>> subs_;
};

struct HealthVerdict {
  bool healthy = true;
  bool checked = false;  // at least one verdict
  std::string last_error;
};

class NodeController {
 public:
  using BuildFn = std::function<absl::StatusOr<std::shared_ptr<const Snapshot>>(
      const v1::ServiceConfig& effective)>;

  struct Hooks {
    // Builds a snapshot for the effective config (unhealthy backends already marked down).
    BuildFn build;
    // The dataplane: Publish, Collect, CountConnectionsByVip. Must outlive the controller.
    Dataplane* dataplane = nullptr;
    // Called (under the controller's lock) with every new desired config: the health checker
    // takes its targets from it. May be empty.
    std::function<void(const v1::ServiceConfig&)> on_config;
    // Routing. Empty functions: routing disabled (nothing is announced; drains complete at once).
    // apply_routes: make BIRD originate exactly these prefixes ("192.0.2.1/32"); UNAVAILABLE
    // when BIRD is down (retried every tick).
    std::function<absl::Status(const std::vector<std::string>& prefixes)> apply_routes;
    // What BIRD reports it originates now (to confirm a withdrawal).
    std::function<absl::StatusOr<std::vector<std::string>>()> exported_routes;
    std::function<v1::RoutingStatus()> routing_status;
  };

  struct Options {
    std::string node_name;
    std::string build_version;
    uint32_t watchdog_ms = 1000;
  };

  NodeController(Options options, StateStore* store, Hooks hooks);

  // Restores the saved state (or, when none was saved, takes `initial` and saves it), builds and
  // publishes the first snapshot. Returns the snapshot for Dataplane::Start when `dataplane` is
  // not running yet; call Attach() once it is.
  absl::StatusOr<std::shared_ptr<const Snapshot>> Restore(const v1::ServiceConfig& initial);
  void Attach(Dataplane* dataplane);

  // API (thread-safe). Each returns the config version after the change.
  absl::StatusOr<uint64_t> CreateVip(const v1::Vip& vip);
  absl::StatusOr<uint64_t> DeleteVip(const v1::VipKey& key);
  absl::StatusOr<uint64_t> AddBackend(const v1::VipKey& key, const v1::Backend& backend);
  absl::StatusOr<uint64_t> RemoveBackend(const v1::VipKey& key, const std::string& address);
  absl::StatusOr<uint64_t> UpdateBackend(const v1::UpdateBackendRequest& request);
  absl::StatusOr<v1::ApplyConfigResponse> ApplyConfig(const v1::ApplyConfigRequest& request);
  v1::ServiceConfig GetConfig() const;
  v1::ListVipsResponse ListVips() const;
  v1::GetStatusResponse GetStatus() const;
  absl::StatusOr<v1::DrainReport> DrainNode(uint32_t timeout_s);
  absl::Status UndrainNode();
  absl::StatusOr<v1::DrainReport> DrainVip(const v1::VipKey& key, uint32_t timeout_s);
  absl::Status UndrainVip(const v1::VipKey& key);
  v1::GetStatsResponse GetStats(bool count_connections) const;
  EventBus& events() { return events_; }

  // Health checker results (any thread): queued, applied by the next Tick().
  void OnHealth(const std::string& key, bool healthy, const std::string& reason);

  // Main loop, every ~200 ms: health verdicts, watchdog, drain progress, announcements.
  void Tick();
  // Neighbours or routes changed in the kernel: rebuild the snapshot with the same config.
  void Rebuild();
  // Shutdown: withdraw every route (waits for BIRD up to its timeout). After this, nothing is
  // announced again and mutating calls return UNAVAILABLE.
  void WithdrawAllForShutdown();

  // For metrics.
  struct AnnounceView {
    std::map<std::string, bool> prefixes;  // prefix -> announced
    bool routing_enabled = false;
    bool bird_ok = false;
  };
  AnnounceView Announcements() const;
  std::map<std::string, HealthVerdict> HealthVerdicts() const;
  bool node_drained() const;

 private:
  struct Drain {
    bool active = false;
    int64_t requested_ms = 0;
    int64_t withdrawn_ms = 0;
    int64_t zero_ms = 0;
    uint64_t open = 0;
    uint32_t timeout_s = 300;
    bool timed_out = false;
  };

  absl::StatusOr<uint64_t> CommitLocked(v1::ServiceConfig next, const std::string& what,
                                        bool bump_version);
  absl::Status PublishLocked(const v1::ServiceConfig& config);
  v1::ServiceConfig EffectiveLocked(const v1::ServiceConfig& config) const;
  absl::Status SaveLocked(const v1::ServiceConfig& services, bool node_drained,
                          const std::map<std::string, Drain>& vip_drains) const;
  int FindVipLocked(const v1::VipKey& key, std::string* canonical) const;
  // The index of an existing VIP, or INVALID_ARGUMENT (bad key) / NOT_FOUND naming it.
  absl::StatusOr<int> ExistingVipLocked(const v1::VipKey& key, std::string* canonical) const;
  bool HealthyLocked(const std::string& vip_key, const v1::Vip& vip, const v1::Backend& b) const;
  bool InMaglevLocked(const std::string& vip_key, const v1::Vip& vip, const v1::Backend& b) const;
  // Desired prefixes and, per VIP key, why it is withdrawn ("" = wanted).
  std::vector<std::string> WantedLocked(std::map<std::string, std::string>* reasons) const;
  bool HealthReadyLocked() const;
  v1::DrainReport ReportLocked(const Drain& d, const std::vector<std::string>& vips) const;
  void Emit(v1::Event::Kind kind, const std::string& vip_key, const std::string& backend,
            bool healthy, const std::string& message);
  void UpdateDrainsLocked(const std::vector<uint64_t>* counts, int64_t now_ms,
                          const std::vector<std::string>* exported);
  static int64_t NowMs();

  Options options_;
  StateStore* store_;
  Hooks hooks_;
  EventBus events_;

  mutable std::mutex mu_;
  v1::ServiceConfig config_;
  bool node_drained_ = false;
  Drain node_drain_;
  std::map<std::string, Drain> vip_drains_;  // by canonical VIP key
  std::map<std::string, HealthVerdict> health_;
  bool shutting_down_ = false;
  int64_t started_ms_ = 0;

  // Watchdog.
  std::vector<uint64_t> last_loops_;
  std::vector<int64_t> last_progress_ms_;
  std::vector<bool> worker_alive_;
  std::vector<uint64_t> last_rx_;
  bool all_workers_alive_ = true;
  bool rebuild_pending_ = false;  // a health change waits for stuck workers to recover
  // VIPs (keys) whose backends all had a first health verdict once. Until then the VIP is not
  // announced; afterwards a backend added at run time (no verdict yet, kept in Maglev) does not
  // withdraw it. (A node-wide gate withdrew every VIP on every node of a fleet at once when a
  // backend was added through the fleet.)
  mutable std::set<std::string> vips_verdicted_;

  // Announcements (written by Tick).
  std::vector<std::string> applied_routes_;
  bool routes_applied_once_ = false;
  bool bird_ok_ = false;
  std::string bird_error_;
  std::map<std::string, std::string> withdraw_reasons_;
  v1::RoutingStatus routing_cache_;  // refreshed by Tick every ~2 s
  int64_t routing_cache_ms_ = 0;

  std::mutex health_queue_mu_;
  std::vector<std::tuple<std::string, bool, std::string>> health_queue_;
  int64_t last_count_ms_ = 0;
};

}  // namespace lb

#endif  // LBNODE_CONTROL_NODE_CONTROLLER_H_
