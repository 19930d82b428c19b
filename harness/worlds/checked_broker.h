// The broker node of a platform, with its checks: the reference model of its
// log and queues (broker_model_agrees) and the queue checker. The messaging,
// payments and migration platforms each have one.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "checks/models/broker_auditor.h"
#include "checks/queue_checker.h"
#include "harness/world.h"
#include "system/messaging/broker.h"

namespace paylab::scenarios {

struct CheckedBroker {
  CheckedBroker(sim::Simulator& sim, std::function<void(const system::Violation&)> on_violation);

  // Makes the broker's auditor from the broker's finished configuration (its
  // topics and queues), and has the broker report every call to it.
  void Watch(sim::Simulator& sim, const RunOptions& o,
             std::function<void(const system::Violation&)> on_violation);
  // Makes the node (not yet added to the network).
  void MakeNode(sim::Simulator& sim, sim::Network& net);

  // The model's comparison with the database, then the queue checker:
  // last, since a queue left full is often the symptom of what an earlier
  // check names more precisely.
  void CheckFinal(sim::Simulator& sim, const std::vector<system::WatchedTopic>& topics);
  void AppendResults(std::vector<reports::CheckResult>& out) const;
  void AppendModelFigures(reports::RunResult& r) const;
  // The broker's service, null while it is down.
  system::Broker* service() { return node->service(); }
  sim::Database& db() { return node->node().db(); }

  system::BrokerConfig config;
  std::optional<models::BrokerAuditor> auditor;
  system::QueueChecker queue_checker;
  std::unique_ptr<ServiceNode<system::Broker>> node;
};

// What messaging still carries ("" when drained): outbox rows of `outboxes`
// not yet published (a node without an outbox table is passed over), topic
// messages `mirror_group` has not committed (none when it is null), and
// messages left in any queue a topic feeds. Dead-letter queues keep what
// they hold.
std::string BrokerBacklog(CheckedBroker& broker, std::vector<sim::Node*> outboxes,
                          const std::string* mirror_group);

// Every topic of `config` as the queue checker needs to know it: how its
// payloads decode, and the group that reads it. `mirror_group` reads the
// movement topic; `cashback_topic` is the migration's ("" when none).
std::vector<system::WatchedTopic> WatchedTopicsOf(const system::BrokerConfig& config,
                                                  const std::string& mirror_group,
                                                  const std::string& cashback_topic);

// The operator's redrive of a dead-letter queue, retried each second while
// the broker is down.
struct Redrive {
  sim::Simulator* sim;
  CheckedBroker* broker;
  std::string dlq;
  int64_t* counter;
  void operator()() const;
};

}  // namespace paylab::scenarios
