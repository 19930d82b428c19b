#include "harness/world.h"

#include <set>

#include "sim/check.h"

namespace paylab::scenarios {

namespace {

sim::LatencyModel ToLatency(const LatencySpec& l) {
  sim::LatencyModel m;
  switch (l.distribution) {
    case LatencyDistribution::kConstant:
      m.distribution = sim::LatencyDistribution::kConstant;
      break;
    case LatencyDistribution::kUniform:
      m.distribution = sim::LatencyDistribution::kUniform;
      break;
    case LatencyDistribution::kLogNormal:
      m.distribution = sim::LatencyDistribution::kLogNormal;
      break;
  }
  m.min = sim::FromMillis(l.min);
  m.max = sim::FromMillis(l.max);
  m.median = sim::FromMillis(l.median);
  m.sigma = l.sigma;
  return m;
}

// A node a platform does not use: never started, never called.
class IdleService : public sim::Service {
 public:
  boost::asio::awaitable<void> Boot() override { co_return; }
};

std::vector<faults::CrashPlan> CrashPlansOf(const Faults& f, sim::Network& net) {
  std::vector<faults::CrashPlan> plans;
  for (const CrashSpec& c : f.crashes) {
    plans.push_back(faults::CrashPlan{&net.node(NodeIdOf(c.node)),
                                      sim::FromSeconds(c.mean_interval_s),
                                      sim::FromSeconds(c.downtime_s_min),
                                      sim::FromSeconds(c.downtime_s_max)});
  }
  return plans;
}

// Only the safety phase has faults: a crash scheduled after it never comes.
std::vector<faults::ScheduledCrash> ScheduledCrashesOf(const Scenario& s, sim::Network& net) {
  std::vector<faults::ScheduledCrash> scheduled;
  for (const ScheduledCrashSpec& c : s.faults.schedule.crashes) {
    if (c.at_s < s.duration_s) {
      scheduled.push_back(faults::ScheduledCrash{
          &net.node(NodeIdOf(c.node)), sim::FromSeconds(c.at_s), sim::FromSeconds(c.downtime_s)});
    }
  }
  return scheduled;
}

std::vector<sim::RpcFaultRule> RpcFaultRulesOf(const FaultSchedule& schedule) {
  std::vector<sim::RpcFaultRule> rules;
  for (const RpcFaultSpec& r : schedule.rpc_faults) {
    sim::RpcFaultKind kind = sim::RpcFaultKind::kDropReply;
    for (auto k : {sim::RpcFaultKind::kDropRequest, sim::RpcFaultKind::kDropReply,
                   sim::RpcFaultKind::kDuplicateRequest, sim::RpcFaultKind::kDelay}) {
      if (sim::RpcFaultKindName(k) == r.fault) {
        kind = k;
      }
    }
    rules.push_back(sim::RpcFaultRule{r.method, static_cast<uint64_t>(r.nth), kind,
                                      sim::FromMillis(r.delay_ms),
                                      static_cast<uint32_t>(r.reply)});
  }
  return rules;
}

}  // namespace

sim::NodeId NodeIdOf(std::string_view name) {
  for (size_t i = 0; i < kKnownNodes.size(); ++i) {
    if (kKnownNodes[i].name == name) {
      return static_cast<sim::NodeId>(i);
    }
  }
  PAYLAB_CHECK(false && "unknown node name (the loader checks names)");
  return 0;
}

World::World(const Scenario& s, const RunOptions& o)
    : sim(o.seed), net(sim, ToLatency(s.network.latency_ms)) {}

World::~World() {
  // End every coroutine while all it references is alive; each platform's
  // own destructor has done so already, before its members went.
  ShutdownNodes();
  sim.set_fault_points(nullptr);
}

void World::ShutdownNodes() {
  for (sim::Node* n : nodes_) {
    n->Shutdown();
  }
  // The most derived platform's destructor comes first; the nodes are then
  // destroyed with its members, before a base's destructor could reach them.
  nodes_.clear();
}

void World::AddNode(sim::Node& node) {
  PAYLAB_CHECK(node.id() == net.node_count());
  net.AddNode(&node);
  nodes_.push_back(&node);
}

void World::AddIdle(std::string_view name) {
  auto n = std::make_unique<sim::Node>(
      sim, net, NodeIdOf(name), std::string(name),
      [](sim::NodeContext&) { return std::make_unique<IdleService>(); });
  net.AddNode(n.get());
  placeholders_.push_back(std::move(n));
}

void World::ArmFaults(const Scenario& s, const RunOptions& o) {
  PAYLAB_CHECK(net.node_count() <= kKnownNodes.size());
  std::vector<std::string> names;
  for (const KnownNode& n : kKnownNodes) {
    names.emplace_back(n.name);
  }
  sim.trace().SetNodeNames(std::move(names));

  const Faults& f = s.faults;
  net.RecordFaults(o.record_faults);
  net.SetFaults(sim::NetworkFaults{f.drop_request, f.drop_reply, f.duplicate_request, f.delay,
                                   sim::FromMillis(f.delay_ms_max)});
  crashes = std::make_unique<faults::CrashInjector>(sim, CrashPlansOf(f, net),
                                                    ScheduledCrashesOf(s, net));
  std::vector<faults::FaultPointPlan> point_plans;
  for (const FaultPointSpec& p : f.points) {
    point_plans.push_back(faults::FaultPointPlan{p.point, p.probability,
                                                 sim::FromSeconds(p.downtime_s_min),
                                                 sim::FromSeconds(p.downtime_s_max), p.hits});
  }
  if (!point_plans.empty()) {
    // A fault point crashes only a node whose crash the simulator models.
    std::set<sim::NodeId> immune;
    for (const KnownNode& n : kKnownNodes) {
      if (!n.crashable) {
        immune.insert(NodeIdOf(n.name));
      }
    }
    fault_points = std::make_unique<faults::FaultPointInjector>(sim, *crashes,
                                                                std::move(point_plans),
                                                                std::move(immune));
    sim.set_fault_points(fault_points.get());
  }
  net.SetRpcSchedule(RpcFaultRulesOf(f.schedule));
}

sim::Duration World::LivenessBound(const Scenario& s) const {
  const double workload_s = static_cast<double>(s.workload.operations) / s.workload.rate_per_s;
  return sim::FromSeconds(2 * workload_s + 600);
}

}  // namespace paylab::scenarios
