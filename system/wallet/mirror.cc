// Implementation of the mirror consumer (see mirror.h).
#include "system/wallet/mirror.h"

#include <fmt/format.h>

#include "system/common/poll_backoff.h"

namespace paylab::system {

Mirror::Mirror(sim::NodeContext& ctx, const MirrorConfig& config, ConsumerObserver* observer)
    : ctx_(ctx), config_(config), observer_(observer) {}

asio::awaitable<void> Mirror::Boot() {
  ctx_.db().ExecScript(
      "CREATE TABLE IF NOT EXISTS mirror_balances(user_id INTEGER NOT NULL, type INTEGER NOT "
      "NULL, balance INTEGER NOT NULL, PRIMARY KEY(user_id, type)) WITHOUT ROWID;");
  processed_ = std::make_unique<ProcessedEvents>(ctx_.db());
  add_ = std::make_unique<sim::Statement>(
      ctx_.db(),
      "INSERT INTO mirror_balances(user_id, type, balance) VALUES(?, ?, ?) "
      "ON CONFLICT(user_id, type) DO UPDATE SET balance = balance + excluded.balance");
  ctx_.db().ExecScript(
      "CREATE TABLE IF NOT EXISTS audit_counts(kind INTEGER PRIMARY KEY, movements INTEGER NOT "
      "NULL);");
  audit_add_ =
      std::make_unique<sim::Statement>(ctx_.db(),
                                       "INSERT INTO audit_counts(kind, movements) VALUES(?, 1) "
                                       "ON CONFLICT(kind) DO UPDATE SET movements = movements + 1");
  for (int64_t i = 0; i < config_.members; ++i) {
    ctx_.Spawn(Member(i));
  }
  if (!config_.audit_queue.empty()) {
    // A lost delete brings a message back; the processed record absorbs it.
    consumer_ =
        QueueConsumerConfig{config_.broker,        config_.audit_queue,       config_.receive_max,
                            config_.poll_interval, config_.poll_interval_max, config_.rpc_timeout};
    handler_ = [this](const QueueMessage& m) { return ApplyAudit(m); };
    ctx_.Spawn(ConsumeQueue(ctx_, consumer_, handler_));
  }
  co_return;
}

void Mirror::Apply(const Message& m) {
  ctx_.db();  // refuses once this incarnation has crashed
  observer_->OnDelivered(m);
  std::string error;
  const std::optional<MovementEvent> e = DecodeMovementEvent(m.payload, &error);
  if (!e) {
    // A poison message: counted and skipped (queues with dead letters come
    // with the fan-out topics).
    observer_->OnPoison(m, error);
    return;
  }
  const std::string id = fmt::format("{}", e->movement_id);
  const bool applied = processed_->ApplyOnce(
      id, ctx_.Now(),
      [&] {
        for (const JournalEntry& j : e->entries) {
          add_->Bind(1, j.user).Bind(2, int64_t{j.type}).Bind(3, j.delta).Exec();
        }
      },
      config_.defect_no_dedup);
  if (applied) {
    observer_->OnApplied(m, *e);
  } else {
    observer_->OnDeduplicated(m);
  }
}

asio::awaitable<void> Mirror::Member(int64_t index) {
  const std::string member = fmt::format("{}-{}-{}", ctx_.name(), ctx_.incarnation(), index);
  std::map<int32_t, int64_t> position;  // volatile: lost with a crash
  // The offset the broker last confirmed as the group's committed one, per
  // partition: a commit lost after the last batch is sent again, or the
  // group would stay behind the end of its log until the next message.
  std::map<int32_t, int64_t> acked;
  int64_t generation = -1;
  PollBackoff pace(config_.poll_interval, config_.poll_interval_max);
  for (;;) {
    co_await ctx_.Sleep(pace.next());
    pace.Found(false);  // until a fetch brings messages
    HeartbeatRequest hb{config_.group, member, config_.topic};
    const auto heartbeat = [hb](Broker& b) { return b.Heartbeat(hb); };
    auto assigned = co_await ctx_.Call<Broker>(config_.broker, "broker.heartbeat",
                                               config_.rpc_timeout, heartbeat);
    if (!assigned.ok() || assigned.value.status != BrokerStatus::kOk) {
      continue;
    }
    if (assigned.value.generation != generation) {
      // Rebalanced: positions of partitions we no longer own are stale.
      generation = assigned.value.generation;
      position.clear();
      acked.clear();
    }
    for (int32_t p : assigned.value.partitions) {
      if (!position.contains(p)) {
        CommittedRequest q{config_.group, config_.topic, p};
        const auto committed = [q](Broker& b) { return b.Committed(q); };
        auto c = co_await ctx_.Call<Broker>(config_.broker, "broker.committed", config_.rpc_timeout,
                                            committed);
        if (!c.ok() || c.value.status != BrokerStatus::kOk) {
          continue;
        }
        position[p] = c.value.committed;
        acked[p] = c.value.committed;
      }
      FetchRequest f{config_.topic, p, position[p], config_.fetch_max};
      const auto fetch = [f](Broker& b) { return b.Fetch(f); };
      auto batch =
          co_await ctx_.Call<Broker>(config_.broker, "broker.fetch", config_.rpc_timeout, fetch);
      if (!batch.ok() || batch.value.status != BrokerStatus::kOk) {
        continue;
      }
      if (!batch.value.messages.empty()) {
        pace.Found(true);
      }
      for (const Message& m : batch.value.messages) {
        Apply(m);
        position[p] = m.offset + 1;
      }
      if (position[p] <= acked[p]) {
        continue;  // nothing new to commit
      }
      CommitRequest c{config_.group, member, config_.topic, p, position[p]};
      const auto commit = [c](Broker& b) { return b.Commit(c); };
      // A lost commit means redelivery after a rebalance, which the
      // processed record absorbs, and a commit again at the next poll.
      auto done =
          co_await ctx_.Call<Broker>(config_.broker, "broker.commit", config_.rpc_timeout, commit);
      if (done.ok() && done.value.status == BrokerStatus::kOk) {
        acked[p] = done.value.committed;
      }
    }
  }
}

bool Mirror::ApplyAudit(const QueueMessage& m) {
  ctx_.db();  // refuses once this incarnation has crashed
  std::string error;
  const std::optional<MovementEvent> e = DecodeMovementEvent(m.payload, &error);
  if (!e) {
    observer_->OnQueuePoison(m);
    return false;
  }
  const std::string id = fmt::format("audit:{}", e->movement_id);
  const bool applied = processed_->ApplyOnce(
      id, ctx_.Now(), [&] { audit_add_->Bind(1, static_cast<int64_t>(e->kind)).Exec(); });
  if (applied) {
    observer_->OnQueueApplied(m, *e);
  } else {
    observer_->OnQueueDeduplicated(m);
  }
  return true;
}

}  // namespace paylab::system
