// Sweeps: one scenario under many seeds, in parallel, resumable.
//
// RunSweep runs the seeds of [first, last] that belong to its shard (seed
// index i = seed - first belongs to shard K of N when i % N == K - 1),
// skipping every seed the results file already holds for the same sweep,
// on `jobs` threads. Each simulation is single-threaded and shares nothing
// with the others (sim/simulator.h), so a seed gives the same trace hash
// whichever thread runs it. Each finished seed is appended to the results
// file at once (reports/sweep_results.h): a sweep killed part-way and
// started again runs only the seeds it had not finished.
//
// Threads live here and in no simulator or system code. The wall clock is
// read for progress figures only.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "reports/sweep_results.h"
#include "harness/schema/scenario.h"
#include "system/common/defects.h"

namespace paylab::scenarios {

struct SweepOptions {
  std::string scenario_file;  // as the user gave it, for replay commands
  uint64_t first = 0;         // seeds first..last, inclusive
  uint64_t last = 0;
  int64_t shard_index = 1;  // K of K/N, 1-based
  int64_t shard_count = 1;  // N
  int64_t jobs = 1;
  system::DefectSet defects;
  bool swarm = false;
  std::string results_path;  // "" = keep results in memory only (no resume)
  // Stop starting seeds once this many have failed (0 = run them all);
  // seeds already running finish and are recorded.
  int64_t max_failures = 0;
};

struct SweepProgress {
  int64_t total = 0;    // seeds of this shard
  int64_t done = 0;     // finished, including those found in the results file
  int64_t skipped = 0;  // found in the results file
  int64_t failures = 0;
  double elapsed_s = 0;
  double rate_per_s = 0;  // seeds run per wall second in this invocation
  double eta_s = 0;
  const reports::SeedRecord* last = nullptr;  // the seed just finished; null at the start
};

struct SweepOutcome {
  std::string error;  // "" or a one-line bad-input error (nothing ran)
  // Every record of this shard's seeds: from the file and from this run, by seed.
  std::vector<reports::SeedRecord> records;
  int64_t skipped = 0;     // seeds found already done in the results file
  int64_t ran = 0;         // seeds run now
  int64_t torn_lines = 0;  // unreadable lines dropped from the results file
  bool stopped_early = false;
};

using ProgressFn = std::function<void(const SweepProgress&)>;

SweepOutcome RunSweep(const Scenario& scenario, const SweepOptions& options,
                      const ProgressFn& progress);

}  // namespace paylab::scenarios
