// The audit view of the broker: every call of the broker's log
// (system/messaging/broker_log.h) and queues (system/messaging/queue_store.h) that can change
// their state, reported once it returns, with what was asked (the arguments
// and the virtual time), what was answered, and every fact the call
// committed. A reference model (checks/models/broker_model.h) predicts the same from
// the request alone and compares.
//
// Contract:
//  - Off unless a BrokerObserver is given to the log or the store (null: no
//    report, no cost). On, each mutating call is reported exactly once,
//    after it returned, in the order the calls were made; reads (Fetch,
//    EndOffset, Committed, Depth, ...) are not reported: they change
//    nothing.
//  - The log reports its opening (kOpen): the instant a broker (re)boots,
//    when the membership it keeps in memory starts empty.
//  - Everything a report points to (strings, spans, replies) lives only for
//    the duration of the callback: an observer copies what it keeps.
//  - Session expiry has no call of its own: the coordinator drops silent
//    members when a call touches their group (a heartbeat or a commit), so
//    the expiry is a fact of that call (GroupChange::left).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "sim/time.h"

namespace paylab::system {

struct PublishReply;
struct Assignment;
struct CommitReply;
struct ReceiveReply;
struct DeleteReply;
enum class QueueStatus : uint8_t;

enum class BrokerOp : uint8_t {
  kOpen,       // the log was opened (a broker boot): membership is empty
  kPublish,    // BrokerLog::Publish
  kHeartbeat,  // BrokerLog::Heartbeat
  kCommit,     // BrokerLog::Commit
  kFanOut,     // QueueStore::FanOut
  kInject,     // QueueStore::Inject
  kReceive,    // QueueStore::Receive
  kDelete,     // QueueStore::Delete
  kRedrive,    // QueueStore::Redrive
};
std::string_view BrokerOpName(BrokerOp op);

// The arguments of one call; fields an operation does not take stay zero.
struct BrokerRequest {
  BrokerOp op = BrokerOp::kPublish;
  std::string_view topic = {};        // publish, heartbeat, commit, fan-out
  std::string_view key = {};          // publish
  std::string_view payload = {};      // publish, fan-out, inject
  std::string_view producer = {};     // publish
  int64_t seq = 0;                    // publish
  std::string_view group = {};        // heartbeat, commit
  std::string_view member = {};       // heartbeat, commit
  int32_t partition = 0;              // commit
  int64_t next_offset = 0;            // commit
  sim::Duration session_timeout = 0;  // heartbeat, commit
  std::string_view queue = {};        // inject, receive, delete; redrive: the dead-letter queue
  int64_t max = 0;                    // receive
  int64_t id = 0;                     // delete
  int64_t receipt = 0;                // delete
  sim::Time now = 0;                  // every call but delete (it takes no time)
};

// A message appended to a partition's log.
struct AppendedMessage {
  std::string_view topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string_view key;
  std::string_view payload;
  std::string_view producer;
  int64_t seq = 0;
};

// A group's committed offset moved (it only ever grows).
struct OffsetCommitted {
  std::string_view group;
  std::string_view topic;
  int32_t partition = 0;
  int64_t from = 0;  // before the call (0: never committed)
  int64_t to = 0;
};

// What a heartbeat or a commit did to its group's membership: who left
// (silent for longer than the session timeout), whether the caller joined,
// and the members and generation after the call. Partitions are assigned
// from `members` (sorted by name): partition p to member p mod n.
struct GroupChange {
  std::string_view group = {};
  std::span<const std::string> left = {};  // sorted by name
  bool joined = false;
  int64_t generation_before = 0;  // 0: the group did not exist in memory
  int64_t generation = 0;
  std::span<const std::string> members = {};  // after the call, sorted by name
};

enum class QueueEvent : uint8_t {
  kEnqueued,      // a new message: id, payload, visible_at (when it becomes visible)
  kReceived,      // handed out: id, receive_count (the receipt), visible_at (its deadline)
  kDeleted,       // deleted with its current receipt
  kDeadLettered,  // moved to the dead-letter queue (an kEnqueued change there follows)
  kRedriven,      // moved from a dead-letter queue back (an kEnqueued change follows)
};
std::string_view QueueEventName(QueueEvent e);

struct QueueChange {
  QueueEvent event = QueueEvent::kEnqueued;
  std::string_view queue = {};
  int64_t id = 0;
  int64_t receive_count = 0;      // kReceived: the count after this receive
  sim::Time visible_at = 0;       // kEnqueued: visible from; kReceived: hidden until
  std::string_view payload = {};  // kEnqueued
};

struct BrokerApplied {
  const BrokerRequest& request;
  // The answer: the one the call's operation returns, others null.
  const PublishReply* publish = nullptr;
  const Assignment* assignment = nullptr;
  const CommitReply* commit = nullptr;
  const ReceiveReply* receive = nullptr;
  const DeleteReply* deleted = nullptr;
  const QueueStatus* inject = nullptr;
  int64_t redriven = 0;  // redrive: how many messages it moved back
  // The facts, in the order committed.
  std::span<const AppendedMessage> appended = {};
  std::span<const OffsetCommitted> committed = {};
  const GroupChange* group = nullptr;  // heartbeat and commit that reached the coordinator
  std::span<const QueueChange> queue = {};
};

class BrokerObserver {
 public:
  virtual ~BrokerObserver() = default;
  virtual void OnBrokerApplied(const BrokerApplied& a) = 0;
};

}  // namespace paylab::system
