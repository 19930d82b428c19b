// Implementation of swarm testing (see swarm.h).
#include "scenarios/swarm.h"

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
  std::vector<CrashSpec> crashes;
  for (CrashSpec c : f.crashes) {
    const bool keep = rng.Bernoulli(0.5);
    const double stretch = 1 + 3 * rng.UniformDouble();
    if (keep) {
      c.mean_interval_s *= stretch;
      crashes.push_back(std::move(c));
    }
  }
  f.crashes = std::move(crashes);
  KeepHalf(rng, &f.partitions);
  std::vector<FaultPointSpec> points;
  for (FaultPointSpec p : f.points) {
    const bool keep = rng.Bernoulli(0.5);
    const double scale = 0.25 + 0.75 * rng.UniformDouble();
    if (keep) {
      p.probability *= scale;
      points.push_back(std::move(p));
    }
  }
  f.points = std::move(points);
  KeepHalf(rng, &f.schedule.crashes);
  KeepHalf(rng, &f.schedule.clock_steps);
  KeepHalf(rng, &f.schedule.rpc_faults);
  return out;
}

}  // namespace paylab::scenarios
