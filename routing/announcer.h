// Announcer: announces the node's VIPs through the local BIRD. Apply() renders the whole BIRD
// config for a VIP set, installs it atomically at the path BIRD was started with (-c), and has
// BIRD check and load it; a VIP left out is withdrawn. Read-backs ask BIRD what the node's
// OSPF instances currently originate. Each call opens its own control-socket connection, so a
// BIRD restart between calls needs nothing from the caller. Not thread-safe: one control
// thread calls it.
#ifndef LBNODE_ROUTING_ANNOUNCER_H_
#define LBNODE_ROUTING_ANNOUNCER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "routing/bird_client.h"
#include "routing/bird_config.h"

namespace lb {

struct AnnouncerOptions {
  BirdNodeConfig bird;      // everything but `vips`, which Apply() supplies
  std::string config_path;  // the file BIRD reads at start (bird -c)
  std::string socket_path;  // BIRD's control socket (bird -s)
  // Empty: the config is mode 0600 (for a BIRD running as root). Otherwise a group BIRD runs
  // in (Debian's bird.service runs it as bird:bird, see /etc/bird/envvars): mode 0640, that
  // group.
  std::string config_group;
  absl::Duration timeout = absl::Seconds(5);  // per BIRD command
};

// What the node's routing looks like, for the node status report.
struct RoutingStatus {
  bool bird_reachable = false;
  std::string error;     // why not reachable, or the first query that failed
  std::string greeting;  // "BIRD 2.0.12 ready."
  std::vector<BirdProtocol> protocols;
  std::vector<OspfNeighbor> neighbors;  // of both OSPF instances
  std::vector<std::string> announced;   // prefixes the node's router-LSAs carry now
};

class Announcer {
 public:
  // Validates `options.bird` (with no VIPs; the key file is read here). Contacts nobody.
  static absl::StatusOr<std::unique_ptr<Announcer>> Create(AnnouncerOptions options);

  // Makes `vips` the announced set. Order: validate and render (INVALID_ARGUMENT names the bad
  // VIP; nothing is written); write "<config_path>.new" (see config_group, fsync); `configure
  // check` it; rename it over config_path (fsync the directory); `configure` it. UNAVAILABLE when
  // BIRD does not answer: the rendered file is still installed (without BIRD's check), so a
  // BIRD that starts later comes up with the desired VIPs, never with ones withdrawn
  // meanwhile; the caller retries until OK. A BIRD-side error (e.g. the check fails) leaves
  // config_path untouched and returns BIRD's text. On OK BIRD has taken the config; the
  // router-LSA without a withdrawn VIP follows at BIRD's next OSPF tick (at most 1 s).
  absl::Status Apply(const std::vector<std::string>& vips);

  // Host prefixes ("10.0.0.1/32", "2001:db8::1/128") that the node's own router-LSAs (OSPFv3:
  // intra-area-prefix LSAs) in BIRD's link-state database carry, read with
  // `show ospf state all <instance>`. This is what neighbours receive, unlike the config.
  // An instance that is not up contributes nothing. UNAVAILABLE if BIRD does not answer.
  absl::StatusOr<std::vector<std::string>> AnnouncedPrefixes();
  // True when `vip` is not among AnnouncedPrefixes().
  absl::StatusOr<bool> Withdrawn(const std::string& vip);

  // Never fails: an unreachable BIRD is reported in the struct.
  RoutingStatus Status();

  const std::vector<std::string>& applied_vips() const { return applied_; }

 private:
  explicit Announcer(AnnouncerOptions options) : options_(std::move(options)) {}
  absl::StatusOr<std::vector<std::string>> Announced(BirdClient& client);

  AnnouncerOptions options_;
  int gid_ = -1;                      // config_group's id, or -1
  std::vector<std::string> applied_;  // VIPs of the last Apply() that BIRD accepted
};

// Writes `content` to `path` atomically: a temporary file in the same directory (mode 0600),
// fsync, rename, fsync of the directory.
absl::Status WriteFileAtomically(const std::string& path, const std::string& content);

}  // namespace lb

#endif  // LBNODE_ROUTING_ANNOUNCER_H_
