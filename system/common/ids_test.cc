// Unit tests for the snowflake-style ID generator (system/common/ids.h).
//
// Exercises the bit layout and its decoding, the system bit (wallet even, point odd), ordering
// within one generator, a wall clock that steps back by a millisecond or by hours, more than 4096
// IDs in one millisecond, and a restart from the persisted reservation while the clock is behind.
// The generator must survive all of these without issuing a duplicate, and must write to its
// durable store only when an ID crosses the current reservation. Programmer errors must abort.
#include "system/common/ids.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <vector>

#include "sim/check.h"

namespace paylab::system {
namespace {

constexpr int64_t kHourMs = 60 * 60 * 1000;
// 2026-03-01T00:00:00Z, an arbitrary "now" well after the epoch.
constexpr int64_t kNowMs = kIdEpochMs + 59 * 24 * kHourMs;

// A stand-in for the caller's durable store: remembers every reservation written.
struct Store {
  std::vector<int64_t> writes;
  int64_t last() const { return writes.empty() ? 0 : writes.back(); }
  auto Persist() {
    return [this](int64_t reserved_until_ms) { writes.push_back(reserved_until_ms); };
  }
};

TEST(DecodeIdTest, FieldsSitWhereTheLayoutSays) {
  const DecodedId d{kIdEpochMs + 1, 1, 1, IdSystem::kPoint};
  const uint64_t expected = (uint64_t{1} << 22) | (uint64_t{1} << 13) | (uint64_t{1} << 1) | 1;
  EXPECT_EQ(EncodeId(d), expected);
  EXPECT_EQ(DecodeId(expected), d);
}

TEST(DecodeIdTest, RoundTripsExtremes) {
  const std::vector<DecodedId> cases = {
      {kIdEpochMs, 0, 0, IdSystem::kWallet},
      {kIdEpochMs + kIdTimestampMaxMs, kIdWorkerCount - 1, kIdSequenceCount - 1, IdSystem::kPoint},
      {kNowMs, 300, 17, IdSystem::kWallet},
      {kNowMs, 511, 4095, IdSystem::kPoint},
  };
  for (const DecodedId& d : cases) {
    const uint64_t id = EncodeId(d);
    EXPECT_EQ(id >> 63, 0u);
    EXPECT_EQ(DecodeId(id), d);
  }
  const DecodedId all_ones{kIdEpochMs + kIdTimestampMaxMs, 511, 4095, IdSystem::kPoint};
  EXPECT_EQ(EncodeId(all_ones), (uint64_t{1} << 63) - 1);
}

TEST(DecodeIdTest, GeneratedIdsDecodeToTheirInputs) {
  Store store;
  IdGenerator gen(IdSystem::kPoint, 42, 0, store.Persist());
  const DecodedId first = DecodeId(gen.Next(kNowMs));
  EXPECT_EQ(first, (DecodedId{kNowMs, 42, 0, IdSystem::kPoint}));
  const DecodedId second = DecodeId(gen.Next(kNowMs));
  EXPECT_EQ(second, (DecodedId{kNowMs, 42, 1, IdSystem::kPoint}));
  const DecodedId later = DecodeId(gen.Next(kNowMs + 5));
  EXPECT_EQ(later, (DecodedId{kNowMs + 5, 42, 0, IdSystem::kPoint}));
}

TEST(IdGeneratorTest, WalletIdsAreEvenAndPointIdsOdd) {
  Store wallet_store;
  Store point_store;
  // Same worker number on purpose: only the system bit keeps the two apart.
  IdGenerator wallet(IdSystem::kWallet, 7, 0, wallet_store.Persist());
  IdGenerator point(IdSystem::kPoint, 7, 0, point_store.Persist());
  std::set<uint64_t> seen;
  for (int i = 0; i < 10'000; ++i) {
    const int64_t now_ms = kNowMs + i / 3;
    const uint64_t w = wallet.Next(now_ms);
    const uint64_t p = point.Next(now_ms);
    EXPECT_EQ(w % 2, 0u);
    EXPECT_EQ(p % 2, 1u);
    EXPECT_EQ(DecodeId(w).system, IdSystem::kWallet);
    EXPECT_EQ(DecodeId(p).system, IdSystem::kPoint);
    EXPECT_TRUE(seen.insert(w).second);
    EXPECT_TRUE(seen.insert(p).second);
  }
}

TEST(IdGeneratorTest, IdsIncreaseWithinOneGenerator) {
  Store store;
  IdGenerator gen(IdSystem::kWallet, 3, 0, store.Persist());
  uint64_t previous = 0;
  for (int i = 0; i < 5'000; ++i) {
    const uint64_t id = gen.Next(kNowMs + i / 7);
    EXPECT_GT(id, previous);
    previous = id;
  }
}

// Drives one generator through a list of clock readings, checking uniqueness and order.
void ExpectUniqueAndIncreasing(IdGenerator& gen, const std::vector<int64_t>& clock_ms,
                               std::set<uint64_t>& seen, uint64_t& previous) {
  for (int64_t now_ms : clock_ms) {
    const uint64_t id = gen.Next(now_ms);
    EXPECT_GT(id, previous) << "now_ms=" << now_ms;
    EXPECT_TRUE(seen.insert(id).second) << "duplicate at now_ms=" << now_ms;
    previous = id;
  }
}

TEST(IdGeneratorTest, ClockSteppingBackOneMillisecondGivesNoDuplicate) {
  Store store;
  IdGenerator gen(IdSystem::kWallet, 1, 0, store.Persist());
  std::set<uint64_t> seen;
  uint64_t previous = 0;
  ExpectUniqueAndIncreasing(gen,
                            {kNowMs, kNowMs + 1, kNowMs + 1, kNowMs, kNowMs, kNowMs + 1, kNowMs + 2,
                             kNowMs + 1, kNowMs + 3},
                            seen, previous);
  // While the clock was behind, the generator stayed on its last timestamp.
  EXPECT_EQ(DecodeId(previous).timestamp_ms, kNowMs + 3);
}

TEST(IdGeneratorTest, ClockSteppingBackHoursGivesNoDuplicate) {
  Store store;
  IdGenerator gen(IdSystem::kPoint, 1, 0, store.Persist());
  std::set<uint64_t> seen;
  uint64_t previous = 0;
  std::vector<int64_t> clock_ms;
  for (int i = 0; i < 100; ++i) {
    clock_ms.push_back(kNowMs + 5 * kHourMs + i);
  }
  // NTP steps the clock back five hours, then it runs forward again through the same range.
  for (int i = 0; i < 5 * kHourMs + 200; i += 9'973) {
    clock_ms.push_back(kNowMs + i);
  }
  ExpectUniqueAndIncreasing(gen, clock_ms, seen, previous);
  EXPECT_EQ(DecodeId(previous).timestamp_ms, kNowMs + 5 * kHourMs + 99);
  // Once the clock passes the last timestamp used, IDs follow it again.
  ExpectUniqueAndIncreasing(gen, {kNowMs + 6 * kHourMs}, seen, previous);
  EXPECT_EQ(DecodeId(previous).timestamp_ms, kNowMs + 6 * kHourMs);
}

TEST(IdGeneratorTest, SequenceExhaustionBorrowsTheNextMillisecond) {
  Store store;
  IdGenerator gen(IdSystem::kWallet, 9, 0, store.Persist());
  std::set<uint64_t> seen;
  uint64_t previous = 0;
  const std::vector<int64_t> same_ms(3 * kIdSequenceCount + 10, kNowMs);
  ExpectUniqueAndIncreasing(gen, same_ms, seen, previous);
  EXPECT_EQ(seen.size(), same_ms.size());
  EXPECT_EQ(DecodeId(previous), (DecodedId{kNowMs + 3, 9, 9, IdSystem::kWallet}));
  // The clock catches up with the borrowed milliseconds, then a step back follows: still unique.
  ExpectUniqueAndIncreasing(gen, {kNowMs + 1, kNowMs + 3, kNowMs + 4, kNowMs + 2}, seen, previous);
  EXPECT_EQ(DecodeId(previous), (DecodedId{kNowMs + 4, 9, 1, IdSystem::kWallet}));
}

TEST(IdGeneratorTest, RestartWithPersistedReservationAndClockBehindGivesNoDuplicate) {
  Store store;
  std::set<uint64_t> seen;
  uint64_t previous = 0;
  {
    IdGenerator first(IdSystem::kWallet, 5, 0, store.Persist(), /*lease_ms=*/1'000);
    std::vector<int64_t> clock_ms;
    for (int i = 0; i < 20'000; ++i) {
      clock_ms.push_back(kNowMs + i / 10);  // ~2 s of traffic
    }
    ExpectUniqueAndIncreasing(first, clock_ms, seen, previous);
    EXPECT_EQ(first.reserved_until_ms(), store.last());
  }
  const int64_t reservation_ms = store.last();
  ASSERT_GE(reservation_ms, DecodeId(previous).timestamp_ms);

  // The node restarts with its clock an hour behind.
  IdGenerator second(IdSystem::kWallet, 5, reservation_ms, store.Persist(), /*lease_ms=*/1'000);
  uint64_t second_previous = 0;
  std::vector<int64_t> clock_ms;
  for (int i = 0; i < 20'000; ++i) {
    clock_ms.push_back(kNowMs - kHourMs + i / 10);
  }
  ExpectUniqueAndIncreasing(second, clock_ms, seen, second_previous);
  EXPECT_GT(DecodeId(second_previous).timestamp_ms, reservation_ms);
  EXPECT_GT(second_previous, previous);

  // A second restart, now from the reservation the second incarnation wrote.
  IdGenerator third(IdSystem::kWallet, 5, store.last(), store.Persist(), /*lease_ms=*/1'000);
  uint64_t third_previous = 0;
  ExpectUniqueAndIncreasing(third, std::vector<int64_t>(5'000, kNowMs), seen, third_previous);
  EXPECT_EQ(seen.size(), 45'000u);
}

TEST(IdGeneratorTest, PersistsOnlyWhenTheReservationIsCrossed) {
  Store store;
  IdGenerator gen(IdSystem::kPoint, 2, 0, store.Persist(), /*lease_ms=*/1'000);
  EXPECT_EQ(gen.reserved_until_ms(), 0);
  EXPECT_TRUE(store.writes.empty());

  gen.Next(kNowMs);
  EXPECT_EQ(store.writes, (std::vector<int64_t>{kNowMs + 1'000}));
  EXPECT_EQ(gen.reserved_until_ms(), kNowMs + 1'000);

  // Everything up to and including the reservation needs no write, nor does a clock step back.
  for (int64_t now_ms = kNowMs; now_ms <= kNowMs + 1'000; ++now_ms) {
    gen.Next(now_ms);
  }
  gen.Next(kNowMs - kHourMs);
  EXPECT_EQ(store.writes.size(), 1u);

  gen.Next(kNowMs + 1'001);
  EXPECT_EQ(store.writes, (std::vector<int64_t>{kNowMs + 1'000, kNowMs + 2'001}));

  // Exhausting the sequence on the reservation's last millisecond crosses it logically.
  for (uint32_t i = 0; i < kIdSequenceCount; ++i) {
    gen.Next(kNowMs + 2'001);
  }
  EXPECT_EQ(store.writes.size(), 2u);
  const uint64_t id = gen.Next(kNowMs + 2'001);
  EXPECT_EQ(DecodeId(id).timestamp_ms, kNowMs + 2'002);
  EXPECT_EQ(store.writes.size(), 3u);
  EXPECT_EQ(store.writes.back(), kNowMs + 3'002);
  EXPECT_EQ(gen.reserved_until_ms(), kNowMs + 3'002);
}

TEST(IdGeneratorTest, RestartedGeneratorPersistsBeforeItsFirstId) {
  Store store;
  IdGenerator gen(IdSystem::kWallet, 2, kNowMs + 500, store.Persist(), /*lease_ms=*/1'000);
  // The clock is behind the reservation, so the first ID borrows the millisecond after it.
  const uint64_t id = gen.Next(kNowMs);
  EXPECT_EQ(DecodeId(id).timestamp_ms, kNowMs + 501);
  EXPECT_EQ(store.writes, (std::vector<int64_t>{kNowMs + 1'501}));
}

TEST(IdGeneratorCheckTest, WorkerOutOfRangeFails) {
  EXPECT_THROW(IdGenerator(IdSystem::kWallet, kIdWorkerCount, 0, [](int64_t) {}),
               sim::CheckFailure);
}

TEST(IdGeneratorCheckTest, NonPositiveLeaseFails) {
  auto ignore = [](int64_t) {};
  EXPECT_THROW(IdGenerator(IdSystem::kWallet, 0, 0, ignore, /*lease_ms=*/0), sim::CheckFailure);
}

TEST(IdGeneratorCheckTest, TimeBeforeTheEpochFails) {
  IdGenerator gen(IdSystem::kWallet, 0, 0, [](int64_t) {});
  EXPECT_THROW(gen.Next(kIdEpochMs - 1), sim::CheckFailure);
}

TEST(IdGeneratorCheckTest, TimestampOverflowing41BitsFails) {
  IdGenerator gen(IdSystem::kPoint, 0, 0, [](int64_t) {});
  gen.Next(kIdEpochMs + kIdTimestampMaxMs);  // the last representable millisecond is fine
  EXPECT_THROW(gen.Next(kIdEpochMs + kIdTimestampMaxMs + 1), sim::CheckFailure);
}

TEST(IdGeneratorCheckTest, ExhaustingTheLastMillisecondFails) {
  IdGenerator gen(IdSystem::kPoint, 0, 0, [](int64_t) {});
  for (uint32_t i = 0; i < kIdSequenceCount; ++i) {
    gen.Next(kIdEpochMs + kIdTimestampMaxMs);
  }
  EXPECT_THROW(gen.Next(kIdEpochMs + kIdTimestampMaxMs), sim::CheckFailure);
}

TEST(DecodeIdCheckTest, TopBitSetFails) {
  EXPECT_THROW(DecodeId(uint64_t{1} << 63), sim::CheckFailure);
}

}  // namespace
}  // namespace paylab::system
