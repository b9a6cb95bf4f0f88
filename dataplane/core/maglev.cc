#include "dataplane/core/maglev.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lb {
namespace {

// Fixed seeds: changing any of them remaps every flow of a running fleet, like kFlowHashSeed.
// Offset and skip need different seeds, or they would be correlated and the permutations of
// different backends would overlap more than random ones.
constexpr uint64_t kBackendIdSeed = 0x6c626b656e643031ULL;  // "lbkend01"
constexpr uint64_t kOffsetSeed = 0x6c626d676f663031ULL;     // "lbmgof01"
constexpr uint64_t kSkipSeed = 0x6c626d67736b3031ULL;       // "lbmgsk01"

uint64_t HashId(uint64_t id, uint64_t seed) { return HashBytes(&id, sizeof(id), seed); }

// Fill state of one backend with positive weight, in id order.
struct Walker {
  uint32_t index;  // into the caller's backends
  uint32_t pos;    // next candidate slot of the backend's permutation
  uint32_t skip;
};

// Backends of one weight: they take their turns at the same times, in id order.
struct WeightClass {
  uint32_t weight;
  uint64_t turn = 1;            // the class's next turn is at time turn / weight
  std::vector<uint32_t> ranks;  // into the walkers, ascending
};

// Compares turn times as fractions, which is exact: turn <= M + 1 <= 2^24 + 1 and
// weight <= 2^16, so the products stay below 2^41.
bool Later(const WeightClass& a, const WeightClass& b) {
  return a.turn * b.weight > b.turn * a.weight;
}

// Claims for `w` the first free slot of its permutation. Free slots are tracked in a bitmap
// rather than by reading `slots`: most probes hit taken slots, and the bitmap (8 KiB for the
// default size) stays in L1 where the slot array does not.
inline void Claim(Walker& w, uint32_t size, std::vector<uint64_t>& taken,
                  std::vector<uint32_t>& slots) {
  uint32_t pos = w.pos;
  // Terminates: skip is in [1, M-1] and M is prime, so the walk visits every slot, and the
  // caller only asks while one is free.
  while ((taken[pos >> 6] >> (pos & 63)) & 1) {
    pos += w.skip;
    if (pos >= size) pos -= size;
  }
  taken[pos >> 6] |= uint64_t{1} << (pos & 63);
  slots[pos] = w.index;
  pos += w.skip;
  if (pos >= size) pos -= size;
  w.pos = pos;
}

}  // namespace

uint64_t BackendId(const IpAddr& addr, uint16_t port) {
  // The port is serialised explicitly so the id does not depend on the host's byte order.
  uint8_t buf[18];
  std::memcpy(buf, addr.bytes, 16);
  buf[16] = static_cast<uint8_t>(port >> 8);
  buf[17] = static_cast<uint8_t>(port);
  return HashBytes(buf, sizeof(buf), kBackendIdSeed);
}

bool IsPrime(uint32_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (uint64_t d = 3; d * d <= n; d += 2) {
    if (n % d == 0) return false;
  }
  return true;
}

// Slot assignment. Each backend walks its own permutation of the slots, (offset + j * skip) % M,
// and on each of its turns claims the first slot of that walk still free (the paper's
// Populate()). Weights decide the order of turns: backend i takes its k-th turn at time k / w_i,
// and turns due at the same time go in id order. With equal weights this is the paper's
// round-robin, so each backend gets floor(M/N) or ceil(M/N) slots. In general, if the last slot
// is filled at time T, backend i has had every turn before T and none after, so its count is
// within [T * w_i - 1, T * w_i]; summing over the n backends, M / W <= T <= (M + n) / W (W the
// total weight), so each count lies in [M * w_i / W - 1, (M + n) * w_i / W]: proportional up to
// one slot and a relative n / M. A backend's turn times depend only on its own weight, not on
// the rest of the set, which keeps the disruption of a change close to the unweighted paper's;
// and scaling every weight by the same factor changes nothing.
//
// Backends of equal weight share their turn times, so the schedule is a heap over the distinct
// weights, and a single weight costs nothing beyond the paper's loop.
absl::StatusOr<MaglevTable> MaglevTable::Build(absl::Span<const MaglevBackend> backends,
                                               uint32_t size) {
  if (size < 3 || size > kMaglevMaxSize || !IsPrime(size)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Maglev table size ", size, " is not a prime in [3, ", kMaglevMaxSize, "]"));
  }
  if (backends.size() >= kMaglevNoBackend) {
    return absl::InvalidArgumentError(absl::StrCat("too many Maglev backends: ", backends.size()));
  }
  for (const MaglevBackend& b : backends) {
    if (b.weight > kMaglevMaxWeight) {
      return absl::InvalidArgumentError(absl::StrCat("Maglev backend ", b.id, " has weight ",
                                                     b.weight, ", above ", kMaglevMaxWeight));
    }
  }

  std::vector<uint32_t> order(backends.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return backends[a].id < backends[b].id; });
  for (size_t i = 1; i < order.size(); ++i) {
    if (backends[order[i]].id == backends[order[i - 1]].id) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate Maglev backend id ", backends[order[i]].id));
    }
  }

  MaglevTable table;
  table.size_ = size;
  table.backends_.assign(backends.begin(), backends.end());

  std::vector<Walker> walkers;
  std::vector<uint32_t> weights;
  for (uint32_t i : order) {
    const MaglevBackend& b = backends[i];
    if (b.weight == 0) continue;
    walkers.push_back({i, static_cast<uint32_t>(HashId(b.id, kOffsetSeed) % size),
                       static_cast<uint32_t>(HashId(b.id, kSkipSeed) % (size - 1) + 1)});
    weights.push_back(b.weight);
  }
  if (walkers.empty()) return table;

  std::vector<uint32_t> by_weight(walkers.size());
  std::iota(by_weight.begin(), by_weight.end(), 0u);
  std::stable_sort(by_weight.begin(), by_weight.end(),
                   [&](uint32_t a, uint32_t b) { return weights[a] < weights[b]; });
  std::vector<WeightClass> classes;
  for (uint32_t r : by_weight) {
    if (classes.empty() || classes.back().weight != weights[r]) {
      classes.push_back({weights[r], 1, {}});
    }
    classes.back().ranks.push_back(r);
  }
  // Min-heap of classes by next turn time.
  const auto later = [&](uint32_t a, uint32_t b) { return Later(classes[a], classes[b]); };
  std::vector<uint32_t> heap(classes.size());
  std::iota(heap.begin(), heap.end(), 0u);
  std::make_heap(heap.begin(), heap.end(), later);

  std::vector<uint32_t>& slots = table.slots_;
  slots.assign(size, kMaglevNoBackend);
  std::vector<uint64_t> taken((size + 63) / 64, 0);
  uint32_t filled = 0;
  std::vector<uint32_t> due;  // classes whose turn is now
  std::vector<uint32_t> merged;
  for (;;) {
    due.clear();
    do {
      std::pop_heap(heap.begin(), heap.end(), later);
      due.push_back(heap.back());
      heap.pop_back();
    } while (!heap.empty() && !Later(classes[heap.front()], classes[due.front()]));
    const std::vector<uint32_t>* turn_order = &classes[due.front()].ranks;
    if (due.size() > 1) {
      merged.clear();
      for (uint32_t c : due) {
        merged.insert(merged.end(), classes[c].ranks.begin(), classes[c].ranks.end());
      }
      std::sort(merged.begin(), merged.end());
      turn_order = &merged;
    }
    for (uint32_t r : *turn_order) {
      Claim(walkers[r], size, taken, slots);
      if (++filled == size) return table;
    }
    for (uint32_t c : due) {
      ++classes[c].turn;
      heap.push_back(c);
      std::push_heap(heap.begin(), heap.end(), later);
    }
  }
}

std::vector<uint32_t> MaglevTable::SlotCounts() const {
  std::vector<uint32_t> counts(backends_.size(), 0);
  for (uint32_t b : slots_) ++counts[b];
  return counts;
}

// With different sizes the same slot number serves different flows (flow_hash % size), so no
// slot can be said to be undisturbed: every slot below the larger size is reported.
std::vector<MaglevDelta> MaglevTable::Diff(const MaglevTable& before, const MaglevTable& after) {
  const auto owner = [](const MaglevTable& t, uint32_t s) {
    return s < t.slots_.size() ? t.slots_[s] : kMaglevNoBackend;
  };
  std::vector<MaglevDelta> deltas;
  if (before.size_ != after.size_) {
    const uint32_t m = std::max(before.size_, after.size_);
    deltas.reserve(m);
    for (uint32_t s = 0; s < m; ++s) deltas.push_back({s, owner(before, s), owner(after, s)});
    return deltas;
  }
  for (uint32_t s = 0; s < before.size_; ++s) {
    const uint32_t o = owner(before, s);
    const uint32_t a = owner(after, s);
    if (o == kMaglevNoBackend && a == kMaglevNoBackend) continue;
    if (o != kMaglevNoBackend && a != kMaglevNoBackend &&
        before.backends_[o].id == after.backends_[a].id) {
      continue;
    }
    deltas.push_back({s, o, a});
  }
  return deltas;
}

}  // namespace lb
