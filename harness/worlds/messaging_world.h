// The messaging platform: the wallet platform, plus a broker and the mirror.
// The wallet publishes every movement through its outbox to a topic; the
// mirror consumes it as a consumer group and, when /messaging/audit_queue is
// on, through a queue the topic feeds (with a dead-letter queue). Payments
// build on it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checks/messaging_checker.h"
#include "harness/worlds/checked_broker.h"
#include "harness/worlds/wallet_world.h"
#include "system/wallet/mirror.h"

namespace paylab::scenarios {

class MessagingWorld : public WalletWorld {
 public:
  MessagingWorld(const Scenario& s, const RunOptions& o);
  ~MessagingWorld() override;

  void Configure(const Scenario& s, const RunOptions& o) override;
  void AddNodes(const RunOptions& o) override;
  void ScheduleOperatorActions(const Scenario& s, sim::Time safety_end) override;
  void StartNodes(const Scenario& s) override;
  std::string Backlog() override;
  void CheckFinal(const Scenario& s) override;
  std::vector<reports::CheckResult> CheckResults() const override;
  std::vector<const std::optional<system::Violation>*> FirstViolations() const override;
  void CollectFigures(const Scenario& s, reports::RunResult& r) override;

 protected:
  // The broker and the mirror, the broker watched by its model: after every
  // topic and queue of the platform is configured.
  void AddBrokerAndMirror(const RunOptions& o);
  // `count` poison messages into `queue` (none when it is ""), at times
  // drawn from `rng` in the safety phase.
  void SchedulePoison(sim::Rng& rng, const std::string& queue, int64_t count, int64_t* injected,
                      sim::Time safety_end);
  // The operator redrives the audit queue's dead letters, if planned.
  void ScheduleAuditRedrive(const Scenario& s);
  // The mirror's checks over the wallet's, broker's and mirror's databases.
  void CheckMirrorFinal();
  void CollectMessagingFigures(reports::RunResult& r);
  std::vector<system::WatchedTopic> WatchedTopics() const;

  system::MessagingChecker messaging_checker_;
  CheckedBroker broker_;
  system::MirrorConfig mirror_config_;
  std::string audit_queue_;        // "" when off
  std::string dead_letter_queue_;  // "" when off
  int64_t poison_injected_ = 0;
  int64_t redriven_ = 0;
  std::unique_ptr<ServiceNode<system::Mirror>> mirror_;
};

}  // namespace paylab::scenarios
