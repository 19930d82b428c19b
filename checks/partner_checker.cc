// Implementation of the partner checker (see partner_checker.h).
#include "checks/partner_checker.h"

#include <fmt/format.h>

#include "system/payments/schema.h"

namespace paylab::system {

namespace {

constexpr const char* kPartnerCheckNames[] = {
    "partner_journal_balanced",
    "partner_balances_reconcile",
    "partner_no_hold_left",
};
enum PartnerCheck : size_t { kJournalBalanced, kBalancesReconcile, kNoHoldLeft };

}  // namespace

PartnerChecker::PartnerChecker(sim::Simulator& sim,
                               std::function<void(const Violation&)> on_violation)
    : board_(sim, kPartnerCheckNames, std::move(on_violation)) {}

void PartnerChecker::CheckFinal(sim::Database& db) {
  CheckJournalBalanced(db);
  CheckBalancesReconcile(db);
  CheckNoHoldLeft(db);
}

void PartnerChecker::CheckJournalBalanced(sim::Database& db) {
  sim::Statement q(db,
                   "SELECT movement_id, SUM(delta) FROM journal GROUP BY movement_id "
                   "HAVING SUM(delta) != 0 ORDER BY movement_id LIMIT 1");
  const int64_t total = db.QueryInt("SELECT COALESCE(SUM(delta), 0) FROM journal");
  if (q.Step()) {
    board_.Fail(kJournalBalanced,
                fmt::format("partner movement {} has entries summing to {}", q.Int(0), q.Int(1)));
  } else if (total != 0) {
    board_.Fail(kJournalBalanced, fmt::format("the partner's journal sums to {}", total));
  } else {
    board_.Pass(kJournalBalanced);
  }
}

void PartnerChecker::CheckBalancesReconcile(sim::Database& db) {
  const auto account = [&](PartnerAccount a) {
    return db.QueryInt(fmt::format(
        "SELECT COALESCE(SUM(balance), 0) FROM accounts WHERE user_id = 0 AND account = {}",
        Stored(a)));
  };
  const auto holds = [&](PartnerHoldState s) {
    return db.QueryInt(
        fmt::format("SELECT COALESCE(SUM(amount), 0) FROM holds WHERE state = {}", Stored(s)));
  };
  // Only ISSUE, where the points were issued from, may be negative.
  sim::Statement replay(
      db, fmt::format("SELECT a.user_id, a.account, a.balance, COALESCE(j.s, 0) FROM accounts a "
                      "LEFT JOIN (SELECT user_id, account, SUM(delta) AS s FROM journal "
                      "GROUP BY user_id, account) j USING (user_id, account) "
                      "WHERE a.balance != COALESCE(j.s, 0) OR (a.balance < 0 AND NOT (a.user_id = "
                      "0 AND a.account = {})) ORDER BY a.user_id, a.account LIMIT 1",
                      Stored(PartnerAccount::kIssue)));
  // A resolved hold has its resolving movement; every hold that held
  // points has its try's.
  sim::Statement unresolved(
      db, fmt::format("SELECT id, state FROM holds WHERE "
                      "(state IN ({}) AND resolve_movement IS NULL) OR "
                      "(state IN ({}) AND try_movement IS NULL) "
                      "ORDER BY id LIMIT 1",
                      StoredList({PartnerHoldState::kConfirmed, PartnerHoldState::kCancelled,
                                  PartnerHoldState::kExpired}),
                      StoredList({PartnerHoldState::kHeld, PartnerHoldState::kConfirmed,
                                  PartnerHoldState::kCancelled, PartnerHoldState::kExpired})));
  const int64_t held = holds(PartnerHoldState::kHeld);
  const int64_t confirmed = holds(PartnerHoldState::kConfirmed);
  if (replay.Step()) {
    board_.Fail(kBalancesReconcile,
                fmt::format("partner account ({}, {}) holds {} but its journal sums to {}",
                            replay.Int(0), replay.Int(1), replay.Int(2), replay.Int(3)));
  } else if (account(PartnerAccount::kHolds) != held) {
    board_.Fail(kBalancesReconcile,
                fmt::format("partner HOLDS holds {} but the held holds total {}",
                            account(PartnerAccount::kHolds), held));
  } else if (account(PartnerAccount::kClearing) != confirmed) {
    board_.Fail(kBalancesReconcile,
                fmt::format("partner CLEARING holds {} but the confirmed holds total {}",
                            account(PartnerAccount::kClearing), confirmed));
  } else if (unresolved.Step()) {
    board_.Fail(kBalancesReconcile, fmt::format("partner hold {} in state {} lacks its movement",
                                                unresolved.Int(0), unresolved.Int(1)));
  } else {
    board_.Pass(kBalancesReconcile);
  }
}

void PartnerChecker::CheckNoHoldLeft(sim::Database& db) {
  const int64_t held = Stored(PartnerHoldState::kHeld);
  sim::Statement q(db, fmt::format("SELECT id, key, expires_at, (SELECT COUNT(*) FROM holds WHERE "
                                   "state = {}) FROM holds WHERE state = {} ORDER BY id LIMIT 1",
                                   held, held));
  if (q.Step()) {
    board_.Fail(kNoHoldLeft,
                fmt::format("partner hold {} (key {}) is still held at the end, expiring at "
                            "{:.3f} s; {} hold(s) held in all",
                            q.Int(0), q.Text(1), sim::ToSeconds(q.Int(2)), q.Int(3)));
  } else {
    board_.Pass(kNoHoldLeft);
  }
}

}  // namespace paylab::system
