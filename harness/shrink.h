// Shrinking a failing run to a small scenario that fails the same way.
//
// Shrink() runs the scenario under the seed with fault recording on. If a
// check fails, it turns the faults that happened into an explicit schedule
// (harness/schema/scenario.h FaultSchedule): the probabilistic network rates
// become the list of calls that were hit ("the 3rd wallet.commit loses its
// reply"), random crash plans become crashes at the times they happened,
// fault points fire on the hits that fired; partitions and clock steps are
// explicit already. That scenario is the same run, so it fails the same
// check. Then, keeping every step that still fails the same check:
//  0. the faults after a cut-off time are dropped, the cut-off found by
//     bisection (what went wrong happened before it), and likewise those
//     before a start time;
//  1. faults are removed by delta debugging (ddmin: halves, then quarters,
//     ... down to one at a time), together with the fault types that have
//     no schedule (broker re-deliveries, poison messages, the partner's
//     unavailability, point-assignment failures);
//  2. the workload is halved again and again (client operations, charges,
//     escrows), then trimmed further by quarters.
// The result fails deterministically under the same seed (and defects).
//
// Every candidate is one full run, so shrinking costs at most
// `runs_max` runs. Determinism: a pure function of (scenario, options).
#pragma once

#include <cstdint>
#include <string>

#include "harness/runner.h"
#include "harness/schema/scenario.h"

namespace paylab::scenarios {

struct ShrinkOptions {
  RunOptions run;          // seed, defects, swarm, scenario_file
  int64_t runs_max = 400;  // candidate runs at most
};

struct ShrinkOutcome {
  std::string error;  // "" or why nothing was shrunk (the seed passes, ...)
  Scenario minimal;
  std::string check;          // the check the original and the minimal scenario fail
  int64_t faults_before = 0;  // faults in the explicit schedule of the original run
  int64_t faults_after = 0;
  int64_t operations_before = 0;  // client operations + charges + escrows
  int64_t operations_after = 0;
  int64_t runs = 0;                  // candidate runs made
  bool schedule_reproduces = false;  // the explicit schedule alone failed the check
};

ShrinkOutcome Shrink(const Scenario& scenario, const ShrinkOptions& options);

// The number of faults a scenario schedules or arms (what Shrink counts).
int64_t CountFaults(const Scenario& s);

}  // namespace paylab::scenarios
