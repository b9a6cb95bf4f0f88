// NetlinkMirror: a copy of the kernel's neighbour (ARP/ND) and route tables for one interface,
// kept current over rtnetlink, as VPP's linux-cp does. The kernel is lbnode's L2/L3 control
// plane: the dataplane's TAP interface (e.g. `lb0`) carries the uplink's MAC and the node's
// addresses, the kernel resolves neighbours and holds routes on it, and the forwarding plane asks
// this mirror for the MAC of a backend (DR) or of the next hop toward it (TUN, NAT) instead of
// running its own ARP. Threads: Start() and the destructor from one owning thread; every other
// method from any thread. The mirror runs its own thread, which reads netlink and calls
// on_change.
//
// How it stays correct: one netlink socket subscribes to link, neighbour, route and IPv4-address
// events before dumping, so every reply and event arrives in the kernel's order and applying them
// in sequence converges on the kernel's state. A full re-dump (into a shadow copy, swapped in at
// the end, so lookups never see a half-built table) answers an overrun (ENOBUFS), the interface
// appearing, going or changing up/down state, and an IPv4 address leaving it (the kernel drops
// IPv4 routes on those without telling anyone).
//
// Scope: neighbours of the interface in a usable state (REACHABLE, STALE, DELAY, PROBE,
// PERMANENT, NOARP) with a 6-byte link-layer address; unicast routes of the main table whose
// (first) next hop leaves through the interface, with TOS 0 and no source prefix. Routes that use
// nexthop objects without inline next-hop data, or an IPv6 gateway for an IPv4 prefix (RTA_VIA),
// are not mirrored.
#ifndef LBNODE_DATAPLANE_NETLINK_MIRROR_H_
#define LBNODE_DATAPLANE_NETLINK_MIRROR_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "dataplane/core/flow_key.h"
#include "dataplane/core/rewrite.h"

struct nlmsghdr;

namespace lb {

struct NeighborEntry {
  IpAddr addr;
  IpFamily family;
  MacAddr mac;
};

struct NetlinkMirrorStats {
  uint64_t resyncs = 0;           // full re-dumps, the initial one included
  uint64_t overruns = 0;          // receive-buffer overruns (events lost; each forces a resync)
  uint64_t resolves_sent = 0;     // resolution requests handed to the kernel
  uint64_t resolves_limited = 0;  // Resolve() calls dropped by the once-per-second limit
  uint64_t errors = 0;            // failed dumps, requests the kernel refused, socket errors
};

class NetlinkMirror {
 public:
  // Mirrors neighbours and routes of interface `ifname` in the caller's network namespace. The
  // interface may not exist yet: it is picked up when it appears, and its entries are dropped
  // when it goes. The current tables are loaded before Start returns. on_change (may be empty)
  // is called from the mirror's thread after changes to the mirrored tables, coalesced per batch
  // of netlink messages; it may call the lookups but must not destroy the mirror.
  static absl::StatusOr<std::unique_ptr<NetlinkMirror>> Start(std::string ifname,
                                                              std::function<void()> on_change);
  ~NetlinkMirror();  // stops and joins the thread; returns promptly

  NetlinkMirror(const NetlinkMirror&) = delete;
  NetlinkMirror& operator=(const NetlinkMirror&) = delete;

  // The link-layer address of neighbour `addr` on the interface, if it is in a usable state.
  std::optional<MacAddr> Neighbor(const IpAddr& addr, IpFamily family) const;

  // Next hop toward dst over the interface: the gateway of the longest-prefix route via the
  // interface (main table; lowest metric among equal prefixes), or dst itself when that route has
  // no gateway (on-link); nullopt if no route via the interface covers dst. Only routes via the
  // interface are considered: a more specific route via another interface does not hide them.
  std::optional<IpAddr> NextHop(const IpAddr& dst, IpFamily family) const;

  // Asks the kernel to resolve addr on the interface (an RTM_NEWNEIGH with NTF_USE: the kernel
  // creates the entry if needed and sends ARP requests / neighbour solicitations as it would for a
  // packet); the answer shows up through Neighbor() and on_change. At most one request per
  // address per second; never blocks (the mirror's thread sends it); does nothing while the
  // interface is absent. Needs CAP_NET_ADMIN.
  void Resolve(const IpAddr& addr, IpFamily family);

  std::vector<NeighborEntry> Neighbors() const;  // snapshot, for status and debugging
  uint64_t generation() const;                   // increments on every change to the tables
  int ifindex() const;                           // the interface's index; 0 while it is absent
  NetlinkMirrorStats stats() const;

 private:
  // Keys and values of the tables; addresses as 16 bytes (IPv4 in the first 4).
  using Bytes16 = std::array<uint8_t, 16>;
  struct NeighborKey {
    IpFamily family;
    Bytes16 addr;
    auto operator<=>(const NeighborKey&) const = default;
  };
  struct RouteKey {
    Bytes16 prefix;  // masked to the prefix length
    uint32_t metric;
    auto operator<=>(const RouteKey&) const = default;
  };
  struct RouteValue {
    bool has_gateway = false;
    Bytes16 gateway{};
    bool operator==(const RouteValue&) const = default;
  };
  struct MacValue {
    MacAddr mac;
    bool operator==(const MacValue& o) const { return mac == o.mac; }
  };
  struct Tables {
    std::map<NeighborKey, MacValue> neighbors;
    // Routes by prefix length: v4[len], v6[len]; within one, ordered by prefix then metric.
    std::array<std::map<RouteKey, RouteValue>, 33> v4;
    std::array<std::map<RouteKey, RouteValue>, 129> v6;
    bool operator==(const Tables&) const = default;
  };
  enum class Phase { kIdle, kLinkQuery, kTableDump };

  NetlinkMirror(std::string ifname, std::function<void()> on_change);

  // Mirror-thread (or, before the thread starts, Start's) side.
  absl::Status Open();
  void Run();
  absl::Status Resync();
  absl::Status SendRequest(nlmsghdr* nlh);
  // Reads and applies messages until request `seq` is answered; *kernel_error is then the
  // errno the kernel answered with, or 0.
  absl::Status Await(uint32_t seq, int* kernel_error);
  // Reads what the socket holds. Returns false on a fatal socket error.
  bool ReadAvailable(uint32_t awaited_seq, bool* answered, int* answer_error);
  // Returns true when the message answers awaited_seq (then *answer_error is the errno or 0).
  bool HandleMessage(const nlmsghdr* nlh, uint32_t awaited_seq, int* answer_error);
  void HandleLink(const nlmsghdr* nlh);
  void HandleNeighbor(const nlmsghdr* nlh);
  void HandleRoute(const nlmsghdr* nlh);
  void HandleAddress(const nlmsghdr* nlh);
  void SetIfindex(int ifindex);
  void SendResolves();
  void DrainWakeup();
  // Applies fn to the shadow tables during a resync, else to the live ones under the lock.
  template <typename Fn>
  void Mutate(Fn fn);

  const std::string ifname_;
  const std::function<void()> on_change_;
  int sock_ = -1;
  int wake_fd_ = -1;  // eventfd: stop and resolve requests
  std::thread thread_;
  std::atomic<bool> stop_{false};

  // Mirror-thread state.
  std::vector<uint8_t> buf_;
  uint32_t seq_ = 0;
  bool strict_dumps_ = false;  // the kernel filters dumps by interface (NETLINK_GET_STRICT_CHK)
  unsigned link_flags_ = 0;
  Phase phase_ = Phase::kIdle;
  bool resync_needed_ = false;
  bool changed_ = false;  // since on_change was last called
  std::optional<Tables> shadow_;

  std::atomic<int> ifindex_{0};
  std::atomic<uint64_t> generation_{0};
  mutable absl::Mutex mu_;
  Tables live_ ABSL_GUARDED_BY(mu_);

  absl::Mutex resolve_mu_;
  std::vector<NeighborKey> resolve_queue_ ABSL_GUARDED_BY(resolve_mu_);
  std::map<NeighborKey, std::chrono::steady_clock::time_point> last_resolve_
      ABSL_GUARDED_BY(resolve_mu_);

  std::atomic<uint64_t> resyncs_{0};
  std::atomic<uint64_t> overruns_{0};
  std::atomic<uint64_t> resolves_sent_{0};
  std::atomic<uint64_t> resolves_limited_{0};
  std::atomic<uint64_t> errors_{0};
};

}  // namespace lb

#endif  // LBNODE_DATAPLANE_NETLINK_MIRROR_H_
