// Implementation of the queue consumer loop (see queue_consumer.h).
#include "system/messaging/queue_consumer.h"

#include "system/messaging/broker.h"
#include "system/common/poll_backoff.h"

namespace paylab::system {

boost::asio::awaitable<void> ConsumeQueue(sim::NodeContext& ctx, const QueueConsumerConfig& config,
                                          const QueueHandler& handle) {
  PollBackoff pace(config.poll_interval, config.poll_interval_max);
  for (;;) {
    co_await ctx.Sleep(pace.next());
    ReceiveRequest req{config.queue, config.receive_max};
    const auto receive = [req](Broker& b) { return b.Receive(req); };
    auto got =
        co_await ctx.Call<Broker>(config.broker, "broker.receive", config.rpc_timeout, receive);
    const bool ok = got.ok() && got.value.status == QueueStatus::kOk;
    pace.Found(ok && !got.value.messages.empty());
    if (!ok) {
      continue;
    }
    for (const QueueMessage& m : got.value.messages) {
      if (!handle(m)) {
        continue;  // comes back after the visibility timeout
      }
      // Applied, not yet deleted: after a crash here the message comes back
      // and the handler must absorb it.
      ctx.FaultPoint("consumer.after_apply");
      DeleteRequest d{config.queue, m.id, m.receipt};
      const auto del = [d](Broker& b) { return b.Delete(d); };
      co_await ctx.Call<Broker>(config.broker, "broker.delete", config.rpc_timeout, del);
    }
  }
}

}  // namespace paylab::system
