// Implementation of the broker's log (see broker_log.h).
//
// Durable state is three tables plus the configuration: `messages` (the
// partitions' logs), `producer_seqs` (per topic and idempotent producer, the
// last appended seq and where it went) and `group_offsets` (committed
// offsets). `topics` mirrors the configuration so the sqlite3 shell shows it;
// it is written by the constructor and never read back for behaviour.
//
// Nothing is cached in memory except group membership, which the contract
// makes volatile: the next offset of a partition is MAX(offset) + 1, read
// inside the append's transaction (a primary-key lookup), so a recreated
// BrokerLog needs no recovery step.
//
// Idempotent producer: producer_seqs keeps only the last seq of each
// producer. A duplicate with seq == last_seq answers exactly the original
// (partition, offset); an older duplicate (seq < last_seq) answers
// duplicate = true with the position of the producer's *last* append, since
// the older one's position is not kept. A producer retries only its latest
// unacknowledged publish, so the older case is a late replay whose
// position nobody waits for.
#include "system/messaging/broker_log.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "sim/check.h"
#include "sim/random.h"

namespace paylab::system {

std::string_view BrokerStatusName(BrokerStatus s) {
  switch (s) {
    case BrokerStatus::kOk:
      return "ok";
    case BrokerStatus::kNoSuchTopic:
      return "no_such_topic";
    case BrokerStatus::kInvalidArgument:
      return "invalid_argument";
    case BrokerStatus::kNotOwner:
      return "not_owner";
  }
  return "unknown";
}

namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS topics(
  name TEXT PRIMARY KEY, partitions INTEGER NOT NULL, idempotent_producer INTEGER NOT NULL)
  WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages(
  topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL, key TEXT NOT NULL,
  payload TEXT NOT NULL, producer TEXT NOT NULL, seq INTEGER NOT NULL,
  published_at INTEGER NOT NULL, PRIMARY KEY(topic, partition, offset)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS producer_seqs(
  topic TEXT NOT NULL, producer TEXT NOT NULL, last_seq INTEGER NOT NULL,
  partition INTEGER NOT NULL, offset INTEGER NOT NULL, PRIMARY KEY(topic, producer)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_offsets(
  grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
  committed INTEGER NOT NULL, PRIMARY KEY(grp, topic, partition)) WITHOUT ROWID;
)sql";

constexpr std::string_view kReasonNoSuchTopic = "no such topic";
constexpr std::string_view kReasonBadPartition = "partition out of range";
constexpr std::string_view kReasonEmptyProducer = "an idempotent topic needs a producer name";
constexpr std::string_view kReasonNegativeSeq = "seq must be >= 0";
constexpr std::string_view kReasonNegativeOffset = "offset must be >= 0";
constexpr std::string_view kReasonNegativeMax = "max must be >= 0";
constexpr std::string_view kReasonEmptyGroup = "group name must not be empty";
constexpr std::string_view kReasonEmptyMember = "member name must not be empty";
constexpr std::string_view kReasonBadTimeout = "session timeout must be > 0";
constexpr std::string_view kReasonPastEnd = "offset is past the end of the partition";
constexpr std::string_view kReasonNotOwner =
    "the member does not own the partition in the current generation";

PublishReply PublishRefused(BrokerStatus s, std::string_view reason) {
  PublishReply r;
  r.status = s;
  r.reason = reason;
  return r;
}

FetchReply FetchRefused(BrokerStatus s, std::string_view reason) {
  FetchReply r;
  r.status = s;
  r.reason = reason;
  return r;
}

Assignment AssignmentRefused(BrokerStatus s, std::string_view reason) {
  Assignment r;
  r.status = s;
  r.reason = reason;
  return r;
}

CommitReply CommitRefused(BrokerStatus s, std::string_view reason, int64_t committed = 0) {
  CommitReply r;
  r.status = s;
  r.committed = committed;
  r.reason = reason;
  return r;
}

}  // namespace

struct BrokerLog::Stmts {
  explicit Stmts(sim::Database& db)
      : topic_get(db, "SELECT partitions FROM topics WHERE name = ?"),
        topic_put(db,
                  "INSERT INTO topics(name, partitions, idempotent_producer) VALUES(?, ?, ?) "
                  "ON CONFLICT(name) DO UPDATE SET partitions = excluded.partitions, "
                  "idempotent_producer = excluded.idempotent_producer"),
        end_offset(db,
                   "SELECT COALESCE(MAX(offset) + 1, 0) FROM messages "
                   "WHERE topic = ? AND partition = ?"),
        message_insert(db,
                       "INSERT INTO messages(topic, partition, offset, key, payload, producer, "
                       "seq, published_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?)"),
        messages_from(db,
                      "SELECT offset, key, payload, producer, seq, published_at FROM messages "
                      "WHERE topic = ? AND partition = ? AND offset >= ? ORDER BY offset LIMIT ?"),
        producer_get(db,
                     "SELECT last_seq, partition, offset FROM producer_seqs "
                     "WHERE topic = ? AND producer = ?"),
        producer_put(db,
                     "INSERT INTO producer_seqs(topic, producer, last_seq, partition, offset) "
                     "VALUES(?, ?, ?, ?, ?) ON CONFLICT(topic, producer) DO UPDATE SET "
                     "last_seq = excluded.last_seq, partition = excluded.partition, "
                     "offset = excluded.offset"),
        committed_get(db,
                      "SELECT committed FROM group_offsets "
                      "WHERE grp = ? AND topic = ? AND partition = ?"),
        committed_put(db,
                      "INSERT INTO group_offsets(grp, topic, partition, committed) "
                      "VALUES(?, ?, ?, ?) ON CONFLICT(grp, topic, partition) DO UPDATE SET "
                      "committed = excluded.committed") {}

  sim::Statement topic_get, topic_put, end_offset, message_insert, messages_from, producer_get,
      producer_put, committed_get, committed_put;
};

BrokerLog::BrokerLog(sim::Database& db, std::vector<TopicConfig> topics, BrokerObserver* audit,
                     sim::Time now)
    : db_(db), topics_(std::move(topics)), audit_(audit) {
  for (size_t i = 0; i < topics_.size(); ++i) {
    PAYLAB_CHECK(!topics_[i].name.empty());
    PAYLAB_CHECK(topics_[i].partitions >= 1);
    for (size_t j = 0; j < i; ++j) {
      PAYLAB_CHECK(topics_[j].name != topics_[i].name);
    }
  }
  db_.ExecScript(kSchema);
  st_ = std::make_unique<Stmts>(db_);
  sim::Transaction txn(db_);
  for (const TopicConfig& t : topics_) {
    // A changed partition count would send keys to other partitions and
    // break per-key order: the configuration must be the same after a
    // restart (adding topics is fine).
    st_->topic_get.Bind(1, t.name);
    if (st_->topic_get.Step()) {
      PAYLAB_CHECK(st_->topic_get.Int(0) == t.partitions);
    }
    st_->topic_get.Reset();
    st_->topic_put.Bind(1, t.name)
        .Bind(2, static_cast<int64_t>(t.partitions))
        .Bind(3, static_cast<int64_t>(t.idempotent_producer ? 1 : 0))
        .Exec();
  }
  txn.Commit();
  if (audit_ != nullptr) {
    BeginAudit();
    const BrokerRequest request{.op = BrokerOp::kOpen, .now = now};
    audit_->OnBrokerApplied(BrokerApplied{.request = request});
  }
}

BrokerLog::~BrokerLog() = default;

void BrokerLog::BeginAudit() {
  call_appended_.clear();
  call_committed_.clear();
  call_left_.clear();
  call_members_.clear();
  call_group_.reset();
}

void BrokerLog::NoteGroup(std::string_view name, const Group& g, int64_t generation_before,
                          bool joined) {
  for (const auto& [member, last] : g.members) {
    call_members_.push_back(member);
  }
  call_group_ = GroupChange{.group = name,
                            .left = call_left_,
                            .joined = joined,
                            .generation_before = generation_before,
                            .generation = g.generation,
                            .members = call_members_};
}

const TopicConfig* BrokerLog::FindTopic(std::string_view name) const {
  for (const TopicConfig& t : topics_) {
    if (t.name == name) {
      return &t;
    }
  }
  return nullptr;
}

int32_t BrokerLog::PartitionFor(std::string_view topic, std::string_view key) const {
  const TopicConfig* t = FindTopic(topic);
  PAYLAB_CHECK(t != nullptr);
  return static_cast<int32_t>(sim::HashName(key) % static_cast<uint64_t>(t->partitions));
}

PublishReply BrokerLog::Publish(std::string_view topic, std::string_view key,
                                std::string_view payload, std::string_view producer, int64_t seq,
                                sim::Time now) {
  if (audit_ == nullptr) {
    return DoPublish(topic, key, payload, producer, seq, now);
  }
  BeginAudit();
  const PublishReply reply = DoPublish(topic, key, payload, producer, seq, now);
  const BrokerRequest request{.op = BrokerOp::kPublish,
                              .topic = topic,
                              .key = key,
                              .payload = payload,
                              .producer = producer,
                              .seq = seq,
                              .now = now};
  audit_->OnBrokerApplied(
      BrokerApplied{.request = request, .publish = &reply, .appended = call_appended_});
  return reply;
}

PublishReply BrokerLog::DoPublish(std::string_view topic, std::string_view key,
                                  std::string_view payload, std::string_view producer, int64_t seq,
                                  sim::Time now) {
  const TopicConfig* t = FindTopic(topic);
  if (t == nullptr) {
    return PublishRefused(BrokerStatus::kNoSuchTopic, kReasonNoSuchTopic);
  }
  if (t->idempotent_producer && producer.empty()) {
    return PublishRefused(BrokerStatus::kInvalidArgument, kReasonEmptyProducer);
  }
  if (t->idempotent_producer && seq < 0) {
    return PublishRefused(BrokerStatus::kInvalidArgument, kReasonNegativeSeq);
  }
  sim::Transaction txn(db_);
  if (t->idempotent_producer) {
    auto& q = st_->producer_get;
    q.Bind(1, topic).Bind(2, producer);
    if (q.Step() && seq <= q.Int(0)) {
      PublishReply dup;
      dup.partition = static_cast<int32_t>(q.Int(1));
      dup.offset = q.Int(2);
      dup.duplicate = true;
      q.Reset();
      ++deduplicated_;
      return dup;  // Read only: the transaction rolls back.
    }
    q.Reset();
  }
  PublishReply reply;
  reply.partition = PartitionFor(topic, key);
  reply.offset = EndOffset(topic, reply.partition);
  st_->message_insert.Bind(1, topic)
      .Bind(2, static_cast<int64_t>(reply.partition))
      .Bind(3, reply.offset)
      .Bind(4, key)
      .Bind(5, payload)
      .Bind(6, producer)
      .Bind(7, seq)
      .Bind(8, now)
      .Exec();
  if (t->idempotent_producer) {
    st_->producer_put.Bind(1, topic)
        .Bind(2, producer)
        .Bind(3, seq)
        .Bind(4, static_cast<int64_t>(reply.partition))
        .Bind(5, reply.offset)
        .Exec();
  }
  txn.Commit();
  ++appended_;
  if (audit_ != nullptr) {
    call_appended_.push_back(
        AppendedMessage{topic, reply.partition, reply.offset, key, payload, producer, seq});
  }
  return reply;
}

FetchReply BrokerLog::Fetch(std::string_view topic, int32_t partition, int64_t offset,
                            int64_t max) {
  const TopicConfig* t = FindTopic(topic);
  if (t == nullptr) {
    return FetchRefused(BrokerStatus::kNoSuchTopic, kReasonNoSuchTopic);
  }
  if (partition < 0 || partition >= t->partitions) {
    return FetchRefused(BrokerStatus::kInvalidArgument, kReasonBadPartition);
  }
  if (offset < 0) {
    return FetchRefused(BrokerStatus::kInvalidArgument, kReasonNegativeOffset);
  }
  if (max < 0) {
    return FetchRefused(BrokerStatus::kInvalidArgument, kReasonNegativeMax);
  }
  FetchReply reply;
  reply.end_offset = EndOffset(topic, partition);
  auto& q = st_->messages_from;
  q.Bind(1, topic).Bind(2, static_cast<int64_t>(partition)).Bind(3, offset).Bind(4, max);
  int64_t expected = offset;  // offsets have no gaps: assert it on the read path
  while (static_cast<int64_t>(reply.messages.size()) < max && q.Step()) {
    Message m;
    m.topic = std::string(topic);
    m.partition = partition;
    m.offset = q.Int(0);
    m.key = std::string(q.Text(1));
    m.payload = std::string(q.Text(2));
    m.producer = std::string(q.Text(3));
    m.seq = q.Int(4);
    m.published_at = q.Int(5);
    PAYLAB_CHECK(m.offset == expected);
    ++expected;
    reply.messages.push_back(std::move(m));
  }
  q.Reset();
  PAYLAB_CHECK(reply.messages.empty() || reply.messages.back().offset < reply.end_offset);
  return reply;
}

// REQUIRES: the topic exists and the partition is in range (there is no
// status to answer with; Fetch answers the end offset of an unchecked
// partition with a status).
int64_t BrokerLog::EndOffset(std::string_view topic, int32_t partition) {
  const TopicConfig* t = FindTopic(topic);
  PAYLAB_CHECK(t != nullptr);
  PAYLAB_CHECK(partition >= 0);
  PAYLAB_CHECK(partition < t->partitions);
  auto& q = st_->end_offset;
  q.Bind(1, topic).Bind(2, static_cast<int64_t>(partition));
  PAYLAB_CHECK(q.Step());
  const int64_t end = q.Int(0);
  q.Reset();
  PAYLAB_CHECK(end >= 0);
  return end;
}

void BrokerLog::Expire(Group& g, sim::Time now, sim::Duration session_timeout) {
  const size_t before = g.members.size();
  for (auto it = g.members.begin(); it != g.members.end();) {
    if (now - it->second <= session_timeout) {
      ++it;
      continue;
    }
    if (audit_ != nullptr) {
      call_left_.push_back(it->first);
    }
    it = g.members.erase(it);
  }
  if (g.members.size() != before) {
    ++g.generation;
    ++rebalances_;
  }
}

std::vector<int32_t> BrokerLog::Owned(const Group& g, std::string_view member,
                                      int32_t partitions) const {
  std::vector<int32_t> owned;
  const auto it = g.members.find(std::string(member));
  if (it == g.members.end()) {
    return owned;
  }
  const int32_t n = static_cast<int32_t>(g.members.size());
  const int32_t index = static_cast<int32_t>(std::distance(g.members.begin(), it));
  for (int32_t p = index; p < partitions; p += n) {
    owned.push_back(p);
  }
  return owned;
}

Assignment BrokerLog::Heartbeat(std::string_view group, std::string_view member,
                                std::string_view topic, sim::Time now,
                                sim::Duration session_timeout) {
  if (audit_ == nullptr) {
    return DoHeartbeat(group, member, topic, now, session_timeout);
  }
  BeginAudit();
  const Assignment reply = DoHeartbeat(group, member, topic, now, session_timeout);
  const BrokerRequest request{.op = BrokerOp::kHeartbeat,
                              .topic = topic,
                              .group = group,
                              .member = member,
                              .session_timeout = session_timeout,
                              .now = now};
  audit_->OnBrokerApplied(BrokerApplied{
      .request = request, .assignment = &reply, .group = call_group_ ? &*call_group_ : nullptr});
  return reply;
}

Assignment BrokerLog::DoHeartbeat(std::string_view group, std::string_view member,
                                  std::string_view topic, sim::Time now,
                                  sim::Duration session_timeout) {
  if (group.empty()) {
    return AssignmentRefused(BrokerStatus::kInvalidArgument, kReasonEmptyGroup);
  }
  if (member.empty()) {
    return AssignmentRefused(BrokerStatus::kInvalidArgument, kReasonEmptyMember);
  }
  if (session_timeout <= 0) {
    return AssignmentRefused(BrokerStatus::kInvalidArgument, kReasonBadTimeout);
  }
  const TopicConfig* t = FindTopic(topic);
  if (t == nullptr) {
    return AssignmentRefused(BrokerStatus::kNoSuchTopic, kReasonNoSuchTopic);
  }
  auto git = groups_.find(group);
  if (git == groups_.end()) {
    git = groups_.emplace(std::string(group), Group{}).first;
  }
  Group& g = git->second;
  const int64_t generation_before = g.generation;
  // A member silent too long leaves before the caller is counted, so one
  // heartbeat may be two generations: the expiry and the caller's (re)join.
  Expire(g, now, session_timeout);
  const auto [it, joined] = g.members.insert_or_assign(std::string(member), now);
  if (joined) {
    ++g.generation;
    ++rebalances_;
  }
  if (audit_ != nullptr) {
    NoteGroup(git->first, g, generation_before, joined);
  }
  Assignment a;
  a.generation = g.generation;
  a.partitions = Owned(g, member, t->partitions);
  return a;
}

CommitReply BrokerLog::Commit(std::string_view group, std::string_view member,
                              std::string_view topic, int32_t partition, int64_t next_offset,
                              sim::Time now, sim::Duration session_timeout) {
  if (audit_ == nullptr) {
    return DoCommit(group, member, topic, partition, next_offset, now, session_timeout);
  }
  BeginAudit();
  const CommitReply reply =
      DoCommit(group, member, topic, partition, next_offset, now, session_timeout);
  const BrokerRequest request{.op = BrokerOp::kCommit,
                              .topic = topic,
                              .group = group,
                              .member = member,
                              .partition = partition,
                              .next_offset = next_offset,
                              .session_timeout = session_timeout,
                              .now = now};
  audit_->OnBrokerApplied(BrokerApplied{.request = request,
                                        .commit = &reply,
                                        .committed = call_committed_,
                                        .group = call_group_ ? &*call_group_ : nullptr});
  return reply;
}

CommitReply BrokerLog::DoCommit(std::string_view group, std::string_view member,
                                std::string_view topic, int32_t partition, int64_t next_offset,
                                sim::Time now, sim::Duration session_timeout) {
  if (group.empty()) {
    return CommitRefused(BrokerStatus::kInvalidArgument, kReasonEmptyGroup);
  }
  if (member.empty()) {
    return CommitRefused(BrokerStatus::kInvalidArgument, kReasonEmptyMember);
  }
  if (session_timeout <= 0) {
    return CommitRefused(BrokerStatus::kInvalidArgument, kReasonBadTimeout);
  }
  const TopicConfig* t = FindTopic(topic);
  if (t == nullptr) {
    return CommitRefused(BrokerStatus::kNoSuchTopic, kReasonNoSuchTopic);
  }
  if (partition < 0 || partition >= t->partitions) {
    return CommitRefused(BrokerStatus::kInvalidArgument, kReasonBadPartition);
  }
  if (next_offset < 0) {
    return CommitRefused(BrokerStatus::kInvalidArgument, kReasonNegativeOffset);
  }
  if (next_offset > EndOffset(topic, partition)) {
    return CommitRefused(BrokerStatus::kInvalidArgument, kReasonPastEnd);
  }
  const int64_t existing = Committed(group, topic, partition);
  const auto git = groups_.find(group);
  if (git == groups_.end()) {
    return CommitRefused(BrokerStatus::kNotOwner, kReasonNotOwner, existing);
  }
  Group& g = git->second;
  const int64_t generation_before = g.generation;
  Expire(g, now, session_timeout);
  if (audit_ != nullptr) {
    NoteGroup(git->first, g, generation_before, false);
  }
  const std::vector<int32_t> owned = Owned(g, member, t->partitions);
  if (!std::binary_search(owned.begin(), owned.end(), partition)) {
    return CommitRefused(BrokerStatus::kNotOwner, kReasonNotOwner, existing);
  }
  CommitReply reply;
  reply.committed = existing;
  if (next_offset > existing) {
    // A single upsert is one implicit transaction; the value only grows
    // because it is written only when larger than the stored one.
    st_->committed_put.Bind(1, group)
        .Bind(2, topic)
        .Bind(3, static_cast<int64_t>(partition))
        .Bind(4, next_offset)
        .Exec();
    reply.committed = next_offset;
    if (audit_ != nullptr) {
      call_committed_.push_back(OffsetCommitted{group, topic, partition, existing, next_offset});
    }
  }
  PAYLAB_CHECK(reply.committed >= existing);
  return reply;
}

// REQUIRES: a non-empty group, the topic exists and the partition is in
// range. Answers 0 when the group never committed the partition.
int64_t BrokerLog::Committed(std::string_view group, std::string_view topic, int32_t partition) {
  const TopicConfig* t = FindTopic(topic);
  PAYLAB_CHECK(!group.empty());
  PAYLAB_CHECK(t != nullptr);
  PAYLAB_CHECK(partition >= 0);
  PAYLAB_CHECK(partition < t->partitions);
  auto& q = st_->committed_get;
  q.Bind(1, group).Bind(2, topic).Bind(3, static_cast<int64_t>(partition));
  const int64_t committed = q.Step() ? q.Int(0) : 0;
  q.Reset();
  PAYLAB_CHECK(committed >= 0);
  return committed;
}

}  // namespace paylab::system
