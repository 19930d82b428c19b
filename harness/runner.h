// The runner: builds the simulated platform a scenario describes, runs it
// under one seed, checks it, and returns a RunResult.
//
// A run has two phases (as TigerBeetle's VOPR):
//  - safety: duration_s of virtual time with every configured fault on;
//  - liveness: faults healed (network perfect, crashed nodes restarted),
//    the workload runs to its end, then settle_s more for background jobs
//    (hold expiry) to finish. The run is bounded: a workload that has not
//    finished by a generous bound fails the check "workload_completes".
// Then the checkers look at the databases. The first violated check stops
// the run at once (its time and event are reported).
//
// With an output directory, every run that built its world leaves each
// node's database there as it stood when the run ended (settled, cut at a
// failed check, or cut by an internal error), and every run leaves run.json
// saying how it ended (reports/README.md), so the databases are never
// mistaken for a settled run's.
//
// Determinism: everything that decides behaviour comes from the scenario
// and the seed. The wall clock is read here, and only to report how long
// the run took.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "reports/run_result.h"
#include "harness/schema/scenario.h"
#include "system/common/defects.h"

namespace paylab::scenarios {

struct RunOptions {
  uint64_t seed = 1;
  std::string scenario_file;  // as the user gave it, for the replay command
  std::string trace_path;     // "" = no trace file
  std::string out_dir;        // "" = no database files
  // Deliberate bugs switched on (system/common/defects.h); empty in a normal run.
  system::DefectSet defects;
  // Redraw the scenario's faults from the seed first (harness/swarm.h).
  bool swarm = false;
  // Record every fault that happens into RunResult::realised (shrinking);
  // costs a map lookup per RPC.
  bool record_faults = false;
  // Run this migration strategy instead of the scenario's (compare and
  // `paylab run --strategy`); "" = the scenario's. An unknown name, or a
  // scenario with the migration off, is reported as an internal error.
  std::string strategy;
  // TEST ONLY (no paylab flag reaches it): at this virtual time (s; < 0 =
  // never) the simulation throws sim::CheckFailure, the error a failed
  // PAYLAB_CHECK raises, so tests can see what an internal error leaves.
  double fail_internally_at_s = -1;
};

// Why `defect` cannot be reached in `scenario` (it lives in a part the
// scenario switches off), or "" if it can. Names the scenario field.
std::string DefectUnreachable(const Scenario& scenario, system::Defect defect);

// The first check `scenario` requires (/checks/required) that a run of it
// does not have (the loader cannot know check names: they depend on the
// worlds the scenario builds), as an error naming the field; nullopt when
// every required check exists. The command refuses such a scenario as bad
// input before running it.
std::optional<ScenarioError> RequiredCheckError(const Scenario& scenario);

// Never throws for a valid scenario: internal errors are reported in the
// result (outcome kInternalError) with the seed, as is a trace, database or
// run.json file that cannot be written. A required check the run does not
// have is an internal error (the command refuses it earlier, as bad input);
// a required check the run never evaluated fails a run that otherwise
// passed, with a violation of that check.
reports::RunResult RunScenario(const Scenario& scenario, const RunOptions& options);

}  // namespace paylab::scenarios
