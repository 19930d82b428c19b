// Implementation of the migration's terms auditor (see migration_auditor.h).
#include "checks/models/migration_auditor.h"

#include <fmt/format.h>

namespace paylab::models {

namespace {
constexpr const char* kCheckNames[] = {"migration_terms_kept"};
constexpr sim::Time kNever = INT64_MAX;

std::string ExpiryText(sim::Time at) {
  return at == kNever ? std::string("never") : fmt::format("at {:.6f} s", sim::ToSeconds(at));
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

MigrationAuditor::MigrationAuditor(sim::Simulator& sim, MigrationTermsRules rules,
                                   std::function<void(const system::Violation&)> on_violation)
    : rules_(rules), board_(sim, kCheckNames, std::move(on_violation)) {}

std::string MigrationAuditor::Text(const Terms& t) {
  std::string out;
  for (const auto& [at, amount] : t) {
    if (amount == 0) {
      continue;
    }
    out += fmt::format("{}{} expiring {}", out.empty() ? "" : ", ", amount, ExpiryText(at));
  }
  return out.empty() ? "nothing" : out;
}

void MigrationAuditor::Fail(std::string detail) {
  if (!failed_) {
    failed_ = true;
    board_.Fail(0, std::move(detail));
  }
}

void MigrationAuditor::OnApplied(const system::WalletApplied& a) {
  for (const system::ItemChange& c : a.items) {
    if (c.created) {
      item_expiry_[c.item] = c.expires_at;
    }
  }
  if (a.request.op != system::WalletOp::kMoveOut &&
      a.request.op != system::WalletOp::kMoveOutAgain) {
    return;
  }
  // What left the wallet for the point service: each consumed item's part,
  // at that item's expiry.
  for (const system::MovementRecord& m : a.movements) {
    if (m.kind != system::MovementKind::kMigrateOut) {
      continue;
    }
    for (const system::ItemChange& c : a.items) {
      if (c.movement == m.id && c.delta < 0 && c.type == rules_.cashback) {
        waiting_[c.user][item_expiry_.at(c.item)] += -c.delta;
      }
    }
  }
}

void MigrationAuditor::Receive(const Lot& lot) {
  Terms& waiting = waiting_[lot.user];
  const auto it = waiting.find(lot.expires_at);
  if (it == waiting.end() || it->second < lot.amount) {
    Fail(
        fmt::format("the point service issued {} to user {} under {} expiring {}, but the "
                    "wallet moved out for that user {} (still to arrive)",
                    lot.amount, lot.user, lot.key, ExpiryText(lot.expires_at), Text(waiting)));
    return;
  }
  it->second -= lot.amount;
  if (it->second == 0) {
    waiting.erase(it);
  }
  ++terms_received_;
  board_.Pass(0);
}

void MigrationAuditor::CheckRefund(std::string_view debit_key, const Terms& refunded) {
  const auto it = debited_.find(std::string(debit_key));
  const Terms debited = it == debited_.end() ? Terms{} : it->second;
  if (debited != refunded) {
    Fail(fmt::format("the refund of payment {} gave back {}, but its debit took {}", debit_key,
                     Text(refunded), Text(debited)));
    return;
  }
  board_.Pass(0);
}

void MigrationAuditor::OnPointApplied(const system::PointApplied& a) {
  if (failed_) {
    return;
  }
  const system::PointRequest& r = a.request;
  std::map<std::string, Terms> refunded;
  for (const system::LotChange& c : a.lots) {
    if (c.event == system::LotEvent::kCreated) {
      lots_[c.lot] = Lot{c.user, c.amount, c.expires_at, c.key};
      if (StartsWith(c.key, "refund/")) {
        // RefundDebit names its debit; a grant "refund/<payment>" gives back
        // the payment's debit (the payment's key is the debit's).
        const std::string debit = r.op == system::PointOp::kRefundDebit
                                      ? std::string(r.debit_key)
                                      : c.key.substr(std::string_view("refund/").size());
        refunded[debit][c.expires_at] += c.amount;
      } else if (r.op == system::PointOp::kGrantConfirmed && StartsWith(c.key, "op/")) {
        // A credit made here: it expires as a CASHBACK credit would.
        const sim::Time want =
            rules_.cashback_expires_after > 0 ? r.now + rules_.cashback_expires_after : kNever;
        if (c.expires_at != want) {
          Fail(
              fmt::format("a credit of {} to user {} under {} expires {}, a CASHBACK credit "
                          "made then expires {}",
                          c.amount, c.user, c.key, ExpiryText(c.expires_at), ExpiryText(want)));
          return;
        }
        board_.Pass(0);
      }
    } else if (c.event == system::LotEvent::kIssued) {
      const Lot& lot = lots_.at(c.lot);
      if (StartsWith(lot.key, "migrate/") || StartsWith(lot.key, "fwd/")) {
        Receive(lot);
      }
    } else if (c.event == system::LotEvent::kLogged && c.amount < 0 && c.hold != 0 &&
               r.op == system::PointOp::kTryDebit) {
      debited_[std::string(r.key)][lots_.at(c.lot).expires_at] += -c.amount;
    }
  }
  for (const auto& [debit, terms] : refunded) {
    CheckRefund(debit, terms);
  }
}

void MigrationAuditor::CheckFinal() {
  if (failed_) {
    return;
  }
  for (const auto& [user, terms] : waiting_) {
    if (!terms.empty()) {
      Fail(fmt::format("user {}: the wallet moved out {} that never arrived in the point service",
                       user, Text(terms)));
      return;
    }
  }
  board_.Pass(0);
}

}  // namespace paylab::models
