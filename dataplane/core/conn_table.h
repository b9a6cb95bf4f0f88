// ConnTable: the connection table of one worker. It maps a flow's 5-tuple to the state the worker
// chose for it (backend, NAT binding). One worker owns a table: no locks, no atomics. The control
// thread never touches it; whoever needs its contents asks the worker.
//
// Hot path invariants:
//  - fixed capacity, memory given once at construction (hugepages in lbnode); no allocation after;
//  - buckets of kWays entries chosen by the flow hash; a lookup touches at most two cache lines
//    (the bucket's signature line, then the one entry whose signature matches);
//  - an insert does bounded work and never fails: it takes a free or expired way, or evicts the
//    way that expires first (approximate LRU, as Katran's LRU map and VPP's lb do). Under a SYN
//    flood new flows displace old idle ones, never stall the worker.
//
// Time is a caller-chosen 32-bit tick (lbnode uses milliseconds); comparisons are wrap-safe as
// long as timeouts stay below 2^31 ticks.
#ifndef LBNODE_DATAPLANE_CORE_CONN_TABLE_H_
#define LBNODE_DATAPLANE_CORE_CONN_TABLE_H_

#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>

#include "dataplane/core/flow_key.h"
#include "dataplane/core/prefetch.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace lb {

// What the worker remembers about one flow. A forward entry (client -> VIP) names the backend and,
// in full NAT, the local address and port chosen for it; a full-NAT reverse entry (backend ->
// local address) names the client to restore. 24 bytes, so that key and value fill one line.
struct ConnValue {
  uint32_t vip;       // forwarding plane's VIP handle
  uint16_t flags;     // forwarding plane's per-flow flags (e.g. reverse entry, FIN seen)
  uint16_t nat_port;  // full NAT: forward: local source port; reverse: the client's port
  union {
    struct {
      uint32_t backend;   // forwarding plane's backend handle
      uint32_t nat_addr;  // full NAT: index of the local source address
      uint32_t rev_slot;  // full NAT: where the reverse entry was stored (a prefetch hint only)
    };
    IpAddr client;  // full-NAT reverse entry: the client's address
  };

  ConnValue() { std::memset(static_cast<void*>(this), 0, sizeof(*this)); }
};
static_assert(sizeof(ConnValue) == 24);

struct ConnTableStats {
  uint64_t inserts = 0;         // new entries written (including overwrites of a present key)
  uint64_t evicted_live = 0;    // live entries pushed out because their bucket was full
  uint64_t reused_expired = 0;  // expired entries whose way a new flow took
  uint64_t erased = 0;
  uint64_t swept = 0;  // expired entries cleared by ExpireSome
};

enum class InsertOutcome : uint8_t {
  kFreeWay,        // took an empty way
  kReplacedSame,   // the key was present: its value and expiry were overwritten
  kReusedExpired,  // took the way of an expired entry
  kEvictedLive,    // bucket full of live entries: the one expiring first was dropped
};

class ConnTable {
 public:
  static constexpr uint32_t kWays = 8;

  // Bytes of memory a table of at least `capacity` entries needs (64-byte aligned).
  static size_t MemoryBytes(uint32_t capacity);
  // Entry capacity actually provided for a requested capacity (power of two, at least kWays).
  static uint32_t RoundCapacity(uint32_t capacity);

  // Constructs over caller memory of MemoryBytes(capacity) bytes, 64-byte aligned; the caller
  // keeps ownership and must outlive the table. The memory is cleared here.
  ConnTable(void* memory, uint32_t capacity);
  // A table owning heap memory (tests, tools).
  static std::unique_ptr<ConnTable> Create(uint32_t capacity);
  ~ConnTable();
  ConnTable(const ConnTable&) = delete;
  ConnTable& operator=(const ConnTable&) = delete;

  // Hints the CPU to load the bucket's signature line. Call it well ahead of Lookup, from a loop
  // with little other work (as LookupBulk's stage 1 and Forwarder::ProcessBurst do): in a long
  // loop body the prefetches of a large table stall instead of overlapping.
  void Prefetch(uint64_t hash) const;
  // Second stage, once the bucket's line has arrived (a burst after Prefetch): starts loading
  // the entry a Lookup of `hash` will compare (the first way whose signature matches), or, when
  // none matches, the way an Insert would take (the first empty one), with write intent.
  void PrefetchEntry(uint64_t hash) const;

  // The live entry for `key`, with its expiry pushed to `expires`, or nullptr. `hash` must be
  // FlowHash(key). An expired entry is a miss.
  ConnValue* Lookup(const FlowKey& key, uint64_t hash, uint32_t now, uint32_t expires);

  // Like Lookup, but leaves the expiry as it is.
  const ConnValue* Find(const FlowKey& key, uint64_t hash, uint32_t now) const;

  // Sets the expiry of an entry a Lookup, Find or Insert just returned (no second lookup). `v`
  // must still be that entry: no Insert in between, unless it passed `keep` = v.
  void SetExpiry(const ConnValue* v, uint32_t expires);
  // Where an entry lives, for PrefetchSlot later. Entries never move, but a slot may since hold
  // another key: a slot is a hint for prefetching, never a substitute for a lookup.
  uint32_t SlotOf(const ConnValue* v) const;
  // Starts loading both lines a Lookup of the entry at `slot` reads (bucket header and entry),
  // independently of each other. Any value is safe.
  void PrefetchSlot(uint32_t slot) const;

  // Looks up n keys with software pipelining (prefetch of later buckets while comparing earlier
  // ones). out[i] is as Lookup(keys[i], hashes[i], now, expires[i]).
  void LookupBulk(const FlowKey* const* keys, const uint64_t* hashes, const uint32_t* expires,
                  uint32_t n, uint32_t now, ConnValue** out);

  // Inserts (or overwrites) `key`; always succeeds. Returns the stored value. An entry the caller
  // still holds a pointer to may be passed as `keep`: it is never the one evicted.
  ConnValue* Insert(const FlowKey& key, uint64_t hash, const ConnValue& value, uint32_t now,
                    uint32_t expires, InsertOutcome* outcome = nullptr,
                    const ConnValue* keep = nullptr);

  // Clears the expired ways of the next `buckets` buckets (a sweep cursor goes round the table).
  // Workers call it a little per loop: an expiry time left alone for 2^31 ticks would otherwise
  // read as live again, and cleared ways are cheaper to reuse. Returns the ways cleared.
  uint32_t ExpireSome(uint32_t now, uint32_t buckets);

  // Removes `key`; returns whether it was present (live or expired).
  bool Erase(const FlowKey& key, uint64_t hash);

  // Calls fn for each live entry. O(capacity): control-rate use only (drain reports, dumps).
  void ForEachLive(
      uint32_t now,
      const std::function<void(const FlowKey&, const ConnValue&, uint32_t expires)>& fn) const;
  // Number of live entries. O(capacity).
  uint64_t CountLive(uint32_t now) const;

  uint32_t capacity() const { return num_buckets_ * kWays; }
  const ConnTableStats& stats() const { return stats_; }

 private:
  struct Bucket;
  struct Entry;
  Bucket* BucketFor(uint64_t hash) const;
  // The bucket's kWays entries.
  Entry* EntriesOf(const Bucket* b) const;
  // The way of `b` holding `key` (live or expired), or kWays: Insert and Erase. A key occupies
  // at most one way of its bucket (Insert keeps it so), so the first key match decides.
  uint32_t FindWay(const Bucket* b, const FlowKey& key, uint64_t hash) const;

  Bucket* buckets_ = nullptr;
  Entry* entries_ = nullptr;
  uint32_t num_buckets_ = 0;
  uint32_t bucket_mask_ = 0;
  uint32_t sweep_cursor_ = 0;
  void* owned_memory_ = nullptr;  // set only by Create()
  ConnTableStats stats_;
};

// --- the hot path, inline: the worker calls these per packet ---------------------------------
// They depend on the target's instruction set (SSE2, PREFETCHW): every translation unit that
// calls them must be built with the same -march (the core library's; lb_dpdk, which DPDK's
// pkg-config builds with its own -march, does not call them).

// The bucket header: everything a lookup needs before it knows which entry to read, in one line.
// sig[w] == 0 marks way w empty; expires[w] is meaningful only for a non-empty way.
struct alignas(64) ConnTable::Bucket {
  uint16_t sig[kWays];
  uint32_t expires[kWays];
  uint8_t pad[64 - kWays * sizeof(uint16_t) - kWays * sizeof(uint32_t)];
};

// One entry per line so that a hit reads exactly one line after the header.
struct alignas(64) ConnTable::Entry {
  FlowKey key;
  ConnValue value;
};
static_assert(sizeof(FlowKey) + sizeof(ConnValue) <= 64);

namespace conn_table_internal {

// The signature comes from the top 16 bits while the bucket index uses at most the low 28, so
// keys of one bucket still differ in signature. 0 is reserved for "empty" and folded into 1.
inline uint16_t Signature(uint64_t hash) {
  const uint16_t s = static_cast<uint16_t>(hash >> 48);
  return s | static_cast<uint16_t>(s == 0);
}

// Wrap-safe "still live at now" for timeouts below 2^31 ticks.
inline bool IsLive(uint32_t expires, uint32_t now) {
  return static_cast<int32_t>(expires - now) > 0;
}

inline uint64_t Load64(const void* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Branch-free 40-byte compare: cheaper than memcmp's early exits on a key that almost always
// matches (a signature hit is a key hit except with probability ~2^-16 per way).
inline bool KeyEquals(const FlowKey& a, const FlowKey& b) {
  static_assert(sizeof(FlowKey) == 40);
  const auto* pa = reinterpret_cast<const uint8_t*>(&a);
  const auto* pb = reinterpret_cast<const uint8_t*>(&b);
  // Spelled out: GCC at -O2 keeps the five-step loop as a loop.
  return ((Load64(pa) ^ Load64(pb)) | (Load64(pa + 8) ^ Load64(pb + 8)) |
          (Load64(pa + 16) ^ Load64(pb + 16)) | (Load64(pa + 24) ^ Load64(pb + 24)) |
          (Load64(pa + 32) ^ Load64(pb + 32))) == 0;
}

// Bit w set iff way w's signature equals sig. sig is never 0, so empty ways never match.
inline uint32_t MatchMask(const uint16_t* sigs, uint16_t sig) {
#if defined(__SSE2__)
  const __m128i v = _mm_load_si128(reinterpret_cast<const __m128i*>(sigs));
  const __m128i eq = _mm_cmpeq_epi16(v, _mm_set1_epi16(static_cast<int16_t>(sig)));
  // Narrow the 16-bit lanes (0 or -1) to bytes so that movemask gives one bit per way.
  return static_cast<uint32_t>(_mm_movemask_epi8(_mm_packs_epi16(eq, _mm_setzero_si128())));
#else
  uint32_t m = 0;
  for (uint32_t w = 0; w < ConnTable::kWays; ++w) m |= static_cast<uint32_t>(sigs[w] == sig) << w;
  return m;
#endif
}

}  // namespace conn_table_internal

inline ConnTable::Bucket* ConnTable::BucketFor(uint64_t hash) const {
  return buckets_ + (hash & bucket_mask_);
}

inline ConnTable::Entry* ConnTable::EntriesOf(const Bucket* b) const {
  return entries_ + static_cast<size_t>(b - buckets_) * kWays;
}

// Write intent: a hit stores the refreshed expiry into this line.
inline void ConnTable::Prefetch(uint64_t hash) const { PrefetchWrite(BucketFor(hash)); }

inline void ConnTable::PrefetchEntry(uint64_t hash) const {
  const Bucket* b = BucketFor(hash);
  const Entry* e = EntriesOf(b);
  const uint32_t m = conn_table_internal::MatchMask(b->sig, conn_table_internal::Signature(hash));
  if (m != 0) {
    PrefetchRead(&e[std::countr_zero(m)]);
    return;
  }
  const uint32_t empty = conn_table_internal::MatchMask(b->sig, 0) & ((1u << kWays) - 1);
  if (empty != 0) PrefetchWrite(&e[std::countr_zero(empty)]);
}

inline const ConnValue* ConnTable::Find(const FlowKey& key, uint64_t hash, uint32_t now) const {
  // Lookup's loop without the refresh. Find and Lookup keep their own loops instead of calling
  // FindWay: returning from inside the loop measured 29 instructions less per full-NAT packet.
  const Bucket* b = BucketFor(hash);
  const Entry* e = EntriesOf(b);
  for (uint32_t m = conn_table_internal::MatchMask(b->sig, conn_table_internal::Signature(hash));
       m != 0; m &= m - 1) {
    const uint32_t w = static_cast<uint32_t>(std::countr_zero(m));
    if (!conn_table_internal::KeyEquals(e[w].key, key)) continue;
    return conn_table_internal::IsLive(b->expires[w], now) ? &e[w].value : nullptr;
  }
  return nullptr;
}

inline uint32_t ConnTable::SlotOf(const ConnValue* v) const {
  // Byte distance from the first entry: each value sits at the same offset of its 64-byte Entry.
  return static_cast<uint32_t>(
      (reinterpret_cast<const char*>(v) - reinterpret_cast<const char*>(entries_)) / sizeof(Entry));
}

inline void ConnTable::SetExpiry(const ConnValue* v, uint32_t expires) {
  const uint32_t slot = SlotOf(v);
  assert(slot < capacity() && buckets_[slot / kWays].sig[slot % kWays] != 0);
  buckets_[slot / kWays].expires[slot % kWays] = expires;
}

inline void ConnTable::PrefetchSlot(uint32_t slot) const {
  slot &= capacity() - 1;
  PrefetchWrite(&buckets_[slot / kWays]);
  PrefetchRead(&entries_[slot]);
}

inline ConnValue* ConnTable::Lookup(const FlowKey& key, uint64_t hash, uint32_t now,
                                    uint32_t expires) {
  Bucket* b = BucketFor(hash);
  Entry* e = EntriesOf(b);
  // The first key match decides (FindWay): live is a hit, expired is a miss.
  for (uint32_t m = conn_table_internal::MatchMask(b->sig, conn_table_internal::Signature(hash));
       m != 0; m &= m - 1) {
    const uint32_t w = static_cast<uint32_t>(std::countr_zero(m));
    if (!conn_table_internal::KeyEquals(e[w].key, key)) continue;
    if (!conn_table_internal::IsLive(b->expires[w], now)) return nullptr;
    b->expires[w] = expires;
    return &e[w].value;
  }
  return nullptr;
}

}  // namespace lb

#endif  // LBNODE_DATAPLANE_CORE_CONN_TABLE_H_
