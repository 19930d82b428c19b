// Implementation of the wallet ledger (see ledger.h).
#include "system/wallet/ledger.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <iterator>

#include "sim/check.h"
#include "system/common/id_lease.h"
#include "system/wallet/movement_event.h"

namespace paylab::system {

std::string_view WalletStatusName(WalletStatus s) {
  switch (s) {
    case WalletStatus::kOk:
      return "ok";
    case WalletStatus::kInsufficientFunds:
      return "insufficient_funds";
    case WalletStatus::kCapExceeded:
      return "cap_exceeded";
    case WalletStatus::kNoSuchUser:
      return "no_such_user";
    case WalletStatus::kNoSuchAccount:
      return "no_such_account";
    case WalletStatus::kNoSuchHold:
      return "no_such_hold";
    case WalletStatus::kHoldExpired:
      return "hold_expired";
    case WalletStatus::kHoldNotActive:
      return "hold_not_active";
    case WalletStatus::kIdempotencyMismatch:
      return "idempotency_mismatch";
    case WalletStatus::kInvalidArgument:
      return "invalid_argument";
    case WalletStatus::kCancelled:
      return "cancelled";
    case WalletStatus::kMigrationRefused:
      return "migration_refused";
  }
  return "unknown";
}

std::string_view MovementKindName(MovementKind k) {
  switch (k) {
    case MovementKind::kDeposit:
      return "deposit";
    case MovementKind::kTransfer:
      return "transfer";
    case MovementKind::kPrepare:
      return "prepare";
    case MovementKind::kCommit:
      return "commit";
    case MovementKind::kRollback:
      return "rollback";
    case MovementKind::kExpireHold:
      return "expire_hold";
    case MovementKind::kBreakage:
      return "breakage";
    case MovementKind::kPayout:
      return "payout";
    case MovementKind::kMigrateOut:
      return "migrate_out";
  }
  return "unknown";
}

std::string_view WalletOpName(WalletOp op) {
  switch (op) {
    case WalletOp::kPopulate:
      return "populate";
    case WalletOp::kDeposit:
      return "deposit";
    case WalletOp::kTransfer:
      return "transfer";
    case WalletOp::kPrepare:
      return "prepare";
    case WalletOp::kCommit:
      return "commit";
    case WalletOp::kRollback:
      return "rollback";
    case WalletOp::kCommitKey:
      return "commit_key";
    case WalletOp::kRollbackKey:
      return "rollback_key";
    case WalletOp::kPayout:
      return "payout";
    case WalletOp::kExpireHolds:
      return "expire_holds";
    case WalletOp::kExpireItems:
      return "expire_items";
    case WalletOp::kMoveOut:
      return "move_out";
    case WalletOp::kMoveOutAgain:
      return "move_out_again";
  }
  return "unknown";
}

namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS account_types(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, debit_priority INTEGER NOT NULL,
  allow_negative INTEGER NOT NULL, expires_after_ns INTEGER NOT NULL,
  auto_create INTEGER NOT NULL, balance_cap INTEGER NOT NULL, system INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users(id INTEGER PRIMARY KEY, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS accounts(
  user_id INTEGER NOT NULL, type INTEGER NOT NULL, balance INTEGER NOT NULL,
  PRIMARY KEY(user_id, type)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS balance_items(
  id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, type INTEGER NOT NULL,
  amount INTEGER NOT NULL, remaining INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL, movement_id INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS balance_items_open
  ON balance_items(user_id, type, expires_at, id) WHERE remaining > 0;
CREATE INDEX IF NOT EXISTS balance_items_expiry ON balance_items(expires_at) WHERE remaining > 0;
CREATE TABLE IF NOT EXISTS balance_item_log(
  seq INTEGER PRIMARY KEY, item_id INTEGER NOT NULL, movement_id INTEGER NOT NULL,
  delta INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS balance_item_log_by_movement ON balance_item_log(movement_id);
CREATE TABLE IF NOT EXISTS movements(
  seq INTEGER PRIMARY KEY, id INTEGER NOT NULL, kind INTEGER NOT NULL, idem_key TEXT,
  hold_id INTEGER, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS movements_by_id ON movements(id);
CREATE TABLE IF NOT EXISTS journal(
  seq INTEGER PRIMARY KEY, movement_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
  type INTEGER NOT NULL, delta INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS journal_by_movement ON journal(movement_id);
CREATE TABLE IF NOT EXISTS holds(
  id INTEGER PRIMARY KEY, idem_key TEXT NOT NULL, src_user INTEGER NOT NULL,
  dst_user INTEGER NOT NULL, amount INTEGER NOT NULL, state INTEGER NOT NULL,
  expires_at INTEGER NOT NULL, prepare_movement INTEGER NOT NULL, resolve_movement INTEGER,
  created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS holds_open ON holds(expires_at, id) WHERE state = 1;
CREATE UNIQUE INDEX IF NOT EXISTS holds_by_key ON holds(idem_key);
CREATE INDEX IF NOT EXISTS holds_held_by_src ON holds(src_user) WHERE state = 1;
CREATE TABLE IF NOT EXISTS migrated_users(
  user_id INTEGER PRIMARY KEY, amount INTEGER NOT NULL, batch_key TEXT NOT NULL,
  at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS migrated_terms(
  user_id INTEGER NOT NULL, seq INTEGER NOT NULL, amount INTEGER NOT NULL,
  expires_at INTEGER NOT NULL, PRIMARY KEY(user_id, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS migration_batches(key TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS migration_forward_terms(
  key TEXT NOT NULL, seq INTEGER NOT NULL, amount INTEGER NOT NULL,
  expires_at INTEGER NOT NULL, PRIMARY KEY(key, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS migration_forwards(
  key TEXT PRIMARY KEY, user_id INTEGER NOT NULL, amount INTEGER NOT NULL,
  sent INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency(
  key TEXT PRIMARY KEY, op INTEGER NOT NULL, a INTEGER NOT NULL, b INTEGER NOT NULL,
  c INTEGER NOT NULL, d INTEGER NOT NULL, status INTEGER NOT NULL, result_id INTEGER NOT NULL,
  amount INTEGER NOT NULL) WITHOUT ROWID;
)sql";

std::string_view ReasonFor(WalletStatus s) {
  switch (s) {
    case WalletStatus::kOk:
      return "";
    case WalletStatus::kInsufficientFunds:
      return "the source's accounts do not cover the amount";
    case WalletStatus::kCapExceeded:
      return "the credit would exceed the destination's balance caps";
    case WalletStatus::kNoSuchUser:
      return "no such user";
    case WalletStatus::kNoSuchAccount:
      return "the account does not exist and is not auto-created";
    case WalletStatus::kNoSuchHold:
      return "no such hold";
    case WalletStatus::kHoldExpired:
      return "the hold expired and its funds were released";
    case WalletStatus::kHoldNotActive:
      return "the hold is already resolved the other way";
    case WalletStatus::kIdempotencyMismatch:
      return "the idempotency key was already used with different parameters";
    case WalletStatus::kInvalidArgument:
      return "invalid argument";
    case WalletStatus::kCancelled:
      return "the key was rolled back before it was prepared";
    case WalletStatus::kMigrationRefused:
      return "a user's balance is not the one verified, or a hold of the user is in flight";
  }
  return "";
}

WalletReply Reply(WalletStatus s, uint64_t id = 0, int64_t amount = 0) {
  return WalletReply{s, id, amount, ReasonFor(s)};
}

WalletReply Invalid(std::string_view reason) {
  return WalletReply{WalletStatus::kInvalidArgument, 0, 0, reason};
}

}  // namespace

struct Ledger::Stmts {
  explicit Stmts(sim::Database& db)
      : meta_get(db, "SELECT value FROM meta WHERE key = ?"),
        meta_put(db,
                 "INSERT INTO meta(key, value) VALUES(?, ?) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
        user_exists(db, "SELECT 1 FROM users WHERE id = ?"),
        user_count(db, "SELECT COUNT(*) FROM users"),
        user_insert(db, "INSERT INTO users(id, created_at) VALUES(?, ?)"),
        balances(db, "SELECT type, balance FROM accounts WHERE user_id = ?"),
        balance(db, "SELECT balance FROM accounts WHERE user_id = ? AND type = ?"),
        account_add(
            db,
            "INSERT INTO accounts(user_id, type, balance) VALUES(?, ?, ?) "
            "ON CONFLICT(user_id, type) DO UPDATE SET balance = balance + excluded.balance"),
        items_open(db,
                   "SELECT id, remaining, expires_at FROM balance_items "
                   "WHERE user_id = ? AND type = ? AND remaining > 0 ORDER BY expires_at, id"),
        item_insert(db,
                    "INSERT INTO balance_items(user_id, type, amount, remaining, expires_at, "
                    "created_at, movement_id) VALUES(?, ?, ?, ?, ?, ?, ?)"),
        item_add(db, "UPDATE balance_items SET remaining = remaining + ? WHERE id = ?"),
        item_log(db, "INSERT INTO balance_item_log(item_id, movement_id, delta) VALUES(?, ?, ?)"),
        item_log_by_movement(db,
                             "SELECT l.item_id, l.delta, i.type FROM balance_item_log l "
                             "JOIN balance_items i ON i.id = l.item_id "
                             "WHERE l.movement_id = ? ORDER BY l.seq"),
        items_expired(db,
                      "SELECT id, user_id, type, remaining FROM balance_items "
                      "WHERE remaining > 0 AND expires_at <= ? ORDER BY expires_at, id LIMIT ?"),
        items_open_latest(db,
                          "SELECT id, remaining, expires_at FROM balance_items WHERE user_id = ? "
                          "AND type = ? AND remaining > 0 ORDER BY expires_at DESC, id DESC"),
        items_due_of_user(db,
                          "SELECT id, type, remaining FROM balance_items WHERE user_id = ? AND "
                          "remaining > 0 AND expires_at <= ? ORDER BY expires_at, id"),
        movement_insert(db,
                        "INSERT INTO movements(id, kind, idem_key, hold_id, at) "
                        "VALUES(?, ?, ?, ?, ?)"),
        journal_insert(db,
                       "INSERT INTO journal(movement_id, user_id, type, delta) "
                       "VALUES(?, ?, ?, ?)"),
        journal_of_user(db,
                        "SELECT type, delta FROM journal WHERE movement_id = ? AND user_id = ? "
                        "ORDER BY seq DESC"),
        hold_insert(db,
                    "INSERT INTO holds(id, idem_key, src_user, dst_user, amount, state, "
                    "expires_at, prepare_movement, created_at) VALUES(?, ?, ?, ?, ?, 1, ?, ?, ?)"),
        hold_get(db,
                 "SELECT state, src_user, dst_user, amount, expires_at, prepare_movement "
                 "FROM holds WHERE id = ?"),
        hold_resolve(db, "UPDATE holds SET state = ?, resolve_movement = ? WHERE id = ?"),
        hold_by_key(db, "SELECT id FROM holds WHERE idem_key = ?"),
        holds_expired(db,
                      "SELECT id, src_user, amount, prepare_movement FROM holds "
                      "WHERE state = 1 AND expires_at <= ? ORDER BY expires_at, id LIMIT ?"),
        idem_get(db,
                 "SELECT op, a, b, c, d, status, result_id, amount FROM idempotency "
                 "WHERE key = ?"),
        idem_op(db, "SELECT op FROM idempotency WHERE key = ?"),
        idem_put(db,
                 "INSERT INTO idempotency(key, op, a, b, c, d, status, result_id, amount) "
                 "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        held_by_src(db,
                    "SELECT COUNT(*) FROM holds h WHERE h.state = 1 AND h.src_user BETWEEN ? AND "
                    "? AND EXISTS (SELECT 1 FROM journal j WHERE j.movement_id = "
                    "h.prepare_movement AND j.type = ? AND j.delta < 0)"),
        migrated_get(db, "SELECT amount FROM migrated_users WHERE user_id = ?"),
        migrated_put(db, "INSERT INTO migrated_users VALUES(?, ?, ?, ?)") {}

  sim::Statement meta_get, meta_put, user_exists, user_count, user_insert, balances, balance,
      account_add, items_open, item_insert, item_add, item_log, item_log_by_movement, items_expired,
      items_open_latest, items_due_of_user, movement_insert, journal_insert, journal_of_user,
      hold_insert, hold_get, hold_resolve, hold_by_key, holds_expired, idem_get, idem_op, idem_put,
      held_by_src, migrated_get, migrated_put;
};

struct Ledger::Pending {
  uint64_t id;
  MovementKind kind;
  std::string key;
  uint64_t hold_id;
  sim::Time at;
  std::vector<JournalEntry> entries;
};

Ledger::Ledger(sim::Database& db, const AccountTypes& types, LedgerOptions options,
               LedgerObserver* observer)
    : db_(db), types_(types), options_(options), observer_(observer) {
  db_.ExecScript(kSchema);
  st_ = std::make_unique<Stmts>(db_);
  if (options_.publish_events) {
    outbox_ = std::make_unique<Outbox>(db_);
  }
  sim::Transaction txn(db_);
  sim::Statement put_type(db_,
                          "INSERT OR REPLACE INTO account_types VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
  for (const AccountType& t : types_.all()) {
    put_type.Bind(1, int64_t{t.id})
        .Bind(2, t.name)
        .Bind(3, t.debit_priority)
        .Bind(4, int64_t{t.allow_negative})
        .Bind(5, t.expires_after)
        .Bind(6, int64_t{t.auto_create})
        .Bind(7, t.balance_cap)
        .Bind(8, int64_t{t.system})
        .Exec();
  }
  sim::Statement open_system(db_, "INSERT OR IGNORE INTO accounts VALUES(0, ?, 0)");
  for (TypeId t : {AccountTypes::kExternal, AccountTypes::kHolds, AccountTypes::kBreakage,
                   AccountTypes::kClearing}) {
    open_system.Bind(1, int64_t{t}).Exec();
  }
  ids_ = OpenLeasedIdGenerator(IdSystem::kWallet, options_.id_worker, st_->meta_get, st_->meta_put);
  ids_->set_trust_clock_steps(options_.defect_no_clock_rollback_guard);
  for (TypeId t : types_.debit_order()) {
    any_expiry_ = any_expiry_ || types_.Get(t).expires_after > 0;
  }
  // Auditing needs an observer to report to.
  PAYLAB_CHECK(!options_.audit || observer_ != nullptr);
  txn.Commit();
}

Ledger::~Ledger() = default;

// --- helpers ---------------------------------------------------------------

uint64_t Ledger::NextId(sim::Time now) {
  const int64_t offset_ms = options_.clock_offset_ms == nullptr ? 0 : *options_.clock_offset_ms;
  return ids_->Next(options_.clock_origin_unix_ms + now / sim::kMillisecond + offset_ms);
}

bool Ledger::UserExists(UserId user) {
  if (user <= kSystemUser) {
    return false;
  }
  st_->user_exists.Bind(1, user);
  const bool found = st_->user_exists.Step();
  st_->user_exists.Reset();
  return found;
}

std::optional<int64_t> Ledger::AccountBalance(UserId user, TypeId type) {
  st_->balance.Bind(1, user).Bind(2, int64_t{type});
  std::optional<int64_t> b;
  if (st_->balance.Step()) {
    b = st_->balance.Int(0);
  }
  st_->balance.Reset();
  return b;
}

void Ledger::AddToAccount(UserId user, TypeId type, int64_t delta) {
  st_->account_add.Bind(1, user).Bind(2, int64_t{type}).Bind(3, delta).Exec();
}

std::optional<WalletReply> Ledger::LookupIdempotent(std::string_view key, const IdemParams& p) {
  st_->idem_get.Bind(1, key);
  std::optional<WalletReply> r;
  if (st_->idem_get.Step()) {
    auto& q = st_->idem_get;
    if (q.Int(0) == static_cast<int64_t>(Op::kTombstone)) {
      // An empty rollback came first: the late Prepare is refused and
      // leaves no hold; any other operation with the key is a misuse.
      r = Reply(p.op == Op::kPrepare ? WalletStatus::kCancelled
                                     : WalletStatus::kIdempotencyMismatch);
      st_->idem_get.Reset();
      return r;
    }
    const bool same = q.Int(0) == static_cast<int64_t>(p.op) && q.Int(1) == p.a &&
                      q.Int(2) == p.b && q.Int(3) == p.c && q.Int(4) == p.d;
    if (same) {
      r = Reply(static_cast<WalletStatus>(q.Int(5)), static_cast<uint64_t>(q.Int(6)), q.Int(7));
    } else {
      r = Reply(WalletStatus::kIdempotencyMismatch);
    }
  }
  st_->idem_get.Reset();
  return r;
}

void Ledger::StoreIdempotent(std::string_view key, const IdemParams& p, const WalletReply& r) {
  st_->idem_put.Bind(1, key)
      .Bind(2, static_cast<int64_t>(p.op))
      .Bind(3, p.a)
      .Bind(4, p.b)
      .Bind(5, p.c)
      .Bind(6, p.d)
      .Bind(7, static_cast<int64_t>(r.status))
      .Bind(8, static_cast<int64_t>(r.id))
      .Bind(9, r.amount)
      .Exec();
}

void Ledger::LoadBalances(UserId user, Balances& b) {
  st_->balances.Bind(1, user);
  while (st_->balances.Step()) {
    const auto t = static_cast<size_t>(st_->balances.Int(0));
    if (t < Balances::kMax) {
      b.value[t] = st_->balances.Int(1);
      b.exists[t] = true;
    }
  }
  st_->balances.Reset();
}

bool Ledger::PlanDebit(UserId user, int64_t amount, Plan& plan, TypeId skip) {
  PAYLAB_CHECK(amount > 0);
  Balances b;
  LoadBalances(user, b);
  size_t& n = plan.n;
  n = 0;
  int64_t left = amount;
  // DEFECT debit_ignores_priority: the credit order instead.
  const std::vector<TypeId>& order =
      options_.defect_debit_ignores_priority ? types_.credit_order() : types_.debit_order();
  for (TypeId t : order) {
    if (left == 0) {
      break;
    }
    if (!b.exists[t] || t == skip) {
      continue;
    }
    const int64_t take = std::min(std::max<int64_t>(b.value[t], 0), left);
    if (take > 0) {
      plan.parts[n++] = {t, take};
      left -= take;
    }
  }
  if (left > 0) {
    // The first account (in debit order) that may go negative takes the rest.
    for (TypeId t : types_.debit_order()) {
      if (b.exists[t] && types_.Get(t).allow_negative) {
        size_t i = 0;
        while (i < n && plan.parts[i].first != t) {
          ++i;
        }
        if (i == n) {
          plan.parts[n++] = {t, 0};
        }
        plan.parts[i].second += left;
        left = 0;
        break;
      }
    }
  }
  // A plan takes each account at most once, and, when it covers the
  // amount, exactly the amount.
  int64_t planned = 0;
  for (size_t i = 0; i < n; ++i) {
    PAYLAB_CHECK(plan.parts[i].second > 0);
    planned += plan.parts[i].second;
  }
  PAYLAB_CHECK(planned + left == amount);
  return left == 0;
}

void Ledger::ApplyDebit(UserId user, const Plan& plan, uint64_t movement,
                        std::vector<JournalEntry>& out) {
  for (size_t i = 0; i < plan.n; ++i) {
    DebitAccount(user, plan.parts[i].first, plan.parts[i].second, movement);
    out.push_back(JournalEntry{user, plan.parts[i].first, -plan.parts[i].second});
  }
}

namespace {
// Adds `amount` expiring at `expires_at` to terms kept soonest first, one per instant.
void AddTerm(std::vector<ValueTerm>& terms, int64_t amount, sim::Time expires_at) {
  auto it = std::find_if(terms.begin(), terms.end(),
                         [expires_at](const ValueTerm& t) { return t.expires_at >= expires_at; });
  if (it != terms.end() && it->expires_at == expires_at) {
    it->amount += amount;
  } else {
    terms.insert(it, ValueTerm{amount, expires_at});
  }
}
}  // namespace

void Ledger::DebitAccount(UserId user, TypeId type, int64_t amount, uint64_t movement,
                          std::vector<ValueTerm>* consumed) {
  PAYLAB_CHECK(amount > 0);
  AddToAccount(user, type, -amount);
  if (user == kSystemUser) {
    return;
  }
  // Collect the items to consume before updating them: the scan's index
  // covers only items with something left.
  std::array<std::pair<int64_t, int64_t>, 64> take;
  int64_t left = amount;
  // DEFECT items_consumed_latest_first: the latest-expiring items first.
  sim::Statement& open =
      options_.defect_items_latest_first ? st_->items_open_latest : st_->items_open;
  while (left > 0) {
    size_t n = 0;
    open.Bind(1, user).Bind(2, int64_t{type});
    int64_t planned = 0;
    while (n < take.size() && planned < left && open.Step()) {
      const int64_t id = open.Int(0);
      const int64_t t = std::min(open.Int(1), left - planned);
      PAYLAB_CHECK(t > 0);  // the scan reads only items with something left
      take[n++] = {id, t};
      planned += t;
      if (consumed != nullptr) {
        AddTerm(*consumed, t, open.Int(2));
      }
    }
    open.Reset();
    if (n == 0) {
      // No items left: the rest drives the balance below zero, which only
      // a type that allows it may do (Debit planned it so).
      PAYLAB_CHECK(types_.Get(type).allow_negative);
      break;
    }
    for (size_t i = 0; i < n; ++i) {
      st_->item_add.Bind(1, -take[i].second).Bind(2, take[i].first).Exec();
      st_->item_log.Bind(1, take[i].first)
          .Bind(2, static_cast<int64_t>(movement))
          .Bind(3, -take[i].second)
          .Exec();
      NoteItem(take[i].first, user, type, -take[i].second, false, 0, movement);
    }
    left -= planned;
    PAYLAB_CHECK(left >= 0);
  }
}

bool Ledger::PlanCredit(UserId user, int64_t amount, Plan& plan) {
  PAYLAB_CHECK(amount > 0);
  Balances b;
  LoadBalances(user, b);
  size_t& n = plan.n;
  n = 0;
  int64_t left = amount;
  for (TypeId t : types_.credit_order()) {
    if (left == 0) {
      break;
    }
    const AccountType& type = types_.Get(t);
    if (!b.exists[t] && !type.auto_create) {
      continue;
    }
    int64_t room = left;
    if (type.balance_cap != kNoCap) {
      room = std::max<int64_t>(0, type.balance_cap - b.value[t]);
    }
    const int64_t put = std::min(room, left);
    PAYLAB_CHECK(put >= 0 && put <= left);
    if (put > 0) {
      plan.parts[n++] = {t, put};
      left -= put;
    }
  }
  return left == 0;
}

void Ledger::ApplyCredit(UserId user, const Plan& plan, uint64_t movement, sim::Time now,
                         std::vector<JournalEntry>& out) {
  for (size_t i = 0; i < plan.n; ++i) {
    CreditAccount(user, plan.parts[i].first, plan.parts[i].second, movement, now);
    out.push_back(JournalEntry{user, plan.parts[i].first, plan.parts[i].second});
  }
}

void Ledger::CreditAccount(UserId user, TypeId type, int64_t amount, uint64_t movement,
                           sim::Time now) {
  PAYLAB_CHECK(amount > 0);
  int64_t repay = 0;
  if (user != kSystemUser) {
    const int64_t before = AccountBalance(user, type).value_or(0);
    if (before < 0) {
      repay = std::min(-before, amount);
    }
  }
  PAYLAB_CHECK(repay >= 0 && repay <= amount);
  AddToAccount(user, type, amount);
  if (user == kSystemUser || amount - repay == 0) {
    return;
  }
  const AccountType& t = types_.Get(type);
  const sim::Time expires = t.expires_after > 0 ? now + t.expires_after : kNever;
  st_->item_insert.Bind(1, user)
      .Bind(2, int64_t{type})
      .Bind(3, amount - repay)
      .Bind(4, amount - repay)
      .Bind(5, expires)
      .Bind(6, now)
      .Bind(7, static_cast<int64_t>(movement))
      .Exec();
  if (options_.audit) {
    NoteItem(sqlite3_last_insert_rowid(db_.handle()), user, type, amount - repay, true, expires,
             movement);
  }
}

void Ledger::WriteMovement(uint64_t id, MovementKind kind, std::string_view key, uint64_t hold_id,
                           sim::Time now, std::vector<JournalEntry>& entries) {
  PAYLAB_CHECK(id != 0);
  PAYLAB_CHECK(!entries.empty());
  int64_t sum = 0;
  for (const JournalEntry& e : entries) {
    PAYLAB_CHECK(e.delta != 0);
    sum += e.delta;
  }
  if (!options_.defect_credit_without_debit) {
    // Write path: a movement that does not balance is a bug in this file.
    PAYLAB_CHECK(sum == 0);
  }
  auto& m = st_->movement_insert;
  m.Bind(1, static_cast<int64_t>(id)).Bind(2, static_cast<int64_t>(kind));
  if (key.empty()) {
    m.BindNull(3);
  } else {
    m.Bind(3, key);
  }
  if (hold_id == 0) {
    m.BindNull(4);
  } else {
    m.Bind(4, static_cast<int64_t>(hold_id));
  }
  m.Bind(5, now).Exec();
  for (const JournalEntry& e : entries) {
    st_->journal_insert.Bind(1, static_cast<int64_t>(id))
        .Bind(2, e.user)
        .Bind(3, int64_t{e.type})
        .Bind(4, e.delta)
        .Exec();
  }
  if (outbox_ != nullptr) {
    // Keyed by the first account holder: the events of one source account
    // keep their order. (Consumers must not rely on more: a user's incoming
    // credits are keyed by their senders.)
    outbox_->Append(kMovementTopic, fmt::format("{}", entries.empty() ? 0 : entries.front().user),
                    EncodeMovementEvent(id, kind, entries), now);
  }
  if (observer_ != nullptr) {
    pending_.push_back(Pending{id, kind, std::string(key), hold_id, now, entries});
  }
}

void Ledger::CommitTxn(sim::Transaction& txn) {
  txn.Commit();
  if (observer_ == nullptr) {
    return;
  }
  for (const auto& [hold, expires] : pending_holds_) {
    observer_->OnHoldCreated(hold, expires);
  }
  for (const Pending& p : pending_) {
    observer_->OnMovement(MovementRecord{p.id, p.kind, p.key, p.hold_id, p.at, p.entries});
  }
  if (options_.audit) {
    // Committed: these are facts of the call now.
    for (const auto& [hold, expires] : pending_holds_) {
      call_holds_.push_back(HoldCreated{hold, expires});
    }
    std::move(pending_.begin(), pending_.end(), std::back_inserter(call_movements_));
    call_items_.insert(call_items_.end(), txn_items_.begin(), txn_items_.end());
    txn_items_.clear();
  }
  pending_.clear();
  pending_holds_.clear();
}

void Ledger::NoteItem(int64_t item, UserId user, TypeId type, int64_t delta, bool created,
                      sim::Time expires_at, uint64_t movement) {
  if (options_.audit) {
    txn_items_.push_back(ItemChange{item, user, type, delta, created, expires_at, movement});
  }
}

void Ledger::BeginAudit() {
  // Nothing of an earlier call that never committed may leak into this one.
  pending_.clear();
  pending_holds_.clear();
  txn_items_.clear();
  call_items_.clear();
  call_movements_.clear();
  call_records_.clear();
  call_holds_.clear();
}

void Ledger::EndAudit(const WalletRequest& request, const WalletReply& reply,
                      std::span<const int64_t> moved, UserId refused_user) {
  call_records_.clear();
  for (const Pending& p : call_movements_) {
    call_records_.push_back(MovementRecord{p.id, p.kind, p.key, p.hold_id, p.at, p.entries});
  }
  observer_->OnApplied(
      WalletApplied{request, reply, moved, refused_user, call_records_, call_items_, call_holds_});
}

void Ledger::BreakItem(int64_t item, UserId user, TypeId type, int64_t remaining, sim::Time now) {
  PAYLAB_CHECK(remaining > 0);
  const uint64_t movement = NextId(now);
  std::vector<JournalEntry> entries;
  entries.push_back(JournalEntry{user, type, -remaining});
  AddToAccount(user, type, -remaining);
  entries.push_back(JournalEntry{kSystemUser, AccountTypes::kBreakage, remaining});
  AddToAccount(kSystemUser, AccountTypes::kBreakage, remaining);
  st_->item_add.Bind(1, -remaining).Bind(2, item).Exec();
  st_->item_log.Bind(1, item).Bind(2, static_cast<int64_t>(movement)).Bind(3, -remaining).Exec();
  NoteItem(item, user, type, -remaining, false, 0, movement);
  WriteMovement(movement, MovementKind::kBreakage, "", 0, now, entries);
}

void Ledger::ExpireDueItems(UserId user, sim::Time now) {
  if (!any_expiry_ || user == kSystemUser) {
    return;
  }
  struct Due {
    int64_t item;
    TypeId type;
    int64_t remaining;
  };
  std::vector<Due> due;
  auto& q = st_->items_due_of_user;
  // DEFECT item_spendable_at_expiry: only items whose expiry has passed.
  q.Bind(1, user).Bind(2, options_.defect_item_spendable_at_expiry ? now - 1 : now);
  while (q.Step()) {
    due.push_back(Due{q.Int(0), static_cast<TypeId>(q.Int(1)), q.Int(2)});
  }
  q.Reset();
  for (const Due& d : due) {
    BreakItem(d.item, user, d.type, d.remaining, now);
  }
}

void Ledger::ReleaseHold(uint64_t hold_id, UserId src, int64_t amount, uint64_t prepare_movement,
                         HoldState final_state, sim::Time now) {
  const uint64_t movement = NextId(now);
  std::vector<JournalEntry> entries;
  entries.push_back(JournalEntry{kSystemUser, AccountTypes::kHolds, -amount});
  AddToAccount(kSystemUser, AccountTypes::kHolds, -amount);
  // Give each account back what was taken from it, last taken first.
  st_->journal_of_user.Bind(1, static_cast<int64_t>(prepare_movement)).Bind(2, src);
  std::array<std::pair<TypeId, int64_t>, kMaxUserTypes> parts;
  size_t n = 0;
  while (n < parts.size() && st_->journal_of_user.Step()) {
    parts[n++] = {static_cast<TypeId>(st_->journal_of_user.Int(0)), -st_->journal_of_user.Int(1)};
  }
  st_->journal_of_user.Reset();
  int64_t restored = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto [type, part] = parts[i];
    if (types_.Get(type).allow_negative) {
      // The account may have taken on (more) debt since: give it back as a
      // fresh credit, which repays debt first.
      CreditAccount(src, type, part, movement, now);
    } else {
      AddToAccount(src, type, part);
    }
    entries.push_back(JournalEntry{src, type, part});
    restored += part;
  }
  PAYLAB_CHECK(restored == amount);
  // Un-consume the exact balance items of accounts that cannot go negative,
  // so their expiry is kept: everything taken from them came from items.
  st_->item_log_by_movement.Bind(1, static_cast<int64_t>(prepare_movement));
  struct Back {
    int64_t item;
    int64_t amount;
    TypeId type;
  };
  std::vector<Back> items;
  while (st_->item_log_by_movement.Step()) {
    const auto type = static_cast<TypeId>(st_->item_log_by_movement.Int(2));
    if (!types_.Get(type).allow_negative) {
      items.push_back(
          Back{st_->item_log_by_movement.Int(0), -st_->item_log_by_movement.Int(1), type});
    }
  }
  st_->item_log_by_movement.Reset();
  for (const Back& b : items) {
    st_->item_add.Bind(1, b.amount).Bind(2, b.item).Exec();
    st_->item_log.Bind(1, b.item).Bind(2, static_cast<int64_t>(movement)).Bind(3, b.amount).Exec();
    NoteItem(b.item, src, b.type, b.amount, false, 0, movement);
  }
  const MovementKind kind =
      final_state == HoldState::kExpired ? MovementKind::kExpireHold : MovementKind::kRollback;
  WriteMovement(movement, kind, "", hold_id, now, entries);
  st_->hold_resolve.Bind(1, static_cast<int64_t>(final_state))
      .Bind(2, static_cast<int64_t>(movement))
      .Bind(3, static_cast<int64_t>(hold_id))
      .Exec();
}

// --- the public operations: each call reported to the audit ----------------

void Ledger::Populate(int64_t count, std::span<const InitialBalance> balances, sim::Time now) {
  if (!options_.audit) {
    DoPopulate(count, balances, now);
    return;
  }
  BeginAudit();
  DoPopulate(count, balances, now);
  EndAudit(
      WalletRequest{.op = WalletOp::kPopulate, .amount = count, .balances = balances, .now = now},
      Reply(WalletStatus::kOk));
}

WalletReply Ledger::Deposit(std::string_view key, UserId user, TypeId type, int64_t amount,
                            sim::Time now) {
  if (!options_.audit) {
    return DoDeposit(key, user, type, amount, now);
  }
  BeginAudit();
  const WalletReply r = DoDeposit(key, user, type, amount, now);
  EndAudit(WalletRequest{.op = WalletOp::kDeposit,
                         .key = key,
                         .user = user,
                         .type = type,
                         .amount = amount,
                         .now = now},
           r);
  return r;
}

WalletReply Ledger::Transfer(std::string_view key, UserId src, UserId dst, int64_t amount,
                             sim::Time now) {
  if (!options_.audit) {
    return DoTransfer(key, src, dst, amount, now);
  }
  BeginAudit();
  const WalletReply r = DoTransfer(key, src, dst, amount, now);
  EndAudit(WalletRequest{.op = WalletOp::kTransfer,
                         .key = key,
                         .user = src,
                         .dst = dst,
                         .amount = amount,
                         .now = now},
           r);
  return r;
}

WalletReply Ledger::Prepare(std::string_view key, UserId src, UserId dst, int64_t amount,
                            sim::Duration ttl, sim::Time now, TypeId skip_type) {
  if (!options_.audit) {
    return DoPrepare(key, src, dst, amount, ttl, now, skip_type);
  }
  BeginAudit();
  const WalletReply r = DoPrepare(key, src, dst, amount, ttl, now, skip_type);
  EndAudit(WalletRequest{.op = WalletOp::kPrepare,
                         .key = key,
                         .user = src,
                         .dst = dst,
                         .type = skip_type,
                         .amount = amount,
                         .ttl = ttl,
                         .now = now},
           r);
  return r;
}

WalletReply Ledger::Commit(uint64_t hold_id, sim::Time now) {
  if (options_.audit) {
    BeginAudit();
  }
  sim::Transaction txn(db_);
  const WalletReply r = CommitHold(txn, hold_id, now);
  if (options_.audit) {
    EndAudit(WalletRequest{.op = WalletOp::kCommit, .hold_id = hold_id, .now = now}, r);
  }
  return r;
}

WalletReply Ledger::Rollback(uint64_t hold_id, sim::Time now) {
  if (options_.audit) {
    BeginAudit();
  }
  sim::Transaction txn(db_);
  const WalletReply r = RollbackHold(txn, hold_id, now);
  if (options_.audit) {
    EndAudit(WalletRequest{.op = WalletOp::kRollback, .hold_id = hold_id, .now = now}, r);
  }
  return r;
}

WalletReply Ledger::CommitKey(std::string_view key, sim::Time now) {
  if (!options_.audit) {
    return DoCommitKey(key, now);
  }
  BeginAudit();
  const WalletReply r = DoCommitKey(key, now);
  EndAudit(WalletRequest{.op = WalletOp::kCommitKey, .key = key, .now = now}, r);
  return r;
}

WalletReply Ledger::RollbackKey(std::string_view key, sim::Time now) {
  if (!options_.audit) {
    return DoRollbackKey(key, now);
  }
  BeginAudit();
  const WalletReply r = DoRollbackKey(key, now);
  EndAudit(WalletRequest{.op = WalletOp::kRollbackKey, .key = key, .now = now}, r);
  return r;
}

WalletReply Ledger::Payout(std::string_view key, UserId user, int64_t amount, sim::Time now) {
  if (!options_.audit) {
    return DoPayout(key, user, amount, now);
  }
  BeginAudit();
  const WalletReply r = DoPayout(key, user, amount, now);
  EndAudit(
      WalletRequest{
          .op = WalletOp::kPayout, .key = key, .user = user, .amount = amount, .now = now},
      r);
  return r;
}

int64_t Ledger::ExpireHolds(sim::Time now, int64_t limit) {
  if (!options_.audit) {
    return DoExpireHolds(now, limit);
  }
  BeginAudit();
  const int64_t n = DoExpireHolds(now, limit);
  EndAudit(WalletRequest{.op = WalletOp::kExpireHolds, .limit = limit, .now = now},
           Reply(WalletStatus::kOk, 0, n));
  return n;
}

int64_t Ledger::ExpireBalanceItems(sim::Time now, int64_t limit) {
  if (!options_.audit) {
    return DoExpireBalanceItems(now, limit);
  }
  BeginAudit();
  const int64_t n = DoExpireBalanceItems(now, limit);
  EndAudit(WalletRequest{.op = WalletOp::kExpireItems, .limit = limit, .now = now},
           Reply(WalletStatus::kOk, 0, n));
  return n;
}

MoveOutReply Ledger::MoveOut(std::string_view key, std::span<const UserId> users, TypeId type,
                             std::span<const int64_t> expected, bool require_no_holds,
                             sim::Time now) {
  if (!options_.audit) {
    return DoMoveOut(key, users, type, expected, require_no_holds, now);
  }
  BeginAudit();
  MoveOutReply r = DoMoveOut(key, users, type, expected, require_no_holds, now);
  EndAudit(WalletRequest{.op = WalletOp::kMoveOut,
                         .key = key,
                         .type = type,
                         .users = users,
                         .expected = expected,
                         .require_no_holds = require_no_holds,
                         .now = now},
           WalletReply{r.status, 0, 0, r.reason}, r.amounts, r.refused_user);
  return r;
}

WalletReply Ledger::MoveOutAgain(std::string_view key, UserId user, TypeId type, sim::Time now) {
  if (!options_.audit) {
    return DoMoveOutAgain(key, user, type, now);
  }
  BeginAudit();
  const WalletReply r = DoMoveOutAgain(key, user, type, now);
  EndAudit(
      WalletRequest{
          .op = WalletOp::kMoveOutAgain, .key = key, .user = user, .type = type, .now = now},
      r);
  return r;
}

// --- operations ------------------------------------------------------------

void Ledger::DoPopulate(int64_t count, std::span<const InitialBalance> balances, sim::Time now) {
  if (user_count() > 0) {
    return;
  }
  sim::Transaction txn(db_);
  std::vector<JournalEntry> entries;
  for (UserId u = 1; u <= count; ++u) {
    st_->user_insert.Bind(1, u).Bind(2, now).Exec();
    for (TypeId t : types_.debit_order()) {
      if (!types_.Get(t).auto_create) {
        AddToAccount(u, t, 0);
      }
    }
    for (const InitialBalance& b : balances) {
      if (b.amount == 0) {
        continue;
      }
      const uint64_t movement = NextId(now);
      entries.clear();
      entries.push_back(JournalEntry{kSystemUser, AccountTypes::kExternal, -b.amount});
      AddToAccount(kSystemUser, AccountTypes::kExternal, -b.amount);
      entries.push_back(JournalEntry{u, b.type, b.amount});
      CreditAccount(u, b.type, b.amount, movement, now);
      WriteMovement(movement, MovementKind::kDeposit, "", 0, now, entries);
    }
  }
  CommitTxn(txn);
}

int64_t Ledger::user_count() {
  st_->user_count.Step();
  const int64_t n = st_->user_count.Int(0);
  st_->user_count.Reset();
  return n;
}

WalletReply Ledger::DoDeposit(std::string_view key, UserId user, TypeId type, int64_t amount,
                              sim::Time now) {
  if (key.empty()) {
    return Invalid("an idempotency key is required");
  }
  if (amount <= 0) {
    return Invalid("amount must be > 0");
  }
  if (type < 1 || static_cast<size_t>(type) > types_.debit_order().size()) {
    return Invalid("unknown account type");
  }
  const IdemParams p{Op::kDeposit, user, type, amount, 0};
  sim::Transaction txn(db_);
  if (auto r = LookupIdempotent(key, p)) {
    return *r;
  }
  WalletReply reply;
  const AccountType& t = types_.Get(type);
  const bool exists = UserExists(user);
  if (exists) {
    ExpireDueItems(user, now);
  }
  const std::optional<int64_t> bal = exists ? AccountBalance(user, type) : std::nullopt;
  if (!exists) {
    reply = Reply(WalletStatus::kNoSuchUser);
  } else if (!bal && !t.auto_create) {
    reply = Reply(WalletStatus::kNoSuchAccount);
  } else if (t.balance_cap != kNoCap && bal.value_or(0) + amount > t.balance_cap) {
    reply = Reply(WalletStatus::kCapExceeded);
  } else {
    const uint64_t movement = NextId(now);
    std::vector<JournalEntry> entries;
    entries.push_back(JournalEntry{kSystemUser, AccountTypes::kExternal, -amount});
    AddToAccount(kSystemUser, AccountTypes::kExternal, -amount);
    entries.push_back(JournalEntry{user, type, amount});
    CreditAccount(user, type, amount, movement, now);
    WriteMovement(movement, MovementKind::kDeposit, key, 0, now, entries);
    reply = Reply(WalletStatus::kOk, movement, amount);
  }
  StoreIdempotent(key, p, reply);
  CommitTxn(txn);
  return reply;
}

WalletReply Ledger::DoTransfer(std::string_view key, UserId src, UserId dst, int64_t amount,
                               sim::Time now) {
  if (key.empty()) {
    return Invalid("an idempotency key is required");
  }
  if (amount <= 0) {
    return Invalid("amount must be > 0");
  }
  if (src == dst) {
    return Invalid("source and destination must differ");
  }
  const IdemParams p{Op::kTransfer, src, dst, amount, 0};
  sim::Transaction txn(db_);
  if (auto r = LookupIdempotent(key, p)) {
    return *r;
  }
  WalletReply reply;
  if (!UserExists(src) || !UserExists(dst)) {
    reply = Reply(WalletStatus::kNoSuchUser);
  } else {
    ExpireDueItems(src, now);
    ExpireDueItems(dst, now);
    // Plan both sides before writing anything, so a refusal moves nothing.
    Plan debit, credit;
    if (!options_.defect_credit_without_debit && !PlanDebit(src, amount, debit)) {
      reply = Reply(WalletStatus::kInsufficientFunds);
    } else if (!PlanCredit(dst, amount, credit)) {
      reply = Reply(WalletStatus::kCapExceeded);
    } else {
      const uint64_t movement = NextId(now);
      std::vector<JournalEntry> entries;
      // TEST ONLY: the deliberately wrong ledger skips the debit.
      if (!options_.defect_credit_without_debit) {
        ApplyDebit(src, debit, movement, entries);
      }
      ApplyCredit(dst, credit, movement, now, entries);
      WriteMovement(movement, MovementKind::kTransfer, key, 0, now, entries);
      reply = Reply(WalletStatus::kOk, movement, amount);
    }
  }
  StoreIdempotent(key, p, reply);
  CommitTxn(txn);
  return reply;
}

WalletReply Ledger::DoPrepare(std::string_view key, UserId src, UserId dst, int64_t amount,
                              sim::Duration ttl, sim::Time now, TypeId skip_type) {
  if (key.empty()) {
    return Invalid("an idempotency key is required");
  }
  if (amount <= 0) {
    return Invalid("amount must be > 0");
  }
  if (src == dst) {
    return Invalid("source and destination must differ");
  }
  if (ttl <= 0 || ttl > options_.hold_ttl_max) {
    return Invalid("hold ttl must be > 0 and at most the wallet's hold_ttl_max");
  }
  const IdemParams p{Op::kPrepare, src, dst, amount, ttl};
  sim::Transaction txn(db_);
  if (auto r = LookupIdempotent(key, p)) {
    return *r;
  }
  WalletReply reply;
  Plan debit;
  // The system user is a valid destination (the clearing account), never a source.
  const bool exist = UserExists(src) && (dst == kSystemUser || UserExists(dst));
  if (exist) {
    ExpireDueItems(src, now);
  }
  if (!exist) {
    reply = Reply(WalletStatus::kNoSuchUser);
  } else if (!PlanDebit(src, amount, debit, skip_type)) {
    reply = Reply(WalletStatus::kInsufficientFunds);
  } else {
    const uint64_t hold = NextId(now);
    const uint64_t movement = NextId(now);
    std::vector<JournalEntry> entries;
    ApplyDebit(src, debit, movement, entries);
    entries.push_back(JournalEntry{kSystemUser, AccountTypes::kHolds, amount});
    AddToAccount(kSystemUser, AccountTypes::kHolds, amount);
    WriteMovement(movement, MovementKind::kPrepare, key, hold, now, entries);
    st_->hold_insert.Bind(1, static_cast<int64_t>(hold))
        .Bind(2, key)
        .Bind(3, src)
        .Bind(4, dst)
        .Bind(5, amount)
        .Bind(6, now + ttl)
        .Bind(7, static_cast<int64_t>(movement))
        .Bind(8, now)
        .Exec();
    if (observer_ != nullptr) {
      pending_holds_.emplace_back(hold, now + ttl);
    }
    reply = Reply(WalletStatus::kOk, hold, amount);
  }
  StoreIdempotent(key, p, reply);
  CommitTxn(txn);
  return reply;
}

namespace {
struct HoldRow {
  HoldState state;
  UserId src, dst;
  int64_t amount;
  sim::Time expires_at;
  uint64_t prepare_movement;
};

// Reads one hold with the `hold_get` statement; nullopt if there is none.
std::optional<HoldRow> ReadHold(sim::Statement& q, uint64_t hold_id) {
  q.Bind(1, static_cast<int64_t>(hold_id));
  std::optional<HoldRow> h;
  if (q.Step()) {
    h = HoldRow{static_cast<HoldState>(q.Int(0)), q.Int(1), q.Int(2), q.Int(3), q.Int(4),
                static_cast<uint64_t>(q.Int(5))};
  }
  q.Reset();
  return h;
}
}  // namespace

WalletReply Ledger::CommitHold(sim::Transaction& txn, uint64_t hold_id, sim::Time now) {
  const std::optional<HoldRow> found = ReadHold(st_->hold_get, hold_id);
  if (!found) {
    return Reply(WalletStatus::kNoSuchHold);
  }
  const HoldRow& h = *found;
  switch (h.state) {
    case HoldState::kCommitted:
      return Reply(WalletStatus::kOk, hold_id, h.amount);
    case HoldState::kExpired:
      // The same answer as the commit that found it expired, so a retried
      // commit whose first answer was lost hears the same thing.
      return Reply(WalletStatus::kHoldExpired);
    case HoldState::kRolledBack:
      return Reply(WalletStatus::kHoldNotActive);
    case HoldState::kHeld:
      break;
  }
  if (now >= h.expires_at && !options_.defect_commit_ignores_expiry) {
    // Too late: release the funds now rather than wait for the sweep.
    ReleaseHold(hold_id, h.src, h.amount, h.prepare_movement, HoldState::kExpired, now);
    CommitTxn(txn);
    return Reply(WalletStatus::kHoldExpired);
  }
  // A payment to the platform goes to the clearing account, uncapped.
  const bool to_clearing = h.dst == kSystemUser;
  Plan credit;
  if (!to_clearing) {
    ExpireDueItems(h.dst, now);
  }
  if (!to_clearing && !PlanCredit(h.dst, h.amount, credit)) {
    // The hold stays held; what expired meanwhile stays expired.
    CommitTxn(txn);
    return Reply(WalletStatus::kCapExceeded);
  }
  // Only now take an ID: a transaction that is rolled back must not have
  // persisted the generator's reservation.
  const uint64_t movement = NextId(now);
  std::vector<JournalEntry> entries;
  entries.push_back(JournalEntry{kSystemUser, AccountTypes::kHolds, -h.amount});
  AddToAccount(kSystemUser, AccountTypes::kHolds, -h.amount);
  if (to_clearing) {
    entries.push_back(JournalEntry{kSystemUser, AccountTypes::kClearing, h.amount});
    AddToAccount(kSystemUser, AccountTypes::kClearing, h.amount);
  } else {
    ApplyCredit(h.dst, credit, movement, now, entries);
  }
  WriteMovement(movement, MovementKind::kCommit, "", hold_id, now, entries);
  st_->hold_resolve.Bind(1, static_cast<int64_t>(HoldState::kCommitted))
      .Bind(2, static_cast<int64_t>(movement))
      .Bind(3, static_cast<int64_t>(hold_id))
      .Exec();
  CommitTxn(txn);
  return Reply(WalletStatus::kOk, hold_id, h.amount);
}

WalletReply Ledger::RollbackHold(sim::Transaction& txn, uint64_t hold_id, sim::Time now) {
  const std::optional<HoldRow> found = ReadHold(st_->hold_get, hold_id);
  if (!found) {
    return Reply(WalletStatus::kNoSuchHold);
  }
  const HoldRow& h = *found;
  switch (h.state) {
    case HoldState::kCommitted:
      return Reply(WalletStatus::kHoldNotActive);
    case HoldState::kRolledBack:
    case HoldState::kExpired:
      // Already released: the same answer as the first rollback.
      return Reply(WalletStatus::kOk, hold_id, h.amount);
    case HoldState::kHeld:
      break;
  }
  ReleaseHold(hold_id, h.src, h.amount, h.prepare_movement, HoldState::kRolledBack, now);
  CommitTxn(txn);
  return Reply(WalletStatus::kOk, hold_id, h.amount);
}

std::optional<uint64_t> Ledger::HoldOfKey(std::string_view key) {
  st_->hold_by_key.Bind(1, key);
  std::optional<uint64_t> hold;
  if (st_->hold_by_key.Step()) {
    hold = static_cast<uint64_t>(st_->hold_by_key.Int(0));
  }
  st_->hold_by_key.Reset();
  return hold;
}

std::optional<Ledger::Op> Ledger::OpOfKey(std::string_view key) {
  st_->idem_op.Bind(1, key);
  std::optional<Op> op;
  if (st_->idem_op.Step()) {
    op = static_cast<Op>(st_->idem_op.Int(0));
  }
  st_->idem_op.Reset();
  return op;
}

WalletReply Ledger::DoCommitKey(std::string_view key, sim::Time now) {
  if (key.empty()) {
    return Invalid("an idempotency key is required");
  }
  sim::Transaction txn(db_);
  if (const std::optional<uint64_t> hold = HoldOfKey(key)) {
    return CommitHold(txn, *hold, now);
  }
  if (OpOfKey(key) == Op::kTombstone) {
    // Cancelled before it was ever prepared: the other way round.
    return Reply(WalletStatus::kHoldNotActive);
  }
  // Never prepared (or its Prepare was refused). No tombstone: a confirm
  // before the try is the orchestrator's bug, not a race to settle.
  return Reply(WalletStatus::kNoSuchHold);
}

WalletReply Ledger::DoRollbackKey(std::string_view key, sim::Time now) {
  if (key.empty()) {
    return Invalid("an idempotency key is required");
  }
  sim::Transaction txn(db_);
  if (const std::optional<uint64_t> hold = HoldOfKey(key)) {
    return RollbackHold(txn, *hold, now);
  }
  const std::optional<Op> op = OpOfKey(key);
  if (!op) {
    // Empty rollback: remember the key, in this transaction, so that the
    // Prepare still on its way is refused and leaves no hanging hold.
    const WalletReply reply = Reply(WalletStatus::kOk);
    if (options_.defect_cancel_without_tombstone) {
      return reply;
    }
    StoreIdempotent(key, IdemParams{Op::kTombstone, 0, 0, 0, 0}, reply);
    CommitTxn(txn);
    return reply;
  }
  if (*op == Op::kTombstone || *op == Op::kPrepare) {
    // Already cancelled, or a Prepare that was refused: nothing is held.
    return Reply(WalletStatus::kOk);
  }
  return Reply(WalletStatus::kIdempotencyMismatch);
}

WalletReply Ledger::DoPayout(std::string_view key, UserId user, int64_t amount, sim::Time now) {
  if (key.empty()) {
    return Invalid("an idempotency key is required");
  }
  if (amount <= 0) {
    return Invalid("amount must be > 0");
  }
  const IdemParams p{Op::kPayout, user, amount, 0, 0};
  sim::Transaction txn(db_);
  if (auto r = LookupIdempotent(key, p)) {
    return *r;
  }
  WalletReply reply;
  Plan credit;
  const bool exists = UserExists(user);
  if (exists) {
    ExpireDueItems(user, now);
  }
  if (!exists) {
    reply = Reply(WalletStatus::kNoSuchUser);
  } else if (!PlanCredit(user, amount, credit)) {
    reply = Reply(WalletStatus::kCapExceeded);
  } else {
    const uint64_t movement = NextId(now);
    std::vector<JournalEntry> entries;
    entries.push_back(JournalEntry{kSystemUser, AccountTypes::kClearing, -amount});
    AddToAccount(kSystemUser, AccountTypes::kClearing, -amount);
    ApplyCredit(user, credit, movement, now, entries);
    WriteMovement(movement, MovementKind::kPayout, key, 0, now, entries);
    reply = Reply(WalletStatus::kOk, movement, amount);
  }
  StoreIdempotent(key, p, reply);
  CommitTxn(txn);
  return reply;
}

int64_t Ledger::DoExpireHolds(sim::Time now, int64_t limit) {
  struct Due {
    uint64_t id;
    UserId src;
    int64_t amount;
    uint64_t prepare_movement;
  };
  std::vector<Due> due;
  auto& q = st_->holds_expired;
  q.Bind(1, now).Bind(2, limit);
  while (q.Step()) {
    due.push_back(
        Due{static_cast<uint64_t>(q.Int(0)), q.Int(1), q.Int(2), static_cast<uint64_t>(q.Int(3))});
  }
  q.Reset();
  if (due.empty()) {
    return 0;
  }
  sim::Transaction txn(db_);
  for (const Due& d : due) {
    ReleaseHold(d.id, d.src, d.amount, d.prepare_movement, HoldState::kExpired, now);
  }
  CommitTxn(txn);
  return static_cast<int64_t>(due.size());
}

int64_t Ledger::DoExpireBalanceItems(sim::Time now, int64_t limit) {
  struct Due {
    int64_t item;
    UserId user;
    TypeId type;
    int64_t remaining;
  };
  std::vector<Due> due;
  auto& q = st_->items_expired;
  q.Bind(1, options_.defect_item_spendable_at_expiry ? now - 1 : now).Bind(2, limit);
  while (q.Step()) {
    due.push_back(Due{q.Int(0), q.Int(1), static_cast<TypeId>(q.Int(2)), q.Int(3)});
  }
  q.Reset();
  if (due.empty()) {
    return 0;
  }
  sim::Transaction txn(db_);
  for (const Due& d : due) {
    BreakItem(d.item, d.user, d.type, d.remaining, now);
  }
  CommitTxn(txn);
  return static_cast<int64_t>(due.size());
}

int64_t Ledger::Balance(UserId user, TypeId type) { return AccountBalance(user, type).value_or(0); }

sim::Time Ledger::HoldExpiry(uint64_t hold_id) {
  const std::optional<HoldRow> h = ReadHold(st_->hold_get, hold_id);
  return h ? h->expires_at : 0;
}

int64_t Ledger::TotalBalance(UserId user) {
  int64_t total = 0;
  for (TypeId t : types_.debit_order()) {
    total += Balance(user, t);
  }
  return total;
}

int64_t Ledger::TotalBalanceExcept(UserId user, TypeId type) {
  int64_t total = 0;
  for (TypeId t : types_.debit_order()) {
    if (t != type) {
      total += Balance(user, t);
    }
  }
  return total;
}

bool Ledger::HasKey(std::string_view key) { return OpOfKey(key).has_value(); }

int64_t Ledger::HeldHolds(UserId lo, UserId hi, TypeId type) {
  auto& q = st_->held_by_src;
  q.Bind(1, lo).Bind(2, hi).Bind(3, int64_t{type});
  q.Step();
  const int64_t n = q.Int(0);
  q.Reset();
  return n;
}

std::optional<int64_t> Ledger::MigratedAmount(UserId user) {
  st_->migrated_get.Bind(1, user);
  std::optional<int64_t> out;
  if (st_->migrated_get.Step()) {
    out = st_->migrated_get.Int(0);
  }
  st_->migrated_get.Reset();
  return out;
}

MoveOutReply Ledger::DoMoveOut(std::string_view key, std::span<const UserId> users, TypeId type,
                               std::span<const int64_t> expected, bool require_no_holds,
                               sim::Time now) {
  MoveOutReply reply;
  if (key.empty() || users.empty() || (!expected.empty() && expected.size() != users.size())) {
    reply.status = WalletStatus::kInvalidArgument;
    reply.reason = "a key, users, and one expected balance per user (or none) are required";
    return reply;
  }
  sim::Transaction txn(db_);
  sim::Statement seen(db_, "SELECT 1 FROM migration_batches WHERE key = ?");
  seen.Bind(1, key);
  if (seen.Step()) {
    // A retry: the batch moved before, answer what it moved.
    for (UserId u : users) {
      reply.amounts.push_back(MigratedAmount(u).value_or(0));
      reply.terms.push_back(MigratedTerms(u));
    }
    CommitTxn(txn);
    return reply;
  }
  for (UserId u : users) {
    if (!UserExists(u)) {
      reply.status = WalletStatus::kNoSuchUser;
      reply.reason = ReasonFor(reply.status);
      return reply;  // the transaction rolls back: nothing moved
    }
  }
  // Expired value does not move: it expires first, and stays expired even
  // if the batch is refused (the next verification then sees it gone).
  for (UserId u : users) {
    ExpireDueItems(u, now);
  }
  std::vector<int64_t> amounts;
  amounts.reserve(users.size());
  for (size_t i = 0; i < users.size(); ++i) {
    const UserId u = users[i];
    const int64_t balance =
        MigratedAmount(u) ? 0 : std::max<int64_t>(AccountBalance(u, type).value_or(0), 0);
    if ((!expected.empty() && expected[i] != balance) ||
        (require_no_holds && HeldHolds(u, u, type) > 0)) {
      reply.status = WalletStatus::kMigrationRefused;
      reply.reason = ReasonFor(reply.status);
      reply.refused_user = u;
      CommitTxn(txn);
      return reply;
    }
    amounts.push_back(balance);
  }
  sim::Statement batch(db_, "INSERT INTO migration_batches VALUES(?)");
  batch.Bind(1, key).Exec();
  for (size_t i = 0; i < users.size(); ++i) {
    const UserId u = users[i];
    if (MigratedAmount(u)) {
      reply.amounts.push_back(*MigratedAmount(u));
      reply.terms.push_back(MigratedTerms(u));
      continue;
    }
    std::vector<ValueTerm> terms;
    if (amounts[i] > 0) {
      const uint64_t movement = NextId(now);
      std::vector<JournalEntry> entries;
      DebitAccount(u, type, amounts[i], movement, &terms);
      entries.push_back(JournalEntry{u, type, -amounts[i]});
      AddToAccount(kSystemUser, AccountTypes::kMigrated, amounts[i]);
      entries.push_back(JournalEntry{kSystemUser, AccountTypes::kMigrated, amounts[i]});
      // One movement per user, each under its own key (one key, one effect).
      const std::string user_key = std::string(key) + "/" + std::to_string(u);
      WriteMovement(movement, MovementKind::kMigrateOut, user_key, 0, now, entries);
    }
    st_->migrated_put.Bind(1, u).Bind(2, amounts[i]).Bind(3, key).Bind(4, now).Exec();
    sim::Statement put_term(db_, "INSERT INTO migrated_terms VALUES(?, ?, ?, ?)");
    for (size_t k = 0; k < terms.size(); ++k) {
      put_term.Bind(1, u)
          .Bind(2, static_cast<int64_t>(k))
          .Bind(3, terms[k].amount)
          .Bind(4, terms[k].expires_at)
          .Exec();
    }
    reply.amounts.push_back(amounts[i]);
    reply.terms.push_back(std::move(terms));
  }
  CommitTxn(txn);
  return reply;
}

WalletReply Ledger::DoMoveOutAgain(std::string_view key, UserId user, TypeId type, sim::Time now) {
  sim::Transaction txn(db_);
  sim::Statement seen(db_, "SELECT amount FROM migration_forwards WHERE key = ?");
  seen.Bind(1, key);
  if (seen.Step()) {
    const int64_t amount = seen.Int(0);
    CommitTxn(txn);
    return Reply(WalletStatus::kOk, 0, amount);
  }
  if (!MigratedAmount(user)) {
    return Invalid("the user is not migrated");
  }
  ExpireDueItems(user, now);
  const int64_t amount = std::max<int64_t>(AccountBalance(user, type).value_or(0), 0);
  uint64_t movement = 0;
  if (amount > 0) {
    movement = NextId(now);
    std::vector<JournalEntry> entries;
    std::vector<ValueTerm> terms;
    DebitAccount(user, type, amount, movement, &terms);
    entries.push_back(JournalEntry{user, type, -amount});
    AddToAccount(kSystemUser, AccountTypes::kMigrated, amount);
    entries.push_back(JournalEntry{kSystemUser, AccountTypes::kMigrated, amount});
    WriteMovement(movement, MovementKind::kMigrateOut, key, 0, now, entries);
    sim::Statement put(db_, "INSERT INTO migration_forwards VALUES(?, ?, ?, 0)");
    put.Bind(1, key).Bind(2, user).Bind(3, amount).Exec();
    sim::Statement put_term(db_, "INSERT INTO migration_forward_terms VALUES(?, ?, ?, ?)");
    for (size_t k = 0; k < terms.size(); ++k) {
      put_term.Bind(1, key)
          .Bind(2, static_cast<int64_t>(k))
          .Bind(3, terms[k].amount)
          .Bind(4, terms[k].expires_at)
          .Exec();
    }
  }
  CommitTxn(txn);
  return Reply(WalletStatus::kOk, movement, amount);
}

std::vector<MigrationForward> Ledger::PendingForwards(int64_t limit) {
  sim::Statement q(db_,
                   "SELECT key, user_id, amount FROM migration_forwards WHERE sent = 0 ORDER BY "
                   "key LIMIT ?");
  q.Bind(1, limit);
  std::vector<MigrationForward> out;
  while (q.Step()) {
    out.push_back(MigrationForward{std::string(q.Text(0)), q.Int(1), q.Int(2), {}});
  }
  for (MigrationForward& f : out) {
    f.terms = ForwardTerms(f.key);
  }
  return out;
}

std::vector<ValueTerm> Ledger::MigratedTerms(UserId user) {
  sim::Statement q(db_,
                   "SELECT amount, expires_at FROM migrated_terms WHERE user_id = ? ORDER BY seq");
  q.Bind(1, user);
  std::vector<ValueTerm> out;
  while (q.Step()) {
    out.push_back(ValueTerm{q.Int(0), q.Int(1)});
  }
  return out;
}

std::vector<ValueTerm> Ledger::ForwardTerms(std::string_view key) {
  sim::Statement q(
      db_, "SELECT amount, expires_at FROM migration_forward_terms WHERE key = ? ORDER BY seq");
  q.Bind(1, key);
  std::vector<ValueTerm> out;
  while (q.Step()) {
    out.push_back(ValueTerm{q.Int(0), q.Int(1)});
  }
  return out;
}

std::vector<ValueTerm> Ledger::OpenTerms(UserId user, TypeId type, sim::Time now) {
  sim::Statement q(db_,
                   "SELECT remaining, expires_at FROM balance_items WHERE user_id = ? AND "
                   "type = ? AND remaining > 0 AND expires_at > ? ORDER BY expires_at, id");
  q.Bind(1, user).Bind(2, int64_t{type}).Bind(3, now);
  std::vector<ValueTerm> out;
  while (q.Step()) {
    AddTerm(out, q.Int(0), q.Int(1));
  }
  return out;
}

void Ledger::MarkForwardSent(std::string_view key) {
  sim::Statement q(db_, "UPDATE migration_forwards SET sent = 1 WHERE key = ?");
  q.Bind(1, key).Exec();
}

std::vector<UserId> Ledger::MigratedWithBalance(TypeId type, int64_t limit) {
  sim::Statement q(db_,
                   "SELECT m.user_id FROM migrated_users m JOIN accounts a ON a.user_id = "
                   "m.user_id AND a.type = ? WHERE a.balance > 0 ORDER BY m.user_id LIMIT ?");
  q.Bind(1, int64_t{type}).Bind(2, limit);
  std::vector<UserId> out;
  while (q.Step()) {
    out.push_back(q.Int(0));
  }
  return out;
}

}  // namespace paylab::system
