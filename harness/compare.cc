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

#include "reports/compare_page.h"
#include "reports/report.h"
#include "harness/runner.h"
#include "sim/check.h"

namespace paylab::scenarios {

namespace {

using Json = nlohmann::ordered_json;

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

reports::FigureStats StatsOf(const std::vector<const CompareRun*>& runs, std::string_view key) {
  reports::FigureStats s;
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
std::vector<reports::MeanSample> MeanSeries(const std::vector<const CompareRun*>& runs) {
  size_t len = 0;
  const std::vector<reports::RunResult::MigrationSample>* longest = nullptr;
  for (const CompareRun* r : runs) {
    const size_t n = r->series.empty() ? 0 : r->series.size() - 1;
    if (n > len) {
      len = n;
      longest = &r->series;
    }
  }
  std::vector<reports::MeanSample> out(len);
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

reports::StrategySummary SummaryOf(system::MigrationStrategy st,
                                   const std::vector<const CompareRun*>& runs) {
  reports::StrategySummary s;
  s.name = std::string(system::MigrationStrategyName(st));
  s.colour = static_cast<size_t>(st);
  s.runs = static_cast<int64_t>(runs.size());
  for (const reports::CompareFigure& f : reports::CompareFigures()) {
    s.figures.push_back(StatsOf(runs, f.key));
  }
  for (const CompareRun* r : runs) {
    if (r->passed) {
      ++s.passed;
    } else {
      s.failures.push_back(reports::FailedRun{r->seed, r->check, r->detail, r->replay});
    }
  }
  s.series = MeanSeries(runs);
  return s;
}

// The comparison's figures, as compare.json and compare.html show them.
reports::Comparison ComparisonOf(const Scenario& scenario, const CompareOptions& o,
                                 const CompareOutcome& out) {
  const auto by = ByStrategy(out);
  reports::Comparison c;
  c.scenario = scenario.name;
  c.users = scenario.population.users;
  c.seed_first = o.first;
  c.seed_last = o.last;
  c.runs = static_cast<int64_t>(out.runs.size());
  for (system::MigrationStrategy st : o.strategies) {
    c.strategies.push_back(SummaryOf(st, by.at(st)));
  }
  return c;
}

// Where `key` stands in reports::CompareFigures().
size_t FigureIndex(std::string_view key) {
  const auto figures = reports::CompareFigures();
  const auto it = std::find_if(figures.begin(), figures.end(),
                               [key](const reports::CompareFigure& f) { return f.key == key; });
  PAYLAB_CHECK(it != figures.end());
  return static_cast<size_t>(it - figures.begin());
}

Json StrategyJson(const reports::StrategySummary& st) {
  const auto keys = reports::CompareFigures();
  Json figures = Json::object();
  for (size_t i = 0; i < keys.size(); ++i) {
    const reports::FigureStats& s = st.figures[i];
    figures[std::string(keys[i].key)] = {{"mean", s.mean}, {"min", s.min}, {"max", s.max}};
  }
  Json failures = Json::array();
  for (const reports::FailedRun& r : st.failures) {
    failures.push_back(
        {{"seed", r.seed}, {"check", r.check}, {"detail", r.detail}, {"replay", r.replay}});
  }
  Json series = Json::array();
  for (const reports::MeanSample& p : st.series) {
    series.push_back({{"t_s", p.t_s}, {"migrated", p.migrated}, {"rejected", p.rejected}});
  }
  return {{"name", st.name},
          {"runs", st.runs},
          {"passed", st.passed},
          {"failures", failures},
          {"figures", figures},
          {"series", series}};
}

// Strategy names from the least user-visible unavailability to the most.
Json LeastUnavailableFirst(const reports::Comparison& c) {
  const size_t unavailable = FigureIndex("unavailable_user_s");
  std::vector<const reports::StrategySummary*> order;
  for (const reports::StrategySummary& st : c.strategies) {
    order.push_back(&st);
  }
  std::stable_sort(order.begin(), order.end(), [unavailable](auto a, auto b) {
    return a->figures[unavailable].mean < b->figures[unavailable].mean;
  });
  Json ranking = Json::array();
  for (const reports::StrategySummary* st : order) {
    ranking.push_back(st->name);
  }
  return ranking;
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
  const reports::Comparison c = ComparisonOf(scenario, o, out);
  Json strategies = Json::array();
  for (const reports::StrategySummary& st : c.strategies) {
    strategies.push_back(StrategyJson(st));
  }
  Json j = {{"scenario", scenario.name},
            {"scenario_file", o.scenario_file},
            {"users", scenario.population.users},
            {"seeds", {{"first", o.first}, {"last", o.last}}},
            {"runs", out.runs.size()},
            {"runs_reused", out.reused},
            {"wall_time_s", out.wall_time_s},
            {"least_unavailable_first", LeastUnavailableFirst(c)},
            {"strategies", strategies}};
  return j.dump(2) + "\n";
}

std::string CompareHtml(const Scenario& scenario, const CompareOptions& o,
                        const CompareOutcome& out) {
  return reports::ComparePageHtml(ComparisonOf(scenario, o, out));
}

}  // namespace paylab::scenarios
