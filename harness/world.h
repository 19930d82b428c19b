// A world: one simulated platform, built from a scenario, that the runner
// drives through its phases (harness/runner.h). The runner knows only this
// interface; each platform (harness/worlds/) knows its own nodes, the order
// they boot in, when it is quiet, how long it may take, its final checks and
// its figures.
//
// Building is in three steps, so that every platform configures all of its
// services before any node exists, and every node exists before a fault can
// name it: Configure(), then AddNodes(), then ArmFaults(). MakeWorld
// (harness/worlds/make_world.h) does all three.
//
// Determinism: nodes are numbered by the network in the order they are
// added, which is kKnownNodes' order; a node a platform does not use is an
// idle placeholder in its place. Every order below (boot, checks, figures)
// is fixed by the platform's code, never by a container of pointers.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "faults/crash_injector.h"
#include "faults/fault_points.h"
#include "harness/runner.h"
#include "harness/schema/scenario.h"
#include "reports/run_result.h"
#include "sim/network.h"
#include "sim/node.h"
#include "sim/simulator.h"
#include "system/common/check_board.h"

namespace paylab::scenarios {

// The id of a node named in kKnownNodes. REQUIRES: the name is known (the
// loader checks every name a scenario gives).
sim::NodeId NodeIdOf(std::string_view name);

// A node whose service is an S: the typed service of the node's current
// incarnation, or null while the node is down. Held in place (never moved):
// the node's factory refers to it.
template <typename S>
class ServiceNode {
 public:
  template <typename Make>
  ServiceNode(sim::Simulator& sim, sim::Network& net, std::string_view name, Make make)
      : node_(sim, net, NodeIdOf(name), std::string(name), [this, make](sim::NodeContext& ctx) {
          std::unique_ptr<S> service = make(ctx);
          latest_ = service.get();
          return service;
        }) {}
  ServiceNode(const ServiceNode&) = delete;
  ServiceNode& operator=(const ServiceNode&) = delete;

  S* service() { return node_.service() == latest_ && latest_ != nullptr ? latest_ : nullptr; }
  sim::Node& node() { return node_; }
  sim::Node* operator->() { return &node_; }

 private:
  sim::Node node_;
  S* latest_ = nullptr;
};

class World {
 public:
  World(const Scenario& s, const RunOptions& o);
  virtual ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  // Fills every service's configuration from the scenario.
  virtual void Configure(const Scenario& s, const RunOptions& o) = 0;
  // Makes the platform's nodes, in kKnownNodes' order (AddNode, AddIdle).
  virtual void AddNodes(const RunOptions& o) = 0;
  // The scenario's faults: network, crashes, fault points, the schedule.
  void ArmFaults(const Scenario& s, const RunOptions& o);

  // The operator's actions the scenario plans during the run (poison
  // messages, redrives). Called before the nodes start.
  virtual void ScheduleOperatorActions(const Scenario& s, sim::Time safety_end) {}
  // Boots every node of the platform, the workload last, and the
  // platform's own jobs.
  virtual void StartNodes(const Scenario& s) = 0;

  // Why the platform is not quiet yet ("" when it is): the workload has not
  // finished, or work it started is still in flight. With no scenario, a
  // short word (cheap, asked every virtual second).
  virtual std::string NotQuietReason(const Scenario* s) = 0;
  bool Quiet() { return NotQuietReason(nullptr).empty(); }
  // What messaging still carries once the platform is quiet ("" when
  // drained): the final checks wait for it, bounded.
  virtual std::string Backlog() { return ""; }
  // How long the liveness phase may last before the workload must be done.
  virtual sim::Duration LivenessBound(const Scenario& s) const;

  // The final checks over the settled databases, in the platform's order;
  // the first violation stops the simulation, and what follows does not run.
  virtual void CheckFinal(const Scenario& s) = 0;
  // Every check the platform reports, in the report's order, with its
  // counts so far.
  virtual std::vector<reports::CheckResult> CheckResults() const = 0;
  // Every board's first violation, in the order that breaks a tie of time.
  virtual std::vector<const std::optional<system::Violation>*> FirstViolations() const = 0;
  // The platform's figures: operations, models, payments, messaging,
  // migration (the runner adds the kernel's and the faults').
  virtual void CollectFigures(const Scenario& s, reports::RunResult& r) = 0;
  // The movements the wallet's checker saw.
  virtual int64_t MovementsSeen() const = 0;

  // Every node of the platform (placeholders aside), in id order.
  const std::vector<sim::Node*>& nodes() const { return nodes_; }

  sim::Simulator sim;
  sim::Network net;
  std::unique_ptr<faults::CrashInjector> crashes;
  std::unique_ptr<faults::FaultPointInjector> fault_points;  // null: no points armed
  sim::Duration partition_time = 0;
  int64_t partitions = 0;
  int64_t clock_steps = 0;
  // The network's counters when the safety phase ended (faults still on).
  sim::NetworkCounters safety_counters;

 protected:
  // Registers `node` with the network (which numbers it) and the world.
  void AddNode(sim::Node& node);
  // A node the platform does not use, in its place: never started.
  void AddIdle(std::string_view name);
  // Ends every node's coroutines and forgets the nodes. Each platform's
  // destructor calls it first, while everything the coroutines reference is
  // alive; a later call does nothing.
  void ShutdownNodes();
  // Stops the run at a check's first violation.
  auto StopOnViolation() {
    return [this](const system::Violation&) { sim.Stop(); };
  }

 private:
  std::vector<sim::Node*> nodes_;
  std::vector<std::unique_ptr<sim::Node>> placeholders_;
};

}  // namespace paylab::scenarios
