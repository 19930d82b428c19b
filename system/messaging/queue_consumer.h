// The loop of a queue consumer (seed 002's SQS-style queues): receive a
// batch, hand each message to the consumer, delete the ones it handled.
//
// A message the handler refuses (poison, a failure it expects to pass, a
// decision it cannot make yet) stays undeleted: it comes back after the
// visibility timeout, and after max receives the broker dead-letters it. A
// lost delete also brings a message back, so handlers must be idempotent.
// Polls back off while the queue is empty (PollBackoff).
#pragma once

#include <boost/asio.hpp>
#include <cstdint>
#include <functional>
#include <string>

#include "sim/context.h"
#include "system/messaging/queue_store.h"

namespace paylab::system {

struct QueueConsumerConfig {
  sim::NodeId broker = 0;
  std::string queue;
  int64_t receive_max = 10;
  sim::Duration poll_interval = 50 * sim::kMillisecond;
  sim::Duration poll_interval_max = 1 * sim::kSecond;
  sim::Duration rpc_timeout = 200 * sim::kMillisecond;
};

// Returns true when the message is handled and may be deleted.
using QueueHandler = std::function<bool(const QueueMessage&)>;

// Runs until the node's incarnation ends. REQUIRES: `config` and `handle`
// outlive the incarnation's coroutines.
boost::asio::awaitable<void> ConsumeQueue(sim::NodeContext& ctx, const QueueConsumerConfig& config,
                                          const QueueHandler& handle);

}  // namespace paylab::system
