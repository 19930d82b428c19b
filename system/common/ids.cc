// Snowflake-style ID generator: packing, unpacking, and the lease that makes restarts safe.
//
// Contract (see ids.h): Next() never returns a duplicate for one (system, worker) pair, whatever
// now_ms does, and across restarts given the last persisted reservation. It never reads a clock
// and never waits. Programmer errors fail a PAYLAB_CHECK (sim/check.h) in every build type.
#include "system/common/ids.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "sim/check.h"

namespace paylab::system {
namespace {

constexpr uint64_t Mask(int bits) { return (uint64_t{1} << bits) - 1; }

}  // namespace

DecodedId DecodeId(uint64_t id) {
  // Read path: an ID with the top bit set was not made by EncodeId().
  PAYLAB_CHECK((id >> 63) == 0);
  DecodedId d;
  d.timestamp_ms =
      kIdEpochMs + static_cast<int64_t>((id >> kIdTimestampShift) & Mask(kIdTimestampBits));
  d.worker = static_cast<uint32_t>((id >> kIdWorkerShift) & Mask(kIdWorkerBits));
  d.sequence = static_cast<uint32_t>((id >> kIdSequenceShift) & Mask(kIdSequenceBits));
  d.system = static_cast<IdSystem>(id & Mask(kIdSystemBits));
  return d;
}

uint64_t EncodeId(const DecodedId& d) {
  PAYLAB_CHECK(d.timestamp_ms >= kIdEpochMs);
  PAYLAB_CHECK(d.timestamp_ms - kIdEpochMs <= kIdTimestampMaxMs);
  PAYLAB_CHECK(d.worker < kIdWorkerCount);
  PAYLAB_CHECK(d.sequence < kIdSequenceCount);
  const auto system_bit = static_cast<uint8_t>(d.system);
  PAYLAB_CHECK(system_bit <= Mask(kIdSystemBits));
  const auto offset_ms = static_cast<uint64_t>(d.timestamp_ms - kIdEpochMs);
  return (offset_ms << kIdTimestampShift) | (uint64_t{d.worker} << kIdWorkerShift) |
         (uint64_t{d.sequence} << kIdSequenceShift) | uint64_t{system_bit};
}

IdGenerator::IdGenerator(IdSystem system, uint32_t worker, int64_t reserved_until_ms,
                         std::function<void(int64_t)> persist, int64_t lease_ms)
    : system_(system),
      worker_(worker),
      persist_(std::move(persist)),
      lease_ms_(lease_ms),
      reserved_until_ms_(reserved_until_ms),
      // An earlier incarnation may have used every timestamp <= the reservation, so the
      // reserved millisecond counts as used up: the next ID takes a strictly later timestamp.
      last_timestamp_ms_(reserved_until_ms),
      next_sequence_(kIdSequenceCount) {
  PAYLAB_CHECK(static_cast<uint8_t>(system) <= Mask(kIdSystemBits));
  PAYLAB_CHECK(worker < kIdWorkerCount);
  PAYLAB_CHECK(lease_ms > 0);
  // Bounding the lease keeps timestamp + lease_ms far from int64_t overflow.
  PAYLAB_CHECK(lease_ms <= kIdTimestampMaxMs);
  PAYLAB_CHECK(persist_ != nullptr);
}

uint64_t IdGenerator::Next(int64_t now_ms) {
  PAYLAB_CHECK(now_ms >= kIdEpochMs);

  int64_t timestamp_ms;
  uint32_t sequence;
  if (now_ms > last_timestamp_ms_ || (trust_clock_steps_ && now_ms < last_timestamp_ms_)) {
    timestamp_ms = now_ms;
    sequence = 0;
  } else if (next_sequence_ < kIdSequenceCount) {
    // The clock stood still or stepped back: stay on the last timestamp.
    timestamp_ms = last_timestamp_ms_;
    sequence = next_sequence_;
  } else {
    // The millisecond is used up: borrow the next one rather than wait for the clock. Checking
    // for room first also keeps the + 1 from overflowing on a corrupt reservation.
    PAYLAB_CHECK(last_timestamp_ms_ < kIdEpochMs + kIdTimestampMaxMs);
    timestamp_ms = last_timestamp_ms_ + 1;
    sequence = 0;
  }
  PAYLAB_CHECK(timestamp_ms - kIdEpochMs <= kIdTimestampMaxMs);

  if (timestamp_ms > reserved_until_ms_) {
    // Persist before the ID escapes, so a restart always resumes beyond every issued timestamp.
    const int64_t reservation_ms = timestamp_ms + lease_ms_;
    persist_(reservation_ms);
    reserved_until_ms_ = reservation_ms;
  }
  PAYLAB_CHECK(timestamp_ms <= reserved_until_ms_);

  last_timestamp_ms_ = timestamp_ms;
  next_sequence_ = sequence + 1;
  return EncodeId(DecodedId{timestamp_ms, worker_, sequence, system_});
}

}  // namespace paylab::system
