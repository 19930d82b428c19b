// A simulated process: a service with volatile state, the coroutines it
// runs, and a durable database that outlives crashes.
//
// Contract:
//  - Crash() stops the process between two events: it cancels every
//    coroutine the current incarnation spawned (terminal cancellation, in
//    spawn order) and drops the service object, i.e. all volatile state.
//    The database keeps exactly the committed transactions.
//  - The dropped service object is destroyed only after its last coroutine
//    has unwound, so no frame ever touches freed memory. A cancelled
//    coroutine cannot act after the crash: every side effect goes through
//    its NodeContext, which refuses once the incarnation is over.
//  - Restart() builds a new service through the factory and runs its
//    Boot(), which must recover from the database.
//  - Crash/Restart must be called from a simulator event, not from inside
//    an Asio handler (the simulator guarantees this for scheduled events).
#pragma once

#include <boost/asio.hpp>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "sim/simulator.h"
#include "sim/storage.h"
#include "sim/trace.h"

namespace paylab::sim {

class Network;
class NodeContext;

// Thrown by NodeContext when a coroutine of a crashed incarnation tries to
// act. It only unwinds that coroutine; the node counts it as a normal end.
class NodeCrashed : public std::runtime_error {
 public:
  NodeCrashed() : std::runtime_error("node crashed") {}
};

// What runs on a node. Destroyed on crash; everything it keeps in memory is
// volatile.
class Service {
 public:
  virtual ~Service() = default;
  // Runs at the first start and after every restart; recovers from the
  // database. It may spawn long-running loops through the NodeContext.
  virtual asio::awaitable<void> Boot() = 0;
};

class Node {
 public:
  using Factory = std::function<std::unique_ptr<Service>(NodeContext&)>;

  Node(Simulator& sim, Network& net, NodeId id, std::string name, Factory factory);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  NodeId id() const { return id_; }
  const std::string& name() const { return name_; }
  bool up() const { return up_; }
  uint64_t incarnation() const { return incarnation_; }
  Simulator& sim() { return sim_; }
  Network& network() { return net_; }
  Database& db() { return db_; }
  // The running service, or nullptr while the node is down.
  Service* service();
  uint64_t crashes() const { return crashes_; }
  size_t live_tasks() const { return tasks_.size(); }

  // The error of this machine's wall clock, in ms: what its services add to
  // virtual time when they read "the time" for IDs. A fault (a clock step)
  // changes it; it survives crashes, as a machine's clock does.
  const int64_t& clock_offset_ms() const { return clock_offset_ms_; }
  void StepClock(int64_t step_ms);

  // A fault point inside this node's code decided to crash it (see
  // NodeContext::FaultPoint): from now on its context refuses to act, and
  // the crash itself follows as the next event.
  void Doom() { doomed_ = true; }
  bool doomed() const { return doomed_; }

  // Boots the node for the first time. REQUIRES: never started.
  void Start();
  // REQUIRES: up().
  void Crash();
  // REQUIRES: !up().
  void Restart();
  // Cancels everything without tracing a crash; used to end a run cleanly.
  void Shutdown();

  // Runs `coro` as a task of the current incarnation. REQUIRES: up().
  void Spawn(asio::awaitable<void> coro);

 private:
  struct Incarnation {
    std::unique_ptr<NodeContext> ctx;
    std::unique_ptr<Service> service;
    size_t tasks = 0;
  };
  void Boot();
  void CancelTasks();
  void OnTaskDone(uint64_t task, uint64_t incarnation, std::exception_ptr e);

  Simulator& sim_;
  Network& net_;
  NodeId id_;
  std::string name_;
  Factory factory_;
  Database db_;
  bool up_ = false;
  bool doomed_ = false;
  bool started_ = false;
  int64_t clock_offset_ms_ = 0;
  uint64_t incarnation_ = 0;
  uint64_t crashes_ = 0;
  uint64_t next_task_ = 0;
  struct Task {
    uint64_t incarnation;
    std::unique_ptr<asio::cancellation_signal> signal;
    bool finished = false;  // the coroutine has ended; the erase is queued
  };
  std::map<uint64_t, Task> tasks_;                // ordered: cancellation order is spawn order
  std::map<uint64_t, Incarnation> incarnations_;  // the current one, and dying ones
};

}  // namespace paylab::sim
