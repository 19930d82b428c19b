// The point ledger's checks, in the payments and the migration platforms:
// the invariant checker, then the reference model, both fed every movement
// the point node applies.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "checks/models/point_auditor.h"
#include "checks/point_checker.h"
#include "reports/run_result.h"
#include "sim/simulator.h"
#include "system/points/point_ledger.h"

namespace paylab::scenarios {

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
