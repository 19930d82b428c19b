// Deterministic randomness for a simulation.
//
// A run has one seed. Each component draws from its own named stream,
// derived from (seed, name), so adding a draw in one component never shifts
// the numbers another component sees. The generator is xoshiro256** seeded
// through SplitMix64; distributions are implemented here rather than taken
// from <random>, whose algorithms differ between standard libraries, so a
// seed means the same run everywhere.
//
// Never seeded from the operating system's entropy or from a clock.
#pragma once

#include <cstdint>
#include <string_view>

namespace paylab::sim {

// 64-bit FNV-1a, used to turn stream names into seeds (stable across builds).
constexpr uint64_t HashName(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

class Rng {
 public:
  // The stream named `name` of the run seeded with `seed`.
  Rng(uint64_t seed, std::string_view name);
  explicit Rng(uint64_t raw_seed);

  uint64_t NextU64();
  // Uniform in [lo, hi], both inclusive. REQUIRES: lo <= hi.
  int64_t UniformInt(int64_t lo, int64_t hi);
  // Uniform in [0, 1).
  double UniformDouble();
  // True with probability p (p <= 0 never draws true, p >= 1 always does).
  bool Bernoulli(double p);
  // Exponentially distributed with the given mean.
  double Exponential(double mean);
  // Standard normal (Box-Muller).
  double Normal();
  // Log-normal with the given median and shape sigma.
  double LogNormal(double median, double sigma);

 private:
  uint64_t s_[4];
};

}  // namespace paylab::sim
