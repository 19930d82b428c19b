// Implementation of the migration checks (see migration_checker.h).
#include "checks/migration_checker.h"

#include <fmt/format.h>

#include <array>
#include <set>
#include <vector>

#include "system/migration/migrator.h"
#include "system/migration/schema.h"
#include "system/points/schema.h"
#include "system/wallet/schema.h"

namespace paylab::system {

namespace {

enum Check : size_t {
  kCutover,
  kOneSystem,
  kNoDouble,
  kPaymentExact,
  kConserved,
  kReconClean,
  kCompletes,
  kLookup,
  kMisuse,
};
constexpr std::array<const char*, 9> kNames = {
    "cutover_balance_equal",
    "points_in_one_system",
    "no_double_processing",
    "payment_money_exact",
    "money_conserved_across_systems",
    "reconciliation_clean",
    "migration_completes",
    "id_lookup_exact",
    "shopper_misuse_refused",
};

bool HasTable(sim::Database& db, std::string_view name) {
  return db.QueryInt(fmt::format(
             "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{}'", name)) > 0;
}

// Per user 1..users, the amount `table` (user_id, amount) holds for it; -1
// for a user it has no row for.
std::vector<int64_t> AmountByUser(sim::Database& db, std::string_view table, int64_t users) {
  std::vector<int64_t> amounts(static_cast<size_t>(users) + 1, -1);
  sim::Statement q(db, fmt::format("SELECT user_id, amount FROM {}", table));
  while (q.Step()) {
    if (q.Int(0) >= 1 && q.Int(0) <= users) {
      amounts[static_cast<size_t>(q.Int(0))] = q.Int(1);
    }
  }
  return amounts;
}

// How the wallet's moved-out amount `moved` and the point service's
// activated amount `activated` of user `u` differ (-1: no row).
std::string CutoverDifference(int64_t u, int64_t moved, int64_t activated) {
  if (moved < 0) {
    return fmt::format(
        "user {} is active in the point service ({} points) but the wallet never "
        "moved it out",
        u, activated);
  }
  if (activated < 0) {
    return fmt::format(
        "user {} was moved out of the wallet ({}) but never activated in the point "
        "service",
        u, moved);
  }
  return fmt::format(
      "user {}: the wallet moved out {} at the cutover, the point service "
      "activated {}",
      u, moved, activated);
}

// The first request key (in key order) with an effect in both systems, or
// "". Tombstones are not effects.
std::string FirstKeyInBothSystems(sim::Database& w, sim::Database& p) {
  std::set<std::string> point_keys;
  sim::Statement pk(p, "SELECT key FROM pays");
  while (pk.Step()) {
    point_keys.emplace(pk.Text(0));
  }
  sim::Statement lk(p, "SELECT grant_key FROM point_lots WHERE grant_key LIKE 'op/%'");
  while (lk.Step()) {
    point_keys.emplace(lk.Text(0));
  }
  sim::Statement wk(w, fmt::format("SELECT key FROM idempotency WHERE key LIKE 'op/%' AND op <> {} "
                                   "AND status = {} ORDER BY key",
                                   Stored(IdempotencyOp::kTombstone), Stored(WalletStatus::kOk)));
  while (wk.Step()) {
    const std::string_view k = wk.Text(0);
    if (point_keys.count(std::string(k)) > 0) {
      return std::string(k);
    }
  }
  return "";
}

// What is wrong with the first cross-system payment (in key order) whose
// points or wallet hold do not match how it ended, or "".
std::string FirstPaymentNotExact(sim::Database& w, sim::Database& p) {
  sim::Statement q(
      p, fmt::format(
             "SELECT y.key, y.state, y.points, y.amount, "
             "COALESCE((SELECT h.amount FROM point_holds h WHERE h.key = y.key AND h.state = {}), "
             "0), "
             "COALESCE((SELECT f.amount FROM point_refunds f WHERE f.key = 'refund/' || y.key), "
             "(SELECT l.amount FROM point_lots l WHERE l.grant_key = 'refund/' || y.key), 0) "
             "FROM pays y ORDER BY y.key",
             Stored(PointHoldState::kConfirmed)));
  sim::Statement hold(w, "SELECT state, amount FROM holds WHERE idem_key = ?");
  while (q.Step()) {
    const std::string key(q.Text(0));
    const int64_t state = q.Int(1);
    const int64_t points = q.Int(2);
    const int64_t amount = q.Int(3);
    const int64_t kept = q.Int(4) - q.Int(5);
    const bool committed = state == Stored(MigPayState::kCommitted);
    if (state < Stored(MigPayState::kCommitted)) {
      return fmt::format("payment {} is still open (state {}) with every fault healed", key, state);
    }
    if (kept != (committed ? points : 0)) {
      return fmt::format("payment {} ended {} but kept {} points of the user (expected {})", key,
                         committed ? "committed" : "not committed", kept, committed ? points : 0);
    }
    hold.Bind(1, key + "/w");
    const bool hold_committed = hold.Step() && hold.Int(0) == Stored(HoldState::kCommitted);
    const int64_t hold_amount = hold_committed ? hold.Int(1) : 0;
    hold.Reset();
    if (committed ? hold_amount != amount - points : hold_committed) {
      return fmt::format("payment {}: its wallet hold {} (expected {})", key,
                         hold_committed ? fmt::format("committed {}", hold_amount)
                                        : std::string("is not committed"),
                         committed ? amount - points : 0);
    }
  }
  return "";
}

}  // namespace

MigrationChecker::MigrationChecker(sim::Simulator& sim,
                                   std::function<void(const Violation&)> on_violation)
    : board_(sim, kNames, std::move(on_violation)) {}

void MigrationChecker::Watch(std::function<sim::Database&()> wallet_db, TypeId cashback,
                             LedgerObserver* next) {
  wallet_db_ = std::move(wallet_db);
  cashback_ = cashback;
  next_ = next;
}

void MigrationChecker::OnMovement(const MovementRecord& m) {
  // Moving value out is the migration itself, and expiry spends nothing:
  // value that came back to a moved user (a released hold) and expired
  // before it was forwarded was spendable nowhere.
  if (wallet_db_ && m.kind != MovementKind::kMigrateOut && m.kind != MovementKind::kBreakage) {
    for (const JournalEntry& e : m.entries) {
      if (e.type != cashback_ || e.delta >= 0 || e.user == kSystemUser) {
        continue;
      }
      sim::Statement q(wallet_db_(), "SELECT 1 FROM migrated_users WHERE user_id = ?");
      q.Bind(1, e.user);
      if (q.Step()) {
        board_.Fail(kOneSystem,
                    fmt::format("{} movement {} spent {} CASHBACK of user {} in the wallet after "
                                "the user was moved to the point service",
                                MovementKindName(m.kind), m.id, -e.delta, e.user));
      } else {
        board_.Pass(kOneSystem);
      }
    }
  }
  if (next_ != nullptr) {
    next_->OnMovement(m);
  }
}

void MigrationChecker::OnHoldCreated(uint64_t hold_id, sim::Time expires_at) {
  if (next_ != nullptr) {
    next_->OnHoldCreated(hold_id, expires_at);
  }
}

void MigrationChecker::OnApplied(const WalletApplied& a) {
  if (next_ != nullptr) {
    next_->OnApplied(a);
  }
}

void MigrationChecker::OnLookup(uint64_t id, std::string_view key, const MigReply& reply) {
  if (reply.status == MigStatus::kOk && reply.key != key) {
    board_.Fail(kLookup, fmt::format("payment {} (key {}) looked up by ID answered key {}", id, key,
                                     reply.key));
    return;
  }
  board_.Pass(kLookup);
}

void MigrationChecker::OnMisuse(const ShopMisuseAnswer& a) {
  const MigStatus got = a.answer.status;
  if (got == MigStatus::kUnavailable || got == MigStatus::kMaintenance) {
    return;  // not served: it had no effect, right or wrong
  }
  const bool replay = a.kind == ShopMisuse::kReplayPrepare;
  const bool right =
      replay ? got == a.first.status && a.answer.id == a.first.id : got != MigStatus::kOk;
  if (right) {
    board_.Pass(kMisuse);
    return;
  }
  const std::string expected =
      replay ? fmt::format("the first answer, {} (id {}, amount {})", MigStatusName(a.first.status),
                           a.first.id, a.first.amount)
             : std::string("a refusal");
  board_.Fail(kMisuse, fmt::format("misuse {} with key {} through the {} API: expected {}, "
                                   "answered {} (id {}, amount {})",
                                   ShopMisuseName(a.kind), a.key, a.new_api ? "new" : "old",
                                   expected, MigStatusName(got), a.answer.id, a.answer.amount));
}

void MigrationChecker::CheckFinal(const MigrationDatabases& dbs, int64_t users, TypeId cashback) {
  sim::Database& w = *dbs.wallet;
  sim::Database& p = *dbs.point;
  if (!HasTable(w, wallet_tables::kMigratedUsers) || !HasTable(p, point_home_tables::kActivated)) {
    board_.Fail(kCompletes, "a service never booted: the migration tables are missing");
    return;
  }
  CheckCutoverBalanceEqual(w, p, users);
  CheckNoCashbackLeftBehind(w, cashback);
  CheckNoDoubleProcessing(w, p);
  CheckPaymentMoneyExact(w, p);
  CheckMoneyConserved(w, p);
  CheckReconciliationClean(w);
  CheckMigrationCompletes(dbs, users);
}

void MigrationChecker::CheckCutoverBalanceEqual(sim::Database& w, sim::Database& p, int64_t users) {
  const std::vector<int64_t> moved = AmountByUser(w, wallet_tables::kMigratedUsers, users);
  const std::vector<int64_t> activated = AmountByUser(p, point_home_tables::kActivated, users);
  for (int64_t u = 1; u <= users; ++u) {
    const int64_t m = moved[static_cast<size_t>(u)];
    const int64_t a = activated[static_cast<size_t>(u)];
    if (m != a) {
      board_.Fail(kCutover, CutoverDifference(u, m, a));
      return;
    }
  }
  board_.Pass(kCutover);
}

void MigrationChecker::CheckNoCashbackLeftBehind(sim::Database& w, TypeId cashback) {
  sim::Statement q(w,
                   "SELECT m.user_id, a.balance FROM migrated_users m JOIN accounts a ON "
                   "a.user_id = m.user_id AND a.type = ? WHERE a.balance > 0 ORDER BY m.user_id "
                   "LIMIT 1");
  q.Bind(1, int64_t{cashback});
  if (q.Step()) {
    board_.Fail(kOneSystem,
                fmt::format("user {} is migrated, yet the wallet still holds {} CASHBACK for it "
                            "(value came back after the switch and was never forwarded)",
                            q.Int(0), q.Int(1)));
  } else {
    board_.Pass(kOneSystem);
  }
}

void MigrationChecker::CheckNoDoubleProcessing(sim::Database& w, sim::Database& p) {
  const std::string twice = FirstKeyInBothSystems(w, p);
  if (!twice.empty()) {
    board_.Fail(kNoDouble, fmt::format("request {} took effect in the wallet and again in the "
                                       "point service (processed twice across the switch)",
                                       twice));
  } else {
    board_.Pass(kNoDouble);
  }
}

void MigrationChecker::CheckPaymentMoneyExact(sim::Database& w, sim::Database& p) {
  const std::string bad = FirstPaymentNotExact(w, p);
  if (!bad.empty()) {
    board_.Fail(kPaymentExact, bad);
  } else {
    board_.Pass(kPaymentExact);
  }
}

void MigrationChecker::CheckMoneyConserved(sim::Database& w, sim::Database& p) {
  const int64_t out = w.QueryInt(
      fmt::format("SELECT COALESCE(SUM(balance), 0) FROM accounts WHERE user_id = 0 AND type = {}",
                  AccountTypes::kMigrated));
  const int64_t in =
      p.QueryInt(fmt::format("SELECT COALESCE(SUM(amount), 0) FROM point_lots WHERE state = {} AND "
                             "(grant_key LIKE 'migrate/%' OR grant_key LIKE 'fwd/%')",
                             Stored(LotState::kConfirmed)));
  const int64_t unsent =
      w.QueryInt("SELECT COALESCE(SUM(amount), 0) FROM migration_forwards WHERE sent = 0");
  if (out != in + unsent) {
    board_.Fail(kConserved,
                fmt::format("the wallet moved out {} in all, the point service issued {} for it "
                            "({} still being forwarded): {} {}",
                            out, in, unsent, std::abs(out - in - unsent),
                            out > in + unsent ? "lost" : "created"));
  } else {
    board_.Pass(kConserved);
  }
}

void MigrationChecker::CheckReconciliationClean(sim::Database& w) {
  const int64_t unsent = w.QueryInt("SELECT COUNT(*) FROM migration_forwards WHERE sent = 0");
  if (unsent > 0) {
    board_.Fail(kReconClean, fmt::format("{} forwards of returned CASHBACK never reached the "
                                         "point service",
                                         unsent));
  } else {
    board_.Pass(kReconClean);
  }
}

void MigrationChecker::CheckMigrationCompletes(const MigrationDatabases& dbs, int64_t users) {
  const int64_t in_wallet = dbs.wallet->QueryInt("SELECT COUNT(*) FROM migrated_users");
  const int64_t in_point = dbs.point->QueryInt("SELECT COUNT(*) FROM activated");
  const int64_t in_controller = CountUsersIn(*dbs.controller, MigrationState::kMigrated);
  if (!MigrationFinished(*dbs.migrator) || in_wallet != users || in_point != users ||
      in_controller != users) {
    board_.Fail(kCompletes,
                fmt::format("{} users; migrated in the wallet {}, in the point service {}, in "
                            "the controller {}; the migrator {}",
                            users, in_wallet, in_point, in_controller,
                            MigrationFinished(*dbs.migrator) ? "finished" : "did not finish"));
  } else {
    board_.Pass(kCompletes);
  }
}

}  // namespace paylab::system
