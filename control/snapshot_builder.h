// SnapshotBuilder: turns the desired service config (lb.v1.ServiceConfig) into the dataplane's
// immutable Snapshot. It validates the whole config first (a bad config changes nothing), keeps
// VIP and backend handles stable across builds (so connection-table entries stay meaningful),
// and reuses a VIP's Maglev table while its backends and weights are unchanged. Control thread
// only; not thread-safe.
#ifndef LBNODE_CONTROL_SNAPSHOT_BUILDER_H_
#define LBNODE_CONTROL_SNAPSHOT_BUILDER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dataplane/core/snapshot.h"
#include "lb/v1/config.pb.h"
#include "lb/v1/node.pb.h"

namespace lb {

// Parses "192.0.2.1" or "2001:db8::1".
absl::StatusOr<std::pair<IpAddr, IpFamily>> ParseIp(const std::string& s);
std::string IpToString(const IpAddr& a, IpFamily f);
absl::StatusOr<MacAddr> ParseMac(const std::string& s);
std::string MacToString(const MacAddr& m);

// Converts and checks node parameters; `uplink_mac` is the default port MAC. The full-NAT port
// range defaults to 61000-65535, outside Linux's default ephemeral range (32768-60999): lbnode
// takes every packet to a NAT address and a port in the range, so a range the kernel also uses
// for the node's own connections would swallow their replies. Static neighbours
// are returned separately (they feed the NeighborLookup).
absl::StatusOr<NodeParams> NodeParamsFromProto(
    const v1::NodeParams& proto, const MacAddr& uplink_mac,
    std::vector<std::pair<std::pair<IpAddr, IpFamily>, MacAddr>>* static_neighbors);

// Checks every field of `config`; the error message names the first bad field, e.g.
// "vips[2].backends[0].address: not an IP address: \"10.0.0\"".
absl::Status ValidateServiceConfig(const v1::ServiceConfig& config);
// Checks a VIP's health-check spec; `field` prefixes the error ("vips[0].health_check").
absl::Status ValidateHealthCheck(const v1::HealthCheck& hc, const std::string& field);

// The next-hop MAC for reaching `addr` from the uplink, if resolved. With `direct` (DR), only
// `addr`'s own MAC will do: a DR backend behind a router would get frames addressed to the VIP
// that the router sends back to the anycast nodes.
using NeighborLookup =
    std::function<std::optional<MacAddr>(const IpAddr& addr, IpFamily family, bool direct)>;

// Total Maglev slots over all VIPs: bounds the control thread's memory (4 bytes per slot per
// snapshot) and build time.
inline constexpr uint64_t kMaxTotalMaglevSlots = 1ull << 26;

struct BuildLimits {
  uint32_t max_vips = 4096;
  uint32_t max_backends = 65536;  // (VIP, backend) pairs
};

class SnapshotBuilder {
 public:
  explicit SnapshotBuilder(BuildLimits limits = {}) : limits_(limits) {}

  // Validates, then builds. On error nothing changes (handles included).
  absl::StatusOr<std::shared_ptr<const Snapshot>> Build(const v1::ServiceConfig& config,
                                                        const NodeParams& node,
                                                        const NeighborLookup& neighbors);

  // Unresolved next hops of the last build (the caller asks the kernel to resolve them).
  const std::vector<std::pair<IpAddr, IpFamily>>& unresolved() const { return unresolved_; }
  const BuildLimits& limits() const { return limits_; }

 private:
  struct HandleSpace {
    std::map<std::string, uint32_t> by_name;  // identity -> handle
    std::vector<uint32_t> generation;         // per index
    std::deque<uint32_t> free;                // indices to reuse (oldest first)
    uint32_t next = 1;                        // index 0 is never used
  };
  static absl::StatusOr<uint32_t> Assign(HandleSpace& space, const std::string& name,
                                         uint32_t limit, std::map<std::string, uint32_t>* used);
  static void Release(HandleSpace& space, const std::map<std::string, uint32_t>& used);

  BuildLimits limits_;
  HandleSpace vip_handles_;
  HandleSpace backend_handles_;
  // Maglev tables of the previous build, by VIP identity and the (id, weight) list they used.
  struct CachedTable {
    std::vector<std::pair<uint64_t, uint32_t>> input;
    uint32_t size = 0;
    std::shared_ptr<const MaglevTable> table;
  };
  std::map<std::string, CachedTable> maglev_cache_;
  std::vector<std::pair<IpAddr, IpFamily>> unresolved_;
};

}  // namespace lb

#endif  // LBNODE_CONTROL_SNAPSHOT_BUILDER_H_
