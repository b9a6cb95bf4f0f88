// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI 2016), with weights. Built by the control thread, off the hot path; a built table
// is immutable, so workers may read it concurrently without locks.
//
// Determinism across nodes: every node of a fleet must build the same table for the same VIP and
// backend set, whatever the order in which the API added the backends. Backends are therefore
// identified by a caller-chosen 64-bit `id` that is stable across nodes (use BackendId() on the
// backend's address), the build orders them by id, and all hashing uses fixed seeds.
#ifndef LBNODE_DATAPLANE_CORE_MAGLEV_H_
#define LBNODE_DATAPLANE_CORE_MAGLEV_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "dataplane/core/flow_key.h"

namespace lb {

inline constexpr uint32_t kMaglevDefaultSize = 65537;
// Upper bound on the table size (the paper's largest is 655373); bounds memory and build time.
inline constexpr uint32_t kMaglevMaxSize = 1u << 24;
inline constexpr uint32_t kMaglevMaxWeight = 1u << 16;
inline constexpr uint32_t kMaglevNoBackend = 0xffffffffu;

// Stable identity of a backend from its address (and port, 0 when the VIP keeps the port): the
// same on every node.
uint64_t BackendId(const IpAddr& addr, uint16_t port = 0);

struct MaglevBackend {
  uint64_t id = 0;      // stable identity, unique within one table
  uint32_t weight = 1;  // 0 = present but receives no slots (e.g. draining or down)
};

// One slot whose backend differs between two tables.
struct MaglevDelta {
  uint32_t slot;
  uint32_t old_backend;  // index into the old table's backends, or kMaglevNoBackend
  uint32_t new_backend;  // index into the new table's backends, or kMaglevNoBackend
};

class MaglevTable {
 public:
  // Builds a table of `size` slots (a prime, at least 3 and at most kMaglevMaxSize). Slot values
  // are indices into `backends` as passed, so the caller keeps its own order; which backend owns
  // which slot depends only on the ids and weights. Fails with InvalidArgument on a non-prime
  // size, a duplicate id or a weight above kMaglevMaxWeight. With no backend of positive weight
  // the table is valid and every lookup returns kMaglevNoBackend.
  static absl::StatusOr<MaglevTable> Build(absl::Span<const MaglevBackend> backends,
                                           uint32_t size = kMaglevDefaultSize);

  // Index (into the build's `backends`) of the backend for a flow hash, or kMaglevNoBackend.
  uint32_t Lookup(uint64_t flow_hash) const {
    return slots_.empty() ? kMaglevNoBackend : slots_[flow_hash % size_];
  }

  uint32_t size() const { return size_; }
  const std::vector<uint32_t>& slots() const { return slots_; }
  const std::vector<MaglevBackend>& backends() const { return backends_; }
  // Number of slots each backend owns, indexed like `backends()`.
  std::vector<uint32_t> SlotCounts() const;

  // Slots whose owner (compared by backend id, not index) differs between `before` and `after`.
  // Both must have the same size. This is what a rebuild disturbs.
  static std::vector<MaglevDelta> Diff(const MaglevTable& before, const MaglevTable& after);

 private:
  MaglevTable() = default;
  uint32_t size_ = 0;
  std::vector<uint32_t> slots_;          // empty when no backend has positive weight
  std::vector<MaglevBackend> backends_;  // as passed to Build
};

bool IsPrime(uint32_t n);

}  // namespace lb

#endif  // LBNODE_DATAPLANE_CORE_MAGLEV_H_
