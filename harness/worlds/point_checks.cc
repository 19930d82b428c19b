#include "harness/worlds/point_checks.h"

#include "harness/worlds/wallet_world.h"
#include "sim/check.h"

namespace paylab::scenarios {

PointChecks::PointChecks(sim::Simulator& sim,
                         std::function<void(const system::Violation&)> on_violation)
    : checker(sim, std::move(on_violation)) {}

void PointChecks::Watch(sim::Simulator& sim, sim::Duration hold_ttl_max,
                        std::function<void(const system::Violation&)> on_violation) {
  PAYLAB_CHECK(!auditor.has_value());
  auditor.emplace(sim, models::PointRules{hold_ttl_max}, std::move(on_violation));
  observers.emplace(std::vector<system::PointLedgerObserver*>{&checker, &*auditor});
}

void PointChecks::CheckFinal(sim::Database& point_db, sim::Time now) {
  checker.CheckFinal(point_db, now);
  auditor->CheckFinal(point_db);
}

void PointChecks::AppendResults(std::vector<reports::CheckResult>& out) const {
  AppendStatuses(checker.statuses(), out);
  AppendStatuses(auditor->statuses(), out);
}

void PointChecks::AppendModelFigures(reports::RunResult& r) const {
  const models::PointModelStats& ps = auditor->model().stats();
  const std::pair<std::string, int64_t> figures[] = {
      {"point.requests", ps.requests},
      {"point.refusals", ps.refusals},
      {"point.declines", ps.declines},
      {"point.multi_lot_debits", ps.multi_lot_debits},
      {"point.lots_expired", ps.lots_expired},
      {"point.holds_expired", ps.holds_expired},
      {"point.grants_provisional", ps.grants_provisional},
      {"point.grants_confirmed", ps.grants_confirmed},
      {"point.grants_revoked", ps.grants_revoked},
  };
  r.models.insert(r.models.end(), std::begin(figures), std::end(figures));
}

}  // namespace paylab::scenarios
