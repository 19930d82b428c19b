// The wallet platform: the client's traffic against one wallet node. With
// /messaging, /payments and /migration off, a scenario builds this world;
// the others build on its pieces.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checks/models/wallet_auditor.h"
#include "checks/wallet_checker.h"
#include "harness/world.h"
#include "system/wallet/account_types.h"
#include "system/wallet/ledger.h"
#include "system/wallet/wallet.h"
#include "workloads/client.h"

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

}  // namespace paylab::scenarios
