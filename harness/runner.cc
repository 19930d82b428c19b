// Implementation of the runner (see runner.h): the phases every platform
// goes through. What differs between platforms is theirs (harness/world.h).
#include "harness/runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>

#include "harness/swarm.h"
#include "harness/world.h"
#include "harness/worlds/worlds.h"
#include "reports/report.h"
#include "sim/check.h"
#include "sim/network.h"
#include "sim/simulator.h"

namespace paylab::scenarios {

namespace {

void SchedulePartitions(World& w, const Scenario& s, sim::Time safety_end) {
  for (const PartitionSpec& p : s.faults.partitions) {
    const sim::NodeId a = NodeIdOf(p.between[0]);
    const sim::NodeId b = NodeIdOf(p.between[1]);
    const sim::Time from = sim::FromSeconds(p.from_s);
    const sim::Time to = std::min(sim::FromSeconds(p.to_s), safety_end);
    if (from >= safety_end) {
      continue;  // the safety phase ends first
    }
    w.sim.ScheduleAt(from, [&w, a, b] {
      w.net.Partition(a, b);
      ++w.partitions;
    });
    w.sim.ScheduleAt(to, [&w, a, b, from, to] {
      w.net.Heal(a, b);
      w.partition_time += to - from;
    });
  }
}

void ScheduleClockSteps(World& w, const Scenario& s, sim::Time safety_end) {
  for (const ClockStepSpec& c : s.faults.schedule.clock_steps) {
    const sim::Time at = sim::FromSeconds(c.at_s);
    if (at >= safety_end) {
      continue;
    }
    sim::Node* node = &w.net.node(NodeIdOf(c.node));
    const auto step = static_cast<int64_t>(c.step_ms);
    w.sim.ScheduleAt(at, [&w, node, step] {
      node->StepClock(step);
      ++w.clock_steps;
    });
  }
}

void CollectRealised(World& w, reports::RunResult& r) {
  using K = reports::RealisedFault::Kind;
  for (const sim::RealisedRpcFault& f : w.net.realised()) {
    reports::RealisedFault x;
    x.kind = K::kRpc;
    x.what = std::string(sim::RpcFaultKindName(f.kind));
    x.method = f.method;
    x.nth = static_cast<int64_t>(f.nth);
    x.delay_ms = static_cast<double>(f.delay) / sim::kMillisecond;
    x.reply = f.reply;
    x.at_s = sim::ToSeconds(f.at);
    r.realised.push_back(std::move(x));
  }
  for (const faults::RealisedCrash& c : w.crashes->realised()) {
    if (c.from_fault_point) {
      continue;  // recorded below, as the point that caused it
    }
    reports::RealisedFault x;
    x.kind = K::kCrash;
    x.node = std::string(kKnownNodes[c.node].name);
    x.at_s = sim::ToSeconds(c.at);
    x.downtime_s = sim::ToSeconds(c.downtime);
    r.realised.push_back(std::move(x));
  }
  if (w.fault_points) {
    for (const faults::RealisedPointFire& p : w.fault_points->realised()) {
      reports::RealisedFault x;
      x.kind = K::kFaultPoint;
      x.what = p.point;
      x.node = std::string(kKnownNodes[p.node].name);
      x.nth = p.hit;
      x.at_s = sim::ToSeconds(p.at);
      x.downtime_s = sim::ToSeconds(p.downtime);
      r.realised.push_back(std::move(x));
    }
  }
}

// What the network and the injectors did, by kind, and each node's crashes.
void CollectFaults(World& w, reports::RunResult& r) {
  const sim::NetworkCounters& n = w.net.counters();
  r.rpc_calls = static_cast<int64_t>(n.calls);
  r.faults = {
      {"drop_request", static_cast<int64_t>(n.requests_dropped)},
      {"drop_reply", static_cast<int64_t>(n.replies_dropped)},
      {"duplicate_request", static_cast<int64_t>(n.requests_duplicated)},
      {"delay", static_cast<int64_t>(n.requests_delayed)},
      {"partition", w.partitions},
      {"partition_ms", w.partition_time / sim::kMillisecond},
      {"crash", w.crashes->crashes()},
      {"fault_point", w.fault_points ? static_cast<int64_t>(w.fault_points->realised().size()) : 0},
      {"clock_step", w.clock_steps},
      {"downtime_ms", w.crashes->downtime_total() / sim::kMillisecond},
      {"lost_to_partition", static_cast<int64_t>(n.partition_drops)},
      {"lost_to_node_down", static_cast<int64_t>(n.node_down_drops)},
      {"rpc_timeouts", static_cast<int64_t>(n.timeouts)},
      {"rpc_calls_safety", static_cast<int64_t>(w.safety_counters.calls)},
      {"drop_reply_safety", static_cast<int64_t>(w.safety_counters.replies_dropped)},
  };
  for (sim::Node* node : w.nodes()) {
    r.faults.emplace_back(fmt::format("crash.{}", node->name()),
                          static_cast<int64_t>(node->crashes()));
  }
}

void Collect(World& w, const Scenario& s, reports::RunResult& r) {
  r.trace_hash = w.sim.trace().hash();
  r.trace_events = w.sim.trace().count();
  r.kernel_events = w.sim.events_fired();
  r.virtual_time_s = sim::ToSeconds(w.sim.Now());
  r.movements = w.MovementsSeen();
  CollectFaults(w, r);
  r.checks = w.CheckResults();
  w.CollectFigures(s, r);
}

// The first required check `checks` does not have, as an error naming the
// scenario field.
std::optional<ScenarioError> MissingRequiredCheck(const Scenario& s,
                                                  const std::vector<reports::CheckResult>& checks) {
  for (size_t i = 0; i < s.checks.required.size(); ++i) {
    const std::string& name = s.checks.required[i];
    const bool known =
        std::any_of(checks.begin(), checks.end(),
                    [&name](const reports::CheckResult& c) { return c.name == name; });
    if (!known) {
      std::string names;
      for (const reports::CheckResult& c : checks) {
        names += (names.empty() ? "" : ", ") + c.name;
      }
      return ScenarioError{
          fmt::format("/checks/required/{}", i),
          fmt::format("this run has no check \"{}\" (with this scenario's messaging, payments "
                      "and migration settings its checks are: {})",
                      name, names)};
    }
  }
  return std::nullopt;
}

// Marks the required checks, and fails a run that otherwise passed when one
// of them was never evaluated.
void JudgeRequiredChecks(const Scenario& s, reports::RunResult& r) {
  for (reports::CheckResult& c : r.checks) {
    c.required = std::find(s.checks.required.begin(), s.checks.required.end(), c.name) !=
                 s.checks.required.end();
  }
  // A run that failed or broke stopped before its final checks: what they
  // did not evaluate says nothing more.
  if (r.violation || r.outcome == reports::RunOutcome::kInternalError) {
    return;
  }
  std::vector<std::string> unevaluated;
  for (reports::CheckResult& c : r.checks) {
    if (c.required && c.evaluations == 0) {
      ++c.violations;
      unevaluated.push_back(c.name);
    }
  }
  if (unevaluated.empty()) {
    return;
  }
  std::string detail = fmt::format("required check {} was not evaluated", unevaluated.front());
  if (unevaluated.size() > 1) {
    detail += fmt::format(" (nor were the required checks {})",
                          fmt::join(unevaluated.begin() + 1, unevaluated.end(), ", "));
  }
  r.violation = reports::ViolationInfo{unevaluated.front(), detail, r.virtual_time_s};
}

}  // namespace

std::optional<ScenarioError> RequiredCheckError(const Scenario& s) {
  if (s.checks.required.empty()) {
    return std::nullopt;
  }
  // The checks a run has depend only on which platform the scenario builds,
  // so a world built and never started knows them.
  std::vector<reports::CheckResult> checks = MakeWorld(s, RunOptions{})->CheckResults();
  checks.push_back(reports::CheckResult{"workload_completes", 0, 0});
  return MissingRequiredCheck(s, checks);
}

std::string DefectUnreachable(const Scenario& s, system::Defect defect) {
  switch (system::InfoOf(defect).needs) {
    case system::DefectNeeds::kWallet:
      return "";
    case system::DefectNeeds::kMessaging:
      return s.messaging.enabled ? ""
                                 : "the scenario has messaging off (/messaging/enabled), and "
                                   "this defect lives in messaging";
    case system::DefectNeeds::kPayments:
      return s.payments.enabled ? ""
                                : "the scenario has payments off (/payments/enabled), and this "
                                  "defect lives in payments";
    case system::DefectNeeds::kMigration:
      return s.migration.enabled ? ""
                                 : "the scenario has the migration off (/migration/enabled), and "
                                   "this defect lives in the migration";
  }
  return "";
}

namespace {

// Who ran what, filled in before the run starts.
void Describe(const Scenario& s, const RunOptions& o, reports::RunResult& r) {
  r.swarm = o.swarm;
  if (o.swarm) {
    r.swarm_faults = SwarmDraw(s).dump();
  }
  r.scenario_name = s.name;
  r.scenario_file = o.scenario_file;
  r.seed = o.seed;
  for (const system::DefectInfo& d : system::DefectCatalogue()) {
    if (o.defects.Has(d.defect)) {
      r.defects.emplace_back(d.name);
    }
  }
  r.operations_planned = s.workload.operations;
}

// Starts the faults' schedule, the operator's actions, every node of the
// platform, then the crash injector.
void Start(World& w, const Scenario& s, const RunOptions& o, sim::Time safety_end) {
  SchedulePartitions(w, s, safety_end);
  ScheduleClockSteps(w, s, safety_end);
  w.ScheduleOperatorActions(s, safety_end);
  if (o.fail_internally_at_s >= 0) {
    // TEST ONLY: the error a failed PAYLAB_CHECK raises, from inside the
    // simulation, so a test can see what an internal error leaves behind.
    w.sim.ScheduleAt(sim::FromSeconds(o.fail_internally_at_s), [at = o.fail_internally_at_s] {
      throw sim::CheckFailure(fmt::format(
          "internal error injected at t={:.3f} s (TEST ONLY: RunOptions::fail_internally_at_s)",
          at));
    });
  }
  w.StartNodes(s);
  w.crashes->Start();
}

// The liveness phase: heal everything, let the workload finish (or fail
// workload_completes), then settle and let messaging drain.
void RunLiveness(World& w, const Scenario& s, sim::Time safety_end, reports::RunResult& r,
                 reports::CheckResult& completes) {
  w.net.SetFaults(sim::NetworkFaults{});
  w.net.SetRpcSchedule({});
  w.net.HealAll();
  if (w.fault_points) {
    w.fault_points->Heal();
  }
  w.crashes->Heal();
  const sim::Time bound = safety_end + w.LivenessBound(s);
  while (!w.sim.stopped() && w.sim.Now() < bound && !w.Quiet()) {
    w.sim.Run(std::min(bound, w.sim.Now() + sim::kSecond));
  }
  ++completes.evaluations;
  if (!w.sim.stopped() && !w.Quiet()) {
    ++completes.violations;
    r.violation =
        reports::ViolationInfo{"workload_completes",
                               fmt::format("not quiet by t={:.3f} s, with every fault healed: {}",
                                           sim::ToSeconds(w.sim.Now()), w.NotQuietReason(&s)),
                               sim::ToSeconds(w.sim.Now())};
  }
  if (!w.sim.stopped() && !r.violation) {
    w.sim.Run(w.sim.Now() + sim::FromSeconds(s.settle_s));
    // Then let messaging drain what the background jobs made meanwhile,
    // bounded; what is still in flight then is the final checks' to judge.
    const sim::Time drain_bound = w.sim.Now() + sim::FromSeconds(60);
    while (!w.sim.stopped() && w.sim.Now() < drain_bound && !w.Backlog().empty()) {
      w.sim.Run(std::min(drain_bound, w.sim.Now() + 100 * sim::kMillisecond));
    }
  }
}

// The result: the figures, every check, and the first violation of all
// (the earliest; of two at one instant, the one the platform lists first).
void Conclude(World& w, const Scenario& s, const RunOptions& o,
              const reports::CheckResult& completes, reports::RunResult& r) {
  Collect(w, s, r);
  if (o.record_faults) {
    CollectRealised(w, r);
  }
  r.checks.push_back(completes);
  for (const std::optional<system::Violation>* v : w.FirstViolations()) {
    if (*v && (!r.violation || sim::ToSeconds((*v)->at) < r.violation->at_s)) {
      r.violation = reports::ViolationInfo{(*v)->check, (*v)->detail, sim::ToSeconds((*v)->at)};
    }
  }
  JudgeRequiredChecks(s, r);
  if (r.violation) {
    r.outcome = reports::RunOutcome::kCheckFailed;
  }
}

// Runs the world through both phases and the final checks. Throws on an
// internal error (a failed assertion, a constraint a bug violated).
void RunWorld(World& w, const Scenario& s, const RunOptions& o, reports::RunResult& r) {
  const sim::Time safety_end = sim::FromSeconds(s.duration_s);
  Start(w, s, o, safety_end);
  w.sim.Run(safety_end);
  w.safety_counters = w.net.counters();
  reports::CheckResult completes{"workload_completes", 0, 0};
  if (!w.sim.stopped()) {
    RunLiveness(w, s, safety_end, r, completes);
  }
  // A check stopped the simulation at its violation, or the workload did
  // not finish: the databases are as they stood then, not settled.
  r.stopped_early = w.sim.stopped() || r.violation.has_value();
  if (!r.stopped_early) {
    w.CheckFinal(s);
  }
  Conclude(w, s, o, completes, r);
}

// Where a run that ended in an internal error stood, for the reports.
void RecordInterruption(World& w, reports::RunResult& r) {
  r.trace_hash = w.sim.trace().hash();
  r.trace_events = w.sim.trace().count();
  r.kernel_events = w.sim.events_fired();
  r.virtual_time_s = sim::ToSeconds(w.sim.Now());
}

// Writes every node's database into `out_dir` as it stands (committed
// transactions only, as a crash would leave it), whatever way the run
// ended. A file that cannot be written makes the run an internal error
// naming it; this never throws.
void BackUpDatabases(World& w, const std::string& out_dir, reports::RunResult& r) {
  std::vector<std::string> errors;
  for (sim::Node* node : w.nodes()) {
    const std::string name = node->name() + ".db";
    const std::string path = (std::filesystem::path(out_dir) / name).string();
    std::string err;
    try {
      if (node->db().InTransaction()) {
        node->db().Rollback();  // an internal error left it open mid-way
      }
      err = node->db().Backup(path);
    } catch (const std::exception& e) {
      err = fmt::format("cannot back up {}: {}", path, e.what());
    }
    if (!err.empty()) {
      errors.push_back(std::move(err));
      continue;
    }
    r.artifacts.push_back(path);
    r.databases.push_back(name);
  }
  for (const std::string& err : errors) {
    r.internal_error += r.internal_error.empty() ? err : "; and " + err;
    r.outcome = reports::RunOutcome::kInternalError;
  }
}

// Writes run.json (reports/README.md) into `out_dir`; a file that cannot be
// written makes the run an internal error naming it.
void WriteRunRecord(const std::string& out_dir, reports::RunResult& r) {
  const std::filesystem::path path = std::filesystem::path(out_dir) / "run.json";
  const std::string err = reports::WriteFileAtomic(path, reports::RunJson(r).dump(2) + "\n");
  if (!err.empty()) {
    r.internal_error += r.internal_error.empty() ? err : "; and " + err;
    r.outcome = reports::RunOutcome::kInternalError;
    return;
  }
  r.artifacts.push_back(path.string());
}

}  // namespace

reports::RunResult RunScenario(const Scenario& configured, const RunOptions& o) {
  const auto wall_start = std::chrono::steady_clock::now();
  reports::RunResult r;
  Scenario s = o.swarm ? Swarm(configured, o.seed) : configured;
  Describe(s, o, r);
  std::unique_ptr<World> world;
  if (!o.strategy.empty() && (!ParseStrategy(o.strategy) || !s.migration.enabled)) {
    r.outcome = reports::RunOutcome::kInternalError;
    r.internal_error =
        fmt::format("strategy {} asked of a run whose scenario {}", o.strategy,
                    s.migration.enabled ? "knows no such strategy" : "has the migration off");
    r.stopped_early = true;
  } else {
    if (!o.strategy.empty()) {
      s.migration.strategy = o.strategy;
      r.strategy_override = o.strategy;
    }
    try {
      // The world outlives this block: an internal error still leaves its
      // databases to back up.
      world = MakeWorld(s, o);
      std::vector<reports::CheckResult> planned = world->CheckResults();
      planned.push_back(reports::CheckResult{"workload_completes", 0, 0});
      if (std::optional<ScenarioError> e = MissingRequiredCheck(s, planned)) {
        r.outcome = reports::RunOutcome::kInternalError;
        r.internal_error = fmt::format("{}: {}", e->pointer, e->reason);
        r.stopped_early = true;
        world.reset();  // it never ran: no databases to show
      } else if (!o.trace_path.empty() && !world->sim.trace().OpenSink(o.trace_path)) {
        r.outcome = reports::RunOutcome::kInternalError;
        r.internal_error = fmt::format("cannot write the trace file {}", o.trace_path);
        r.stopped_early = true;
        world.reset();  // it never ran: no databases to show
      } else {
        if (!o.trace_path.empty()) {
          r.artifacts.push_back(o.trace_path);
        }
        RunWorld(*world, s, o, r);
      }
    } catch (const std::exception& e) {
      // A failed PAYLAB_CHECK or another bug: report it with the seed.
      r.outcome = reports::RunOutcome::kInternalError;
      r.internal_error = e.what();
      r.stopped_early = true;
      if (world) {
        RecordInterruption(*world, r);
      }
    }
  }
  if (world && !o.out_dir.empty()) {
    BackUpDatabases(*world, o.out_dir, r);
  }
  world.reset();
  if (!o.out_dir.empty()) {
    WriteRunRecord(o.out_dir, r);
  }
  r.wall_time_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return r;
}

}  // namespace paylab::scenarios
