// Implementation of the outbox relay (see relay.h).
#include "system/relay.h"

#include <vector>

#include "system/broker.h"

namespace paylab::system {

boost::asio::awaitable<void> RelayOutbox(sim::NodeContext& ctx, Outbox& outbox,
                                         const RelayConfig& config) {
  for (;;) {
    co_await ctx.Sleep(config.interval);
    ctx.db();  // refuses once this incarnation is over
    const std::vector<OutboxRow> rows = outbox.Pending(config.batch_max);
    for (const OutboxRow& row : rows) {
      PublishRequest req{row.topic, row.key, row.payload, config.producer, row.id};
      const auto publish = [req](Broker& b) { return b.Publish(req); };
      auto r = co_await ctx.Call<Broker>(config.broker, "broker.publish", config.timeout, publish);
      if (!r.ok() || r.value.status != BrokerStatus::kOk) {
        break;
      }
      ctx.db();
      outbox.MarkSent(row.id, ctx.Now());
    }
  }
}

}  // namespace paylab::system
