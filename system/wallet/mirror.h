// The mirror: a consumer node that keeps per-user balances from the
// wallet's movement events (the consumer the migration's dual-write will
// build on).
//
// It runs `members` consumers of one group. Each heartbeats the broker,
// consumes the partitions it is assigned from its position (initially the
// group's committed offset), applies each event through the idempotent
// consumer (effect + processed record in one transaction), and commits the
// next offset after each batch, and again at its next poll while the broker
// has not confirmed it (a commit lost after the last batch would otherwise
// leave the group behind the end of its log for good). A crash mid-batch loses the positions and
// the membership: the group rebalances, and the new owners start again from
// the committed offsets, so some events are delivered again and skipped.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "sim/context.h"
#include "system/messaging/broker.h"
#include "system/messaging/idempotent_consumer.h"
#include "system/wallet/movement_event.h"
#include "system/messaging/queue_consumer.h"

namespace paylab::system {

struct MirrorConfig {
  sim::NodeId broker = 0;
  std::string topic{kMovementTopic};
  std::string group = "mirror";
  int64_t members = 1;
  sim::Duration poll_interval = 50 * sim::kMillisecond;
  // Polls that bring nothing back off, doubling up to this; it stays well
  // under the broker's session timeout, since each poll also heartbeats.
  sim::Duration poll_interval_max = 500 * sim::kMillisecond;
  sim::Duration rpc_timeout = 200 * sim::kMillisecond;
  int64_t fetch_max = 100;
  // TEST ONLY: apply every delivery, with no processed-event record.
  bool defect_no_dedup = false;
  // The audit worker: counts movements by kind from a queue fed by the
  // topic ("" for none). A message it cannot decode is left undeleted, so
  // it comes back after the visibility timeout until it is dead-lettered.
  std::string audit_queue;
  int64_t receive_max = 10;
};

// Fed what the consumers see (the messaging checker).
class ConsumerObserver {
 public:
  virtual ~ConsumerObserver() = default;
  virtual void OnDelivered(const Message& m) = 0;
  // After the effect's transaction committed (first time) or was skipped.
  virtual void OnApplied(const Message& m, const MovementEvent& e) = 0;
  virtual void OnDeduplicated(const Message& m) = 0;
  virtual void OnPoison(const Message& m, std::string_view error) = 0;
  // The audit worker, reading a queue.
  virtual void OnQueueApplied(const QueueMessage& m, const MovementEvent& e) = 0;
  virtual void OnQueueDeduplicated(const QueueMessage& m) = 0;
  virtual void OnQueuePoison(const QueueMessage& m) = 0;
};

class Mirror : public sim::Service {
 public:
  Mirror(sim::NodeContext& ctx, const MirrorConfig& config, ConsumerObserver* observer);

  asio::awaitable<void> Boot() override;

 private:
  asio::awaitable<void> Member(int64_t index);
  void Apply(const Message& m);
  // Returns true if the message may be deleted (applied, or applied before).
  bool ApplyAudit(const QueueMessage& m);

  sim::NodeContext& ctx_;
  const MirrorConfig& config_;
  ConsumerObserver* observer_;
  std::unique_ptr<ProcessedEvents> processed_;
  std::unique_ptr<sim::Statement> add_;
  std::unique_ptr<sim::Statement> audit_add_;
  QueueConsumerConfig consumer_;
  QueueHandler handler_;
};

}  // namespace paylab::system
