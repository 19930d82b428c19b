// Implementation of crash injection (see crash_injector.h).
#include "faults/crash_injector.h"

namespace paylab::faults {

CrashInjector::CrashInjector(sim::Simulator& sim, std::vector<CrashPlan> plans,
                             std::vector<ScheduledCrash> schedule)
    : sim_(sim), schedule_(std::move(schedule)) {
  for (CrashPlan& p : plans) {
    PAYLAB_CHECK(p.node != nullptr);
    PAYLAB_CHECK(p.mean_interval > 0);
    PAYLAB_CHECK(p.downtime_min >= 0 && p.downtime_min <= p.downtime_max);
    sim::Rng rng = sim.Stream("faults.crash." + p.node->name());
    armed_.push_back(Armed{p, rng});
  }
  for (const ScheduledCrash& c : schedule_) {
    PAYLAB_CHECK(c.node != nullptr);
    PAYLAB_CHECK(c.downtime >= 0);
  }
}

void CrashInjector::Start() {
  for (size_t i = 0; i < armed_.size(); ++i) {
    ScheduleRandom(i);
  }
  for (const ScheduledCrash& c : schedule_) {
    sim_.ScheduleAt(std::max(c.at, sim_.Now()), [this, c] {
      if (!healed_) {
        CrashNow(c.node, c.downtime, false);
      }
    });
  }
}

bool CrashInjector::CrashNow(sim::Node* node, sim::Duration downtime, bool from_fault_point) {
  if (!node->up()) {
    return false;
  }
  node->Crash();
  ++crashes_;
  down_[node->id()] = {node, sim_.Now()};
  realised_.push_back(RealisedCrash{node->id(), sim_.Now(), downtime, from_fault_point});
  const uint64_t incarnation = node->incarnation();
  sim_.ScheduleAfter(downtime, [this, node, incarnation] {
    // Restart only the incarnation this crash ended (Heal may have
    // restarted it, and it may have crashed again since).
    if (!node->up() && node->incarnation() == incarnation) {
      Restart(node);
    }
  });
  return true;
}

void CrashInjector::CrashSoon(sim::Node* node, sim::Duration downtime) {
  // Even after Heal(): the node is doomed already and must go down (and
  // come back after its downtime) to act again.
  sim_.ScheduleAfter(0, [this, node, downtime] { CrashNow(node, downtime, true); });
}

void CrashInjector::ScheduleRandom(size_t i) {
  Armed& a = armed_[i];
  const auto gap =
      static_cast<sim::Duration>(a.rng.Exponential(static_cast<double>(a.plan.mean_interval)));
  sim_.ScheduleAfter(gap, [this, i] {
    Armed& a = armed_[i];
    if (healed_) {
      return;
    }
    if (!a.plan.node->up()) {
      // Still down from an earlier crash: try again later.
      ScheduleRandom(i);
      return;
    }
    const sim::Duration down = a.rng.UniformInt(a.plan.downtime_min, a.plan.downtime_max);
    CrashNow(a.plan.node, down, false);
    sim_.ScheduleAfter(down, [this, i] {
      if (!healed_) {
        ScheduleRandom(i);
      }
    });
  });
}

void CrashInjector::Restart(sim::Node* node) {
  auto it = down_.find(node->id());
  if (it != down_.end()) {
    downtime_total_ += sim_.Now() - it->second.second;
    down_.erase(it);
  }
  node->Restart();
}

void CrashInjector::Heal() {
  healed_ = true;
  while (!down_.empty()) {
    sim::Node* node = down_.begin()->second.first;
    if (node->up()) {
      down_.erase(down_.begin());
    } else {
      Restart(node);
    }
  }
}

}  // namespace paylab::faults
