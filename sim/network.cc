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

std::string_view RpcFaultKindName(RpcFaultKind k) {
  switch (k) {
    case RpcFaultKind::kDropRequest:
      return "drop_request";
    case RpcFaultKind::kDropReply:
      return "drop_reply";
    case RpcFaultKind::kDuplicateRequest:
      return "duplicate_request";
    case RpcFaultKind::kDelay:
      return "delay";
  }
  return "?";
}

void Network::SetRpcSchedule(std::vector<RpcFaultRule> rules) {
  for (const RpcFaultRule& r : rules) {
    PAYLAB_CHECK(r.nth >= 1);
    PAYLAB_CHECK(r.delay >= 0);
  }
  rules_ = std::move(rules);
}

uint32_t Network::CountCall(std::string_view method, uint64_t call_id, Duration* delay) {
  if (rules_.empty() && !record_) {
    return 0;
  }
  auto it = method_calls_.find(method);
  if (it == method_calls_.end()) {
    it = method_calls_.emplace(std::string(method), 0).first;
  }
  const uint64_t nth = ++it->second;
  if (record_) {
    counted_[call_id] = {it->first, nth};
  }
  uint32_t bits = 0;
  for (const RpcFaultRule& r : rules_) {
    if (r.nth == nth && r.method == method) {
      bits |= 1u << static_cast<uint32_t>(r.kind);
      if (r.kind == RpcFaultKind::kDelay) {
        *delay = r.delay;
      }
      if (r.kind == RpcFaultKind::kDropReply) {
        drop_reply_calls_.insert({call_id, r.reply});
      }
    }
  }
  return bits;
}

void Network::Realise(std::string_view method, uint64_t call_id, RpcFaultKind kind, Duration delay,
                      uint32_t reply) {
  if (!record_) {
    return;
  }
  auto it = counted_.find(call_id);
  PAYLAB_CHECK(it != counted_.end());
  realised_.push_back(
      RealisedRpcFault{std::string(method), it->second.second, kind, delay, reply, sim_.Now()});
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
  Duration scheduled_delay = 0;
  const uint32_t scheduled = CountCall(method, call_id, &scheduled_delay);
  const auto has = [scheduled](RpcFaultKind k) {
    return (scheduled & (1u << static_cast<uint32_t>(k))) != 0;
  };
  if (Partitioned(from, to)) {
    ++counters_.partition_drops;
    TraceEvent(TraceKind::kRpcDrop, from, to, method, id, /*reason=partition*/ 1);
    return plan;
  }
  // The random draws happen whatever the schedule says, so that scheduling
  // one fault does not shift every later draw of the run.
  if (fault_rng_.Bernoulli(faults_.drop_request) || has(RpcFaultKind::kDropRequest)) {
    ++counters_.requests_dropped;
    TraceEvent(TraceKind::kFault, from, to, "drop_request", id);
    Realise(method, call_id, RpcFaultKind::kDropRequest, 0);
    return plan;
  }
  plan.deliver = true;
  const bool delay = fault_rng_.Bernoulli(faults_.delay);
  if (delay || has(RpcFaultKind::kDelay)) {
    ++counters_.requests_delayed;
    Duration extra = delay ? fault_rng_.UniformInt(0, faults_.delay_max) : 0;
    if (has(RpcFaultKind::kDelay)) {
      extra = scheduled_delay;
    }
    plan.latency += extra;
    TraceEvent(TraceKind::kFault, from, to, "delay", id, extra);
    Realise(method, call_id, RpcFaultKind::kDelay, extra);
  }
  if (fault_rng_.Bernoulli(faults_.duplicate_request) || has(RpcFaultKind::kDuplicateRequest)) {
    ++counters_.requests_duplicated;
    plan.duplicate = true;
    plan.duplicate_latency = plan.latency + latency_.Sample(latency_rng_);
    TraceEvent(TraceKind::kFault, from, to, "duplicate_request", id);
    Realise(method, call_id, RpcFaultKind::kDuplicateRequest, 0);
  }
  return plan;
}

Duration Network::PlanReply(NodeId from, NodeId to, std::string_view method, uint64_t call_id) {
  const Duration latency = latency_.Sample(latency_rng_);
  bool scheduled = false;
  uint32_t ordinal = 1;
  if (record_ || !rules_.empty()) {
    // A duplicated call replies twice: count which reply this is.
    ordinal = ++replies_[call_id];
    scheduled = drop_reply_calls_.erase({call_id, ordinal}) != 0;
  }
  if (fault_rng_.Bernoulli(faults_.drop_reply) || scheduled) {
    ++counters_.replies_dropped;
    TraceEvent(TraceKind::kFault, to, from, "drop_reply", static_cast<int64_t>(call_id));
    Realise(method, call_id, RpcFaultKind::kDropReply, 0, ordinal);
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
