// Implementation of the point ledger's auditor (see point_auditor.h).
#include "checks/models/point_auditor.h"

#include <fmt/format.h>

#include <utility>

namespace paylab::models {

PointAuditor::PointAuditor(sim::Simulator& sim, PointRules rules,
                           std::function<void(const system::Violation&)> on_violation)
    : check_(sim, "point_model_agrees", std::move(on_violation)), model_(rules) {}

void PointAuditor::OnPointApplied(const system::PointApplied& a) {
  if (!check_.failed()) {
    check_.Judge(model_.Check(a));
  }
}

std::string PointAuditor::CompareAccounts(sim::Database& db) const {
  int64_t users_seen = 0;
  sim::Statement q(
      db, "SELECT user_id, account, balance FROM point_accounts ORDER BY user_id, account");
  while (q.Step()) {
    const int64_t user = q.Int(0);
    const auto account = static_cast<PointAccount>(q.Int(1));
    const int64_t want =
        user == system::kSystemUser ? model_.SystemBalance(account) : model_.UserBalance(user);
    if (want != q.Int(2)) {
      return fmt::format("account ({}, {}) holds {} in the database, the model says {}", user,
                         system::PointAccountName(account), q.Int(2), want);
    }
    users_seen += user == system::kSystemUser ? 0 : 1;
  }
  if (users_seen != model_.user_count()) {
    return fmt::format("the database has {} user accounts, the model {} users", users_seen,
                       model_.user_count());
  }
  return "";
}

std::string PointAuditor::CompareLots(sim::Database& db) const {
  size_t seen = 0;
  sim::Statement q(db, "SELECT id, remaining, state FROM point_lots ORDER BY id");
  while (q.Step()) {
    ++seen;
    const auto want = model_.LotOf(static_cast<uint64_t>(q.Int(0)));
    if (!want) {
      return fmt::format("lot {} is in the database, not in the model", q.Int(0));
    }
    if (want->remaining != q.Int(1) || static_cast<int64_t>(want->state) != q.Int(2)) {
      return fmt::format(
          "lot {} has {} left in state {} in the database, the model says {} in state {}", q.Int(0),
          q.Int(1), q.Int(2), want->remaining, static_cast<int>(want->state));
    }
  }
  if (seen != model_.lot_count()) {
    return fmt::format("the database has {} lots, the model {}", seen, model_.lot_count());
  }
  return "";
}

std::string PointAuditor::CompareHolds(sim::Database& db) const {
  size_t seen = 0;
  sim::Statement q(db, "SELECT id, state FROM point_holds ORDER BY id");
  while (q.Step()) {
    ++seen;
    const auto want = model_.HoldStateOf(static_cast<uint64_t>(q.Int(0)));
    if (!want || static_cast<int64_t>(*want) != q.Int(1)) {
      return fmt::format("hold {} is in state {} in the database, the model says {}", q.Int(0),
                         q.Int(1), want ? static_cast<int>(*want) : -1);
    }
  }
  if (seen != model_.hold_count()) {
    return fmt::format("the database has {} holds, the model {}", seen, model_.hold_count());
  }
  return "";
}

void PointAuditor::CheckFinal(sim::Database& db) {
  check_.JudgeFinal({[&] { return CompareAccounts(db); }, [&] { return CompareLots(db); },
                     [&] { return CompareHolds(db); }});
}

}  // namespace paylab::models
