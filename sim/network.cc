// Implementation of the simulated network's decisions (see network.h).
#include "sim/network.h"

#include <algorithm>
#include <cmath>

namespace paylab::sim {

Duration LatencyModel::Sample(Rng& rng) const {
  double ns = 0;
  switch (distribution) {
    case LatencyDistribution::kConstant:
      return median;
    case LatencyDistribution::kUniform:
      return rng.UniformInt(min, max);
    case LatencyDistribution::kLogNormal:
      ns = rng.LogNormal(static_cast<double>(median), sigma);
      break;
  }
  const double lo = static_cast<double>(min);
  const double hi = static_cast<double>(max);
  return static_cast<Duration>(std::clamp(ns, lo, hi));
}

Network::Network(Simulator& sim, LatencyModel latency)
    : sim_(sim),
      latency_(latency),
      latency_rng_(sim.Stream("net.latency")),
      fault_rng_(sim.Stream("net.faults")) {}

void Network::AddNode(Node* node) {
  PAYLAB_CHECK(node->id() == nodes_.size());
  nodes_.push_back(node);
}

void Network::Partition(NodeId a, NodeId b) {
  partitions_.insert(std::minmax(a, b));
  sim_.trace().Record(sim::TraceEvent{sim_.Now(), TraceKind::kFault, a, b, "partition", 1, 0});
}

void Network::Heal(NodeId a, NodeId b) {
  partitions_.erase(std::minmax(a, b));
  sim_.trace().Record(sim::TraceEvent{sim_.Now(), TraceKind::kFault, a, b, "partition", 0, 0});
}

void Network::HealAll() {
  while (!partitions_.empty()) {
    auto [a, b] = *partitions_.begin();
    Heal(a, b);
  }
}

bool Network::Partitioned(NodeId a, NodeId b) const {
  return !partitions_.empty() && partitions_.count(std::minmax(a, b)) != 0;
}

void Network::TraceEvent(TraceKind kind, NodeId node, NodeId peer, std::string_view name, int64_t a,
                         int64_t b) {
  sim_.trace().Record(sim::TraceEvent{sim_.Now(), kind, node, peer, name, a, b});
}

Network::RequestPlan Network::PlanRequest(NodeId from, NodeId to, std::string_view method,
                                          uint64_t call_id) {
  RequestPlan plan;
  const auto id = static_cast<int64_t>(call_id);
  plan.latency = latency_.Sample(latency_rng_);
  if (Partitioned(from, to)) {
    ++counters_.partition_drops;
    TraceEvent(TraceKind::kRpcDrop, from, to, method, id, /*reason=partition*/ 1);
    return plan;
  }
  if (fault_rng_.Bernoulli(faults_.drop_request)) {
    ++counters_.requests_dropped;
    TraceEvent(TraceKind::kFault, from, to, "drop_request", id);
    return plan;
  }
  plan.deliver = true;
  if (fault_rng_.Bernoulli(faults_.delay)) {
    ++counters_.requests_delayed;
    const Duration extra = fault_rng_.UniformInt(0, faults_.delay_max);
    plan.latency += extra;
    TraceEvent(TraceKind::kFault, from, to, "delay", id, extra);
  }
  if (fault_rng_.Bernoulli(faults_.duplicate_request)) {
    ++counters_.requests_duplicated;
    plan.duplicate = true;
    plan.duplicate_latency = plan.latency + latency_.Sample(latency_rng_);
    TraceEvent(TraceKind::kFault, from, to, "duplicate_request", id);
  }
  return plan;
}

Duration Network::PlanReply(NodeId from, NodeId to, std::string_view method, uint64_t call_id) {
  const Duration latency = latency_.Sample(latency_rng_);
  if (fault_rng_.Bernoulli(faults_.drop_reply)) {
    ++counters_.replies_dropped;
    TraceEvent(TraceKind::kFault, to, from, "drop_reply", static_cast<int64_t>(call_id));
    return -1;
  }
  return latency;
}

bool Network::Arrives(NodeId from, NodeId to, std::string_view method, uint64_t call_id,
                      bool reply) {
  const auto id = static_cast<int64_t>(call_id);
  if (!nodes_[to]->up()) {
    ++counters_.node_down_drops;
    TraceEvent(TraceKind::kRpcDrop, to, from, method, id, /*reason=node down*/ 2);
    return false;
  }
  if (Partitioned(from, to)) {
    ++counters_.partition_drops;
    TraceEvent(TraceKind::kRpcDrop, to, from, method, id, /*reason=partition*/ 1);
    return false;
  }
  (void)reply;
  return true;
}

}  // namespace paylab::sim
