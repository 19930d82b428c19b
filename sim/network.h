// The simulated network: typed RPC between nodes, with latency and faults.
//
// A call carries a function object to run on the callee's service; nothing
// is serialised. What the network does to a call is decided from the run's
// seed ("net.latency" and "net.faults" streams):
//  - latency: drawn per message from the configured distribution;
//  - drop_request: the callee never sees the call;
//  - drop_reply: the callee acts, its answer is lost (the caller times out);
//  - duplicate_request: the callee receives the call twice and acts twice
//    (idempotency is the callee's job); the first answer to arrive wins;
//  - delay: the request takes up to delay_max longer;
//  - partitions: messages between two partitioned nodes are lost, whether
//    they are sent during the partition or arrive during it.
// A message that reaches a node which is down is lost. Every send, delivery,
// answer, loss and timeout is traced.
//
// The caller sees an RpcResult: kOk with the answer, or kTimeout. If the
// caller's coroutine is cancelled (its node crashed, or a sibling in
// `co_await (a || b)` finished first) the call completes at once with
// operation_aborted.
#pragma once

#include <boost/asio.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/node.h"
#include "sim/random.h"
#include "sim/simulator.h"

namespace paylab::sim {

enum class LatencyDistribution : uint8_t { kConstant, kUniform, kLogNormal };

struct LatencyModel {
  LatencyDistribution distribution = LatencyDistribution::kLogNormal;
  Duration min = 200 * kMicrosecond;
  Duration max = 50 * kMillisecond;
  Duration median = 1 * kMillisecond;  // the constant value for kConstant
  double sigma = 0.5;

  Duration Sample(Rng& rng) const;
};

// Probabilistic network faults, each per message. All zero: a perfect network.
struct NetworkFaults {
  double drop_request = 0;
  double drop_reply = 0;
  double duplicate_request = 0;
  double delay = 0;
  Duration delay_max = 100 * kMillisecond;
};

// An explicit network fault: on the Nth call (1-based) of one RPC method,
// counted over the whole run, do `kind` to it.
enum class RpcFaultKind : uint8_t { kDropRequest, kDropReply, kDuplicateRequest, kDelay };
std::string_view RpcFaultKindName(RpcFaultKind k);

struct RpcFaultRule {
  std::string method;
  uint64_t nth = 1;
  RpcFaultKind kind = RpcFaultKind::kDropReply;
  Duration delay = 100 * kMillisecond;  // kDelay only
  uint32_t reply = 1;  // kDropReply: which reply of a duplicated call is lost (1 = the first)
};

// A network fault that happened (probabilistic or scheduled), recorded when
// Network::RecordFaults is on: enough to schedule it again by RpcFaultRule.
struct RealisedRpcFault {
  std::string method;
  uint64_t nth = 0;
  RpcFaultKind kind = RpcFaultKind::kDropReply;
  Duration delay = 0;
  uint32_t reply = 1;  // kDropReply: the ordinal of the lost reply
  Time at = 0;         // when it happened
};

struct NetworkCounters {
  uint64_t calls = 0;
  uint64_t requests_dropped = 0;
  uint64_t replies_dropped = 0;
  uint64_t requests_duplicated = 0;
  uint64_t requests_delayed = 0;
  uint64_t partition_drops = 0;
  uint64_t node_down_drops = 0;
  uint64_t timeouts = 0;
};

enum class RpcStatus : uint8_t { kOk, kTimeout };

template <class R>
struct RpcResult {
  RpcStatus status = RpcStatus::kTimeout;
  R value{};
  bool ok() const { return status == RpcStatus::kOk; }
};

class Network {
 public:
  Network(Simulator& sim, LatencyModel latency);

  void AddNode(Node* node);
  Node& node(NodeId id) { return *nodes_.at(id); }
  size_t node_count() const { return nodes_.size(); }

  void SetFaults(const NetworkFaults& f) { faults_ = f; }
  // Explicit faults on the Nth call of a method; replaces earlier rules.
  // An empty list (as at the end of the safety phase) disarms them.
  void SetRpcSchedule(std::vector<RpcFaultRule> rules);
  // Counts calls per method and records every fault it injects (for
  // turning a run's faults into an explicit schedule). Off by default: it
  // costs a map lookup per call.
  void RecordFaults(bool on) { record_ = on; }
  const std::vector<RealisedRpcFault>& realised() const { return realised_; }
  const NetworkFaults& faults() const { return faults_; }
  void Partition(NodeId a, NodeId b);
  void Heal(NodeId a, NodeId b);
  void HealAll();
  bool Partitioned(NodeId a, NodeId b) const;
  const NetworkCounters& counters() const { return counters_; }

  // Sends `fn` (Svc& -> awaitable<R>) to run on node `to`, on behalf of the
  // caller `from`. Completes with (error_code, RpcResult<R>). With
  // `arrive_at` at or after now, the request (if not lost) arrives at
  // exactly that instant instead of after a drawn latency: a workload aiming
  // at a boundary (an expiry instant) lands on it. The draws happen anyway,
  // so aiming one call shifts no other random choice.
  template <class Svc, class R, class F, class Token>
  auto AsyncCall(NodeId from, NodeId to, std::string_view method, Duration timeout, F fn,
                 Token&& token, Time arrive_at = -1);

 private:
  template <class R>
  struct CallState;
  template <class R, class Handler>
  struct CallStateImpl;

  struct RequestPlan {
    bool deliver = false;
    bool duplicate = false;
    Duration latency = 0;
    Duration duplicate_latency = 0;
  };
  RequestPlan PlanRequest(NodeId from, NodeId to, std::string_view method, uint64_t call_id);
  // Returns the reply latency, or -1 if the reply is lost.
  Duration PlanReply(NodeId from, NodeId to, std::string_view method, uint64_t call_id);
  // True if a message arriving now at `to` from `from` gets through.
  bool Arrives(NodeId from, NodeId to, std::string_view method, uint64_t call_id, bool reply);
  void TraceEvent(TraceKind kind, NodeId node, NodeId peer, std::string_view name, int64_t a,
                  int64_t b = 0);
  // The scheduled faults for this call of `method` (bit per RpcFaultKind),
  // counting the call; 0 when nothing is scheduled or recorded.
  uint32_t CountCall(std::string_view method, uint64_t call_id, Duration* delay);
  void Realise(std::string_view method, uint64_t call_id, RpcFaultKind kind, Duration delay,
               uint32_t reply = 1);

  template <class Svc, class R, class F>
  void Deliver(std::shared_ptr<CallState<R>> st, NodeId from, NodeId to, std::string_view method,
               F fn);

  Simulator& sim_;
  LatencyModel latency_;
  NetworkFaults faults_;
  Rng latency_rng_;
  Rng fault_rng_;
  std::vector<Node*> nodes_;
  std::set<std::pair<NodeId, NodeId>> partitions_;
  NetworkCounters counters_;
  uint64_t next_call_ = 1;
  // Explicit faults and recording (see SetRpcSchedule, RecordFaults).
  std::vector<RpcFaultRule> rules_;
  bool record_ = false;
  std::map<std::string, uint64_t, std::less<>> method_calls_;
  // Calls in flight whose reply is scheduled to be lost, and each counted
  // call's (method, nth), while recording.
  std::set<std::pair<uint64_t, uint32_t>> drop_reply_calls_;  // (call, reply ordinal)
  std::map<uint64_t, uint32_t> replies_;                      // call -> replies planned
  std::map<uint64_t, std::pair<std::string_view, uint64_t>> counted_;
  std::vector<RealisedRpcFault> realised_;
};

// ---------------------------------------------------------------------------
// Implementation of the call template.

template <class R>
struct Network::CallState {
  virtual ~CallState() = default;
  virtual void Complete(boost::system::error_code ec, RpcStatus status, R value) = 0;
  uint64_t call_id = 0;
  bool done = false;
};

template <class R, class Handler>
struct Network::CallStateImpl final : Network::CallState<R> {
  CallStateImpl(Handler&& h, asio::io_context::executor_type ex) : handler(std::move(h)), ex(ex) {}

  // Installs the cancellation handler. The slot handler holds a raw pointer:
  // the state is kept alive by the caller's pending timeout event, which
  // cannot fire before the cancelled coroutine has resumed.
  void Arm() {
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected()) {
      slot.template emplace<Cancel>(this);
    }
  }

  struct Cancel {
    CallStateImpl* self;
    void operator()(asio::cancellation_type type) {
      if (type != asio::cancellation_type::none) {
        self->Finish(asio::error::operation_aborted, RpcStatus::kTimeout, R{}, false);
      }
    }
  };

  void Complete(boost::system::error_code ec, RpcStatus status, R value) override {
    Finish(ec, status, std::move(value), true);
  }

  void Finish(boost::system::error_code ec, RpcStatus status, R value, bool clear_slot) {
    if (this->done) {
      return;
    }
    this->done = true;
    if (clear_slot) {
      auto slot = asio::get_associated_cancellation_slot(handler);
      if (slot.is_connected()) {
        slot.clear();
      }
    }
    // Default to the simulator's executor: system_executor would need a thread.
    auto target = asio::get_associated_executor(handler, ex);
    asio::post(target,
               asio::append(std::move(handler), ec, RpcResult<R>{status, std::move(value)}));
  }

  Handler handler;
  asio::io_context::executor_type ex;
};

template <class Svc, class R, class F, class Token>
auto Network::AsyncCall(NodeId from, NodeId to, std::string_view method, Duration timeout, F fn,
                        Token&& token, Time arrive_at) {
  return asio::async_initiate<Token, void(boost::system::error_code, RpcResult<R>)>(
      [this, from, to, method, timeout, arrive_at, fn = std::move(fn)](auto handler) mutable {
        using H = std::decay_t<decltype(handler)>;
        auto st = std::make_shared<CallStateImpl<R, H>>(std::move(handler), sim_.executor());
        st->call_id = next_call_++;
        st->Arm();
        ++counters_.calls;
        const uint64_t id = st->call_id;
        TraceEvent(TraceKind::kRpcSend, from, to, method, static_cast<int64_t>(id));
        // The timeout event also keeps the state alive until the caller can
        // no longer be waiting on it.
        std::shared_ptr<CallState<R>> base = st;
        sim_.ScheduleAfter(timeout, [this, base, from, to, method] {
          if (!base->done) {
            ++counters_.timeouts;
            TraceEvent(TraceKind::kRpcTimeout, from, to, method,
                       static_cast<int64_t>(base->call_id));
            base->Complete({}, RpcStatus::kTimeout, R{});
          }
        });
        RequestPlan plan = PlanRequest(from, to, method, id);
        if (!plan.deliver) {
          return;
        }
        if (arrive_at >= sim_.Now()) {
          plan.latency = arrive_at - sim_.Now();
        }
        if (plan.duplicate) {
          sim_.ScheduleAfter(plan.duplicate_latency, [this, base, from, to, method, fn]() mutable {
            Deliver<Svc, R>(base, from, to, method, std::move(fn));
          });
        }
        sim_.ScheduleAfter(plan.latency, [this, base, from, to, method, fn]() mutable {
          Deliver<Svc, R>(base, from, to, method, std::move(fn));
        });
      },
      token);
}

template <class Svc, class R, class F>
void Network::Deliver(std::shared_ptr<CallState<R>> st, NodeId from, NodeId to,
                      std::string_view method, F fn) {
  if (!Arrives(from, to, method, st->call_id, /*reply=*/false)) {
    return;
  }
  Node& callee = *nodes_[to];
  auto* svc = dynamic_cast<Svc*>(callee.service());
  PAYLAB_CHECK(svc != nullptr);
  TraceEvent(TraceKind::kRpcDeliver, to, from, method, static_cast<int64_t>(st->call_id));
  callee.Spawn([](Network* net, std::shared_ptr<CallState<R>> st, NodeId from, NodeId to,
                  std::string_view method, F fn, Svc* svc) -> asio::awaitable<void> {
    R reply = co_await fn(*svc);
    const Duration latency = net->PlanReply(from, to, method, st->call_id);
    net->TraceEvent(TraceKind::kRpcReply, to, from, method, static_cast<int64_t>(st->call_id));
    if (latency < 0) {
      co_return;
    }
    net->sim_.ScheduleAfter(latency,
                            [net, st, from, to, method, reply = std::move(reply)]() mutable {
                              if (st->done) {
                                return;
                              }
                              if (!net->Arrives(to, from, method, st->call_id, /*reply=*/true)) {
                                return;
                              }
                              net->TraceEvent(TraceKind::kRpcReplyDeliver, from, to, method,
                                              static_cast<int64_t>(st->call_id));
                              st->Complete({}, RpcStatus::kOk, std::move(reply));
                            });
  }(this, std::move(st), from, to, method, std::move(fn), svc));
}

}  // namespace paylab::sim
