// Implementation of the point service's migration end (see migration_point.h).
#include "system/migration/point_home.h"

#include <fmt/format.h>

#include "system/common/config_table.h"
#include "system/migration/cashback_wallet.h"
#include "system/points/point_service.h"

namespace paylab::system {

namespace {

constexpr std::string_view kHomeSchema = R"sql(
CREATE TABLE IF NOT EXISTS pays(
  key TEXT PRIMARY KEY, user_id INTEGER NOT NULL, merchant INTEGER NOT NULL,
  amount INTEGER NOT NULL, ttl INTEGER NOT NULL, min_points INTEGER NOT NULL,
  max_points INTEGER NOT NULL, points INTEGER NOT NULL, state INTEGER NOT NULL,
  id INTEGER NOT NULL, expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pays_by_id ON pays(id);
CREATE INDEX IF NOT EXISTS pays_open ON pays(expires_at) WHERE state < 3;
CREATE TABLE IF NOT EXISTS attempts(
  key TEXT PRIMARY KEY, user_id INTEGER NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS activated(
  user_id INTEGER PRIMARY KEY, amount INTEGER NOT NULL, grant_key TEXT NOT NULL,
  at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS activated_terms(
  user_id INTEGER NOT NULL, seq INTEGER NOT NULL, amount INTEGER NOT NULL,
  expires_at INTEGER NOT NULL, PRIMARY KEY(user_id, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS copies(
  user_id INTEGER PRIMARY KEY, balance INTEGER NOT NULL, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS home_counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL)
  WITHOUT ROWID;
)sql";

// Payment states, as stored (MigPayState): the code below computes with
// the stored integers.
constexpr int kComputed = static_cast<int>(MigPayState::kComputed);
constexpr int kPoints = static_cast<int>(MigPayState::kPoints);
constexpr int kPrepared = static_cast<int>(MigPayState::kPrepared);
constexpr int kCommitted = static_cast<int>(MigPayState::kCommitted);
constexpr int kRolledBack = static_cast<int>(MigPayState::kRolledBack);
constexpr int kDeclined = static_cast<int>(MigPayState::kDeclined);
constexpr int kExpiredPay = static_cast<int>(MigPayState::kExpired);
constexpr int kRolledBackPrepared = static_cast<int>(MigPayState::kRolledBackPrepared);
constexpr int kExpiredPrepared = static_cast<int>(MigPayState::kExpiredPrepared);

MigReply Status(MigStatus s) {
  MigReply r;
  r.status = s;
  return r;
}

// Holds a payment key while one request works on it.
class KeyGuard {
 public:
  KeyGuard(std::shared_ptr<std::set<std::string>> busy, std::string key)
      : busy_(std::move(busy)), key_(std::move(key)), held_(busy_->insert(key_).second) {}
  ~KeyGuard() {
    if (held_) {
      busy_->erase(key_);
    }
  }
  KeyGuard(const KeyGuard&) = delete;
  KeyGuard& operator=(const KeyGuard&) = delete;
  bool held() const { return held_; }

 private:
  std::shared_ptr<std::set<std::string>> busy_;
  std::string key_;
  bool held_;
};

}  // namespace

// The statements every request uses, prepared once per incarnation.
struct PointHome::Stmts {
  explicit Stmts(sim::Database& db)
      : count(db,
              "INSERT INTO home_counters VALUES(?, ?) ON CONFLICT(name) DO UPDATE SET value = "
              "value + excluded.value"),
        activated(db, "SELECT 1 FROM activated WHERE user_id = ?"),
        attempt_get(db, "SELECT 1 FROM attempts WHERE key = ?"),
        attempt_put(db, "INSERT OR IGNORE INTO attempts VALUES(?, ?, ?)"),
        pay_get(db,
                "SELECT user_id, merchant, amount, ttl, min_points, max_points, points, state, "
                "id, expires_at, created_at FROM pays WHERE key = ?"),
        pay_save(db, "UPDATE pays SET points = ?, state = ?, id = ?, expires_at = ? WHERE key = ?"),
        copy_apply(
            db, "UPDATE copies SET balance = ?, version = ? WHERE user_id = ? AND version < ?") {}
  sim::Statement count, activated, attempt_get, attempt_put, pay_get, pay_save, copy_apply;
};

// A cached statement's row, reset when the reader is done with it.
class Row {
 public:
  explicit Row(sim::Statement& q) : q_(q), found_(q.Step()) {}
  ~Row() { q_.Reset(); }
  Row(const Row&) = delete;
  Row& operator=(const Row&) = delete;
  bool found() const { return found_; }

 private:
  sim::Statement& q_;
  bool found_;
};

struct PointHome::Pay {
  std::string key;
  int64_t user = 0;
  int64_t merchant = 0;
  int64_t amount = 0;
  int64_t ttl = 0;
  int64_t min_points = 0;
  int64_t max_points = 0;
  int64_t points = 0;
  int state = kComputed;
  uint64_t id = 0;
  sim::Time expires_at = 0;
  sim::Time created_at = 0;
};

PointHomeCounters ReadPointHomeCounters(sim::Database& db) {
  PointHomeCounters c;
  if (db.QueryInt("SELECT COUNT(*) FROM sqlite_master WHERE name = 'home_counters'") == 0) {
    return c;
  }
  sim::Statement q(db, "SELECT name, value FROM home_counters");
  while (q.Step()) {
    const std::string_view n = q.Text(0);
    const int64_t v = q.Int(1);
    for (auto [name, field] :
         {std::pair{"proxied", &c.proxied},
          std::pair{"duplicates_prevented", &c.duplicates_prevented},
          std::pair{"cross_debits", &c.cross_debits}, std::pair{"refunds", &c.refunds},
          std::pair{"switch_inconsistencies", &c.switch_inconsistencies},
          std::pair{"recon_differences", &c.recon_differences},
          std::pair{"recon_repairs", &c.recon_repairs}, std::pair{"recon_passes", &c.recon_passes},
          std::pair{"dual_writes_applied", &c.dual_writes_applied},
          std::pair{"forwards_in", &c.forwards_in}}) {
      if (n == name) {
        *field = v;
      }
    }
  }
  return c;
}

PointHome::PointHome(sim::NodeContext& ctx, const PointHomeConfig& config,
                     PointLedgerObserver* observer)
    : ctx_(ctx), config_(config), observer_(observer) {}

PointHome::~PointHome() = default;

namespace {

// What the migration's checks and an audit of the point side rely on.
void StoreSettings(sim::Database& db, const PointHomeConfig& c) {
  StoreConfig(db, {
                      {"users", c.users},
                      {"copy_seed", c.copy_seed},
                      {"hold_ttl_max_ns", c.ledger.hold_ttl_max},
                      {"expiry_scan_interval_ns", c.expiry_scan_interval},
                      {"expiry_grace_ns", c.expiry_grace},
                      {"reconcile_interval_ns", c.reconcile_interval},
                      {"reconcile_batch", c.reconcile_batch},
                      {"id_worker", int64_t{c.ledger.id_worker}},
                  });
}

}  // namespace

asio::awaitable<void> PointHome::Boot() {
  sim::Database& db = ctx_.db();
  PointLedgerOptions options = config_.ledger;
  ledger_ = std::make_unique<PointLedger>(db, options, this);
  StoreSettings(db, config_);
  ledger_->Populate(config_.users, 0, 0, ctx_.Now());
  db.ExecScript(kHomeSchema);
  if (config_.copy_seed >= 0 && db.QueryInt("SELECT COUNT(*) FROM copies") == 0) {
    sim::Transaction txn(db);
    sim::Statement put(db, "INSERT INTO copies VALUES(?, ?, 0)");
    for (int64_t u = 1; u <= config_.users; ++u) {
      put.Bind(1, u).Bind(2, config_.copy_seed).Exec();
    }
    txn.Commit();
  }
  st_ = std::make_unique<Stmts>(db);
  ctx_.Trace(sim::TraceKind::kNote, "point.boot", ledger_->user_count());
  ctx_.Spawn(ExpiryLoop());
  if (!config_.consumer.queue.empty()) {
    handler_ = [this](const QueueMessage& m) { return ApplyDualWrite(m.payload); };
    ctx_.Spawn(ConsumeQueue(ctx_, config_.consumer, handler_));
  }
  if (config_.reconcile_interval > 0 && config_.copy_seed >= 0) {
    ctx_.Spawn(ReconcileLoop());
  }
  co_return;
}

PointLedger& PointHome::Live() {
  ctx_.db();
  return *ledger_;
}

void PointHome::Count(std::string_view name, int64_t by) {
  ctx_.db();
  st_->count.Bind(1, name).Bind(2, by).Exec();
}

bool PointHome::Activated(int64_t user) {
  ctx_.db();
  st_->activated.Bind(1, user);
  return Row(st_->activated).found();
}

bool PointHome::AttemptProxied(std::string_view key) {
  ctx_.db();
  st_->attempt_get.Bind(1, key);
  return Row(st_->attempt_get).found();
}

void PointHome::RecordAttempt(std::string_view key, int64_t user) {
  ctx_.db();
  st_->attempt_put.Bind(1, key).Bind(2, user).Bind(3, ctx_.Now()).Exec();
  Count("proxied");
}

void PointHome::ForgetAttempt(std::string_view key) {
  sim::Statement del(ctx_.db(), "DELETE FROM attempts WHERE key = ?");
  del.Bind(1, key).Exec();
}

std::optional<PointHome::Pay> PointHome::LoadPay(std::string_view key) {
  ctx_.db();
  sim::Statement& q = st_->pay_get;
  q.Bind(1, key);
  const Row row(q);
  if (!row.found()) {
    return std::nullopt;
  }
  Pay p;
  p.key = std::string(key);
  p.user = q.Int(0);
  p.merchant = q.Int(1);
  p.amount = q.Int(2);
  p.ttl = q.Int(3);
  p.min_points = q.Int(4);
  p.max_points = q.Int(5);
  p.points = q.Int(6);
  p.state = static_cast<int>(q.Int(7));
  p.id = static_cast<uint64_t>(q.Int(8));
  p.expires_at = q.Int(9);
  p.created_at = q.Int(10);
  return p;
}

void PointHome::SavePay(const Pay& p) {
  ctx_.db();
  st_->pay_save.Bind(1, p.points)
      .Bind(2, int64_t{p.state})
      .Bind(3, static_cast<int64_t>(p.id))
      .Bind(4, p.expires_at)
      .Bind(5, p.key)
      .Exec();
}

void PointHome::Refund(const Pay& p) {
  if (p.points <= 0) {
    return;
  }
  // The points go back with the expiries of the lots they came from.
  const GrantReply g =
      config_.defect_drop_expiry
          ? Live().GrantConfirmed("refund/" + p.key, p.user, p.points, kNever, ctx_.Now())
          : Live().RefundDebit("refund/" + p.key, p.key, ctx_.Now());
  PAYLAB_CHECK(g.status == GrantStatus::kOk);
  PAYLAB_CHECK(g.amount == p.points);
  Count("refunds");
}

std::vector<ValueTerm> PointHome::Kept(std::vector<ValueTerm> terms) const {
  if (!config_.defect_drop_expiry) {
    return terms;
  }
  int64_t total = 0;
  for (const ValueTerm& t : terms) {
    total += t.amount;
  }
  return total > 0 ? std::vector<ValueTerm>{ValueTerm{total, kNever}} : std::vector<ValueTerm>{};
}

MigReply PointHome::ReplyOf(const Pay& p) {
  MigReply r;
  r.id = p.id;
  r.amount = p.amount;
  r.points = p.points;
  switch (p.state) {
    case kPrepared:
    case kCommitted:
    case kRolledBackPrepared:
      r.status = MigStatus::kOk;
      break;
    case kDeclined:
      r.status = MigStatus::kDeclined;
      break;
    case kExpiredPay:
    case kExpiredPrepared:
      r.status = MigStatus::kExpired;
      break;
    case kRolledBack:
      r.status = MigStatus::kInvalid;
      break;
    default:
      r.status = MigStatus::kUnavailable;
      break;
  }
  return r;
}

MigReply PointHome::PrepareReplyOf(const Pay& p) {
  MigReply r = ReplyOf(p);
  if (p.state == kExpiredPrepared) {
    r.status = MigStatus::kOk;  // what the Prepare answered
  }
  return r;
}

asio::awaitable<std::optional<int64_t>> PointHome::WalletTotal(int64_t user) {
  auto fn = [user](CashbackWallet& w) { return w.Total(user); };
  auto r =
      co_await ctx_.Call<CashbackWallet>(config_.wallet, "wallet.Total", config_.rpc_timeout, fn);
  if (!r.ok()) {
    co_return std::nullopt;
  }
  co_return r.value;
}

asio::awaitable<MigReply> PointHome::Prepare(MigPay p) {
  if (!p.forwarded) {
    const MigStatus admitted =
        co_await AdmitRequest(ctx_, config_.controller, config_.rpc_timeout, p.user, p.use_points);
    if (admitted != MigStatus::kOk) {
      co_return Status(admitted);
    }
  }
  Live();
  if (!config_.defect_no_attempt_tracking && AttemptProxied(p.key)) {
    // Started at the wallet through this service: it finishes there.
    if (Activated(p.user)) {
      Count("duplicates_prevented");
    }
    co_return co_await Proxy(p);
  }
  if (LoadPay(p.key)) {
    co_return co_await CrossDebit(p);
  }
  if (!Activated(p.user) || !p.use_points) {
    if (p.forwarded) {
      co_return Status(MigStatus::kMoved);
    }
    co_return co_await Proxy(p);
  }
  co_return co_await CrossDebit(p);
}

asio::awaitable<MigReply> PointHome::Proxy(MigPay p) {
  if (!p.forwarded) {
    RecordAttempt(p.key, p.user);
  }
  MigPay f = p;
  f.forwarded = true;
  auto fn = [f](CashbackWallet& w) { return w.Prepare(f); };
  auto r =
      co_await ctx_.Call<CashbackWallet>(config_.wallet, "wallet.Prepare", config_.rpc_timeout, fn);
  if (!r.ok()) {
    co_return Status(MigStatus::kUnavailable);
  }
  if (r.value.status == MigStatus::kMoved) {
    // The wallet moved the user meanwhile and never saw this key: the
    // attempt did not happen there. Ask the caller to come again.
    ForgetAttempt(p.key);
    co_return Status(MigStatus::kUnavailable);
  }
  co_return r.value;
}

asio::awaitable<MigReply> PointHome::CrossDebit(MigPay p) {
  const KeyGuard guard(busy_, p.key);
  if (!guard.held()) {
    co_return Status(MigStatus::kUnavailable);
  }
  std::optional<Pay> pay = LoadPay(p.key);
  if (!pay) {
    const std::optional<int64_t> total = co_await WalletTotal(p.user);
    if (!total) {
      co_return Status(MigStatus::kUnavailable);
    }
    if (*total < 0 || p.amount <= 0 || p.ttl <= 0) {
      co_return Status(MigStatus::kInvalid);
    }
    // The computation is stored: a retry reuses it, whatever the wallet
    // holds by then.
    sim::Statement put(ctx_.db(),
                       "INSERT OR IGNORE INTO pays VALUES(?, ?, ?, ?, ?, ?, ?, 0, 0, 0, ?, ?)");
    put.Bind(1, p.key)
        .Bind(2, p.user)
        .Bind(3, p.merchant)
        .Bind(4, p.amount)
        .Bind(5, p.ttl)
        .Bind(6, std::max<int64_t>(0, p.amount - *total))
        .Bind(7, p.amount)
        .Bind(8, ctx_.Now() + p.ttl)
        .Bind(9, ctx_.Now())
        .Exec();
    Count("cross_debits");
    pay = LoadPay(p.key);
  }
  if (pay->user != p.user || pay->merchant != p.merchant || pay->amount != p.amount) {
    co_return Status(MigStatus::kInvalid);
  }
  if (pay->state == kComputed) {
    const TccReply t = Live().TryDebit(
        TccTry{pay->key, pay->user, pay->min_points, pay->max_points, pay->ttl}, ctx_.Now());
    if (t.status == TccStatus::kDeclined) {
      pay->state = kDeclined;
    } else if (t.status != TccStatus::kOk) {
      pay->state = kRolledBack;  // a rollback came first
    } else {
      const TccReply c = Live().ConfirmDebit(pay->key, ctx_.Now());
      if (c.status == TccStatus::kOk) {
        pay->points = c.amount;
        pay->id = t.id;
        pay->state = kPoints;
      } else {
        pay->state = kDeclined;
      }
    }
    SavePay(*pay);
  }
  if (pay->state == kPoints) {
    if (!config_.defect_stale_min_no_recheck) {
      // The wallet may have changed since MIN was computed: check again.
      const std::optional<int64_t> total = co_await WalletTotal(p.user);
      if (!total) {
        co_return Status(MigStatus::kUnavailable);
      }
      if (pay->points + *total < pay->amount) {
        Refund(*pay);
        pay->state = kDeclined;
        SavePay(*pay);
        co_return ReplyOf(*pay);
      }
    }
    const int64_t rest = pay->amount - pay->points;
    if (rest > 0) {
      MigPay w{pay->key + "/w", pay->user, pay->merchant, rest, false, pay->ttl, true};
      auto fn = [w](CashbackWallet& s) { return s.Prepare(w); };
      auto r = co_await ctx_.Call<CashbackWallet>(config_.wallet, "wallet.Prepare",
                                                  config_.rpc_timeout, fn);
      if (!r.ok()) {
        co_return Status(MigStatus::kUnavailable);
      }
      if (r.value.status != MigStatus::kOk) {
        if (!config_.defect_stale_min_no_recheck) {
          Refund(*pay);
        }
        pay->state = kDeclined;
        SavePay(*pay);
        co_return ReplyOf(*pay);
      }
    }
    pay->state = kPrepared;
    pay->expires_at = ctx_.Now() + pay->ttl;
    SavePay(*pay);
  }
  co_return PrepareReplyOf(*pay);
}

asio::awaitable<bool> PointHome::Release(Pay& pay, int final_state) {
  const bool prepared = pay.state == kPrepared;
  if (pay.state == kComputed) {
    const TccReply c = Live().CancelDebit(pay.key, ctx_.Now());
    if (c.status != TccStatus::kOk) {
      // Confirmed before the state was recorded: the try's stored answer
      // says how much was debited.
      const TccReply t = Live().TryDebit(
          TccTry{pay.key, pay.user, pay.min_points, pay.max_points, pay.ttl}, ctx_.Now());
      pay.points = t.status == TccStatus::kOk ? t.amount : 0;
      pay.state = kPoints;
    }
  }
  if ((pay.state == kPoints || pay.state == kPrepared) && pay.amount - pay.points > 0) {
    MigResolve w{pay.key + "/w", true};
    auto fn = [w](CashbackWallet& s) { return s.Rollback(w); };
    auto r = co_await ctx_.Call<CashbackWallet>(config_.wallet, "wallet.Rollback",
                                                config_.rpc_timeout, fn);
    if (!r.ok()) {
      co_return false;
    }
    if (pay.state == kPrepared && r.value.status == MigStatus::kInvalid) {
      // The wallet refuses to release a hold it committed: a Commit reached
      // it and its answer was lost. The payment is committed; its points
      // stay spent.
      pay.state = kCommitted;
      SavePay(pay);
      co_return false;
    }
  }
  if (pay.state == kPoints || pay.state == kPrepared) {
    Refund(pay);
  }
  pay.state = final_state == kExpiredPay && prepared ? kExpiredPrepared : final_state;
  SavePay(pay);
  co_return true;
}

asio::awaitable<MigReply> PointHome::ResolvePay(MigResolve r, bool commit) {
  const KeyGuard guard(busy_, r.key);
  if (!guard.held()) {
    co_return Status(MigStatus::kUnavailable);
  }
  std::optional<Pay> pay = LoadPay(r.key);
  switch (pay->state) {
    case kPrepared:
      if (commit) {
        if (pay->amount - pay->points > 0) {
          MigResolve w{pay->key + "/w", true};
          auto fn = [w](CashbackWallet& s) { return s.Commit(w); };
          auto a = co_await ctx_.Call<CashbackWallet>(config_.wallet, "wallet.Commit",
                                                      config_.rpc_timeout, fn);
          if (!a.ok()) {
            co_return Status(MigStatus::kUnavailable);
          }
          if (a.value.status == MigStatus::kExpired) {
            if (!co_await Release(*pay, kExpiredPay)) {
              co_return Status(MigStatus::kUnavailable);
            }
            co_return ReplyOf(*pay);
          }
          if (a.value.status != MigStatus::kOk) {
            co_return Status(MigStatus::kInvalid);
          }
        }
        pay->state = kCommitted;
        SavePay(*pay);
        co_return ReplyOf(*pay);
      }
      if (!co_await Release(*pay, kRolledBackPrepared)) {
        co_return Status(MigStatus::kUnavailable);
      }
      co_return Status(MigStatus::kOk);
    case kCommitted:
      if (!commit && config_.defect_rollback_of_committed_ok) {
        co_return Status(MigStatus::kOk);
      }
      co_return commit ? ReplyOf(*pay) : Status(MigStatus::kInvalid);
    case kExpiredPay:
    case kExpiredPrepared:
      co_return commit ? ReplyOf(*pay) : Status(MigStatus::kOk);
    case kRolledBack:
    case kRolledBackPrepared:
    case kDeclined:
      co_return commit ? Status(MigStatus::kInvalid) : Status(MigStatus::kOk);
    default:
      // The prepare never finished.
      if (commit) {
        co_return Status(MigStatus::kInvalid);
      }
      if (!co_await Release(*pay, kRolledBack)) {
        co_return Status(MigStatus::kUnavailable);
      }
      co_return Status(MigStatus::kOk);
  }
}

asio::awaitable<MigReply> PointHome::Commit(MigResolve r) {
  Live();
  const bool tracked = !config_.defect_no_attempt_tracking && AttemptProxied(r.key);
  if (tracked || (!LoadPay(r.key) && !r.forwarded)) {
    MigResolve f{r.key, true};
    auto fn = [f](CashbackWallet& w) { return w.Commit(f); };
    auto a = co_await ctx_.Call<CashbackWallet>(config_.wallet, "wallet.Commit",
                                                config_.rpc_timeout, fn);
    co_return a.ok() ? a.value : Status(MigStatus::kUnavailable);
  }
  if (!LoadPay(r.key)) {
    co_return Status(MigStatus::kUnknown);
  }
  co_return co_await ResolvePay(r, true);
}

asio::awaitable<MigReply> PointHome::Rollback(MigResolve r) {
  Live();
  const bool tracked = !config_.defect_no_attempt_tracking && AttemptProxied(r.key);
  if (tracked || (!LoadPay(r.key) && !r.forwarded)) {
    MigResolve f{r.key, true};
    auto fn = [f](CashbackWallet& w) { return w.Rollback(f); };
    auto a = co_await ctx_.Call<CashbackWallet>(config_.wallet, "wallet.Rollback",
                                                config_.rpc_timeout, fn);
    co_return a.ok() ? a.value : Status(MigStatus::kUnavailable);
  }
  if (!LoadPay(r.key)) {
    co_return Status(MigStatus::kUnknown);
  }
  co_return co_await ResolvePay(r, false);
}

asio::awaitable<MigReply> PointHome::Earn(MigCredit c) {
  if (!c.forwarded) {
    const MigStatus admitted =
        co_await AdmitRequest(ctx_, config_.controller, config_.rpc_timeout, c.user, true);
    if (admitted != MigStatus::kOk) {
      co_return Status(admitted);
    }
  }
  Live();
  const bool tracked = !config_.defect_no_attempt_tracking && AttemptProxied(c.key);
  if (!tracked && Activated(c.user)) {
    // A CASHBACK credit, made here: it expires as it would in the wallet.
    const sim::Time expires = config_.cashback_expires_after > 0 && !config_.defect_drop_expiry
                                  ? ctx_.Now() + config_.cashback_expires_after
                                  : kNever;
    const GrantReply g = Live().GrantConfirmed(c.key, c.user, c.amount, expires, ctx_.Now());
    MigReply r;
    r.status = g.status == GrantStatus::kOk ? MigStatus::kOk : MigStatus::kInvalid;
    r.id = g.lot_id;
    r.amount = g.amount;
    co_return r;
  }
  if (c.forwarded) {
    co_return Status(MigStatus::kMoved);
  }
  if (tracked && Activated(c.user)) {
    Count("duplicates_prevented");
  }
  RecordAttempt(c.key, c.user);
  MigCredit f = c;
  f.forwarded = true;
  auto fn = [f](CashbackWallet& w) { return w.Earn(f); };
  auto a =
      co_await ctx_.Call<CashbackWallet>(config_.wallet, "wallet.Earn", config_.rpc_timeout, fn);
  if (!a.ok()) {
    co_return Status(MigStatus::kUnavailable);
  }
  if (a.value.status == MigStatus::kMoved) {
    ForgetAttempt(c.key);
    co_return Status(MigStatus::kUnavailable);
  }
  co_return a.value;
}

asio::awaitable<MigReply> PointHome::Lookup(uint64_t id) {
  Live();
  if ((id & 1) == 0) {
    // An even ID is the wallet's (ID exclusivity): ask it.
    auto fn = [id](CashbackWallet& w) { return w.Lookup(id); };
    auto a = co_await ctx_.Call<CashbackWallet>(config_.wallet, "wallet.Lookup",
                                                config_.rpc_timeout, fn);
    co_return a.ok() ? a.value : Status(MigStatus::kUnavailable);
  }
  sim::Statement q(ctx_.db(), "SELECT key FROM pays WHERE id = ?");
  q.Bind(1, static_cast<int64_t>(id));
  MigReply r;
  if (q.Step()) {
    r.id = id;
    r.key = std::string(q.Text(0));
  } else {
    r.status = MigStatus::kUnknown;
  }
  co_return r;
}

asio::awaitable<bool> PointHome::Activate(ActivateRequest r) {
  sim::Database& db = ctx_.db();
  for (size_t i = 0; i < r.users.size(); ++i) {
    const int64_t u = r.users[i];
    sim::Statement got(db, "SELECT amount, grant_key FROM activated WHERE user_id = ?");
    got.Bind(1, u);
    std::string key;
    int64_t amount = 0;
    std::vector<ValueTerm> terms;
    if (got.Step()) {
      // Activated before (a retry): the same lots again, idempotently.
      amount = got.Int(0);
      key = std::string(got.Text(1));
      sim::Statement t(db,
                       "SELECT amount, expires_at FROM activated_terms WHERE user_id = ? ORDER "
                       "BY seq");
      t.Bind(1, u);
      while (t.Step()) {
        terms.push_back(ValueTerm{t.Int(0), t.Int(1)});
      }
    } else {
      amount = r.amounts.at(i);
      terms = Kept(r.terms.at(i));
      sim::Statement copy(db, "SELECT balance FROM copies WHERE user_id = ?");
      copy.Bind(1, u);
      if (copy.Step() && copy.Int(0) != amount) {
        // The copy drifted from the old balance (a lost or late dual-write).
        Count("switch_inconsistencies");
        if (config_.defect_trust_copy) {
          amount = copy.Int(0);
          terms = amount > 0 ? std::vector<ValueTerm>{ValueTerm{amount, kNever}}
                             : std::vector<ValueTerm>{};
        }
      }
      key = fmt::format("migrate/{}/{}", u, r.attempt);
      sim::Statement put(db, "INSERT INTO activated VALUES(?, ?, ?, ?)");
      put.Bind(1, u).Bind(2, amount).Bind(3, key).Bind(4, ctx_.Now()).Exec();
      sim::Statement put_term(db, "INSERT INTO activated_terms VALUES(?, ?, ?, ?)");
      for (size_t k = 0; k < terms.size(); ++k) {
        put_term.Bind(1, u)
            .Bind(2, static_cast<int64_t>(k))
            .Bind(3, terms[k].amount)
            .Bind(4, terms[k].expires_at)
            .Exec();
      }
    }
    if (amount > 0) {
      const GrantReply g = Live().ReceiveValue(key, u, terms, ctx_.Now());
      PAYLAB_CHECK(g.status == GrantStatus::kOk);
      PAYLAB_CHECK(g.amount == amount);
    }
  }
  co_return true;
}

asio::awaitable<std::vector<std::vector<ValueTerm>>> PointHome::Copy(CopiesRequest r) {
  std::vector<std::vector<ValueTerm>> out;
  out.reserve(r.users.size());
  for (size_t i = 0; i < r.users.size(); ++i) {
    const int64_t u = r.users[i];
    // Answers what it was asked to copy once every lot is made (the
    // verification compares that with the wallet).
    std::vector<ValueTerm> copied = r.terms.at(i);
    const std::vector<ValueTerm> lots = Kept(r.terms.at(i));
    for (size_t k = 0; k < lots.size(); ++k) {
      const GrantReply g =
          Live().GrantProvisional(fmt::format("migrate/{}/{}/{}", u, r.attempt, k), u,
                                  lots[k].amount, lots[k].expires_at, ctx_.Now());
      if (g.status != GrantStatus::kOk) {
        copied = {ValueTerm{-1, 0}};
      }
    }
    out.push_back(std::move(copied));
  }
  co_return out;
}

std::vector<std::string> PointHome::CopyKeys(int64_t user, int64_t attempt) {
  std::vector<std::string> keys;
  for (int64_t k = 0;; ++k) {
    std::string key = fmt::format("migrate/{}/{}/{}", user, attempt, k);
    sim::Statement lot(ctx_.db(), "SELECT 1 FROM point_lots WHERE grant_key = ?");
    lot.Bind(1, key);
    if (!lot.Step()) {
      return keys;
    }
    keys.push_back(std::move(key));
  }
}

asio::awaitable<bool> PointHome::ConfirmCopies(CopiesRequest r) {
  sim::Database& db = ctx_.db();
  for (int64_t u : r.users) {
    int64_t amount = 0;
    const std::vector<std::string> keys = CopyKeys(u, r.attempt);
    for (const std::string& key : keys) {
      sim::Statement lot(db, "SELECT amount FROM point_lots WHERE grant_key = ?");
      lot.Bind(1, key);
      amount += lot.Step() ? lot.Int(0) : 0;
    }
    sim::Statement put(db, "INSERT OR IGNORE INTO activated VALUES(?, ?, ?, ?)");
    put.Bind(1, u)
        .Bind(2, amount)
        .Bind(3, fmt::format("migrate/{}/{}", u, r.attempt))
        .Bind(4, ctx_.Now())
        .Exec();
    for (const std::string& key : keys) {
      const GrantReply g = Live().ConfirmGrant(key, ctx_.Now());
      PAYLAB_CHECK(g.status == GrantStatus::kOk);
    }
  }
  co_return true;
}

asio::awaitable<bool> PointHome::RevokeCopies(CopiesRequest r) {
  for (int64_t u : r.users) {
    if (!Activated(u)) {
      for (const std::string& key : CopyKeys(u, r.attempt)) {
        Live().RevokeGrant(key, ctx_.Now());
      }
    }
  }
  co_return true;
}

asio::awaitable<MigReply> PointHome::ForwardIn(MigCredit c) {
  const GrantReply g = Live().ReceiveValue(c.key, c.user, Kept(c.terms), ctx_.Now());
  MigReply r;
  r.status =
      g.status == GrantStatus::kOk && g.amount == c.amount ? MigStatus::kOk : MigStatus::kInvalid;
  r.amount = g.amount;
  if (r.status == MigStatus::kOk) {
    Count("forwards_in");
  }
  co_return r;
}

bool PointHome::ApplyDualWrite(std::string_view payload) {
  int64_t user = 0;
  int64_t balance = 0;
  uint64_t movement = 0;
  if (!DecodeCashbackChange(payload, &user, &balance, &movement)) {
    return false;  // poison: left for the dead-letter queue
  }
  if (Activated(user)) {
    return true;  // the copy is retired once the user lives here
  }
  ctx_.db();
  st_->copy_apply.Bind(1, balance)
      .Bind(2, static_cast<int64_t>(movement))
      .Bind(3, user)
      .Bind(4, static_cast<int64_t>(movement))
      .Exec();
  Count("dual_writes_applied");
  return true;
}

asio::awaitable<void> PointHome::ReconcileLoop() {
  for (;;) {
    co_await ctx_.Sleep(config_.reconcile_interval);
    const int64_t lo = reconcile_cursor_;
    const int64_t hi = std::min(config_.users, lo + config_.reconcile_batch - 1);
    reconcile_cursor_ = hi >= config_.users ? 1 : hi + 1;
    std::vector<int64_t> users;
    std::vector<int64_t> copies;
    {
      sim::Statement q(ctx_.db(),
                       "SELECT c.user_id, c.balance FROM copies c LEFT JOIN activated a ON "
                       "a.user_id = c.user_id WHERE c.user_id BETWEEN ? AND ? AND a.user_id IS "
                       "NULL ORDER BY c.user_id");
      q.Bind(1, lo).Bind(2, hi);
      while (q.Step()) {
        users.push_back(q.Int(0));
        copies.push_back(q.Int(1));
      }
    }
    if (hi >= config_.users) {
      Count("recon_passes");
    }
    if (users.empty()) {
      continue;
    }
    auto fn = [users](CashbackWallet& w) { return w.CashbackBalances(users); };
    auto r = co_await ctx_.Call<CashbackWallet>(config_.wallet, "wallet.CashbackBalances",
                                                config_.rpc_timeout, fn);
    if (!r.ok()) {
      continue;
    }
    for (size_t i = 0; i < users.size(); ++i) {
      const int64_t u = users[i];
      const int64_t wallet = r.value.at(i);
      auto it = suspects_.find(u);
      if (copies[i] == wallet) {
        if (it != suspects_.end()) {
          suspects_.erase(it);
        }
        continue;
      }
      if (it != suspects_.end() && it->second == std::pair{wallet, copies[i]} && !Activated(u)) {
        // The same difference twice, neither side changed in between: no
        // dual-write was in flight for it. Repair the copy.
        sim::Statement up(ctx_.db(), "UPDATE copies SET balance = ? WHERE user_id = ?");
        up.Bind(1, wallet).Bind(2, u).Exec();
        Count("recon_differences");
        Count("recon_repairs");
        ctx_.Trace(sim::TraceKind::kNote, "point.recon_repair", u, wallet - copies[i]);
        suspects_.erase(it);
      } else {
        suspects_[u] = {wallet, copies[i]};
      }
    }
  }
}

asio::awaitable<void> PointHome::ExpiryLoop() {
  for (;;) {
    co_await ctx_.Sleep(config_.expiry_scan_interval);
    Live().ExpireHolds(ctx_.Now(), 1000);
    // Migrated value keeps its expiry: what expired goes to BREAKAGE here,
    // as it would have in the wallet.
    Live().ExpireLots(ctx_.Now(), 1000);
    std::vector<std::string> keys;
    {
      sim::Statement q(ctx_.db(),
                       "SELECT key FROM pays WHERE state < 3 AND expires_at < ? ORDER BY "
                       "expires_at, key LIMIT 100");
      q.Bind(1, ctx_.Now() - config_.expiry_grace);
      while (q.Step()) {
        keys.emplace_back(q.Text(0));
      }
    }
    for (const std::string& k : keys) {
      const KeyGuard guard(busy_, k);
      std::optional<Pay> pay = LoadPay(k);
      if (guard.held() && pay && pay->state < kCommitted) {
        co_await Release(*pay, kExpiredPay);
      }
    }
  }
}

void PointHome::OnPointMovement(const PointMovementRecord& m) {
  TracePointMovement(ctx_, m);
  if (observer_ != nullptr) {
    observer_->OnPointMovement(m);
  }
}

void PointHome::OnPointApplied(const PointApplied& a) {
  if (observer_ != nullptr) {
    observer_->OnPointApplied(a);
  }
}

}  // namespace paylab::system
