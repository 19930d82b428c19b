// A reference model of the broker: a small in-memory executable
// specification of its topics (system/messaging/broker_log.h) and queues
// (system/messaging/queue_store.h), written from seeds 001 and 002 and the contracts in
// those headers, never from their code (it shares no helper for hashing,
// ordering, visibility or dead-lettering with system/; it uses only the
// broker's public record types).
//
// Fed each call the broker applied, in the order it applied it
// (system/messaging/broker_observer.h, BrokerApplied), the model predicts the answer and
// every fact: which partition and offset a message was appended at, or that
// it was a duplicate; which committed offset moved; who left a group, who
// joined, the generation and the members; which messages a receive handed
// out with which receipt and until when they are hidden, which it
// dead-lettered; which messages a delete removed, a redrive moved back.
// Check() compares the prediction with the facts and returns both sides on
// the first difference; the model then keeps the call's effect as it
// predicted it. New queue messages are named with the IDs the facts gave
// them (IDs cannot be predicted, only their use): the n-th new message of a
// queue in a call takes the n-th new ID the facts show for that queue, which
// must be above every ID the queue had.
//
// The rules (the specification):
//  - Topics. A topic has a fixed number of partitions; a message goes to
//    partition FNV-1a-64(key bytes) mod partitions. Offsets of a partition
//    start at 0 and have no gaps. An unknown topic is no_such_topic.
//  - Idempotent producer (topics configured so): a publish needs a producer
//    name and seq >= 0 (else invalid_argument); a seq at or below the
//    highest one appended for (topic, producer) appends nothing and answers
//    duplicate with the position of that highest seq's append. Other topics
//    append every publish.
//  - Fan-out (seeds 001, 002: SNS -> SQS): with the broker node's rule on,
//    every appended message is followed, as the very next call, by its
//    fan-out: one new message in every queue the topic feeds, visible at
//    once. A fan-out with no append before it, or anything between an
//    append and its fan-out (a boot included), is a difference.
//  - Committed offsets are durable, per (group, topic, partition), start at
//    0 and never move backwards: a commit below or at the committed offset
//    changes nothing and answers the committed offset. A commit needs a
//    non-empty group and member, a session timeout > 0, a known topic, a
//    partition in range, 0 <= offset <= the partition's end (else refused
//    with committed = 0, and the group is not touched).
//  - Membership is volatile: a boot (kOpen) forgets every group, generation
//    included. A call that touches a group (a heartbeat; a valid commit of
//    a group in memory) first drops the members silent for longer than the
//    session timeout (now - last heartbeat > timeout; at exactly the
//    timeout a member stays): all of them at once, one generation. Then a
//    heartbeat records the caller's heartbeat, and if it was not a member
//    it joins: another generation. The first join of a group makes
//    generation 1. Partition p of the call's topic goes to the member at
//    index p mod n of the members sorted by name (bytewise). A commit by a
//    member that does not own the partition now, or of a group not in
//    memory, is refused not_owner, answering the committed offset. A
//    commit is not a heartbeat.
//  - Queues. A message is visible from the instant it enters its queue. A
//    receive (max >= 1, a known queue) takes the first `max` visible
//    messages in id order; each one's receive count grows by one; if that
//    makes it more than max_receives (max_receives > 0, a dead-letter queue
//    configured) the message moves to the dead-letter queue (a new message
//    there, same payload, count 0) instead of being handed out; else it is
//    handed out with receipt = its count and hidden until now + the
//    visibility timeout. The visibility boundary: hidden while
//    now < deadline, visible again at now == deadline (one tick before, it
//    is not handed out; at the deadline it is).
//  - Delete: an unknown queue is no_such_queue; an ID the queue never had,
//    invalid_argument; a deleted message, ok again (whatever the receipt);
//    a message moved to or from a dead-letter queue, or a receipt that is
//    not its receive count (or < 1), stale_receipt; else ok, deleted.
//  - Redrive of a dead-letter queue moves every message it holds (visible
//    or not), in id order, back to the queue that dead-letters into it, as
//    new messages with count 0; a queue no queue dead-letters into moves
//    nothing. Inject puts one new message in a known queue (else
//    no_such_queue).
//
// Determinism: plain containers; lookups in hash maps never depend on their
// order; everything iterated is ordered.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sim/time.h"
#include "system/messaging/broker_observer.h"
#include "system/messaging/broker_log.h"
#include "system/messaging/queue_store.h"

namespace paylab::models {

using system::BrokerOp;
using system::BrokerStatus;
using system::QueueEvent;
using system::QueueStatus;

struct BrokerRules {
  std::vector<system::TopicConfig> topics;
  std::vector<system::QueueConfig> queues;
  // The calls come from the broker node, which fans every appended message
  // out as its very next call (off: the log and the queues are driven
  // separately, as in a unit test).
  bool fan_out_follows_append = false;
};

// What the model saw, for reports.
struct BrokerModelStats {
  int64_t requests = 0;
  int64_t boots = 0;
  int64_t refusals = 0;                // bad calls: no such topic or queue, invalid argument
  int64_t published = 0;               // messages appended
  int64_t duplicates_suppressed = 0;   // idempotent publishes that appended nothing
  int64_t commits = 0;                 // commits accepted (moved or not)
  int64_t commits_refused = 0;         // not_owner
  int64_t commits_behind = 0;          // accepted below the committed offset: ignored
  int64_t members_expired = 0;         // left silent for longer than the session timeout
  int64_t rebalances = 0;              // new generations
  int64_t receives = 0;                // messages handed out
  int64_t redeliveries = 0;            // handed out again after their visibility timeout
  int64_t on_visibility_boundary = 0;  // handed out again at the very deadline instant
  int64_t deleted = 0;
  int64_t stale_receipts = 0;
  int64_t dead_lettered = 0;
  int64_t redriven = 0;
};

// FNV-1a, 64 bits, over the bytes of `s`: the partition hash of the
// contract, and the model's fingerprint of payloads.
uint64_t Fnv1a64(std::string_view s);

class BrokerModel {
 public:
  explicit BrokerModel(BrokerRules rules);

  // Predicts `fact.request`, compares with the facts, then applies the
  // request. Returns "" when prediction and facts agree, else a report of
  // the first difference with both sides.
  std::string Check(const system::BrokerApplied& fact);

  // The model's state, to compare with the database at the end.
  struct LogMessage {
    std::string key;
    uint64_t payload_hash = 0;
    std::string producer;
    int64_t seq = 0;
  };
  // The messages of a partition, by offset; null for an unknown topic or
  // partition.
  const std::vector<LogMessage>* Partition(std::string_view topic, int32_t partition) const;
  int64_t message_count() const { return stats_.published; }
  // Committed offsets, by (group, topic, partition).
  using OffsetKey = std::tuple<std::string, std::string, int32_t>;
  const std::map<OffsetKey, int64_t>& committed() const { return committed_; }
  // Per (topic, producer): the highest seq and where it went.
  struct LastAppend {
    int64_t seq = 0;
    int32_t partition = 0;
    int64_t offset = 0;
  };
  const std::map<std::pair<std::string, std::string>, LastAppend>& producers() const {
    return producers_;
  }
  // Message states, as the contract names them.
  enum class MessageState : uint8_t { kLive, kDeleted, kDeadLettered, kRedriven };
  struct QueueMessage {
    MessageState state = MessageState::kLive;
    int64_t receive_count = 0;
    sim::Time visible_at = 0;  // live: when it is (or was) visible
    uint64_t payload_hash = 0;
  };
  const QueueMessage* QueueMessageOf(std::string_view queue, int64_t id) const;
  int64_t queue_message_count() const { return queue_messages_; }
  const BrokerModelStats& stats() const { return stats_; }

  // What a call is predicted to do.
  struct Change {
    QueueEvent event = QueueEvent::kEnqueued;
    // The model's own queue name, or the fact's: a prediction lives only
    // for the call it predicts (no copy per change).
    std::string_view queue = {};
    int64_t id = 0;
    int64_t receive_count = 0;
    sim::Time visible_at = 0;
    uint64_t payload_hash = 0;  // enqueued
    bool operator==(const Change&) const = default;
  };
  struct Handed {
    int64_t id = 0;
    int64_t receipt = 0;
    uint64_t payload_hash = 0;
    bool operator==(const Handed&) const = default;
  };
  struct Appended {
    int32_t partition = 0;
    int64_t offset = 0;
    std::string key;
    uint64_t payload_hash = 0;
    bool operator==(const Appended&) const = default;
  };
  struct Committed {
    int64_t from = 0;
    int64_t to = 0;
    bool operator==(const Committed&) const = default;
  };
  struct Group {
    std::vector<std::string> left = {};
    bool joined = false;
    int64_t generation_before = 0;
    int64_t generation = 0;
    std::vector<std::string> members = {};
    bool operator==(const Group&) const = default;
  };
  struct Prediction {
    BrokerStatus status = BrokerStatus::kOk;      // publish, heartbeat, commit
    QueueStatus queue_status = QueueStatus::kOk;  // inject, receive, delete
    int32_t partition = 0;                        // publish
    int64_t offset = 0;                           // publish
    bool duplicate = false;                       // publish
    int64_t generation = 0;                       // heartbeat
    std::vector<int32_t> partitions;              // heartbeat
    int64_t committed_offset = 0;                 // commit
    std::vector<Handed> handed;                   // receive
    int64_t dead_lettered = 0;                    // receive
    int64_t redriven = 0;                         // redrive
    std::optional<Appended> appended;
    std::optional<Committed> committed;
    std::optional<Group> group;
    std::vector<Change> changes;
    // A fact the model cannot even take (a new ID that is not new); set
    // while predicting, reported first.
    std::string broken;
  };

 private:
  struct Topic {
    system::TopicConfig config;
    std::vector<std::vector<LogMessage>> partitions;
  };
  struct GroupState {
    std::map<std::string, sim::Time> members;  // name -> last heartbeat, sorted by name
    int64_t generation = 0;
  };
  struct Queue {
    system::QueueConfig config;
    std::string source = {};  // the queue that dead-letters into this one, "" for none
    std::unordered_map<int64_t, QueueMessage> messages = {};  // every message it ever had
    int64_t last_id = 0;
    // Live messages, split at the instant the queue was last looked at:
    // visible then (by ID: the receive order), or hidden until later (by
    // the instant they become visible). No scan of every message per call.
    std::set<int64_t> visible = {};
    std::set<std::pair<sim::Time, int64_t>> hidden = {};
    sim::Time looked_at = 0;
  };
  struct PendingFanOut {
    std::string topic;
    uint64_t payload_hash = 0;
    int32_t partition = 0;
    int64_t offset = 0;
  };

  // --- the rules, each predicting into `p` and applying to the model ----
  void PredictOpen();
  void PredictPublish(const system::BrokerRequest& r, Prediction& p);
  void PredictHeartbeat(const system::BrokerRequest& r, Prediction& p);
  void PredictCommit(const system::BrokerRequest& r, Prediction& p);
  void PredictFanOut(const system::BrokerRequest& r, Prediction& p);
  void PredictInject(const system::BrokerRequest& r, Prediction& p);
  void PredictReceive(const system::BrokerRequest& r, Prediction& p);
  void PredictDelete(const system::BrokerRequest& r, Prediction& p);
  void PredictRedrive(const system::BrokerRequest& r, Prediction& p);

  // Drops the members silent for longer than the timeout (one generation
  // for all of them), into p.group.
  void ExpireMembers(GroupState& g, sim::Time now, sim::Duration timeout, Prediction& p);
  void NoteGroup(const GroupState& g, Prediction& p);
  // The member's partitions of a topic with `partitions` partitions.
  static std::vector<int32_t> Owned(const GroupState& g, std::string_view member,
                                    int32_t partitions);
  // A new message in `queue`, named by the facts.
  void Enqueue(Queue& q, uint64_t payload_hash, sim::Time now, Prediction& p);
  // Brings the queue's split between visible and hidden to `now`.
  void LookAt(Queue& q, sim::Time now);
  // Takes a live message out of the visible or hidden set.
  void Unlist(Queue& q, int64_t id);
  // Where a check of the fan-out order fails: "" when the call may come now.
  std::string CheckFanOutOrder(const system::BrokerApplied& fact);
  void CollectNewIds(const system::BrokerApplied& fact);

  Topic* FindTopic(std::string_view name);
  Queue* FindQueue(std::string_view name);

  // Compares p with the facts; "" when they agree.
  std::string Compare(const system::BrokerApplied& fact, const Prediction& p) const;
  std::string CompareAnswer(const system::BrokerApplied& fact, const Prediction& p) const;
  std::string CompareLogFacts(const system::BrokerApplied& fact, const Prediction& p) const;
  std::string CompareQueueFacts(const system::BrokerApplied& fact, const Prediction& p) const;

  BrokerRules rules_;
  std::vector<Topic> topics_;
  std::vector<Queue> queues_;
  std::map<std::pair<std::string, std::string>, LastAppend> producers_;
  std::map<OffsetKey, int64_t> committed_;
  std::map<std::string, GroupState> groups_;  // volatile: a boot forgets them
  std::optional<PendingFanOut> pending_fan_out_;
  int64_t queue_messages_ = 0;
  // The new IDs this call's facts give, per queue, in the order given; and
  // how many of each the prediction used.
  std::map<std::string, std::vector<int64_t>, std::less<>> new_ids_;
  std::map<std::string, size_t, std::less<>> new_ids_used_;
  BrokerModelStats stats_;
};

}  // namespace paylab::models
