// The result of one run, as plain data: what the runner measured and what
// every report (summary, report.json, later HTML and JUnit) is made from.
// Reports read this and nothing else of the simulation.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace paylab::reports {

enum class RunOutcome { kPass, kCheckFailed, kInternalError };

struct CheckResult {
  std::string name;
  int64_t evaluations = 0;
  int64_t violations = 0;
  // The scenario requires it to be evaluated (/checks/required).
  bool required = false;
};

// What a report says of a check: it held every time it was evaluated, it
// was violated, or it was never evaluated (which is not a pass: a check
// that looked at nothing proved nothing).
enum class Verdict { kOk, kFail, kNotEvaluated };

inline Verdict VerdictOf(const CheckResult& c) {
  if (c.violations > 0) {
    return Verdict::kFail;
  }
  return c.evaluations == 0 ? Verdict::kNotEvaluated : Verdict::kOk;
}

struct ViolationInfo {
  std::string check;
  std::string detail;
  double at_s = 0;  // virtual time
};

// One fault that happened in a run, recorded when the run was asked to
// (RunOptions::record_faults): what shrinking turns into an explicit schedule.
struct RealisedFault {
  enum class Kind { kRpc, kCrash, kFaultPoint };
  Kind kind = Kind::kRpc;
  std::string what;    // kRpc: the fault (drop_reply, ...); kFaultPoint: the point
  std::string node;    // kCrash, kFaultPoint: the node
  std::string method;  // kRpc: the RPC method
  int64_t nth = 0;     // kRpc: the method's call number; kFaultPoint: the hit number
  double at_s = 0;
  double downtime_s = 0;  // kCrash, kFaultPoint
  double delay_ms = 0;    // kRpc delay
  int64_t reply = 1;      // kRpc drop_reply: which reply of a duplicated call
};

struct RunResult {
  std::string scenario_name;
  std::string scenario_file;
  uint64_t seed = 0;
  // Deliberate defects switched on for this run (never in a normal run).
  std::vector<std::string> defects;
  // Swarm mode: the faults were redrawn from the seed; swarm_faults is the
  // drawn "faults" object as JSON text (replayed by --swarm, never edited).
  bool swarm = false;
  std::string swarm_faults;
  // The migration strategy given on the command line instead of the
  // scenario's (--strategy), "" when none.
  std::string strategy_override;
  RunOutcome outcome = RunOutcome::kPass;
  std::optional<ViolationInfo> violation;
  std::string internal_error;
  // The run ended before its final checks over settled databases: a check
  // stopped it at its violation, the workload did not finish, or an
  // internal error cut it. It stopped at virtual_time_s.
  bool stopped_early = false;

  uint64_t trace_hash = 0;
  uint64_t trace_events = 0;
  uint64_t kernel_events = 0;
  double virtual_time_s = 0;
  double wall_time_s = 0;

  int64_t operations_planned = 0;
  int64_t operations_issued = 0;
  int64_t operations_finished = 0;
  int64_t retries = 0;
  int64_t rpc_calls = 0;
  int64_t movements = 0;
  // operation kind -> outcome -> count; kinds and outcomes in a fixed order.
  std::vector<std::pair<std::string, std::vector<std::pair<std::string, int64_t>>>> operations;
  // fault type -> count, in a fixed order.
  std::vector<std::pair<std::string, int64_t>> faults;
  // Messaging figures (published, delivered, ...), empty when messaging is off.
  std::vector<std::pair<std::string, int64_t>> messaging;
  // Payment figures (orders by final state, recovery layers, points), empty
  // when payments are off.
  std::vector<std::pair<std::string, int64_t>> payments;
  // Migration figures (see README "Reading a comparison"), empty when the
  // migration is off; and its time series, one sample per sample interval.
  std::vector<std::pair<std::string, double>> migration;
  // What the reference models saw (requests checked, multi-account and
  // multi-item debits, expiries): how much the semantic checks had to say.
  std::vector<std::pair<std::string, int64_t>> models;
  struct MigrationSample {
    double t_s = 0;
    int64_t migrated = 0;  // users migrated by then
    int64_t rejected = 0;  // requests refused for maintenance by then
  };
  std::vector<MigrationSample> migration_series;
  std::vector<CheckResult> checks;
  // The faults that happened (only when recorded).
  std::vector<RealisedFault> realised;
  // Files the run wrote besides the report (databases, trace, run.json).
  std::vector<std::string> artifacts;
  // The node databases written into the output directory, by file name.
  std::vector<std::string> databases;
};

}  // namespace paylab::reports
