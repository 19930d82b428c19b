// Implementation of the payment service's auditor (see payment_auditor.h).
#include "checks/models/payment_auditor.h"

#include <fmt/format.h>

#include <utility>

namespace paylab::models {

PaymentAuditor::PaymentAuditor(sim::Simulator& sim, PaymentRules rules,
                               std::function<void(const system::Violation&)> on_violation)
    : check_(sim, "payment_model_agrees", std::move(on_violation)), model_(rules) {}

void PaymentAuditor::OnPaymentApplied(const system::PaymentApplied& a) {
  if (!check_.failed()) {
    check_.Judge(model_.Check(a));
  }
}

std::string PaymentAuditor::CompareAccounts(sim::Database& db) const {
  const auto& want = model_.balances();
  size_t nonzero_seen = 0;
  sim::Statement q(db, "SELECT owner, account, balance FROM pay_accounts ORDER BY owner, account");
  while (q.Step()) {
    const std::pair<int64_t, PayAccount> where{q.Int(0), static_cast<PayAccount>(q.Int(1))};
    const auto it = want.find(where);
    const int64_t expected = it == want.end() ? 0 : it->second;
    if (expected != q.Int(2)) {
      return fmt::format("account ({}, {}) holds {} in the database, the model says {}", q.Int(0),
                         q.Int(1), q.Int(2), expected);
    }
    nonzero_seen += expected != 0 ? 1 : 0;
  }
  size_t nonzero = 0;
  for (const auto& [where, balance] : want) {
    nonzero += balance != 0 ? 1 : 0;
  }
  if (nonzero != nonzero_seen) {
    return fmt::format("the model has {} accounts with a balance, the database {}", nonzero,
                       nonzero_seen);
  }
  return "";
}

std::string PaymentAuditor::ComparePayments(sim::Database& db) const {
  size_t seen = 0;
  sim::Statement q(db,
                   "SELECT id, status, resource_status, point_amount, wallet_amount FROM payments "
                   "ORDER BY id");
  while (q.Step()) {
    ++seen;
    const auto id = static_cast<uint64_t>(q.Int(0));
    const auto want = model_.PaymentOf(id);
    if (!want) {
      return fmt::format("payment {} is in the database, not in the model", id);
    }
    const auto status = static_cast<PaymentStatus>(q.Int(1));
    const auto resource = static_cast<ResourceStatus>(q.Int(2));
    if (status != want->status || resource != want->resource) {
      return fmt::format("payment {} is {} ({}) in the database, the model says {} ({})", id,
                         system::PaymentStatusName(status), system::ResourceStatusName(resource),
                         system::PaymentStatusName(want->status),
                         system::ResourceStatusName(want->resource));
    }
    const bool held = status == PaymentStatus::kAuthorized || status == PaymentStatus::kCaptured;
    if (held && (q.Int(3) != want->point_amount || q.Int(4) != want->wallet_amount)) {
      return fmt::format(
          "payment {} holds points {} and wallet {} in the database, the model says {} and {}", id,
          q.Int(3), q.Int(4), want->point_amount, want->wallet_amount);
    }
  }
  if (seen != model_.payment_count()) {
    return fmt::format("the database has {} payments, the model {}", seen, model_.payment_count());
  }
  const int64_t items = db.QueryInt("SELECT COUNT(*) FROM pay_clearing_items");
  if (items != static_cast<int64_t>(model_.credits_covered())) {
    return fmt::format("the database's clearings covered {} sales credits, the model's {}", items,
                       model_.credits_covered());
  }
  return "";
}

void PaymentAuditor::CheckFinal(sim::Database& db) {
  check_.JudgeFinal({[&] { return CompareAccounts(db); }, [&] { return ComparePayments(db); }});
}

}  // namespace paylab::models
