// NodeContext: everything a service may use to act in the world.
//
// Services never reach for time, randomness, storage or the network
// themselves; they receive this context from the node running them (as
// LevelDB's Env). A context belongs to one incarnation of its node: once
// that incarnation has crashed, every method that acts throws NodeCrashed,
// so a coroutine unwinding after a crash cannot write, send or spawn.
#pragma once

#include <boost/asio.hpp>
#include <string>
#include <string_view>
#include <type_traits>

#include "sim/network.h"
#include "sim/node.h"
#include "sim/simulator.h"

namespace paylab::sim {

class NodeContext {
 public:
  NodeContext(Node& node, uint64_t incarnation) : node_(node), incarnation_(incarnation) {}

  bool alive() const {
    return node_.up() && !node_.doomed() && node_.incarnation() == incarnation_;
  }
  NodeId id() const { return node_.id(); }
  const std::string& name() const { return node_.name(); }
  uint64_t incarnation() const { return incarnation_; }
  Simulator& sim() { return node_.sim(); }
  Time Now() const { return node_.sim().Now(); }
  // The machine's clock error (ms), for services that read "the wall clock"
  // (ID timestamps). Lives in the node: valid as long as it.
  const int64_t& clock_offset_ms() const { return node_.clock_offset_ms(); }

  // A named fault point: if the run's plan says so, the node crashes here
  // and this throws NodeCrashed, ending the calling coroutine as a crash
  // would. Inert (one pointer test) when the run has no fault points.
  void FaultPoint(std::string_view point) {
    Guard();
    FaultPointHook* hook = node_.sim().fault_points();
    if (hook != nullptr && hook->Reached(node_, point)) {
      throw NodeCrashed();
    }
  }

  // The node's durable database. Throws NodeCrashed after a crash.
  Database& db() {
    Guard();
    return node_.db();
  }

  // A random stream private to this node's incarnation and the given name.
  Rng Stream(std::string_view name) const {
    return Rng(node_.sim().seed() ^ (incarnation_ * 0x9e3779b97f4a7c15ull),
               std::string(node_.name()) + "/" + std::string(name));
  }

  void Spawn(asio::awaitable<void> coro) {
    Guard();
    node_.Spawn(std::move(coro));
  }

  asio::awaitable<void> Sleep(Duration d) {
    Guard();
    co_await node_.sim().AsyncSleep(d, asio::use_awaitable);
    Guard();
  }

  // Calls `fn(Svc&)` on node `to` with a deadline. The result is a value:
  // kOk with the answer, or kTimeout (lost request, lost reply, callee down
  // or partitioned, or simply slower than `timeout`).
  template <class Svc, class F>
  auto Call(NodeId to, std::string_view method, Duration timeout, F fn) {
    using R = typename std::invoke_result_t<F, Svc&>::value_type;
    Guard();
    // Not a coroutine itself: `fn` goes straight into the operation, never
    // into a coroutine frame as a by-value parameter (GCC 12 mishandles
    // those when they own memory).
    return node_.network().AsyncCall<Svc, R>(id(), to, method, timeout, std::move(fn),
                                             asio::use_awaitable);
  }

  // Call() whose request, if not lost, arrives at exactly `arrive_at` (at or
  // after now): a workload aiming at a boundary instant. `timeout` counts
  // from now.
  template <class Svc, class F>
  auto CallAt(NodeId to, std::string_view method, Duration timeout, Time arrive_at, F fn) {
    using R = typename std::invoke_result_t<F, Svc&>::value_type;
    Guard();
    return node_.network().AsyncCall<Svc, R>(id(), to, method, timeout, std::move(fn),
                                             asio::use_awaitable, arrive_at);
  }

  void Trace(TraceKind kind, std::string_view name, int64_t a = 0, int64_t b = 0) {
    node_.sim().trace().Record(TraceEvent{Now(), kind, id(), kNoNode, name, a, b});
  }

 private:
  void Guard() const {
    if (!alive()) {
      throw NodeCrashed();
    }
  }

  Node& node_;
  uint64_t incarnation_;
};

}  // namespace paylab::sim
