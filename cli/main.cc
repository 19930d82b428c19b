// The paylab command. Thin by design: it parses arguments, loads the
// scenario, calls the runner (or the benchmark), and turns the result into
// a summary, files and an exit code.
//
// Exit codes: 0 the run passed; 1 a check failed; 2 bad input (arguments,
// scenario file, output directory); 3 an internal error (a bug in paylab,
// reported with the seed and the replay command).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/bench.h"
#include "reports/report.h"
#include "scenarios/runner.h"
#include "scenarios/scenario.h"

namespace {

constexpr int kExitPass = 0;
constexpr int kExitFail = 1;
constexpr int kExitBadInput = 2;
constexpr int kExitInternal = 3;

int BadInput(const std::string& message) {
  fmt::print(stderr, "paylab: error: {}\n", message);
  return kExitBadInput;
}

struct RunArgs {
  std::string scenario;
  uint64_t seed = 1;
  std::string out;
  std::string trace;
  std::vector<std::string> defects;
};

// Deliberate bugs a run may switch on, to show the checks catch them.
constexpr const char* kDefects[][2] = {
    {"credit_without_debit",
     "the ledger credits a transfer's destination without debiting its source"},
    {"consumer_without_dedup",
     "the mirror consumer applies every delivery, keeping no processed-event record"},
    {"publish_outside_outbox",
     "the wallet publishes events from memory after commit instead of through its outbox"},
};

int Run(const RunArgs& a) {
  paylab::scenarios::RunOptions options;
  for (const std::string& d : a.defects) {
    if (d == "credit_without_debit") {
      options.defect_credit_without_debit = true;
    } else if (d == "consumer_without_dedup") {
      options.defect_consumer_without_dedup = true;
    } else if (d == "publish_outside_outbox") {
      options.defect_publish_outside_outbox = true;
    } else {
      std::string known;
      for (const auto& k : kDefects) {
        known += fmt::format("\n  {:<22} {}", k[0], k[1]);
      }
      return BadInput(fmt::format("--defect {}: unknown defect; known defects:{}", d, known));
    }
  }
  auto loaded = paylab::scenarios::LoadScenario(a.scenario);
  if (auto* err = std::get_if<paylab::scenarios::ScenarioError>(&loaded)) {
    return BadInput(paylab::scenarios::FormatError(a.scenario, *err));
  }
  const auto& scenario = std::get<paylab::scenarios::Scenario>(loaded);
  if ((options.defect_consumer_without_dedup || options.defect_publish_outside_outbox) &&
      !scenario.messaging.enabled) {
    return BadInput(
        fmt::format("--defect: {} has messaging off (/messaging/enabled), and this "
                    "defect lives in messaging",
                    a.scenario));
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
  options.out_dir = out.string();
  const paylab::reports::RunResult r = paylab::scenarios::RunScenario(scenario, options);
  const std::filesystem::path report = out / "report.json";
  const std::string err =
      paylab::reports::WriteFileAtomic(report, paylab::reports::ReportJson(r).dump(2) + "\n");
  if (!err.empty()) {
    fmt::print(stderr, "paylab: error: {}\n", err);
  }
  paylab::reports::PrintSummary(stdout, r, err.empty() ? report.string() : "");
  std::fflush(stdout);
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"paylab: a deterministic simulation testbed for payment platforms"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");

  RunArgs run;
  CLI::App* run_cmd = app.add_subcommand("run", "Run one scenario under one seed");
  run_cmd->add_option("scenario", run.scenario, "Scenario file (JSON)")->required();
  run_cmd->add_option("--seed", run.seed, "The seed that decides every choice of the run")
      ->default_val(1);
  run_cmd->add_option("--out", run.out,
                      "Directory for report.json and the nodes' databases "
                      "(default: out/<scenario>/seed-<seed>)");
  run_cmd->add_option("--trace", run.trace, "Write every trace event to FILE (JSON lines)");
  run_cmd->add_option("--defect", run.defects,
                      "Switch on a deliberate bug the checks must catch (never in a normal run); "
                      "credit_without_debit, consumer_without_dedup, publish_outside_outbox");

  paylab::cli::BenchArgs bench;
  CLI::App* bench_cmd = app.add_subcommand(
      "bench", "Measure kernel events/s, simulated transfers/s and the bare SQLite floor");
  bench_cmd->add_option("--transfers", bench.transfers, "Transfers per measurement")
      ->default_val(bench.transfers)
      ->check(CLI::Range(100, 10'000'000));
  bench_cmd->add_option("--charges", bench.charges, "Charges per payment measurement")
      ->default_val(bench.charges)
      ->check(CLI::Range(100, 10'000'000));
  bench_cmd->add_option("--messages", bench.messages, "Messages per broker measurement")
      ->default_val(bench.messages)
      ->check(CLI::Range(100, 10'000'000));
  bench_cmd->add_option("--events", bench.events, "Kernel events per measurement")
      ->default_val(bench.events)
      ->check(CLI::Range(1000, 1'000'000'000));

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
  if (bench_cmd->parsed()) {
    return paylab::cli::RunBench(bench);
  }
  return kExitBadInput;
}
