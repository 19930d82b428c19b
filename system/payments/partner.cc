// Implementation of the external partner and its checker (see partner.h).
#include "system/payments/partner.h"

#include <fmt/format.h>

#include <string_view>

#include "sim/check.h"
#include "sim/trace.h"

namespace paylab::system {

namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS accounts(
  user_id INTEGER NOT NULL, account INTEGER NOT NULL, balance INTEGER NOT NULL,
  PRIMARY KEY(user_id, account)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS movements(
  id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, hold_id INTEGER, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS journal(
  seq INTEGER PRIMARY KEY, movement_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
  account INTEGER NOT NULL, delta INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS journal_by_movement ON journal(movement_id);
CREATE TABLE IF NOT EXISTS holds(
  id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, user_id INTEGER NOT NULL,
  amount INTEGER NOT NULL, ttl INTEGER NOT NULL, state INTEGER NOT NULL,
  expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL, try_movement INTEGER,
  resolve_movement INTEGER);
CREATE INDEX IF NOT EXISTS holds_open ON holds(expires_at, id) WHERE state = 1;
)sql";

constexpr int64_t kSystem = 0;

TccReply Answer(TccStatus s, int64_t id = 0, int64_t amount = 0) {
  return TccReply{s, static_cast<uint64_t>(id), amount};
}

struct HoldRow {
  int64_t id;
  int64_t user;
  int64_t amount;
  sim::Duration ttl;
  PartnerHoldState state;
  sim::Time expires_at;
};

}  // namespace

std::string_view PartnerAccountName(PartnerAccount a) {
  switch (a) {
    case PartnerAccount::kPoints:
      return "POINTS";
    case PartnerAccount::kIssue:
      return "ISSUE";
    case PartnerAccount::kHolds:
      return "HOLDS";
    case PartnerAccount::kClearing:
      return "CLEARING";
  }
  return "?";
}

std::string_view PartnerHoldStateName(PartnerHoldState s) {
  switch (s) {
    case PartnerHoldState::kHeld:
      return "held";
    case PartnerHoldState::kConfirmed:
      return "confirmed";
    case PartnerHoldState::kCancelled:
      return "cancelled";
    case PartnerHoldState::kExpired:
      return "expired";
    case PartnerHoldState::kDeclined:
      return "declined";
    case PartnerHoldState::kTombstone:
      return "tombstone";
  }
  return "?";
}

std::string_view PartnerMovementKindName(PartnerMovementKind k) {
  switch (k) {
    case PartnerMovementKind::kIssue:
      return "partner_issue";
    case PartnerMovementKind::kTry:
      return "partner_try";
    case PartnerMovementKind::kConfirm:
      return "partner_confirm";
    case PartnerMovementKind::kCancel:
      return "partner_cancel";
    case PartnerMovementKind::kExpire:
      return "partner_expire";
  }
  return "?";
}

std::string_view PartnerOpName(PartnerOp op) {
  switch (op) {
    case PartnerOp::kPopulate:
      return "populate";
    case PartnerOp::kTry:
      return "try";
    case PartnerOp::kConfirm:
      return "confirm";
    case PartnerOp::kCancel:
      return "cancel";
    case PartnerOp::kExpire:
      return "expire";
  }
  return "?";
}

struct Partner::Stmts {
  explicit Stmts(sim::Database& db)
      : user_count(db, "SELECT COUNT(*) FROM accounts WHERE user_id > 0 AND account = 0"),
        balance(db, "SELECT balance FROM accounts WHERE user_id = ? AND account = ?"),
        account_add(
            db,
            "INSERT INTO accounts(user_id, account, balance) VALUES(?, ?, ?) "
            "ON CONFLICT(user_id, account) DO UPDATE SET balance = balance + excluded.balance"),
        movement_insert(db, "INSERT INTO movements(kind, hold_id, at) VALUES(?, ?, ?)"),
        journal_insert(db,
                       "INSERT INTO journal(movement_id, user_id, account, delta) "
                       "VALUES(?, ?, ?, ?)"),
        hold_get(db, "SELECT id, user_id, amount, ttl, state, expires_at FROM holds WHERE key = ?"),
        hold_insert(db,
                    "INSERT INTO holds(key, user_id, amount, ttl, state, expires_at, created_at) "
                    "VALUES(?, ?, ?, ?, ?, ?, ?)"),
        hold_set_try(db, "UPDATE holds SET try_movement = ? WHERE id = ?"),
        hold_resolve(db, "UPDATE holds SET state = ?, resolve_movement = ? WHERE id = ?"),
        holds_expired(db,
                      "SELECT id, user_id, amount, key FROM holds WHERE state = 1 AND "
                      "expires_at <= ? ORDER BY expires_at, id LIMIT ?") {}

  sim::Statement user_count, balance, account_add, movement_insert, journal_insert, hold_get,
      hold_insert, hold_set_try, hold_resolve, holds_expired;
};

namespace {

std::optional<HoldRow> ReadHold(sim::Statement& q, std::string_view key) {
  q.Bind(1, key);
  std::optional<HoldRow> h;
  if (q.Step()) {
    h = HoldRow{q.Int(0), q.Int(1), q.Int(2), q.Int(3), static_cast<PartnerHoldState>(q.Int(4)),
                q.Int(5)};
  }
  q.Reset();
  return h;
}

}  // namespace

Partner::Partner(sim::NodeContext& ctx, const PartnerConfig& config, PartnerCounters* counters,
                 PartnerObserver* observer)
    : ctx_(ctx),
      config_(config),
      counters_(counters != nullptr ? counters : &own_counters_),
      observer_(config.audit ? observer : nullptr),
      latency_rng_(ctx.Stream("partner.latency")),
      fault_rng_(ctx.Stream("partner.faults")) {
  PAYLAB_CHECK(config_.service_time_min >= 0);
  PAYLAB_CHECK(config_.service_time_min <= config_.service_time_max);
}

Partner::~Partner() = default;

asio::awaitable<void> Partner::Boot() {
  ctx_.db().ExecScript(kSchema);
  st_ = std::make_unique<Stmts>(ctx_.db());
  Populate();
  ctx_.Trace(sim::TraceKind::kNote, "partner.boot", config_.users);
  ctx_.Spawn(ExpiryLoop());
  co_return;
}

void Partner::Populate() {
  BeginAudit();
  st_->user_count.Step();
  const int64_t existing = st_->user_count.Int(0);
  st_->user_count.Reset();
  const PartnerRequest request{.op = PartnerOp::kPopulate,
                               .users = config_.users,
                               .initial_balance = config_.initial_balance,
                               .now = ctx_.Now()};
  if (existing > 0) {
    EndAudit(request, Answer(TccStatus::kOk));  // populated before a restart: nothing to do
    return;
  }
  sim::Transaction txn(ctx_.db());
  for (PartnerAccount a :
       {PartnerAccount::kIssue, PartnerAccount::kHolds, PartnerAccount::kClearing}) {
    st_->account_add.Bind(1, kSystem).Bind(2, static_cast<int64_t>(a)).Bind(3, int64_t{0}).Exec();
  }
  for (int64_t u = 1; u <= config_.users; ++u) {
    st_->account_add.Bind(1, u)
        .Bind(2, static_cast<int64_t>(PartnerAccount::kPoints))
        .Bind(3, int64_t{0})
        .Exec();
    if (config_.initial_balance > 0) {
      WriteMovement(PartnerMovementKind::kIssue, 0,
                    {{kSystem, PartnerAccount::kIssue, -config_.initial_balance},
                     {u, PartnerAccount::kPoints, config_.initial_balance}});
    }
  }
  txn.Commit();
  EndAudit(request, Answer(TccStatus::kOk));
}

// --- audit --------------------------------------------------------------------

void Partner::BeginAudit() {
  audit_movements_.clear();
  audit_holds_.clear();
  audit_hold_keys_.clear();
}

void Partner::NoteHold(const PartnerHoldChange& c) {
  if (observer_ == nullptr) {
    return;
  }
  audit_holds_.push_back(c);
  audit_hold_keys_.emplace_back(c.key);
}

void Partner::EndAudit(const PartnerRequest& request, const TccReply& reply) {
  if (observer_ == nullptr) {
    return;
  }
  std::vector<PartnerMovementRecord> records;
  records.reserve(audit_movements_.size());
  for (const NotedMovement& m : audit_movements_) {
    records.push_back(PartnerMovementRecord{m.id, m.kind, m.hold_id, m.at, m.entries});
  }
  // The keys point into storage that no longer moves.
  for (size_t i = 0; i < audit_holds_.size(); ++i) {
    audit_holds_[i].key = audit_hold_keys_[i];
  }
  observer_->OnPartnerApplied(PartnerApplied{request, reply, records, audit_holds_});
  BeginAudit();
}

bool Partner::InOutage(sim::Time t) const {
  for (const PartnerOutage& o : config_.outages) {
    if (o.from <= t && t < o.to) {
      return true;
    }
  }
  return false;
}

asio::awaitable<bool> Partner::Admit() {
  ++counters_->requests;
  const sim::Duration service =
      latency_rng_.UniformInt(config_.service_time_min, config_.service_time_max);
  if (service > 0) {
    co_await ctx_.Sleep(service);
  }
  // Drawn for every request, so an outage does not shift later draws.
  const bool fault = fault_rng_.Bernoulli(config_.unavailable_rate);
  if (fault || InOutage(ctx_.Now())) {
    ++counters_->unavailable;
    ctx_.Trace(sim::TraceKind::kFault, "partner.unavailable", fault ? 0 : 1);
    co_return false;
  }
  co_return true;
}

// Each request is reported (audit) once it is done, unavailable answers
// included: from Admit's decision to the report nothing suspends.
asio::awaitable<TccReply> Partner::TryHold(TccTry t) {
  // Not `if (!co_await Admit())`: GCC 12 mishandles the awaitable there (it crashed).
  const bool admitted = co_await Admit();
  BeginAudit();
  const TccReply reply = admitted ? DoTry(t) : Answer(TccStatus::kUnavailable);
  EndAudit(PartnerRequest{.op = PartnerOp::kTry, .tcc = &t, .key = t.key, .now = ctx_.Now()},
           reply);
  co_return reply;
}

asio::awaitable<TccReply> Partner::ConfirmHold(std::string key) {
  // Not `if (!co_await Admit())`: GCC 12 mishandles the awaitable there (it crashed).
  const bool admitted = co_await Admit();
  BeginAudit();
  const TccReply reply = admitted ? DoConfirm(key) : Answer(TccStatus::kUnavailable);
  EndAudit(PartnerRequest{.op = PartnerOp::kConfirm, .key = key, .now = ctx_.Now()}, reply);
  co_return reply;
}

asio::awaitable<TccReply> Partner::CancelHold(std::string key) {
  // Not `if (!co_await Admit())`: GCC 12 mishandles the awaitable there (it crashed).
  const bool admitted = co_await Admit();
  BeginAudit();
  const TccReply reply = admitted ? DoCancel(key) : Answer(TccStatus::kUnavailable);
  EndAudit(PartnerRequest{.op = PartnerOp::kCancel, .key = key, .now = ctx_.Now()}, reply);
  co_return reply;
}

asio::awaitable<void> Partner::ExpiryLoop() {
  for (;;) {
    co_await ctx_.Sleep(config_.expiry_scan_interval);
    BeginAudit();
    const int64_t n = DoExpire(config_.expiry_batch_max);
    EndAudit(
        PartnerRequest{
            .op = PartnerOp::kExpire, .limit = config_.expiry_batch_max, .now = ctx_.Now()},
        Answer(TccStatus::kOk, 0, n));
    if (n > 0) {
      ctx_.Trace(sim::TraceKind::kNote, "partner.expire", n);
    }
  }
}

int64_t Partner::WriteMovement(PartnerMovementKind kind, int64_t hold_id,
                               std::initializer_list<PartnerEntry> entries) {
  int64_t sum = 0;
  for (const PartnerEntry& e : entries) {
    sum += e.delta;
  }
  // Write path: a movement that does not balance is a bug in this file.
  PAYLAB_CHECK(sum == 0);
  auto& m = st_->movement_insert;
  m.Bind(1, static_cast<int64_t>(kind));
  if (hold_id == 0) {
    m.BindNull(2);
  } else {
    m.Bind(2, hold_id);
  }
  m.Bind(3, ctx_.Now()).Exec();
  const int64_t id = sqlite3_last_insert_rowid(ctx_.db().handle());
  for (const PartnerEntry& e : entries) {
    st_->journal_insert.Bind(1, id)
        .Bind(2, e.user)
        .Bind(3, static_cast<int64_t>(e.account))
        .Bind(4, e.delta)
        .Exec();
    st_->account_add.Bind(1, e.user)
        .Bind(2, static_cast<int64_t>(e.account))
        .Bind(3, e.delta)
        .Exec();
  }
  if (observer_ != nullptr) {
    audit_movements_.push_back(NotedMovement{id, kind, hold_id, ctx_.Now(), entries});
  }
  return id;
}

int64_t Partner::InsertHold(std::string_view key, int64_t user, int64_t amount, sim::Duration ttl,
                            PartnerHoldState state, sim::Time expires_at) {
  st_->hold_insert.Bind(1, key)
      .Bind(2, user)
      .Bind(3, amount)
      .Bind(4, ttl)
      .Bind(5, static_cast<int64_t>(state))
      .Bind(6, expires_at)
      .Bind(7, ctx_.Now())
      .Exec();
  const int64_t id = sqlite3_last_insert_rowid(ctx_.db().handle());
  NoteHold(PartnerHoldChange{.created = true,
                             .hold_id = id,
                             .key = key,
                             .user = user,
                             .amount = amount,
                             .ttl = ttl,
                             .state = state,
                             .expires_at = expires_at});
  return id;
}

void Partner::ResolveHold(int64_t hold_id, PartnerHoldState state, int64_t movement) {
  st_->hold_resolve.Bind(1, static_cast<int64_t>(state)).Bind(2, movement).Bind(3, hold_id).Exec();
}

void Partner::Release(int64_t hold_id, std::string_view key, int64_t user, int64_t amount,
                      PartnerHoldState final_state) {
  const PartnerMovementKind kind = final_state == PartnerHoldState::kExpired
                                       ? PartnerMovementKind::kExpire
                                       : PartnerMovementKind::kCancel;
  const int64_t movement = WriteMovement(
      kind, hold_id,
      {{kSystem, PartnerAccount::kHolds, -amount}, {user, PartnerAccount::kPoints, amount}});
  ResolveHold(hold_id, final_state, movement);
  NoteHold(PartnerHoldChange{.hold_id = hold_id,
                             .key = key,
                             .user = user,
                             .amount = amount,
                             .state = final_state,
                             .movement = movement});
  if (final_state == PartnerHoldState::kExpired) {
    ++counters_->expired;
  } else {
    ++counters_->cancels;
  }
}

TccReply Partner::DoTry(const TccTry& t) {
  if (t.key.empty() || t.amount_min != t.amount_max || t.amount_max <= 0 || t.ttl <= 0 ||
      t.ttl > config_.hold_ttl_max) {
    // A range, a bad amount or ttl: refused whatever the timing, and the
    // key is not claimed.
    return Answer(TccStatus::kInvalid);
  }
  const int64_t amount = t.amount_max;
  sim::Database& db = ctx_.db();
  sim::Transaction txn(db);
  if (const std::optional<HoldRow> h = ReadHold(st_->hold_get, t.key)) {
    if (h->state == PartnerHoldState::kTombstone) {
      ++counters_->late_tries_refused;
      ctx_.Trace(sim::TraceKind::kNote, "partner.late_try", h->id);
      return Answer(TccStatus::kCancelled);
    }
    const bool same = h->user == t.user && h->amount == amount && h->ttl == t.ttl;
    if (!same && !config_.defect_key_ignores_params) {
      return Answer(TccStatus::kInvalid);
    }
    // Tried before: the first answer again.
    return h->state == PartnerHoldState::kDeclined ? Answer(TccStatus::kDeclined)
                                                   : Answer(TccStatus::kOk, h->id, h->amount);
  }
  st_->balance.Bind(1, t.user).Bind(2, static_cast<int64_t>(PartnerAccount::kPoints));
  std::optional<int64_t> balance;
  if (t.user > 0 && st_->balance.Step()) {
    balance = st_->balance.Int(0);
  }
  st_->balance.Reset();
  if (!balance) {
    return Answer(TccStatus::kInvalid);  // no such user
  }
  const bool enough = *balance >= amount;
  const int64_t hold = InsertHold(t.key, t.user, amount, t.ttl,
                                  enough ? PartnerHoldState::kHeld : PartnerHoldState::kDeclined,
                                  ctx_.Now() + t.ttl);
  if (!enough) {
    // Remembered, so that a retried Try hears the same answer.
    txn.Commit();
    ++counters_->tries_declined;
    return Answer(TccStatus::kDeclined);
  }
  const int64_t movement = WriteMovement(
      PartnerMovementKind::kTry, hold,
      {{t.user, PartnerAccount::kPoints, -amount}, {kSystem, PartnerAccount::kHolds, amount}});
  st_->hold_set_try.Bind(1, movement).Bind(2, hold).Exec();
  if (observer_ != nullptr) {
    audit_holds_.back().movement = movement;  // the held hold's row, noted by InsertHold
  }
  txn.Commit();
  ++counters_->tries_held;
  ctx_.Trace(sim::TraceKind::kCommit, "partner.try", hold, amount);
  return Answer(TccStatus::kOk, hold, amount);
}

TccReply Partner::DoConfirm(const std::string& key) {
  sim::Transaction txn(ctx_.db());
  const std::optional<HoldRow> h = ReadHold(st_->hold_get, key);
  if (!h) {
    // Never tried: the orchestrator confirms only what it tried. No
    // tombstone: this is its bug, not a race.
    return Answer(TccStatus::kInvalid);
  }
  switch (h->state) {
    case PartnerHoldState::kConfirmed:
      return Answer(TccStatus::kOk, h->id, h->amount);
    case PartnerHoldState::kExpired:
      return Answer(TccStatus::kExpired);
    case PartnerHoldState::kCancelled:
    case PartnerHoldState::kDeclined:
    case PartnerHoldState::kTombstone:
      return Answer(TccStatus::kInvalid);
    case PartnerHoldState::kHeld:
      break;
  }
  if (ctx_.Now() >= h->expires_at) {
    // Too late: release the points now rather than wait for the scan.
    Release(h->id, key, h->user, h->amount, PartnerHoldState::kExpired);
    txn.Commit();
    return Answer(TccStatus::kExpired);
  }
  const int64_t movement = WriteMovement(PartnerMovementKind::kConfirm, h->id,
                                         {{kSystem, PartnerAccount::kHolds, -h->amount},
                                          {kSystem, PartnerAccount::kClearing, h->amount}});
  ResolveHold(h->id, PartnerHoldState::kConfirmed, movement);
  NoteHold(PartnerHoldChange{.hold_id = h->id,
                             .key = key,
                             .user = h->user,
                             .amount = h->amount,
                             .state = PartnerHoldState::kConfirmed,
                             .movement = movement});
  txn.Commit();
  ++counters_->confirms;
  ctx_.Trace(sim::TraceKind::kCommit, "partner.confirm", h->id, h->amount);
  return Answer(TccStatus::kOk, h->id, h->amount);
}

TccReply Partner::DoCancel(const std::string& key) {
  if (key.empty()) {
    return Answer(TccStatus::kInvalid);
  }
  sim::Transaction txn(ctx_.db());
  const std::optional<HoldRow> h = ReadHold(st_->hold_get, key);
  if (!h) {
    // Empty rollback: remember the key so the Try still on its way is
    // refused and leaves no hanging hold.
    InsertHold(key, kSystem, 0, 0, PartnerHoldState::kTombstone, ctx_.Now());
    txn.Commit();
    ++counters_->empty_rollbacks;
    ctx_.Trace(sim::TraceKind::kNote, "partner.empty_rollback");
    return Answer(TccStatus::kOk);
  }
  switch (h->state) {
    case PartnerHoldState::kConfirmed:
      return Answer(TccStatus::kInvalid);
    case PartnerHoldState::kCancelled:
    case PartnerHoldState::kExpired:
      // Already released: the same answer as the first cancel.
      return Answer(TccStatus::kOk, h->id, h->amount);
    case PartnerHoldState::kDeclined:
    case PartnerHoldState::kTombstone:
      return Answer(TccStatus::kOk);  // nothing was held
    case PartnerHoldState::kHeld:
      break;
  }
  Release(h->id, key, h->user, h->amount, PartnerHoldState::kCancelled);
  txn.Commit();
  ctx_.Trace(sim::TraceKind::kCommit, "partner.cancel", h->id, h->amount);
  return Answer(TccStatus::kOk, h->id, h->amount);
}

int64_t Partner::DoExpire(int64_t limit) {
  struct Due {
    int64_t id, user, amount;
    std::string key;
  };
  std::vector<Due> due;
  auto& q = st_->holds_expired;
  q.Bind(1, ctx_.Now()).Bind(2, limit);
  while (q.Step()) {
    due.push_back(Due{q.Int(0), q.Int(1), q.Int(2), std::string(q.Text(3))});
  }
  q.Reset();
  if (due.empty()) {
    return 0;
  }
  sim::Transaction txn(ctx_.db());
  for (const Due& d : due) {
    Release(d.id, d.key, d.user, d.amount, PartnerHoldState::kExpired);
  }
  txn.Commit();
  return static_cast<int64_t>(due.size());
}

int64_t PartnerClearingBalance(sim::Database& partner_db) {
  sim::Statement q(partner_db, "SELECT balance FROM accounts WHERE user_id = 0 AND account = ?");
  q.Bind(1, static_cast<int64_t>(PartnerAccount::kClearing));
  return q.Step() ? q.Int(0) : 0;
}

}  // namespace paylab::system
