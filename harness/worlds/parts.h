// The pieces the platforms share: the wallet's checks (every platform), the
// broker with its checks (messaging, payments, migration), the point
// ledger's checks (payments, migration).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "checks/models/broker_auditor.h"
#include "checks/models/point_auditor.h"
#include "checks/models/wallet_auditor.h"
#include "checks/point_checker.h"
#include "checks/queue_checker.h"
#include "checks/wallet_checker.h"
#include "harness/world.h"
#include "reports/run_result.h"
#include "sim/simulator.h"
#include "system/messaging/broker.h"
#include "system/points/point_ledger.h"
#include "system/wallet/account_types.h"
#include "system/wallet/ledger.h"

namespace paylab::scenarios {


// The wallet's checks, in every platform: the invariant checker, then the
// reference model, both fed every movement the wallet applies.
struct WalletChecks {
  WalletChecks(sim::Simulator& sim, const Scenario& s,
               std::function<void(const system::Violation&)> on_violation);

  // wallet_* final checks (wallet_no_hold_left with payments or the
  // migration on), then the model's comparison with the database.
  void CheckFinal(sim::Simulator& sim, sim::Database& wallet_db);
  void AppendResults(std::vector<reports::CheckResult>& out) const;
  void AppendModelFigures(reports::RunResult& r) const;

  system::AccountTypes types;
  system::WalletChecker checker;
  models::WalletAuditor auditor;
  system::LedgerObserverFanout observers;
};

// Appends every status of `statuses` to `out`, in order.
void AppendStatuses(std::span<const system::CheckStatus> statuses,
                    std::vector<reports::CheckResult>& out);

// The wallet's configuration: ledger rules and defects, users and their
// opening balances, the expiry sweep. Messaging, when on, adds its part.
system::WalletConfig WalletConfigOf(const Scenario& s, const RunOptions& o,
                                    const system::AccountTypes& types);


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


struct PointChecks {
  PointChecks(sim::Simulator& sim, std::function<void(const system::Violation&)> on_violation);

  // Makes the model for a ledger whose tries may last up to `hold_ttl_max`,
  // and the observers the point node reports to.
  void Watch(sim::Simulator& sim, sim::Duration hold_ttl_max,
             std::function<void(const system::Violation&)> on_violation);
  // The checker's final checks, then the model's comparison with the
  // database (both run: the platform decides whether to go on after).
  void CheckFinal(sim::Database& point_db, sim::Time now);
  void AppendResults(std::vector<reports::CheckResult>& out) const;
  void AppendModelFigures(reports::RunResult& r) const;

  system::PointChecker checker;
  std::optional<models::PointAuditor> auditor;
  std::optional<system::PointLedgerObserverFanout> observers;
};

}  // namespace paylab::scenarios
