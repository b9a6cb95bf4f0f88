// HealthChecker: active health checks of backends for the control plane (TCP connect or an HTTP
// status line). One thread runs every probe with non-blocking sockets and epoll, so hundreds of
// targets cost one thread and at most one socket each. Probes leave from the node's kernel stack,
// optionally pinned to an interface (SO_BINDTODEVICE, e.g. the exception interface lb0).
// Threads: Stop() and the destructor from the owning thread; every other method from any thread.
// The change callback runs on the checker thread; it must not call Stop(), and should be quick,
// since probes wait for it.
//
// States and verdicts (what the daemon may rely on):
//   - A target starts kUnknown (not healthy, no verdict). Its first probe runs at a random
//     offset in [0, interval) after SetTargets, so hundreds of targets added at once do not
//     connect in one burst, and nodes probing the same backends drift apart.
//   - kUnknown -> kHealthy on the first success: no traffic went to an unknown backend, so there
//     is nothing to damp, and one answer is enough to start sending it some.
//   - kUnknown -> kUnhealthy after `fall` consecutive failures, as from kHealthy: a probe that
//     fails while the node is still coming up (lb0 just created, neighbours unresolved) must not
//     keep a backend out for `rise` more intervals.
//   - So every target has its verdict within fall * interval + timeout of SetTargets (sooner
//     once it answers), and the daemon can wait for AllCheckedOnce() before it announces routes.
//   - Then kHealthy -> kUnhealthy after `fall` consecutive failures, and kUnhealthy -> kHealthy
//     after `rise` consecutive successes.
//   - Type kNone: kHealthy as soon as the checker thread sees the target (reason "no health
//     check"); it is never probed.
//   - Local errors count as failures: "bind to device lb0: No such device" (the probes cannot
//     leave the way the traffic would) or "socket: Too many open files".
// Every state change, the first verdict included, is one Event. Probes of a target run every
// `interval` from its first one (a slow probe does not shift the phase); a probe never outlives
// its timeout. Sockets close with a reset (SO_LINGER 0), so the node keeps no TIME_WAIT per
// probe; an HTTP backend may log the reset when it arrives before the rest of its response.
#ifndef LBNODE_CONTROL_HEALTH_CHECKER_H_
#define LBNODE_CONTROL_HEALTH_CHECKER_H_

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace lb {

enum class HealthCheckType {
  kNone = 0,  // always healthy, never probed
  kTcp,       // healthy when a TCP connection completes
  kHttp,      // healthy when a GET answers with the expected status (only the status line is read)
};

struct HealthCheckSpec {
  HealthCheckType type = HealthCheckType::kTcp;
  uint16_t port = 0;  // 0: the target's port (the backend's service port)
  uint32_t interval_ms = 2000;
  uint32_t timeout_ms = 1000;  // connect + request + status line; less than interval_ms
  uint32_t rise = 2;           // consecutive successes to become healthy again
  uint32_t fall = 3;           // consecutive failures to become unhealthy
  std::string http_path = "/";
  std::string http_host;       // empty: the address, with ":port" unless 80
  uint16_t http_status = 0;    // 0: any 2xx or 3xx
  std::string bind_interface;  // empty: let the routing table choose
  bool operator==(const HealthCheckSpec&) const = default;
};

enum class HealthState { kUnknown = 0, kHealthy, kUnhealthy };
const char* HealthStateName(HealthState s);  // "unknown", "healthy", "unhealthy"

class HealthChecker {
 public:
  struct Target {
    std::string key;      // the caller's identity, e.g. "vip|backend"; unique in a set
    std::string address;  // "192.0.2.1", "2001:db8::1" or "fe80::1%lb0"; never a name
    uint16_t port = 0;    // the backend's service port, used when spec.port is 0
    HealthCheckSpec spec;
  };

  struct Event {
    std::string key;
    HealthState old_state = HealthState::kUnknown;
    HealthState new_state = HealthState::kUnknown;
    bool old_healthy() const { return old_state == HealthState::kHealthy; }
    bool new_healthy() const { return new_state == HealthState::kHealthy; }
    // The deciding probe's outcome, e.g. "HTTP 200 (first success)",
    // "connect: Connection refused (3 consecutive failures)", "HTTP 200 (2 consecutive
    // successes)".
    std::string reason;
  };

  struct TargetStatus {
    std::string key;
    std::string address;
    uint16_t port = 0;  // the port probed
    HealthState state = HealthState::kUnknown;
    bool healthy = false;                // state == kHealthy
    bool checked_at_least_once = false;  // has a verdict: state is not kUnknown
    uint32_t consecutive_ok = 0;
    uint32_t consecutive_fail = 0;
    std::string last_result;  // the latest probe's outcome: "HTTP 200", "connected", an error
    // The latest failure, kept after recovery: "connect: Connection refused",
    // "timeout after 500 ms connecting", "HTTP 503", "bind to device lb0: No such device".
    std::string last_error;
    absl::Time last_change;  // of state; while kUnknown, when the target was added
    uint64_t total_probes = 0;
    uint64_t total_failures = 0;
  };

  // Starts the checker thread. `on_change` is called on that thread, outside the checker's lock
  // (it may call State(), Snapshot() or SetTargets()). An event may still arrive for a target
  // that a concurrent SetTargets() has just removed or replaced: look the key up.
  explicit HealthChecker(std::function<void(const Event&)> on_change);
  ~HealthChecker();  // Stop()
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Replaces the set of targets. Validates all of them first: on error (InvalidArgument naming
  // the field, e.g. "targets[2].spec.timeout_ms: 500 must be less than interval_ms (500)")
  // nothing changes. A target whose key, address, port and spec are all unchanged keeps its
  // state, counters and probe schedule; any other is new (kUnknown). Probes in flight for
  // removed or changed targets are abandoned and their sockets closed. FailedPrecondition after
  // Stop(); Internal if the checker could not set up its epoll or eventfd.
  absl::Status SetTargets(std::vector<Target> targets);

  std::optional<HealthState> State(const std::string& key) const;
  std::vector<TargetStatus> Snapshot() const;  // ordered by key

  // Whether every target has had a verdict (true for an empty set): the daemon announces routes
  // only after this. State() and Snapshot() show a verdict as soon as it is made; its Event may
  // still be on its way to on_change.
  bool AllCheckedOnce() const;
  // Waits until AllCheckedOnce() or `timeout`; returns AllCheckedOnce().
  bool WaitAllCheckedOnce(absl::Duration timeout) const;

  // Stops probing, closes every socket and joins the thread. Idempotent. Owning thread only.
  void Stop();

 private:
  using Clock = std::chrono::steady_clock;
  enum class Phase { kIdle, kConnecting, kSending, kReading };

  // A validated target and what probing it needs.
  struct Prepared {
    Target target;
    uint16_t port = 0;  // effective
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    std::string request;  // HTTP only
  };

  struct Entry {
    Prepared p;
    HealthState state = HealthState::kUnknown;
    uint32_t consecutive_ok = 0;
    uint32_t consecutive_fail = 0;
    std::string last_result;
    std::string last_error;
    absl::Time last_change;
    uint64_t total_probes = 0;
    uint64_t total_failures = 0;

    Clock::time_point next_start;  // the scheduled start of the next probe (phase kIdle)
    Phase phase = Phase::kIdle;    // of the probe in flight
    int fd = -1;
    uint64_t probe_id = 0;  // epoll's handle for the probe in flight
    Clock::time_point deadline;
    size_t sent = 0;
    std::string response;
  };

  static absl::Status Prepare(const Target& t, size_t index, Prepared* out);

  void Run();
  // Checker thread, under mu_. Each appends the state changes it causes to `events`.
  void StartProbe(Entry& e, Clock::time_point now, std::vector<Event>& events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnReady(Entry& e, uint32_t epoll_events, std::vector<Event>& events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Finish(Entry& e, bool ok, std::string result, std::vector<Event>& events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Closes the probe's socket without a verdict.
  void Abandon(Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Watch(Entry& e, uint32_t epoll_events, bool add) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Wake();

  const std::function<void(const Event&)> on_change_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: new targets, stop
  absl::Status setup_status_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::unique_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<uint64_t, Entry*> in_flight_ ABSL_GUARDED_BY(mu_);  // by probe_id
  uint64_t next_probe_id_ ABSL_GUARDED_BY(mu_) = 1;                      // 0: the eventfd
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lb

#endif  // LBNODE_CONTROL_HEALTH_CHECKER_H_
