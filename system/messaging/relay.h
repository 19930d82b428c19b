// The outbox relay (seeds 001, 002): a loop that publishes a service's
// pending outbox rows to the broker in id order and marks each sent once the
// broker acknowledged it.
//
// It stops at the first failure of a tick and tries again on the next, so
// rows never overtake each other. A crash between the publish and the mark
// publishes the row again after the restart; the row id is the idempotent
// producer's sequence number, so an idempotent topic appends it once.
#pragma once

#include <boost/asio.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sim/context.h"
#include "system/messaging/outbox.h"

namespace paylab::system {

struct RelayConfig {
  sim::NodeId broker = 0;
  std::string producer;  // the idempotent producer's name
  sim::Duration interval = 50 * sim::kMillisecond;
  sim::Duration timeout = 200 * sim::kMillisecond;
  int64_t batch_max = 100;
};

// Where the rows come from: normally an Outbox (OutboxSource); a test
// defect may relay rows kept in memory instead.
struct RelaySource {
  std::function<std::vector<OutboxRow>(int64_t limit)> pending;
  std::function<void(const OutboxRow& row)> mark_sent;
};

// The source of an outbox on the node's database.
RelaySource OutboxSource(sim::NodeContext& ctx, Outbox& outbox);

// Runs until the node's incarnation ends. REQUIRES: `source` (and what it
// reads) outlives the incarnation's coroutines.
boost::asio::awaitable<void> RelayOutbox(sim::NodeContext& ctx, const RelaySource& source,
                                         const RelayConfig& config);

}  // namespace paylab::system
