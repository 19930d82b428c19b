// The platforms a scenario builds, one World each (harness/world.h):
//  - WalletWorld: the client's traffic against one wallet node (messaging,
//    payments and migration off);
//  - MessagingWorld: the wallet platform plus a broker and the mirror: the
//    wallet publishes every movement through its outbox, the mirror consumes
//    it as a consumer group and through a queue with a dead-letter queue;
//  - PaymentsWorld: the messaging platform plus the point service, the
//    payment orchestrator (TCC over points, wallet and the partner, three
//    recovery layers), the external partner, the upstreams (checkout:
//    charges; marketplace: escrows and P2P transfers) and, when
//    /payments/misuse_rate_per_s > 0, the hostile TCC caller;
//  - MigrationWorld: CASHBACK moves from the wallet to the point service
//    while the shopper's traffic runs: the shopper (as the client), the
//    legacy cashback wallet, the broker (dual-write), the point home, the
//    controller of user status and the migrator running the strategy.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checks/messaging_checker.h"
#include "checks/migration_checker.h"
#include "checks/models/migration_auditor.h"
#include "checks/models/partner_auditor.h"
#include "checks/models/payment_auditor.h"
#include "checks/models/wallet_auditor.h"
#include "checks/partner_checker.h"
#include "checks/payment_checker.h"
#include "checks/wallet_checker.h"
#include "harness/world.h"
#include "system/migration/cashback_wallet.h"
#include "system/migration/controller.h"
#include "system/migration/migrator.h"
#include "system/migration/point_home.h"
#include "system/payments/partner.h"
#include "system/payments/payment_service.h"
#include "system/payments/upstream.h"
#include "system/points/point_service.h"
#include "system/wallet/account_types.h"
#include "system/wallet/ledger.h"
#include "system/wallet/mirror.h"
#include "system/wallet/wallet.h"
#include "workloads/client.h"
#include "workloads/hostile.h"
#include "workloads/shopper.h"
#include "harness/worlds/parts.h"

namespace paylab::scenarios {

class WalletWorld : public World {
 public:
  WalletWorld(const Scenario& s, const RunOptions& o);
  ~WalletWorld() override;

  void Configure(const Scenario& s, const RunOptions& o) override;
  void AddNodes(const RunOptions& o) override;
  void StartNodes(const Scenario& s) override;
  std::string NotQuietReason(const Scenario* s) override;
  void CheckFinal(const Scenario& s) override;
  std::vector<reports::CheckResult> CheckResults() const override;
  std::vector<const std::optional<system::Violation>*> FirstViolations() const override;
  void CollectFigures(const Scenario& s, reports::RunResult& r) override;
  int64_t MovementsSeen() const override { return wallet_checks_.checker.movements_seen(); }

 protected:
  // The client's counts by operation kind and outcome.
  void CollectClientOperations(reports::RunResult& r);
  // What the client aimed at and misused (the models section).
  void AppendClientModelFigures(reports::RunResult& r);
  // Why the client is not done ("" when it is).
  std::string ClientNotDone(const Scenario* s);

  WalletChecks wallet_checks_;
  system::WalletConfig wallet_config_;
  system::WorkloadConfig workload_;
  std::unique_ptr<ServiceNode<system::Client>> client_;
  std::unique_ptr<ServiceNode<system::Wallet>> wallet_;
};


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


class PaymentsWorld : public MessagingWorld {
 public:
  PaymentsWorld(const Scenario& s, const RunOptions& o);
  ~PaymentsWorld() override;

  void Configure(const Scenario& s, const RunOptions& o) override;
  void AddNodes(const RunOptions& o) override;
  void ScheduleOperatorActions(const Scenario& s, sim::Time safety_end) override;
  void StartNodes(const Scenario& s) override;
  std::string NotQuietReason(const Scenario* s) override;
  std::string Backlog() override;
  sim::Duration LivenessBound(const Scenario& s) const override;
  void CheckFinal(const Scenario& s) override;
  std::vector<reports::CheckResult> CheckResults() const override;
  std::vector<const std::optional<system::Violation>*> FirstViolations() const override;
  void CollectFigures(const Scenario& s, reports::RunResult& r) override;

 private:
  // The payment topic and the queues of its consumers.
  void ConfigureTopic(const Scenario& s);
  void ConfigurePoints(const Scenario& s, const RunOptions& o);
  void ConfigurePartner(const Scenario& s, const RunOptions& o);
  void ConfigureHostile(const Scenario& s);
  void ConfigurePaymentService(const Scenario& s, const RunOptions& o);
  void ConfigureUpstreams(const Scenario& s, const RunOptions& o);
  // Why an upstream, the payment service or the hostile caller is not done.
  std::string PaymentsNotQuiet(const Scenario* s);
  void CollectPaymentFigures(reports::RunResult& r);
  void CollectUpstreamFigures(reports::RunResult& r);

  PointChecks point_checks_;
  system::PartnerChecker partner_checker_;
  std::optional<models::PartnerAuditor> partner_auditor_;
  system::PaymentChecker payment_checker_;
  std::optional<models::PaymentAuditor> payment_auditor_;
  system::PointServiceConfig point_config_;
  system::PartnerConfig partner_config_;
  system::PartnerCounters partner_counters_;
  system::PaymentConfig payment_config_;
  system::PaymentCounters payment_counters_;
  system::UpstreamConfig checkout_config_;
  system::UpstreamConfig marketplace_config_;
  system::UpstreamCounters checkout_counters_;
  system::UpstreamCounters marketplace_counters_;
  std::string assignment_queue_;
  std::string assignment_dlq_;
  int64_t assignment_redriven_ = 0;
  int64_t assignment_poison_ = 0;
  system::HostileConfig hostile_config_;
  system::HostileCounters hostile_counters_;
  // The hostile caller's check (misuse_refused_or_replayed), only when it runs.
  std::optional<system::CheckBoard> misuse_board_;
  std::unique_ptr<ServiceNode<system::PointService>> point_;
  std::unique_ptr<ServiceNode<system::PaymentService>> payment_;
  std::unique_ptr<ServiceNode<system::Partner>> partner_;
  std::unique_ptr<ServiceNode<system::Upstream>> checkout_;
  std::unique_ptr<ServiceNode<system::Upstream>> marketplace_;
  std::unique_ptr<ServiceNode<system::Hostile>> hostile_;
};


class MigrationWorld : public World {
 public:
  MigrationWorld(const Scenario& s, const RunOptions& o);
  ~MigrationWorld() override;

  void Configure(const Scenario& s, const RunOptions& o) override;
  void AddNodes(const RunOptions& o) override;
  void StartNodes(const Scenario& s) override;
  std::string NotQuietReason(const Scenario* s) override;
  std::string Backlog() override;
  sim::Duration LivenessBound(const Scenario& s) const override;
  void CheckFinal(const Scenario& s) override;
  std::vector<reports::CheckResult> CheckResults() const override;
  std::vector<const std::optional<system::Violation>*> FirstViolations() const override;
  void CollectFigures(const Scenario& s, reports::RunResult& r) override;
  int64_t MovementsSeen() const override { return wallet_checks_.checker.movements_seen(); }

  // Records users migrated and requests rejected so far (the report's
  // series), then again every `every`.
  void SampleEvery(sim::Duration every);

 private:
  void ConfigureWallet(const Scenario& s, const RunOptions& o);
  void ConfigurePointHome(const Scenario& s, const RunOptions& o);
  void ConfigureMigrator(const Scenario& s, const RunOptions& o);
  void ConfigureShopper(const Scenario& s);
  void Sample();
  void CollectShopperFigures(reports::RunResult& r);
  // Unavailability per user from the controller's status log, and what the
  // migration's services counted.
  void CollectMigrationFigures(const Scenario& s, reports::RunResult& r);

  WalletChecks wallet_checks_;
  CheckedBroker broker_;
  PointChecks point_checks_;
  system::MigrationChecker migration_checker_;
  std::unique_ptr<models::MigrationAuditor> migration_auditor_;
  system::TypeId cashback_type_ = 0;
  system::MigrationStrategy strategy_ = system::MigrationStrategy::kOnline;
  system::CashbackWalletConfig wallet_config_;
  system::PointHomeConfig home_config_;
  system::ControllerConfig controller_config_;
  system::MigratorConfig migrator_config_;
  system::MigratorCounters migrator_counters_;
  system::ShopperConfig shopper_config_;
  std::string copies_queue_;
  std::vector<reports::RunResult::MigrationSample> series_;
  std::unique_ptr<ServiceNode<system::Shopper>> shopper_;
  std::unique_ptr<ServiceNode<system::CashbackWallet>> wallet_;
  std::unique_ptr<ServiceNode<system::PointHome>> point_;
  std::unique_ptr<ServiceNode<system::MigrationController>> controller_;
  std::unique_ptr<ServiceNode<system::Migrator>> migrator_;
};


// Configured, its nodes made and its faults armed; not started.
std::unique_ptr<World> MakeWorld(const Scenario& s, const RunOptions& o);

}  // namespace paylab::scenarios
