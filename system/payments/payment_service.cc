// Implementation of the payment service (see payment.h).
#include "system/payments/payment_service.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <vector>

#include "sim/check.h"
#include "system/common/config_table.h"
#include "system/common/id_lease.h"
#include "system/payments/partner.h"
#include "system/points/point_service.h"
#include "system/wallet/wallet.h"

namespace paylab::system {

std::string_view ResourceStatusName(ResourceStatus s) {
  switch (s) {
    case ResourceStatus::kWip:
      return "wip";
    case ResourceStatus::kWait:
      return "wait";
    case ResourceStatus::kFailed:
      return "failed";
  }
  return "?";
}

std::string_view PaymentOpName(PaymentOp op) {
  switch (op) {
    case PaymentOp::kCreate:
      return "create";
    case PaymentOp::kCapture:
      return "capture";
    case PaymentOp::kVoid:
      return "void";
    case PaymentOp::kGet:
      return "get";
  }
  return "?";
}

std::string_view PaymentFactKindName(PaymentFactKind k) {
  switch (k) {
    case PaymentFactKind::kAnswered:
      return "answered";
    case PaymentFactKind::kCreated:
      return "created";
    case PaymentFactKind::kStarted:
      return "started";
    case PaymentFactKind::kFinalized:
      return "finalized";
    case PaymentFactKind::kGaveUp:
      return "gave_up";
    case PaymentFactKind::kCleared:
      return "cleared";
  }
  return "?";
}

namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS payments(
  id INTEGER PRIMARY KEY,
  order_key TEXT NOT NULL UNIQUE,
  flow INTEGER NOT NULL,
  payer INTEGER NOT NULL,
  payee INTEGER NOT NULL,
  amount INTEGER NOT NULL,
  partner_amount INTEGER NOT NULL,
  point_amount INTEGER NOT NULL,
  wallet_amount INTEGER NOT NULL,
  status INTEGER NOT NULL,
  resource_status INTEGER NOT NULL,
  request INTEGER NOT NULL,
  phase INTEGER NOT NULL,
  rollback_phase INTEGER NOT NULL,
  reason TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS payments_wip ON payments(resource_status, created_at);
CREATE TABLE IF NOT EXISTS pay_accounts(
  owner INTEGER NOT NULL, account INTEGER NOT NULL, balance INTEGER NOT NULL,
  PRIMARY KEY(owner, account)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pay_journal(
  seq INTEGER PRIMARY KEY, movement INTEGER NOT NULL, owner INTEGER NOT NULL,
  account INTEGER NOT NULL, delta INTEGER NOT NULL, at INTEGER NOT NULL, payment_id INTEGER);
CREATE INDEX IF NOT EXISTS pay_journal_sales ON pay_journal(owner, seq)
  WHERE account = 4 AND delta > 0;
CREATE TABLE IF NOT EXISTS pay_clearing_items(
  credit_seq INTEGER PRIMARY KEY, clearing INTEGER NOT NULL, payment_id INTEGER NOT NULL);
)sql";

constexpr std::string_view kColumns =
    "id, order_key, flow, payer, payee, amount, partner_amount, point_amount, wallet_amount, "
    "status, resource_status, request, phase, rollback_phase, reason, created_at, updated_at";

// The participants a flow uses, in the order their Tries run.
struct Sequence {
  std::array<uint8_t, 3> parts{};
  int64_t n = 0;
};

}  // namespace

struct PaymentService::Stmts {
  explicit Stmts(sim::Database& db)
      : meta_get(db, "SELECT value FROM meta WHERE key = ?"),
        meta_put(db,
                 "INSERT INTO meta(key, value) VALUES(?, ?) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
        by_id(db, fmt::format("SELECT {} FROM payments WHERE id = ?", kColumns)),
        by_key(db, fmt::format("SELECT {} FROM payments WHERE order_key = ?", kColumns)),
        insert(db, fmt::format("INSERT INTO payments({}) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                               "?, ?, ?, ?, ?, ?)",
                               kColumns)),
        update(db,
               "UPDATE payments SET point_amount = ?, wallet_amount = ?, status = ?, "
               "resource_status = ?, request = ?, phase = ?, rollback_phase = ?, reason = ?, "
               "updated_at = ? WHERE id = ?"),
        wip(db,
            "SELECT id FROM payments WHERE resource_status = 0 AND created_at >= ? ORDER BY id"),
        account_add(db,
                    "INSERT INTO pay_accounts(owner, account, balance) VALUES(?, ?, ?) "
                    "ON CONFLICT(owner, account) DO UPDATE SET balance = balance + "
                    "excluded.balance"),
        journal_add(db,
                    "INSERT INTO pay_journal(movement, owner, account, delta, at, payment_id) "
                    "VALUES(?, ?, ?, ?, ?, ?)"),
        unsettled(db,
                  "SELECT owner, balance FROM pay_accounts WHERE account = 4 AND balance > 0 "
                  "ORDER BY owner LIMIT 100"),
        uncleared(db,
                  "SELECT seq, payment_id, delta FROM pay_journal j WHERE account = 4 AND "
                  "delta > 0 AND owner = ? AND NOT EXISTS (SELECT 1 FROM pay_clearing_items c "
                  "WHERE c.credit_seq = j.seq) ORDER BY seq"),
        clearing_item(db,
                      "INSERT INTO pay_clearing_items(credit_seq, clearing, payment_id) "
                      "VALUES(?, ?, ?)"),
        last_rowid(db, "SELECT last_insert_rowid()") {}
  sim::Statement meta_get, meta_put, by_id, by_key, insert, update, wip, account_add, journal_add,
      unsettled, uncleared, clearing_item, last_rowid;
};

PaymentService::PaymentService(sim::NodeContext& ctx, const PaymentConfig& config,
                               PaymentCounters* counters)
    : ctx_(ctx), config_(config), rng_(ctx.Stream("payment")), counters_(*counters) {}

PaymentService::~PaymentService() = default;

sim::Database& PaymentService::Db() { return ctx_.db(); }

asio::awaitable<void> PaymentService::Boot() {
  sim::Database& db = Db();
  db.ExecScript(kSchema);
  st_ = std::make_unique<Stmts>(db);
  StoreSettings();
  outbox_ = std::make_unique<Outbox>(db);
  sim::Transaction txn(db);
  ids_ = OpenLeasedIdGenerator(IdSystem::kWallet, config_.id_worker, st_->meta_get, st_->meta_put);
  txn.Commit();
  ctx_.Spawn(QueueLoop());
  if (config_.batch_interval > 0) {
    ctx_.Spawn(BatchLoop());
  }
  if (config_.clearing_interval > 0) {
    ctx_.Spawn(ClearingLoop());
  }
  if (config_.publish) {
    relay_source_ = OutboxSource(ctx_, *outbox_);
    ctx_.Spawn(RelayOutbox(ctx_, relay_source_, config_.relay));
  }
  co_return;
}

void PaymentService::StoreSettings() {
  const PaymentConfig& c = config_;
  StoreConfig(Db(), {
                        {"fee_bp", c.fee_bp},
                        {"clearing_interval_ns", c.clearing_interval},
                        {"hold_ttl_ns", c.hold_ttl},
                        {"rpc_timeout_ns", c.rpc_timeout},
                        {"partner_timeout_ns", c.partner_timeout},
                        {"worker_attempts_max", int64_t{c.worker_attempts_max}},
                        {"worker_backoff_min_ns", c.worker_backoff_min},
                        {"worker_backoff_max_ns", c.worker_backoff_max},
                        {"queue_backoff_min_ns", c.queue_backoff_min},
                        {"queue_backoff_max_ns", c.queue_backoff_max},
                        {"batch_interval_ns", c.batch_interval},
                        {"recovery_horizon_ns", c.recovery_horizon},
                        {"id_worker", int64_t{c.id_worker}},
                    });
}

uint64_t PaymentService::NextId() {
  return ids_->Next(config_.clock_origin_unix_ms + ctx_.Now() / sim::kMillisecond);
}

namespace {

PaymentRow ReadRow(sim::Statement& s) {
  PaymentRow r;
  r.id = static_cast<uint64_t>(s.Int(0));
  r.order_key = std::string(s.Text(1));
  r.flow = static_cast<PaymentFlow>(s.Int(2));
  r.payer = s.Int(3);
  r.payee = s.Int(4);
  r.amount = s.Int(5);
  r.partner_amount = s.Int(6);
  r.point_amount = s.Int(7);
  r.wallet_amount = s.Int(8);
  r.status = static_cast<PaymentStatus>(s.Int(9));
  r.resource_status = static_cast<ResourceStatus>(s.Int(10));
  r.request = static_cast<PaymentRequestKind>(s.Int(11));
  r.phase = s.Int(12);
  r.rollback_phase = s.Int(13);
  r.reason = std::string(s.Text(14));
  r.created_at = s.Int(15);
  r.updated_at = s.Int(16);
  // A row this service wrote: every stored enum in range, every step and
  // amount within what a payment can have.
  PAYLAB_CHECK(s.Int(2) >= 1 && s.Int(2) <= 3);    // flow
  PAYLAB_CHECK(s.Int(9) >= 0 && s.Int(9) <= 4);    // status
  PAYLAB_CHECK(s.Int(10) >= 0 && s.Int(10) <= 2);  // resource_status
  PAYLAB_CHECK(s.Int(11) >= 0 && s.Int(11) <= 2);  // request
  PAYLAB_CHECK(r.phase >= 0 && r.rollback_phase >= 0);
  PAYLAB_CHECK(r.amount > 0 && r.partner_amount >= 0 && r.point_amount >= 0 &&
               r.wallet_amount >= 0);
  PAYLAB_CHECK(r.updated_at >= r.created_at);
  return r;
}

Sequence SequenceOf(const PaymentRow& row) {
  // 0: partner, 1: points, 2: wallet (the Participant enum's order).
  Sequence s;
  if (row.flow == PaymentFlow::kP2p) {
    s.parts[s.n++] = 2;
    return s;
  }
  if (row.partner_amount > 0) {
    s.parts[s.n++] = 0;
  }
  s.parts[s.n++] = 1;
  s.parts[s.n++] = 2;
  return s;
}

}  // namespace

std::optional<PaymentRow> PaymentService::Load(uint64_t id) {
  Db();
  st_->by_id.Bind(1, static_cast<int64_t>(id));
  std::optional<PaymentRow> row;
  if (st_->by_id.Step()) {
    row = ReadRow(st_->by_id);
  }
  st_->by_id.Reset();
  return row;
}

std::optional<PaymentRow> PaymentService::LoadByKey(std::string_view order_key) {
  Db();
  st_->by_key.Bind(1, order_key);
  std::optional<PaymentRow> row;
  if (st_->by_key.Step()) {
    row = ReadRow(st_->by_key);
  }
  st_->by_key.Reset();
  return row;
}

void PaymentService::Save(const PaymentRow& r) {
  st_->update.Bind(1, r.point_amount)
      .Bind(2, r.wallet_amount)
      .Bind(3, static_cast<int64_t>(r.status))
      .Bind(4, static_cast<int64_t>(r.resource_status))
      .Bind(5, static_cast<int64_t>(r.request))
      .Bind(6, r.phase)
      .Bind(7, r.rollback_phase)
      .Bind(8, r.reason)
      .Bind(9, ctx_.Now())
      .Bind(10, static_cast<int64_t>(r.id))
      .Exec();
}

void PaymentService::AddJournal(uint64_t movement, int64_t owner, PayAccount account, int64_t delta,
                                uint64_t payment) {
  if (delta == 0) {
    return;
  }
  st_->account_add.Bind(1, owner).Bind(2, static_cast<int64_t>(account)).Bind(3, delta).Exec();
  st_->journal_add.Bind(1, static_cast<int64_t>(movement))
      .Bind(2, owner)
      .Bind(3, static_cast<int64_t>(account))
      .Bind(4, delta)
      .Bind(5, ctx_.Now());
  if (payment == 0) {
    st_->journal_add.BindNull(6);
  } else {
    st_->journal_add.Bind(6, static_cast<int64_t>(payment));
  }
  st_->journal_add.Exec();
  if (config_.audit != nullptr) {
    PAYLAB_CHECK(st_->last_rowid.Step());
    const int64_t seq = st_->last_rowid.Int(0);
    st_->last_rowid.Reset();
    audit_rows_.push_back(PayJournalRow{seq, movement, owner, account, delta, payment});
  }
}

void PaymentService::Report(PaymentApplied a) {
  if (config_.audit == nullptr) {
    return;
  }
  a.at = ctx_.Now();
  config_.audit->OnPaymentApplied(a);
}

PaymentReply PaymentService::Answered(PaymentOp op, std::string_view order_key,
                                      const CreatePaymentRequest* create, PaymentReply reply) {
  Report(PaymentApplied{.kind = PaymentFactKind::kAnswered,
                        .op = op,
                        .order_key = order_key,
                        .create = create,
                        .reply = reply});
  return reply;
}

void PaymentService::ReportRow(PaymentFactKind kind, const PaymentRow& row) {
  if (config_.audit == nullptr) {
    return;
  }
  Report(PaymentApplied{.kind = kind, .row = &row, .journal = audit_rows_});
  audit_rows_.clear();
}

PaymentReply PaymentService::ReplyOf(const PaymentRow& row) const {
  PaymentReply r;
  r.payment_id = row.id;
  r.payment_status = row.status;
  r.in_progress = row.resource_status == ResourceStatus::kWip;
  return r;
}

namespace {

PaymentReply Refuse(std::string_view reason) {
  PaymentReply r;
  r.status = PaymentReplyStatus::kRefused;
  r.reason = reason;
  return r;
}

std::string_view CheckCreate(const CreatePaymentRequest& r) {
  if (r.order_key.empty() || r.order_key.find('|') != std::string::npos) {
    return "the order key must be non-empty and must not contain '|'";
  }
  if (r.flow != PaymentFlow::kCharge && r.flow != PaymentFlow::kEscrow &&
      r.flow != PaymentFlow::kP2p) {
    return "unknown payment flow";
  }
  if (r.payer <= 0 || r.payee <= 0) {
    return "payer and payee must be positive ids";
  }
  if (r.flow == PaymentFlow::kP2p && r.payer == r.payee) {
    return "a P2P transfer needs two different users";
  }
  if (r.amount <= 0) {
    return "the amount must be positive";
  }
  if (r.partner_amount < 0 || r.partner_amount > r.amount) {
    return "the partner amount must be within [0, amount]";
  }
  if (r.partner_amount > 0 && r.flow != PaymentFlow::kEscrow) {
    return "only escrows take partner points";
  }
  return {};
}

}  // namespace

asio::awaitable<PaymentReply> PaymentService::Create(CreatePaymentRequest r) {
  if (const std::string_view bad = CheckCreate(r); !bad.empty()) {
    co_return Answered(PaymentOp::kCreate, r.order_key, &r, Refuse(bad));
  }
  std::optional<PaymentRow> row = LoadByKey(r.order_key);
  if (row) {
    if (row->flow != r.flow || row->payer != r.payer || row->payee != r.payee ||
        row->amount != r.amount || row->partner_amount != r.partner_amount) {
      co_return Answered(PaymentOp::kCreate, r.order_key, &r,
                         Refuse("the order key was used with other parameters"));
    }
  } else {
    sim::Database& db = Db();
    sim::Transaction txn(db);
    PaymentRow p;
    p.id = NextId();
    p.order_key = r.order_key;
    p.flow = r.flow;
    p.payer = r.payer;
    p.payee = r.payee;
    p.amount = r.amount;
    p.partner_amount = r.partner_amount;
    p.created_at = p.updated_at = ctx_.Now();
    st_->insert.Bind(1, static_cast<int64_t>(p.id))
        .Bind(2, p.order_key)
        .Bind(3, static_cast<int64_t>(p.flow))
        .Bind(4, p.payer)
        .Bind(5, p.payee)
        .Bind(6, p.amount)
        .Bind(7, p.partner_amount)
        .Bind(8, int64_t{0})
        .Bind(9, int64_t{0})
        .Bind(10, static_cast<int64_t>(PaymentStatus::kCreated))
        .Bind(11, static_cast<int64_t>(ResourceStatus::kWip))
        .Bind(12, static_cast<int64_t>(PaymentRequestKind::kCreate))
        .Bind(13, int64_t{0})
        .Bind(14, int64_t{0})
        .Bind(15, p.reason)
        .Bind(16, p.created_at)
        .Bind(17, p.updated_at)
        .Exec();
    txn.Commit();
    ++counters_.created;
    ctx_.Trace(sim::TraceKind::kCommit, "payment.create", static_cast<int64_t>(p.id), p.amount);
    ReportRow(PaymentFactKind::kCreated, p);
    row = std::move(p);
  }
  if (row->resource_status == ResourceStatus::kWip) {
    co_await Drive(row->id);
    row = Load(row->id);
  }
  co_return Answered(PaymentOp::kCreate, r.order_key, &r, ReplyOf(*row));
}

asio::awaitable<PaymentReply> PaymentService::Capture(std::string order_key) {
  constexpr PaymentOp kOp = PaymentOp::kCapture;
  std::optional<PaymentRow> row = LoadByKey(order_key);
  if (!row) {
    co_return Answered(kOp, order_key, nullptr, Refuse("no payment with this order key"));
  }
  if (row->resource_status == ResourceStatus::kWait && row->status == PaymentStatus::kAuthorized) {
    if (row->flow == PaymentFlow::kP2p) {
      co_return Answered(kOp, order_key, nullptr,
                         Refuse("a P2P transfer is captured when created"));
    }
    sim::Transaction txn(Db());
    row->request = PaymentRequestKind::kCapture;
    row->resource_status = ResourceStatus::kWip;
    row->phase = 0;
    row->rollback_phase = 0;
    Save(*row);
    txn.Commit();
    ReportRow(PaymentFactKind::kStarted, *row);
  } else if (row->resource_status != ResourceStatus::kWip &&
             row->status != PaymentStatus::kCaptured) {
    co_return Answered(kOp, order_key, nullptr, Refuse("the payment is not authorized"));
  } else if (row->resource_status == ResourceStatus::kWip &&
             row->request != PaymentRequestKind::kCapture) {
    // Another request is in progress: the caller asks again later.
    co_return Answered(kOp, order_key, nullptr, ReplyOf(*row));
  }
  if (row->resource_status == ResourceStatus::kWip) {
    co_await Drive(row->id);
    row = Load(row->id);
  }
  co_return Answered(kOp, order_key, nullptr, ReplyOf(*row));
}

asio::awaitable<PaymentReply> PaymentService::Void(std::string order_key) {
  constexpr PaymentOp kOp = PaymentOp::kVoid;
  std::optional<PaymentRow> row = LoadByKey(order_key);
  if (!row) {
    co_return Answered(kOp, order_key, nullptr, Refuse("no payment with this order key"));
  }
  if (row->resource_status == ResourceStatus::kWait && row->status == PaymentStatus::kAuthorized) {
    if (row->flow == PaymentFlow::kP2p) {
      co_return Answered(kOp, order_key, nullptr, Refuse("a P2P transfer cannot be voided"));
    }
    sim::Transaction txn(Db());
    row->request = PaymentRequestKind::kVoid;
    row->resource_status = ResourceStatus::kWip;
    row->phase = 0;
    row->rollback_phase = 0;
    Save(*row);
    txn.Commit();
    ReportRow(PaymentFactKind::kStarted, *row);
  } else if (row->status == PaymentStatus::kCaptured) {
    co_return Answered(kOp, order_key, nullptr, Refuse("a captured payment cannot be voided"));
  } else if (row->resource_status == ResourceStatus::kWip &&
             row->request != PaymentRequestKind::kVoid) {
    // busy: the caller asks again later
    co_return Answered(kOp, order_key, nullptr, ReplyOf(*row));
  }
  if (row->resource_status == ResourceStatus::kWip) {
    co_await Drive(row->id);
    row = Load(row->id);
  }
  co_return Answered(kOp, order_key, nullptr, ReplyOf(*row));
}

asio::awaitable<PaymentReply> PaymentService::Get(std::string order_key) {
  std::optional<PaymentRow> row = LoadByKey(order_key);
  if (!row) {
    co_return Answered(PaymentOp::kGet, order_key, nullptr,
                       Refuse("no payment with this order key"));
  }
  co_return Answered(PaymentOp::kGet, order_key, nullptr, ReplyOf(*row));
}

bool PaymentService::PrefersRollback(const PaymentRow& row) const {
  return row.flow == PaymentFlow::kEscrow && row.partner_amount > 0 &&
         row.request == PaymentRequestKind::kCreate && row.rollback_phase == 0;
}

PaymentService::Step PaymentService::NextStep(const PaymentRow& row) const {
  const Sequence seq = SequenceOf(row);
  const auto part = [&](int64_t i) { return static_cast<Participant>(seq.parts[i]); };
  switch (row.request) {
    case PaymentRequestKind::kCreate: {
      if (row.rollback_phase > 0) {
        // Compensate every participant whose Try may have run, newest first.
        const int64_t attempted = std::min(row.phase + 1, seq.n);
        const int64_t done = row.rollback_phase - 1;
        if (done < attempted) {
          return Step{Action::kCancel, part(attempted - 1 - done)};
        }
        return Step{Action::kFinalize};
      }
      if (row.phase < seq.n) {
        return Step{Action::kTry, part(row.phase)};
      }
      if (row.flow == PaymentFlow::kP2p && row.phase < 2 * seq.n) {
        return Step{Action::kConfirm, part(row.phase - seq.n)};
      }
      return Step{Action::kFinalize};
    }
    case PaymentRequestKind::kCapture:
      if (row.phase < seq.n) {
        return Step{Action::kConfirm, part(row.phase)};
      }
      if (row.flow == PaymentFlow::kEscrow && row.phase == seq.n) {
        return Step{Action::kPayout};
      }
      return Step{Action::kFinalize};
    case PaymentRequestKind::kVoid:
      if (row.phase < seq.n) {
        return Step{Action::kCancel, part(seq.n - 1 - row.phase)};
      }
      return Step{Action::kFinalize};
  }
  return Step{Action::kFinalize};
}

asio::awaitable<std::optional<TccReply>> PaymentService::Call(const PaymentRow& row, Step step) {
  const std::string key = step.action == Action::kPayout
                              ? fmt::format("{}/payout", row.id)
                              : fmt::format("{}/{}", row.id,
                                            step.participant == Participant::kPartner  ? "partner"
                                            : step.participant == Participant::kPoints ? "points"
                                                                                       : "wallet");
  if (step.action == Action::kPayout) {
    PayoutRequest req{key, row.payee, row.amount};
    const auto payout = [req](Wallet& w) { return w.Payout(req); };
    auto r =
        co_await ctx_.Call<Wallet>(config_.wallet, "wallet.payout", config_.rpc_timeout, payout);
    if (!r.ok()) {
      co_return std::nullopt;
    }
    co_return TccReply{ToTcc(r.value.status), r.value.id, r.value.amount};
  }
  switch (step.participant) {
    case Participant::kWallet: {
      if (step.action == Action::kTry) {
        const int64_t rest = row.amount - row.partner_amount - row.point_amount;
        if (rest == 0) {
          co_return TccReply{TccStatus::kOk, 0, 0};  // points covered it all
        }
        const int64_t dst = row.flow == PaymentFlow::kP2p ? row.payee : 0;
        WalletTry req{TccTry{key, row.payer, rest, rest, config_.hold_ttl}, dst};
        const auto fn = [req](Wallet& w) { return w.TryHold(req); };
        auto r = co_await ctx_.Call<Wallet>(config_.wallet, "wallet.try", config_.rpc_timeout, fn);
        co_return r.ok() ? std::optional<TccReply>(r.value) : std::nullopt;
      }
      if (step.action == Action::kConfirm && row.wallet_amount == 0) {
        co_return TccReply{TccStatus::kOk, 0, 0};
      }
      const bool confirm = step.action == Action::kConfirm;
      const auto fn = [key, confirm](Wallet& w) {
        return confirm ? w.ConfirmHold(key) : w.CancelHold(key);
      };
      auto r = co_await ctx_.Call<Wallet>(
          config_.wallet, confirm ? "wallet.confirm" : "wallet.cancel", config_.rpc_timeout, fn);
      co_return r.ok() ? std::optional<TccReply>(r.value) : std::nullopt;
    }
    case Participant::kPoints: {
      if (step.action == Action::kTry) {
        TccTry req{key, row.payer, 0, row.amount - row.partner_amount, config_.hold_ttl};
        const auto fn = [req](PointService& p) { return p.TryDebit(req); };
        auto r =
            co_await ctx_.Call<PointService>(config_.point, "point.try", config_.rpc_timeout, fn);
        co_return r.ok() ? std::optional<TccReply>(r.value) : std::nullopt;
      }
      const bool confirm = step.action == Action::kConfirm;
      const auto fn = [key, confirm](PointService& p) {
        return confirm ? p.ConfirmDebit(key) : p.CancelDebit(key);
      };
      auto r = co_await ctx_.Call<PointService>(
          config_.point, confirm ? "point.confirm" : "point.cancel", config_.rpc_timeout, fn);
      co_return r.ok() ? std::optional<TccReply>(r.value) : std::nullopt;
    }
    case Participant::kPartner: {
      if (step.action == Action::kTry) {
        TccTry req{key, row.payer, row.partner_amount, row.partner_amount, config_.hold_ttl};
        const auto fn = [req](Partner& p) { return p.TryHold(req); };
        auto r = co_await ctx_.Call<Partner>(config_.partner, "partner.try",
                                             config_.partner_timeout, fn);
        co_return r.ok() ? std::optional<TccReply>(r.value) : std::nullopt;
      }
      const bool confirm = step.action == Action::kConfirm;
      const auto fn = [key, confirm](Partner& p) {
        return confirm ? p.ConfirmHold(key) : p.CancelHold(key);
      };
      auto r = co_await ctx_.Call<Partner>(config_.partner,
                                           confirm ? "partner.confirm" : "partner.cancel",
                                           config_.partner_timeout, fn);
      co_return r.ok() ? std::optional<TccReply>(r.value) : std::nullopt;
    }
  }
  co_return std::nullopt;
}

void PaymentService::StartRollback(PaymentRow& row, std::string_view reason) {
  row.rollback_phase = 1;
  row.reason = std::string(reason);
  ++counters_.rollbacks;
}

void PaymentService::Record(PaymentRow& row, Step step, const TccReply& reply) {
  switch (step.action) {
    case Action::kTry:
      if (reply.status != TccStatus::kOk) {
        StartRollback(row, TccStatusName(reply.status));
        return;
      }
      if (step.participant == Participant::kPoints) {
        row.point_amount = reply.amount;
      } else if (step.participant == Participant::kWallet) {
        row.wallet_amount = reply.amount;
      }
      PAYLAB_CHECK(step.participant != Participant::kPartner || reply.amount == row.partner_amount);
      ++row.phase;
      return;
    case Action::kConfirm:
    case Action::kPayout:
      if (reply.status != TccStatus::kOk) {
        // A confirm must never be refused: the holds outlive any capture.
        // The payment stops FAILED, and the checkers report it.
        row.resource_status = ResourceStatus::kFailed;
        row.reason =
            fmt::format("{} refused: {}", step.action == Action::kPayout ? "payout" : "confirm",
                        TccStatusName(reply.status));
        ++counters_.inconsistent;
        return;
      }
      ++row.phase;
      return;
    case Action::kCancel:
      if (reply.status != TccStatus::kOk && reply.status != TccStatus::kExpired) {
        row.resource_status = ResourceStatus::kFailed;
        row.reason = fmt::format("cancel refused: {}", TccStatusName(reply.status));
        ++counters_.inconsistent;
        return;
      }
      if (row.rollback_phase > 0) {
        ++row.rollback_phase;
      } else {
        ++row.phase;
      }
      return;
    case Action::kFinalize:
      return;
  }
}

void PaymentService::Finalize(PaymentRow& row) {
  const uint64_t movement = NextId();
  switch (row.request) {
    case PaymentRequestKind::kCreate:
      if (row.rollback_phase > 0) {
        row.status = PaymentStatus::kFailed;
        row.resource_status = ResourceStatus::kFailed;
      } else if (row.flow == PaymentFlow::kP2p) {
        row.status = PaymentStatus::kCaptured;
        row.resource_status = ResourceStatus::kWait;
      } else {
        row.status = PaymentStatus::kAuthorized;
        row.resource_status = ResourceStatus::kWait;
      }
      break;
    case PaymentRequestKind::kCapture:
      row.status = PaymentStatus::kCaptured;
      row.resource_status = ResourceStatus::kWait;
      // The participants' clearing accounts received the funds; this
      // ledger's mirrors take the opposite side, and the payee is credited.
      AddJournal(movement, 0, PayAccount::kWalletClearing, -row.wallet_amount, row.id);
      AddJournal(movement, 0, PayAccount::kPointClearing, -row.point_amount, row.id);
      AddJournal(movement, 0, PayAccount::kPartnerClearing, -row.partner_amount, row.id);
      if (row.flow == PaymentFlow::kEscrow) {
        // The seller was paid out of the wallet's clearing account.
        AddJournal(movement, 0, PayAccount::kWalletClearing, row.amount, row.id);
      } else {
        AddJournal(movement, row.payee, PayAccount::kUnsettled, row.amount, row.id);
      }
      break;
    case PaymentRequestKind::kVoid:
      row.status = PaymentStatus::kVoided;
      row.resource_status = ResourceStatus::kWait;
      break;
  }
  row.phase = 0;
  Save(row);
  if (config_.publish) {
    const PaymentEvent e{row.id, row.flow, row.status, row.payer, row.amount, row.order_key};
    outbox_->Append(kPaymentTopic, row.order_key, EncodePaymentEvent(e), ctx_.Now());
  }
}

void PaymentService::Enqueue(uint64_t id, sim::Duration delay) {
  if (!queued_.insert(id).second) {
    return;  // already waiting
  }
  queue_.emplace(ctx_.Now() + delay, id);
}

asio::awaitable<void> PaymentService::Drive(uint64_t id) {
  if (!in_flight_.insert(id).second) {
    co_return;  // another worker has it
  }
  struct Release {
    std::set<uint64_t>& set;
    uint64_t id;
    ~Release() { set.erase(id); }
  } release{in_flight_, id};
  // Every request has at most 2 * 3 + 2 steps; the bound catches a loop.
  for (int steps = 0; steps < 16; ++steps) {
    std::optional<PaymentRow> row = Load(id);
    PAYLAB_CHECK(row.has_value());
    if (row->resource_status != ResourceStatus::kWip) {
      queue_attempts_.erase(id);
      co_return;
    }
    const Step step = NextStep(*row);
    if (step.action == Action::kFinalize) {
      sim::Transaction txn(Db());
      audit_rows_.clear();
      Finalize(*row);
      txn.Commit();
      ReportRow(PaymentFactKind::kFinalized, *row);
      ctx_.Trace(sim::TraceKind::kCommit, PaymentStatusName(row->status),
                 static_cast<int64_t>(row->id), row->amount);
      continue;
    }
    std::optional<TccReply> reply;
    for (int attempt = 0; attempt < config_.worker_attempts_max; ++attempt) {
      if (attempt > 0) {
        ++counters_.worker_retries;
        const sim::Duration cap =
            std::min(config_.worker_backoff_max, config_.worker_backoff_min << (attempt - 1));
        co_await ctx_.Sleep(cap / 2 + rng_.UniformInt(0, cap / 2));
      }
      reply = co_await Call(*row, step);
      if (reply && reply->status != TccStatus::kUnavailable) {
        break;
      }
      reply.reset();
    }
    // A participant has acted and the step is not recorded yet: after a
    // crash here the recovery layers redo the step, and the participant's
    // idempotency must absorb it.
    ctx_.FaultPoint("payment.between_phases");
    // The row may have moved on while this worker waited (it never does:
    // one worker per payment), so read it again before recording.
    row = Load(id);
    if (!reply) {
      if (PrefersRollback(*row)) {
        sim::Transaction txn(Db());
        StartRollback(*row, "partner unreachable");
        Save(*row);
        txn.Commit();
        continue;
      }
      int64_t& attempts = queue_attempts_[id];
      const int shift = static_cast<int>(std::min<int64_t>(attempts, 16));
      const sim::Duration delay =
          std::min(config_.queue_backoff_max, config_.queue_backoff_min << shift);
      ++attempts;
      ++counters_.queued;
      Enqueue(id, delay);
      co_return;
    }
    sim::Transaction txn(Db());
    Record(*row, step, *reply);
    Save(*row);
    txn.Commit();
    if (row->resource_status == ResourceStatus::kFailed) {
      ReportRow(PaymentFactKind::kGaveUp, *row);
    }
  }
  PAYLAB_CHECK(false && "a payment request took more steps than it has");
}

asio::awaitable<void> PaymentService::QueueLoop() {
  for (;;) {
    co_await ctx_.Sleep(config_.queue_poll);
    while (!queue_.empty() && queue_.begin()->first <= ctx_.Now()) {
      const uint64_t id = queue_.begin()->second;
      queue_.erase(queue_.begin());
      queued_.erase(id);
      ++counters_.queue_resumed;
      ctx_.Spawn(Drive(id));
    }
  }
}

asio::awaitable<void> PaymentService::BatchLoop() {
  for (;;) {
    co_await ctx_.Sleep(config_.batch_interval);
    Db();
    std::vector<uint64_t> wip;
    st_->wip.Bind(1, ctx_.Now() - (config_.defect_batch_skips_old_wip ? config_.batch_interval
                                                                      : config_.recovery_horizon));
    while (st_->wip.Step()) {
      wip.push_back(static_cast<uint64_t>(st_->wip.Int(0)));
    }
    st_->wip.Reset();
    for (uint64_t id : wip) {
      if (!in_flight_.contains(id) && !queued_.contains(id)) {
        ++counters_.batch_requeued;
        Enqueue(id, 0);
      }
    }
  }
}

asio::awaitable<void> PaymentService::ClearingLoop() {
  for (;;) {
    co_await ctx_.Sleep(config_.clearing_interval);
    sim::Database& db = Db();
    std::vector<std::pair<int64_t, int64_t>> due;
    while (st_->unsettled.Step()) {
      due.emplace_back(st_->unsettled.Int(0), st_->unsettled.Int(1));
    }
    st_->unsettled.Reset();
    if (due.empty()) {
      continue;
    }
    sim::Transaction txn(db);
    audit_rows_.clear();
    audit_credits_.clear();
    audit_clearings_.clear();
    for (const auto& [merchant, amount] : due) {
      Clear(merchant, amount);
      ++counters_.cleared;
    }
    txn.Commit();
    ReportClearings();
  }
}

void PaymentService::ReportClearings() {
  if (config_.audit == nullptr) {
    return;
  }
  const std::span<const PayJournalRow> rows = audit_rows_;
  const std::span<const PayClearedCredit> credits = audit_credits_;
  for (size_t i = 0; i < audit_clearings_.size(); ++i) {
    const AuditClearing& c = audit_clearings_[i];
    const bool last = i + 1 == audit_clearings_.size();
    const size_t rows_to = last ? rows.size() : audit_clearings_[i + 1].rows_from;
    const size_t credits_to = last ? credits.size() : audit_clearings_[i + 1].credits_from;
    Report(PaymentApplied{.kind = PaymentFactKind::kCleared,
                          .journal = rows.subspan(c.rows_from, rows_to - c.rows_from),
                          .merchant = c.merchant,
                          .credits = credits.subspan(c.credits_from, credits_to - c.credits_from)});
  }
  audit_rows_.clear();
  audit_credits_.clear();
  audit_clearings_.clear();
}

void PaymentService::Clear(int64_t merchant, int64_t amount) {
  const int64_t fee_scaled = amount * config_.fee_bp;
  // DEFECT fee_rounded_up: the fee's fraction of a yen is taken whole.
  const int64_t fee =
      config_.defect_fee_rounded_up ? (fee_scaled + 9999) / 10000 : fee_scaled / 10000;
  if (config_.audit != nullptr) {
    audit_clearings_.push_back(AuditClearing{merchant, audit_rows_.size(), audit_credits_.size()});
  }
  const uint64_t movement = NextId();
  // The credits this clearing settles: every sales credit of the merchant
  // that no clearing has covered yet. Read whole before writing the items.
  struct Credit {
    int64_t seq;
    int64_t payment;
    int64_t amount;
  };
  std::vector<Credit> credits;
  st_->uncleared.Bind(1, merchant);
  while (st_->uncleared.Step()) {
    credits.push_back(Credit{st_->uncleared.Int(0), st_->uncleared.Int(1), st_->uncleared.Int(2)});
  }
  st_->uncleared.Reset();
  int64_t covered = 0;
  for (const Credit& c : credits) {
    covered += c.amount;
    st_->clearing_item.Bind(1, c.seq)
        .Bind(2, static_cast<int64_t>(movement))
        .Bind(3, c.payment)
        .Exec();
    if (config_.audit != nullptr) {
      audit_credits_.push_back(PayClearedCredit{c.seq, static_cast<uint64_t>(c.payment)});
    }
  }
  // Unsettled sales change only by credits and clearings, so the credits
  // not yet covered are the balance settled.
  PAYLAB_CHECK(covered == amount);
  AddJournal(movement, merchant, PayAccount::kUnsettled, -amount, 0);
  AddJournal(movement, merchant, PayAccount::kSettled, amount - fee, 0);
  AddJournal(movement, 0, PayAccount::kFees, fee, 0);
}

}  // namespace paylab::system
