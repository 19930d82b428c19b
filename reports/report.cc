// Implementation of the summary and report.json (see report.h).
#include "reports/report.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace paylab::reports {

namespace {

// Quotes an argument for a POSIX shell when it needs quoting.
std::string ShellQuote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789-_./=:,+@") == std::string::npos) {
    return s;
  }
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

// The checks' verdicts: a count of each, then one line per check. A check
// that was never evaluated says so instead of "ok".
void PrintChecks(std::FILE* out, const std::vector<CheckResult>& checks) {
  int passed = 0, failed = 0, unevaluated = 0;
  for (const CheckResult& c : checks) {
    switch (VerdictOf(c)) {
      case Verdict::kOk:
        ++passed;
        break;
      case Verdict::kFail:
        ++failed;
        break;
      case Verdict::kNotEvaluated:
        ++unevaluated;
        break;
    }
  }
  fmt::print(out, "  checks      {} passed, {} failed, {} not evaluated\n", passed, failed,
             unevaluated);
  for (const CheckResult& c : checks) {
    const std::string_view required = c.required ? "required, " : "";
    switch (VerdictOf(c)) {
      case Verdict::kOk:
        fmt::print(out, "    {:<30} ok   ({}{} evaluations)\n", c.name, required, c.evaluations);
        break;
      case Verdict::kFail:
        fmt::print(out, "    {:<30} FAIL ({}{} evaluations)\n", c.name, required, c.evaluations);
        break;
      case Verdict::kNotEvaluated:
        fmt::print(out, "    {:<30} not evaluated{}\n", c.name, c.required ? " (required)" : "");
        break;
    }
  }
}

}  // namespace

std::string_view OutcomeWord(RunOutcome o) {
  switch (o) {
    case RunOutcome::kPass:
      return "pass";
    case RunOutcome::kCheckFailed:
      return "fail";
    case RunOutcome::kInternalError:
      return "error";
  }
  return "error";
}

std::string_view VerdictWord(Verdict v) {
  switch (v) {
    case Verdict::kOk:
      return "ok";
    case Verdict::kFail:
      return "fail";
    case Verdict::kNotEvaluated:
      return "not_evaluated";
  }
  return "fail";
}

std::string ReplayCommand(const RunResult& r) {
  std::string cmd = fmt::format("paylab run {} --seed {}", ShellQuote(r.scenario_file), r.seed);
  if (!r.strategy_override.empty()) {
    cmd += " --strategy " + ShellQuote(r.strategy_override);
  }
  if (r.swarm) {
    cmd += " --swarm";
  }
  for (const std::string& d : r.defects) {
    cmd += " --defect " + ShellQuote(d);
  }
  return cmd;
}

void PrintSummary(std::FILE* out, const RunResult& r, const std::string& report_path) {
  fmt::print(out, "paylab run: {} (seed {})\n", r.scenario_name, r.seed);
  for (const std::string& d : r.defects) {
    fmt::print(out, "  DEFECT      {} is switched on (a deliberate bug the checks must catch)\n",
               d);
  }
  if (r.swarm) {
    fmt::print(out, "  swarm       faults redrawn from the seed: {}\n", r.swarm_faults);
  }
  fmt::print(out, "  time        virtual {:.3f} s, wall {:.3f} s, {} kernel events\n",
             r.virtual_time_s, r.wall_time_s, r.kernel_events);
  fmt::print(out, "  operations  {} planned, {} issued, {} finished, {} retries, {} movements\n",
             r.operations_planned, r.operations_issued, r.operations_finished, r.retries,
             r.movements);
  for (const auto& [kind, outcomes] : r.operations) {
    std::string line;
    int64_t total = 0;
    for (const auto& [name, n] : outcomes) {
      total += n;
      if (n != 0) {
        line += fmt::format("  {} {}", name, n);
      }
    }
    fmt::print(out, "    {:<10} {:>6}:{}\n", kind, total, line.empty() ? "  -" : line);
  }
  std::string faults;
  for (const auto& [name, n] : r.faults) {
    faults += fmt::format("{}{} {}", faults.empty() ? "" : "  ", name, n);
  }
  fmt::print(out, "  faults      {}\n", faults);
  if (!r.messaging.empty()) {
    std::string m;
    for (const auto& [name, n] : r.messaging) {
      m += fmt::format("{}{} {}", m.empty() ? "" : "  ", name, n);
    }
    fmt::print(out, "  messaging   {}\n", m);
  }
  if (!r.payments.empty()) {
    std::string m;
    for (const auto& [name, n] : r.payments) {
      m += fmt::format("{}{} {}", m.empty() ? "" : "  ", name, n);
    }
    fmt::print(out, "  payments    {}\n", m);
  }
  if (!r.models.empty()) {
    std::string m;
    for (const auto& [name, n] : r.models) {
      m += fmt::format("{}{} {}", m.empty() ? "" : "  ", name, n);
    }
    fmt::print(out, "  models      {}\n", m);
  }
  if (!r.migration.empty()) {
    std::string m;
    for (const auto& [name, v] : r.migration) {
      m += fmt::format("{}{} {}", m.empty() ? "" : "  ", name, v);
    }
    fmt::print(out, "  migration   {}\n", m);
  }
  PrintChecks(out, r.checks);
  fmt::print(out, "  trace hash  {:016x} ({} events)\n", r.trace_hash, r.trace_events);
  for (const std::string& a : r.artifacts) {
    fmt::print(out, "  wrote       {}\n", a);
  }
  if (!report_path.empty()) {
    fmt::print(out, "  report      {}\n", report_path);
  }
  switch (r.outcome) {
    case RunOutcome::kPass:
      fmt::print(out, "  result      PASS\n");
      break;
    case RunOutcome::kCheckFailed:
      fmt::print(out, "  result      FAIL: check {} violated at t={:.6f} s\n", r.violation->check,
                 r.violation->at_s);
      fmt::print(out, "              {}\n", r.violation->detail);
      fmt::print(out, "  replay      {}\n", ReplayCommand(r));
      break;
    case RunOutcome::kInternalError:
      fmt::print(out, "  result      ERROR: {}\n", r.internal_error);
      fmt::print(out, "  replay      {}\n", ReplayCommand(r));
      break;
  }
}

nlohmann::ordered_json ReportJson(const RunResult& r) {
  nlohmann::ordered_json j;
  j["report_version"] = 1;
  j["scenario"] = {{"name", r.scenario_name}, {"file", r.scenario_file}};
  j["seed"] = r.seed;
  j["defects"] = r.defects;
  j["swarm"] = r.swarm;
  j["swarm_faults"] = r.swarm_faults.empty()
                          ? nlohmann::ordered_json(nullptr)
                          : nlohmann::ordered_json::parse(r.swarm_faults, nullptr, false);
  j["result"] = OutcomeWord(r.outcome);
  if (r.violation) {
    j["violation"] = {{"check", r.violation->check},
                      {"detail", r.violation->detail},
                      {"at_s", r.violation->at_s}};
  } else {
    j["violation"] = nullptr;
  }
  j["internal_error"] = r.internal_error.empty() ? nlohmann::ordered_json(nullptr)
                                                 : nlohmann::ordered_json(r.internal_error);
  j["replay"] = ReplayCommand(r);
  j["trace_hash"] = fmt::format("{:016x}", r.trace_hash);
  j["trace_events"] = r.trace_events;
  j["kernel_events"] = r.kernel_events;
  j["virtual_time_s"] = r.virtual_time_s;
  j["wall_time_s"] = r.wall_time_s;
  j["operations"] = {{"planned", r.operations_planned},
                     {"issued", r.operations_issued},
                     {"finished", r.operations_finished},
                     {"retries", r.retries},
                     {"movements", r.movements}};
  nlohmann::ordered_json by_kind = nlohmann::ordered_json::object();
  for (const auto& [kind, outcomes] : r.operations) {
    nlohmann::ordered_json o = nlohmann::ordered_json::object();
    for (const auto& [name, n] : outcomes) {
      o[name] = n;
    }
    by_kind[kind] = o;
  }
  j["operations"]["by_kind"] = by_kind;
  nlohmann::ordered_json faults = nlohmann::ordered_json::object();
  for (const auto& [name, n] : r.faults) {
    faults[name] = n;
  }
  j["faults"] = faults;
  j["network"] = {{"rpc_calls", r.rpc_calls}};
  nlohmann::ordered_json messaging = nlohmann::ordered_json::object();
  for (const auto& [name, n] : r.messaging) {
    messaging[name] = n;
  }
  j["messaging"] = messaging;
  nlohmann::ordered_json payments = nlohmann::ordered_json::object();
  for (const auto& [name, n] : r.payments) {
    payments[name] = n;
  }
  j["payments"] = payments;
  nlohmann::ordered_json models = nlohmann::ordered_json::object();
  for (const auto& [name, n] : r.models) {
    models[name] = n;
  }
  j["models"] = models;
  if (!r.migration.empty()) {
    nlohmann::ordered_json migration = nlohmann::ordered_json::object();
    for (const auto& [name, v] : r.migration) {
      migration[name] = v;
    }
    nlohmann::ordered_json series = nlohmann::ordered_json::array();
    for (const RunResult::MigrationSample& x : r.migration_series) {
      series.push_back({{"t_s", x.t_s}, {"migrated", x.migrated}, {"rejected", x.rejected}});
    }
    migration["series"] = series;
    j["migration"] = migration;
  }
  nlohmann::ordered_json checks = nlohmann::ordered_json::array();
  for (const CheckResult& c : r.checks) {
    checks.push_back({{"name", c.name},
                      {"status", c.violations == 0 ? "pass" : "fail"},
                      {"evaluations", c.evaluations},
                      {"violations", c.violations},
                      {"verdict", VerdictWord(VerdictOf(c))},
                      {"required", c.required}});
  }
  j["checks"] = checks;
  j["artifacts"] = r.artifacts;
  return j;
}

namespace {

std::string_view RunOutcomeName(RunOutcome o) {
  switch (o) {
    case RunOutcome::kPass:
      return "pass";
    case RunOutcome::kCheckFailed:
      return "check_failed";
    case RunOutcome::kInternalError:
      return "internal_error";
  }
  return "internal_error";
}

// Why the run ended as it did: the failed check, or the internal error.
nlohmann::ordered_json Cause(const RunResult& r) {
  if (r.outcome == RunOutcome::kInternalError) {
    return {{"kind", "internal_error"}, {"detail", r.internal_error}, {"at_s", r.virtual_time_s}};
  }
  if (r.violation) {
    return {{"kind", "check"},
            {"check", r.violation->check},
            {"detail", r.violation->detail},
            {"at_s", r.violation->at_s}};
  }
  return nullptr;
}

}  // namespace

nlohmann::ordered_json RunJson(const RunResult& r) {
  nlohmann::ordered_json j;
  j["run_version"] = 1;
  j["scenario"] = {{"name", r.scenario_name}, {"file", r.scenario_file}};
  j["seed"] = r.seed;
  j["defects"] = r.defects;
  j["swarm"] = r.swarm;
  j["strategy"] = r.strategy_override.empty() ? nlohmann::ordered_json(nullptr)
                                              : nlohmann::ordered_json(r.strategy_override);
  j["replay"] = ReplayCommand(r);
  j["outcome"] = RunOutcomeName(r.outcome);
  j["stopped_early"] = r.stopped_early;
  j["stopped_at_s"] = r.virtual_time_s;
  j["cause"] = Cause(r);
  j["trace_hash"] = fmt::format("{:016x}", r.trace_hash);
  j["databases"] = r.databases;
  return j;
}

std::string WriteFileAtomic(const std::filesystem::path& path, const std::string& content) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) {
      return fmt::format("cannot write {}: {}", tmp.string(), std::strerror(errno));
    }
    f << content;
    f.flush();
    if (!f) {
      return fmt::format("cannot write {}: {}", tmp.string(), std::strerror(errno));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    return fmt::format("cannot rename {} to {}: {}", tmp.string(), path.string(), ec.message());
  }
  return "";
}

}  // namespace paylab::reports
