// Queues fed by fan-out topics (the SNS -> SQS pattern of seeds 001, 002),
// in the broker's database beside its log.
//
// Contract:
//  - A queue subscribes to a topic: every message appended to the topic is
//    copied into every subscribed queue (FanOut).
//  - Receive hands out up to `max` visible messages in id order and hides
//    each for the visibility timeout; the receipt is the message's receive
//    count at that moment. Delete with the current receipt removes a
//    message; a stale receipt (the message was received again since) is
//    refused. A message not deleted becomes visible again when its timeout
//    passes: at-least-once delivery.
//  - A message received more than max_receives times is moved to the
//    queue's dead-letter queue instead of being handed out. Without a
//    dead-letter queue it stays, and a poison message is received forever.
//  - Redrive moves every message of a dead-letter queue back to the queue
//    that feeds it, with its receive count reset. A dead-letter queue serves
//    exactly one source queue (checked at construction).
//  - A receive can return fewer than `max` messages while more are
//    visible: messages it moves to the dead-letter queue count against it.
//  - All state is durable; every call is one transaction. Bad calls
//    (unknown queue, max < 1) get a status and a reason.
//  - The queues' configuration is stored too, for auditors: queues(name,
//    topic, visibility_timeout_ns, max_receives, dead_letter), written at
//    construction ("" for no topic, no dead-letter queue).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sim/storage.h"
#include "sim/time.h"

namespace paylab::system {

struct QueueConfig {
  std::string name;
  std::string topic;  // the fan-out topic feeding it; "" for a dead-letter queue
  sim::Duration visibility_timeout = sim::kSecond;
  int64_t max_receives = 0;  // 0: never dead-letter
  std::string dead_letter;   // "" for none
};

enum class QueueStatus : uint8_t { kOk, kNoSuchQueue, kInvalidArgument, kStaleReceipt };
std::string_view QueueStatusName(QueueStatus s);

struct QueueMessage {
  int64_t id = 0;
  std::string payload;
  int64_t receipt = 0;  // the receive count when handed out
};

struct ReceiveReply {
  QueueStatus status = QueueStatus::kOk;
  std::vector<QueueMessage> messages;
  int64_t dead_lettered = 0;  // moved to the dead-letter queue by this call
  std::string_view reason;
};

struct DeleteReply {
  QueueStatus status = QueueStatus::kOk;
  std::string_view reason;
};

class QueueStore {
 public:
  // Creates the schema if missing. The same configuration after every restart.
  QueueStore(sim::Database& db, std::vector<QueueConfig> queues);
  ~QueueStore();

  const std::vector<QueueConfig>& queues() const { return queues_; }

  // Copies a message appended to `topic` into every queue subscribed to it.
  void FanOut(std::string_view topic, std::string_view payload, sim::Time now);
  // Puts a message straight into `queue` (fault injection: a poison message).
  QueueStatus Inject(std::string_view queue, std::string_view payload, sim::Time now);
  ReceiveReply Receive(std::string_view queue, int64_t max, sim::Time now);
  DeleteReply Delete(std::string_view queue, int64_t id, int64_t receipt);
  // Moves every message of the dead-letter queue `dlq` back to its source.
  int64_t Redrive(std::string_view dlq, sim::Time now);

  // Messages neither deleted nor moved away.
  int64_t Depth(std::string_view queue);
  // Every message `dlq` ever held (for a dead-letter queue: every message
  // moved into it, and those redriven out of it).
  int64_t DeadLettered(std::string_view dlq);
  int64_t Redriven(std::string_view dlq);

 private:
  struct Stmts;
  const QueueConfig* Find(std::string_view name) const;
  int64_t Append(std::string_view queue, std::string_view payload, sim::Time now);

  sim::Database& db_;
  std::vector<QueueConfig> queues_;
  std::unique_ptr<Stmts> st_;
};

}  // namespace paylab::system
