// The point ledger's auditor: feeds the reference model
// (checks/models/point_model.h) every request the ledger applied, as the ledger
// reports it (a PointLedgerObserver with PointLedgerOptions::audit on), and
// fails the run on the first difference between prediction and fact,
// printing both sides.
//
// Check (name as printed in summaries and reports):
//   point_model_agrees   every applied request answered and did exactly what
//                        the model predicted (answers, movements, lots
//                        created, issued, revoked and consumed, expiries,
//                        holds); and at the end, every account balance, lot
//                        remainder and state, and hold state in the point
//                        database equals the model's.
//
// The auditor sees only what the ledger reports and, at the end, its
// database; it keeps the model across crashes of the point node (the harness
// owns it), as the database outlives the node's memory.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "checks/models/model_check.h"
#include "checks/models/point_model.h"
#include "sim/simulator.h"
#include "sim/storage.h"
#include "system/common/check_board.h"
#include "system/points/point_ledger.h"

namespace paylab::models {

class PointAuditor : public system::PointLedgerObserver {
 public:
  PointAuditor(sim::Simulator& sim, PointRules rules,
               std::function<void(const system::Violation&)> on_violation);

  // Facts arrive with OnPointApplied; a movement alone carries nothing the
  // model needs.
  void OnPointMovement(const system::PointMovementRecord&) override {}
  void OnPointApplied(const system::PointApplied& a) override;

  // Compares the model with the point database, at quiescence.
  void CheckFinal(sim::Database& point_db);

  const std::vector<system::CheckStatus>& statuses() const { return check_.statuses(); }
  const std::optional<system::Violation>& first_violation() const {
    return check_.first_violation();
  }
  const PointModel& model() const { return model_; }

 private:
  std::string CompareAccounts(sim::Database& db) const;
  std::string CompareLots(sim::Database& db) const;
  std::string CompareHolds(sim::Database& db) const;

  ModelCheck check_;
  PointModel model_;
};

}  // namespace paylab::models
