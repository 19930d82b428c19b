// Implementation of fault points (see fault_points.h).
#include "faults/fault_points.h"

#include <algorithm>

namespace paylab::faults {

FaultPointInjector::FaultPointInjector(sim::Simulator& sim, CrashInjector& crashes,
                                       std::vector<FaultPointPlan> plans,
                                       std::set<sim::NodeId> immune)
    : sim_(sim), crashes_(crashes), immune_(std::move(immune)) {
  for (FaultPointPlan& p : plans) {
    PAYLAB_CHECK(p.probability >= 0 && p.probability <= 1);
    PAYLAB_CHECK(p.downtime_min >= 0 && p.downtime_min <= p.downtime_max);
    std::sort(p.hits.begin(), p.hits.end());
    sim::Rng rng = sim.Stream("faults.point." + p.point);
    armed_.push_back(Armed{std::move(p), rng});
  }
}

bool FaultPointInjector::Reached(sim::Node& node, std::string_view point) {
  if (healed_ || immune_.contains(node.id())) {
    return false;
  }
  // Every plan of this point counts the hit and draws, whichever fires:
  // several plans of one point (a shrunk schedule has one per firing) each
  // see the same hit numbers.
  Armed* fired = nullptr;
  for (Armed& a : armed_) {
    if (a.plan.point != point) {
      continue;
    }
    ++a.hits;
    const bool scheduled = std::binary_search(a.plan.hits.begin(), a.plan.hits.end(), a.hits);
    // The stream is drawn on every hit, so a schedule does not shift it.
    const bool random = a.rng.Bernoulli(a.plan.probability);
    if (fired == nullptr && (scheduled || random)) {
      fired = &a;
    }
  }
  if (fired == nullptr) {
    return false;
  }
  const sim::Duration down =
      fired->rng.UniformInt(fired->plan.downtime_min, fired->plan.downtime_max);
  node.Doom();
  sim_.trace().Record(sim::TraceEvent{sim_.Now(), sim::TraceKind::kFault, node.id(), sim::kNoNode,
                                      "fault_point", fired->hits, down});
  realised_.push_back(
      RealisedPointFire{fired->plan.point, fired->hits, node.id(), sim_.Now(), down});
  crashes_.CrashSoon(&node, down);
  return true;
}

}  // namespace paylab::faults
