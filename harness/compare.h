// `paylab compare`: one migration scenario run under several strategies and
// the same seeds, so the strategies meet the same workload and the same
// faults (every random choice outside the migrator is drawn from the seed
// and named streams, not from the strategy), and their figures side by side.
//
// Runs go in parallel (harness threads; each simulation is single-threaded
// and shares nothing). Each finished run is appended as one JSON line to
// DIR/compare-runs.jsonl, and a run already there is not run again, so an
// interrupted comparison resumes. The summary files (compare.json,
// compare.html) are written atomically at the end.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "reports/run_result.h"
#include "harness/schema/scenario.h"
#include "system/migration/controller.h"

namespace paylab::scenarios {

struct CompareOptions {
  std::string scenario_file;  // as the user gave it, for replay commands
  std::vector<system::MigrationStrategy> strategies;
  uint64_t first = 1;
  uint64_t last = 1;
  int64_t jobs = 1;
  std::string out_dir;  // compare-runs.jsonl, compare.json, compare.html
};

// One strategy under one seed, as compare keeps it.
struct CompareRun {
  system::MigrationStrategy strategy = system::MigrationStrategy::kOnline;
  uint64_t seed = 0;
  bool passed = false;
  std::string check;   // the failed check ("" when passed)
  std::string detail;  // its detail, or the internal error
  std::string replay;  // the command that replays this run
  double wall_time_s = 0;
  std::vector<std::pair<std::string, double>> figures;
  std::vector<reports::RunResult::MigrationSample> series;
};

struct CompareOutcome {
  std::string error;             // "" or a bad-input error (nothing ran)
  std::vector<CompareRun> runs;  // by strategy (in the order asked), then seed
  int64_t ran = 0;               // runs made now
  int64_t reused = 0;            // runs found in DIR/compare-runs.jsonl
  double wall_time_s = 0;
};

using CompareProgressFn = std::function<void(int64_t done, int64_t total, const CompareRun&)>;

// The strategy list "a,b,c" (names as /migration/strategy takes them).
std::string ParseStrategies(const std::string& text, std::vector<system::MigrationStrategy>* out);

CompareOutcome RunCompare(const Scenario& scenario, const CompareOptions& options,
                          const CompareProgressFn& progress);

// compare.json, as an object (stable keys).
std::string CompareJson(const Scenario& scenario, const CompareOptions& options,
                        const CompareOutcome& outcome);
// compare.html: the page reports/compare_page.h lays out, from the same
// figures as compare.json.
std::string CompareHtml(const Scenario& scenario, const CompareOptions& options,
                        const CompareOutcome& outcome);

}  // namespace paylab::scenarios
