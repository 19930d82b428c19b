// Implementation of the outbox relay (see relay.h).
#include "system/messaging/relay.h"

#include <vector>

#include "system/messaging/broker.h"

namespace paylab::system {

RelaySource OutboxSource(sim::NodeContext& ctx, Outbox& outbox) {
  return RelaySource{[&ctx, &outbox](int64_t limit) {
                       ctx.db();  // refuses once this incarnation is over
                       return outbox.Pending(limit);
                     },
                     [&ctx, &outbox](const OutboxRow& row) {
                       ctx.db();
                       outbox.MarkSent(row.id, ctx.Now());
                     }};
}

boost::asio::awaitable<void> RelayOutbox(sim::NodeContext& ctx, const RelaySource& source,
                                         const RelayConfig& config) {
  for (;;) {
    co_await ctx.Sleep(config.interval);
    const std::vector<OutboxRow> rows = source.pending(config.batch_max);
    for (const OutboxRow& row : rows) {
      PublishRequest req{row.topic, row.key, row.payload, config.producer, row.id};
      const auto publish = [req](Broker& b) { return b.Publish(req); };
      auto r = co_await ctx.Call<Broker>(config.broker, "broker.publish", config.timeout, publish);
      if (!r.ok() || r.value.status != BrokerStatus::kOk) {
        break;
      }
      // Published, not yet marked sent: the row goes out again after a crash.
      ctx.FaultPoint("relay.after_publish");
      source.mark_sent(row);
    }
  }
}

}  // namespace paylab::system
