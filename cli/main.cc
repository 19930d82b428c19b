// The paylab command. Thin by design: it parses arguments, loads the
// scenario, calls the runner, the sweep or the benchmark, and turns the
// result into a summary, files and an exit code.
//
// Exit codes: 0 the run (every seed) passed; 1 a check failed; 2 bad input
// (arguments, scenario file, output directory, results file); 3 an
// internal error (a bug in paylab, reported with the seed and the replay
// command).
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/bench.h"
#include "reports/chrome_trace.h"
#include "reports/report.h"
#include "reports/sweep_results.h"
#include "harness/compare.h"
#include "harness/runner.h"
#include "harness/schema/scenario.h"
#include "harness/shrink.h"
#include "harness/sweep.h"
#include "system/common/defects.h"

namespace {

constexpr int kExitPass = 0;
constexpr int kExitFail = 1;
constexpr int kExitBadInput = 2;
constexpr int kExitInternal = 3;

int BadInput(const std::string& message) {
  fmt::print(stderr, "paylab: error: {}\n", message);
  return kExitBadInput;
}

std::string DefectList() {
  std::string known;
  for (const paylab::system::DefectInfo& d : paylab::system::DefectCatalogue()) {
    known += fmt::format("\n  {:<30} {}", d.name, d.summary);
  }
  return known;
}

// Parses --defect names into a set and checks each can be reached in the
// scenario. Returns "" or the error.
std::string ParseDefects(const std::vector<std::string>& names,
                         const paylab::scenarios::Scenario* scenario,
                         const std::string& scenario_file, paylab::system::DefectSet* out) {
  for (const std::string& name : names) {
    const std::optional<paylab::system::Defect> d = paylab::system::FindDefect(name);
    if (!d) {
      return fmt::format("--defect {}: unknown defect; known defects:{}", name, DefectList());
    }
    if (scenario != nullptr) {
      const std::string why = paylab::scenarios::DefectUnreachable(*scenario, *d);
      if (!why.empty()) {
        return fmt::format("--defect {}: {} in {}", name, why, scenario_file);
      }
    }
    out->Add(*d);
  }
  return "";
}

// Loads a scenario to run it: the loader's checks, then the checks the
// scenario requires, which only the runner can tell a run has. Returns ""
// or the one-line error.
std::string LoadRunnable(const std::string& file, paylab::scenarios::Scenario* out) {
  auto loaded = paylab::scenarios::LoadScenario(file);
  if (auto* err = std::get_if<paylab::scenarios::ScenarioError>(&loaded)) {
    return paylab::scenarios::FormatError(file, *err);
  }
  *out = std::move(std::get<paylab::scenarios::Scenario>(loaded));
  if (auto err = paylab::scenarios::RequiredCheckError(*out)) {
    return paylab::scenarios::FormatError(file, *err);
  }
  return "";
}

struct RunArgs {
  std::string scenario;
  uint64_t seed = 1;
  std::string out;
  std::string trace;
  std::vector<std::string> defects;
  bool swarm = false;
  std::string strategy;  // "" = the scenario's migration strategy
  // replay only: export the trace for Perfetto, and check the hash.
  std::string trace_out;
  std::string expect_hash;
};

int Run(const RunArgs& a) {
  paylab::scenarios::RunOptions options;
  if (std::string err = ParseDefects(a.defects, nullptr, a.scenario, &options.defects);
      !err.empty()) {
    return BadInput(err);
  }
  paylab::scenarios::Scenario scenario;
  if (std::string err = LoadRunnable(a.scenario, &scenario); !err.empty()) {
    return BadInput(err);
  }
  if (!a.strategy.empty()) {
    if (!scenario.migration.enabled) {
      return BadInput(
          fmt::format("--strategy {}: {} has /migration/enabled false", a.strategy, a.scenario));
    }
    if (!paylab::scenarios::ParseStrategy(a.strategy)) {
      return BadInput(fmt::format("--strategy {}: unknown strategy; expected one of {}", a.strategy,
                                  paylab::scenarios::StrategyNames()));
    }
  }
  options.strategy = a.strategy;
  options.defects = {};
  if (std::string err = ParseDefects(a.defects, &scenario, a.scenario, &options.defects);
      !err.empty()) {
    return BadInput(err);
  }
  const std::filesystem::path out =
      a.out.empty() ? std::filesystem::path("out") / scenario.name / fmt::format("seed-{}", a.seed)
                    : std::filesystem::path(a.out);
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec || !std::filesystem::is_directory(out)) {
    return BadInput(fmt::format("--out {}: cannot create the directory{}", out.string(),
                                ec ? ": " + ec.message() : ""));
  }
  options.seed = a.seed;
  options.scenario_file = a.scenario;
  options.trace_path = a.trace;
  if (!a.trace_out.empty() && options.trace_path.empty()) {
    options.trace_path = (out / "trace.jsonl").string();
  }
  options.out_dir = out.string();
  options.swarm = a.swarm;
  const paylab::reports::RunResult r = paylab::scenarios::RunScenario(scenario, options);
  const std::filesystem::path report = out / "report.json";
  const std::string err =
      paylab::reports::WriteFileAtomic(report, paylab::reports::ReportJson(r).dump(2) + "\n");
  if (!err.empty()) {
    fmt::print(stderr, "paylab: error: {}\n", err);
  }
  paylab::reports::PrintSummary(stdout, r, err.empty() ? report.string() : "");
  int replay_error = 0;
  if (!a.trace_out.empty() && r.outcome != paylab::reports::RunOutcome::kInternalError) {
    paylab::reports::ChromeTraceSummary t;
    const std::string terr = paylab::reports::ExportChromeTrace(
        options.trace_path, a.trace_out, fmt::format("{} seed {}", scenario.name, a.seed), &t);
    if (!terr.empty()) {
      fmt::print(stderr, "paylab: error: {}\n", terr);
      replay_error = kExitBadInput;
    } else {
      fmt::print("  timeline    {} ({} events, {} RPC spans; open it in ui.perfetto.dev)\n",
                 a.trace_out, t.events_out, t.rpc_spans);
    }
  }
  if (!a.expect_hash.empty()) {
    const std::string got = fmt::format("{:016x}", r.trace_hash);
    if (got != a.expect_hash) {
      fmt::print(
          "  DIVERGED    trace hash {} where {} was expected: this binary or scenario "
          "does not replay that run\n",
          got, a.expect_hash);
      replay_error = kExitFail;
    } else {
      fmt::print("  replayed    the trace hash matches {}\n", a.expect_hash);
    }
  }
  std::fflush(stdout);
  if (replay_error != 0 && r.outcome == paylab::reports::RunOutcome::kPass) {
    return replay_error;
  }
  switch (r.outcome) {
    case paylab::reports::RunOutcome::kPass:
      return err.empty() ? kExitPass : kExitBadInput;
    case paylab::reports::RunOutcome::kCheckFailed:
      return kExitFail;
    case paylab::reports::RunOutcome::kInternalError:
      return kExitInternal;
  }
  return kExitInternal;
}

int Defects() {
  fmt::print("paylab defects: deliberate bugs for --defect (never on in a normal run)\n");
  for (const paylab::system::DefectInfo& d : paylab::system::DefectCatalogue()) {
    fmt::print("  {:<30} {}\n", d.name, d.summary);
    fmt::print("  {:<30} needs {}; caught by {} in {}\n", "",
               paylab::system::DefectNeedsName(d.needs), d.caught_by, d.scenario);
  }
  return kExitPass;
}

// "A..B" (inclusive), or a single seed "A".
std::string ParseSeeds(const std::string& text, uint64_t* first, uint64_t* last) {
  const size_t dots = text.find("..");
  const std::string a = dots == std::string::npos ? text : text.substr(0, dots);
  const std::string b = dots == std::string::npos ? text : text.substr(dots + 2);
  auto parse = [](const std::string& s, uint64_t* v) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 19) {
      return false;
    }
    *v = std::stoull(s);
    return true;
  };
  if (!parse(a, first) || !parse(b, last)) {
    return fmt::format("--seeds {}: expected A..B with unsigned integers A <= B, e.g. 0..999",
                       text);
  }
  if (*first > *last) {
    return fmt::format("--seeds {}: the first seed ({}) is after the last ({})", text, *first,
                       *last);
  }
  if (*last - *first >= 100'000'000) {
    return fmt::format("--seeds {}: at most 100000000 seeds in one sweep", text);
  }
  return "";
}

struct CompareArgs {
  std::string scenario;
  std::string strategies = "full_maintenance,partial_maintenance,online,gradual";
  std::string seeds = "1..20";
  std::string out;
  int64_t jobs = 0;
};

int Compare(const CompareArgs& a) {
  paylab::scenarios::CompareOptions o;
  if (std::string err = ParseSeeds(a.seeds, &o.first, &o.last); !err.empty()) {
    return BadInput(err);
  }
  if (std::string err = paylab::scenarios::ParseStrategies(a.strategies, &o.strategies);
      !err.empty()) {
    return BadInput(err);
  }
  paylab::scenarios::Scenario scenario;
  if (std::string err = LoadRunnable(a.scenario, &scenario); !err.empty()) {
    return BadInput(err);
  }
  if (!scenario.migration.enabled) {
    return BadInput(
        fmt::format("{}: /migration/enabled is false: compare needs a migration "
                    "scenario (see scenarios/migration_online.json)",
                    a.scenario));
  }
  o.scenario_file = a.scenario;
  o.jobs = a.jobs > 0 ? a.jobs : std::max<int64_t>(1, sysconf(_SC_NPROCESSORS_ONLN));
  o.out_dir =
      a.out.empty() ? (std::filesystem::path("out") / scenario.name / "compare").string() : a.out;
  fmt::print("paylab compare: {} ({} users), strategies {}, seeds {}..{}, {} jobs\n", scenario.name,
             scenario.population.users, a.strategies, o.first, o.last, o.jobs);
  std::fflush(stdout);
  const auto progress = [](int64_t done, int64_t total, const paylab::scenarios::CompareRun& r) {
    fmt::print(
        "  {:>4}/{}  {:<20} seed {:<6} {}  {:.1f} s{}\n", done, total,
        paylab::system::MigrationStrategyName(r.strategy), r.seed, r.passed ? "pass" : "FAIL",
        r.wall_time_s,
        r.passed ? "" : fmt::format("  {}: {}\n        replay: {}", r.check, r.detail, r.replay));
    std::fflush(stdout);
  };
  const auto out = paylab::scenarios::RunCompare(scenario, o, progress);
  if (!out.error.empty()) {
    return BadInput(out.error);
  }
  const std::filesystem::path dir(o.out_dir);
  for (const auto& [name, text] :
       {std::pair{"compare.json", paylab::scenarios::CompareJson(scenario, o, out)},
        std::pair{"compare.html", paylab::scenarios::CompareHtml(scenario, o, out)}}) {
    if (std::string err = paylab::reports::WriteFileAtomic(dir / name, text); !err.empty()) {
      return BadInput(err);
    }
  }
  int64_t failed = 0;
  for (const auto& r : out.runs) {
    failed += r.passed ? 0 : 1;
  }
  fmt::print("  runs        {} ({} made now, {} reused from {}), wall {:.1f} s\n", out.runs.size(),
             out.ran, out.reused, (dir / "compare-runs.jsonl").string(), out.wall_time_s);
  fmt::print("  wrote       {}\n  wrote       {}\n", (dir / "compare.json").string(),
             (dir / "compare.html").string());
  fmt::print("  result      {}\n", failed == 0 ? "PASS" : fmt::format("FAIL ({} runs)", failed));
  return failed == 0 ? kExitPass : kExitFail;
}

// "K/N" with 1 <= K <= N.
std::string ParseShard(const std::string& text, int64_t* k, int64_t* n) {
  const size_t slash = text.find('/');
  auto parse = [](const std::string& s, int64_t* v) {
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) {
      return false;
    }
    *v = std::stoll(s);
    return true;
  };
  if (slash == std::string::npos || !parse(text.substr(0, slash), k) ||
      !parse(text.substr(slash + 1), n) || *n < 1 || *k < 1 || *k > *n) {
    return fmt::format("--shard {}: expected K/N with 1 <= K <= N, e.g. 2/8", text);
  }
  return "";
}

struct SweepArgs {
  std::string scenario;
  std::string seeds;
  bool swarm = false;
  int64_t jobs = 0;
  std::string shard = "1/1";
  std::string results;
  std::string junit;
  std::vector<std::string> defects;
  int64_t max_failures = 0;
};

// Sweep summary and failing seeds, shared by sweep and merge.
int Conclude(const std::vector<paylab::reports::SeedRecord>& records, const std::string& suite,
             const std::string& junit_path) {
  int64_t failed = 0;
  int64_t errors = 0;
  for (const auto& r : records) {
    failed += r.result == "fail" ? 1 : 0;
    errors += r.result == "error" ? 1 : 0;
  }
  if (!junit_path.empty()) {
    const std::string err =
        paylab::reports::WriteFileAtomic(junit_path, paylab::reports::JUnitXml(suite, records));
    if (!err.empty()) {
      return BadInput(err);
    }
  }
  fmt::print("  seeds       {} recorded: {} passed, {} failed, {} internal errors\n",
             records.size(), records.size() - failed - errors, failed, errors);
  for (const auto& r : records) {
    if (!r.passed()) {
      fmt::print("  FAIL seed {}: {} at t={:.6f} s: {}\n    replay: {}\n", r.seed, r.check, r.at_s,
                 r.detail, r.replay);
    }
  }
  if (!junit_path.empty()) {
    fmt::print("  junit       {}\n", junit_path);
  }
  if (failed + errors > 0) {
    fmt::print("  result      FAIL ({} of {} seeds)\n", failed + errors, records.size());
    return kExitFail;
  }
  fmt::print("  result      PASS\n");
  return kExitPass;
}

int Sweep(const SweepArgs& a) {
  paylab::scenarios::SweepOptions o;
  if (std::string err = ParseSeeds(a.seeds, &o.first, &o.last); !err.empty()) {
    return BadInput(err);
  }
  if (std::string err = ParseShard(a.shard, &o.shard_index, &o.shard_count); !err.empty()) {
    return BadInput(err);
  }
  paylab::scenarios::Scenario scenario;
  if (std::string err = LoadRunnable(a.scenario, &scenario); !err.empty()) {
    return BadInput(err);
  }
  if (std::string err = ParseDefects(a.defects, &scenario, a.scenario, &o.defects); !err.empty()) {
    return BadInput(err);
  }
  o.scenario_file = a.scenario;
  o.jobs = a.jobs > 0 ? a.jobs : std::max<int64_t>(1, sysconf(_SC_NPROCESSORS_ONLN));
  o.swarm = a.swarm;
  o.results_path = a.results;
  o.max_failures = a.max_failures;
  if (!o.results_path.empty()) {
    const std::filesystem::path dir = std::filesystem::path(o.results_path).parent_path();
    std::error_code ec;
    if (!dir.empty()) {
      std::filesystem::create_directories(dir, ec);
    }
  }
  const bool tty = isatty(fileno(stderr)) != 0;
  fmt::print("paylab sweep: {} seeds {}..{} shard {}/{}{}, {} jobs{}\n", scenario.name, o.first,
             o.last, o.shard_index, o.shard_count, o.swarm ? ", swarm" : "", o.jobs,
             o.results_path.empty() ? "" : ", results " + o.results_path);
  std::fflush(stdout);
  int64_t last_line_done = -1;
  double last_line_s = 0;
  const auto progress = [&](const paylab::scenarios::SweepProgress& p) {
    if (p.last != nullptr && !p.last->passed()) {
      fmt::print(stderr, "{}  seed {} FAILED: {} — replay: {}\n", tty ? "\r\033[K" : "",
                 p.last->seed, p.last->check, p.last->replay);
    }
    const std::string line = fmt::format(
        "  {} of {} done ({} from the results file), {:.1f} seeds/s, {} failed, "
        "about {:.0f} s left",
        p.done, p.total, p.skipped, p.rate_per_s, p.failures, p.eta_s);
    if (tty) {
      fmt::print(stderr, "\r\033[K{}", line);
    } else if (p.done == p.total || p.last == nullptr || p.elapsed_s - last_line_s >= 10 ||
               (p.done - last_line_done) * 10 >= p.total) {
      // CI logs: a plain line every tenth of the sweep or every 10 s.
      fmt::print(stderr, "{}\n", line);
      last_line_done = p.done;
      last_line_s = p.elapsed_s;
    }
    std::fflush(stderr);
  };
  const paylab::scenarios::SweepOutcome out = paylab::scenarios::RunSweep(scenario, o, progress);
  if (tty) {
    fmt::print(stderr, "\n");
  }
  if (!out.error.empty() && out.ran == 0) {
    return BadInput(out.error);
  }
  if (!out.error.empty()) {
    fmt::print(stderr, "paylab: error: {} (the sweep stopped; restart it to resume)\n", out.error);
  }
  if (out.torn_lines > 0) {
    fmt::print("  resumed     dropped {} torn line(s) of the results file\n", out.torn_lines);
  }
  if (out.skipped > 0) {
    fmt::print("  resumed     {} seeds were done already, {} run now\n", out.skipped, out.ran);
  }
  if (out.stopped_early) {
    fmt::print("  stopped     after {} failing seed(s) (--max-failures)\n", a.max_failures);
  }
  const int code = Conclude(out.records, scenario.name, a.junit);
  return out.error.empty() ? code : kExitBadInput;
}

struct ShrinkArgs {
  std::string scenario;
  uint64_t seed = 1;
  std::string out;
  std::vector<std::string> defects;
  bool swarm = false;
  int64_t runs_max = 400;
};

int Shrink(const ShrinkArgs& a) {
  paylab::scenarios::Scenario scenario;
  if (std::string err = LoadRunnable(a.scenario, &scenario); !err.empty()) {
    return BadInput(err);
  }
  paylab::scenarios::ShrinkOptions o;
  if (std::string err = ParseDefects(a.defects, &scenario, a.scenario, &o.run.defects);
      !err.empty()) {
    return BadInput(err);
  }
  o.run.seed = a.seed;
  o.run.scenario_file = a.scenario;
  o.run.swarm = a.swarm;
  o.runs_max = a.runs_max;
  fmt::print("paylab shrink: {} (seed {}{}{})\n", scenario.name, a.seed, a.swarm ? ", swarm" : "",
             a.defects.empty() ? "" : ", defect " + fmt::format("{}", fmt::join(a.defects, ",")));
  std::fflush(stdout);
  const paylab::scenarios::ShrinkOutcome r = paylab::scenarios::Shrink(scenario, o);
  if (!r.error.empty()) {
    return BadInput(r.error);
  }
  // What is written must load again, and fail again.
  const std::string text = paylab::scenarios::ToJson(r.minimal).dump(2) + "\n";
  auto reparsed = paylab::scenarios::ParseScenario(text);
  if (auto* err = std::get_if<paylab::scenarios::ScenarioError>(&reparsed)) {
    fmt::print(stderr, "paylab: internal error: the shrunk scenario does not load: {}: {}\n",
               err->pointer, err->reason);
    return kExitInternal;
  }
  paylab::scenarios::RunOptions check = o.run;
  check.swarm = false;
  const auto again =
      paylab::scenarios::RunScenario(std::get<paylab::scenarios::Scenario>(reparsed), check);
  const std::string again_check = again.violation ? again.violation->check : "internal_error";
  if (const std::string err = paylab::reports::WriteFileAtomic(a.out, text); !err.empty()) {
    return BadInput(err);
  }
  fmt::print("  failure     {}\n", r.check);
  fmt::print("  schedule    the run's faults as an explicit schedule {}\n",
             r.schedule_reproduces ? "fail the same check"
                                   : "do not (events at one instant reordered); shrunk from the "
                                     "scenario's own faults");
  fmt::print("  faults      {} -> {}\n", r.faults_before, r.faults_after);
  fmt::print("  operations  {} -> {}\n", r.operations_before, r.operations_after);
  fmt::print("  runs        {}{}\n", r.runs, r.runs >= a.runs_max ? " (the --runs-max bound)" : "");
  fmt::print("  wrote       {}\n", a.out);
  std::string replay = fmt::format("paylab run {} --seed {}", a.out, a.seed);
  for (const std::string& d : a.defects) {
    replay += " --defect " + d;
  }
  fmt::print("  replay      {}\n", replay);
  if (again.outcome == paylab::reports::RunOutcome::kPass || again_check != r.check) {
    fmt::print(
        "  result      the written scenario {} instead of failing {}\n",
        again.outcome == paylab::reports::RunOutcome::kPass ? "passes" : "fails " + again_check,
        r.check);
    return kExitInternal;
  }
  fmt::print("  result      the written scenario fails {} again\n", r.check);
  return kExitPass;
}

struct MergeArgs {
  std::vector<std::string> inputs;
  std::string results;
  std::string junit;
};

int Merge(const MergeArgs& a) {
  std::map<uint64_t, paylab::reports::SeedRecord> by_seed;
  std::optional<paylab::reports::SweepIdentity> identity;
  for (const std::string& in : a.inputs) {
    if (!std::filesystem::exists(in)) {
      return BadInput(fmt::format("{}: no such results file", in));
    }
    std::vector<paylab::reports::SeedRecord> records;
    int64_t torn = 0;
    if (std::string err = paylab::reports::ReadResults(in, &records, &torn); !err.empty()) {
      return BadInput(err);
    }
    if (torn > 0) {
      fmt::print(stderr, "paylab merge: {}: dropped {} torn line(s)\n", in, torn);
    }
    for (auto& r : records) {
      if (!identity) {
        identity = r.sweep;
      } else if (!(r.sweep == *identity)) {
        return BadInput(fmt::format(
            "{}: seed {} is of another sweep (scenario {}); merge combines shards of one sweep", in,
            r.seed, r.sweep.scenario_name));
      }
      auto [it, inserted] = by_seed.emplace(r.seed, r);
      if (!inserted && it->second.trace_hash != r.trace_hash) {
        // The same seed gave two runs: a determinism bug, or two binaries.
        return BadInput(fmt::format(
            "seed {} has trace hash {} in one input and {} in {}: the shards ran different "
            "binaries, or a run is not deterministic",
            r.seed, it->second.trace_hash, r.trace_hash, in));
      }
    }
  }
  std::vector<paylab::reports::SeedRecord> all;
  std::string text;
  for (auto& [seed, r] : by_seed) {
    text += paylab::reports::ToJsonLine(r) + "\n";
    all.push_back(r);
  }
  if (!a.results.empty()) {
    if (std::string err = paylab::reports::WriteFileAtomic(a.results, text); !err.empty()) {
      return BadInput(err);
    }
  }
  fmt::print("paylab merge: {} input(s), {} seeds{}\n", a.inputs.size(), all.size(),
             a.results.empty() ? "" : ", into " + a.results);
  return Conclude(all, identity ? identity->scenario_name : "", a.junit);
}

CLI::App* AddRunCommand(CLI::App& app, RunArgs* run) {
  CLI::App* cmd = app.add_subcommand("run", "Run one scenario under one seed");
  cmd->add_option("scenario", run->scenario, "Scenario file (JSON)")->required();
  cmd->add_option("--seed", run->seed, "The seed that decides every choice of the run")
      ->default_val(1);
  cmd->add_option("--out", run->out,
                  "Directory for report.json and the nodes' databases "
                  "(default: out/<scenario>/seed-<seed>)");
  cmd->add_option("--trace", run->trace, "Write every trace event to FILE (JSON lines)");
  cmd->add_option("--defect", run->defects,
                  "Switch on a deliberate bug the checks must catch (never in a normal run); "
                  "see paylab defects");
  cmd->add_flag("--swarm", run->swarm,
                "Redraw the scenario's faults from the seed (a random subset at random rates)");
  cmd->add_option("--strategy", run->strategy,
                  "Run this migration strategy instead of the scenario's");
  return cmd;
}

CLI::App* AddReplayCommand(CLI::App& app, RunArgs* replay) {
  CLI::App* cmd = app.add_subcommand(
      "replay", "Run a seed again and export its trace as a timeline (Chrome trace format)");
  cmd->add_option("scenario", replay->scenario, "Scenario file (JSON)")->required();
  cmd->add_option("--seed", replay->seed, "The seed to replay")->required();
  cmd->add_option("--trace-out", replay->trace_out,
                  "Write the timeline to FILE.json (Perfetto, chrome://tracing)");
  cmd->add_option("--expect-hash", replay->expect_hash,
                  "Fail unless the run's trace hash is this one (16 hex digits)");
  cmd->add_option("--out", replay->out,
                  "Directory for report.json, the databases and trace.jsonl "
                  "(default: out/<scenario>/seed-<seed>)");
  cmd->add_option("--trace", replay->trace, "Also keep the raw trace in FILE (JSON lines)");
  cmd->add_option("--defect", replay->defects, "Switch on a deliberate bug (as the run did)");
  cmd->add_flag("--swarm", replay->swarm, "Redraw the faults from the seed (as the run did)");
  cmd->add_option("--strategy", replay->strategy, "The migration strategy (as the run did)");
  return cmd;
}

CLI::App* AddSweepCommand(CLI::App& app, SweepArgs* sweep) {
  CLI::App* cmd = app.add_subcommand(
      "sweep", "Run a scenario under many seeds in parallel; resumable; JSON lines and JUnit");
  cmd->add_option("scenario", sweep->scenario, "Scenario file (JSON)")->required();
  cmd->add_option("--seeds", sweep->seeds, "Seeds A..B, inclusive")->required();
  cmd->add_flag("--swarm", sweep->swarm, "Per seed, redraw the faults (swarm testing)");
  cmd->add_option("--jobs", sweep->jobs, "Seeds run at once (default: one per core)")
      ->check(CLI::Range(int64_t{1}, int64_t{1024}));
  cmd->add_option("--shard", sweep->shard, "Run only shard K of N (seed index modulo N), e.g. 3/8");
  cmd->add_option("--results", sweep->results,
                  "Append one JSON line per seed to FILE; seeds already in it are skipped");
  cmd->add_option("--junit", sweep->junit, "Write JUnit XML (one test case per seed)");
  cmd->add_option("--defect", sweep->defects, "Switch on a deliberate bug (see paylab defects)");
  cmd->add_option("--max-failures", sweep->max_failures,
                  "Stop starting seeds after this many failures (0: run them all)")
      ->check(CLI::Range(int64_t{0}, int64_t{1'000'000'000}));
  return cmd;
}

CLI::App* AddCompareCommand(CLI::App& app, CompareArgs* compare) {
  CLI::App* cmd = app.add_subcommand(
      "compare",
      "Run a migration scenario under several strategies and the same seeds; write compare.json "
      "and compare.html");
  cmd->add_option("scenario", compare->scenario, "Scenario file (JSON), migration on")
      ->required();
  cmd->add_option("--strategies", compare->strategies, "Comma-separated strategies")
      ->default_val(compare->strategies);
  cmd->add_option("--seeds", compare->seeds, "Seeds A..B, inclusive")
      ->default_val(compare->seeds);
  cmd->add_option("--out", compare->out,
                  "Directory for compare.json, compare.html and compare-runs.jsonl "
                  "(default: out/<scenario>/compare)");
  cmd->add_option("--jobs", compare->jobs, "Runs at once (default: one per core)")
      ->check(CLI::Range(int64_t{1}, int64_t{1024}));
  return cmd;
}

CLI::App* AddShrinkCommand(CLI::App& app, ShrinkArgs* shrink) {
  CLI::App* cmd = app.add_subcommand(
      "shrink", "Shrink a failing seed to a small scenario with an explicit fault schedule");
  cmd->add_option("scenario", shrink->scenario, "Scenario file (JSON)")->required();
  cmd->add_option("--seed", shrink->seed, "The failing seed")->required();
  cmd->add_option("--out", shrink->out, "Write the minimal scenario to FILE.json")->required();
  cmd->add_option("--defect", shrink->defects, "The deliberate bug the run had on");
  cmd->add_flag("--swarm", shrink->swarm, "The run was a swarm run");
  cmd->add_option("--runs-max", shrink->runs_max, "Candidate runs at most")
      ->default_val(shrink->runs_max)
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000}));
  return cmd;
}

CLI::App* AddMergeCommand(CLI::App& app, MergeArgs* merge) {
  CLI::App* cmd =
      app.add_subcommand("merge", "Combine the results files of a sweep's shards into one");
  cmd->add_option("inputs", merge->inputs, "Results files (JSON lines)")->required();
  cmd->add_option("--results", merge->results, "Write the merged results to FILE");
  cmd->add_option("--junit", merge->junit, "Write JUnit XML (one test case per seed)");
  return cmd;
}

CLI::App* AddBenchCommand(CLI::App& app, paylab::cli::BenchArgs* bench) {
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure kernel events/s, simulated transfers/s and the bare SQLite floor");
  cmd->add_option("--transfers", bench->transfers, "Transfers per measurement")
      ->default_val(bench->transfers)
      ->check(CLI::Range(100, 10'000'000));
  cmd->add_option("--charges", bench->charges, "Charges per payment measurement")
      ->default_val(bench->charges)
      ->check(CLI::Range(100, 10'000'000));
  cmd->add_option("--messages", bench->messages, "Messages per broker measurement")
      ->default_val(bench->messages)
      ->check(CLI::Range(100, 10'000'000));
  cmd->add_option("--events", bench->events, "Kernel events per measurement")
      ->default_val(bench->events)
      ->check(CLI::Range(1000, 1'000'000'000));
  return cmd;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"paylab: a deterministic simulation testbed for payment platforms"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  // Each subcommand's arguments land in its own struct; the subcommands are
  // added in the order --help lists them.
  RunArgs run;
  RunArgs replay;
  SweepArgs sweep;
  CompareArgs compare;
  ShrinkArgs shrink;
  MergeArgs merge;
  paylab::cli::BenchArgs bench;
  CLI::App* run_cmd = AddRunCommand(app, &run);
  CLI::App* replay_cmd = AddReplayCommand(app, &replay);
  CLI::App* defects_cmd = app.add_subcommand("defects", "List the deliberate bugs --defect knows");
  CLI::App* sweep_cmd = AddSweepCommand(app, &sweep);
  CLI::App* compare_cmd = AddCompareCommand(app, &compare);
  CLI::App* shrink_cmd = AddShrinkCommand(app, &shrink);
  CLI::App* merge_cmd = AddMergeCommand(app, &merge);
  CLI::App* bench_cmd = AddBenchCommand(app, &bench);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "paylab: error: {}\n", e.what());
    fmt::print(stderr, "Run 'paylab --help' for usage.\n");
    return kExitBadInput;
  }
  if (run_cmd->parsed()) {
    return Run(run);
  }
  if (replay_cmd->parsed()) {
    return Run(replay);
  }
  if (defects_cmd->parsed()) {
    return Defects();
  }
  if (sweep_cmd->parsed()) {
    return Sweep(sweep);
  }
  if (shrink_cmd->parsed()) {
    return Shrink(shrink);
  }
  if (compare_cmd->parsed()) {
    return Compare(compare);
  }
  if (merge_cmd->parsed()) {
    return Merge(merge);
  }
  if (bench_cmd->parsed()) {
    return paylab::cli::RunBench(bench);
  }
  return kExitBadInput;
}
