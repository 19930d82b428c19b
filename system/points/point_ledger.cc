// Implementation of the point ledger (see point_ledger.h).
#include "system/points/point_ledger.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <utility>

#include "sim/check.h"
#include "system/common/id_lease.h"

namespace paylab::system {

std::string_view PointAccountName(PointAccount a) {
  switch (a) {
    case PointAccount::kPoint:
      return "POINT";
    case PointAccount::kIssue:
      return "ISSUE";
    case PointAccount::kHolds:
      return "HOLDS";
    case PointAccount::kBreakage:
      return "BREAKAGE";
    case PointAccount::kClearing:
      return "CLEARING";
  }
  return "?";
}

std::string_view PointMovementKindName(PointMovementKind k) {
  switch (k) {
    case PointMovementKind::kIssue:
      return "point_issue";
    case PointMovementKind::kTry:
      return "point_try";
    case PointMovementKind::kConfirm:
      return "point_confirm";
    case PointMovementKind::kCancel:
      return "point_cancel";
    case PointMovementKind::kExpireHold:
      return "point_expire_hold";
    case PointMovementKind::kBreakage:
      return "point_breakage";
  }
  return "?";
}

std::string_view PointOpName(PointOp op) {
  switch (op) {
    case PointOp::kPopulate:
      return "populate";
    case PointOp::kGrantProvisional:
      return "grant_provisional";
    case PointOp::kConfirmGrant:
      return "confirm_grant";
    case PointOp::kRevokeGrant:
      return "revoke_grant";
    case PointOp::kGrantConfirmed:
      return "grant_confirmed";
    case PointOp::kApplyPaymentEvent:
      return "apply_payment_event";
    case PointOp::kTryDebit:
      return "try_debit";
    case PointOp::kConfirmDebit:
      return "confirm_debit";
    case PointOp::kCancelDebit:
      return "cancel_debit";
    case PointOp::kExpireHolds:
      return "expire_holds";
    case PointOp::kExpireLots:
      return "expire_lots";
    case PointOp::kRefundDebit:
      return "refund_debit";
    case PointOp::kReceiveValue:
      return "receive_value";
  }
  return "?";
}

std::string_view GrantStatusName(GrantStatus s) {
  switch (s) {
    case GrantStatus::kOk:
      return "ok";
    case GrantStatus::kRevoked:
      return "revoked";
    case GrantStatus::kNoSuchGrant:
      return "no_such_grant";
    case GrantStatus::kIgnored:
      return "ignored";
    case GrantStatus::kInvalid:
      return "invalid";
  }
  return "?";
}

namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS point_meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS point_counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL)
  WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS point_users(id INTEGER PRIMARY KEY, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS point_accounts(
  user_id INTEGER NOT NULL, account INTEGER NOT NULL, balance INTEGER NOT NULL,
  PRIMARY KEY(user_id, account)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS point_lots(
  id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, amount INTEGER NOT NULL,
  remaining INTEGER NOT NULL, expires_at INTEGER NOT NULL, state INTEGER NOT NULL,
  grant_key TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL, issue_movement INTEGER);
CREATE INDEX IF NOT EXISTS point_lots_spendable
  ON point_lots(user_id, expires_at, id) WHERE state = 2 AND remaining > 0;
CREATE INDEX IF NOT EXISTS point_lots_expiry
  ON point_lots(expires_at, id) WHERE state = 2 AND remaining > 0;
CREATE TABLE IF NOT EXISTS point_lot_log(
  seq INTEGER PRIMARY KEY, lot_id INTEGER NOT NULL, hold_id INTEGER NOT NULL,
  movement_id INTEGER NOT NULL, delta INTEGER NOT NULL, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS point_lot_log_by_movement ON point_lot_log(movement_id);
CREATE TABLE IF NOT EXISTS point_movements(
  id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, key TEXT, hold_id INTEGER NOT NULL,
  lot_id INTEGER NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS point_journal(
  seq INTEGER PRIMARY KEY, movement_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
  account INTEGER NOT NULL, delta INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS point_journal_by_movement ON point_journal(movement_id);
CREATE TABLE IF NOT EXISTS point_holds(
  id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, user_id INTEGER NOT NULL,
  amount INTEGER NOT NULL, state INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  try_movement INTEGER NOT NULL, resolve_movement INTEGER NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS point_holds_open ON point_holds(expires_at, id) WHERE state = 1;
CREATE TABLE IF NOT EXISTS point_refunds(
  key TEXT PRIMARY KEY, debit_key TEXT NOT NULL, lot_id INTEGER NOT NULL,
  amount INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS point_tcc_keys(
  key TEXT PRIMARY KEY, kind INTEGER NOT NULL, user_id INTEGER NOT NULL,
  amount_min INTEGER NOT NULL, amount_max INTEGER NOT NULL, ttl INTEGER NOT NULL,
  status INTEGER NOT NULL, hold_id INTEGER NOT NULL, amount INTEGER NOT NULL,
  at INTEGER NOT NULL) WITHOUT ROWID;
)sql";

constexpr std::string_view kCounterNames[] = {
    "grants_provisional", "grants_confirmed", "grants_revoked", "tombstones",
    "grant_conflicts",    "events_applied",   "poison_seen",    "apply_failures",
};

void SetCounter(PointCounters& c, std::string_view name, int64_t v) {
  if (name == "grants_provisional") {
    c.grants_provisional = v;
  } else if (name == "grants_confirmed") {
    c.grants_confirmed = v;
  } else if (name == "grants_revoked") {
    c.grants_revoked = v;
  } else if (name == "tombstones") {
    c.tombstones = v;
  } else if (name == "grant_conflicts") {
    c.grant_conflicts = v;
  } else if (name == "events_applied") {
    c.events_applied = v;
  } else if (name == "poison_seen") {
    c.poison_seen = v;
  } else if (name == "apply_failures") {
    c.apply_failures = v;
  }
}

GrantReply Grant(GrantStatus s, uint64_t lot = 0, int64_t amount = 0,
                 std::string_view reason = "") {
  return GrantReply{s, lot, amount, reason};
}

GrantReply GrantInvalid(std::string_view reason) {
  return GrantReply{GrantStatus::kInvalid, 0, 0, reason};
}

TccReply Tcc(TccStatus s, uint64_t id = 0, int64_t amount = 0) { return TccReply{s, id, amount}; }

// floor(amount * bp / 10000) for amount, bp >= 0, without overflowing for
// any amount when bp <= 10000.
int64_t Reward(int64_t amount, int64_t bp) {
  return amount / 10'000 * bp + amount % 10'000 * bp / 10'000;
}

}  // namespace

PointCounters ReadPointCounters(sim::Database& db) {
  PointCounters c;
  if (db.QueryInt("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND "
                  "name = 'point_counters'") == 0) {
    return c;
  }
  sim::Statement q(db, "SELECT name, value FROM point_counters ORDER BY name");
  while (q.Step()) {
    SetCounter(c, q.Text(0), q.Int(1));
  }
  return c;
}

struct PointLedger::Lot {
  uint64_t id;
  UserId user;
  int64_t amount;
  int64_t remaining;
  sim::Time expires_at;
  LotState state;
};

struct PointLedger::Hold {
  uint64_t id;
  std::string key;
  UserId user;
  int64_t amount;
  PointHoldState state;
  sim::Time expires_at;
  uint64_t try_movement;
};

struct PointLedger::TccKey {
  TccKeyKind kind;
  UserId user;
  int64_t amount_min, amount_max;
  sim::Duration ttl;
  TccStatus status;
  uint64_t hold_id;
  int64_t amount;
};

struct PointLedger::Pending {
  uint64_t id;
  PointMovementKind kind;
  std::string key;
  uint64_t hold_id;
  uint64_t lot_id;
  sim::Time at;
  std::vector<PointEntry> entries;
};

struct PointLedger::Stmts {
  explicit Stmts(sim::Database& db)
      : meta_get(db, "SELECT value FROM point_meta WHERE key = ?"),
        meta_put(db,
                 "INSERT INTO point_meta(key, value) VALUES(?, ?) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
        counter_add(db,
                    "INSERT INTO point_counters(name, value) VALUES(?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value"),
        user_exists(db, "SELECT 1 FROM point_users WHERE id = ?"),
        user_count(db, "SELECT COUNT(*) FROM point_users"),
        user_insert(db, "INSERT INTO point_users(id, created_at) VALUES(?, ?)"),
        account_get(db, "SELECT balance FROM point_accounts WHERE user_id = ? AND account = ?"),
        account_add(db,
                    "INSERT INTO point_accounts(user_id, account, balance) VALUES(?, ?, ?) "
                    "ON CONFLICT(user_id, account) DO UPDATE SET "
                    "balance = balance + excluded.balance"),
        lot_by_key(db,
                   "SELECT id, user_id, amount, remaining, expires_at, state FROM point_lots "
                   "WHERE grant_key = ?"),
        lot_insert(db,
                   "INSERT INTO point_lots(id, user_id, amount, remaining, expires_at, state, "
                   "grant_key, created_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?)"),
        lot_issue(db,
                  "UPDATE point_lots SET state = 2, remaining = amount, issue_movement = ? "
                  "WHERE id = ? AND state = 1"),
        lot_revoke(db, "UPDATE point_lots SET state = 3, remaining = 0 WHERE id = ? AND state = 1"),
        lot_add(db, "UPDATE point_lots SET remaining = remaining + ? WHERE id = ?"),
        lots_spendable(db,
                       "SELECT id, remaining FROM point_lots WHERE user_id = ? AND state = 2 "
                       "AND remaining > 0 AND expires_at > ? ORDER BY expires_at, id"),
        spendable_sum(db,
                      "SELECT COALESCE(SUM(remaining), 0) FROM point_lots WHERE user_id = ? "
                      "AND state = 2 AND remaining > 0 AND expires_at > ?"),
        lots_expired(db,
                     "SELECT id, user_id, remaining, grant_key FROM point_lots WHERE state = 2 "
                     "AND remaining > 0 AND expires_at <= ? ORDER BY expires_at, id LIMIT ?"),
        lot_log(db,
                "INSERT INTO point_lot_log(lot_id, hold_id, movement_id, delta, at) "
                "VALUES(?, ?, ?, ?, ?)"),
        lot_log_of_try(db,
                       "SELECT lot_id, delta FROM point_lot_log WHERE movement_id = ? AND "
                       "hold_id = ? AND delta < 0 ORDER BY seq"),
        movement_insert(db,
                        "INSERT INTO point_movements(id, kind, key, hold_id, lot_id, at) "
                        "VALUES(?, ?, ?, ?, ?, ?)"),
        journal_insert(db,
                       "INSERT INTO point_journal(movement_id, user_id, account, delta) "
                       "VALUES(?, ?, ?, ?)"),
        hold_insert(
            db,
            "INSERT INTO point_holds(id, key, user_id, amount, state, expires_at, "
            "try_movement, resolve_movement, created_at) VALUES(?, ?, ?, ?, 1, ?, ?, 0, ?)"),
        hold_get(db,
                 "SELECT id, key, user_id, amount, state, expires_at, try_movement "
                 "FROM point_holds WHERE id = ?"),
        hold_resolve(db,
                     "UPDATE point_holds SET state = ?, resolve_movement = ? WHERE id = ? "
                     "AND state = 1"),
        holds_expired(db,
                      "SELECT id FROM point_holds WHERE state = 1 AND expires_at <= ? "
                      "ORDER BY expires_at, id LIMIT ?"),
        tcc_get(db,
                "SELECT kind, user_id, amount_min, amount_max, ttl, status, hold_id, amount "
                "FROM point_tcc_keys WHERE key = ?"),
        tcc_put(db,
                "INSERT INTO point_tcc_keys(key, kind, user_id, amount_min, amount_max, ttl, "
                "status, hold_id, amount, at) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)") {}

  sim::Statement meta_get, meta_put, counter_add, user_exists, user_count, user_insert, account_get,
      account_add, lot_by_key, lot_insert, lot_issue, lot_revoke, lot_add, lots_spendable,
      spendable_sum, lots_expired, lot_log, lot_log_of_try, movement_insert, journal_insert,
      hold_insert, hold_get, hold_resolve, holds_expired, tcc_get, tcc_put;
};

PointLedger::PointLedger(sim::Database& db, PointLedgerOptions options,
                         PointLedgerObserver* observer)
    : db_(db), options_(options), observer_(observer) {
  db_.ExecScript(kSchema);
  st_ = std::make_unique<Stmts>(db_);
  sim::Transaction txn(db_);
  for (PointAccount a : {PointAccount::kIssue, PointAccount::kHolds, PointAccount::kBreakage,
                         PointAccount::kClearing}) {
    AddToAccount(kSystemUser, a, 0);
  }
  for (std::string_view name : kCounterNames) {
    Count(name, 0);
  }
  ids_ = OpenLeasedIdGenerator(
      options_.defect_id_without_system_bit ? IdSystem::kWallet : IdSystem::kPoint,
      options_.id_worker, st_->meta_get, st_->meta_put);
  // Auditing needs an observer to report to.
  PAYLAB_CHECK(!options_.audit || observer_ != nullptr);
  txn.Commit();
}

PointLedger::~PointLedger() = default;

// --- helpers ---------------------------------------------------------------

sim::Transaction PointLedger::Begin() {
  // Movements of a transaction that was rolled back (a failed check) must
  // never reach the observer.
  pending_.clear();
  txn_lots_.clear();
  txn_holds_.clear();
  return sim::Transaction(db_);
}

void PointLedger::NoteLot(const LotChange& c) {
  if (options_.audit) {
    txn_lots_.push_back(c);
  }
}

void PointLedger::BeginAudit() {
  pending_.clear();
  txn_lots_.clear();
  txn_holds_.clear();
  call_lots_.clear();
  call_holds_.clear();
  call_movements_.clear();
  call_records_.clear();
}

void PointLedger::EndAudit(const PointRequest& request, const GrantReply& grant,
                           const TccReply& tcc, int64_t count) {
  call_records_.clear();
  for (const Pending& p : call_movements_) {
    call_records_.push_back(
        PointMovementRecord{p.id, p.kind, p.key, p.hold_id, p.lot_id, p.at, p.entries});
  }
  observer_->OnPointApplied(
      PointApplied{request, grant, tcc, count, call_records_, call_lots_, call_holds_});
}

uint64_t PointLedger::NextId(sim::Time now) {
  const uint64_t id = ids_->Next(options_.clock_origin_unix_ms + now / sim::kMillisecond);
  // Write path: every point ID carries the point system's bit (the defect
  // skips the assertion too, so that the checkers must catch it).
  PAYLAB_CHECK((id & 1) == 1 || options_.defect_id_without_system_bit);
  return id;
}

bool PointLedger::UserExists(UserId user) {
  if (user <= kSystemUser) {
    return false;
  }
  st_->user_exists.Bind(1, user);
  const bool found = st_->user_exists.Step();
  st_->user_exists.Reset();
  return found;
}

void PointLedger::AddToAccount(UserId user, PointAccount account, int64_t delta) {
  st_->account_add.Bind(1, user).Bind(2, static_cast<int64_t>(account)).Bind(3, delta).Exec();
}

void PointLedger::Count(std::string_view counter, int64_t by) {
  st_->counter_add.Bind(1, counter).Bind(2, by).Exec();
}

std::optional<PointLedger::Lot> PointLedger::FindLot(std::string_view key) {
  auto& q = st_->lot_by_key;
  q.Bind(1, key);
  std::optional<Lot> lot;
  if (q.Step()) {
    lot = Lot{static_cast<uint64_t>(q.Int(0)), q.Int(1), q.Int(2), q.Int(3), q.Int(4),
              static_cast<LotState>(q.Int(5))};
  }
  q.Reset();
  return lot;
}

std::optional<PointLedger::Hold> PointLedger::FindHold(uint64_t hold_id) {
  auto& q = st_->hold_get;
  q.Bind(1, static_cast<int64_t>(hold_id));
  std::optional<Hold> h;
  if (q.Step()) {
    h = Hold{static_cast<uint64_t>(q.Int(0)),
             std::string(q.Text(1)),
             q.Int(2),
             q.Int(3),
             static_cast<PointHoldState>(q.Int(4)),
             q.Int(5),
             static_cast<uint64_t>(q.Int(6))};
  }
  q.Reset();
  return h;
}

std::optional<PointLedger::TccKey> PointLedger::FindTccKey(std::string_view key) {
  auto& q = st_->tcc_get;
  q.Bind(1, key);
  std::optional<TccKey> k;
  if (q.Step()) {
    k = TccKey{static_cast<TccKeyKind>(q.Int(0)),
               q.Int(1),
               q.Int(2),
               q.Int(3),
               q.Int(4),
               static_cast<TccStatus>(q.Int(5)),
               static_cast<uint64_t>(q.Int(6)),
               q.Int(7)};
  }
  q.Reset();
  return k;
}

void PointLedger::InsertLot(uint64_t id, std::string_view key, UserId user, int64_t amount,
                            sim::Time expires_at, LotState state, sim::Time now) {
  // A lot has points in the user's hands only once confirmed (IssueLot).
  PAYLAB_CHECK(state != LotState::kConfirmed);
  st_->lot_insert.Bind(1, static_cast<int64_t>(id))
      .Bind(2, user)
      .Bind(3, amount)
      .Bind(4, 0)
      .Bind(5, expires_at)
      .Bind(6, static_cast<int64_t>(state))
      .Bind(7, key)
      .Bind(8, now)
      .Exec();
  NoteLot(LotChange{.event = LotEvent::kCreated,
                    .lot = id,
                    .user = user,
                    .amount = amount,
                    .expires_at = expires_at,
                    .state = state,
                    .key = std::string(key)});
}

void PointLedger::IssueLot(uint64_t lot_id, std::string_view key, UserId user, int64_t amount,
                           sim::Time now) {
  PAYLAB_CHECK(amount > 0);
  const uint64_t movement = NextId(now);
  std::vector<PointEntry> entries;
  entries.push_back(PointEntry{kSystemUser, PointAccount::kIssue, -amount});
  AddToAccount(kSystemUser, PointAccount::kIssue, -amount);
  entries.push_back(PointEntry{user, PointAccount::kPoint, amount});
  AddToAccount(user, PointAccount::kPoint, amount);
  st_->lot_issue.Bind(1, static_cast<int64_t>(movement)).Bind(2, static_cast<int64_t>(lot_id));
  st_->lot_issue.Exec();
  PAYLAB_CHECK(sqlite3_changes(db_.handle()) == 1);
  NoteLot(LotChange{.event = LotEvent::kIssued,
                    .lot = lot_id,
                    .user = user,
                    .amount = amount,
                    .state = LotState::kConfirmed,
                    .movement = movement});
  WriteMovement(movement, PointMovementKind::kIssue, key, 0, lot_id, now, entries);
}

void PointLedger::LogLot(uint64_t lot_id, uint64_t hold_id, uint64_t movement, int64_t delta,
                         sim::Time now) {
  st_->lot_log.Bind(1, static_cast<int64_t>(lot_id))
      .Bind(2, static_cast<int64_t>(hold_id))
      .Bind(3, static_cast<int64_t>(movement))
      .Bind(4, delta)
      .Bind(5, now)
      .Exec();
  NoteLot(LotChange{.event = LotEvent::kLogged,
                    .lot = lot_id,
                    .amount = delta,
                    .hold = hold_id,
                    .movement = movement});
}

void PointLedger::WriteMovement(uint64_t id, PointMovementKind kind, std::string_view key,
                                uint64_t hold_id, uint64_t lot_id, sim::Time now,
                                std::vector<PointEntry>& entries) {
  int64_t sum = 0;
  for (const PointEntry& e : entries) {
    sum += e.delta;
  }
  // Write path: a movement that does not balance is a bug in this file.
  PAYLAB_CHECK(sum == 0);
  PAYLAB_CHECK(!entries.empty());
  auto& m = st_->movement_insert;
  m.Bind(1, static_cast<int64_t>(id)).Bind(2, static_cast<int64_t>(kind));
  if (key.empty()) {
    m.BindNull(3);
  } else {
    m.Bind(3, key);
  }
  m.Bind(4, static_cast<int64_t>(hold_id))
      .Bind(5, static_cast<int64_t>(lot_id))
      .Bind(6, now)
      .Exec();
  for (const PointEntry& e : entries) {
    st_->journal_insert.Bind(1, static_cast<int64_t>(id))
        .Bind(2, e.user)
        .Bind(3, static_cast<int64_t>(e.account))
        .Bind(4, e.delta)
        .Exec();
  }
  if (observer_ != nullptr) {
    pending_.push_back(Pending{id, kind, std::string(key), hold_id, lot_id, now, entries});
  }
}

void PointLedger::CommitTxn(sim::Transaction& txn) {
  txn.Commit();
  if (observer_ == nullptr) {
    pending_.clear();
    return;
  }
  // Moved out first: an observer may call back into the ledger.
  std::vector<Pending> done = std::move(pending_);
  pending_.clear();
  for (const Pending& p : done) {
    observer_->OnPointMovement(
        PointMovementRecord{p.id, p.kind, p.key, p.hold_id, p.lot_id, p.at, p.entries});
  }
  if (options_.audit) {
    // Committed: these are facts of the call now.
    std::move(done.begin(), done.end(), std::back_inserter(call_movements_));
    call_lots_.insert(call_lots_.end(), txn_lots_.begin(), txn_lots_.end());
    call_holds_.insert(call_holds_.end(), txn_holds_.begin(), txn_holds_.end());
  }
  txn_lots_.clear();
  txn_holds_.clear();
}

void PointLedger::SetHoldState(uint64_t hold_id, PointHoldState state, uint64_t movement) {
  st_->hold_resolve.Bind(1, static_cast<int64_t>(state))
      .Bind(2, static_cast<int64_t>(movement))
      .Bind(3, static_cast<int64_t>(hold_id))
      .Exec();
  // Only a held hold is ever resolved, and only once.
  PAYLAB_CHECK(sqlite3_changes(db_.handle()) == 1);
}

void PointLedger::ReleaseHold(const Hold& h, PointHoldState final_state, sim::Time now) {
  PAYLAB_CHECK(h.state == PointHoldState::kHeld);
  uint64_t movement = 0;
  if (h.amount > 0) {
    movement = NextId(now);
    // Give every lot back exactly what the try took from it, even a lot that
    // has expired since: ExpireLots then moves it to BREAKAGE.
    std::vector<std::pair<uint64_t, int64_t>> back;
    auto& q = st_->lot_log_of_try;
    q.Bind(1, static_cast<int64_t>(h.try_movement)).Bind(2, static_cast<int64_t>(h.id));
    while (q.Step()) {
      back.emplace_back(static_cast<uint64_t>(q.Int(0)), -q.Int(1));
    }
    q.Reset();
    int64_t restored = 0;
    for (const auto& [lot, amount] : back) {
      st_->lot_add.Bind(1, amount).Bind(2, static_cast<int64_t>(lot)).Exec();
      LogLot(lot, h.id, movement, amount, now);
      restored += amount;
    }
    PAYLAB_CHECK(restored == h.amount);
    std::vector<PointEntry> entries;
    entries.push_back(PointEntry{kSystemUser, PointAccount::kHolds, -h.amount});
    AddToAccount(kSystemUser, PointAccount::kHolds, -h.amount);
    entries.push_back(PointEntry{h.user, PointAccount::kPoint, h.amount});
    AddToAccount(h.user, PointAccount::kPoint, h.amount);
    const PointMovementKind kind = final_state == PointHoldState::kExpired
                                       ? PointMovementKind::kExpireHold
                                       : PointMovementKind::kCancel;
    WriteMovement(movement, kind, h.key, h.id, 0, now, entries);
  }
  SetHoldState(h.id, final_state, movement);
}

// --- population and reads --------------------------------------------------

void PointLedger::DoPopulate(int64_t users, int64_t initial_points_per_user,
                             sim::Duration expires_after, sim::Time now) {
  if (user_count() > 0) {
    return;
  }
  const sim::Time expires_at = expires_after > 0 ? now + expires_after : kNever;
  sim::Transaction txn = Begin();
  for (UserId u = 1; u <= users; ++u) {
    st_->user_insert.Bind(1, u).Bind(2, now).Exec();
    AddToAccount(u, PointAccount::kPoint, 0);
    if (initial_points_per_user > 0) {
      const std::string key = fmt::format("initial/{}", u);
      const uint64_t lot = NextId(now);
      InsertLot(lot, key, u, initial_points_per_user, expires_at, LotState::kProvisional, now);
      IssueLot(lot, key, u, initial_points_per_user, now);
    }
  }
  CommitTxn(txn);
}

int64_t PointLedger::user_count() {
  st_->user_count.Step();
  const int64_t n = st_->user_count.Int(0);
  st_->user_count.Reset();
  return n;
}

int64_t PointLedger::Balance(UserId user, sim::Time now) {
  auto& q = st_->spendable_sum;
  q.Bind(1, user).Bind(2, now);
  q.Step();
  const int64_t b = q.Int(0);
  q.Reset();
  return b;
}

int64_t PointLedger::AccountBalance(UserId user, PointAccount account) {
  auto& q = st_->account_get;
  q.Bind(1, user).Bind(2, static_cast<int64_t>(account));
  const int64_t b = q.Step() ? q.Int(0) : 0;
  q.Reset();
  return b;
}

int64_t PointLedger::OutstandingPoints() {
  return -(AccountBalance(kSystemUser, PointAccount::kIssue) +
           AccountBalance(kSystemUser, PointAccount::kClearing) +
           AccountBalance(kSystemUser, PointAccount::kBreakage));
}

PointCounters PointLedger::Counters() { return ReadPointCounters(db_); }

void PointLedger::CountPoison() {
  sim::Transaction txn = Begin();
  Count("poison_seen");
  CommitTxn(txn);
}

void PointLedger::CountApplyFailure() {
  sim::Transaction txn = Begin();
  Count("apply_failures");
  CommitTxn(txn);
}

// --- grants ----------------------------------------------------------------

GrantReply PointLedger::DoGrant(std::string_view key, UserId user, int64_t amount,
                                sim::Time expires_at, bool confirmed, sim::Time now) {
  if (const std::optional<Lot> lot = FindLot(key)) {
    if (lot->state == LotState::kRevoked) {
      if (confirmed) {
        Count("grant_conflicts");
        return Grant(GrantStatus::kInvalid, 0, 0, "the grant was revoked; it cannot be confirmed");
      }
      return Grant(GrantStatus::kRevoked, lot->id, 0, "the grant was revoked");
    }
    if (lot->user != user || lot->amount != amount || lot->expires_at != expires_at) {
      Count("grant_conflicts");
      return GrantInvalid("the grant key was already used with different parameters");
    }
    if (confirmed && lot->state == LotState::kProvisional) {
      IssueLot(lot->id, key, user, amount, now);
      Count("grants_confirmed");
    }
    return Grant(GrantStatus::kOk, lot->id, amount);
  }
  if (!UserExists(user)) {
    return GrantInvalid("no such user");
  }
  if (expires_at <= now) {
    return GrantInvalid("the grant would expire before it is made");
  }
  const uint64_t lot = NextId(now);
  InsertLot(lot, key, user, amount, expires_at, LotState::kProvisional, now);
  if (confirmed) {
    IssueLot(lot, key, user, amount, now);
    Count("grants_confirmed");
  } else {
    Count("grants_provisional");
  }
  return Grant(GrantStatus::kOk, lot, amount);
}

GrantReply PointLedger::DoConfirm(std::string_view key, sim::Time now) {
  const std::optional<Lot> lot = FindLot(key);
  if (!lot) {
    return Grant(GrantStatus::kNoSuchGrant, 0, 0, "no grant has this key");
  }
  switch (lot->state) {
    case LotState::kRevoked:
      Count("grant_conflicts");
      return Grant(GrantStatus::kInvalid, 0, 0, "the grant was revoked; it cannot be confirmed");
    case LotState::kProvisional:
      IssueLot(lot->id, key, lot->user, lot->amount, now);
      Count("grants_confirmed");
      break;
    case LotState::kConfirmed:
      break;
  }
  return Grant(GrantStatus::kOk, lot->id, lot->amount);
}

GrantReply PointLedger::DoRevoke(std::string_view key, sim::Time now) {
  const std::optional<Lot> lot = FindLot(key);
  if (!lot) {
    // A tombstone: the provisional grant that may still arrive is refused.
    const uint64_t id = NextId(now);
    InsertLot(id, key, kSystemUser, 0, now, LotState::kRevoked, now);
    Count("tombstones");
    return Grant(GrantStatus::kOk, id, 0);
  }
  switch (lot->state) {
    case LotState::kConfirmed:
      Count("grant_conflicts");
      return Grant(GrantStatus::kInvalid, 0, 0, "the grant is confirmed; it cannot be revoked");
    case LotState::kProvisional:
      st_->lot_revoke.Bind(1, static_cast<int64_t>(lot->id)).Exec();
      PAYLAB_CHECK(sqlite3_changes(db_.handle()) == 1);
      NoteLot(LotChange{.event = LotEvent::kRevoked,
                        .lot = lot->id,
                        .user = lot->user,
                        .amount = lot->amount,
                        .state = LotState::kRevoked});
      Count("grants_revoked");
      break;
    case LotState::kRevoked:
      break;
  }
  return Grant(GrantStatus::kOk, lot->id, lot->amount);
}

GrantReply PointLedger::DoGrantProvisional(std::string_view key, UserId user, int64_t amount,
                                           sim::Time expires_at, sim::Time now) {
  if (key.empty()) {
    return GrantInvalid("a grant key is required");
  }
  if (amount <= 0) {
    return GrantInvalid("amount must be > 0");
  }
  sim::Transaction txn = Begin();
  const GrantReply r = DoGrant(key, user, amount, expires_at, /*confirmed=*/false, now);
  CommitTxn(txn);
  return r;
}

GrantReply PointLedger::DoGrantConfirmed(std::string_view key, UserId user, int64_t amount,
                                         sim::Time expires_at, sim::Time now) {
  if (key.empty()) {
    return GrantInvalid("a grant key is required");
  }
  if (amount <= 0) {
    return GrantInvalid("amount must be > 0");
  }
  sim::Transaction txn = Begin();
  const GrantReply r = DoGrant(key, user, amount, expires_at, /*confirmed=*/true, now);
  CommitTxn(txn);
  return r;
}

GrantReply PointLedger::DoConfirmGrant(std::string_view key, sim::Time now) {
  if (key.empty()) {
    return GrantInvalid("a grant key is required");
  }
  sim::Transaction txn = Begin();
  const GrantReply r = DoConfirm(key, now);
  CommitTxn(txn);
  return r;
}

GrantReply PointLedger::DoRevokeGrant(std::string_view key, sim::Time now) {
  if (key.empty()) {
    return GrantInvalid("a grant key is required");
  }
  sim::Transaction txn = Begin();
  const GrantReply r = DoRevoke(key, now);
  CommitTxn(txn);
  return r;
}

GrantReply PointLedger::DoApplyPaymentEvent(const PaymentEvent& e, int64_t reward_bp,
                                            sim::Duration grant_ttl, sim::Time now) {
  if (reward_bp < 0 || reward_bp > 10'000) {
    return GrantInvalid("reward_bp must be in [0, 10000]");
  }
  if (grant_ttl <= 0) {
    return GrantInvalid("grant_ttl must be > 0");
  }
  const int64_t reward = e.amount > 0 ? Reward(e.amount, reward_bp) : 0;
  const std::string key = fmt::format("grant/{}", e.payment_id);
  sim::Transaction txn = Begin();
  GrantReply r;
  if (reward == 0 || e.status == PaymentStatus::kCreated) {
    r = Grant(GrantStatus::kIgnored);
  } else if (e.status == PaymentStatus::kVoided || e.status == PaymentStatus::kFailed) {
    r = DoRevoke(key, now);
  } else {
    // Authorized or captured: the grant (if any) must be this event's.
    const std::optional<Lot> lot = FindLot(key);
    const bool tombstone = lot && lot->user == kSystemUser;
    if (lot && !tombstone && (lot->user != e.payer || lot->amount != reward)) {
      Count("grant_conflicts");
      r = GrantInvalid("the payment's grant was made for another payer or amount");
    } else if (e.status == PaymentStatus::kAuthorized) {
      if (!lot) {
        r = DoGrant(key, e.payer, reward, now + grant_ttl, /*confirmed=*/false, now);
      } else if (lot->state == LotState::kRevoked) {
        r = Grant(GrantStatus::kRevoked, lot->id, 0, "the grant was revoked");
      } else {
        r = Grant(GrantStatus::kOk, lot->id, lot->amount);
      }
    } else if (lot) {
      r = DoConfirm(key, now);
    } else {
      r = DoGrant(key, e.payer, reward, now + grant_ttl, /*confirmed=*/true, now);
    }
  }
  Count("events_applied");
  CommitTxn(txn);
  return r;
}

// --- TCC debit ---------------------------------------------------------------

TccReply PointLedger::DoTryDebit(const TccTry& t, sim::Time now) {
  if (t.key.empty() || t.amount_min < 0 || t.amount_max < t.amount_min || t.ttl <= 0 ||
      t.ttl > options_.hold_ttl_max || t.user <= kSystemUser) {
    return Tcc(TccStatus::kInvalid);
  }
  sim::Transaction txn = Begin();
  TccReply reply;
  if (const std::optional<TccKey> k = FindTccKey(t.key)) {
    if (k->kind == TccKeyKind::kCancelledFirst) {
      reply = Tcc(TccStatus::kCancelled);
    } else if (k->user != t.user || k->amount_min != t.amount_min ||
               k->amount_max != t.amount_max || k->ttl != t.ttl) {
      reply = Tcc(TccStatus::kInvalid);
    } else {
      reply = Tcc(k->status, k->hold_id, k->amount);
    }
  } else if (!UserExists(t.user)) {
    reply = Tcc(TccStatus::kInvalid);
  } else {
    // Plan the consumption before writing: a decline changes nothing.
    std::vector<std::pair<uint64_t, int64_t>> lots;
    int64_t spendable = 0;
    {
      auto& q = st_->lots_spendable;
      q.Bind(1, t.user).Bind(2, now);
      while (spendable < t.amount_max && q.Step()) {
        lots.emplace_back(static_cast<uint64_t>(q.Int(0)), q.Int(1));
        spendable += q.Int(1);
      }
      q.Reset();
    }
    if (spendable < t.amount_min) {
      reply = Tcc(TccStatus::kDeclined);
    } else {
      const int64_t amount = std::min(t.amount_max, spendable);
      const uint64_t hold = NextId(now);
      uint64_t movement = 0;
      if (amount > 0) {
        movement = NextId(now);
        int64_t left = amount;
        for (const auto& [lot, remaining] : lots) {
          if (left == 0) {
            break;
          }
          const int64_t take = std::min(remaining, left);
          st_->lot_add.Bind(1, -take).Bind(2, static_cast<int64_t>(lot)).Exec();
          LogLot(lot, hold, movement, -take, now);
          left -= take;
        }
        PAYLAB_CHECK(left == 0);
        std::vector<PointEntry> entries;
        entries.push_back(PointEntry{t.user, PointAccount::kPoint, -amount});
        AddToAccount(t.user, PointAccount::kPoint, -amount);
        entries.push_back(PointEntry{kSystemUser, PointAccount::kHolds, amount});
        AddToAccount(kSystemUser, PointAccount::kHolds, amount);
        WriteMovement(movement, PointMovementKind::kTry, t.key, hold, 0, now, entries);
      }
      st_->hold_insert.Bind(1, static_cast<int64_t>(hold))
          .Bind(2, t.key)
          .Bind(3, t.user)
          .Bind(4, amount)
          .Bind(5, now + t.ttl)
          .Bind(6, static_cast<int64_t>(movement))
          .Bind(7, now)
          .Exec();
      if (options_.audit) {
        txn_holds_.push_back(PointHoldCreated{hold, t.user, amount, now + t.ttl});
      }
      reply = Tcc(TccStatus::kOk, hold, amount);
    }
    st_->tcc_put.Bind(1, t.key)
        .Bind(2, static_cast<int64_t>(TccKeyKind::kTried))
        .Bind(3, t.user)
        .Bind(4, t.amount_min)
        .Bind(5, t.amount_max)
        .Bind(6, t.ttl)
        .Bind(7, static_cast<int64_t>(reply.status))
        .Bind(8, static_cast<int64_t>(reply.id))
        .Bind(9, reply.amount)
        .Bind(10, now)
        .Exec();
  }
  CommitTxn(txn);
  return reply;
}

TccReply PointLedger::DoConfirmDebit(std::string_view key, sim::Time now) {
  if (key.empty()) {
    return Tcc(TccStatus::kInvalid);
  }
  sim::Transaction txn = Begin();
  TccReply reply = Tcc(TccStatus::kInvalid);
  const std::optional<TccKey> k = FindTccKey(key);
  // Never tried, cancelled first, or declined: nothing to confirm (the
  // orchestrator confirms only a try answered kOk).
  if (k && k->kind == TccKeyKind::kTried && k->status == TccStatus::kOk) {
    const std::optional<Hold> found = FindHold(k->hold_id);
    PAYLAB_CHECK(found.has_value());
    const Hold& h = *found;
    switch (h.state) {
      case PointHoldState::kConfirmed:
        reply = Tcc(TccStatus::kOk, h.id, h.amount);
        break;
      case PointHoldState::kExpired:
        // The same answer as the confirm (or sweep) that found it expired.
        reply = Tcc(TccStatus::kExpired, h.id, 0);
        break;
      case PointHoldState::kCancelled:
        break;  // kInvalid
      case PointHoldState::kHeld:
        if (now >= h.expires_at) {
          // Too late: release the points now rather than wait for the sweep.
          ReleaseHold(h, PointHoldState::kExpired, now);
          reply = Tcc(TccStatus::kExpired, h.id, 0);
          break;
        }
        uint64_t movement = 0;
        if (h.amount > 0) {
          movement = NextId(now);
          std::vector<PointEntry> entries;
          entries.push_back(PointEntry{kSystemUser, PointAccount::kHolds, -h.amount});
          AddToAccount(kSystemUser, PointAccount::kHolds, -h.amount);
          entries.push_back(PointEntry{kSystemUser, PointAccount::kClearing, h.amount});
          AddToAccount(kSystemUser, PointAccount::kClearing, h.amount);
          WriteMovement(movement, PointMovementKind::kConfirm, h.key, h.id, 0, now, entries);
        }
        SetHoldState(h.id, PointHoldState::kConfirmed, movement);
        reply = Tcc(TccStatus::kOk, h.id, h.amount);
        break;
    }
  }
  CommitTxn(txn);
  return reply;
}

TccReply PointLedger::DoCancelDebit(std::string_view key, sim::Time now) {
  if (key.empty()) {
    return Tcc(TccStatus::kInvalid);
  }
  sim::Transaction txn = Begin();
  TccReply reply = Tcc(TccStatus::kOk);
  const std::optional<TccKey> k = FindTccKey(key);
  if (!k) {
    // An empty rollback: remember the key so that the late try is refused.
    st_->tcc_put.Bind(1, key)
        .Bind(2, static_cast<int64_t>(TccKeyKind::kCancelledFirst))
        .Bind(3, 0)
        .Bind(4, 0)
        .Bind(5, 0)
        .Bind(6, 0)
        .Bind(7, static_cast<int64_t>(TccStatus::kCancelled))
        .Bind(8, 0)
        .Bind(9, 0)
        .Bind(10, now)
        .Exec();
  } else if (k->kind == TccKeyKind::kTried && k->status == TccStatus::kOk) {
    const std::optional<Hold> found = FindHold(k->hold_id);
    PAYLAB_CHECK(found.has_value());
    const Hold& h = *found;
    switch (h.state) {
      case PointHoldState::kConfirmed:
        reply = Tcc(TccStatus::kInvalid);
        break;
      case PointHoldState::kCancelled:
      case PointHoldState::kExpired:
        // Released already (by a cancel or by expiry): nothing moves again.
        reply = Tcc(TccStatus::kOk, h.id, h.amount);
        break;
      case PointHoldState::kHeld:
        ReleaseHold(h, PointHoldState::kCancelled, now);
        reply = Tcc(TccStatus::kOk, h.id, h.amount);
        break;
    }
  }
  // Cancelled first, or a declined try: nothing was held; kOk, amount 0.
  CommitTxn(txn);
  return reply;
}

// --- expiry ------------------------------------------------------------------

int64_t PointLedger::DoExpireHolds(sim::Time now, int64_t limit) {
  std::vector<uint64_t> due;
  auto& q = st_->holds_expired;
  q.Bind(1, now).Bind(2, limit);
  while (q.Step()) {
    due.push_back(static_cast<uint64_t>(q.Int(0)));
  }
  q.Reset();
  if (due.empty()) {
    return 0;
  }
  sim::Transaction txn = Begin();
  for (uint64_t id : due) {
    const std::optional<Hold> h = FindHold(id);
    PAYLAB_CHECK(h.has_value());
    ReleaseHold(*h, PointHoldState::kExpired, now);
  }
  CommitTxn(txn);
  return static_cast<int64_t>(due.size());
}

int64_t PointLedger::DoExpireLots(sim::Time now, int64_t limit) {
  struct Due {
    uint64_t lot;
    UserId user;
    int64_t remaining;
    std::string key;
  };
  std::vector<Due> due;
  auto& q = st_->lots_expired;
  q.Bind(1, now).Bind(2, limit);
  while (q.Step()) {
    due.push_back(Due{static_cast<uint64_t>(q.Int(0)), q.Int(1), q.Int(2), std::string(q.Text(3))});
  }
  q.Reset();
  if (due.empty()) {
    return 0;
  }
  sim::Transaction txn = Begin();
  for (const Due& d : due) {
    BreakLot(d.lot, d.user, d.remaining, d.key, now);
  }
  CommitTxn(txn);
  return static_cast<int64_t>(due.size());
}

void PointLedger::BreakLot(uint64_t lot, UserId user, int64_t remaining, std::string_view key,
                           sim::Time now) {
  PAYLAB_CHECK(remaining > 0);
  const uint64_t movement = NextId(now);
  std::vector<PointEntry> entries;
  entries.push_back(PointEntry{user, PointAccount::kPoint, -remaining});
  AddToAccount(user, PointAccount::kPoint, -remaining);
  entries.push_back(PointEntry{kSystemUser, PointAccount::kBreakage, remaining});
  AddToAccount(kSystemUser, PointAccount::kBreakage, remaining);
  st_->lot_add.Bind(1, -remaining).Bind(2, static_cast<int64_t>(lot)).Exec();
  LogLot(lot, 0, movement, -remaining, now);
  WriteMovement(movement, PointMovementKind::kBreakage, key, 0, lot, now, entries);
}

GrantReply PointLedger::DoRefundDebit(std::string_view refund_key, std::string_view debit_key,
                                      sim::Time now) {
  if (refund_key.empty() || debit_key.empty()) {
    return GrantInvalid("a refund key and a debit key are required");
  }
  sim::Transaction txn = Begin();
  GrantReply reply;
  sim::Statement seen(db_, "SELECT debit_key, lot_id, amount FROM point_refunds WHERE key = ?");
  seen.Bind(1, refund_key);
  const std::optional<TccKey> k = FindTccKey(debit_key);
  const std::optional<Hold> h = k && k->kind == TccKeyKind::kTried && k->status == TccStatus::kOk
                                    ? FindHold(k->hold_id)
                                    : std::nullopt;
  if (seen.Step()) {
    reply = seen.Text(0) == debit_key
                ? Grant(GrantStatus::kOk, static_cast<uint64_t>(seen.Int(1)), seen.Int(2))
                : GrantInvalid("the refund key was used for another debit");
  } else if (!h || h->state != PointHoldState::kConfirmed) {
    reply = GrantInvalid("only a confirmed debit can be refunded");
  } else {
    std::vector<ValueTerm> parts;
    auto& q = st_->lot_log_of_try;
    q.Bind(1, static_cast<int64_t>(h->try_movement)).Bind(2, static_cast<int64_t>(h->id));
    std::vector<std::pair<uint64_t, int64_t>> taken;
    while (q.Step()) {
      taken.emplace_back(static_cast<uint64_t>(q.Int(0)), -q.Int(1));
    }
    q.Reset();
    sim::Statement from(db_, "SELECT expires_at FROM point_lots WHERE id = ?");
    for (const auto& [lot, amount] : taken) {
      from.Bind(1, static_cast<int64_t>(lot));
      PAYLAB_CHECK(from.Step());
      parts.push_back(ValueTerm{amount, from.Int(0)});
      from.Reset();
    }
    reply = IssueTerms(refund_key, h->user, parts, now);
    sim::Statement put(db_, "INSERT INTO point_refunds VALUES(?, ?, ?, ?)");
    put.Bind(1, refund_key)
        .Bind(2, debit_key)
        .Bind(3, static_cast<int64_t>(reply.lot_id))
        .Bind(4, reply.amount)
        .Exec();
  }
  CommitTxn(txn);
  return reply;
}

GrantReply PointLedger::IssueTerms(std::string_view key, UserId user,
                                   std::span<const ValueTerm> terms, sim::Time now) {
  GrantReply reply = Grant(GrantStatus::kOk);
  for (size_t i = 0; i < terms.size(); ++i) {
    const std::string lot_key = fmt::format("{}/{}", key, i);
    const uint64_t lot = NextId(now);
    InsertLot(lot, lot_key, user, terms[i].amount, terms[i].expires_at, LotState::kProvisional,
              now);
    IssueLot(lot, lot_key, user, terms[i].amount, now);
    if (terms[i].expires_at <= now) {
      BreakLot(lot, user, terms[i].amount, lot_key, now);  // it arrived expired
    }
    reply.lot_id = i == 0 ? lot : reply.lot_id;
    reply.amount += terms[i].amount;
  }
  return reply;
}

GrantReply PointLedger::DoReceiveValue(std::string_view key, UserId user,
                                       std::span<const ValueTerm> terms, sim::Time now) {
  if (key.empty() || terms.empty()) {
    return GrantInvalid("a key and at least one term are required");
  }
  for (const ValueTerm& t : terms) {
    if (t.amount <= 0) {
      return GrantInvalid("every term must have an amount > 0");
    }
  }
  sim::Transaction txn = Begin();
  GrantReply reply;
  if (!UserExists(user)) {
    reply = GrantInvalid("no such user");
  } else if (const std::optional<Lot> first = FindLot(fmt::format("{}/0", key))) {
    // Received before: the same terms answer as then.
    bool same = first->user == user;
    int64_t total = 0;
    for (size_t i = 0; same && i < terms.size(); ++i) {
      const std::optional<Lot> lot = FindLot(fmt::format("{}/{}", key, i));
      same = lot && lot->amount == terms[i].amount && lot->expires_at == terms[i].expires_at;
      total += terms[i].amount;
    }
    same = same && !FindLot(fmt::format("{}/{}", key, terms.size()));
    reply = same ? Grant(GrantStatus::kOk, first->id, total)
                 : GrantInvalid("the key was received with other terms");
  } else {
    reply = IssueTerms(key, user, terms, now);
  }
  CommitTxn(txn);
  return reply;
}

// --- the public operations: each call reported to the audit ----------------

void PointLedger::Populate(int64_t users, int64_t initial_points_per_user,
                           sim::Duration expires_after, sim::Time now) {
  if (!options_.audit) {
    DoPopulate(users, initial_points_per_user, expires_after, now);
    return;
  }
  BeginAudit();
  DoPopulate(users, initial_points_per_user, expires_after, now);
  EndAudit(PointRequest{.op = PointOp::kPopulate,
                        .amount = initial_points_per_user,
                        .limit = users,
                        .expires_after = expires_after,
                        .now = now},
           GrantReply{}, TccReply{}, 0);
}

GrantReply PointLedger::GrantProvisional(std::string_view key, UserId user, int64_t amount,
                                         sim::Time expires_at, sim::Time now) {
  if (!options_.audit) {
    return DoGrantProvisional(key, user, amount, expires_at, now);
  }
  BeginAudit();
  const GrantReply r = DoGrantProvisional(key, user, amount, expires_at, now);
  EndAudit(PointRequest{.op = PointOp::kGrantProvisional,
                        .key = key,
                        .user = user,
                        .amount = amount,
                        .expires_at = expires_at,
                        .now = now},
           r, TccReply{}, 0);
  return r;
}

GrantReply PointLedger::GrantConfirmed(std::string_view key, UserId user, int64_t amount,
                                       sim::Time expires_at, sim::Time now) {
  if (!options_.audit) {
    return DoGrantConfirmed(key, user, amount, expires_at, now);
  }
  BeginAudit();
  const GrantReply r = DoGrantConfirmed(key, user, amount, expires_at, now);
  EndAudit(PointRequest{.op = PointOp::kGrantConfirmed,
                        .key = key,
                        .user = user,
                        .amount = amount,
                        .expires_at = expires_at,
                        .now = now},
           r, TccReply{}, 0);
  return r;
}

GrantReply PointLedger::ConfirmGrant(std::string_view key, sim::Time now) {
  if (!options_.audit) {
    return DoConfirmGrant(key, now);
  }
  BeginAudit();
  const GrantReply r = DoConfirmGrant(key, now);
  EndAudit(PointRequest{.op = PointOp::kConfirmGrant, .key = key, .now = now}, r, TccReply{}, 0);
  return r;
}

GrantReply PointLedger::RevokeGrant(std::string_view key, sim::Time now) {
  if (!options_.audit) {
    return DoRevokeGrant(key, now);
  }
  BeginAudit();
  const GrantReply r = DoRevokeGrant(key, now);
  EndAudit(PointRequest{.op = PointOp::kRevokeGrant, .key = key, .now = now}, r, TccReply{}, 0);
  return r;
}

GrantReply PointLedger::ApplyPaymentEvent(const PaymentEvent& e, int64_t reward_bp,
                                          sim::Duration grant_ttl, sim::Time now) {
  if (!options_.audit) {
    return DoApplyPaymentEvent(e, reward_bp, grant_ttl, now);
  }
  BeginAudit();
  const GrantReply r = DoApplyPaymentEvent(e, reward_bp, grant_ttl, now);
  EndAudit(PointRequest{.op = PointOp::kApplyPaymentEvent,
                        .event = &e,
                        .reward_bp = reward_bp,
                        .grant_ttl = grant_ttl,
                        .now = now},
           r, TccReply{}, 0);
  return r;
}

TccReply PointLedger::TryDebit(const TccTry& t, sim::Time now) {
  if (!options_.audit) {
    return DoTryDebit(t, now);
  }
  BeginAudit();
  const TccReply r = DoTryDebit(t, now);
  EndAudit(PointRequest{.op = PointOp::kTryDebit, .key = t.key, .tcc = &t, .now = now},
           GrantReply{}, r, 0);
  return r;
}

TccReply PointLedger::ConfirmDebit(std::string_view key, sim::Time now) {
  if (!options_.audit) {
    return DoConfirmDebit(key, now);
  }
  BeginAudit();
  const TccReply r = DoConfirmDebit(key, now);
  EndAudit(PointRequest{.op = PointOp::kConfirmDebit, .key = key, .now = now}, GrantReply{}, r, 0);
  return r;
}

TccReply PointLedger::CancelDebit(std::string_view key, sim::Time now) {
  if (!options_.audit) {
    return DoCancelDebit(key, now);
  }
  BeginAudit();
  const TccReply r = DoCancelDebit(key, now);
  EndAudit(PointRequest{.op = PointOp::kCancelDebit, .key = key, .now = now}, GrantReply{}, r, 0);
  return r;
}

int64_t PointLedger::ExpireHolds(sim::Time now, int64_t limit) {
  if (!options_.audit) {
    return DoExpireHolds(now, limit);
  }
  BeginAudit();
  const int64_t n = DoExpireHolds(now, limit);
  EndAudit(PointRequest{.op = PointOp::kExpireHolds, .limit = limit, .now = now}, GrantReply{},
           TccReply{}, n);
  return n;
}

int64_t PointLedger::ExpireLots(sim::Time now, int64_t limit) {
  if (!options_.audit) {
    return DoExpireLots(now, limit);
  }
  BeginAudit();
  const int64_t n = DoExpireLots(now, limit);
  EndAudit(PointRequest{.op = PointOp::kExpireLots, .limit = limit, .now = now}, GrantReply{},
           TccReply{}, n);
  return n;
}

GrantReply PointLedger::RefundDebit(std::string_view refund_key, std::string_view debit_key,
                                    sim::Time now) {
  if (!options_.audit) {
    return DoRefundDebit(refund_key, debit_key, now);
  }
  BeginAudit();
  const GrantReply r = DoRefundDebit(refund_key, debit_key, now);
  EndAudit(
      PointRequest{
          .op = PointOp::kRefundDebit, .key = refund_key, .debit_key = debit_key, .now = now},
      r, TccReply{}, 0);
  return r;
}

GrantReply PointLedger::ReceiveValue(std::string_view key, UserId user,
                                     std::span<const ValueTerm> terms, sim::Time now) {
  if (!options_.audit) {
    return DoReceiveValue(key, user, terms, now);
  }
  BeginAudit();
  const GrantReply r = DoReceiveValue(key, user, terms, now);
  EndAudit(
      PointRequest{
          .op = PointOp::kReceiveValue, .key = key, .terms = terms, .user = user, .now = now},
      r, TccReply{}, 0);
  return r;
}

}  // namespace paylab::system
