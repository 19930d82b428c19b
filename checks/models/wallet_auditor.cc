// Implementation of the wallet's auditor (see wallet_auditor.h).
#include "checks/models/wallet_auditor.h"

#include <fmt/format.h>

namespace paylab::models {

WalletRules WalletRulesOf(const system::AccountTypes& types, sim::Duration hold_ttl_max) {
  WalletRules rules;
  rules.hold_ttl_max = hold_ttl_max;
  for (const system::AccountType& t : types.all()) {
    if (t.system) {
      continue;
    }
    rules.types.push_back(WalletTypeRule{t.id, t.name, t.debit_priority, t.allow_negative,
                                         t.expires_after, t.auto_create, t.balance_cap});
  }
  return rules;
}

WalletAuditor::WalletAuditor(sim::Simulator& sim, WalletRules rules,
                             std::function<void(const system::Violation&)> on_violation)
    : check_(sim, "wallet_model_agrees", std::move(on_violation)), model_(std::move(rules)) {}

void WalletAuditor::OnApplied(const system::WalletApplied& a) {
  if (!check_.failed()) {
    check_.Judge(model_.Check(a));
  }
}

void WalletAuditor::CheckFinal(sim::Database& db) {
  if (check_.failed()) {
    return;
  }
  std::string diff;
  {
    sim::Statement q(db, "SELECT user_id, type, balance FROM accounts ORDER BY user_id, type");
    while (diff.empty() && q.Step()) {
      const auto user = q.Int(0);
      const auto type = static_cast<system::TypeId>(q.Int(1));
      const int64_t want =
          user == system::kSystemUser ? model_.SystemBalance(type) : model_.Balance(user, type);
      if (want != q.Int(2)) {
        diff = fmt::format("account ({}, {}) holds {} in the database, the model says {}", user,
                           type, q.Int(2), want);
      }
    }
  }
  {
    sim::Statement q(db, "SELECT id, remaining FROM balance_items ORDER BY id");
    while (diff.empty() && q.Step()) {
      const std::optional<int64_t> want = model_.ItemRemaining(q.Int(0));
      if (want != q.Int(1)) {
        diff = fmt::format("balance item {} has {} left in the database, the model says {}",
                           q.Int(0), q.Int(1), want ? fmt::format("{}", *want) : "no such item");
      }
    }
  }
  {
    sim::Statement q(db, "SELECT id, state FROM holds ORDER BY id");
    while (diff.empty() && q.Step()) {
      const auto want = model_.HoldStateOf(static_cast<uint64_t>(q.Int(0)));
      if (!want || static_cast<int64_t>(*want) != q.Int(1)) {
        diff = fmt::format("hold {} is in state {} in the database, the model says {}", q.Int(0),
                           q.Int(1), want ? static_cast<int>(*want) : -1);
      }
    }
  }
  check_.JudgeFinal({[&diff] { return diff; }});
}

}  // namespace paylab::models
