// Implementation of the point checker (see point_checker.h).
#include "checks/point_checker.h"

#include <fmt/format.h>

#include "system/points/schema.h"

namespace paylab::system {

namespace {
constexpr const char* kCheckNames[] = {
    "point_journal_balanced",
    "point_balance_matches_lots",
    "point_not_spent_after_expiry",
    "point_no_hold_left",
    "point_ids_odd",
};

std::string AccountName(int64_t account) {
  const auto a = static_cast<PointAccount>(account);
  const std::string_view name = PointAccountName(a);
  return name == "?" ? fmt::format("account {}", account) : std::string(name);
}

// The parts of point_balance_matches_lots, each answering its first
// difference, or "".

// Every account's balance against its journal and against `model`, the
// balances replayed from the movements seen.
std::string AccountsReplayMismatch(sim::Database& db,
                                   const std::map<std::pair<UserId, int32_t>, int64_t>& model) {
  // Every (user, account) that has a balance or a journal row, with the
  // checker's replay beside it.
  sim::Statement q(db,
                   "SELECT user_id, account, SUM(b), SUM(j) FROM ("
                   "SELECT user_id, account, balance AS b, 0 AS j FROM point_accounts "
                   "UNION ALL SELECT user_id, account, 0, delta FROM point_journal) "
                   "GROUP BY user_id, account ORDER BY user_id, account");
  std::map<std::pair<UserId, int32_t>, int64_t> unseen = model;
  while (q.Step()) {
    const UserId user = q.Int(0);
    const auto account = static_cast<int32_t>(q.Int(1));
    const int64_t stored = q.Int(2), replayed = q.Int(3);
    auto it = unseen.find({user, account});
    const int64_t seen = it == unseen.end() ? 0 : it->second;
    if (it != unseen.end()) {
      unseen.erase(it);
    }
    if (stored != replayed || stored != seen) {
      return fmt::format("user {} {}: balance {}, journal replay {}, movements seen {}", user,
                         AccountName(account), stored, replayed, seen);
    }
  }
  for (const auto& [ua, seen] : unseen) {
    if (seen != 0) {
      return fmt::format("user {} {}: movements seen {} but the database has no row", ua.first,
                         AccountName(ua.second), seen);
    }
  }
  return "";
}

// Per user, the journal's sum against the remainders of the user's
// confirmed lots.
std::string UserLotsMismatch(sim::Database& db) {
  sim::Statement q(db, fmt::format("SELECT u, SUM(j), SUM(l) FROM ("
                                   "SELECT user_id AS u, delta AS j, 0 AS l FROM point_journal "
                                   "WHERE user_id != 0 UNION ALL "
                                   "SELECT user_id, 0, remaining FROM point_lots WHERE state = {}) "
                                   "GROUP BY u HAVING SUM(j) != SUM(l) ORDER BY u LIMIT 1",
                                   Stored(LotState::kConfirmed)));
  if (q.Step()) {
    return fmt::format("user {}: journal sum {} but confirmed lots hold {}", q.Int(0), q.Int(1),
                       q.Int(2));
  }
  return "";
}

// Each confirmed lot's remainder against its amount and its log (within
// [0, amount]); a lot never confirmed holds and logged nothing.
std::string LotLogMismatch(sim::Database& db) {
  const int64_t confirmed = Stored(LotState::kConfirmed);
  sim::Statement q(db, fmt::format("SELECT o.id, o.state, o.amount, o.remaining, COALESCE(l.s, 0), "
                                   "COALESCE(l.n, 0) FROM point_lots o LEFT JOIN (SELECT lot_id, "
                                   "SUM(delta) AS s, COUNT(*) AS n FROM point_lot_log GROUP BY "
                                   "lot_id) l ON l.lot_id = o.id WHERE (o.state = {} AND "
                                   "(o.remaining != o.amount + COALESCE(l.s, 0) OR o.remaining < 0 "
                                   "OR o.remaining > o.amount)) OR (o.state != {} AND (o.remaining "
                                   "!= 0 OR COALESCE(l.n, 0) > 0)) ORDER BY o.id LIMIT 1",
                                   confirmed, confirmed));
  if (q.Step()) {
    return fmt::format(
        "lot {} (state {}): amount {}, remaining {}, but its log sums to {} over {} entries",
        q.Int(0), q.Int(1), q.Int(2), q.Int(3), q.Int(4), q.Int(5));
  }
  return "";
}

// HOLDS, CLEARING and ISSUE against the holds and lots they stand for.
std::string SystemAccountsMismatch(sim::Database& db) {
  struct SystemAccount {
    PointAccount account;
    std::string expected_sql;
    const char* what;
  };
  const SystemAccount accounts[] = {
      {PointAccount::kHolds,
       fmt::format("SELECT COALESCE(SUM(amount), 0) FROM point_holds WHERE state = {}",
                   Stored(PointHoldState::kHeld)),
       "held holds"},
      {PointAccount::kClearing,
       fmt::format("SELECT COALESCE(SUM(amount), 0) FROM point_holds WHERE state = {}",
                   Stored(PointHoldState::kConfirmed)),
       "confirmed holds"},
      {PointAccount::kIssue,
       fmt::format("SELECT -COALESCE(SUM(amount), 0) FROM point_lots WHERE state = {}",
                   Stored(LotState::kConfirmed)),
       "minus the confirmed lots"},
  };
  for (const SystemAccount& a : accounts) {
    const int64_t balance = db.QueryInt(
        fmt::format("SELECT COALESCE(SUM(balance), 0) FROM point_accounts WHERE user_id = 0 "
                    "AND account = {}",
                    static_cast<int32_t>(a.account)));
    const int64_t expected = db.QueryInt(a.expected_sql);
    if (balance != expected) {
      return fmt::format("system {}: balance {} but the {} make {}", PointAccountName(a.account),
                         balance, a.what, expected);
    }
  }
  return "";
}

}  // namespace

PointChecker::PointChecker(sim::Simulator& sim, std::function<void(const Violation&)> on_violation)
    : board_(sim, kCheckNames, std::move(on_violation)) {
  static_assert(std::size(kCheckNames) == kCheckCount);
}

void PointChecker::SeeId(uint64_t id, std::string_view what) {
  if (id % 2 != 1) {
    Fail(kIdsOdd, fmt::format("{} id {} is even: point IDs have the system bit 1", what, id));
  } else {
    Pass(kIdsOdd);
  }
}

void PointChecker::OnPointMovement(const PointMovementRecord& m) {
  ++movements_;
  const std::string_view kind = PointMovementKindName(m.kind);
  int64_t sum = 0;
  for (const PointEntry& e : m.entries) {
    sum += e.delta;
    model_[{e.user, static_cast<int32_t>(e.account)}] += e.delta;
  }
  journal_total_ += sum;
  if (sum != 0) {
    Fail(kJournalBalanced,
         fmt::format("{} movement {} has entries summing to {}", kind, m.id, sum));
  } else if (journal_total_ != 0) {
    Fail(kJournalBalanced,
         fmt::format("after {} movement {} the journal sums to {}", kind, m.id, journal_total_));
  } else {
    Pass(kJournalBalanced);
  }
  SeeId(m.id, kind);
  if (m.hold_id != 0) {
    SeeId(m.hold_id, "hold");
  }
  if (m.lot_id != 0) {
    SeeId(m.lot_id, "lot");
  }
}

void PointChecker::CheckFinal(sim::Database& db, sim::Time now) {
  CheckJournalBalanced(db);
  CheckBalanceMatchesLots(db);
  CheckNotSpentAfterExpiry(db);
  CheckNoHoldLeft(db, now);
  CheckIdsOdd(db);
}

void PointChecker::CheckJournalBalanced(sim::Database& db) {
  bool ok = true;
  sim::Statement q(db,
                   "SELECT movement_id, SUM(delta) FROM point_journal GROUP BY movement_id "
                   "HAVING SUM(delta) != 0 ORDER BY movement_id LIMIT 1");
  if (q.Step()) {
    Fail(kJournalBalanced,
         fmt::format("point movement {} in the database sums to {}", q.Int(0), q.Int(1)));
    ok = false;
  }
  const int64_t total = db.QueryInt("SELECT COALESCE(SUM(delta), 0) FROM point_journal");
  if (total != 0) {
    Fail(kJournalBalanced, fmt::format("at the end the point journal sums to {}", total));
    ok = false;
  }
  if (ok) {
    Pass(kJournalBalanced);
  }
}

// The database is compared in a fixed order (accounts against the replays,
// users against their lots, lots against their logs, system accounts
// against the holds and lots); the first difference is the violation.
void PointChecker::CheckBalanceMatchesLots(sim::Database& db) {
  std::string mismatch = AccountsReplayMismatch(db, model_);
  if (mismatch.empty()) {
    mismatch = UserLotsMismatch(db);
  }
  if (mismatch.empty()) {
    mismatch = LotLogMismatch(db);
  }
  if (mismatch.empty()) {
    mismatch = SystemAccountsMismatch(db);
  }
  if (!mismatch.empty()) {
    Fail(kBalanceMatchesLots, std::move(mismatch));
  } else {
    Pass(kBalanceMatchesLots);
  }
}

void PointChecker::CheckNotSpentAfterExpiry(sim::Database& db) {
  sim::Statement q(db,
                   "SELECT l.seq, l.lot_id, l.hold_id, l.delta, l.at, o.expires_at "
                   "FROM point_lot_log l JOIN point_lots o ON o.id = l.lot_id "
                   "WHERE l.delta < 0 AND l.hold_id != 0 AND l.at >= o.expires_at "
                   "ORDER BY l.seq LIMIT 1");
  if (q.Step()) {
    Fail(kNotSpentAfterExpiry,
         fmt::format("lot log entry {}: hold {} took {} from lot {} at t={:.3f} s, the lot "
                     "expired at t={:.3f} s",
                     q.Int(0), q.Int(2), -q.Int(3), q.Int(1), sim::ToSeconds(q.Int(4)),
                     sim::ToSeconds(q.Int(5))));
  } else {
    Pass(kNotSpentAfterExpiry);
  }
}

void PointChecker::CheckNoHoldLeft(sim::Database& db, sim::Time now) {
  sim::Statement q(db, fmt::format("SELECT id, key, amount, expires_at FROM point_holds WHERE "
                                   "state = {} ORDER BY id LIMIT 1",
                                   Stored(PointHoldState::kHeld)));
  if (q.Step()) {
    Fail(kNoHoldLeft,
         fmt::format("hold {} (key {}, {} points) is still held at t={:.3f} s; it expires at "
                     "t={:.3f} s",
                     q.Int(0), q.Text(1), q.Int(2), sim::ToSeconds(now), sim::ToSeconds(q.Int(3))));
  } else {
    Pass(kNoHoldLeft);
  }
}

void PointChecker::CheckIdsOdd(sim::Database& db) {
  sim::Statement q(db,
                   "SELECT what, id FROM ("
                   "SELECT 'lot' AS what, id FROM point_lots WHERE id % 2 != 1 UNION ALL "
                   "SELECT 'hold', id FROM point_holds WHERE id % 2 != 1 UNION ALL "
                   "SELECT 'movement', id FROM point_movements WHERE id % 2 != 1) "
                   "ORDER BY id LIMIT 1");
  if (q.Step()) {
    Fail(kIdsOdd, fmt::format("{} id {} in the database is even: point IDs have the system "
                              "bit 1",
                              q.Text(0), q.Int(1)));
  } else {
    Pass(kIdsOdd);
  }
}

}  // namespace paylab::system
