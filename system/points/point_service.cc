// Implementation of the point service (see point_service.h).
#include "system/points/point_service.h"

#include <optional>

#include "system/messaging/broker.h"
#include "system/common/config_table.h"
#include "system/points/payment_event.h"

namespace paylab::system {

PointService::PointService(sim::NodeContext& ctx, const PointServiceConfig& config,
                           PointLedgerObserver* observer)
    : ctx_(ctx), config_(config), observer_(observer), faults_(ctx.Stream("assigner.faults")) {}

namespace {

// What the point checks and an audit of the grants rely on: a payment's
// reward is amount * reward_bp / 10000 rounded down, its grant expires
// grant_ttl after the event, the opening lots lot_expiry after boot.
void StoreSettings(sim::Database& db, const PointServiceConfig& c) {
  StoreConfig(db, {
                      {"reward_bp", c.reward_bp},
                      {"grant_ttl_ns", c.grant_ttl},
                      {"lot_expiry_ns", c.lot_expiry},
                      {"users", c.users},
                      {"initial_points", c.initial_points},
                      {"hold_ttl_max_ns", c.ledger.hold_ttl_max},
                      {"expiry_scan_interval_ns", c.expiry_scan_interval},
                      {"expiry_batch_max", c.expiry_batch_max},
                      {"id_worker", int64_t{c.ledger.id_worker}},
                      {"assignment_queue", c.queue},
                  });
}

}  // namespace

asio::awaitable<void> PointService::Boot() {
  ledger_ = std::make_unique<PointLedger>(ctx_.db(), config_.ledger, this);
  StoreSettings(ctx_.db(), config_);
  ledger_->Populate(config_.users, config_.initial_points, config_.lot_expiry, ctx_.Now());
  ctx_.Trace(sim::TraceKind::kNote, "point.boot", ledger_->user_count());
  ctx_.Spawn(ExpiryLoop());
  if (!config_.queue.empty()) {
    // A lost delete brings a message back; the apply is idempotent.
    consumer_ = QueueConsumerConfig{config_.broker,
                                    config_.queue,
                                    config_.receive_max,
                                    config_.poll_interval,
                                    config_.poll_interval_max,
                                    config_.rpc_timeout};
    handler_ = [this](const QueueMessage& m) { return Assign(m.payload); };
    ctx_.Spawn(ConsumeQueue(ctx_, consumer_, handler_));
  }
  co_return;
}

PointLedger& PointService::Live() {
  // Refuses (NodeCrashed) if this incarnation is over; the ledger itself
  // holds the database directly.
  ctx_.db();
  return *ledger_;
}

asio::awaitable<TccReply> PointService::TryDebit(TccTry t) {
  co_return Live().TryDebit(t, ctx_.Now());
}

asio::awaitable<TccReply> PointService::ConfirmDebit(std::string key) {
  co_return Live().ConfirmDebit(key, ctx_.Now());
}

asio::awaitable<TccReply> PointService::CancelDebit(std::string key) {
  co_return Live().CancelDebit(key, ctx_.Now());
}

asio::awaitable<int64_t> PointService::Balance(int64_t user) {
  co_return Live().Balance(user, ctx_.Now());
}

void TracePointMovement(sim::NodeContext& ctx, const PointMovementRecord& m) {
  int64_t moved = 0;
  for (const PointEntry& e : m.entries) {
    moved += e.delta > 0 ? e.delta : 0;
  }
  ctx.Trace(sim::TraceKind::kCommit, PointMovementKindName(m.kind), static_cast<int64_t>(m.id),
            moved);
}

void PointService::OnPointMovement(const PointMovementRecord& m) {
  TracePointMovement(ctx_, m);
  if (observer_ != nullptr) {
    observer_->OnPointMovement(m);
  }
}

void PointService::OnPointApplied(const PointApplied& a) {
  if (observer_ != nullptr) {
    observer_->OnPointApplied(a);
  }
}

asio::awaitable<void> PointService::ExpiryLoop() {
  for (;;) {
    co_await ctx_.Sleep(config_.expiry_scan_interval);
    const int64_t holds = Live().ExpireHolds(ctx_.Now(), config_.expiry_batch_max);
    const int64_t lots = Live().ExpireLots(ctx_.Now(), config_.expiry_batch_max);
    if (holds + lots > 0) {
      ctx_.Trace(sim::TraceKind::kNote, "point.expire", holds, lots);
    }
  }
}

bool PointService::Assign(std::string_view payload) {
  PointLedger& ledger = Live();
  std::string error;
  const std::optional<PaymentEvent> e = DecodePaymentEvent(payload, &error);
  if (!e) {
    ledger.CountPoison();
    ctx_.Trace(sim::TraceKind::kNote, "point.assign.poison");
    return false;
  }
  if (faults_.Bernoulli(config_.apply_failure_rate)) {
    // A transient failure before the database was touched: the message
    // comes back after its visibility timeout.
    ledger.CountApplyFailure();
    ctx_.Trace(sim::TraceKind::kFault, "point.assign.fail", static_cast<int64_t>(e->payment_id));
    return false;
  }
  const GrantReply r =
      ledger.ApplyPaymentEvent(*e, config_.reward_bp, config_.grant_ttl, ctx_.Now());
  // Every answer is final (a refusal would be refused again): the message
  // may go.
  ctx_.Trace(sim::TraceKind::kNote, "point.assign", static_cast<int64_t>(e->payment_id),
             static_cast<int64_t>(r.status));
  return true;
}

}  // namespace paylab::system
