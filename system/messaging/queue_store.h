// Queues fed by fan-out topics (the SNS -> SQS pattern of seeds 001, 002),
// in the broker's database beside its log.
//
// Contract:
//  - A queue subscribes to a topic: every message appended to the topic is
//    copied into every subscribed queue (FanOut).
//  - Message IDs are positive, unique within their queue, and grow in the
//    order messages enter it (fan-out, inject, dead-lettering, redrive). A
//    message is visible from the instant it enters its queue.
//  - Receive hands out up to `max` visible messages in id order and hides
//    each for the visibility timeout; the receipt is the message's receive
//    count at that moment. Delete with the current receipt removes a
//    message; a stale receipt (the message was received again since, or
//    moved to or from a dead-letter queue, or a receipt < 1) is refused;
//    deleting a deleted message again is fine (ok, whatever the receipt);
//    an id the queue never had is an invalid argument. A message not
//    deleted becomes visible again when its timeout passes: received at t,
//    it is hidden while now < t + visibility timeout and visible from that
//    instant on (at-least-once delivery).
//  - A message received more than max_receives times is moved to the
//    queue's dead-letter queue instead of being handed out: the receive
//    that would be its (max_receives + 1)-th moves it. Without a
//    dead-letter queue it stays, and a poison message is received forever.
//  - Redrive moves every message of a dead-letter queue (visible or not)
//    back to the queue that feeds it, in id order, with its receive count
//    reset; a queue no queue dead-letters into has nothing to redrive. A
//    dead-letter queue serves exactly one source queue (checked at
//    construction).
//  - A receive can return fewer than `max` messages while more are
//    visible: messages it moves to the dead-letter queue count against it.
//  - All state is durable; every call is one transaction. Bad calls
//    (unknown queue, max < 1) get a status and a reason.
//  - Audit (system/messaging/broker_observer.h): with an observer, every FanOut, Inject,
//    Receive, Delete and Redrive is reported once it returns.
//  - The queues' configuration is stored too, for auditors: queues(name,
//    topic, visibility_timeout_ns, max_receives, dead_letter), written at
//    construction ("" for no topic, no dead-letter queue).
//  - Every message a queue ever had stays in queue_messages(queue, id,
//    payload, receive_count, visible_at (ns: when it is or was visible),
//    state, enqueued_at), state 0 live, 1 deleted, 2 dead-lettered (moved
//    to the dead-letter queue), 3 redriven (moved back from a dead-letter
//    queue) (QueueMessageState, system/messaging/schema.h), for auditors.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sim/storage.h"
#include "sim/time.h"
#include "system/messaging/broker_observer.h"
#include "system/messaging/schema.h"

namespace paylab::system {

struct QueueConfig {
  std::string name;
  std::string topic;  // the fan-out topic feeding it; "" for a dead-letter queue
  sim::Duration visibility_timeout = sim::kSecond;
  int64_t max_receives = 0;  // 0: never dead-letter
  std::string dead_letter;   // "" for none
};

struct QueueStoreOptions {
  // Hears of every mutating call (null: no audit).
  BrokerObserver* audit = nullptr;
  // DEFECT dead_letter_one_receive_early: the receive that would be a
  // message's max_receives-th moves it to the dead-letter queue instead
  // (an off-by-one: >= where the contract says more than).
  bool defect_dead_letter_early = false;
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
  QueueStore(sim::Database& db, std::vector<QueueConfig> queues, QueueStoreOptions options = {});
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

  void DoFanOut(std::string_view topic, std::string_view payload, sim::Time now);
  QueueStatus DoInject(std::string_view queue, std::string_view payload, sim::Time now);
  ReceiveReply DoReceive(std::string_view queue, int64_t max, sim::Time now);
  DeleteReply DoDelete(std::string_view queue, int64_t id, int64_t receipt);
  int64_t DoRedrive(std::string_view dlq, sim::Time now);
  // Audit: forgets the previous call's facts; notes one change of the call
  // being audited (when on).
  void BeginAudit();
  void Note(QueueChange c);

  sim::Database& db_;
  std::vector<QueueConfig> queues_;
  QueueStoreOptions options_;
  std::unique_ptr<Stmts> st_;
  // The facts of the call being audited, and the payloads they show that
  // the call's own variables do not outlive it.
  std::vector<QueueChange> call_changes_;
  std::deque<std::string> call_payloads_;
};

}  // namespace paylab::system
