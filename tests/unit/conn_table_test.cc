#include "dataplane/core/conn_table.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/core/flow_key.h"

namespace lb {
namespace {

// Distinct IPv4 TCP flows for distinct i: i spreads over source address and port.
FlowKey V4Key(uint32_t i) {
  FlowKey k;
  k.src = IpAddr::V4(0x0a000000u + (i >> 8));
  k.dst = IpAddr::V4(0xc0a80001u);
  k.src_port = htons(static_cast<uint16_t>(1024 + (i & 0xff)));
  k.dst_port = htons(443);
  k.proto = IPPROTO_TCP;
  k.family = IpFamily::kIpv4;
  return k;
}

FlowKey V6Key(uint32_t i) {
  uint8_t src[16] = {0x20, 0x01, 0x0d, 0xb8};
  uint8_t dst[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  std::memcpy(src + 12, &i, 4);
  FlowKey k;
  k.src = IpAddr::FromV6Bytes(src);
  k.dst = IpAddr::FromV6Bytes(dst);
  k.src_port = htons(40000);
  k.dst_port = htons(80);
  k.proto = IPPROTO_UDP;
  k.family = IpFamily::kIpv6;
  return k;
}

ConnValue Value(uint32_t i) {
  ConnValue v;
  v.backend = i;
  v.vip = i ^ 0x5a5a5a5au;
  v.nat_addr = i * 3;
  v.nat_port = static_cast<uint16_t>(i);
  v.flags = static_cast<uint16_t>(i >> 16);
  return v;
}

bool SameValue(const ConnValue& a, const ConnValue& b) {
  return a.backend == b.backend && a.vip == b.vip && a.nat_addr == b.nat_addr &&
         a.nat_port == b.nat_port && a.flags == b.flags;
}

MATCHER_P(HasValue, expected, "") { return arg != nullptr && SameValue(*arg, expected); }

// Keys whose hash selects bucket `bucket` of a table with `buckets` buckets.
std::vector<FlowKey> KeysInBucket(uint32_t buckets, uint32_t bucket, size_t count) {
  std::vector<FlowKey> keys;
  for (uint32_t i = 0; keys.size() < count; ++i) {
    const FlowKey k = V4Key(i);
    if ((FlowHash(k) & (buckets - 1)) == bucket) keys.push_back(k);
  }
  return keys;
}

constexpr uint32_t kLong = 1u << 30;  // a timeout that never runs out within a test

TEST(ConnTableSizing, RoundsCapacityAndMemory) {
  EXPECT_EQ(ConnTable::RoundCapacity(0), 8u);
  EXPECT_EQ(ConnTable::RoundCapacity(1), 8u);
  EXPECT_EQ(ConnTable::RoundCapacity(8), 8u);
  EXPECT_EQ(ConnTable::RoundCapacity(9), 16u);
  EXPECT_EQ(ConnTable::RoundCapacity(1000), 1024u);
  EXPECT_EQ(ConnTable::RoundCapacity(1u << 20), 1u << 20);
  // One 64-byte header per 8 entries plus one 64-byte line per entry.
  EXPECT_EQ(ConnTable::MemoryBytes(1024), 128u * 64 + 1024u * 64);
  EXPECT_EQ(ConnTable::MemoryBytes(1000), ConnTable::MemoryBytes(1024));
  EXPECT_EQ(ConnTable::MemoryBytes(1) % 64, 0u);
  auto t = ConnTable::Create(1000);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->capacity(), 1024u);
}

TEST(ConnTable, InsertThenLookupReturnsStoredValue) {
  auto t = ConnTable::Create(1024);
  const FlowKey k = V4Key(7);
  const uint64_t h = FlowHash(k);
  InsertOutcome outcome;
  ConnValue* stored = t->Insert(k, h, Value(7), 100, 1000, &outcome);
  EXPECT_EQ(outcome, InsertOutcome::kFreeWay);
  EXPECT_THAT(stored, HasValue(Value(7)));
  ConnValue* found = t->Lookup(k, h, 101, 1000);
  EXPECT_EQ(found, stored);
  EXPECT_THAT(found, HasValue(Value(7)));
  EXPECT_EQ(t->stats().inserts, 1u);
}

TEST(ConnTable, LookupOfAbsentKeyIsNull) {
  auto t = ConnTable::Create(1024);
  EXPECT_EQ(t->Lookup(V4Key(1), FlowHash(V4Key(1)), 0, 10), nullptr);
  t->Insert(V4Key(1), FlowHash(V4Key(1)), Value(1), 0, kLong);
  EXPECT_EQ(t->Lookup(V4Key(2), FlowHash(V4Key(2)), 0, 10), nullptr);
  EXPECT_EQ(t->Lookup(V6Key(1), FlowHash(V6Key(1)), 0, 10), nullptr);
}

TEST(ConnTable, Ipv4AndIpv6KeysCoexist) {
  auto t = ConnTable::Create(4096);
  for (uint32_t i = 0; i < 500; ++i) {
    t->Insert(V4Key(i), FlowHash(V4Key(i)), Value(i), 0, kLong);
    t->Insert(V6Key(i), FlowHash(V6Key(i)), Value(i + 100000), 0, kLong);
  }
  ASSERT_EQ(t->stats().evicted_live, 0u);
  for (uint32_t i = 0; i < 500; ++i) {
    EXPECT_THAT(t->Lookup(V4Key(i), FlowHash(V4Key(i)), 1, kLong), HasValue(Value(i)));
    EXPECT_THAT(t->Lookup(V6Key(i), FlowHash(V6Key(i)), 1, kLong), HasValue(Value(i + 100000)));
  }
  EXPECT_EQ(t->CountLive(1), 1000u);
}

TEST(ConnTable, KeysDifferingInOneByteOfAnyFieldAreDistinct) {
  auto t = ConnTable::Create(1024);
  const FlowKey base = V6Key(0x01020304);
  std::vector<FlowKey> keys = {base};
  // Every byte of src, dst, ports, proto and family (the two pad bytes are always zero).
  for (size_t off = 0; off < offsetof(FlowKey, pad); ++off) {
    FlowKey k = base;
    reinterpret_cast<uint8_t*>(&k)[off] ^= 0x01;
    keys.push_back(k);
  }
  for (uint32_t i = 0; i < keys.size(); ++i) {
    InsertOutcome outcome;
    t->Insert(keys[i], FlowHash(keys[i]), Value(i), 0, kLong, &outcome);
    EXPECT_NE(outcome, InsertOutcome::kReplacedSame) << "key " << i;
  }
  ASSERT_EQ(t->stats().evicted_live, 0u);
  EXPECT_EQ(t->CountLive(0), keys.size());
  for (uint32_t i = 0; i < keys.size(); ++i) {
    EXPECT_THAT(t->Lookup(keys[i], FlowHash(keys[i]), 0, kLong), HasValue(Value(i))) << i;
  }
}

// Two keys of one bucket with the same 16-bit signature: only the full key tells them apart.
TEST(ConnTable, SignatureCollisionComparesFullKey) {
  auto t = ConnTable::Create(8);  // one bucket: every key shares it
  std::map<uint16_t, uint32_t> seen;
  FlowKey a, b;
  bool found = false;
  for (uint32_t i = 0; !found; ++i) {
    const uint16_t top = static_cast<uint16_t>(FlowHash(V4Key(i)) >> 48);
    auto [it, inserted] = seen.emplace(top, i);
    if (!inserted && top != 0) {
      a = V4Key(it->second);
      b = V4Key(i);
      found = true;
    }
  }
  t->Insert(a, FlowHash(a), Value(1), 0, kLong);
  EXPECT_EQ(t->Lookup(b, FlowHash(b), 0, kLong), nullptr);
  EXPECT_FALSE(t->Erase(b, FlowHash(b)));
  InsertOutcome outcome;
  t->Insert(b, FlowHash(b), Value(2), 0, kLong, &outcome);
  EXPECT_EQ(outcome, InsertOutcome::kFreeWay);
  EXPECT_THAT(t->Lookup(a, FlowHash(a), 0, kLong), HasValue(Value(1)));
  EXPECT_THAT(t->Lookup(b, FlowHash(b), 0, kLong), HasValue(Value(2)));
}

TEST(ConnTableExpiry, LiveUntilExpiryThenMiss) {
  auto t = ConnTable::Create(64);
  const FlowKey k = V4Key(3);
  const uint64_t h = FlowHash(k);
  t->Insert(k, h, Value(3), 100, 200);
  // Each hit pushes expiry to the given value; 200 keeps it unchanged.
  EXPECT_NE(t->Lookup(k, h, 100, 200), nullptr);
  EXPECT_NE(t->Lookup(k, h, 199, 200), nullptr);
  EXPECT_EQ(t->CountLive(199), 1u);
  EXPECT_EQ(t->CountLive(200), 0u);
  EXPECT_EQ(t->Lookup(k, h, 200, 300), nullptr);
  // A miss must not have revived it.
  EXPECT_EQ(t->Lookup(k, h, 201, 300), nullptr);
  EXPECT_EQ(t->CountLive(201), 0u);
}

TEST(ConnTableExpiry, FindDoesNotRefresh) {
  auto t = ConnTable::Create(64);
  FlowKey k;
  k.family = IpFamily::kIpv4;
  k.src = IpAddr::V4(1);
  const uint64_t h = FlowHash(k);
  ConnValue v;
  v.backend = 9;
  t->Insert(k, h, v, 100, 200);
  ASSERT_NE(t->Find(k, h, 150), nullptr);
  EXPECT_EQ(t->Find(k, h, 150)->backend, 9u);
  EXPECT_EQ(t->Find(k, h, 200), nullptr);  // expired at 200: Find at 150 did not extend it
}

TEST(ConnTableExpiry, ExpireSomeClearsOnlyExpiredWays) {
  constexpr uint32_t kCapacity = 1u << 14;  // 600 flows never fill a bucket here
  auto t = ConnTable::Create(kCapacity);
  std::vector<FlowKey> keys;
  for (uint32_t i = 0; i < 600; ++i) {
    FlowKey k;
    k.family = IpFamily::kIpv4;
    k.src = IpAddr::V4(0x0a000000u + i);
    keys.push_back(k);
    t->Insert(k, FlowHash(k), ConnValue(), 0, i % 2 ? 100 : 1000);
  }
  ASSERT_EQ(t->CountLive(50), 600u);
  // Sweeping the whole table at time 500 clears the 300 entries that expired at 100.
  uint32_t cleared = 0;
  for (uint32_t i = 0; i < kCapacity / ConnTable::kWays; ++i) cleared += t->ExpireSome(500, 1);
  EXPECT_EQ(cleared, 300u);
  EXPECT_EQ(t->stats().swept, 300u);
  // Long after, a cleared entry cannot read as live again when the clock wraps past it.
  for (const FlowKey& k : keys) {
    if (k.src.V4HostOrder() & 1) {
      EXPECT_EQ(t->Find(k, FlowHash(k), 100 + (1u << 31) + 10), nullptr);
    }
  }
}

TEST(ConnTableEviction, KeepProtectsAnEntryTheCallerHolds) {
  auto t = ConnTable::Create(ConnTable::kWays);  // one bucket
  std::vector<FlowKey> keys;
  ConnValue* held = nullptr;
  for (uint32_t i = 0; i < ConnTable::kWays; ++i) {
    FlowKey k;
    k.family = IpFamily::kIpv4;
    k.src = IpAddr::V4(i + 1);
    keys.push_back(k);
    // The first entry expires first: the natural victim.
    ConnValue* v = t->Insert(k, FlowHash(k), ConnValue(), 0, i == 0 ? 10 : 100 + i);
    if (i == 0) held = v;
  }
  FlowKey extra;
  extra.family = IpFamily::kIpv4;
  extra.src = IpAddr::V4(99);
  InsertOutcome how;
  t->Insert(extra, FlowHash(extra), ConnValue(), 1, 1000, &how, held);
  EXPECT_EQ(how, InsertOutcome::kEvictedLive);
  EXPECT_NE(t->Find(keys[0], FlowHash(keys[0]), 2), nullptr) << "kept entry survived";
  EXPECT_EQ(t->Find(keys[1], FlowHash(keys[1]), 2), nullptr) << "next-oldest was evicted";
}

TEST(ConnTableExpiry, LookupRefreshesExpiry) {
  auto t = ConnTable::Create(64);
  const FlowKey k = V4Key(4);
  const uint64_t h = FlowHash(k);
  t->Insert(k, h, Value(4), 100, 200);
  EXPECT_NE(t->Lookup(k, h, 150, 400), nullptr);
  EXPECT_NE(t->Lookup(k, h, 300, 400), nullptr);  // past the original expiry
  EXPECT_NE(t->Lookup(k, h, 399, 400), nullptr);
  EXPECT_EQ(t->Lookup(k, h, 400, 500), nullptr);
  std::vector<uint32_t> expiries;
  t->ForEachLive(399, [&](const FlowKey&, const ConnValue&, uint32_t e) { expiries.push_back(e); });
  EXPECT_THAT(expiries, testing::ElementsAre(400u));
}

TEST(ConnTableExpiry, SetExpiryChangesOnlyThatEntry) {
  auto t = ConnTable::Create(64);
  // Two keys of one bucket, so that a slot mix-up would show on the neighbour.
  const std::vector<FlowKey> keys = KeysInBucket(64 / ConnTable::kWays, 3, 2);
  const uint64_t h0 = FlowHash(keys[0]);
  const uint64_t h1 = FlowHash(keys[1]);
  const ConnValue* v0 = t->Insert(keys[0], h0, Value(0), 100, 1000);
  t->Insert(keys[1], h1, Value(1), 100, 1000);
  t->SetExpiry(v0, 300);  // shortened
  EXPECT_THAT(t->Find(keys[0], h0, 299), HasValue(Value(0)));
  EXPECT_EQ(t->Find(keys[0], h0, 300), nullptr);
  EXPECT_THAT(t->Find(keys[1], h1, 999), HasValue(Value(1)));
  t->SetExpiry(t->Find(keys[1], h1, 500), 2000);  // lengthened, through Find's pointer
  EXPECT_THAT(t->Find(keys[1], h1, 1999), HasValue(Value(1)));
  EXPECT_EQ(t->Find(keys[1], h1, 2000), nullptr);
}

TEST(ConnTable, SlotOfNamesWhereAnEntryLives) {
  auto t = ConnTable::Create(1024);
  std::vector<uint32_t> slots;
  for (uint32_t i = 0; i < 200; ++i) {
    const FlowKey k = V4Key(i);
    const uint32_t slot = t->SlotOf(t->Insert(k, FlowHash(k), Value(i), 0, 100));
    EXPECT_LT(slot, t->capacity());
    // The slot's bucket is the key's bucket, and the same entry is found there later.
    EXPECT_EQ(slot / ConnTable::kWays, FlowHash(k) & (t->capacity() / ConnTable::kWays - 1));
    EXPECT_EQ(t->SlotOf(t->Find(k, FlowHash(k), 1)), slot);
    slots.push_back(slot);
  }
  std::sort(slots.begin(), slots.end());
  EXPECT_EQ(std::adjacent_find(slots.begin(), slots.end()), slots.end());  // one entry per slot
  // A stale or wild slot is only a prefetch: any value is safe.
  t->PrefetchSlot(0xffffffffu);
  t->PrefetchSlot(t->capacity());
}

TEST(ConnTableExpiry, ClockWrapAround) {
  auto t = ConnTable::Create(64);
  const FlowKey k = V4Key(5);
  const uint64_t h = FlowHash(k);
  const uint32_t now = 0xffffff00u;
  const uint32_t expires = now + 0x200;  // wraps to 0x100
  ASSERT_LT(expires, now);
  t->Insert(k, h, Value(5), now, expires);
  EXPECT_NE(t->Lookup(k, h, now, expires), nullptr);
  EXPECT_NE(t->Lookup(k, h, 0xffffffffu, expires), nullptr);
  EXPECT_NE(t->Lookup(k, h, 0, expires), nullptr);
  EXPECT_NE(t->Lookup(k, h, 0xff, expires), nullptr);
  EXPECT_EQ(t->CountLive(0xff), 1u);
  EXPECT_EQ(t->CountLive(0x100), 0u);
  EXPECT_EQ(t->Lookup(k, h, 0x100, 0x300), nullptr);

  // Eviction across the wrap: the entry expiring at 0xfffffff0 (before the wrap) goes first,
  // although it is numerically the largest.
  auto one = ConnTable::Create(8);
  for (uint32_t i = 0; i < 8; ++i) {
    const uint32_t e = i == 3 ? 0xfffffff0u : 0x10u + i;
    one->Insert(V4Key(i), FlowHash(V4Key(i)), Value(i), now, e);
  }
  InsertOutcome outcome;
  one->Insert(V4Key(100), FlowHash(V4Key(100)), Value(100), now, now + 0x1000, &outcome);
  EXPECT_EQ(outcome, InsertOutcome::kEvictedLive);
  EXPECT_EQ(one->Lookup(V4Key(3), FlowHash(V4Key(3)), now, 0x20), nullptr);
  for (uint32_t i : {0u, 1u, 2u, 4u, 5u, 6u, 7u}) {
    EXPECT_NE(one->Lookup(V4Key(i), FlowHash(V4Key(i)), now, 0x20), nullptr) << i;
  }
}

TEST(ConnTable, OverwriteSameKeyKeepsOneCopy) {
  auto t = ConnTable::Create(64);
  const FlowKey k = V6Key(9);
  const uint64_t h = FlowHash(k);
  InsertOutcome outcome;
  ConnValue* first = t->Insert(k, h, Value(1), 0, 100, &outcome);
  EXPECT_EQ(outcome, InsertOutcome::kFreeWay);
  ConnValue* second = t->Insert(k, h, Value(2), 10, 500, &outcome);
  EXPECT_EQ(outcome, InsertOutcome::kReplacedSame);
  EXPECT_EQ(first, second);
  EXPECT_EQ(t->CountLive(10), 1u);
  EXPECT_THAT(t->Lookup(k, h, 200, 500), HasValue(Value(2)));  // new expiry applies
  // An expired copy of the key is overwritten in place, not duplicated.
  EXPECT_EQ(t->Lookup(k, h, 600, 700), nullptr);
  ConnValue* third = t->Insert(k, h, Value(3), 600, 700, &outcome);
  EXPECT_EQ(outcome, InsertOutcome::kReplacedSame);
  EXPECT_EQ(third, first);
  EXPECT_EQ(t->CountLive(600), 1u);
  EXPECT_EQ(t->stats().inserts, 3u);
  EXPECT_EQ(t->stats().reused_expired, 0u);
}

TEST(ConnTableEviction, EvictsTheEntryExpiringFirst) {
  // 128 buckets; fill bucket 5 with eight flows of shuffled expiries.
  constexpr uint32_t kCapacity = 1024;
  auto t = ConnTable::Create(kCapacity);
  const std::vector<FlowKey> keys = KeysInBucket(kCapacity / 8, 5, 12);
  const uint32_t expiries[8] = {280, 900, 700, 250, 800, 400, 600, 300};
  for (uint32_t i = 0; i < 8; ++i) {
    InsertOutcome outcome;
    t->Insert(keys[i], FlowHash(keys[i]), Value(i), 0, expiries[i], &outcome);
    ASSERT_EQ(outcome, InsertOutcome::kFreeWay);
  }
  // Evicted in expiry order 250 (key 3), 280 (key 0), 300 (key 7): the first and last ways too.
  const uint32_t expected_victims[] = {3, 0, 7};
  for (uint32_t j = 0; j < 3; ++j) {
    const FlowKey& k = keys[8 + j];
    InsertOutcome outcome;
    t->Insert(k, FlowHash(k), Value(8 + j), 10, 2000, &outcome);
    EXPECT_EQ(outcome, InsertOutcome::kEvictedLive);
    EXPECT_EQ(t->stats().evicted_live, j + 1);
    const FlowKey& victim = keys[expected_victims[j]];
    EXPECT_EQ(t->Lookup(victim, FlowHash(victim), 10, 2000), nullptr) << "round " << j;
  }
  for (uint32_t i : {1u, 2u, 4u, 5u, 6u, 8u, 9u, 10u}) {
    EXPECT_THAT(t->Lookup(keys[i], FlowHash(keys[i]), 10, 2000), HasValue(Value(i))) << i;
  }
  EXPECT_EQ(t->CountLive(10), 8u);
  // Once entries expire, a new flow reuses an expired way instead of evicting a live one.
  auto fresh = ConnTable::Create(8);
  for (uint32_t i = 0; i < 8; ++i) {
    fresh->Insert(V4Key(i), FlowHash(V4Key(i)), Value(i), 0, i == 6 ? 50 : 1000);
  }
  InsertOutcome outcome;
  fresh->Insert(V4Key(99), FlowHash(V4Key(99)), Value(99), 60, 1000, &outcome);
  EXPECT_EQ(outcome, InsertOutcome::kReusedExpired);
  EXPECT_EQ(fresh->stats().reused_expired, 1u);
  EXPECT_EQ(fresh->stats().evicted_live, 0u);
  EXPECT_EQ(fresh->CountLive(60), 8u);
  for (uint32_t i = 0; i < 8; ++i) {
    if (i == 6) continue;
    EXPECT_NE(fresh->Lookup(V4Key(i), FlowHash(V4Key(i)), 60, 1000), nullptr) << i;
  }
}

TEST(ConnTableLoad, FullLoadKeepsRecentFlows) {
  constexpr uint32_t kCapacity = 1u << 16;
  constexpr uint32_t kFlows = 4 * kCapacity;
  auto t = ConnTable::Create(kCapacity);
  uint32_t now = 1;
  for (uint32_t i = 0; i < kFlows; ++i, ++now) {
    t->Insert(V4Key(i), FlowHash(V4Key(i)), Value(i), now, now + kLong);
  }
  const uint64_t live = t->CountLive(now);
  EXPECT_LE(live, kCapacity);
  EXPECT_GT(live, kCapacity * 95 / 100);  // all but a few buckets are full
  EXPECT_GE(t->stats().evicted_live, kFlows - kCapacity);
  EXPECT_EQ(t->stats().evicted_live + live, kFlows);

  uint32_t recent_found = 0;
  for (uint32_t i = kFlows - kCapacity / 2; i < kFlows; ++i) {
    const ConnValue* v = t->Lookup(V4Key(i), FlowHash(V4Key(i)), now, now + kLong);
    if (v != nullptr) {
      EXPECT_TRUE(SameValue(*v, Value(i)));
      ++recent_found;
    }
  }
  const double recent_fraction = static_cast<double>(recent_found) / (kCapacity / 2);
  std::printf("full load: live=%lu/%u evicted_live=%lu, last C/2 found: %.4f\n",
              static_cast<unsigned long>(live), kCapacity,
              static_cast<unsigned long>(t->stats().evicted_live), recent_fraction);
  EXPECT_GE(recent_fraction, 0.97);

  // Everything above has expired by `later`. New flows with an 8-tick lifetime, one per tick,
  // never have more than 8 live in any bucket, so each takes an expired (or free) way.
  const uint32_t later = now + kLong + 1;
  const uint64_t evicted_before = t->stats().evicted_live;
  const uint64_t reused_before = t->stats().reused_expired;
  ASSERT_EQ(t->CountLive(later), 0u);
  uint32_t reused = 0, free = 0;
  for (uint32_t i = 0; i < kFlows; ++i) {
    const uint32_t tick = later + i;
    InsertOutcome outcome;
    const FlowKey k = V6Key(i);
    t->Insert(k, FlowHash(k), Value(i), tick, tick + 8, &outcome);
    reused += outcome == InsertOutcome::kReusedExpired;
    free += outcome == InsertOutcome::kFreeWay;
    ASSERT_NE(outcome, InsertOutcome::kEvictedLive) << i;
  }
  EXPECT_EQ(t->stats().evicted_live, evicted_before);
  EXPECT_EQ(t->stats().reused_expired - reused_before, reused);
  // Only the ways phase one left empty were free; every other insert reused an expired way.
  EXPECT_EQ(free, kCapacity - live);
  EXPECT_EQ(reused + free, kFlows);
}

// Returns the fraction of `flows` distinct long-lived flows a table of `capacity` keeps.
double KeptFraction(uint32_t capacity, uint32_t flows) {
  auto t = ConnTable::Create(capacity);
  for (uint32_t i = 0; i < flows; ++i) {
    t->Insert(V4Key(i), FlowHash(V4Key(i)), Value(i), 0, kLong);
  }
  uint32_t kept = 0;
  for (uint32_t i = 0; i < flows; ++i)
    kept += t->Lookup(V4Key(i), FlowHash(V4Key(i)), 0, kLong) != nullptr;
  EXPECT_EQ(kept, t->CountLive(0));
  EXPECT_EQ(kept + t->stats().evicted_live, flows);
  return static_cast<double>(kept) / flows;
}

TEST(ConnTableLoad, LoadFactor) {
  constexpr uint32_t kCapacity = 1u << 16;
  const double full = KeptFraction(kCapacity, kCapacity);
  const double half = KeptFraction(kCapacity, kCapacity / 2);
  const double three_quarters = KeptFraction(kCapacity, kCapacity * 3 / 4);
  std::printf("kept at load 1.0: %.4f, 0.75: %.4f, 0.5: %.4f\n", full, three_quarters, half);
  // Poisson bucket occupancy predicts 86.0% kept at load 1, 94.8% at 0.75, 99.2% at 0.5; the
  // keys and the hash are fixed, so the measured values are too.
  EXPECT_GE(full, 0.84);
  EXPECT_GE(three_quarters, 0.93);
  EXPECT_GE(half, 0.99);
}

// Two tables over separate buffers driven by the same operations stay byte-identical, so an
// entry's offset in its buffer identifies it across the two.
class TwinTables {
 public:
  explicit TwinTables(uint32_t capacity)
      : bytes_(ConnTable::MemoryBytes(capacity)),
        mem_a_(std::aligned_alloc(64, bytes_)),
        mem_b_(std::aligned_alloc(64, bytes_)),
        a_(mem_a_, capacity),
        b_(mem_b_, capacity) {}
  ~TwinTables() {
    std::free(mem_a_);
    std::free(mem_b_);
  }
  ConnTable& a() { return a_; }
  ConnTable& b() { return b_; }
  ptrdiff_t OffsetA(const ConnValue* v) const { return Offset(v, mem_a_); }
  ptrdiff_t OffsetB(const ConnValue* v) const { return Offset(v, mem_b_); }
  bool SameBytes() const { return std::memcmp(mem_a_, mem_b_, bytes_) == 0; }

 private:
  static ptrdiff_t Offset(const ConnValue* v, const void* mem) {
    return v == nullptr ? -1 : reinterpret_cast<const char*>(v) - static_cast<const char*>(mem);
  }
  size_t bytes_;
  void* mem_a_;
  void* mem_b_;
  ConnTable a_;
  ConnTable b_;
};

TEST(ConnTableBulk, LookupBulkMatchesSingleLookups) {
  constexpr uint32_t kCapacity = 4096;
  TwinTables twins(kCapacity);
  std::mt19937 rng(12345);
  // 3000 flows, expiring throughout the lookup rounds, so that hits, expired and absent keys mix.
  constexpr uint32_t kPresent = 3000;
  constexpr uint32_t kUniverse = 4000;
  std::vector<FlowKey> keys(kUniverse);
  std::vector<uint64_t> hashes(kUniverse);
  for (uint32_t i = 0; i < kUniverse; ++i) {
    keys[i] = (i % 2) ? V6Key(i) : V4Key(i);
    hashes[i] = FlowHash(keys[i]);
  }
  uint32_t now = 1000;
  for (uint32_t i = 0; i < kPresent; ++i) {
    const uint32_t expires = now + rng() % 4000;
    twins.a().Insert(keys[i], hashes[i], Value(i), now, expires);
    twins.b().Insert(keys[i], hashes[i], Value(i), now, expires);
  }
  ASSERT_TRUE(twins.SameBytes());
  now = 2000;  // a quarter of the present flows have expired
  uint64_t hits = 0, misses = 0;
  for (uint32_t round = 0; round < 400; ++round) {
    const uint32_t n = 1 + round % 40;
    std::vector<const FlowKey*> batch(n);
    std::vector<uint64_t> batch_hashes(n);
    std::vector<uint32_t> batch_expires(n);
    for (uint32_t i = 0; i < n; ++i) {
      // Occasionally repeat an earlier key of the batch, and occasionally pass an expiry that
      // ends the flow at once, so that order within a burst matters.
      const uint32_t idx = (i > 0 && rng() % 8 == 0)
                               ? static_cast<uint32_t>(batch[rng() % i] - keys.data())
                               : rng() % kUniverse;
      batch[i] = &keys[idx];
      batch_hashes[i] = hashes[idx];
      batch_expires[i] = rng() % 16 == 0 ? now : now + 1 + rng() % 500;
    }
    std::vector<ConnValue*> bulk(n, reinterpret_cast<ConnValue*>(1));
    twins.a().LookupBulk(batch.data(), batch_hashes.data(), batch_expires.data(), n, now,
                         bulk.data());
    for (uint32_t i = 0; i < n; ++i) {
      ConnValue* single = twins.b().Lookup(*batch[i], batch_hashes[i], now, batch_expires[i]);
      ASSERT_EQ(twins.OffsetA(bulk[i]), twins.OffsetB(single)) << "round " << round << " i " << i;
      (single != nullptr ? hits : misses)++;
    }
    ASSERT_TRUE(twins.SameBytes()) << "round " << round;  // same expiry refreshes
    now += 3;
  }
  std::printf("bulk vs single: %lu hits, %lu misses\n", static_cast<unsigned long>(hits),
              static_cast<unsigned long>(misses));
  EXPECT_GT(hits, 1000u);
  EXPECT_GT(misses, 1000u);
}

TEST(ConnTable, Erase) {
  auto t = ConnTable::Create(1024);
  for (uint32_t i = 0; i < 10; ++i) t->Insert(V4Key(i), FlowHash(V4Key(i)), Value(i), 0, 100);
  EXPECT_TRUE(t->Erase(V4Key(3), FlowHash(V4Key(3))));
  EXPECT_EQ(t->Lookup(V4Key(3), FlowHash(V4Key(3)), 1, 100), nullptr);
  EXPECT_FALSE(t->Erase(V4Key(3), FlowHash(V4Key(3))));
  EXPECT_FALSE(t->Erase(V4Key(50), FlowHash(V4Key(50))));
  EXPECT_EQ(t->CountLive(1), 9u);
  EXPECT_EQ(t->stats().erased, 1u);
  // An expired entry is still present for Erase.
  EXPECT_EQ(t->Lookup(V4Key(4), FlowHash(V4Key(4)), 150, 300), nullptr);
  EXPECT_TRUE(t->Erase(V4Key(4), FlowHash(V4Key(4))));
  EXPECT_EQ(t->stats().erased, 2u);
  InsertOutcome outcome;
  t->Insert(V4Key(3), FlowHash(V4Key(3)), Value(33), 200, 300, &outcome);
  EXPECT_EQ(outcome, InsertOutcome::kFreeWay);
  EXPECT_THAT(t->Lookup(V4Key(3), FlowHash(V4Key(3)), 201, 300), HasValue(Value(33)));
  for (uint32_t i : {0u, 1u, 2u, 5u, 9u}) {
    EXPECT_NE(t->Lookup(V4Key(i), FlowHash(V4Key(i)), 50, 100), nullptr) << i;
  }

  // In a full bucket, erasing one entry makes room without evicting.
  auto one = ConnTable::Create(8);
  for (uint32_t i = 0; i < 8; ++i) one->Insert(V4Key(i), FlowHash(V4Key(i)), Value(i), 0, kLong);
  EXPECT_TRUE(one->Erase(V4Key(2), FlowHash(V4Key(2))));
  one->Insert(V4Key(8), FlowHash(V4Key(8)), Value(8), 0, kLong, &outcome);
  EXPECT_EQ(outcome, InsertOutcome::kFreeWay);
  EXPECT_EQ(one->stats().evicted_live, 0u);
  EXPECT_EQ(one->CountLive(0), 8u);
}

TEST(ConnTable, ForEachLiveVisitsExactlyTheLiveSet) {
  auto t = ConnTable::Create(4096);
  std::mt19937 rng(7);
  const uint32_t now = 5000;
  const auto bytes = [](const FlowKey& k) {
    return std::string(reinterpret_cast<const char*>(&k), sizeof(k));
  };
  std::map<std::string, std::pair<uint32_t, uint32_t>> expected;  // key -> (value id, expiry)
  for (uint32_t i = 0; i < 1500; ++i) {
    const FlowKey k = (i % 3 == 0) ? V6Key(i) : V4Key(i);
    const uint32_t expires = 4000 + rng() % 2000;
    t->Insert(k, FlowHash(k), Value(i), 3000, expires);
    if (expires > now) expected[bytes(k)] = {i, expires};
  }
  for (uint32_t i = 0; i < 1500; i += 10) {
    const FlowKey k = (i % 3 == 0) ? V6Key(i) : V4Key(i);
    ASSERT_TRUE(t->Erase(k, FlowHash(k)));
    expected.erase(bytes(k));
  }
  ASSERT_EQ(t->stats().evicted_live, 0u);
  std::map<std::string, std::pair<uint32_t, uint32_t>> visited;
  t->ForEachLive(now, [&](const FlowKey& k, const ConnValue& v, uint32_t expires) {
    EXPECT_TRUE(visited.emplace(bytes(k), std::make_pair(v.backend, expires)).second)
        << "visited twice: " << k.ToString();
    EXPECT_TRUE(SameValue(v, Value(v.backend)));
  });
  EXPECT_EQ(visited, expected);
  EXPECT_EQ(t->CountLive(now), expected.size());
  EXPECT_GT(expected.size(), 500u);
}

TEST(ConnTable, ExternalMemoryIsClearedUsedAndNotFreed) {
  constexpr uint32_t kCapacity = 500;  // rounds to 512
  const size_t bytes = ConnTable::MemoryBytes(kCapacity);
  void* mem = std::aligned_alloc(64, bytes);
  ASSERT_NE(mem, nullptr);
  std::memset(mem, 0xab, bytes);  // garbage must not show up as entries
  {
    ConnTable t(mem, kCapacity);
    EXPECT_EQ(t.capacity(), 512u);
    EXPECT_EQ(t.CountLive(0), 0u);
    EXPECT_EQ(t.CountLive(0x80000000u), 0u);
    for (uint32_t i = 0; i < 200; ++i) {
      ConnValue* v = t.Insert(V4Key(i), FlowHash(V4Key(i)), Value(i), 0, kLong);
      const auto* p = reinterpret_cast<const char*>(v);
      ASSERT_GE(p, static_cast<const char*>(mem));
      ASSERT_LE(p + sizeof(ConnValue), static_cast<const char*>(mem) + bytes);
    }
    for (uint32_t i = 0; i < 200; ++i) {
      EXPECT_THAT(t.Lookup(V4Key(i), FlowHash(V4Key(i)), 0, kLong), HasValue(Value(i)));
    }
  }
  // Still ours after the table is gone (ASan reports a use-after-free or double free if not).
  std::memset(mem, 0, bytes);
  std::free(mem);
}

}  // namespace
}  // namespace lb
