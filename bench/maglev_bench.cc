// Maglev table build cost, lookup cost, and the disruption a one-backend change causes.
//
// BM_Disruption removes (add=0) or adds (add=1) one backend of N and reports, as counters:
//   moved        fraction of slots whose owner (by id) changed
//   ideal        1/N for a removal, 1/(N+1) for an addition: the least any scheme can move
//   ratio        moved / ideal (1.0 is perfect)
//   collateral   fraction of slots that moved between two backends present before and after
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <utility>
#include <vector>

#include "benchmark/benchmark.h"
#include "dataplane/core/flow_key.h"
#include "dataplane/core/maglev.h"

namespace lb {
namespace {

std::vector<MaglevBackend> MakeBackends(int n, uint32_t first = 0) {
  std::vector<MaglevBackend> v;
  v.reserve(n);
  for (int i = 0; i < n; ++i) {
    v.push_back({BackendId(IpAddr::V4(0x0a000000u + first + static_cast<uint32_t>(i))), 1});
  }
  return v;
}

MaglevTable MustBuild(const std::vector<MaglevBackend>& b, uint32_t size) {
  auto t = MaglevTable::Build(b, size);
  if (!t.ok()) std::abort();
  return *std::move(t);
}

void BM_Build(benchmark::State& state) {
  const auto backends = MakeBackends(static_cast<int>(state.range(0)));
  const auto size = static_cast<uint32_t>(state.range(1));
  for (auto _ : state) {
    auto t = MaglevTable::Build(backends, size);
    benchmark::DoNotOptimize(t);
  }
  state.counters["slots/s"] =
      benchmark::Counter(static_cast<double>(size), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Build)
    ->ArgNames({"backends", "size"})
    ->Args({10, 65537})
    ->Args({100, 65537})
    ->Args({1000, 65537})
    ->Args({10000, 65537})
    ->Args({1000, 655373})
    ->Unit(benchmark::kMillisecond);

// skewed=0: random weights in [1, 100], so up to 100 weight classes take turns. skewed=1: one
// backend at the maximum weight beside N-1 at weight 1, the worst case for a scheme that polls
// every backend once per round.
void BM_BuildWeighted(benchmark::State& state) {
  auto backends = MakeBackends(static_cast<int>(state.range(0)));
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> w(1, 100);
  for (auto& b : backends) b.weight = state.range(1) ? 1 : w(rng);
  if (state.range(1)) backends[0].weight = kMaglevMaxWeight;
  for (auto _ : state) {
    auto t = MaglevTable::Build(backends, kMaglevDefaultSize);
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_BuildWeighted)
    ->ArgNames({"backends", "skewed"})
    ->Args({1000, 0})
    ->Args({10000, 0})
    ->Args({10000, 1})
    ->Unit(benchmark::kMillisecond);

void BM_Lookup(benchmark::State& state) {
  const MaglevTable table = MustBuild(MakeBackends(1000), static_cast<uint32_t>(state.range(0)));
  std::vector<uint64_t> hashes(4096);
  std::mt19937_64 rng(1);
  for (auto& h : hashes) h = rng();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(table.Lookup(hashes[i]));
    i = (i + 1) & (hashes.size() - 1);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Lookup)->ArgName("size")->Arg(65537)->Arg(655373);

struct Disruption {
  double moved = 0;
  double collateral = 0;
};

// A slot is collateral when it moves between two backends present in both tables: a perfect
// scheme moves only the slots of the removed backend, or only slots taken by the added one.
Disruption Measure(const MaglevTable& before, const MaglevTable& after, uint64_t changed_id) {
  const auto deltas = MaglevTable::Diff(before, after);
  size_t collateral = 0;
  for (const MaglevDelta& m : deltas) {
    const bool from_changed =
        m.old_backend != kMaglevNoBackend && before.backends()[m.old_backend].id == changed_id;
    const bool to_changed =
        m.new_backend != kMaglevNoBackend && after.backends()[m.new_backend].id == changed_id;
    if (!from_changed && !to_changed) ++collateral;
  }
  const double size = before.size();
  return {deltas.size() / size, collateral / size};
}

constexpr int kTrials = 8;

// Counters averaged over kTrials choices of the removed (or added) backend. Timed: the rebuild
// after the change plus the diff, which is what the control plane pays per update.
void BM_Disruption(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const auto size = static_cast<uint32_t>(state.range(1));
  const bool add = state.range(2) != 0;
  const auto all = MakeBackends(n);
  const MaglevTable before = MustBuild(all, size);
  std::vector<std::vector<MaglevBackend>> variants;
  Disruption sum;
  for (int t = 0; t < kTrials; ++t) {
    auto changed = all;
    uint64_t changed_id;
    if (add) {
      changed.push_back(MakeBackends(1, 0x10000u + static_cast<uint32_t>(t))[0]);
      changed_id = changed.back().id;
    } else {
      const auto victim = static_cast<std::ptrdiff_t>(t * n / kTrials);
      changed_id = changed[victim].id;
      changed.erase(changed.begin() + victim);
    }
    const Disruption d = Measure(before, MustBuild(changed, size), changed_id);
    sum.moved += d.moved;
    sum.collateral += d.collateral;
    variants.push_back(std::move(changed));
  }
  size_t i = 0;
  for (auto _ : state) {
    auto deltas = MaglevTable::Diff(before, MustBuild(variants[i], size));
    benchmark::DoNotOptimize(deltas);
    i = (i + 1) % variants.size();
  }
  const double ideal = 1.0 / (add ? n + 1 : n);
  state.counters["moved"] = sum.moved / kTrials;
  state.counters["ideal"] = ideal;
  state.counters["ratio"] = sum.moved / kTrials / ideal;
  state.counters["collateral"] = sum.collateral / kTrials;
}
BENCHMARK(BM_Disruption)
    ->ArgNames({"backends", "size", "add"})
    ->ArgsProduct({{10, 100, 1000}, {65537}, {0, 1}})
    ->Args({1000, 655373, 0})
    ->Args({1000, 655373, 1})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace lb

BENCHMARK_MAIN();
