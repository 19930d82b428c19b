// Fault points: crashes at named places inside service code (FoundationDB's
// buggify, keyed by name rather than by source line so that scenario files
// can name them).
//
// Services call NodeContext::FaultPoint(name) where a crash is most
// dangerous: between a database commit and the reply, between publishing
// and marking an outbox row sent, between two phases of a payment, inside
// a consumer's batch. A plan arms one point: with a probability per time
// the point is reached, and/or on given hits (the Nth time it is reached in
// the run, counted from 1). When it fires, the node is doomed (its context
// refuses to act from that instant), the calling coroutine unwinds, and the
// crash injector crashes the node as the next event and restarts it after
// a downtime drawn from the plan.
//
// Each point draws from its own stream ("faults.point.<name>"). Points are
// armed during the safety phase only: Heal() disarms them. Every firing is
// recorded (point, hit, node, time, downtime) so that a run's realised
// faults can be replayed as an explicit schedule.
#pragma once

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "faults/crash_injector.h"
#include "sim/node.h"
#include "sim/random.h"
#include "sim/simulator.h"

namespace paylab::faults {

// The named fault points placed in service code (scenarios/README.md). Add a
// name here when a service gets a new one: scenario files may arm only these.
inline constexpr std::array<std::string_view, 4> kFaultPoints = {
    "wallet.after_commit",     // a wallet RPC committed, its reply not sent
    "relay.after_publish",     // an outbox row published, not yet marked sent
    "payment.between_phases",  // a participant acted, the payment's step not recorded
    "consumer.after_apply",    // a queue message applied, not yet deleted
};


struct FaultPointPlan {
  std::string point;
  double probability = 0;  // per hit
  sim::Duration downtime_min = sim::kSecond;
  sim::Duration downtime_max = 5 * sim::kSecond;
  std::vector<int64_t> hits;  // fire on these hits (1-based), whatever the probability
};

struct RealisedPointFire {
  std::string point;
  int64_t hit = 0;
  sim::NodeId node = 0;
  sim::Time at = 0;
  sim::Duration downtime = 0;
};

class FaultPointInjector final : public sim::FaultPointHook {
 public:
  // REQUIRES: `crashes` outlives this injector. Nodes in `immune` (those
  // whose crash the simulation does not model) pass every point unharmed,
  // and their passing is not counted as a hit.
  FaultPointInjector(sim::Simulator& sim, CrashInjector& crashes, std::vector<FaultPointPlan> plans,
                     std::set<sim::NodeId> immune = {});

  bool Reached(sim::Node& node, std::string_view point) override;
  void Heal() { healed_ = true; }

  const std::vector<RealisedPointFire>& realised() const { return realised_; }
  // How often each armed point was reached, in plan order.
  int64_t hits(size_t plan) const { return armed_[plan].hits; }

 private:
  struct Armed {
    FaultPointPlan plan;
    sim::Rng rng;
    int64_t hits = 0;
  };

  sim::Simulator& sim_;
  CrashInjector& crashes_;
  std::vector<Armed> armed_;
  std::set<sim::NodeId> immune_;
  bool healed_ = false;
  std::vector<RealisedPointFire> realised_;
};

}  // namespace paylab::faults
