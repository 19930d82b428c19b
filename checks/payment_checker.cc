// Implementation of the payment checks (see payment_checker.h).
#include "checks/payment_checker.h"

#include <fmt/format.h>

#include <map>
#include <optional>

#include "system/payments/partner.h"
#include "system/payments/payment_service.h"
#include "system/payments/schema.h"
#include "system/payments/upstream.h"
#include "system/points/point_ledger.h"
#include "system/points/schema.h"
#include "system/wallet/account_types.h"
#include "system/wallet/schema.h"

namespace paylab::system {

namespace {

enum Check : size_t {
  kJournalBalanced,
  kFundedExactly,
  kNotStuck,
  kSalesCredit,
  kClearingPairs,
  kUpstreamAgrees,
  kGrantsSettled,
  kIdsExclusive,
};
constexpr const char* kCheckNames[] = {
    "payment_journal_balanced", "payment_funded_exactly",
    "payment_not_stuck",        "captured_equals_sales_credit",
    "clearing_pairs_net_zero",  "upstream_agrees",
    "grants_settled",           "ids_exclusive",
};

// The payment status an order's final state allows.
bool Agrees(OrderState order, PaymentStatus payment) {
  switch (order) {
    case OrderState::kCaptured:
      return payment == PaymentStatus::kCaptured;
    case OrderState::kVoided:
      return payment == PaymentStatus::kVoided;
    case OrderState::kDeclined:
      return payment == PaymentStatus::kFailed;
    case OrderState::kFailed:
      // Given up by the upstream: the payment failed, or the orphan was voided.
      return payment == PaymentStatus::kFailed || payment == PaymentStatus::kVoided;
    case OrderState::kPending:
    case OrderState::kAuthorized:
      return false;  // never final at quiescence
  }
  return false;
}

// The amounts of the captured payments of `flow`.
int64_t CapturedTotal(sim::Database& payment, PaymentFlow flow) {
  return payment.QueryInt(
      fmt::format("SELECT SUM(amount) FROM payments WHERE status = {} AND flow = {}",
                  Stored(PaymentStatus::kCaptured), Stored(flow)));
}

int64_t PointClearingBalance(sim::Database& db) {
  return db.QueryInt(
      fmt::format("SELECT balance FROM point_accounts WHERE user_id = 0 AND account = {}",
                  static_cast<int>(PointAccount::kClearing)));
}

// Every provisional grant settled, and each payment's grant in the state its
// status calls for. Grants are keyed "grant/<payment id>".
bool PointGrantsSettled(sim::Database& payment, sim::Database& point, std::string* detail) {
  {
    sim::Statement s(point, fmt::format("SELECT grant_key, user_id, amount FROM point_lots "
                                        "WHERE state = {} ORDER BY id LIMIT 1",
                                        Stored(LotState::kProvisional)));
    if (s.Step()) {
      *detail = fmt::format("grant {} of {} points to user {} is still provisional", s.Text(0),
                            s.Int(2), s.Int(1));
      return false;
    }
  }
  std::map<uint64_t, LotState> grants;
  {
    sim::Statement s(point,
                     "SELECT CAST(substr(grant_key, 7) AS INTEGER), state FROM point_lots "
                     "WHERE grant_key LIKE 'grant/%' ORDER BY id");
    while (s.Step()) {
      grants.emplace(static_cast<uint64_t>(s.Int(0)), static_cast<LotState>(s.Int(1)));
    }
  }
  sim::Statement s(payment, "SELECT id, status FROM payments ORDER BY id");
  while (s.Step()) {
    const auto id = static_cast<uint64_t>(s.Int(0));
    const auto status = static_cast<PaymentStatus>(s.Int(1));
    const auto it = grants.find(id);
    if (it == grants.end()) {
      continue;  // no reward (too small), or nothing to grant
    }
    const bool confirmed = it->second == LotState::kConfirmed;
    if (confirmed != (status == PaymentStatus::kCaptured)) {
      *detail = fmt::format("payment {} is {} but its point grant is {}", id,
                            PaymentStatusName(status), confirmed ? "confirmed" : "not confirmed");
      return false;
    }
  }
  return true;
}

}  // namespace

PaymentChecker::PaymentChecker(sim::Simulator& sim,
                               std::function<void(const Violation&)> on_violation)
    : board_(sim, kCheckNames, std::move(on_violation)) {}

void PaymentChecker::CheckFinal(const PaymentDatabases& d) {
  CheckJournal(*d.payment);
  CheckFundedExactly(*d.payment);
  CheckNotStuck(*d.payment);
  CheckSales(d);
  CheckClearing(d);
  CheckUpstreams(d);
  CheckGrants(d);
  CheckIds(d);
}

void PaymentChecker::CheckIds(const PaymentDatabases& d) {
  struct Source {
    sim::Database* db;
    const char* sql;
    const char* name;
    int parity;  // the lowest bit every ID of this source must have
  };
  const Source sources[] = {
      {d.wallet, "SELECT id FROM movements", "wallet movement", 0},
      {d.wallet, "SELECT id FROM holds", "wallet hold", 0},
      {d.payment, "SELECT id FROM payments", "payment", 0},
      {d.payment, "SELECT DISTINCT movement FROM pay_journal", "merchant-ledger movement", 0},
      {d.point, "SELECT id FROM point_movements", "point movement", 1},
      {d.point, "SELECT id FROM point_holds", "point hold", 1},
      {d.point, "SELECT id FROM point_lots", "point lot", 1},
  };
  // An ID names one thing: a movement and the hold it created may not share
  // one, nor may two systems.
  std::map<int64_t, const char*> seen;
  for (const Source& src : sources) {
    sim::Statement s(*src.db, src.sql);
    while (s.Step()) {
      const int64_t id = s.Int(0);
      if ((id & 1) != src.parity) {
        board_.Fail(kIdsExclusive, fmt::format("{} ID {} has lowest bit {}, not {}", src.name, id,
                                               id & 1, src.parity));
        return;
      }
      const auto [it, fresh] = seen.emplace(id, src.name);
      if (!fresh) {
        board_.Fail(kIdsExclusive,
                    fmt::format("ID {} names both a {} and a {}", id, it->second, src.name));
        return;
      }
    }
  }
  board_.Pass(kIdsExclusive);
}

void PaymentChecker::CheckJournal(sim::Database& db) {
  sim::Statement s(db,
                   "SELECT movement, SUM(delta) FROM pay_journal GROUP BY movement "
                   "HAVING SUM(delta) != 0 ORDER BY movement LIMIT 1");
  if (s.Step()) {
    board_.Fail(kJournalBalanced,
                fmt::format("merchant-ledger movement {} sums to {}", s.Int(0), s.Int(1)));
    return;
  }
  const int64_t total = db.QueryInt("SELECT SUM(balance) FROM pay_accounts");
  if (total != 0) {
    board_.Fail(kJournalBalanced, fmt::format("the merchant ledger's accounts sum to {}", total));
    return;
  }
  board_.Pass(kJournalBalanced);
}

void PaymentChecker::CheckFundedExactly(sim::Database& db) {
  sim::Statement funded(
      db, fmt::format("SELECT id, amount, partner_amount, point_amount, wallet_amount "
                      "FROM payments WHERE status IN ({}) AND "
                      "amount != partner_amount + point_amount + wallet_amount "
                      "ORDER BY id LIMIT 1",
                      StoredList({PaymentStatus::kAuthorized, PaymentStatus::kCaptured})));
  if (funded.Step()) {
    board_.Fail(
        kFundedExactly,
        fmt::format("payment {} of {} held partner {} + points {} + wallet {}", funded.Int(0),
                    funded.Int(1), funded.Int(2), funded.Int(3), funded.Int(4)));
  } else {
    board_.Pass(kFundedExactly);
  }
}

void PaymentChecker::CheckNotStuck(sim::Database& db) {
  sim::Statement stuck(
      db, fmt::format("SELECT id, order_key, status, resource_status, request, phase, "
                      "rollback_phase, reason FROM payments WHERE resource_status = {} OR "
                      "(resource_status = {} AND status != {}) ORDER BY id LIMIT 1",
                      Stored(ResourceStatus::kWip), Stored(ResourceStatus::kFailed),
                      Stored(PaymentStatus::kFailed)));
  if (stuck.Step()) {
    board_.Fail(
        kNotStuck,
        fmt::format("payment {} ({}) is {} with status {}, request {}, phase {}, "
                    "rollback phase {}{}{}",
                    stuck.Int(0), stuck.Text(1),
                    ResourceStatusName(static_cast<ResourceStatus>(stuck.Int(3))),
                    PaymentStatusName(static_cast<PaymentStatus>(stuck.Int(2))), stuck.Int(4),
                    stuck.Int(5), stuck.Int(6), stuck.Text(7).empty() ? "" : ": ", stuck.Text(7)));
  } else {
    board_.Pass(kNotStuck);
  }
}

void PaymentChecker::CheckSales(const PaymentDatabases& d) {
  const int64_t charges = CapturedTotal(*d.payment, PaymentFlow::kCharge);
  const int64_t credited = d.payment->QueryInt(
      fmt::format("SELECT SUM(delta) FROM pay_journal WHERE account = {} AND delta > 0",
                  Stored(PayAccount::kUnsettled)));
  if (charges != credited) {
    board_.Fail(kSalesCredit,
                fmt::format("captured charges total {} but merchants' unsettled sales were "
                            "credited {}",
                            charges, credited));
    return;
  }
  const int64_t escrows = CapturedTotal(*d.payment, PaymentFlow::kEscrow);
  const int64_t paid_out = d.wallet->QueryInt(
      fmt::format("SELECT -SUM(delta) FROM journal WHERE user_id = 0 AND type = {} AND delta < 0",
                  AccountTypes::kClearing));
  if (escrows != paid_out) {
    board_.Fail(
        kSalesCredit,
        fmt::format("captured escrows total {} but the wallet paid sellers {}", escrows, paid_out));
    return;
  }
  board_.Pass(kSalesCredit);
}

void PaymentChecker::CheckClearing(const PaymentDatabases& d) {
  const auto mirror = [&](PayAccount a) {
    return d.payment->QueryInt(fmt::format(
        "SELECT balance FROM pay_accounts WHERE owner = 0 AND account = {}", static_cast<int>(a)));
  };
  // What holds of the outside caller confirmed into a clearing account.
  const auto outside = [&](sim::Database* db, const std::string& sql) -> int64_t {
    if (db == nullptr || d.outside_key_prefix.empty()) {
      return 0;
    }
    sim::Statement q(*db, sql);
    q.Bind(1, d.outside_key_prefix);
    return q.Step() ? q.Int(0) : 0;
  };
  struct Pair {
    const char* name;
    int64_t participant;
    int64_t outside;
    int64_t mirror;
  };
  const Pair pairs[] = {
      {"wallet",
       d.wallet->QueryInt(
           fmt::format("SELECT balance FROM accounts WHERE user_id = 0 AND type = {}",
                       AccountTypes::kClearing)),
       outside(d.wallet, fmt::format("SELECT COALESCE(SUM(amount), 0) FROM holds WHERE state = "
                                     "{} AND dst_user = 0 AND substr(idem_key, 1, length(?1)) = ?1",
                                     Stored(HoldState::kCommitted))),
       mirror(PayAccount::kWalletClearing)},
      {"point", PointClearingBalance(*d.point),
       outside(d.point, fmt::format("SELECT COALESCE(SUM(amount), 0) FROM point_holds WHERE "
                                    "state = {} AND substr(key, 1, length(?1)) = ?1",
                                    Stored(PointHoldState::kConfirmed))),
       mirror(PayAccount::kPointClearing)},
      {"partner", d.partner == nullptr ? 0 : PartnerClearingBalance(*d.partner),
       outside(d.partner, fmt::format("SELECT COALESCE(SUM(amount), 0) FROM holds WHERE state = "
                                      "{} AND substr(key, 1, length(?1)) = ?1",
                                      Stored(PartnerHoldState::kConfirmed))),
       mirror(PayAccount::kPartnerClearing)},
  };
  for (const Pair& p : pairs) {
    if (p.participant - p.outside + p.mirror != 0) {
      board_.Fail(kClearingPairs,
                  fmt::format("the {} clearing account holds {} ({} of it confirmed by holds "
                              "outside the payment service, left out) but the payment ledger's "
                              "mirror holds {}: they should cancel out",
                              p.name, p.participant, p.outside, p.mirror));
      return;
    }
  }
  board_.Pass(kClearingPairs);
}

void PaymentChecker::CheckUpstreams(const PaymentDatabases& d) {
  std::map<std::string, PaymentStatus> payments;
  {
    sim::Statement s(*d.payment, "SELECT order_key, status FROM payments ORDER BY order_key");
    while (s.Step()) {
      payments.emplace(std::string(s.Text(0)), static_cast<PaymentStatus>(s.Int(1)));
    }
  }
  size_t orders_with_payment = 0;
  for (const auto& [name, db] : d.upstreams) {
    sim::Statement s(*db, "SELECT key, state FROM orders ORDER BY key");
    while (s.Step()) {
      const std::string key(s.Text(0));
      const auto state = static_cast<OrderState>(s.Int(1));
      const auto it = payments.find(key);
      if (it == payments.end()) {
        if (state != OrderState::kFailed) {
          board_.Fail(kUpstreamAgrees,
                      fmt::format("order {} is {} but the payment service has no payment for it",
                                  key, OrderStateName(state)));
          return;
        }
        continue;
      }
      ++orders_with_payment;
      if (!Agrees(state, it->second)) {
        board_.Fail(kUpstreamAgrees,
                    fmt::format("order {} is {} but its payment is {}", key, OrderStateName(state),
                                PaymentStatusName(it->second)));
        return;
      }
    }
  }
  if (orders_with_payment != payments.size()) {
    board_.Fail(kUpstreamAgrees, fmt::format("{} payments have no order upstream",
                                             payments.size() - orders_with_payment));
    return;
  }
  board_.Pass(kUpstreamAgrees);
}

void PaymentChecker::CheckGrants(const PaymentDatabases& d) {
  std::string detail;
  if (!PointGrantsSettled(*d.payment, *d.point, &detail)) {
    board_.Fail(kGrantsSettled, detail);
    return;
  }
  board_.Pass(kGrantsSettled);
}

}  // namespace paylab::system
