// Implementation of shrinking (see shrink.h).
#include "harness/shrink.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "harness/swarm.h"
#include "sim/check.h"

namespace paylab::scenarios {

namespace {

// One removable fault of a scenario.
struct Item {
  enum Kind {
    kRpc,
    kCrash,
    kPoint,
    kPartition,
    kClockStep,
    kRateCrashPlan,
    kRatePoint,
    kDuplicateDelivery,
    kPoison,
    kPartnerUnavailable,
    kAssignmentFailure,
    kNetworkRates,
  };
  Kind kind;
  size_t index = 0;  // into the scenario's list of that kind
  double at_s = -1;  // when it happened (-1: a rate, no one time)
};

// The scenario with only the items in `keep` (indices into `items`).
Scenario With(const Scenario& s, const std::vector<Item>& items, const std::vector<bool>& keep) {
  Scenario out = s;
  Faults& f = out.faults;
  f.schedule.rpc_faults.clear();
  f.schedule.crashes.clear();
  f.schedule.clock_steps.clear();
  f.points.clear();
  f.partitions.clear();
  f.crashes.clear();
  out.messaging.duplicate_delivery = 0;
  out.messaging.poison_messages = 0;
  out.payments.partner_unavailable = 0;
  out.payments.assignment_failure = 0;
  f.drop_request = f.drop_reply = f.duplicate_request = f.delay = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!keep[i]) {
      continue;
    }
    const Item& it = items[i];
    switch (it.kind) {
      case Item::kRpc:
        f.schedule.rpc_faults.push_back(s.faults.schedule.rpc_faults[it.index]);
        break;
      case Item::kCrash:
        f.schedule.crashes.push_back(s.faults.schedule.crashes[it.index]);
        break;
      case Item::kPoint:
      case Item::kRatePoint:
        f.points.push_back(s.faults.points[it.index]);
        break;
      case Item::kPartition:
        f.partitions.push_back(s.faults.partitions[it.index]);
        break;
      case Item::kClockStep:
        f.schedule.clock_steps.push_back(s.faults.schedule.clock_steps[it.index]);
        break;
      case Item::kRateCrashPlan:
        f.crashes.push_back(s.faults.crashes[it.index]);
        break;
      case Item::kDuplicateDelivery:
        out.messaging.duplicate_delivery = s.messaging.duplicate_delivery;
        break;
      case Item::kPoison:
        out.messaging.poison_messages = s.messaging.poison_messages;
        break;
      case Item::kPartnerUnavailable:
        out.payments.partner_unavailable = s.payments.partner_unavailable;
        break;
      case Item::kAssignmentFailure:
        out.payments.assignment_failure = s.payments.assignment_failure;
        break;
      case Item::kNetworkRates:
        f.drop_request = s.faults.drop_request;
        f.drop_reply = s.faults.drop_reply;
        f.duplicate_request = s.faults.duplicate_request;
        f.delay = s.faults.delay;
        break;
    }
  }
  return out;
}

// `times` gives the realised time of each rpc fault and fault point (in
// the order Explicit() wrote them); empty when unknown.
std::vector<Item> ItemsOf(const Scenario& s, const std::vector<double>& rpc_times,
                          const std::vector<double>& point_times) {
  std::vector<Item> items;
  const Faults& f = s.faults;
  for (size_t i = 0; i < f.schedule.rpc_faults.size(); ++i) {
    items.push_back({Item::kRpc, i, i < rpc_times.size() ? rpc_times[i] : -1});
  }
  for (size_t i = 0; i < f.schedule.crashes.size(); ++i) {
    items.push_back({Item::kCrash, i, f.schedule.crashes[i].at_s});
  }
  for (size_t i = 0; i < f.points.size(); ++i) {
    items.push_back({f.points[i].probability > 0 ? Item::kRatePoint : Item::kPoint, i,
                     i < point_times.size() ? point_times[i] : -1});
  }
  for (size_t i = 0; i < f.partitions.size(); ++i) {
    items.push_back({Item::kPartition, i, f.partitions[i].from_s});
  }
  for (size_t i = 0; i < f.schedule.clock_steps.size(); ++i) {
    items.push_back({Item::kClockStep, i, f.schedule.clock_steps[i].at_s});
  }
  for (size_t i = 0; i < f.crashes.size(); ++i) {
    items.push_back({Item::kRateCrashPlan, i});
  }
  if (f.drop_request + f.drop_reply + f.duplicate_request + f.delay > 0) {
    items.push_back({Item::kNetworkRates, 0});
  }
  if (s.messaging.enabled && s.messaging.duplicate_delivery > 0) {
    items.push_back({Item::kDuplicateDelivery, 0});
  }
  if (s.messaging.enabled && s.messaging.poison_messages > 0) {
    items.push_back({Item::kPoison, 0});
  }
  if (s.payments.enabled && s.payments.partner_unavailable > 0) {
    items.push_back({Item::kPartnerUnavailable, 0});
  }
  if (s.payments.enabled && s.payments.assignment_failure > 0) {
    items.push_back({Item::kAssignmentFailure, 0});
  }
  return items;
}

// The run's faults as an explicit schedule (see shrink.h).
Scenario Explicit(const Scenario& s, const reports::RunResult& r) {
  Scenario out = s;
  Faults& f = out.faults;
  f.drop_request = f.drop_reply = f.duplicate_request = f.delay = 0;
  f.crashes.clear();
  f.schedule.rpc_faults.clear();
  f.points.clear();
  // Scheduled crashes of the original were realised too: they come back
  // from the record, with the rest.
  f.schedule.crashes.clear();
  using K = reports::RealisedFault::Kind;
  for (const reports::RealisedFault& x : r.realised) {
    switch (x.kind) {
      case K::kRpc:
        f.schedule.rpc_faults.push_back(RpcFaultSpec{x.method, x.nth, x.what, x.delay_ms, x.reply});
        break;
      case K::kCrash:
        f.schedule.crashes.push_back(ScheduledCrashSpec{x.node, x.at_s, x.downtime_s});
        break;
      case K::kFaultPoint:
        f.points.push_back(FaultPointSpec{x.what, 0, {x.nth}, x.downtime_s, x.downtime_s});
        break;
    }
  }
  return out;
}

int64_t Operations(const Scenario& s) {
  return s.workload.operations + (s.payments.enabled ? s.payments.charges + s.payments.escrows : 0);
}

// The check a failed run failed; an internal error counts as one check.
std::string FailedCheck(const reports::RunResult& r) {
  return r.violation ? r.violation->check : "internal_error";
}

// Runs candidates and tells whether each fails the check the original run
// failed. Every run counts against the bound; once it is reached, a
// candidate is not run and counts as not failing.
class SameFailure {
 public:
  SameFailure(const RunOptions& run, int64_t runs_max, ShrinkOutcome* out)
      : run_(run), runs_max_(runs_max), out_(*out) {}

  bool operator()(const Scenario& candidate) {
    if (!RunsLeft()) {
      return false;
    }
    ++out_.runs;
    const reports::RunResult r = RunScenario(candidate, run_);
    if (r.outcome == reports::RunOutcome::kPass) {
      return false;
    }
    return FailedCheck(r) == out_.check;
  }

  bool RunsLeft() const { return out_.runs < runs_max_; }

 private:
  const RunOptions run_;
  const int64_t runs_max_;
  ShrinkOutcome& out_;
};

// The realised times of the run's rpc faults and fault points, in the order
// Explicit() wrote them.
void RealisedTimes(const reports::RunResult& r, std::vector<double>* rpc_times,
                   std::vector<double>* point_times) {
  for (const reports::RealisedFault& x : r.realised) {
    if (x.kind == reports::RealisedFault::Kind::kRpc) {
      rpc_times->push_back(x.at_s);
    } else if (x.kind == reports::RealisedFault::Kind::kFaultPoint) {
      point_times->push_back(x.at_s);
    }
  }
}

// In time order (rates last), so that a chunk is a stretch of the run.
void SortByTime(std::vector<Item>* items) {
  std::stable_sort(items->begin(), items->end(), [](const Item& a, const Item& b) {
    return (a.at_s < 0 ? 1e300 : a.at_s) < (b.at_s < 0 ? 1e300 : b.at_s);
  });
}

// The distinct times at which the timed items happened, ascending.
std::vector<double> DistinctTimes(const std::vector<Item>& items) {
  std::vector<double> times;
  for (const Item& it : items) {
    if (it.at_s >= 0) {
      times.push_back(it.at_s);
    }
  }
  std::sort(times.begin(), times.end());
  times.erase(std::unique(times.begin(), times.end()), times.end());
  return times;
}

// Keeps the timed items that happened within [from, to], and every rate.
std::vector<bool> Window(const std::vector<Item>& items, double from, double to) {
  std::vector<bool> keep(items.size(), true);
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].at_s >= 0 && (items[i].at_s < from || items[i].at_s > to)) {
      keep[i] = false;
    }
  }
  return keep;
}

// Step 0, cut-offs in time: bisects for the earliest end (and then the
// latest start) of the window of timed faults that still fails.
std::vector<bool> CutToFailingWindow(const Scenario& s, const std::vector<Item>& items,
                                     SameFailure& fails_same) {
  const std::vector<double> times = DistinctTimes(items);
  if (times.empty()) {
    return std::vector<bool>(items.size(), true);
  }
  // Invariant: keeping faults up to times[hi] fails; up to times[lo] (or
  // none, lo = -1) is not known to fail.
  int64_t lo = -1;
  int64_t hi = static_cast<int64_t>(times.size()) - 1;
  while (hi - lo > 1 && fails_same.RunsLeft()) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (fails_same(With(s, items, Window(items, -1, times[mid])))) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  const double end = times[hi];
  int64_t first_kept = 0;   // keeping faults from times[first_kept] fails
  int64_t beyond = hi + 1;  // from times[beyond] is not known to fail
  while (beyond - first_kept > 1 && fails_same.RunsLeft()) {
    const int64_t mid = first_kept + (beyond - first_kept) / 2;
    if (fails_same(With(s, items, Window(items, times[mid], end)))) {
      first_kept = mid;
    } else {
      beyond = mid;
    }
  }
  return Window(items, times[first_kept], end);
}

// Step 1, delta debugging: removes chunks of the faults still kept, from
// halves down to one at a time, while the rest still fails.
std::vector<bool> RemoveFaults(const Scenario& s, const std::vector<Item>& items,
                               std::vector<bool> keep, SameFailure& fails_same) {
  size_t kept = static_cast<size_t>(std::count(keep.begin(), keep.end(), true));
  for (size_t chunk = std::max<size_t>(1, kept / 2); kept > 0 && fails_same.RunsLeft();) {
    bool removed_any = false;
    // Chunks over the items still kept, in order.
    std::vector<size_t> alive;
    for (size_t i = 0; i < items.size(); ++i) {
      if (keep[i]) {
        alive.push_back(i);
      }
    }
    for (size_t start = 0; start < alive.size() && fails_same.RunsLeft(); start += chunk) {
      std::vector<bool> trial = keep;
      const size_t end = std::min(alive.size(), start + chunk);
      for (size_t k = start; k < end; ++k) {
        trial[alive[k]] = false;
      }
      if (fails_same(With(s, items, trial))) {
        PAYLAB_CHECK(end - start <= kept);
        keep = trial;
        kept -= end - start;
        removed_any = true;
      }
    }
    if (chunk == 1 && !removed_any) {
      break;
    }
    if (!removed_any) {
      chunk = std::max<size_t>(1, chunk / 2);
    } else {
      chunk = std::min(chunk, std::max<size_t>(1, kept / 2));
    }
  }
  return keep;
}

// The scenario with its workload scaled by `f` (at least one operation).
Scenario Scaled(const Scenario& s, double f) {
  Scenario c = s;
  c.workload.operations = std::max<int64_t>(1, static_cast<int64_t>(s.workload.operations * f));
  if (c.payments.enabled) {
    c.payments.charges = static_cast<int64_t>(s.payments.charges * f);
    c.payments.escrows = static_cast<int64_t>(s.payments.escrows * f);
  }
  return c;
}

// Step 2, less workload: halves it while it still fails, then tries three
// quarters.
Scenario ReduceWorkload(Scenario current, SameFailure& fails_same) {
  for (double f : {0.5, 0.75}) {
    while (fails_same.RunsLeft() && Operations(current) > 1) {
      Scenario c = Scaled(current, f);
      if (Operations(c) == Operations(current) || !fails_same(c)) {
        break;
      }
      current = std::move(c);
    }
  }
  return current;
}

// Names and describes the shrunk scenario. It reproduces one failure; it no
// longer claims the coverage the original's required checks stand for
// (five operations need not reach every check). Only the failing check
// stays required: when it failed for want of an evaluation, that is the
// failure.
void LabelShrunk(const Scenario& configured, const ShrinkOptions& options,
                 const reports::RunResult& first, const ShrinkOutcome& out, Scenario* shrunk) {
  std::erase_if(shrunk->checks.required, [&out](const std::string& c) { return c != out.check; });
  shrunk->name = configured.name + "_shrunk";
  shrunk->description = fmt::format(
      "Shrunk by paylab shrink from {} (seed {}{}{}): fails {} under seed {}. {} of {} faults "
      "kept, {} of {} operations.",
      options.run.scenario_file, options.run.seed, options.run.swarm ? ", swarm" : "",
      first.defects.empty() ? "" : ", defects " + fmt::format("{}", fmt::join(first.defects, ",")),
      out.check, options.run.seed, CountFaults(*shrunk), out.faults_before, Operations(*shrunk),
      out.operations_before);
}

}  // namespace

int64_t CountFaults(const Scenario& s) {
  const Faults& f = s.faults;
  int64_t n =
      static_cast<int64_t>(f.schedule.rpc_faults.size() + f.schedule.crashes.size() +
                           f.schedule.clock_steps.size() + f.partitions.size() + f.crashes.size());
  for (const FaultPointSpec& p : f.points) {
    n += static_cast<int64_t>(p.hits.size()) + (p.probability > 0 ? 1 : 0);
  }
  n += f.drop_request + f.drop_reply + f.duplicate_request + f.delay > 0 ? 1 : 0;
  n += s.messaging.enabled && s.messaging.duplicate_delivery > 0 ? 1 : 0;
  n += s.messaging.enabled && s.messaging.poison_messages > 0 ? 1 : 0;
  n += s.payments.enabled && s.payments.partner_unavailable > 0 ? 1 : 0;
  n += s.payments.enabled && s.payments.assignment_failure > 0 ? 1 : 0;
  return n;
}

ShrinkOutcome Shrink(const Scenario& configured, const ShrinkOptions& options) {
  ShrinkOutcome out;
  RunOptions ro = options.run;
  ro.trace_path.clear();
  ro.out_dir.clear();
  const Scenario original = ro.swarm ? Swarm(configured, ro.seed) : configured;
  ro.swarm = false;  // the swarm's draw is part of the scenario from here on
  ro.record_faults = true;
  const reports::RunResult first = RunScenario(original, ro);
  ++out.runs;
  if (first.outcome == reports::RunOutcome::kPass) {
    out.error = fmt::format("seed {} passes every check: there is no failure to shrink", ro.seed);
    return out;
  }
  out.check = FailedCheck(first);
  ro.record_faults = false;
  SameFailure fails_same(ro, options.runs_max, &out);

  Scenario current = Explicit(original, first);
  out.faults_before = CountFaults(current);
  out.operations_before = Operations(original);
  out.schedule_reproduces = fails_same(current);
  std::vector<double> rpc_times, point_times;
  if (out.schedule_reproduces) {
    RealisedTimes(first, &rpc_times, &point_times);
  } else {
    // The explicit schedule is not the same run (events at one instant can
    // fall in another order): shrink from the scenario's own faults.
    current = original;
    out.faults_before = std::max(out.faults_before, CountFaults(current));
  }

  std::vector<Item> items = ItemsOf(current, rpc_times, point_times);
  SortByTime(&items);
  std::vector<bool> keep = CutToFailingWindow(current, items, fails_same);
  keep = RemoveFaults(current, items, std::move(keep), fails_same);
  current = ReduceWorkload(With(current, items, keep), fails_same);

  LabelShrunk(configured, options, first, out, &current);
  out.faults_after = CountFaults(current);
  out.operations_after = Operations(current);
  out.minimal = std::move(current);
  return out;
}

}  // namespace paylab::scenarios
