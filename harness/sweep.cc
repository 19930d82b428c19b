// Implementation of sweeps (see sweep.h).
#include "harness/sweep.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "reports/report.h"
#include "harness/runner.h"
#include "sim/check.h"

namespace paylab::scenarios {

namespace {

std::string Describe(const reports::SweepIdentity& id) {
  std::string defects;
  for (const std::string& d : id.defects) {
    defects += (defects.empty() ? "" : ",") + d;
  }
  return fmt::format("scenario {}, defects [{}], swarm {}", id.scenario_name, defects,
                     id.swarm ? "on" : "off");
}

reports::SweepIdentity IdentityOf(const Scenario& scenario, const SweepOptions& o) {
  reports::SweepIdentity identity{scenario.name, o.scenario_file, {}, o.swarm};
  for (const system::DefectInfo& d : system::DefectCatalogue()) {
    if (o.defects.Has(d.defect)) {
      identity.defects.emplace_back(d.name);
    }
  }
  return identity;
}

// Whether the seed is one of this shard's (whichever range it is in).
bool InShard(uint64_t seed, const SweepOptions& o) {
  return (seed - o.first) % static_cast<uint64_t>(o.shard_count) ==
         static_cast<uint64_t>(o.shard_index - 1);
}

// The seeds the results file holds already, by seed. Returns "" or the
// error (unreadable file, or records of another sweep).
std::string ReadDoneSeeds(const SweepOptions& o, const reports::SweepIdentity& identity,
                          std::map<uint64_t, reports::SeedRecord>* done, int64_t* torn_lines) {
  if (o.results_path.empty()) {
    return "";
  }
  std::vector<reports::SeedRecord> existing;
  if (std::string error = reports::ReadResults(o.results_path, &existing, torn_lines);
      !error.empty()) {
    return error;
  }
  for (reports::SeedRecord& r : existing) {
    if (!(r.sweep == identity)) {
      return fmt::format(
          "--results {}: holds seed {} of another sweep ({}), not of this one ({}); "
          "give another --results file",
          o.results_path, r.seed, Describe(r.sweep), Describe(identity));
    }
    (*done)[r.seed] = std::move(r);
  }
  return "";
}

// This shard's seeds not done yet, in order; counts the shard's seeds into
// *total and those done already into *skipped.
std::vector<uint64_t> SeedsToRun(const SweepOptions& o,
                                 const std::map<uint64_t, reports::SeedRecord>& done,
                                 int64_t* total, int64_t* skipped) {
  std::vector<uint64_t> todo;
  for (uint64_t seed = o.first;; ++seed) {
    if (InShard(seed, o)) {
      ++*total;
      if (done.contains(seed)) {
        ++*skipped;
      } else {
        todo.push_back(seed);
      }
    }
    if (seed == o.last) {
      break;
    }
  }
  return todo;
}

// Records of seeds outside this shard stay in the file but are not ours.
void DropOtherSeeds(const SweepOptions& o, std::map<uint64_t, reports::SeedRecord>* done) {
  for (auto it = done->begin(); it != done->end();) {
    const uint64_t s = it->first;
    const bool ours = s >= o.first && s <= o.last && InShard(s, o);
    it = ours ? std::next(it) : done->erase(it);
  }
}

// Opens the results file for appending, first rewriting it without its
// torn lines. Returns "" or the error.
std::string OpenResults(const SweepOptions& o, int64_t torn_lines,
                        reports::ResultsAppender* appender) {
  if (torn_lines > 0) {
    std::vector<reports::SeedRecord> keep;
    int64_t ignored = 0;
    reports::ReadResults(o.results_path, &keep, &ignored);
    std::string text;
    for (const reports::SeedRecord& r : keep) {
      text += reports::ToJsonLine(r) + "\n";
    }
    if (std::string error = reports::WriteFileAtomic(o.results_path, text); !error.empty()) {
      return error;
    }
  }
  return appender->Open(o.results_path);
}

// Runs seeds on worker threads and hands each record back as it finishes.
// Workers stop taking seeds once Stop() is called; the seeds they are
// running finish and are handed back.
class SeedPool {
 public:
  SeedPool(const Scenario& scenario, const SweepOptions& o, const std::vector<uint64_t>& todo,
           bool stopped)
      : scenario_(scenario), o_(o), todo_(todo), stop_(stopped) {
    const int64_t jobs = std::max<int64_t>(1, std::min<int64_t>(o.jobs, todo.size()));
    running_ = todo.empty() ? 0 : jobs;
    for (int64_t t = 0; t < jobs && !todo.empty(); ++t) {
      workers_.emplace_back([this] { Work(); });
    }
  }

  ~SeedPool() {
    for (std::thread& t : workers_) {
      t.join();
    }
  }

  // The next finished record; nothing once every worker has stopped and
  // every record was handed back.
  std::optional<reports::SeedRecord> Next() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !finished_.empty() || running_ == 0; });
    if (finished_.empty()) {
      return std::nullopt;
    }
    reports::SeedRecord rec = std::move(finished_.front());
    finished_.pop_front();
    return rec;
  }

  void Stop() { stop_ = true; }

 private:
  void Work() {
    for (;;) {
      const size_t i = next_.fetch_add(1);
      if (i >= todo_.size() || stop_.load()) {
        break;
      }
      RunOptions ro;
      ro.seed = todo_[i];
      ro.scenario_file = o_.scenario_file;
      ro.defects = o_.defects;
      ro.swarm = o_.swarm;
      reports::SeedRecord rec = reports::RecordOf(RunScenario(scenario_, ro));
      std::lock_guard<std::mutex> lock(mu_);
      finished_.push_back(std::move(rec));
      cv_.notify_one();
    }
    std::lock_guard<std::mutex> lock(mu_);
    --running_;
    cv_.notify_one();
  }

  const Scenario& scenario_;
  const SweepOptions& o_;
  const std::vector<uint64_t>& todo_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<reports::SeedRecord> finished_;  // guarded by mu_
  int64_t running_ = 0;                       // workers not yet stopped; guarded by mu_
  std::atomic<size_t> next_{0};
  std::atomic<bool> stop_;
  std::vector<std::thread> workers_;
};

int64_t Failures(const std::map<uint64_t, reports::SeedRecord>& done) {
  int64_t failures = 0;
  for (const auto& [seed, r] : done) {
    failures += r.passed() ? 0 : 1;
  }
  return failures;
}

// Keeps each record the pool hands back (appended to the results file, and
// in *done), reporting progress after each; stops the pool when a record
// cannot be kept or after the failures allowed. Returns "" or the append
// error.
std::string CollectRecords(const SweepOptions& o, const ProgressFn& progress,
                           std::chrono::steady_clock::time_point wall_start, SeedPool* pool,
                           reports::ResultsAppender* appender, SweepProgress* p,
                           std::map<uint64_t, reports::SeedRecord>* done, int64_t* ran) {
  std::string append_error;
  while (std::optional<reports::SeedRecord> rec = pool->Next()) {
    if (!o.results_path.empty() && append_error.empty()) {
      append_error = appender->Append(*rec);
      if (!append_error.empty()) {
        pool->Stop();  // results could not be kept: stop rather than lose more
      }
    }
    ++*ran;
    ++p->done;
    if (!rec->passed()) {
      ++p->failures;
      if (o.max_failures > 0 && p->failures >= o.max_failures) {
        pool->Stop();
      }
    }
    const uint64_t seed = rec->seed;
    PAYLAB_CHECK(!done->contains(seed));  // only seeds not done are run, each once
    (*done)[seed] = std::move(*rec);
    p->elapsed_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    p->rate_per_s = p->elapsed_s > 0 ? static_cast<double>(*ran) / p->elapsed_s : 0;
    p->eta_s = p->rate_per_s > 0 ? static_cast<double>(p->total - p->done) / p->rate_per_s : 0;
    p->last = &(*done)[seed];
    if (progress) {
      progress(*p);
    }
  }
  return append_error;
}

}  // namespace

SweepOutcome RunSweep(const Scenario& scenario, const SweepOptions& o, const ProgressFn& progress) {
  SweepOutcome out;
  const auto wall_start = std::chrono::steady_clock::now();
  std::map<uint64_t, reports::SeedRecord> done;
  out.error = ReadDoneSeeds(o, IdentityOf(scenario, o), &done, &out.torn_lines);
  if (!out.error.empty()) {
    return out;
  }
  int64_t total = 0;
  const std::vector<uint64_t> todo = SeedsToRun(o, done, &total, &out.skipped);
  DropOtherSeeds(o, &done);

  reports::ResultsAppender appender;
  if (!o.results_path.empty() && !todo.empty()) {
    out.error = OpenResults(o, out.torn_lines, &appender);
    if (!out.error.empty()) {
      return out;
    }
  }

  SweepProgress p;
  p.total = total;
  p.done = out.skipped;
  p.skipped = out.skipped;
  p.failures = Failures(done);
  if (progress) {
    progress(p);
  }
  std::string append_error;
  {
    SeedPool pool(scenario, o, todo, o.max_failures > 0 && p.failures >= o.max_failures);
    append_error = CollectRecords(o, progress, wall_start, &pool, &appender, &p, &done, &out.ran);
  }
  out.stopped_early = static_cast<int64_t>(done.size()) < total;
  for (auto& [seed, r] : done) {
    out.records.push_back(std::move(r));
  }
  if (!append_error.empty()) {
    out.error = append_error;
  }
  return out;
}

}  // namespace paylab::scenarios
