// Snowflake-style 64-bit ID generator shared by the wallet and the point service.
//
// An ID is, most significant bit first: 1 zero bit | 41 bits of milliseconds since kIdEpochMs |
// 9 bits of worker | 12 bits of sequence | 1 bit of system. The lowest bit names the issuing
// system (wallet 0, point 1), so IDs from the two systems never collide even when they share
// worker numbers. Within one (system, worker) pair an IdGenerator never hands out the same ID
// twice, whatever the node's clock does and across restarts, provided the caller persists the
// reservations it is given and passes the last one back on restart.
//
// Determinism: the generator never reads a clock, never waits, and holds no global state; the
// caller supplies "now" on every call. The same inputs always give the same IDs.
// Thread safety: none; a generator belongs to one node's single-threaded event loop.
// Failures: programmer errors (worker out of range, a time before kIdEpochMs, a timestamp that no
// longer fits in 41 bits) print the failed condition and std::abort() in every build type; they
// do not depend on NDEBUG.
#pragma once

#include <cstdint>
#include <functional>

namespace paylab::system {

// The system that issued an ID, stored in its lowest bit.
enum class IdSystem : uint8_t { kWallet = 0, kPoint = 1 };

// 2026-01-01T00:00:00Z in Unix milliseconds; IDs count milliseconds from here.
inline constexpr int64_t kIdEpochMs = 1'767'225'600'000;

inline constexpr int kIdTimestampBits = 41;
inline constexpr int kIdWorkerBits = 9;
inline constexpr int kIdSequenceBits = 12;
inline constexpr int kIdSystemBits = 1;

inline constexpr int kIdSequenceShift = kIdSystemBits;
inline constexpr int kIdWorkerShift = kIdSequenceShift + kIdSequenceBits;
inline constexpr int kIdTimestampShift = kIdWorkerShift + kIdWorkerBits;
static_assert(kIdTimestampShift + kIdTimestampBits == 63, "the top bit of an ID stays zero");

inline constexpr uint32_t kIdWorkerCount = uint32_t{1} << kIdWorkerBits;      // 512
inline constexpr uint32_t kIdSequenceCount = uint32_t{1} << kIdSequenceBits;  // 4096
// The largest offset from kIdEpochMs that fits in an ID (about 69.7 years).
inline constexpr int64_t kIdTimestampMaxMs = (int64_t{1} << kIdTimestampBits) - 1;

// The fields of an ID. timestamp_ms is Unix milliseconds (kIdEpochMs already added back), so it
// compares directly with the now_ms that was passed to IdGenerator::Next().
struct DecodedId {
  int64_t timestamp_ms;
  uint32_t worker;
  uint32_t sequence;
  IdSystem system;

  friend bool operator==(const DecodedId&, const DecodedId&) = default;
};

// Splits an ID into its fields.
// REQUIRES: the top bit of id is zero (every ID this generator issues satisfies this).
DecodedId DecodeId(uint64_t id);

// Packs fields into an ID; the inverse of DecodeId().
// REQUIRES: kIdEpochMs <= d.timestamp_ms <= kIdEpochMs + kIdTimestampMaxMs,
//           d.worker < kIdWorkerCount, d.sequence < kIdSequenceCount.
uint64_t EncodeId(const DecodedId& d);

// Issues IDs for one (system, worker) pair. IDs from one instance strictly increase.
//
// Restart safety rests on a lease: before handing out an ID whose timestamp exceeds the current
// reservation, the generator calls persist(timestamp + lease_ms) synchronously, and every ID it
// issues afterwards has a timestamp <= that reservation until the next call. A new instance built
// with the last persisted reservation R only issues timestamps > R, so it cannot repeat an ID of
// any earlier incarnation even if the clock has stepped back. A longer lease means fewer writes
// to the durable store but a larger forward jump of the ID timestamps after a restart.
//
// Not copyable or movable: two live copies of one generator would issue the same IDs.
class IdGenerator {
 public:
  // persist(reserved_until_ms) is called synchronously whenever the generator is about to hand out
  // an ID whose timestamp exceeds the current reservation; the caller writes the value to its
  // durable store (in the same transaction that uses the ID). On restart the caller passes the
  // last persisted value back as reserved_until_ms; a fresh worker may pass any value below
  // kIdEpochMs, e.g. 0.
  // REQUIRES: worker < kIdWorkerCount, 0 < lease_ms <= kIdTimestampMaxMs, persist is not empty.
  IdGenerator(IdSystem system, uint32_t worker, int64_t reserved_until_ms,
              std::function<void(int64_t)> persist, int64_t lease_ms = 10'000);

  IdGenerator(const IdGenerator&) = delete;
  IdGenerator& operator=(const IdGenerator&) = delete;

  // Returns a new ID. now_ms is the node's wall-clock reading in Unix ms; it may step backwards,
  // in which case the generator keeps using its last timestamp. When the 4096 sequence numbers
  // of a millisecond are used up, the timestamp advances logically by 1 ms (it never waits).
  // Never returns a duplicate, whatever now_ms does, and across restarts as long as persisted
  // reservations are passed back.
  // REQUIRES: now_ms >= kIdEpochMs; the issued timestamp fits in 41 bits.
  uint64_t Next(int64_t now_ms);

  // DEFECT no_clock_rollback_guard: when the clock steps back, take its reading anyway and
  // restart the sequence, reissuing IDs of timestamps already used. Off by default.
  void set_trust_clock_steps(bool on) { trust_clock_steps_ = on; }

  // The last value passed to persist(), or the value given to the constructor if none yet.
  int64_t reserved_until_ms() const { return reserved_until_ms_; }

 private:
  const IdSystem system_;
  const uint32_t worker_;
  const std::function<void(int64_t)> persist_;
  const int64_t lease_ms_;
  int64_t reserved_until_ms_;
  // The timestamp of the last ID issued (or the initial reservation, which counts as used) and
  // the sequence number the next ID at that timestamp would take; kIdSequenceCount means the
  // millisecond is used up.
  int64_t last_timestamp_ms_;
  uint32_t next_sequence_;
  bool trust_clock_steps_ = false;
};

}  // namespace paylab::system
