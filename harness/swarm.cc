// Implementation of swarm testing (see swarm.h).
#include "harness/swarm.h"

#include <vector>

#include "sim/random.h"

namespace paylab::scenarios {

namespace {

// Keeps each element with probability 1/2, in order.
template <class T>
void KeepHalf(sim::Rng& rng, std::vector<T>* v) {
  std::vector<T> kept;
  for (T& x : *v) {
    if (rng.Bernoulli(0.5)) {
      kept.push_back(std::move(x));
    }
  }
  *v = std::move(kept);
}

// Keeps each element with probability 1/2 and scales the kept ones; draws
// twice per element whatever is kept.
template <class T, class Scale>
void KeepScaled(sim::Rng& rng, std::vector<T>* v, double lo, double hi, Scale scale) {
  std::vector<T> kept;
  for (T& x : *v) {
    const bool keep = rng.Bernoulli(0.5);
    const double k = lo + (hi - lo) * rng.UniformDouble();
    if (keep) {
      scale(x, k);
      kept.push_back(std::move(x));
    }
  }
  *v = std::move(kept);
}

}  // namespace

Scenario Swarm(const Scenario& s, uint64_t seed) {
  sim::Rng rng(seed, "swarm");
  Scenario out = s;
  // A rate: kept or not, then scaled down. Every rate draws twice whether
  // it is configured or not, so that one knob never shifts another.
  auto rate = [&rng](double* r) {
    const bool keep = rng.Bernoulli(0.5);
    const double scale = 0.25 + 0.75 * rng.UniformDouble();
    *r = keep ? *r * scale : 0;
  };
  Faults& f = out.faults;
  rate(&f.drop_request);
  rate(&f.drop_reply);
  rate(&f.duplicate_request);
  rate(&f.delay);
  rate(&out.messaging.duplicate_delivery);
  rate(&out.payments.partner_unavailable);
  rate(&out.payments.assignment_failure);
  if (!rng.Bernoulli(0.5)) {
    out.messaging.poison_messages = 0;
  }
  // Each plan kept or not, and its knob scaled by a factor drawn in [lo, hi].
  KeepScaled(rng, &f.crashes, 1, 4, [](CrashSpec& c, double k) { c.mean_interval_s *= k; });
  KeepHalf(rng, &f.partitions);
  KeepScaled(rng, &f.points, 0.25, 1, [](FaultPointSpec& p, double k) { p.probability *= k; });
  KeepHalf(rng, &f.schedule.crashes);
  KeepHalf(rng, &f.schedule.clock_steps);
  KeepHalf(rng, &f.schedule.rpc_faults);
  // The workload's aim and misuse, drawn last so the faults' draws above
  // stay what they were.
  rate(&out.workload.boundary_ratio);
  rate(&out.workload.mix.misuse);
  // The upstreams' misuse: off, or a share up to the scenario's,
  // from a stream of its own so that no fault above moves.
  sim::Rng misuse(seed, "swarm.misuse");
  const bool misuse_kept = misuse.Bernoulli(0.5);
  const double misuse_scale = 1 - misuse.UniformDouble();  // (0, 1]
  out.payments.misuse_ratio = misuse_kept ? s.payments.misuse_ratio * misuse_scale : 0;
  // The shopper's misuse in the migration world, drawn last for the same
  // reason.
  rate(&out.migration.misuse_ratio);
  // Drawn last, so that every draw above is what it was before this knob.
  // The hostile caller is the scenario's workload as much as a fault, and
  // the checks it feeds are required: scaled, never switched off.
  out.payments.misuse_rate_per_s *= 0.25 + 0.75 * rng.UniformDouble();
  return out;
}

nlohmann::json SwarmDraw(const Scenario& s) {
  nlohmann::json j = ToJson(s)["faults"];
  // The knobs drawn outside /faults, by their JSON pointers, for the worlds
  // the scenario runs.
  if (s.messaging.enabled) {
    j["/messaging/duplicate_delivery"] = s.messaging.duplicate_delivery;
    j["/messaging/poison_messages"] = s.messaging.poison_messages;
  }
  if (s.payments.enabled) {
    j["/payments/partner_unavailable"] = s.payments.partner_unavailable;
    j["/payments/assignment_failure"] = s.payments.assignment_failure;
    j["/payments/misuse_ratio"] = s.payments.misuse_ratio;
    j["/payments/misuse_rate_per_s"] = s.payments.misuse_rate_per_s;
  }
  if (s.migration.enabled) {
    j["/migration/misuse_ratio"] = s.migration.misuse_ratio;
  }
  j["/workload/boundary_ratio"] = s.workload.boundary_ratio;
  j["/workload/mix/misuse"] = s.workload.mix.misuse;
  return j;
}

}  // namespace paylab::scenarios
