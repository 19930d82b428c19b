// Implementation of crash injection (see crash_injector.h).
#include "faults/crash_injector.h"

namespace paylab::faults {

CrashInjector::CrashInjector(sim::Simulator& sim, std::vector<CrashPlan> plans) : sim_(sim) {
  for (CrashPlan& p : plans) {
    PAYLAB_CHECK(p.node != nullptr);
    PAYLAB_CHECK(p.mean_interval > 0);
    PAYLAB_CHECK(p.downtime_min >= 0 && p.downtime_min <= p.downtime_max);
    sim::Rng rng = sim.Stream("faults.crash." + p.node->name());
    armed_.push_back(Armed{p, rng});
  }
}

void CrashInjector::Start() {
  for (size_t i = 0; i < armed_.size(); ++i) {
    ScheduleCrash(i);
  }
}

void CrashInjector::ScheduleCrash(size_t i) {
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
      ScheduleCrash(i);
      return;
    }
    a.plan.node->Crash();
    ++a.crashes;
    ++crashes_;
    a.down_since = sim_.Now();
    const sim::Duration down = a.rng.UniformInt(a.plan.downtime_min, a.plan.downtime_max);
    sim_.ScheduleAfter(down, [this, i] {
      if (!armed_[i].plan.node->up()) {
        Restart(i);
      }
      if (!healed_) {
        ScheduleCrash(i);
      }
    });
  });
}

void CrashInjector::Restart(size_t i) {
  Armed& a = armed_[i];
  downtime_total_ += sim_.Now() - a.down_since;
  a.plan.node->Restart();
}

void CrashInjector::Heal() {
  healed_ = true;
  for (size_t i = 0; i < armed_.size(); ++i) {
    if (!armed_[i].plan.node->up()) {
      Restart(i);
    }
  }
}

int64_t CrashInjector::crashes_of(const sim::Node* node) const {
  int64_t n = 0;
  for (const Armed& a : armed_) {
    if (a.plan.node == node) {
      n += a.crashes;
    }
  }
  return n;
}

}  // namespace paylab::faults
