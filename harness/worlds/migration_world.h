// The migration platform: CASHBACK moves from the wallet to the point
// service while the shopper's traffic runs. Nodes: the shopper (as the
// client), the legacy cashback wallet, the broker (dual-write), the point
// home, the controller of user status and the migrator running the
// strategy.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checks/migration_checker.h"
#include "checks/models/migration_auditor.h"
#include "harness/worlds/checked_broker.h"
#include "harness/worlds/point_checks.h"
#include "harness/worlds/wallet_world.h"
#include "system/migration/cashback_wallet.h"
#include "system/migration/controller.h"
#include "system/migration/migrator.h"
#include "system/migration/point_home.h"
#include "workloads/shopper.h"

namespace paylab::scenarios {

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

}  // namespace paylab::scenarios
