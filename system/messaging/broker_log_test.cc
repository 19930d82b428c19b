// Unit tests for the broker's log (system/messaging/broker_log.h), driven synchronously on an in-memory
// database with two topics: "orders" (3 partitions, idempotent producer) and "audit"
// (2 partitions, at-least-once).
//
// Exercises key partitioning, gap-free offsets per partition, fetch ranges and end offsets,
// duplicates with and without the idempotent producer, committed offsets, consumer-group
// membership (joins, leaves by expiry, generations, round-robin assignment, refused commits) and
// refusals of bad calls. A "crash" destroys the BrokerLog and constructs a new one on the same
// Database: the log, the producers' sequence numbers and the committed offsets must survive it;
// membership must not, and heartbeats must rebuild it.
#include "system/messaging/broker_log.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sim/check.h"
#include "sim/random.h"
#include "sim/storage.h"
#include "sim/time.h"

namespace paylab::system {

namespace {

constexpr sim::Duration kTimeout = 10 * sim::kSecond;

std::vector<TopicConfig> Topics() {
  return {TopicConfig{.name = "orders", .partitions = 3, .idempotent_producer = true},
          TopicConfig{.name = "audit", .partitions = 2, .idempotent_producer = false}};
}

// The first few keys ("k0", "k1", ...) that `orders` sends to `partition`.
std::vector<std::string> KeysFor(const BrokerLog& log, int32_t partition, size_t count) {
  std::vector<std::string> keys;
  for (int i = 0; keys.size() < count && i < 1000; ++i) {
    std::string k = "k" + std::to_string(i);
    if (log.PartitionFor("orders", k) == partition) {
      keys.push_back(k);
    }
  }
  return keys;
}

class BrokerLogTest : public ::testing::Test {
 protected:
  BrokerLogTest() : log_(std::make_unique<BrokerLog>(db_, Topics())) {}

  // Destroys the log and recreates it on the same database, as a node restart does.
  void Crash() {
    log_.reset();
    log_ = std::make_unique<BrokerLog>(db_, Topics());
  }

  PublishReply Publish(std::string_view topic, std::string_view key, std::string_view producer,
                       int64_t seq, sim::Time now = 0) {
    return log_->Publish(topic, key, "payload-" + std::string(key), producer, seq, now);
  }

  Assignment Join(std::string_view member, sim::Time now) {
    return log_->Heartbeat("g", member, "orders", now, kTimeout);
  }

  sim::Database db_;
  std::unique_ptr<BrokerLog> log_;
};

// --- partitioning -------------------------------------------------------------------------

TEST_F(BrokerLogTest, PartitionIsFnv1aOfTheKeyModuloThePartitionCount) {
  for (std::string key : {"", "a", "user-42", "k17"}) {
    EXPECT_EQ(log_->PartitionFor("orders", key), static_cast<int32_t>(sim::HashName(key) % 3))
        << key;
    EXPECT_EQ(log_->PartitionFor("audit", key), static_cast<int32_t>(sim::HashName(key) % 2))
        << key;
  }
}

TEST_F(BrokerLogTest, OneKeysMessagesAllGoToItsPartition) {
  const int32_t p = log_->PartitionFor("audit", "user-7");
  for (int i = 0; i < 5; ++i) {
    const PublishReply r = Publish("audit", "user-7", "", 0);
    EXPECT_EQ(r.partition, p);
    EXPECT_EQ(r.offset, i);
  }
  EXPECT_EQ(log_->EndOffset("audit", p), 5);
  EXPECT_EQ(log_->EndOffset("audit", 1 - p), 0);
}

TEST_F(BrokerLogTest, PartitionOfAKeyIsStableAcrossACrash) {
  const int32_t before = log_->PartitionFor("orders", "user-42");
  Crash();
  EXPECT_EQ(log_->PartitionFor("orders", "user-42"), before);
}

TEST_F(BrokerLogTest, KeysSpreadOverEveryPartition) {
  for (int32_t p = 0; p < 3; ++p) {
    EXPECT_EQ(KeysFor(*log_, p, 2).size(), 2u) << p;
  }
}

// --- offsets and fetch --------------------------------------------------------------------

TEST_F(BrokerLogTest, OffsetsStartAtZeroPerPartitionWithoutGaps) {
  const std::vector<std::string> k0 = KeysFor(*log_, 0, 3);
  const std::vector<std::string> k2 = KeysFor(*log_, 2, 2);
  int64_t seq = 0;
  const std::vector<std::pair<std::string, int64_t>> sends = {
      {k0[0], 0}, {k2[0], 0}, {k0[1], 1}, {k0[2], 2}, {k2[1], 1}};
  for (const auto& [key, offset] : sends) {
    const PublishReply r = Publish("orders", key, "p1", seq++);
    EXPECT_EQ(r.status, BrokerStatus::kOk);
    EXPECT_EQ(r.offset, offset) << key;
    EXPECT_FALSE(r.duplicate);
  }
  EXPECT_EQ(log_->EndOffset("orders", 0), 3);
  EXPECT_EQ(log_->EndOffset("orders", 1), 0);
  EXPECT_EQ(log_->EndOffset("orders", 2), 2);
  EXPECT_EQ(log_->appended(), 5);
}

TEST_F(BrokerLogTest, OffsetsContinueAfterACrash) {
  const std::string key = KeysFor(*log_, 1, 1)[0];
  Publish("orders", key, "p1", 0);
  Publish("orders", key, "p1", 1);
  Crash();
  const PublishReply r = Publish("orders", key, "p1", 2);
  EXPECT_EQ(r.partition, 1);
  EXPECT_EQ(r.offset, 2);
  EXPECT_EQ(log_->appended(), 1);  // counters are per process
}

TEST_F(BrokerLogTest, FetchReturnsUpToMaxMessagesFromTheOffset) {
  const std::string key = KeysFor(*log_, 0, 1)[0];
  for (int64_t seq = 0; seq < 5; ++seq) {
    log_->Publish("orders", key, "m" + std::to_string(seq), "p1", seq, 100 + seq);
  }
  const FetchReply r = log_->Fetch("orders", 0, 1, 3);
  ASSERT_EQ(r.status, BrokerStatus::kOk);
  EXPECT_EQ(r.end_offset, 5);
  ASSERT_EQ(r.messages.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const Message& m = r.messages[i];
    EXPECT_EQ(m.topic, "orders");
    EXPECT_EQ(m.partition, 0);
    EXPECT_EQ(m.offset, static_cast<int64_t>(i) + 1);
    EXPECT_EQ(m.key, key);
    EXPECT_EQ(m.payload, "m" + std::to_string(i + 1));
    EXPECT_EQ(m.producer, "p1");
    EXPECT_EQ(m.seq, static_cast<int64_t>(i) + 1);
    EXPECT_EQ(m.published_at, 101 + static_cast<int64_t>(i));
  }
}

TEST_F(BrokerLogTest, FetchNearTheEndReturnsFewer) {
  const std::string key = KeysFor(*log_, 2, 1)[0];
  for (int64_t seq = 0; seq < 4; ++seq) {
    Publish("orders", key, "p1", seq);
  }
  const FetchReply r = log_->Fetch("orders", 2, 2, 10);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].offset, 2);
  EXPECT_EQ(r.messages[1].offset, 3);
  EXPECT_EQ(r.end_offset, 4);
}

TEST_F(BrokerLogTest, FetchAtOrPastTheEndIsEmptyWithTheEndOffset) {
  const std::string key = KeysFor(*log_, 2, 1)[0];
  Publish("orders", key, "p1", 0);
  Publish("orders", key, "p1", 1);
  for (int64_t offset : {2, 7}) {
    const FetchReply r = log_->Fetch("orders", 2, offset, 10);
    EXPECT_EQ(r.status, BrokerStatus::kOk);
    EXPECT_TRUE(r.messages.empty());
    EXPECT_EQ(r.end_offset, 2);
  }
}

TEST_F(BrokerLogTest, FetchOfAnEmptyPartitionAndMaxZeroAreEmpty) {
  Publish("orders", KeysFor(*log_, 0, 1)[0], "p1", 0);
  const FetchReply empty = log_->Fetch("orders", 1, 0, 10);
  EXPECT_TRUE(empty.messages.empty());
  EXPECT_EQ(empty.end_offset, 0);
  const FetchReply none = log_->Fetch("orders", 0, 0, 0);
  EXPECT_TRUE(none.messages.empty());
  EXPECT_EQ(none.end_offset, 1);
}

// --- duplicates ---------------------------------------------------------------------------

TEST_F(BrokerLogTest, RetryWithoutIdempotentProducerAppendsADuplicate) {
  const PublishReply first = Publish("audit", "user-7", "p1", 0);
  const PublishReply retry = Publish("audit", "user-7", "p1", 0);
  EXPECT_EQ(retry.status, BrokerStatus::kOk);
  EXPECT_EQ(retry.partition, first.partition);
  EXPECT_EQ(first.offset, 0);
  EXPECT_EQ(retry.offset, 1);
  EXPECT_FALSE(retry.duplicate);
  EXPECT_EQ(log_->EndOffset("audit", first.partition), 2);
  EXPECT_EQ(log_->appended(), 2);
  EXPECT_EQ(log_->deduplicated(), 0);
}

TEST_F(BrokerLogTest, RepeatedProducerSeqAppendsNothingAndAnswersTheOriginal) {
  const std::string key = KeysFor(*log_, 1, 1)[0];
  Publish("orders", key, "p1", 0);
  const PublishReply first = Publish("orders", key, "p1", 1);
  const PublishReply retry = Publish("orders", key, "p1", 1);
  EXPECT_EQ(retry.status, BrokerStatus::kOk);
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.partition, 1);
  EXPECT_EQ(retry.offset, 1);
  EXPECT_EQ(first.offset, 1);
  EXPECT_EQ(log_->EndOffset("orders", 1), 2);
  EXPECT_EQ(log_->appended(), 2);
  EXPECT_EQ(log_->deduplicated(), 1);
}

TEST_F(BrokerLogTest, RetryWithADifferentKeyIsStillTheOriginal) {
  // The seq identifies the publish; a retry answers where the first one went.
  const std::string k0 = KeysFor(*log_, 0, 1)[0];
  const std::string k2 = KeysFor(*log_, 2, 1)[0];
  Publish("orders", k0, "p1", 0);
  const PublishReply retry = Publish("orders", k2, "p1", 0);
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.partition, 0);
  EXPECT_EQ(retry.offset, 0);
  EXPECT_EQ(log_->EndOffset("orders", 2), 0);
}

TEST_F(BrokerLogTest, RepeatedProducerSeqIsRecognisedAfterACrash) {
  const std::string key = KeysFor(*log_, 2, 1)[0];
  Publish("orders", key, "p1", 0);
  Publish("orders", key, "p1", 1);
  Crash();
  const PublishReply retry = Publish("orders", key, "p1", 1);
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(retry.partition, 2);
  EXPECT_EQ(retry.offset, 1);
  EXPECT_EQ(log_->EndOffset("orders", 2), 2);
  EXPECT_EQ(log_->appended(), 0);
  EXPECT_EQ(log_->deduplicated(), 1);
}

TEST_F(BrokerLogTest, OlderSeqIsADuplicateAnsweringTheLastPosition) {
  // Only the last seq's position is kept: an older replay hears where the producer's last
  // append went (documented in broker_log.cc).
  const std::string k0 = KeysFor(*log_, 0, 1)[0];
  const std::string k1 = KeysFor(*log_, 1, 1)[0];
  Publish("orders", k0, "p1", 0);
  Publish("orders", k1, "p1", 1);
  const PublishReply old = Publish("orders", k0, "p1", 0);
  EXPECT_TRUE(old.duplicate);
  EXPECT_EQ(old.partition, 1);
  EXPECT_EQ(old.offset, 0);
  EXPECT_EQ(log_->EndOffset("orders", 0), 1);
}

TEST_F(BrokerLogTest, ProducersHaveIndependentSequences) {
  const std::string key = KeysFor(*log_, 0, 1)[0];
  Publish("orders", key, "p1", 0);
  const PublishReply other = Publish("orders", key, "p2", 0);
  EXPECT_FALSE(other.duplicate);
  EXPECT_EQ(other.offset, 1);
}

TEST_F(BrokerLogTest, SeqGapIsAcceptedAndAppends) {
  const std::string key = KeysFor(*log_, 0, 1)[0];
  Publish("orders", key, "p1", 0);
  const PublishReply r = Publish("orders", key, "p1", 5);
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(r.offset, 1);
}

// --- committed offsets --------------------------------------------------------------------

class BrokerCommitTest : public BrokerLogTest {
 protected:
  // Three messages in partition 0 of orders; member "a" alone in group "g" owns 0, 1 and 2.
  BrokerCommitTest() {
    const std::string key = KeysFor(*log_, 0, 1)[0];
    for (int64_t seq = 0; seq < 3; ++seq) {
      Publish("orders", key, "p1", seq);
    }
    Join("a", 0);
  }
  CommitReply Commit(std::string_view member, int32_t partition, int64_t next, sim::Time now) {
    return log_->Commit("g", member, "orders", partition, next, now, kTimeout);
  }
};

TEST_F(BrokerCommitTest, NothingCommittedReadsZero) {
  EXPECT_EQ(log_->Committed("g", "orders", 0), 0);
}

TEST_F(BrokerCommitTest, CommitStoresAndAnswersTheOffset) {
  const CommitReply r = Commit("a", 0, 2, 1);
  EXPECT_EQ(r.status, BrokerStatus::kOk);
  EXPECT_EQ(r.committed, 2);
  EXPECT_EQ(log_->Committed("g", "orders", 0), 2);
  EXPECT_EQ(log_->Committed("g", "orders", 1), 0);
  EXPECT_EQ(log_->Committed("other", "orders", 0), 0);
}

TEST_F(BrokerCommitTest, LowerCommitIsIgnored) {
  Commit("a", 0, 3, 1);
  const CommitReply r = Commit("a", 0, 1, 2);
  EXPECT_EQ(r.status, BrokerStatus::kOk);
  EXPECT_EQ(r.committed, 3);
  EXPECT_EQ(log_->Committed("g", "orders", 0), 3);
}

TEST_F(BrokerCommitTest, CommittedOffsetSurvivesACrash) {
  Commit("a", 0, 2, 1);
  Crash();
  EXPECT_EQ(log_->Committed("g", "orders", 0), 2);
}

TEST_F(BrokerCommitTest, CommittedOffsetNeverMovesBackAfterACrash) {
  Commit("a", 0, 3, 1);
  Crash();
  Join("a", 2);
  const CommitReply r = Commit("a", 0, 1, 3);
  EXPECT_EQ(r.status, BrokerStatus::kOk);
  EXPECT_EQ(r.committed, 3);
  EXPECT_EQ(log_->Committed("g", "orders", 0), 3);
}

TEST_F(BrokerCommitTest, CommitPastTheEndIsRefused) {
  const CommitReply r = Commit("a", 0, 4, 1);
  EXPECT_EQ(r.status, BrokerStatus::kInvalidArgument);
  EXPECT_FALSE(r.reason.empty());
  EXPECT_EQ(log_->Committed("g", "orders", 0), 0);
}

TEST_F(BrokerCommitTest, CommitOfTheEndOffsetIsAccepted) {
  EXPECT_EQ(Commit("a", 0, 3, 1).committed, 3);
}

TEST_F(BrokerCommitTest, CommitByANonMemberIsRefused) {
  const CommitReply r = Commit("z", 0, 2, 1);
  EXPECT_EQ(r.status, BrokerStatus::kNotOwner);
  EXPECT_FALSE(r.reason.empty());
  EXPECT_EQ(log_->Committed("g", "orders", 0), 0);
}

TEST_F(BrokerCommitTest, CommitByANonOwnerIsRefusedAndAnswersTheCommittedOffset) {
  Commit("a", 0, 1, 1);
  Join("b", 2);  // a owns 0 and 2, b owns 1
  const CommitReply r = log_->Commit("g", "b", "orders", 0, 3, 3, kTimeout);
  EXPECT_EQ(r.status, BrokerStatus::kNotOwner);
  EXPECT_EQ(r.committed, 1);
  EXPECT_EQ(log_->Committed("g", "orders", 0), 1);
}

TEST_F(BrokerCommitTest, CommitInAnUnknownGroupIsRefused) {
  const CommitReply r = log_->Commit("nobody", "a", "orders", 0, 1, 1, kTimeout);
  EXPECT_EQ(r.status, BrokerStatus::kNotOwner);
  EXPECT_EQ(log_->Committed("nobody", "orders", 0), 0);
}

TEST_F(BrokerCommitTest, CommitByAnExpiredMemberIsRefused) {
  const CommitReply r = Commit("a", 0, 2, kTimeout + 1);
  EXPECT_EQ(r.status, BrokerStatus::kNotOwner);
  EXPECT_EQ(log_->rebalances(), 2);  // the join, then the expiry found by the commit
  EXPECT_EQ(log_->Committed("g", "orders", 0), 0);
}

TEST_F(BrokerCommitTest, CommitAfterACrashNeedsARejoin) {
  Crash();
  EXPECT_EQ(Commit("a", 0, 2, 1).status, BrokerStatus::kNotOwner);
  Join("a", 2);
  EXPECT_EQ(Commit("a", 0, 2, 3).status, BrokerStatus::kOk);
}

// --- membership ---------------------------------------------------------------------------

TEST_F(BrokerLogTest, FirstMemberJoinsGenerationOneAndOwnsEveryPartition) {
  const Assignment a = Join("a", 0);
  EXPECT_EQ(a.status, BrokerStatus::kOk);
  EXPECT_EQ(a.generation, 1);
  EXPECT_EQ(a.partitions, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(log_->rebalances(), 1);
}

TEST_F(BrokerLogTest, HeartbeatOfAPresentMemberKeepsTheGeneration) {
  Join("a", 0);
  const Assignment a = Join("a", 5 * sim::kSecond);
  EXPECT_EQ(a.generation, 1);
  EXPECT_EQ(a.partitions, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(log_->rebalances(), 1);
}

TEST_F(BrokerLogTest, JoinRebalancesRoundRobinOverMembersSortedByName) {
  Join("c", 0);
  const Assignment a = Join("a", 1);
  EXPECT_EQ(a.generation, 2);
  EXPECT_EQ(a.partitions, (std::vector<int32_t>{0, 2}));  // a is index 0 of {a, c}
  const Assignment c = Join("c", 2);
  EXPECT_EQ(c.generation, 2);
  EXPECT_EQ(c.partitions, (std::vector<int32_t>{1}));
  const Assignment b = Join("b", 3);  // {a, b, c}
  EXPECT_EQ(b.generation, 3);
  EXPECT_EQ(b.partitions, (std::vector<int32_t>{1}));
  EXPECT_EQ(Join("a", 4).partitions, (std::vector<int32_t>{0}));
  EXPECT_EQ(Join("c", 5).partitions, (std::vector<int32_t>{2}));
  EXPECT_EQ(log_->rebalances(), 3);
}

TEST_F(BrokerLogTest, MoreMembersThanPartitionsLeavesSomeIdle) {
  for (std::string m : {"a", "b", "c", "d"}) {
    Join(m, 0);
  }
  const Assignment d = Join("d", 1);
  EXPECT_EQ(d.generation, 4);
  EXPECT_TRUE(d.partitions.empty());
}

TEST_F(BrokerLogTest, AssignmentUsesTheAskedTopicsPartitionCount) {
  Join("a", 0);
  Join("b", 0);
  const Assignment b = log_->Heartbeat("g", "b", "audit", 1, kTimeout);
  EXPECT_EQ(b.generation, 2);
  EXPECT_EQ(b.partitions, (std::vector<int32_t>{1}));
}

TEST_F(BrokerLogTest, SilentMemberExpiresAndTheRestRebalance) {
  Join("a", 0);
  Join("b", 0);
  EXPECT_EQ(Join("b", 8 * sim::kSecond).partitions, (std::vector<int32_t>{1}));
  // a was last heard at 0: at 10 s it is exactly at the timeout and stays.
  EXPECT_EQ(Join("b", kTimeout).generation, 2);
  const Assignment b = Join("b", kTimeout + 1);
  EXPECT_EQ(b.generation, 3);
  EXPECT_EQ(b.partitions, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(log_->rebalances(), 3);
}

TEST_F(BrokerLogTest, ExpiredMemberRejoiningIsTwoGenerations) {
  Join("a", 0);
  Join("b", 0);
  // Both are silent past the timeout: b's heartbeat first expires both (one generation), then
  // b rejoins (another).
  const Assignment b = Join("b", 20 * sim::kSecond);
  EXPECT_EQ(b.generation, 4);
  EXPECT_EQ(b.partitions, (std::vector<int32_t>{0, 1, 2}));
}

TEST_F(BrokerLogTest, GroupsAreIndependent) {
  Join("a", 0);
  const Assignment other = log_->Heartbeat("h", "b", "orders", 0, kTimeout);
  EXPECT_EQ(other.generation, 1);
  EXPECT_EQ(other.partitions, (std::vector<int32_t>{0, 1, 2}));
}

TEST_F(BrokerLogTest, CrashDropsMembershipAndHeartbeatsRebuildIt) {
  Join("a", 0);
  Join("b", 0);
  Join("c", 0);
  Crash();
  EXPECT_EQ(log_->rebalances(), 0);
  const Assignment b = Join("b", 1);
  EXPECT_EQ(b.generation, 1);
  EXPECT_EQ(b.partitions, (std::vector<int32_t>{0, 1, 2}));
  const Assignment a = Join("a", 2);
  EXPECT_EQ(a.generation, 2);
  EXPECT_EQ(a.partitions, (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(Join("b", 3).partitions, (std::vector<int32_t>{1}));
}

// --- bad calls ----------------------------------------------------------------------------

TEST_F(BrokerLogTest, PublishToAnUnknownTopicIsRefused) {
  const PublishReply r = Publish("nope", "k", "p1", 0);
  EXPECT_EQ(r.status, BrokerStatus::kNoSuchTopic);
  EXPECT_FALSE(r.reason.empty());
  EXPECT_EQ(log_->appended(), 0);
}

TEST_F(BrokerLogTest, IdempotentPublishWithoutAProducerIsRefused) {
  const PublishReply r = Publish("orders", "k", "", 0);
  EXPECT_EQ(r.status, BrokerStatus::kInvalidArgument);
  EXPECT_FALSE(r.reason.empty());
  EXPECT_EQ(log_->appended(), 0);
}

TEST_F(BrokerLogTest, IdempotentPublishWithANegativeSeqIsRefused) {
  const PublishReply r = Publish("orders", "k", "p1", -1);
  EXPECT_EQ(r.status, BrokerStatus::kInvalidArgument);
  EXPECT_FALSE(r.reason.empty());
}

TEST_F(BrokerLogTest, FetchBadCallsAreRefused) {
  struct Case {
    std::string topic;
    int32_t partition;
    int64_t offset, max;
    BrokerStatus status;
  };
  const Case cases[] = {{"nope", 0, 0, 1, BrokerStatus::kNoSuchTopic},
                        {"orders", 3, 0, 1, BrokerStatus::kInvalidArgument},
                        {"orders", -1, 0, 1, BrokerStatus::kInvalidArgument},
                        {"orders", 0, -1, 1, BrokerStatus::kInvalidArgument},
                        {"orders", 0, 0, -1, BrokerStatus::kInvalidArgument}};
  for (const Case& c : cases) {
    const FetchReply r = log_->Fetch(c.topic, c.partition, c.offset, c.max);
    EXPECT_EQ(r.status, c.status) << c.topic << " " << c.partition << " " << c.offset;
    EXPECT_FALSE(r.reason.empty());
    EXPECT_TRUE(r.messages.empty());
  }
}

TEST_F(BrokerLogTest, HeartbeatBadCallsAreRefused) {
  struct Case {
    std::string group, member, topic;
    sim::Duration timeout;
    BrokerStatus status;
  };
  const Case cases[] = {{"", "a", "orders", kTimeout, BrokerStatus::kInvalidArgument},
                        {"g", "", "orders", kTimeout, BrokerStatus::kInvalidArgument},
                        {"g", "a", "nope", kTimeout, BrokerStatus::kNoSuchTopic},
                        {"g", "a", "orders", 0, BrokerStatus::kInvalidArgument}};
  for (const Case& c : cases) {
    const Assignment r = log_->Heartbeat(c.group, c.member, c.topic, 0, c.timeout);
    EXPECT_EQ(r.status, c.status) << c.group << "/" << c.member << "/" << c.topic;
    EXPECT_FALSE(r.reason.empty());
    EXPECT_TRUE(r.partitions.empty());
  }
  EXPECT_EQ(log_->rebalances(), 0);
}

TEST_F(BrokerCommitTest, CommitBadCallsAreRefused) {
  struct Case {
    std::string group, member, topic;
    int32_t partition;
    int64_t offset;
    BrokerStatus status;
  };
  const Case cases[] = {{"", "a", "orders", 0, 1, BrokerStatus::kInvalidArgument},
                        {"g", "", "orders", 0, 1, BrokerStatus::kInvalidArgument},
                        {"g", "a", "nope", 0, 1, BrokerStatus::kNoSuchTopic},
                        {"g", "a", "orders", 3, 1, BrokerStatus::kInvalidArgument},
                        {"g", "a", "orders", -1, 1, BrokerStatus::kInvalidArgument},
                        {"g", "a", "orders", 0, -1, BrokerStatus::kInvalidArgument}};
  for (const Case& c : cases) {
    const CommitReply r =
        log_->Commit(c.group, c.member, c.topic, c.partition, c.offset, 1, kTimeout);
    EXPECT_EQ(r.status, c.status) << c.group << "/" << c.member << "/" << c.topic << "/"
                                  << c.partition << "/" << c.offset;
    EXPECT_FALSE(r.reason.empty());
  }
  EXPECT_EQ(log_->Committed("g", "orders", 0), 0);
}

TEST_F(BrokerLogTest, StatusNamesAreDistinct) {
  EXPECT_EQ(BrokerStatusName(BrokerStatus::kOk), "ok");
  EXPECT_EQ(BrokerStatusName(BrokerStatus::kNoSuchTopic), "no_such_topic");
  EXPECT_EQ(BrokerStatusName(BrokerStatus::kInvalidArgument), "invalid_argument");
  EXPECT_EQ(BrokerStatusName(BrokerStatus::kNotOwner), "not_owner");
}

// --- schema and programmer errors ---------------------------------------------------------

TEST_F(BrokerLogTest, TopicsTableMirrorsTheConfiguration) {
  EXPECT_EQ(db_.QueryInt("SELECT COUNT(*) FROM topics"), 2);
  EXPECT_EQ(db_.QueryInt("SELECT partitions FROM topics WHERE name = 'orders'"), 3);
  EXPECT_EQ(db_.QueryInt("SELECT idempotent_producer FROM topics WHERE name = 'orders'"), 1);
  EXPECT_EQ(db_.QueryInt("SELECT idempotent_producer FROM topics WHERE name = 'audit'"), 0);
}

TEST_F(BrokerLogTest, ProducerSeqsRecordTheLastAppend) {
  const std::string key = KeysFor(*log_, 2, 1)[0];
  Publish("orders", key, "p1", 0);
  Publish("orders", key, "p1", 1);
  Publish("audit", key, "p1", 9);  // not idempotent: not recorded
  EXPECT_EQ(db_.QueryInt("SELECT COUNT(*) FROM producer_seqs"), 1);
  EXPECT_EQ(db_.QueryInt("SELECT last_seq FROM producer_seqs WHERE producer = 'p1'"), 1);
  EXPECT_EQ(db_.QueryInt("SELECT offset FROM producer_seqs WHERE producer = 'p1'"), 1);
}

TEST_F(BrokerLogTest, ChangingAPartitionCountAfterARestartFails) {
  log_.reset();
  std::vector<TopicConfig> changed = Topics();
  changed[0].partitions = 4;
  EXPECT_THROW(BrokerLog(db_, changed), sim::CheckFailure);
}

TEST_F(BrokerLogTest, EndOffsetOfAnUnknownTopicFails) {
  EXPECT_THROW(log_->EndOffset("nope", 0), sim::CheckFailure);
  EXPECT_THROW(log_->EndOffset("orders", 3), sim::CheckFailure);
  EXPECT_THROW(log_->PartitionFor("nope", "k"), sim::CheckFailure);
}

TEST(BrokerLogConfigTest, DuplicateOrEmptyTopicsFail) {
  sim::Database db;
  const std::vector<TopicConfig> duplicate = {TopicConfig{.name = "a"}, TopicConfig{.name = "a"}};
  const std::vector<TopicConfig> unnamed = {TopicConfig{.name = ""}};
  const std::vector<TopicConfig> no_partitions = {TopicConfig{.name = "a", .partitions = 0}};
  EXPECT_THROW(BrokerLog(db, duplicate), sim::CheckFailure);
  EXPECT_THROW(BrokerLog(db, unnamed), sim::CheckFailure);
  EXPECT_THROW(BrokerLog(db, no_partitions), sim::CheckFailure);
}

}  // namespace
}  // namespace paylab::system
