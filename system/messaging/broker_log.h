// The broker's log: Kafka-like topics in one SQLite database (seeds 001,
// 002), synchronous, with no simulator inside, so the broker node, the
// stateful property test and the benchmark all drive the same code.
//
// Contract:
//  - A topic has a fixed number of partitions; a message goes to the
//    partition chosen by a stable hash of its key (FNV-1a of the key bytes,
//    modulo the partition count), so one key's messages keep their order.
//    Offsets within a partition start at 0 and have no gaps.
//  - Publish appends and answers with (partition, offset). Every append is
//    one transaction: a crash keeps exactly the acknowledged-or-not-yet-
//    acknowledged appends that committed; nothing is half written.
//  - Idempotent producer: when the topic is configured so, a publish
//    carries (producer, seq); a seq at or below the highest one already
//    appended for that (topic, producer) appends nothing and answers
//    duplicate = true with the position (partition, offset) of that highest
//    seq's append: the original one for a retry of the latest publish, the
//    producer's latest for an older replay (only the latest position is
//    kept; a producer waits only for its latest publish). Without it, a
//    retried publish appends again (at-least-once: duplicates are allowed).
//  - Consumer groups: committed offsets are durable, per (group, topic,
//    partition), and never move backwards (a lower commit is ignored and
//    answers the committed offset). Fetch reads from any offset; consumers
//    restart from the committed one.
//  - Group membership is volatile (it lives in the coordinator's memory, as
//    in Kafka): members heartbeat; a member silent for longer than the
//    session timeout leaves; every change of the member set is a new
//    generation, and partitions are assigned round-robin over the members
//    sorted by name (partition p goes to member p mod n). A commit from a
//    member that does not own the partition in the current generation is
//    refused (kNotOwner), as Kafka refuses a commit from a stale generation.
//    A broker crash drops membership (members and generation); members
//    rejoin by heartbeating. The coordinator notices silence when a call
//    touches the group (a heartbeat or a commit that names a valid
//    partition): the members silent too long then leave together, one
//    generation, before the caller's own join (another) is counted.
//  - Bad calls (unknown topic, a partition out of range, a negative offset,
//    a commit past the end of the partition, an empty member or group name,
//    a session timeout <= 0) get kInvalidArgument or kNoSuchTopic with a
//    reason, never a crash, and change nothing (a refused commit answers
//    committed = 0).
//  - Audit (system/messaging/broker_observer.h): with an observer, the opening and every
//    Publish, Heartbeat and Commit are reported once they return.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "sim/storage.h"
#include "sim/time.h"
#include "system/messaging/broker_observer.h"

namespace paylab::system {

struct TopicConfig {
  std::string name;
  int32_t partitions = 1;
  bool idempotent_producer = false;
};

enum class BrokerStatus : uint8_t { kOk, kNoSuchTopic, kInvalidArgument, kNotOwner };
std::string_view BrokerStatusName(BrokerStatus s);

struct PublishReply {
  BrokerStatus status = BrokerStatus::kOk;
  int32_t partition = 0;
  int64_t offset = 0;
  bool duplicate = false;  // idempotent producer: already appended earlier
  std::string_view reason;
};

struct Message {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string payload;
  std::string producer;
  int64_t seq = 0;
  sim::Time published_at = 0;
};

struct FetchReply {
  BrokerStatus status = BrokerStatus::kOk;
  std::vector<Message> messages;
  int64_t end_offset = 0;  // the offset the next append to the partition gets
  std::string_view reason;
};

struct Assignment {
  BrokerStatus status = BrokerStatus::kOk;
  int64_t generation = 0;
  std::vector<int32_t> partitions;  // ascending
  std::string_view reason;
};

struct CommitReply {
  BrokerStatus status = BrokerStatus::kOk;
  int64_t committed = 0;  // the group's committed offset after the call
  std::string_view reason;
};

class BrokerLog {
 public:
  // Creates the schema if missing. Topics are configuration: the same list
  // must be passed after every restart. `audit` (may be null: no audit)
  // hears of the opening, at `now`, and of every mutating call.
  BrokerLog(sim::Database& db, std::vector<TopicConfig> topics, BrokerObserver* audit = nullptr,
            sim::Time now = 0);
  ~BrokerLog();

  const std::vector<TopicConfig>& topics() const { return topics_; }
  // The partition `key` maps to. REQUIRES: the topic exists.
  int32_t PartitionFor(std::string_view topic, std::string_view key) const;

  PublishReply Publish(std::string_view topic, std::string_view key, std::string_view payload,
                       std::string_view producer, int64_t seq, sim::Time now);
  // Up to `max` messages from `offset` on (fewer at the end of the log).
  FetchReply Fetch(std::string_view topic, int32_t partition, int64_t offset, int64_t max);
  int64_t EndOffset(std::string_view topic, int32_t partition);

  // Heartbeat (joining if new); answers the member's partitions of `topic`.
  Assignment Heartbeat(std::string_view group, std::string_view member, std::string_view topic,
                       sim::Time now, sim::Duration session_timeout);
  CommitReply Commit(std::string_view group, std::string_view member, std::string_view topic,
                     int32_t partition, int64_t next_offset, sim::Time now,
                     sim::Duration session_timeout);
  int64_t Committed(std::string_view group, std::string_view topic, int32_t partition);

  int64_t appended() const { return appended_; }
  int64_t deduplicated() const { return deduplicated_; }
  int64_t rebalances() const { return rebalances_; }

 private:
  struct Stmts;
  struct Group {
    std::map<std::string, sim::Time> members;  // name -> last heartbeat
    int64_t generation = 0;
  };
  const TopicConfig* FindTopic(std::string_view name) const;
  // Drops members silent for longer than the timeout; a change bumps the
  // generation.
  void Expire(Group& g, sim::Time now, sim::Duration session_timeout);
  std::vector<int32_t> Owned(const Group& g, std::string_view member, int32_t partitions) const;

  PublishReply DoPublish(std::string_view topic, std::string_view key, std::string_view payload,
                         std::string_view producer, int64_t seq, sim::Time now);
  Assignment DoHeartbeat(std::string_view group, std::string_view member, std::string_view topic,
                         sim::Time now, sim::Duration session_timeout);
  CommitReply DoCommit(std::string_view group, std::string_view member, std::string_view topic,
                       int32_t partition, int64_t next_offset, sim::Time now,
                       sim::Duration session_timeout);
  // Audit: forgets the previous call's facts; notes a group's state.
  void BeginAudit();
  void NoteGroup(std::string_view name, const Group& g, int64_t generation_before, bool joined);

  sim::Database& db_;
  std::vector<TopicConfig> topics_;
  std::unique_ptr<Stmts> st_;
  std::map<std::string, Group, std::less<>> groups_;  // volatile, like Kafka's coordinator
  BrokerObserver* audit_;                             // null: no audit
  // The facts of the call being audited.
  std::vector<AppendedMessage> call_appended_;
  std::vector<OffsetCommitted> call_committed_;
  std::vector<std::string> call_left_;
  std::vector<std::string> call_members_;
  std::optional<GroupChange> call_group_;
  int64_t appended_ = 0;
  int64_t deduplicated_ = 0;
  int64_t rebalances_ = 0;
};

}  // namespace paylab::system
