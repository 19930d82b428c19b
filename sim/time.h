// Virtual time for the simulator.
//
// Time is a count of nanoseconds since the start of a simulation; Duration
// is a difference of two times. Both are plain 64-bit integers so that they
// hash, compare and serialise without surprises. Nothing here reads a real
// clock: the only source of "now" is the Simulator that owns the run.
#pragma once

#include <cstdint>

namespace paylab::sim {

using Time = int64_t;      // ns since the simulation started
using Duration = int64_t;  // ns

inline constexpr Duration kNanosecond = 1;
inline constexpr Duration kMicrosecond = 1'000;
inline constexpr Duration kMillisecond = 1'000'000;
inline constexpr Duration kSecond = 1'000'000'000;
inline constexpr Duration kMinute = 60 * kSecond;
inline constexpr Duration kHour = 60 * kMinute;
inline constexpr Duration kDay = 24 * kHour;

// Converts a (possibly fractional) count of seconds or milliseconds from a
// scenario file into a Duration, rounding to the nearest nanosecond.
constexpr Duration FromSeconds(double s) {
  return static_cast<Duration>(s * 1e9 + (s >= 0 ? 0.5 : -0.5));
}
constexpr Duration FromMillis(double ms) {
  return static_cast<Duration>(ms * 1e6 + (ms >= 0 ? 0.5 : -0.5));
}
constexpr double ToSeconds(Duration d) { return static_cast<double>(d) / 1e9; }

}  // namespace paylab::sim
