// Implementation of the migrating wallet (see migration_wallet.h).
#include "system/migration/cashback_wallet.h"

#include <fmt/format.h>

#include <charconv>

#include "system/common/config_table.h"
#include "system/migration/point_home.h"
#include "system/wallet/wallet.h"

namespace paylab::system {

namespace {

MigReply FromWallet(const WalletReply& w) {
  MigReply r;
  r.id = w.id;
  r.amount = w.amount;
  switch (w.status) {
    case WalletStatus::kOk:
      r.status = MigStatus::kOk;
      break;
    case WalletStatus::kInsufficientFunds:
    case WalletStatus::kCapExceeded:
      r.status = MigStatus::kDeclined;
      break;
    case WalletStatus::kHoldExpired:
      r.status = MigStatus::kExpired;
      break;
    case WalletStatus::kNoSuchHold:
      r.status = MigStatus::kUnknown;
      break;
    default:
      r.status = MigStatus::kInvalid;
      break;
  }
  return r;
}

MigReply Status(MigStatus s) {
  MigReply r;
  r.status = s;
  return r;
}

}  // namespace

std::string EncodeCashbackChange(int64_t user, int64_t balance, uint64_t movement) {
  return fmt::format("{}|{}|{}", user, balance, movement);
}

bool DecodeCashbackChange(std::string_view in, int64_t* user, int64_t* balance,
                          uint64_t* movement) {
  const char* p = in.data();
  const char* end = in.data() + in.size();
  auto r1 = std::from_chars(p, end, *user);
  if (r1.ec != std::errc() || r1.ptr == end || *r1.ptr != '|') {
    return false;
  }
  auto r2 = std::from_chars(r1.ptr + 1, end, *balance);
  if (r2.ec != std::errc() || r2.ptr == end || *r2.ptr != '|') {
    return false;
  }
  auto r3 = std::from_chars(r2.ptr + 1, end, *movement);
  return r3.ec == std::errc() && r3.ptr == end;
}

CashbackWallet::CashbackWallet(sim::NodeContext& ctx, const CashbackWalletConfig& config,
                               LedgerObserver* observer)
    : ctx_(ctx), config_(config), observer_(observer) {}

namespace {

// What the migration's checks rely on besides the wallet's tables: the
// users to migrate and which account type moves (migration_completes,
// cutover_balance_equal, points_in_one_system).
void StoreSettings(sim::Database& db, const CashbackWalletConfig& c) {
  StoreConfig(db, {
                      {"users", c.users},
                      {"cashback_type", int64_t{c.cashback}},
                      {"money_type", int64_t{c.money}},
                      {"expiry_scan_interval_ns", c.expiry_scan_interval},
                      {"hold_ttl_max_ns", c.ledger.hold_ttl_max},
                      {"id_worker", int64_t{c.ledger.id_worker}},
                      {"dual_write", int64_t{c.dual_write}},
                      {"dual_write_topic", c.topic},
                      {"sweep_interval_ns", c.sweep_interval},
                  });
}

}  // namespace

asio::awaitable<void> CashbackWallet::Boot() {
  LedgerOptions options = config_.ledger;
  options.clock_offset_ms = &ctx_.clock_offset_ms();
  ledger_ = std::make_unique<Ledger>(ctx_.db(), *config_.types, options, this);
  StoreSettings(ctx_.db(), config_);
  // The opening balances are not dual-written: the point service's copies
  // start from them (the bulk copy made before the migration).
  populating_ = true;
  ledger_->Populate(config_.users, config_.initial_balances, ctx_.Now());
  populating_ = false;
  hold_by_id_ = sim::Statement(ctx_.db(), "SELECT idem_key FROM holds WHERE id = ?");
  ctx_.Trace(sim::TraceKind::kNote, "wallet.boot", ledger_->user_count());
  ctx_.Spawn(ExpiryLoop());
  if (config_.dual_write) {
    relay_source_ = RelaySource{[this](int64_t limit) {
                                  std::vector<OutboxRow> rows;
                                  for (const OutboxRow& row : unsent_) {
                                    if (static_cast<int64_t>(rows.size()) >= limit) {
                                      break;
                                    }
                                    rows.push_back(row);
                                  }
                                  return rows;
                                },
                                [this](const OutboxRow&) { unsent_.pop_front(); }};
    ctx_.Spawn(RelayOutbox(ctx_, relay_source_, config_.relay));
  }
  if (config_.sweep_interval > 0) {
    ctx_.Spawn(SweepLoop());
  }
  co_return;
}

Ledger& CashbackWallet::Live() {
  ctx_.db();  // throws NodeCrashed once this incarnation is over
  return *ledger_;
}

asio::awaitable<MigReply> CashbackWallet::Prepare(MigPay p) {
  if (!p.forwarded) {
    const MigStatus admitted =
        co_await AdmitRequest(ctx_, config_.controller, config_.rpc_timeout, p.user, p.use_points);
    if (admitted != MigStatus::kOk) {
      co_return Status(admitted);
    }
  }
  Ledger& l = Live();
  const bool migrated = l.MigratedAmount(p.user).has_value();
  if (migrated && p.use_points && !l.HasKey(p.key)) {
    if (p.forwarded) {
      co_return Status(MigStatus::kMoved);
    }
    // The point service is the source of truth for this user's points.
    MigPay f = p;
    f.forwarded = true;
    auto r_fn = [f](PointHome& s) { return s.Prepare(f); };
    auto r =
        co_await ctx_.Call<PointHome>(config_.point, "point.Prepare", config_.rpc_timeout, r_fn);
    co_return r.ok() ? r.value : Status(MigStatus::kUnavailable);
  }
  const TypeId skip = (migrated || !p.use_points) ? config_.cashback : 0;
  co_return FromWallet(
      Live().Prepare(p.key, p.user, p.merchant, p.amount, p.ttl, ctx_.Now(), skip));
}

MigReply CashbackWallet::Resolve(const MigResolve& r, bool commit) {
  const WalletReply w =
      commit ? Live().CommitKey(r.key, ctx_.Now()) : Live().RollbackKey(r.key, ctx_.Now());
  return FromWallet(w);
}

asio::awaitable<MigReply> CashbackWallet::Commit(MigResolve r) {
  if (Live().HasKey(r.key) || r.forwarded) {
    co_return Resolve(r, true);
  }
  MigResolve f{r.key, true};
  auto a_fn = [f](PointHome& s) { return s.Commit(f); };
  auto a = co_await ctx_.Call<PointHome>(config_.point, "point.Commit", config_.rpc_timeout, a_fn);
  co_return a.ok() ? a.value : Status(MigStatus::kUnavailable);
}

asio::awaitable<MigReply> CashbackWallet::Rollback(MigResolve r) {
  if (Live().HasKey(r.key) || r.forwarded) {
    co_return Resolve(r, false);
  }
  MigResolve f{r.key, true};
  auto a_fn = [f](PointHome& s) { return s.Rollback(f); };
  auto a =
      co_await ctx_.Call<PointHome>(config_.point, "point.Rollback", config_.rpc_timeout, a_fn);
  co_return a.ok() ? a.value : Status(MigStatus::kUnavailable);
}

asio::awaitable<MigReply> CashbackWallet::Earn(MigCredit c) {
  if (!c.forwarded) {
    const MigStatus admitted =
        co_await AdmitRequest(ctx_, config_.controller, config_.rpc_timeout, c.user, true);
    if (admitted != MigStatus::kOk) {
      co_return Status(admitted);
    }
  }
  Ledger& l = Live();
  if (l.MigratedAmount(c.user) && !l.HasKey(c.key)) {
    if (c.forwarded) {
      co_return Status(MigStatus::kMoved);
    }
    MigCredit f = c;
    f.forwarded = true;
    auto r_fn = [f](PointHome& s) { return s.Earn(f); };
    auto r = co_await ctx_.Call<PointHome>(config_.point, "point.Earn", config_.rpc_timeout, r_fn);
    co_return r.ok() ? r.value : Status(MigStatus::kUnavailable);
  }
  co_return FromWallet(Live().Deposit(c.key, c.user, config_.cashback, c.amount, ctx_.Now()));
}

asio::awaitable<MigReply> CashbackWallet::TopUp(MigCredit c) {
  const MigStatus admitted =
      co_await AdmitRequest(ctx_, config_.controller, config_.rpc_timeout, c.user, false);
  if (admitted != MigStatus::kOk) {
    co_return Status(admitted);
  }
  co_return FromWallet(Live().Deposit(c.key, c.user, config_.money, c.amount, ctx_.Now()));
}

asio::awaitable<MigReply> CashbackWallet::Lookup(uint64_t id) {
  Live();
  MigReply r;
  hold_by_id_.Bind(1, static_cast<int64_t>(id));
  if (hold_by_id_.Step()) {
    r.id = id;
    r.key = std::string(hold_by_id_.Text(0));
  } else {
    r.status = MigStatus::kUnknown;
  }
  hold_by_id_.Reset();
  co_return r;
}

asio::awaitable<MoveOutReply> CashbackWallet::MoveOut(MoveOutRequest r) {
  co_return Live().MoveOut(r.key, r.users, config_.cashback, r.expected, r.require_no_holds,
                           ctx_.Now());
}

asio::awaitable<std::vector<int64_t>> CashbackWallet::CashbackBalances(std::vector<int64_t> users) {
  Ledger& l = Live();
  std::vector<int64_t> out;
  out.reserve(users.size());
  for (int64_t u : users) {
    out.push_back(l.Balance(u, config_.cashback));
  }
  co_return out;
}

asio::awaitable<std::vector<std::vector<ValueTerm>>> CashbackWallet::CashbackTerms(
    std::vector<int64_t> users) {
  Ledger& l = Live();
  std::vector<std::vector<ValueTerm>> out;
  out.reserve(users.size());
  for (int64_t u : users) {
    out.push_back(l.OpenTerms(u, config_.cashback, ctx_.Now()));
  }
  co_return out;
}

asio::awaitable<int64_t> CashbackWallet::HeldHolds(std::pair<int64_t, int64_t> range) {
  co_return Live().HeldHolds(range.first, range.second, config_.cashback);
}

asio::awaitable<int64_t> CashbackWallet::Total(int64_t user) {
  Ledger& l = Live();
  if (user < 1 || user > config_.users) {
    co_return -1;
  }
  co_return l.TotalBalanceExcept(user, config_.cashback);
}

void CashbackWallet::OnMovement(const MovementRecord& m) {
  TraceMovement(ctx_, m);
  if (config_.dual_write && !populating_ && m.kind != MovementKind::kMigrateOut) {
    for (const JournalEntry& e : m.entries) {
      if (e.type == config_.cashback && e.user != kSystemUser && !ledger_->MigratedAmount(e.user)) {
        unsent_.push_back(OutboxRow{
            ++unsent_seq_, config_.topic, std::to_string(e.user),
            EncodeCashbackChange(e.user, ledger_->Balance(e.user, config_.cashback), m.id)});
      }
    }
  }
  if (observer_ != nullptr) {
    observer_->OnMovement(m);
  }
}

void CashbackWallet::OnHoldCreated(uint64_t hold_id, sim::Time expires_at) {
  if (observer_ != nullptr) {
    observer_->OnHoldCreated(hold_id, expires_at);
  }
}

void CashbackWallet::OnApplied(const WalletApplied& a) {
  if (observer_ != nullptr) {
    observer_->OnApplied(a);
  }
}

asio::awaitable<void> CashbackWallet::ExpiryLoop() {
  for (;;) {
    co_await ctx_.Sleep(config_.expiry_scan_interval);
    const int64_t holds = Live().ExpireHolds(ctx_.Now(), 1000);
    const int64_t items = Live().ExpireBalanceItems(ctx_.Now(), 1000);
    if (holds + items > 0) {
      ctx_.Trace(sim::TraceKind::kNote, "wallet.expire", holds, items);
    }
  }
}

asio::awaitable<void> CashbackWallet::SweepLoop() {
  for (;;) {
    co_await ctx_.Sleep(config_.sweep_interval);
    for (int64_t u : Live().MigratedWithBalance(config_.cashback, 100)) {
      Live().MoveOutAgain(fmt::format("fwd/{}/{}", u, ctx_.Now()), u, config_.cashback, ctx_.Now());
    }
    for (const MigrationForward& f : Live().PendingForwards(100)) {
      MigCredit c{f.key, f.user, f.amount, true, f.terms};
      auto r_fn = [c](PointHome& s) { return s.ForwardIn(c); };
      auto r = co_await ctx_.Call<PointHome>(config_.point, "point.ForwardIn", config_.rpc_timeout,
                                             r_fn);
      if (!r.ok() || r.value.status != MigStatus::kOk) {
        break;  // the next round sends it again
      }
      Live().MarkForwardSent(f.key);
    }
  }
}

}  // namespace paylab::system
