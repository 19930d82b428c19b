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
#include <thread>

#include "reports/report.h"
#include "harness/runner.h"

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

}  // namespace

SweepOutcome RunSweep(const Scenario& scenario, const SweepOptions& o, const ProgressFn& progress) {
  SweepOutcome out;
  const auto wall_start = std::chrono::steady_clock::now();
  reports::SweepIdentity identity{scenario.name, o.scenario_file, {}, o.swarm};
  for (const system::DefectInfo& d : system::DefectCatalogue()) {
    if (o.defects.Has(d.defect)) {
      identity.defects.emplace_back(d.name);
    }
  }

  // The seeds already done, from the results file.
  std::map<uint64_t, reports::SeedRecord> done;
  if (!o.results_path.empty()) {
    std::vector<reports::SeedRecord> existing;
    out.error = reports::ReadResults(o.results_path, &existing, &out.torn_lines);
    if (!out.error.empty()) {
      return out;
    }
    for (reports::SeedRecord& r : existing) {
      if (!(r.sweep == identity)) {
        out.error = fmt::format(
            "--results {}: holds seed {} of another sweep ({}), not of this one ({}); "
            "give another --results file",
            o.results_path, r.seed, Describe(r.sweep), Describe(identity));
        return out;
      }
      done[r.seed] = std::move(r);
    }
  }

  std::vector<uint64_t> todo;
  int64_t total = 0;
  for (uint64_t seed = o.first;; ++seed) {
    if ((seed - o.first) % static_cast<uint64_t>(o.shard_count) ==
        static_cast<uint64_t>(o.shard_index - 1)) {
      ++total;
      if (done.contains(seed)) {
        ++out.skipped;
      } else {
        todo.push_back(seed);
      }
    }
    if (seed == o.last) {
      break;
    }
  }
  // Records of seeds outside this shard stay in the file but are not ours.
  for (auto it = done.begin(); it != done.end();) {
    const uint64_t s = it->first;
    const bool ours = s >= o.first && s <= o.last &&
                      (s - o.first) % static_cast<uint64_t>(o.shard_count) ==
                          static_cast<uint64_t>(o.shard_index - 1);
    it = ours ? std::next(it) : done.erase(it);
  }

  reports::ResultsAppender appender;
  if (!o.results_path.empty() && !todo.empty()) {
    if (out.torn_lines > 0) {
      // Rewrite the file without its torn lines before appending to it.
      std::vector<reports::SeedRecord> keep;
      int64_t ignored = 0;
      reports::ReadResults(o.results_path, &keep, &ignored);
      std::string text;
      for (const reports::SeedRecord& r : keep) {
        text += reports::ToJsonLine(r) + "\n";
      }
      out.error = reports::WriteFileAtomic(o.results_path, text);
      if (!out.error.empty()) {
        return out;
      }
    }
    out.error = appender.Open(o.results_path);
    if (!out.error.empty()) {
      return out;
    }
  }

  int64_t failures = 0;
  for (const auto& [seed, r] : done) {
    failures += r.passed() ? 0 : 1;
  }
  SweepProgress p;
  p.total = total;
  p.done = out.skipped;
  p.skipped = out.skipped;
  p.failures = failures;
  if (progress) {
    progress(p);
  }

  std::mutex mu;
  std::condition_variable cv;
  std::deque<reports::SeedRecord> finished;
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{o.max_failures > 0 && failures >= o.max_failures};
  const int64_t jobs = std::max<int64_t>(1, std::min<int64_t>(o.jobs, todo.size()));
  std::vector<std::thread> workers;
  int64_t running = jobs;
  for (int64_t t = 0; t < jobs && !todo.empty(); ++t) {
    workers.emplace_back([&] {
      for (;;) {
        const size_t i = next.fetch_add(1);
        if (i >= todo.size() || stop.load()) {
          break;
        }
        RunOptions ro;
        ro.seed = todo[i];
        ro.scenario_file = o.scenario_file;
        ro.defects = o.defects;
        ro.swarm = o.swarm;
        reports::SeedRecord rec = reports::RecordOf(RunScenario(scenario, ro));
        std::lock_guard<std::mutex> lock(mu);
        finished.push_back(std::move(rec));
        cv.notify_one();
      }
      std::lock_guard<std::mutex> lock(mu);
      --running;
      cv.notify_one();
    });
  }
  if (todo.empty()) {
    running = 0;
  }
  std::string append_error;
  for (;;) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return !finished.empty() || running == 0; });
    if (finished.empty() && running == 0) {
      break;
    }
    reports::SeedRecord rec = std::move(finished.front());
    finished.pop_front();
    lock.unlock();
    if (!o.results_path.empty() && append_error.empty()) {
      append_error = appender.Append(rec);
      if (!append_error.empty()) {
        stop = true;  // results could not be kept: stop rather than lose more
      }
    }
    ++out.ran;
    ++p.done;
    if (!rec.passed()) {
      ++p.failures;
      if (o.max_failures > 0 && p.failures >= o.max_failures) {
        stop = true;
      }
    }
    const uint64_t seed = rec.seed;
    done[seed] = std::move(rec);
    p.elapsed_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    p.rate_per_s = p.elapsed_s > 0 ? static_cast<double>(out.ran) / p.elapsed_s : 0;
    p.eta_s = p.rate_per_s > 0 ? static_cast<double>(p.total - p.done) / p.rate_per_s : 0;
    p.last = &done[seed];
    if (progress) {
      progress(p);
    }
  }
  for (std::thread& t : workers) {
    t.join();
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
