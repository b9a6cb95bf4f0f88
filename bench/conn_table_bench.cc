// ConnTable hot-path costs: lookup of a present flow (single and in bursts of 32) at a
// cache-resident (2^10) and a DRAM-resident (2^20) table, and insert of new flows into a full
// table (the eviction path a SYN flood drives).
//
// Second argument: 1 = table memory on transparent 2 MiB pages (as lbnode's hugepage memory),
// 0 = 4 KiB pages, where a large table also pays a TLB miss per line.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "dataplane/core/conn_table.h"
#include "dataplane/core/flow_key.h"

namespace lb {
namespace {

constexpr uint32_t kLong = 1u << 30;
constexpr uint32_t kBurst = 32;

FlowKey MakeKey(uint64_t i) {
  FlowKey k;
  k.src = IpAddr::V4(0x0a000000u + static_cast<uint32_t>(i >> 16));
  k.dst = IpAddr::V4(0xc0a80001u + static_cast<uint32_t>(i >> 48));
  k.src_port = htons(static_cast<uint16_t>(i));
  k.dst_port = htons(443);
  k.proto = IPPROTO_TCP;
  k.family = IpFamily::kIpv4;
  return k;
}

struct KeyHash {
  FlowKey key;
  uint64_t hash;
};

// A table over anonymous mmap memory, optionally backed by transparent huge pages.
class MappedTable {
 public:
  MappedTable(uint32_t capacity, bool huge) : bytes_(ConnTable::MemoryBytes(capacity)) {
    constexpr size_t kHuge = 2u << 20;
    bytes_ = (bytes_ + kHuge - 1) / kHuge * kHuge;
    memory_ = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory_ == MAP_FAILED) {
      std::perror("mmap");
      std::abort();
    }
    madvise(memory_, bytes_, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    table_ = std::make_unique<ConnTable>(memory_, capacity);
  }
  ~MappedTable() {
    table_.reset();
    munmap(memory_, bytes_);
  }
  ConnTable* operator->() { return table_.get(); }

 private:
  size_t bytes_;
  void* memory_;
  std::unique_ptr<ConnTable> table_;
};

// A table of `capacity` entries filled to half with the flows of `keys`, which come back in a
// random order so that the benchmark walks them sequentially while the table is hit randomly.
std::unique_ptr<MappedTable> HalfFullTable(const benchmark::State& state,
                                           std::vector<KeyHash>* keys) {
  const uint32_t capacity = static_cast<uint32_t>(state.range(0));
  auto table = std::make_unique<MappedTable>(capacity, state.range(1) != 0);
  keys->clear();
  for (uint32_t i = 0; i < capacity / 2; ++i) {
    const FlowKey k = MakeKey(i);
    const uint64_t h = FlowHash(k);
    InsertOutcome outcome;
    ConnValue v;
    v.backend = i;
    (*table)->Insert(k, h, v, 0, kLong, &outcome);
    // Keep only flows the table holds, so that every lookup below is a hit.
    if (outcome != InsertOutcome::kEvictedLive) keys->push_back({k, h});
  }
  keys->erase(std::remove_if(keys->begin(), keys->end(),
                             [&](const KeyHash& kh) {
                               return (*table)->Lookup(kh.key, kh.hash, 0, kLong) == nullptr;
                             }),
              keys->end());
  std::shuffle(keys->begin(), keys->end(), std::mt19937_64(42));
  return table;
}

void BM_LookupHit(benchmark::State& state) {
  std::vector<KeyHash> keys;
  auto owner = HalfFullTable(state, &keys);
  MappedTable& table = *owner;
  size_t i = 0;
  uint32_t now = 1;
  for (auto _ : state) {
    const KeyHash& kh = keys[i];
    ConnValue* v = table->Lookup(kh.key, kh.hash, now, now + kLong);
    benchmark::DoNotOptimize(v);
    if (++i == keys.size()) {
      i = 0;
      ++now;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LookupHit)
    ->ArgNames({"entries", "huge"})
    ->Args({1 << 10, 1})
    ->Args({1 << 20, 1})
    ->Args({1 << 20, 0});

// The worker's pattern: Prefetch a few packets ahead, then Lookup.
void BM_LookupHitPrefetch4(benchmark::State& state) {
  std::vector<KeyHash> keys;
  auto owner = HalfFullTable(state, &keys);
  MappedTable& table = *owner;
  const size_t n = keys.size();
  size_t i = 0;
  for (auto _ : state) {
    table->Prefetch(keys[(i + 4) % n].hash);
    const KeyHash& kh = keys[i];
    ConnValue* v = table->Lookup(kh.key, kh.hash, 1, kLong);
    benchmark::DoNotOptimize(v);
    if (++i == n) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LookupHitPrefetch4)
    ->ArgNames({"entries", "huge"})
    ->Args({1 << 10, 1})
    ->Args({1 << 20, 1})
    ->Args({1 << 20, 0});

// One iteration is a burst of 32; per_key (seconds) is the per-flow cost to compare with
// BM_LookupHit.
void BM_LookupBulk32(benchmark::State& state) {
  std::vector<KeyHash> keys;
  auto owner = HalfFullTable(state, &keys);
  MappedTable& table = *owner;
  keys.resize(keys.size() / kBurst * kBurst);
  std::vector<const FlowKey*> key_ptrs(keys.size());
  std::vector<uint64_t> hashes(keys.size());
  for (size_t j = 0; j < keys.size(); ++j) {
    key_ptrs[j] = &keys[j].key;
    hashes[j] = keys[j].hash;
  }
  uint32_t expires[kBurst];
  std::fill(expires, expires + kBurst, kLong);
  ConnValue* out[kBurst];
  size_t i = 0;
  for (auto _ : state) {
    table->LookupBulk(&key_ptrs[i], &hashes[i], expires, kBurst, 1, out);
    benchmark::DoNotOptimize(out);
    benchmark::ClobberMemory();
    i += kBurst;
    if (i == keys.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations() * kBurst);
  state.counters["per_key"] = benchmark::Counter(
      kBurst, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_LookupBulk32)
    ->ArgNames({"entries", "huge"})
    ->Args({1 << 10, 1})
    ->Args({1 << 20, 1})
    ->Args({1 << 20, 0});

// New flows into a table whose buckets are all full of live flows: every insert evicts. The
// flows are pre-hashed; the ring is 4x the capacity so that a flow met again was evicted long
// ago (its bucket took ~32 newer flows since) and the insert still takes the eviction path.
void BM_InsertEvict(benchmark::State& state) {
  const uint32_t capacity = static_cast<uint32_t>(state.range(0));
  MappedTable table(capacity, state.range(1) != 0);
  const size_t ring_size = static_cast<size_t>(capacity) * 4;
  std::vector<KeyHash> ring(ring_size);
  for (size_t j = 0; j < ring_size; ++j) {
    ring[j].key = MakeKey(j);
    ring[j].hash = FlowHash(ring[j].key);
  }
  uint32_t now = 1;
  // Fill with flows outside the ring until every bucket is full.
  for (uint64_t j = 0; table->CountLive(now) < table->capacity(); ++now) {
    for (uint32_t c = 0; c < capacity; ++c, ++j) {
      const FlowKey k = MakeKey((1ull << 40) + j);
      table->Insert(k, FlowHash(k), ConnValue{}, now, now + kLong);
    }
  }
  const uint64_t evicted_before = table->stats().evicted_live;
  size_t i = 0;
  for (auto _ : state) {
    const KeyHash& kh = ring[i];
    ConnValue* v = table->Insert(kh.key, kh.hash, ConnValue{}, now, now + kLong);
    benchmark::DoNotOptimize(v);
    ++now;
    if (++i == ring_size) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["evict_fraction"] =
      static_cast<double>(table->stats().evicted_live - evicted_before) /
      static_cast<double>(state.iterations());
}
BENCHMARK(BM_InsertEvict)
    ->ArgNames({"entries", "huge"})
    ->Args({1 << 10, 1})
    ->Args({1 << 20, 1})
    ->Args({1 << 20, 0});

}  // namespace
}  // namespace lb

int main(int argc, char** argv) {
  constexpr uint32_t kEntries = 1u << 22;
  std::printf("conn_table bytes_per_entry: %.1f (MemoryBytes(2^22)=%zu)\n",
              static_cast<double>(lb::ConnTable::MemoryBytes(kEntries)) / kEntries,
              lb::ConnTable::MemoryBytes(kEntries));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
