// Implementation of the partner's auditor (see partner_auditor.h).
#include "checks/models/partner_auditor.h"

#include <fmt/format.h>

#include <utility>

namespace paylab::models {

PartnerRules PartnerRulesOf(const system::PartnerConfig& config) {
  return PartnerRules{config.hold_ttl_max, config.unavailable_rate, config.outages};
}

PartnerAuditor::PartnerAuditor(sim::Simulator& sim, PartnerRules rules,
                               std::function<void(const system::Violation&)> on_violation)
    : check_(sim, "partner_model_agrees", std::move(on_violation)), model_(std::move(rules)) {}

void PartnerAuditor::OnPartnerApplied(const system::PartnerApplied& a) {
  if (!check_.failed()) {
    check_.Judge(model_.Check(a));
  }
}

std::string PartnerAuditor::CompareAccounts(sim::Database& db) const {
  int64_t users_seen = 0;
  sim::Statement q(db, "SELECT user_id, account, balance FROM accounts ORDER BY user_id, account");
  while (q.Step()) {
    const int64_t user = q.Int(0);
    const auto account = static_cast<PartnerAccount>(q.Int(1));
    const int64_t want = model_.Balance(user, account);
    if (want != q.Int(2)) {
      return fmt::format("account ({}, {}) holds {} in the database, the model says {}", user,
                         system::PartnerAccountName(account), q.Int(2), want);
    }
    users_seen += user == 0 ? 0 : 1;
  }
  if (users_seen != model_.user_count()) {
    return fmt::format("the database has {} user accounts, the model {} users", users_seen,
                       model_.user_count());
  }
  const int64_t movements = db.QueryInt("SELECT COUNT(*) FROM movements");
  if (movements != model_.movement_count()) {
    return fmt::format("the database has {} movements, the model {}", movements,
                       model_.movement_count());
  }
  return "";
}

std::string PartnerAuditor::CompareHolds(sim::Database& db) const {
  size_t seen = 0;
  sim::Statement q(
      db, "SELECT id, key, user_id, amount, ttl, state, expires_at FROM holds ORDER BY id");
  while (q.Step()) {
    ++seen;
    const auto want = model_.HoldOf(q.Int(0));
    const auto state = static_cast<PartnerHoldState>(q.Int(5));
    const std::string have =
        fmt::format("key '{}' user {} amount {} ttl {} {} expiring at {}", q.Text(1), q.Int(2),
                    q.Int(3), q.Int(4), system::PartnerHoldStateName(state), q.Int(6));
    if (!want) {
      return fmt::format("hold {} ({}) is in the database, not in the model", q.Int(0), have);
    }
    if (want->key != q.Text(1) || want->user != q.Int(2) || want->amount != q.Int(3) ||
        want->ttl != q.Int(4) || want->state != state || want->expires_at != q.Int(6)) {
      return fmt::format(
          "hold {} is {} in the database, the model says key '{}' user {} amount {} ttl {} {} "
          "expiring at {}",
          q.Int(0), have, want->key, want->user, want->amount, want->ttl,
          system::PartnerHoldStateName(want->state), want->expires_at);
    }
  }
  if (seen != model_.hold_count()) {
    return fmt::format("the database has {} hold rows, the model {}", seen, model_.hold_count());
  }
  return "";
}

void PartnerAuditor::CheckFinal(sim::Database& db) {
  check_.JudgeFinal({[&] { return CompareAccounts(db); }, [&] { return CompareHolds(db); }});
}

}  // namespace paylab::models
