// Implementation of the wallet service (see wallet.h).
#include "system/wallet/wallet.h"

#include <fmt/format.h>

#include "system/messaging/broker.h"
#include "system/common/config_table.h"
#include "system/wallet/movement_event.h"
#include "system/messaging/relay.h"

namespace paylab::system {

TccStatus ToTcc(WalletStatus s) {
  switch (s) {
    case WalletStatus::kOk:
      return TccStatus::kOk;
    case WalletStatus::kInsufficientFunds:
    case WalletStatus::kCapExceeded:
      return TccStatus::kDeclined;
    case WalletStatus::kCancelled:
      return TccStatus::kCancelled;
    case WalletStatus::kHoldExpired:
      return TccStatus::kExpired;
    case WalletStatus::kNoSuchUser:
    case WalletStatus::kNoSuchAccount:
    case WalletStatus::kNoSuchHold:
    case WalletStatus::kHoldNotActive:
    case WalletStatus::kIdempotencyMismatch:
    case WalletStatus::kInvalidArgument:
    case WalletStatus::kMigrationRefused:
      return TccStatus::kInvalid;
  }
  return TccStatus::kInvalid;
}

TccReply ToTccReply(const WalletReply& r) { return TccReply{ToTcc(r.status), r.id, r.amount}; }

namespace {
// Committed, not yet answered: a crash here loses the reply (the caller
// retries) and whatever the wallet kept only in memory.
constexpr std::string_view kAfterCommit = "wallet.after_commit";
}  // namespace

Wallet::Wallet(sim::NodeContext& ctx, const WalletConfig& config, LedgerObserver* observer)
    : ctx_(ctx), config_(config), observer_(observer) {}

namespace {

// What the wallet's checks rely on besides its tables (account_types holds
// the types): holds_resolved allows a hold one expiry scan past its expiry.
void StoreSettings(sim::Database& db, const WalletConfig& c) {
  StoreConfig(db, {
                      {"users", c.users},
                      {"expiry_scan_interval_ns", c.expiry_scan_interval},
                      {"expiry_batch_max", c.expiry_batch_max},
                      {"hold_ttl_max_ns", c.ledger.hold_ttl_max},
                      {"id_worker", int64_t{c.ledger.id_worker}},
                      {"publish_events", int64_t{c.ledger.publish_events}},
                  });
}

}  // namespace

asio::awaitable<void> Wallet::Boot() {
  LedgerOptions options = config_.ledger;
  options.clock_offset_ms = &ctx_.clock_offset_ms();
  ledger_ = std::make_unique<Ledger>(ctx_.db(), *config_.types, options, this);
  StoreSettings(ctx_.db(), config_);
  ledger_->Populate(config_.users, config_.initial_balances, ctx_.Now());
  ctx_.Trace(sim::TraceKind::kNote, "wallet.boot", ledger_->user_count());
  ctx_.Spawn(ExpiryLoop());
  if (config_.defect_publish_outside_outbox) {
    // The defect relays events kept in memory: a crash loses them.
    relay_source_ = RelaySource{
        [this](int64_t) { return std::vector<OutboxRow>(unsent_.begin(), unsent_.end()); },
        [this](const OutboxRow&) { unsent_.pop_front(); }};
  } else if (ledger_->outbox() != nullptr) {
    relay_source_ = OutboxSource(ctx_, *ledger_->outbox());
  }
  if (relay_source_.pending) {
    relay_config_ = RelayConfig{config_.broker, "wallet", config_.relay_interval,
                                config_.relay_timeout, config_.relay_batch_max};
    ctx_.Spawn(RelayOutbox(ctx_, relay_source_, relay_config_));
  }
  co_return;
}

Ledger& Wallet::Live() {
  // Refuses (NodeCrashed) if this incarnation is over; the ledger itself
  // holds the database directly.
  ctx_.db();
  return *ledger_;
}

asio::awaitable<WalletReply> Wallet::Deposit(DepositRequest r) {
  auto reply = Live().Deposit(r.key, r.user, r.type, r.amount, ctx_.Now());
  ctx_.FaultPoint(kAfterCommit);
  co_return reply;
}

asio::awaitable<WalletReply> Wallet::Transfer(TransferRequest r) {
  auto reply = Live().Transfer(r.key, r.src, r.dst, r.amount, ctx_.Now());
  ctx_.FaultPoint(kAfterCommit);
  co_return reply;
}

asio::awaitable<WalletReply> Wallet::Prepare(PrepareRequest r) {
  auto reply = Live().Prepare(r.key, r.src, r.dst, r.amount, r.ttl, ctx_.Now());
  ctx_.FaultPoint(kAfterCommit);
  co_return reply;
}

asio::awaitable<WalletReply> Wallet::Commit(uint64_t hold_id) {
  auto reply = Live().Commit(hold_id, ctx_.Now());
  ctx_.FaultPoint(kAfterCommit);
  co_return reply;
}

asio::awaitable<WalletReply> Wallet::Rollback(uint64_t hold_id) {
  auto reply = Live().Rollback(hold_id, ctx_.Now());
  ctx_.FaultPoint(kAfterCommit);
  co_return reply;
}

asio::awaitable<TccReply> Wallet::TryHold(WalletTry r) {
  if (r.tcc.amount_min != r.tcc.amount_max) {
    // The wallet holds an exact amount; a range is the orchestrator's bug.
    co_return TccReply{TccStatus::kInvalid, 0, 0};
  }
  auto reply = ToTccReply(
      Live().Prepare(r.tcc.key, r.tcc.user, r.dst, r.tcc.amount_max, r.tcc.ttl, ctx_.Now()));
  ctx_.FaultPoint(kAfterCommit);
  co_return reply;
}

asio::awaitable<TccReply> Wallet::ConfirmHold(std::string key) {
  auto reply = ToTccReply(Live().CommitKey(key, ctx_.Now()));
  ctx_.FaultPoint(kAfterCommit);
  co_return reply;
}

asio::awaitable<TccReply> Wallet::CancelHold(std::string key) {
  auto reply = ToTccReply(Live().RollbackKey(key, ctx_.Now()));
  ctx_.FaultPoint(kAfterCommit);
  co_return reply;
}

asio::awaitable<WalletReply> Wallet::Payout(PayoutRequest r) {
  auto reply = Live().Payout(r.key, r.user, r.amount, ctx_.Now());
  ctx_.FaultPoint(kAfterCommit);
  co_return reply;
}

asio::awaitable<int64_t> Wallet::TotalBalance(UserId user) { co_return Live().TotalBalance(user); }

asio::awaitable<int64_t> Wallet::AccountBalance(std::pair<UserId, TypeId> account) {
  co_return Live().Balance(account.first, account.second);
}

asio::awaitable<sim::Time> Wallet::HoldExpiry(uint64_t hold_id) {
  co_return Live().HoldExpiry(hold_id);
}

void TraceMovement(sim::NodeContext& ctx, const MovementRecord& m) {
  int64_t moved = 0;
  for (const JournalEntry& e : m.entries) {
    moved += e.delta > 0 ? e.delta : 0;
  }
  ctx.Trace(sim::TraceKind::kCommit, MovementKindName(m.kind), static_cast<int64_t>(m.id), moved);
}

void Wallet::OnMovement(const MovementRecord& m) {
  TraceMovement(ctx_, m);
  if (config_.defect_publish_outside_outbox) {
    unsent_.push_back(OutboxRow{++unsent_seq_, std::string(kMovementTopic),
                                fmt::format("{}", m.entries.empty() ? 0 : m.entries.front().user),
                                EncodeMovementEvent(m.id, m.kind, m.entries)});
  }
  if (observer_ != nullptr) {
    observer_->OnMovement(m);
  }
}

void Wallet::OnHoldCreated(uint64_t hold_id, sim::Time expires_at) {
  if (observer_ != nullptr) {
    observer_->OnHoldCreated(hold_id, expires_at);
  }
}

void Wallet::OnApplied(const WalletApplied& a) {
  if (observer_ != nullptr) {
    observer_->OnApplied(a);
  }
}

asio::awaitable<void> Wallet::ExpiryLoop() {
  for (;;) {
    co_await ctx_.Sleep(config_.expiry_scan_interval);
    const int64_t holds = Live().ExpireHolds(ctx_.Now(), config_.expiry_batch_max);
    const int64_t items = Live().ExpireBalanceItems(ctx_.Now(), config_.expiry_batch_max);
    if (holds + items > 0) {
      ctx_.Trace(sim::TraceKind::kNote, "wallet.expire", holds, items);
    }
  }
}

}  // namespace paylab::system
