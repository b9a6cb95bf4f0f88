#include "dataplane/core/conn_table.h"

#include <bit>
#include <cassert>
#include <cstdlib>
#include <cstring>
#include <new>

namespace lb {

using conn_table_internal::IsLive;
using conn_table_internal::KeyEquals;
using conn_table_internal::MatchMask;
using conn_table_internal::Signature;

namespace {

constexpr uint32_t kMaxCapacity = 1u << 31;  // capacity() is a uint32_t
// Keys per software-pipelined batch: one DPDK burst; bounds LookupBulk's stack arrays.
constexpr uint32_t kBulkChunk = 32;

}  // namespace

uint32_t ConnTable::RoundCapacity(uint32_t capacity) {
  if (capacity > kMaxCapacity) return kMaxCapacity;
  return std::bit_ceil(capacity < kWays ? kWays : capacity);
}

size_t ConnTable::MemoryBytes(uint32_t capacity) {
  const size_t buckets = RoundCapacity(capacity) / kWays;
  return buckets * sizeof(Bucket) + buckets * kWays * sizeof(Entry);
}

ConnTable::ConnTable(void* memory, uint32_t capacity) {
  static_assert(sizeof(Bucket) == 64 && alignof(Bucket) == 64);
  static_assert(sizeof(Entry) == 64 && alignof(Entry) == 64);
  // Aligned header loads (MatchMask) and one-line-per-bucket both rely on it.
  assert(reinterpret_cast<uintptr_t>(memory) % alignof(Bucket) == 0);
  num_buckets_ = RoundCapacity(capacity) / kWays;
  bucket_mask_ = num_buckets_ - 1;
  std::memset(memory, 0, MemoryBytes(capacity));
  buckets_ = static_cast<Bucket*>(memory);
  entries_ = reinterpret_cast<Entry*>(buckets_ + num_buckets_);
}

std::unique_ptr<ConnTable> ConnTable::Create(uint32_t capacity) {
  // MemoryBytes is a multiple of 64, as aligned_alloc requires.
  void* memory = std::aligned_alloc(alignof(Bucket), MemoryBytes(capacity));
  if (memory == nullptr) return nullptr;
  std::unique_ptr<ConnTable> table(new (std::nothrow) ConnTable(memory, capacity));
  if (table == nullptr) {
    std::free(memory);
    return nullptr;
  }
  table->owned_memory_ = memory;
  return table;
}

ConnTable::~ConnTable() { std::free(owned_memory_); }

uint32_t ConnTable::ExpireSome(uint32_t now, uint32_t buckets) {
  uint32_t cleared = 0;
  for (uint32_t i = 0; i < buckets; ++i) {
    Bucket* b = buckets_ + sweep_cursor_;
    sweep_cursor_ = (sweep_cursor_ + 1) & bucket_mask_;
    for (uint32_t w = 0; w < kWays; ++w) {
      if (b->sig[w] != 0 && !IsLive(b->expires[w], now)) {
        b->sig[w] = 0;
        ++cleared;
      }
    }
  }
  stats_.swept += cleared;
  return cleared;
}

void ConnTable::LookupBulk(const FlowKey* const* keys, const uint64_t* hashes,
                           const uint32_t* expires, uint32_t n, uint32_t now, ConnValue** out) {
  Bucket* bucket[kBulkChunk];
  uint32_t candidates[kBulkChunk];
  for (uint32_t base = 0; base < n; base += kBulkChunk) {
    const uint32_t count = n - base < kBulkChunk ? n - base : kBulkChunk;
    const uint64_t* h = hashes + base;

    // Stage 1: start every header load of the chunk so their misses overlap.
    for (uint32_t i = 0; i < count; ++i) {
      bucket[i] = BucketFor(h[i]);
      PrefetchWrite(bucket[i]);
    }
    // Stage 2: signature match on live ways; start the loads of the candidate entries. A way
    // dead here stays dead through stage 3 (only live ways get refreshed), so filtering it out
    // cannot lose a hit.
    for (uint32_t i = 0; i < count; ++i) {
      const Bucket* b = bucket[i];
      const Entry* e = EntriesOf(b);
      uint32_t live = 0;
      for (uint32_t m = MatchMask(b->sig, Signature(h[i])); m != 0; m &= m - 1) {
        const uint32_t w = static_cast<uint32_t>(std::countr_zero(m));
        if (!IsLive(b->expires[w], now)) continue;
        live |= 1u << w;
        PrefetchRead(&e[w]);
      }
      candidates[i] = live;
    }
    // Stage 3: full key compare, in order, re-reading expiry so that duplicate keys in one
    // burst see each other's refresh exactly as sequential Lookups would.
    for (uint32_t i = 0; i < count; ++i) {
      Bucket* b = bucket[i];
      Entry* e = EntriesOf(b);
      const FlowKey& key = *keys[base + i];
      ConnValue* result = nullptr;
      for (uint32_t m = candidates[i]; m != 0; m &= m - 1) {
        const uint32_t w = static_cast<uint32_t>(std::countr_zero(m));
        if (!KeyEquals(e[w].key, key)) continue;
        if (IsLive(b->expires[w], now)) {
          b->expires[w] = expires[base + i];
          result = &e[w].value;
        }
        break;
      }
      out[base + i] = result;
    }
  }
}

inline uint32_t ConnTable::FindWay(const Bucket* b, const FlowKey& key, uint64_t hash) const {
  const Entry* e = EntriesOf(b);
  for (uint32_t m = MatchMask(b->sig, Signature(hash)); m != 0; m &= m - 1) {
    const uint32_t w = static_cast<uint32_t>(std::countr_zero(m));
    if (KeyEquals(e[w].key, key)) return w;
  }
  return kWays;
}

ConnValue* ConnTable::Insert(const FlowKey& key, uint64_t hash, const ConnValue& value,
                             uint32_t now, uint32_t expires, InsertOutcome* outcome,
                             const ConnValue* keep) {
  Bucket* b = BucketFor(hash);
  Entry* e = EntriesOf(b);
  const uint16_t sig = Signature(hash);
  ++stats_.inserts;

  // The key's own way first, live or expired: keeps the one-way-per-key invariant.
  if (const uint32_t w = FindWay(b, key, hash); w != kWays) {
    b->expires[w] = expires;
    e[w].value = value;
    if (outcome != nullptr) *outcome = InsertOutcome::kReplacedSame;
    return &e[w].value;
  }

  // Victim choice in one pass: an empty way wins; else an expired one; else the live way with
  // the least time left (remaining = expires - now, unsigned, is monotone for live ways).
  uint32_t empty_way = kWays;
  uint32_t expired_way = kWays;
  uint32_t oldest_way = 0;
  uint32_t oldest_left = UINT32_MAX;
  for (uint32_t w = 0; w < kWays; ++w) {
    if (b->sig[w] == 0) {
      empty_way = w;
      break;
    }
    if (&e[w].value == keep) continue;  // the caller still holds this entry
    const uint32_t left = b->expires[w] - now;
    if (static_cast<int32_t>(left) <= 0) {
      if (expired_way == kWays) expired_way = w;
    } else if (left < oldest_left) {
      oldest_left = left;
      oldest_way = w;
    }
  }
  uint32_t way;
  InsertOutcome result;
  if (empty_way != kWays) {
    way = empty_way;
    result = InsertOutcome::kFreeWay;
  } else if (expired_way != kWays) {
    way = expired_way;
    result = InsertOutcome::kReusedExpired;
    ++stats_.reused_expired;
  } else {
    way = oldest_way;
    result = InsertOutcome::kEvictedLive;
    ++stats_.evicted_live;
  }
  b->sig[way] = sig;
  b->expires[way] = expires;
  e[way].key = key;
  e[way].value = value;
  if (outcome != nullptr) *outcome = result;
  return &e[way].value;
}

bool ConnTable::Erase(const FlowKey& key, uint64_t hash) {
  Bucket* b = BucketFor(hash);
  const uint32_t w = FindWay(b, key, hash);
  if (w == kWays) return false;
  b->sig[w] = 0;
  b->expires[w] = 0;
  ++stats_.erased;
  return true;
}

void ConnTable::ForEachLive(
    uint32_t now,
    const std::function<void(const FlowKey&, const ConnValue&, uint32_t expires)>& fn) const {
  for (uint32_t bi = 0; bi < num_buckets_; ++bi) {
    const Bucket& b = buckets_[bi];
    for (uint32_t w = 0; w < kWays; ++w) {
      if (b.sig[w] == 0 || !IsLive(b.expires[w], now)) continue;
      const Entry& e = entries_[static_cast<size_t>(bi) * kWays + w];
      fn(e.key, e.value, b.expires[w]);
    }
  }
}

uint64_t ConnTable::CountLive(uint32_t now) const {
  uint64_t n = 0;
  for (uint32_t bi = 0; bi < num_buckets_; ++bi) {
    const Bucket& b = buckets_[bi];
    for (uint32_t w = 0; w < kWays; ++w) n += b.sig[w] != 0 && IsLive(b.expires[w], now);
  }
  return n;
}

}  // namespace lb
