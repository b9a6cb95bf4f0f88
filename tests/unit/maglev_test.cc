#include "dataplane/core/maglev.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "dataplane/core/flow_key.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lb {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kM = kMaglevDefaultSize;  // 65537
constexpr uint32_t kLargeM = 655373;

// Backends 10.0.0.(first)...(first + n - 1), weight 1.
std::vector<MaglevBackend> MakeBackends(int n, uint32_t first = 0) {
  std::vector<MaglevBackend> v;
  for (int i = 0; i < n; ++i) {
    v.push_back({BackendId(IpAddr::V4(0x0a000000u + first + static_cast<uint32_t>(i))), 1});
  }
  return v;
}

MaglevTable BuildOk(absl::Span<const MaglevBackend> backends, uint32_t size = kM) {
  return MaglevTable::Build(backends, size).value();
}

// Owner id of every slot; the table must be full.
std::vector<uint64_t> OwnerIds(const MaglevTable& t) {
  std::vector<uint64_t> ids;
  ids.reserve(t.slots().size());
  for (uint32_t b : t.slots()) ids.push_back(t.backends().at(b).id);
  return ids;
}

void ExpectInvalidArgument(const absl::StatusOr<MaglevTable>& t, const std::string& mentions) {
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr(mentions));
}

TEST(IsPrimeTest, Basics) {
  for (uint32_t n : {0u, 1u, 4u, 9u, 15u, 25u, 49u, 65536u, 655371u, 4294967295u}) {
    EXPECT_FALSE(IsPrime(n)) << n;
  }
  for (uint32_t n : {2u, 3u, 5u, 7u, 251u, 65537u, 655373u, 16777213u, 4294967291u}) {
    EXPECT_TRUE(IsPrime(n)) << n;
  }
  // The square of the largest 16-bit prime: trial division must reach the square root exactly.
  EXPECT_FALSE(IsPrime(65521u * 65521u));
}

TEST(MaglevBuildTest, RejectsSizesThatAreNotPrimesInRange) {
  const auto backends = MakeBackends(3);
  ASSERT_TRUE(IsPrime(16777259));  // the first prime above kMaglevMaxSize
  for (uint32_t size : {0u, 1u, 2u, 4u, 65536u, kMaglevMaxSize, 16777259u}) {
    SCOPED_TRACE(size);
    ExpectInvalidArgument(MaglevTable::Build(backends, size), std::to_string(size));
  }
  EXPECT_TRUE(MaglevTable::Build(backends, 3).ok());
}

TEST(MaglevBuildTest, RejectsDuplicateIds) {
  auto backends = MakeBackends(5);
  backends.push_back({backends[2].id, 0});  // even a weight-0 duplicate is ambiguous
  ExpectInvalidArgument(MaglevTable::Build(backends), std::to_string(backends[2].id));
}

TEST(MaglevBuildTest, RejectsWeightAboveMaximum) {
  auto backends = MakeBackends(3);
  backends[1].weight = kMaglevMaxWeight + 1;
  ExpectInvalidArgument(MaglevTable::Build(backends), std::to_string(kMaglevMaxWeight + 1));
  backends[1].weight = kMaglevMaxWeight;
  EXPECT_TRUE(MaglevTable::Build(backends).ok());
}

// Equal weights: the round-robin fill gives every backend floor(M/N) or ceil(M/N) slots.
class MaglevBalanceTest : public ::testing::TestWithParam<std::pair<int, uint32_t>> {};

TEST_P(MaglevBalanceTest, EveryBackendGetsFloorOrCeilOfItsShare) {
  const auto [n, size] = GetParam();
  const MaglevTable t = BuildOk(MakeBackends(n), size);
  ASSERT_EQ(t.size(), size);
  ASSERT_EQ(t.slots().size(), size);
  for (uint32_t b : t.slots()) ASSERT_LT(b, static_cast<uint32_t>(n));
  const std::vector<uint32_t> counts = t.SlotCounts();
  ASSERT_EQ(counts.size(), static_cast<size_t>(n));
  const auto [lo, hi] = std::minmax_element(counts.begin(), counts.end());
  std::printf("N=%d M=%u: slots per backend min %u max %u (max/min %.4f)\n", n, size, *lo, *hi,
              static_cast<double>(*hi) / *lo);
  EXPECT_EQ(*lo, size / n);
  EXPECT_LE(*hi, (size + n - 1) / n);
}

INSTANTIATE_TEST_SUITE_P(Sizes, MaglevBalanceTest,
                         ::testing::Values(std::pair{10, kM}, std::pair{100, kM},
                                           std::pair{1000, kM}, std::pair{1000, kLargeM}),
                         [](const auto& info) {
                           return absl::StrCat("n", info.param.first, "_m", info.param.second);
                         });

TEST(MaglevBuildTest, MoreBackendsThanSlotsFillsEverySlotOnce) {
  const MaglevTable t = BuildOk(MakeBackends(10), 7);
  const std::vector<uint32_t> counts = t.SlotCounts();
  EXPECT_EQ(std::count(counts.begin(), counts.end(), 1u), 7);
  EXPECT_EQ(std::count(counts.begin(), counts.end(), 0u), 3);
}

struct DisruptionCase {
  int n;
  uint32_t size;
  // Upper bound on (fraction of slots moved) / (1 / N). Maglev is not minimally disruptive: a
  // change perturbs the fill order, which moves a roughly N-independent fraction of other slots
  // (about 0.2-0.6% at M = 65537, less at larger M). So the ratio is close to 1 for small N and
  // grows with N; the paper recommends M > 100 N. Bounds are the worst measured ratios plus some
  // headroom.
  double max_ratio;
};

struct Moves {
  size_t moved = 0;       // slots whose owner changed
  size_t collateral = 0;  // slots moved between two backends present in both tables
};

Moves Measure(const MaglevTable& before, const MaglevTable& after, uint64_t changed_id) {
  const auto deltas = MaglevTable::Diff(before, after);
  Moves m{deltas.size(), 0};
  for (const MaglevDelta& d : deltas) {
    if (before.backends()[d.old_backend].id != changed_id &&
        after.backends()[d.new_backend].id != changed_id) {
      ++m.collateral;
    }
  }
  return m;
}

class MaglevDisruptionTest : public ::testing::TestWithParam<DisruptionCase> {};

TEST_P(MaglevDisruptionTest, RemovingOneBackendMovesLittleBeyondItsSlots) {
  const DisruptionCase c = GetParam();
  const auto all = MakeBackends(c.n);
  const MaglevTable before = BuildOk(all, c.size);
  const std::vector<uint32_t> before_counts = before.SlotCounts();
  for (int victim : {0, c.n / 3, c.n - 1}) {
    SCOPED_TRACE(victim);
    auto fewer = all;
    fewer.erase(fewer.begin() + victim);
    const MaglevTable after = BuildOk(fewer, c.size);
    const Moves m = Measure(before, after, all[victim].id);
    const double moved = static_cast<double>(m.moved) / c.size;
    const double ratio = moved * c.n;
    // Of the slots the removed backend did not own, the fraction that changed owner anyway.
    const double collateral = static_cast<double>(m.collateral) / (c.size - before_counts[victim]);
    std::printf("N=%d M=%u remove #%d: moved %.5f of slots, %.3f x ideal 1/N; others moved %.5f\n",
                c.n, c.size, victim, moved, ratio, collateral);
    RecordProperty("remove_ratio_" + std::to_string(victim), std::to_string(ratio));
    // Every slot of the removed backend moves; all other moves are collateral.
    EXPECT_EQ(m.moved - m.collateral, before_counts[victim]);
    EXPECT_LE(ratio, c.max_ratio);
    EXPECT_LE(collateral, 0.01);
  }
}

TEST_P(MaglevDisruptionTest, AddingOneBackendMovesLittleBeyondItsSlots) {
  const DisruptionCase c = GetParam();
  const auto all = MakeBackends(c.n);
  const MaglevTable before = BuildOk(all, c.size);
  for (uint32_t extra : {0x10000u, 0x20000u, 0x30000u}) {
    auto more = all;
    more.push_back(MakeBackends(1, extra)[0]);
    const MaglevTable after = BuildOk(more, c.size);
    const Moves m = Measure(before, after, more.back().id);
    const double moved = static_cast<double>(m.moved) / c.size;
    const double ratio = moved * (c.n + 1);
    // Fraction of all slots that moved between two of the old backends.
    const double collateral = static_cast<double>(m.collateral) / c.size;
    std::printf("N=%d M=%u add one: moved %.5f of slots, %.3f x ideal 1/(N+1); others moved %.5f\n",
                c.n, c.size, moved, ratio, collateral);
    RecordProperty("add_ratio_" + std::to_string(extra), std::to_string(ratio));
    // The newcomer gets its fair share, all of it taken from others.
    const uint32_t added = after.SlotCounts().back();
    EXPECT_GE(added, c.size / (c.n + 1));
    EXPECT_LE(added, c.size / (c.n + 1) + 1);
    EXPECT_EQ(m.moved - m.collateral, added);
    EXPECT_LE(ratio, c.max_ratio);
    EXPECT_LE(collateral, 0.01);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Sizes, MaglevDisruptionTest,
    ::testing::Values(DisruptionCase{10, kM, 1.1}, DisruptionCase{100, kM, 2.0},
                      DisruptionCase{1000, kM, 8.5}, DisruptionCase{1000, kLargeM, 5.5}),
    [](const auto& info) { return absl::StrCat("n", info.param.n, "_m", info.param.size); });

TEST(MaglevTableSizeTest, LargerTableDisruptsLess) {
  const auto all = MakeBackends(1000);
  auto fewer = all;
  fewer.erase(fewer.begin() + 500);
  const double small =
      Measure(BuildOk(all, kM), BuildOk(fewer, kM), all[500].id).collateral / double{kM};
  const double large =
      Measure(BuildOk(all, kLargeM), BuildOk(fewer, kLargeM), all[500].id).collateral /
      double{kLargeM};
  EXPECT_LT(large, small);
}

TEST(MaglevDeterminismTest, InputOrderDoesNotChangeOwners) {
  auto backends = MakeBackends(200);
  std::mt19937 rng(42);
  std::uniform_int_distribution<uint32_t> weight(0, 5);
  for (auto& b : backends) b.weight = weight(rng);
  const std::vector<uint64_t> reference = OwnerIds(BuildOk(backends));
  for (int round = 0; round < 5; ++round) {
    std::shuffle(backends.begin(), backends.end(), rng);
    const MaglevTable t = BuildOk(backends);
    // Slots index the caller's order, which changed; owners by id do not.
    for (size_t i = 0; i < backends.size(); ++i) EXPECT_EQ(t.backends()[i].id, backends[i].id);
    EXPECT_EQ(OwnerIds(t), reference) << "round " << round;
  }
}

uint64_t Fingerprint(const MaglevTable& t) {
  const std::vector<uint64_t> ids = OwnerIds(t);
  return HashBytes(ids.data(), ids.size() * sizeof(uint64_t), 1);
}

TEST(MaglevDeterminismTest, FixedSetGivesFixedTable) {
  std::vector<MaglevBackend> set = {{1001, 1}, {2002, 3}, {3003, 0}, {4004, 2}, {5005, 1}};
  const uint64_t forward = Fingerprint(BuildOk(set, 251));
  std::reverse(set.begin(), set.end());
  EXPECT_EQ(Fingerprint(BuildOk(set, 251)), forward);
  std::rotate(set.begin(), set.begin() + 2, set.end());
  EXPECT_EQ(Fingerprint(BuildOk(set, 251)), forward);
  // The fingerprint does see the table: another weight gives another one.
  set[0].weight = 4;
  EXPECT_NE(Fingerprint(BuildOk(set, 251)), forward);
}

TEST(MaglevWeightTest, SharesFollowWeights) {
  std::vector<MaglevBackend> backends = MakeBackends(4);
  for (int i = 0; i < 4; ++i) backends[i].weight = i + 1;
  const std::vector<uint32_t> counts = BuildOk(backends).SlotCounts();
  for (int i = 0; i < 4; ++i) {
    const double ideal = kM * (i + 1) / 10.0;
    std::printf("weight %d: %u slots, ideal %.1f\n", i + 1, counts[i], ideal);
    EXPECT_NEAR(counts[i], ideal, 2.0) << "weight " << i + 1;
  }
}

// The documented bound: count in [M w / W - 1, (M + n) w / W] for n backends of total weight W.
TEST(MaglevWeightTest, ManyRandomWeightsStayWithinBound) {
  auto backends = MakeBackends(1000);
  std::mt19937 rng(3);
  std::uniform_int_distribution<uint32_t> weight(1, 100);
  double total = 0;
  for (auto& b : backends) {
    b.weight = weight(rng);
    total += b.weight;
  }
  const std::vector<uint32_t> counts = BuildOk(backends).SlotCounts();
  double worst = 0;
  for (size_t i = 0; i < backends.size(); ++i) {
    const double w = backends[i].weight;
    EXPECT_GE(counts[i], kM * w / total - 1) << i;
    EXPECT_LE(counts[i], (kM + backends.size()) * w / total) << i;
    worst = std::max(worst, std::abs(counts[i] - kM * w / total));
  }
  std::printf("1000 weights in [1, 100]: worst deviation %.2f slots\n", worst);
}

TEST(MaglevWeightTest, ExtremeWeightsStayProportional) {
  const auto two = MakeBackends(2);
  const std::vector<MaglevBackend> backends = {{two[0].id, kMaglevMaxWeight}, {two[1].id, 1}};
  // 65537 slots split 65536 : 1, exactly the weights.
  EXPECT_THAT(BuildOk(backends).SlotCounts(), ::testing::ElementsAre(65536u, 1u));
}

TEST(MaglevWeightTest, ScalingAllWeightsChangesNothing) {
  auto backends = MakeBackends(50);
  for (size_t i = 0; i < backends.size(); ++i) backends[i].weight = 1 + i % 4;
  const std::vector<uint64_t> reference = OwnerIds(BuildOk(backends));
  for (auto& b : backends) b.weight *= 7;
  EXPECT_EQ(OwnerIds(BuildOk(backends)), reference);
}

TEST(MaglevWeightTest, ZeroWeightBackendIsListedButOwnsNothing) {
  auto backends = MakeBackends(20);
  const MaglevTable without = BuildOk(backends);
  backends.insert(backends.begin() + 7, MakeBackends(1, 100)[0]);
  backends[7].weight = 0;
  const MaglevTable with = BuildOk(backends);
  ASSERT_EQ(with.backends().size(), 21u);
  EXPECT_EQ(with.backends()[7].id, backends[7].id);
  EXPECT_EQ(with.SlotCounts()[7], 0u);
  EXPECT_EQ(std::count(with.slots().begin(), with.slots().end(), 7u), 0);
  // A weight-0 backend is as if absent, so draining one disturbs nobody else.
  EXPECT_TRUE(MaglevTable::Diff(without, with).empty());
}

TEST(MaglevWeightTest, NoPositiveWeightMeansNoBackend) {
  auto backends = MakeBackends(3);
  for (auto& b : backends) b.weight = 0;
  for (const auto& set : {backends, std::vector<MaglevBackend>{}}) {
    const MaglevTable t = BuildOk(set);
    EXPECT_EQ(t.size(), kM);
    EXPECT_TRUE(t.slots().empty());
    EXPECT_EQ(t.backends().size(), set.size());
    EXPECT_THAT(t.SlotCounts(), ::testing::Each(0u));
    for (uint64_t h : {uint64_t{0}, uint64_t{12345}, ~uint64_t{0}}) {
      EXPECT_EQ(t.Lookup(h), kMaglevNoBackend);
    }
  }
}

TEST(MaglevDiffTest, SameSetInAnotherOrderHasNoDelta) {
  auto backends = MakeBackends(100);
  const MaglevTable a = BuildOk(backends);
  std::reverse(backends.begin(), backends.end());
  EXPECT_TRUE(MaglevTable::Diff(a, BuildOk(backends)).empty());
}

TEST(MaglevDiffTest, ListsExactlyTheChangedSlots) {
  auto backends = MakeBackends(50);
  const MaglevTable before = BuildOk(backends);
  backends.erase(backends.begin() + 17);
  std::reverse(backends.begin(), backends.end());  // indices differ between the two tables
  const MaglevTable after = BuildOk(backends);
  std::vector<MaglevDelta> expected;
  for (uint32_t s = 0; s < kM; ++s) {
    const uint32_t o = before.slots()[s];
    const uint32_t n = after.slots()[s];
    if (before.backends()[o].id != after.backends()[n].id) expected.push_back({s, o, n});
  }
  const std::vector<MaglevDelta> deltas = MaglevTable::Diff(before, after);
  ASSERT_EQ(deltas.size(), expected.size());
  for (size_t i = 0; i < deltas.size(); ++i) {
    EXPECT_EQ(deltas[i].slot, expected[i].slot);
    EXPECT_EQ(deltas[i].old_backend, expected[i].old_backend);
    EXPECT_EQ(deltas[i].new_backend, expected[i].new_backend);
  }
}

TEST(MaglevDiffTest, EmptyingTheTableChangesEverySlot) {
  auto backends = MakeBackends(5);
  const MaglevTable before = BuildOk(backends, 101);
  for (auto& b : backends) b.weight = 0;
  const std::vector<MaglevDelta> gone = MaglevTable::Diff(before, BuildOk(backends, 101));
  ASSERT_EQ(gone.size(), 101u);
  for (uint32_t s = 0; s < 101; ++s) {
    EXPECT_EQ(gone[s].slot, s);
    EXPECT_EQ(gone[s].old_backend, before.slots()[s]);
    EXPECT_EQ(gone[s].new_backend, kMaglevNoBackend);
  }
}

TEST(MaglevDiffTest, DifferentSizesReportEverySlot) {
  const auto backends = MakeBackends(5);
  const MaglevTable small = BuildOk(backends, 101);
  const MaglevTable large = BuildOk(backends, 103);
  const std::vector<MaglevDelta> deltas = MaglevTable::Diff(small, large);
  ASSERT_EQ(deltas.size(), 103u);
  EXPECT_EQ(deltas[50].old_backend, small.slots()[50]);
  EXPECT_EQ(deltas[50].new_backend, large.slots()[50]);
  EXPECT_EQ(deltas[102].old_backend, kMaglevNoBackend);
  EXPECT_EQ(deltas[102].new_backend, large.slots()[102]);
}

TEST(MaglevLookupTest, UsesFlowHashModuloSize) {
  const MaglevTable t = BuildOk(MakeBackends(37), 1009);
  std::mt19937_64 rng(9);
  for (int i = 0; i < 10000; ++i) {
    const uint64_t h = rng();
    ASSERT_EQ(t.Lookup(h), t.slots()[h % 1009]) << h;
  }
  FlowKey k;
  k.src = IpAddr::V4(0xc0a80001);
  k.dst = IpAddr::V4(0x0a000001);
  k.src_port = 0x3930;
  k.dst_port = 0x5000;
  k.proto = 6;
  k.family = IpFamily::kIpv4;
  EXPECT_EQ(t.Lookup(FlowHash(k)), t.slots()[FlowHash(k) % 1009]);
}

TEST(BackendIdTest, DependsOnAddressAndPort) {
  const IpAddr a = IpAddr::V4(0x0a000001);
  EXPECT_EQ(BackendId(a), BackendId(IpAddr::V4(0x0a000001), 0));
  EXPECT_NE(BackendId(a, 80), BackendId(a, 443));
  EXPECT_NE(BackendId(a, 80), BackendId(a));
  // The port's two bytes are not interchangeable.
  EXPECT_NE(BackendId(a, 0x0100), BackendId(a, 0x0001));
  std::set<uint64_t> ids;
  for (uint32_t i = 0; i < 100000; ++i) ids.insert(BackendId(IpAddr::V4(0x0a000000 + i)));
  EXPECT_EQ(ids.size(), 100000u);
}

}  // namespace
}  // namespace lb
