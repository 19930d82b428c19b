// The wallet's auditor: feeds the reference model (checks/models/wallet_model.h)
// every request the ledger applied, as the ledger reports it (a
// LedgerObserver with LedgerOptions::audit on), and fails the run on the
// first difference between prediction and fact, printing both sides
// (TigerBeetle's auditor, applied to the wallet).
//
// Check (name as printed in summaries and reports):
//   wallet_model_agrees   every applied request answered and moved exactly
//                         what the model predicted (accounts, amounts,
//                         balance items, expiries, holds); and at the end,
//                         every account balance, balance item remainder and
//                         hold state in the database equals the model's.
//
// The auditor sees only what the ledger reports and, at the end, its
// database; it keeps the model across crashes of the wallet node (the
// harness owns it), as the database outlives the node's memory.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>

#include "checks/models/model_check.h"
#include "checks/models/wallet_model.h"
#include "sim/simulator.h"
#include "sim/storage.h"
#include "system/common/check_board.h"
#include "system/wallet/ledger.h"

namespace paylab::models {

// The model's rules from a scenario's configured account types (as the
// wallet's AccountTypes names them) and the wallet's hold_ttl_max.
WalletRules WalletRulesOf(const system::AccountTypes& types, sim::Duration hold_ttl_max);

class WalletAuditor : public system::LedgerObserver {
 public:
  WalletAuditor(sim::Simulator& sim, WalletRules rules,
                std::function<void(const system::Violation&)> on_violation);

  // Facts arrive with OnApplied; these carry nothing the model needs.
  void OnMovement(const system::MovementRecord&) override {}
  void OnHoldCreated(uint64_t, sim::Time) override {}
  void OnApplied(const system::WalletApplied& a) override;

  // Compares the model with the wallet's database, at quiescence.
  void CheckFinal(sim::Database& wallet_db);

  const std::vector<system::CheckStatus>& statuses() const { return check_.statuses(); }
  const std::optional<system::Violation>& first_violation() const {
    return check_.first_violation();
  }
  const WalletModel& model() const { return model_; }

 private:
  ModelCheck check_;
  WalletModel model_;
};

}  // namespace paylab::models
