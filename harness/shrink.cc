// Implementation of shrinking (see shrink.h).
#include "harness/shrink.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "harness/swarm.h"

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
  out.check = first.violation ? first.violation->check : "internal_error";
  ro.record_faults = false;
  // Same check (an internal error counts by its message's start).
  const auto fails_same = [&](const Scenario& candidate) {
    if (out.runs >= options.runs_max) {
      return false;
    }
    ++out.runs;
    const reports::RunResult r = RunScenario(candidate, ro);
    if (r.outcome == reports::RunOutcome::kPass) {
      return false;
    }
    const std::string check = r.violation ? r.violation->check : "internal_error";
    return check == out.check;
  };

  Scenario current = Explicit(original, first);

  out.faults_before = CountFaults(current);
  out.operations_before = Operations(original);
  out.schedule_reproduces = fails_same(current);
  if (!out.schedule_reproduces) {
    // The explicit schedule is not the same run (events at one instant can
    // fall in another order): shrink from the scenario's own faults.
    current = original;
    out.faults_before = std::max(out.faults_before, CountFaults(current));
  }

  std::vector<double> rpc_times, point_times;
  if (out.schedule_reproduces) {
    for (const reports::RealisedFault& x : first.realised) {
      if (x.kind == reports::RealisedFault::Kind::kRpc) {
        rpc_times.push_back(x.at_s);
      } else if (x.kind == reports::RealisedFault::Kind::kFaultPoint) {
        point_times.push_back(x.at_s);
      }
    }
  }
  std::vector<Item> items = ItemsOf(current, rpc_times, point_times);
  // In time order (rates last), so that a chunk is a stretch of the run.
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return (a.at_s < 0 ? 1e300 : a.at_s) < (b.at_s < 0 ? 1e300 : b.at_s);
  });
  std::vector<bool> keep(items.size(), true);

  // 0. Cut-offs in time: bisect for the earliest end (and then the latest
  // start) of the window of timed faults that still fails.
  std::vector<double> times;
  for (const Item& it : items) {
    if (it.at_s >= 0) {
      times.push_back(it.at_s);
    }
  }
  std::sort(times.begin(), times.end());
  times.erase(std::unique(times.begin(), times.end()), times.end());
  const auto window = [&](double from, double to) {
    std::vector<bool> k(items.size(), true);
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].at_s >= 0 && (items[i].at_s < from || items[i].at_s > to)) {
        k[i] = false;
      }
    }
    return k;
  };
  if (!times.empty()) {
    // Invariant: keeping faults up to times[hi] fails; up to times[lo] (or
    // none, lo = -1) is not known to fail.
    int64_t lo = -1;
    int64_t hi = static_cast<int64_t>(times.size()) - 1;
    while (hi - lo > 1 && out.runs < options.runs_max) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (fails_same(With(current, items, window(-1, times[mid])))) {
        hi = mid;
      } else {
        lo = mid;
      }
    }
    const double end = times[hi];
    int64_t first_kept = 0;   // keeping faults from times[first_kept] fails
    int64_t beyond = hi + 1;  // from times[beyond] is not known to fail
    while (beyond - first_kept > 1 && out.runs < options.runs_max) {
      const int64_t mid = first_kept + (beyond - first_kept) / 2;
      if (fails_same(With(current, items, window(times[mid], end)))) {
        first_kept = mid;
      } else {
        beyond = mid;
      }
    }
    keep = window(times[first_kept], end);
  }
  size_t kept = static_cast<size_t>(std::count(keep.begin(), keep.end(), true));

  // 1. Delta debugging over the faults.
  for (size_t chunk = std::max<size_t>(1, kept / 2); kept > 0 && out.runs < options.runs_max;) {
    bool removed_any = false;
    // Chunks over the items still kept, in order.
    std::vector<size_t> alive;
    for (size_t i = 0; i < items.size(); ++i) {
      if (keep[i]) {
        alive.push_back(i);
      }
    }
    for (size_t start = 0; start < alive.size() && out.runs < options.runs_max; start += chunk) {
      std::vector<bool> trial = keep;
      const size_t end = std::min(alive.size(), start + chunk);
      for (size_t k = start; k < end; ++k) {
        trial[alive[k]] = false;
      }
      if (fails_same(With(current, items, trial))) {
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
  current = With(current, items, keep);

  // 2. Less workload: halve while it still fails, then try three quarters.
  const auto scaled = [](const Scenario& s, double f) {
    Scenario c = s;
    c.workload.operations = std::max<int64_t>(1, static_cast<int64_t>(s.workload.operations * f));
    if (c.payments.enabled) {
      c.payments.charges = static_cast<int64_t>(s.payments.charges * f);
      c.payments.escrows = static_cast<int64_t>(s.payments.escrows * f);
    }
    return c;
  };
  for (double f : {0.5, 0.75}) {
    while (out.runs < options.runs_max && Operations(current) > 1) {
      Scenario c = scaled(current, f);
      if (Operations(c) == Operations(current) || !fails_same(c)) {
        break;
      }
      current = std::move(c);
    }
  }

  // The shrunk scenario reproduces one failure; it no longer claims the
  // coverage the original's required checks stand for (five operations
  // need not reach every check). Only the failing check stays required:
  // when it failed for want of an evaluation, that is the failure.
  std::erase_if(current.checks.required, [&out](const std::string& c) { return c != out.check; });
  current.name = configured.name + "_shrunk";
  current.description = fmt::format(
      "Shrunk by paylab shrink from {} (seed {}{}{}): fails {} under seed {}. {} of {} faults "
      "kept, {} of {} operations.",
      options.run.scenario_file, options.run.seed, options.run.swarm ? ", swarm" : "",
      first.defects.empty() ? "" : ", defects " + fmt::format("{}", fmt::join(first.defects, ",")),
      out.check, options.run.seed, CountFaults(current), out.faults_before, Operations(current),
      out.operations_before);
  out.faults_after = CountFaults(current);
  out.operations_after = Operations(current);
  out.minimal = std::move(current);
  return out;
}

}  // namespace paylab::scenarios
