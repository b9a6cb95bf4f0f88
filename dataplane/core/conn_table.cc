#include "dataplane/core/conn_table.h"

#include <bit>
#include <cassert>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace lb {

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

namespace {

constexpr uint32_t kMaxCapacity = 1u << 31;  // capacity() is a uint32_t
// Keys per software-pipelined batch: one DPDK burst; bounds LookupBulk's stack arrays.
constexpr uint32_t kBulkChunk = 32;

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

ConnTable::Bucket* ConnTable::BucketFor(uint64_t hash) const {
  return buckets_ + (hash & bucket_mask_);
}

// Write intent: a hit stores the refreshed expiry into this line.
void ConnTable::Prefetch(uint64_t hash) const { __builtin_prefetch(BucketFor(hash), 1, 3); }

void ConnTable::PrefetchEntry(uint64_t hash) const {
  const Bucket* b = BucketFor(hash);
  const Entry* e = entries_ + static_cast<size_t>(b - buckets_) * kWays;
  const uint32_t m = MatchMask(b->sig, Signature(hash));
  if (m != 0) {
    __builtin_prefetch(&e[std::countr_zero(m)], 0, 3);
    return;
  }
  const uint32_t empty = MatchMask(b->sig, 0) & ((1u << kWays) - 1);
  if (empty != 0) __builtin_prefetch(&e[std::countr_zero(empty)], 1, 3);
}

ConnValue* ConnTable::Lookup(const FlowKey& key, uint64_t hash, uint32_t now, uint32_t expires) {
  Bucket* b = BucketFor(hash);
  Entry* e = entries_ + static_cast<size_t>(b - buckets_) * kWays;
  // A key occupies at most one way of its bucket (Insert keeps it so), so the first key match
  // decides: live is a hit, expired is a miss.
  for (uint32_t m = MatchMask(b->sig, Signature(hash)); m != 0; m &= m - 1) {
    const uint32_t w = static_cast<uint32_t>(std::countr_zero(m));
    if (!KeyEquals(e[w].key, key)) continue;
    if (!IsLive(b->expires[w], now)) return nullptr;
    b->expires[w] = expires;
    return &e[w].value;
  }
  return nullptr;
}

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

const ConnValue* ConnTable::Find(const FlowKey& key, uint64_t hash, uint32_t now) const {
  const Bucket* b = BucketFor(hash);
  const Entry* e = entries_ + static_cast<size_t>(b - buckets_) * kWays;
  for (uint32_t m = MatchMask(b->sig, Signature(hash)); m != 0; m &= m - 1) {
    const uint32_t w = static_cast<uint32_t>(std::countr_zero(m));
    if (!KeyEquals(e[w].key, key)) continue;
    return IsLive(b->expires[w], now) ? &e[w].value : nullptr;
  }
  return nullptr;
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
      __builtin_prefetch(bucket[i], 1, 3);
    }
    // Stage 2: signature match on live ways; start the loads of the candidate entries. A way
    // dead here stays dead through stage 3 (only live ways get refreshed), so filtering it out
    // cannot lose a hit.
    for (uint32_t i = 0; i < count; ++i) {
      const Bucket* b = bucket[i];
      const Entry* e = entries_ + static_cast<size_t>(b - buckets_) * kWays;
      uint32_t live = 0;
      for (uint32_t m = MatchMask(b->sig, Signature(h[i])); m != 0; m &= m - 1) {
        const uint32_t w = static_cast<uint32_t>(std::countr_zero(m));
        if (!IsLive(b->expires[w], now)) continue;
        live |= 1u << w;
        __builtin_prefetch(&e[w], 0, 3);
      }
      candidates[i] = live;
    }
    // Stage 3: full key compare, in order, re-reading expiry so that duplicate keys in one
    // burst see each other's refresh exactly as sequential Lookups would.
    for (uint32_t i = 0; i < count; ++i) {
      Bucket* b = bucket[i];
      Entry* e = entries_ + static_cast<size_t>(b - buckets_) * kWays;
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

ConnValue* ConnTable::Insert(const FlowKey& key, uint64_t hash, const ConnValue& value,
                             uint32_t now, uint32_t expires, InsertOutcome* outcome,
                             const ConnValue* keep) {
  Bucket* b = BucketFor(hash);
  Entry* e = entries_ + static_cast<size_t>(b - buckets_) * kWays;
  const uint16_t sig = Signature(hash);
  ++stats_.inserts;

  // The key's own way first, live or expired: keeps the one-way-per-key invariant.
  for (uint32_t m = MatchMask(b->sig, sig); m != 0; m &= m - 1) {
    const uint32_t w = static_cast<uint32_t>(std::countr_zero(m));
    if (!KeyEquals(e[w].key, key)) continue;
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
  Entry* e = entries_ + static_cast<size_t>(b - buckets_) * kWays;
  for (uint32_t m = MatchMask(b->sig, Signature(hash)); m != 0; m &= m - 1) {
    const uint32_t w = static_cast<uint32_t>(std::countr_zero(m));
    if (!KeyEquals(e[w].key, key)) continue;
    b->sig[w] = 0;
    b->expires[w] = 0;
    ++stats_.erased;
    return true;
  }
  return false;
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
