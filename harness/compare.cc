// Implementation of `paylab compare` (see compare.h).
#include "harness/compare.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "reports/report.h"
#include "reports/sweep_results.h"
#include "harness/runner.h"
#include "sim/check.h"

namespace paylab::scenarios {

namespace {

using Json = nlohmann::ordered_json;

// The figures a comparison shows, in order, with what they mean (the HTML
// page's table and guide, and README "Reading a comparison").
struct FigureInfo {
  std::string_view key;
  std::string_view label;
  std::string_view meaning;
};
constexpr FigureInfo kFigures[] = {
    {"unavailable_user_s", "Unavailability, user-seconds",
     "the time users could not use their points, summed over all users"},
    {"unavailable_p50_s", "Per user, median (s)",
     "half of the users were unavailable at most this long"},
    {"unavailable_p99_s", "Per user, p99 (s)",
     "99% of the users were unavailable at most this long"},
    {"unavailable_max_s", "Per user, max (s)", "the longest any one user waited"},
    {"full_maintenance_s", "Full maintenance (s)", "how long everything was stopped for everyone"},
    {"operations_rejected", "Requests rejected",
     "requests refused for maintenance, retries included"},
    {"payments_failed", "Payments failed", "declined, expired, refused or given up"},
    {"recon_differences", "Reconciliation: differences", "copies reconciliation found wrong"},
    {"switch_inconsistencies", "Inconsistencies at the switch",
     "copies that differed from the moved balance when a user switched"},
    {"repairs", "Repairs", "differences repaired (by reconciliation or at the switch)"},
    {"money_errors", "Money errors", "violations of the money checks: must be 0"},
    {"duplicates_prevented", "Duplicates prevented",
     "retries of proxied requests routed to the wallet by attempt tracking"},
    {"cohorts_rolled_back", "Cohorts rolled back", "partial maintenance: windows that failed"},
    {"time_to_complete_s", "Time to complete (s)", "from the migration's start to its end"},
};

// The scenario's fingerprint (FNV-1a of its canonical JSON): a runs file
// line made from another version of the scenario is not reused.
std::string Fingerprint(const Scenario& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : ToJson(s).dump()) {
    h = (h ^ c) * 1099511628211ull;
  }
  return fmt::format("{:016x}", h);
}

std::string RunsPath(const CompareOptions& o) {
  return (std::filesystem::path(o.out_dir) / "compare-runs.jsonl").string();
}

Json RunToJson(const CompareRun& r, const std::string& fingerprint) {
  Json figures = Json::object();
  for (const auto& [k, v] : r.figures) {
    figures[k] = v;
  }
  Json series = Json::array();
  for (const auto& s : r.series) {
    series.push_back(Json::array({s.t_s, s.migrated, s.rejected}));
  }
  return Json{{"scenario_fingerprint", fingerprint},
              {"strategy", system::MigrationStrategyName(r.strategy)},
              {"seed", r.seed},
              {"passed", r.passed},
              {"check", r.check},
              {"detail", r.detail},
              {"replay", r.replay},
              {"wall_time_s", r.wall_time_s},
              {"figures", figures},
              {"series", series}};
}

std::optional<CompareRun> RunFromJson(const std::string& line, const std::string& fingerprint) {
  const Json j = Json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return std::nullopt;
  }
  try {
    if (j.at("scenario_fingerprint").get<std::string>() != fingerprint) {
      return std::nullopt;
    }
    CompareRun r;
    const auto st = ParseStrategy(j.at("strategy").get<std::string>());
    if (!st) {
      return std::nullopt;
    }
    r.strategy = *st;
    r.seed = j.at("seed").get<uint64_t>();
    r.passed = j.at("passed").get<bool>();
    r.check = j.at("check").get<std::string>();
    r.detail = j.at("detail").get<std::string>();
    r.replay = j.at("replay").get<std::string>();
    r.wall_time_s = j.at("wall_time_s").get<double>();
    for (const auto& [k, v] : j.at("figures").items()) {
      r.figures.emplace_back(k, v.get<double>());
    }
    for (const auto& s : j.at("series")) {
      r.series.push_back(reports::RunResult::MigrationSample{
          s.at(0).get<double>(), s.at(1).get<int64_t>(), s.at(2).get<int64_t>()});
    }
    return r;
  } catch (const std::exception&) {
    return std::nullopt;  // a torn or foreign line: the run is made again
  }
}

double Figure(const CompareRun& r, std::string_view key) {
  for (const auto& [k, v] : r.figures) {
    if (k == key) {
      return v;
    }
  }
  return 0;
}

struct Stats {
  double mean = 0;
  double min = 0;
  double max = 0;
};

Stats StatsOf(const std::vector<const CompareRun*>& runs, std::string_view key) {
  Stats s;
  if (runs.empty()) {
    return s;
  }
  s.min = s.max = Figure(*runs[0], key);
  double sum = 0;
  for (const CompareRun* r : runs) {
    const double v = Figure(*r, key);
    sum += v;
    s.min = std::min(s.min, v);
    s.max = std::max(s.max, v);
  }
  s.mean = sum / static_cast<double>(runs.size());
  return s;
}

// The mean series of a strategy's runs on the sampling grid (the end-of-run
// sample dropped; a run that ended early keeps its last value).
struct MeanPoint {
  double t_s = 0;
  double migrated = 0;
  double rejected = 0;
};
std::vector<MeanPoint> MeanSeries(const std::vector<const CompareRun*>& runs) {
  size_t len = 0;
  const std::vector<reports::RunResult::MigrationSample>* longest = nullptr;
  for (const CompareRun* r : runs) {
    const size_t n = r->series.empty() ? 0 : r->series.size() - 1;
    if (n > len) {
      len = n;
      longest = &r->series;
    }
  }
  std::vector<MeanPoint> out(len);
  for (size_t k = 0; k < len; ++k) {
    out[k].t_s = (*longest)[k].t_s;
    for (const CompareRun* r : runs) {
      const auto& s = r->series;
      const auto& x = s[std::min(k, s.size() - 1)];
      out[k].migrated += static_cast<double>(x.migrated);
      out[k].rejected += static_cast<double>(x.rejected);
    }
    out[k].migrated /= static_cast<double>(runs.size());
    out[k].rejected /= static_cast<double>(runs.size());
  }
  return out;
}

std::map<system::MigrationStrategy, std::vector<const CompareRun*>> ByStrategy(
    const CompareOutcome& out) {
  std::map<system::MigrationStrategy, std::vector<const CompareRun*>> m;
  for (const CompareRun& r : out.runs) {
    m[r.strategy].push_back(&r);
  }
  return m;
}

std::string Num(double v) {
  if (v == static_cast<double>(static_cast<int64_t>(v)) && std::abs(v) < 1e15) {
    return fmt::format("{}", static_cast<int64_t>(v));
  }
  return std::abs(v) >= 100 ? fmt::format("{:.0f}", v) : fmt::format("{:.3g}", v);
}

constexpr std::string_view kColours[] = {"#c0392b", "#d68910", "#2471a3", "#229954"};

// A line chart of one series per strategy.
std::string LineChart(
    std::string_view id, std::string_view title, std::string_view y_label,
    const std::vector<std::pair<system::MigrationStrategy, std::vector<std::pair<double, double>>>>&
        lines) {
  constexpr double W = 720, H = 300, L = 70, R = 20, T = 30, B = 45;
  double xmax = 1, ymax = 1;
  for (const auto& [st, pts] : lines) {
    for (const auto& [x, y] : pts) {
      xmax = std::max(xmax, x);
      ymax = std::max(ymax, y);
    }
  }
  auto X = [&](double x) { return L + (W - L - R) * x / xmax; };
  auto Y = [&](double y) { return H - B - (H - T - B) * y / ymax; };
  std::string svg = fmt::format(
      "<svg id=\"{}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" "
      "width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{}\">\n",
      id, W, H, W, H, reports::XmlEscape(title));
  svg += fmt::format("<text x=\"{}\" y=\"18\" class=\"title\">{}</text>\n", L,
                     reports::XmlEscape(title));
  for (int i = 0; i <= 4; ++i) {
    const double y = ymax * i / 4;
    svg += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" class=\"grid\"/>"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"tick\" text-anchor=\"end\">{}</text>\n",
        L, Y(y), W - R, Y(y), L - 6, Y(y) + 4, Num(std::round(y)));
    const double x = xmax * i / 4;
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"tick\" text-anchor=\"middle\">{}"
        "</text>\n",
        X(x), H - B + 16, Num(std::round(x)));
  }
  svg += fmt::format(
      "<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"axis\" text-anchor=\"middle\">virtual time (s)"
      "</text>\n<text x=\"14\" y=\"{:.1f}\" class=\"axis\" transform=\"rotate(-90 14 {:.1f})\" "
      "text-anchor=\"middle\">{}</text>\n",
      (L + W - R) / 2, H - 8, (T + H - B) / 2, (T + H - B) / 2, reports::XmlEscape(y_label));
  size_t i = 0;
  for (const auto& [st, pts] : lines) {
    const std::string_view colour = kColours[static_cast<size_t>(st) % 4];
    std::string d;
    for (const auto& [x, y] : pts) {
      d += fmt::format("{}{:.1f},{:.1f}", d.empty() ? "M" : " L", X(x), Y(y));
    }
    svg += fmt::format(
        "<path class=\"series\" data-strategy=\"{}\" d=\"{}\" stroke=\"{}\" fill=\"none\" "
        "stroke-width=\"2\"/>\n",
        system::MigrationStrategyName(st), d.empty() ? "M0,0" : d, colour);
    svg += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"12\" height=\"4\" fill=\"{}\"/><text x=\"{:.1f}\" "
        "y=\"{:.1f}\" class=\"legend\">{}</text>\n",
        L + 10, T + 8 + 16.0 * static_cast<double>(i), colour, L + 28,
        T + 13 + 16.0 * static_cast<double>(i), system::MigrationStrategyName(st));
    ++i;
  }
  svg += "</svg>\n";
  return svg;
}

// A horizontal bar chart: one bar per strategy.
std::string BarChart(std::string_view id, std::string_view title,
                     const std::vector<std::pair<system::MigrationStrategy, double>>& bars) {
  constexpr double W = 720, L = 170, R = 90, T = 30, Row = 28;
  const double H = T + Row * static_cast<double>(bars.size()) + 10;
  double vmax = 1;
  for (const auto& [st, v] : bars) {
    vmax = std::max(vmax, v);
  }
  std::string svg = fmt::format(
      "<svg id=\"{}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" "
      "width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{}\">\n"
      "<text x=\"10\" y=\"18\" class=\"title\">{}</text>\n",
      id, W, H, W, H, reports::XmlEscape(title), reports::XmlEscape(title));
  double y = T;
  for (const auto& [st, v] : bars) {
    const double w = (W - L - R) * v / vmax;
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"tick\" text-anchor=\"end\">{}</text>"
        "<rect class=\"bar\" data-strategy=\"{}\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" "
        "height=\"18\" fill=\"{}\"/><text x=\"{:.1f}\" y=\"{:.1f}\" class=\"tick\">{}</text>\n",
        L - 8, y + 13, system::MigrationStrategyName(st), system::MigrationStrategyName(st), L, y,
        std::max(w, 1.0), kColours[static_cast<size_t>(st) % 4], L + std::max(w, 1.0) + 6, y + 13,
        Num(v));
    y += Row;
  }
  svg += "</svg>\n";
  return svg;
}

using RunKey = std::pair<system::MigrationStrategy, uint64_t>;

struct Job {
  system::MigrationStrategy strategy;
  uint64_t seed;
};

// Returns "" or why the comparison cannot run (the scenario has no
// migration, the output directory cannot be made).
std::string CheckCanRun(const Scenario& scenario, const CompareOptions& o) {
  if (!scenario.migration.enabled) {
    return fmt::format("{}: /migration/enabled is false: compare runs migration strategies",
                       o.scenario_file);
  }
  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  if (ec) {
    return fmt::format("--out {}: cannot create the directory: {}", o.out_dir, ec.message());
  }
  return "";
}

// Runs done before (an interrupted comparison), from the runs file: they
// are reused.
std::map<RunKey, CompareRun> ReadDoneRuns(const CompareOptions& o, const std::string& fingerprint) {
  std::map<RunKey, CompareRun> done;
  std::ifstream in(RunsPath(o));
  std::string line;
  while (std::getline(in, line)) {
    if (auto r = RunFromJson(line, fingerprint)) {
      done[{r->strategy, r->seed}] = std::move(*r);
    }
  }
  return done;
}

// The runs not done yet, by strategy (in the order asked), then seed.
std::vector<Job> PendingJobs(const CompareOptions& o, const std::map<RunKey, CompareRun>& done) {
  std::vector<Job> jobs;
  for (system::MigrationStrategy st : o.strategies) {
    for (uint64_t seed = o.first;; ++seed) {
      if (done.count({st, seed}) == 0) {
        jobs.push_back(Job{st, seed});
      }
      if (seed == o.last) {
        break;
      }
    }
  }
  return jobs;
}

// One strategy under one seed, run and kept as compare keeps it.
CompareRun RunJob(const Scenario& scenario, const CompareOptions& o, const Job& job) {
  RunOptions ro;
  ro.seed = job.seed;
  ro.scenario_file = o.scenario_file;
  ro.strategy = std::string(system::MigrationStrategyName(job.strategy));
  const reports::RunResult r = RunScenario(scenario, ro);
  CompareRun c;
  c.strategy = job.strategy;
  c.seed = job.seed;
  c.passed = r.outcome == reports::RunOutcome::kPass;
  if (r.outcome == reports::RunOutcome::kInternalError) {
    c.check = "internal_error";
    c.detail = r.internal_error;
  } else if (r.violation) {
    c.check = r.violation->check;
    c.detail = r.violation->detail;
  }
  c.replay = reports::ReplayCommand(r);
  c.wall_time_s = r.wall_time_s;
  c.figures = r.migration;
  c.series = r.migration_series;
  return c;
}

// Runs the pending jobs on o.jobs threads. Each finished run is appended to
// the runs file at once (so an interrupted comparison loses only the runs
// in flight), reported, and kept with the runs done before.
class ParallelRuns {
 public:
  ParallelRuns(const Scenario& scenario, const CompareOptions& o, const std::vector<Job>& jobs,
               const std::string& fingerprint, std::ofstream* log,
               std::map<RunKey, CompareRun>* done)
      : scenario_(scenario),
        o_(o),
        jobs_(jobs),
        fingerprint_(fingerprint),
        log_(*log),
        done_(*done) {}

  // Returns when every job has run.
  void Run(int64_t total, const CompareProgressFn& progress, CompareOutcome* out) {
    int64_t finished = out->reused;
    std::vector<std::thread> workers;
    const int64_t n =
        std::max<int64_t>(1, std::min<int64_t>(o_.jobs, static_cast<int64_t>(jobs_.size())));
    for (int64_t k = 0; k < n; ++k) {
      workers.emplace_back([&] { Work(total, progress, &finished, out); });
    }
    for (std::thread& t : workers) {
      t.join();
    }
  }

 private:
  void Work(int64_t total, const CompareProgressFn& progress, int64_t* finished,
            CompareOutcome* out) {
    for (;;) {
      const size_t i = next_.fetch_add(1);
      if (i >= jobs_.size()) {
        return;
      }
      CompareRun c = RunJob(scenario_, o_, jobs_[i]);
      const std::lock_guard<std::mutex> lock(mu_);
      log_ << RunToJson(c, fingerprint_).dump() << '\n';
      log_.flush();
      ++*finished;
      ++out->ran;
      if (progress) {
        progress(*finished, total, c);
      }
      PAYLAB_CHECK(!done_.contains({c.strategy, c.seed}));
      done_[{c.strategy, c.seed}] = std::move(c);
    }
  }

  const Scenario& scenario_;
  const CompareOptions& o_;
  const std::vector<Job>& jobs_;
  const std::string& fingerprint_;
  std::atomic<size_t> next_{0};
  std::mutex mu_;  // guards what the workers write: the log, the outcome, done_
  std::ofstream& log_;
  std::map<RunKey, CompareRun>& done_;
};

// Every run, by strategy (in the order asked), then seed.
std::vector<CompareRun> InOrder(const CompareOptions& o,
                                const std::map<RunKey, CompareRun>& done) {
  std::vector<CompareRun> runs;
  for (system::MigrationStrategy st : o.strategies) {
    for (uint64_t seed = o.first;; ++seed) {
      runs.push_back(done.at({st, seed}));
      if (seed == o.last) {
        break;
      }
    }
  }
  return runs;
}

}  // namespace

std::string ParseStrategies(const std::string& text, std::vector<system::MigrationStrategy>* out) {
  out->clear();
  size_t start = 0;
  std::set<system::MigrationStrategy> seen;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string name =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const auto st = ParseStrategy(name);
    if (!st) {
      return fmt::format(
          "--strategies {}: unknown strategy \"{}\"; expected a comma-separated "
          "list of {}",
          text, name, StrategyNames());
    }
    if (!seen.insert(*st).second) {
      return fmt::format("--strategies {}: {} is listed twice", text, name);
    }
    out->push_back(*st);
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  return "";
}

CompareOutcome RunCompare(const Scenario& scenario, const CompareOptions& o,
                          const CompareProgressFn& progress) {
  const auto wall_start = std::chrono::steady_clock::now();
  CompareOutcome out;
  out.error = CheckCanRun(scenario, o);
  if (!out.error.empty()) {
    return out;
  }
  const std::string fingerprint = Fingerprint(scenario);
  std::map<RunKey, CompareRun> done = ReadDoneRuns(o, fingerprint);
  const std::vector<Job> jobs = PendingJobs(o, done);
  const int64_t total =
      static_cast<int64_t>(o.strategies.size()) * static_cast<int64_t>(o.last - o.first + 1);
  out.reused = total - static_cast<int64_t>(jobs.size());
  std::ofstream log(RunsPath(o), std::ios::app);
  if (!log) {
    out.error = fmt::format("--out {}: cannot write {}", o.out_dir, RunsPath(o));
    return out;
  }
  ParallelRuns(scenario, o, jobs, fingerprint, &log, &done).Run(total, progress, &out);
  out.runs = InOrder(o, done);
  out.wall_time_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return out;
}

std::string CompareJson(const Scenario& scenario, const CompareOptions& o,
                        const CompareOutcome& out) {
  const auto by = ByStrategy(out);
  Json strategies = Json::array();
  for (system::MigrationStrategy st : o.strategies) {
    const auto& runs = by.at(st);
    Json figures = Json::object();
    for (const FigureInfo& f : kFigures) {
      const Stats s = StatsOf(runs, f.key);
      figures[std::string(f.key)] = {{"mean", s.mean}, {"min", s.min}, {"max", s.max}};
    }
    Json failures = Json::array();
    int64_t passed = 0;
    for (const CompareRun* r : runs) {
      if (r->passed) {
        ++passed;
      } else {
        failures.push_back(
            {{"seed", r->seed}, {"check", r->check}, {"detail", r->detail}, {"replay", r->replay}});
      }
    }
    Json series = Json::array();
    for (const MeanPoint& p : MeanSeries(runs)) {
      series.push_back({{"t_s", p.t_s}, {"migrated", p.migrated}, {"rejected", p.rejected}});
    }
    strategies.push_back({{"name", system::MigrationStrategyName(st)},
                          {"runs", runs.size()},
                          {"passed", passed},
                          {"failures", failures},
                          {"figures", figures},
                          {"series", series}});
  }
  // Strategies from the least user-visible unavailability to the most.
  std::vector<system::MigrationStrategy> order = o.strategies;
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) {
    return StatsOf(by.at(a), "unavailable_user_s").mean <
           StatsOf(by.at(b), "unavailable_user_s").mean;
  });
  Json ranking = Json::array();
  for (auto st : order) {
    ranking.push_back(system::MigrationStrategyName(st));
  }
  Json j = {{"scenario", scenario.name},
            {"scenario_file", o.scenario_file},
            {"users", scenario.population.users},
            {"seeds", {{"first", o.first}, {"last", o.last}}},
            {"runs", out.runs.size()},
            {"runs_reused", out.reused},
            {"wall_time_s", out.wall_time_s},
            {"least_unavailable_first", ranking},
            {"strategies", strategies}};
  return j.dump(2) + "\n";
}

std::string CompareHtml(const Scenario& scenario, const CompareOptions& o,
                        const CompareOutcome& out) {
  const auto by = ByStrategy(out);
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += fmt::format("<title>paylab compare: {}</title>\n", reports::XmlEscape(scenario.name));
  h += R"css(<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 960px; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.range, .range { color: #777; font-size: 0.85em; }
td.best { background: #e8f6ee; }
tr.money td { font-weight: bold; }
.chart { display: block; margin: 1.5em 0; background: #fafafa; }
.chart .grid { stroke: #ddd; }
.chart .tick, .chart .legend { font-size: 11px; fill: #444; }
.chart .axis { font-size: 12px; fill: #444; }
.chart .title { font-size: 14px; font-weight: bold; }
.pass { color: #229954; } .fail { color: #c0392b; }
</style>
</head>
<body>
)css";
  h += fmt::format("<h1>Migration strategies compared: {}</h1>\n",
                   reports::XmlEscape(scenario.name));
  int64_t failed = 0;
  for (const CompareRun& r : out.runs) {
    failed += r.passed ? 0 : 1;
  }
  h += fmt::format(
      "<p id=\"summary\">{} users; {} strategies &times; seeds {}..{} = {} runs, the same workload "
      "and faults for every strategy. <span class=\"{}\">{} runs failed a check.</span></p>\n",
      scenario.population.users, o.strategies.size(), o.first, o.last, out.runs.size(),
      failed == 0 ? "pass" : "fail", failed);
  // The figures table.
  h += "<h2>Figures</h2>\n<p>Mean over the seeds; below it, the smallest and largest run.</p>\n";
  h += "<table id=\"figures\">\n<thead><tr><th>Figure</th>";
  for (auto st : o.strategies) {
    h += fmt::format("<th data-strategy=\"{0}\">{0}</th>", system::MigrationStrategyName(st));
  }
  h += "</tr></thead>\n<tbody>\n";
  for (const FigureInfo& f : kFigures) {
    h += fmt::format("<tr data-figure=\"{}\"{}><td title=\"{}\">{}</td>", f.key,
                     f.key == "money_errors" ? " class=\"money\"" : "",
                     reports::XmlEscape(f.meaning), reports::XmlEscape(f.label));
    for (auto st : o.strategies) {
      const Stats s = StatsOf(by.at(st), f.key);
      h += fmt::format("<td data-mean=\"{}\">{}<br><span class=\"range\">{}&ndash;{}</span></td>",
                       s.mean, Num(s.mean), Num(s.min), Num(s.max));
    }
    h += "</tr>\n";
  }
  h += "</tbody>\n</table>\n";
  // The charts.
  std::vector<std::pair<system::MigrationStrategy, double>> bars;
  std::vector<std::pair<system::MigrationStrategy, std::vector<std::pair<double, double>>>>
      migrated, rejected;
  for (auto st : o.strategies) {
    bars.emplace_back(st, StatsOf(by.at(st), "unavailable_user_s").mean);
    std::vector<std::pair<double, double>> m, r;
    for (const MeanPoint& p : MeanSeries(by.at(st))) {
      m.emplace_back(p.t_s, p.migrated);
      r.emplace_back(p.t_s, p.rejected);
    }
    migrated.emplace_back(st, std::move(m));
    rejected.emplace_back(st, std::move(r));
  }
  h += "<h2>Charts</h2>\n";
  h += BarChart("chart-unavailability", "User-visible unavailability (user-seconds, mean)", bars);
  h += LineChart("chart-migrated", "Users migrated over time (mean over seeds)", "users migrated",
                 migrated);
  h += LineChart("chart-rejected", "Requests rejected for maintenance, cumulative (mean)",
                 "requests rejected", rejected);
  // Failures.
  h += "<h2>Runs that failed a check</h2>\n<table id=\"failures\">\n<thead><tr><th>Strategy</th>"
       "<th>Seed</th><th>Check</th><th>Replay</th></tr></thead>\n<tbody>\n";
  if (failed == 0) {
    h += "<tr><td colspan=\"4\">none: every run passed every check</td></tr>\n";
  }
  for (const CompareRun& r : out.runs) {
    if (!r.passed) {
      h += fmt::format(
          "<tr><td>{}</td><td>{}</td><td title=\"{}\">{}</td><td><code>{}</code>"
          "</td></tr>\n",
          system::MigrationStrategyName(r.strategy), r.seed, reports::XmlEscape(r.detail),
          reports::XmlEscape(r.check), reports::XmlEscape(r.replay));
    }
  }
  h += "</tbody>\n</table>\n";
  h += R"html(<h2>How to read this</h2>
<ul id="guide">
<li><b>Unavailability</b> counts the time a user's points could not be used: the user's
maintenance window, an online job's own time on the user, or a full maintenance window
(then nothing at all works). The table gives the total over all users and the per-user
median, p99 and maximum.</li>
<li><b>Requests rejected</b> are the requests that users actually saw refused; a credit
refused during a window is retried after it and counted each time.</li>
<li><b>Reconciliation and repairs</b> show how often the copies kept by dual-write were
wrong, and were put right before they could matter.</li>
<li><b>Money errors</b> must be 0 for every strategy: every check over both systems held.</li>
<li><b>Duplicates prevented</b> are retries of requests that started at the wallet before the
user's switch, which attempt tracking sent back to the wallet instead of processing them again.</li>
<li>Replay any run with the command in the failures table, or
<code>paylab run SCENARIO --seed N --strategy NAME</code>.</li>
<li>A shaded cell is the lowest mean of its row (lower is better for every figure but
duplicates prevented).</li>
</ul>
<script>
// Shades the lowest mean of each row; the page reads the same without it.
for (const row of document.querySelectorAll('#figures tbody tr')) {
  if (row.dataset.figure === 'duplicates_prevented') continue;
  const cells = [...row.querySelectorAll('td[data-mean]')];
  const low = Math.min(...cells.map(c => Number(c.dataset.mean)));
  for (const c of cells) if (Number(c.dataset.mean) === low) c.classList.add('best');
}
</script>
</body>
</html>
)html";
  return h;
}

}  // namespace paylab::scenarios
