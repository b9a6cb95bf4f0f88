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

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>

#include "dataplane/core/flow_key.h"

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

  // Hints the CPU to load the bucket's signature line (call a packet or two ahead of Lookup).
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

  Bucket* buckets_ = nullptr;
  Entry* entries_ = nullptr;
  uint32_t num_buckets_ = 0;
  uint32_t bucket_mask_ = 0;
  uint32_t sweep_cursor_ = 0;
  void* owned_memory_ = nullptr;  // set only by Create()
  ConnTableStats stats_;
};

}  // namespace lb

#endif  // LBNODE_DATAPLANE_CORE_CONN_TABLE_H_
