// Unit tests for the queue checks (checks/queue_checker.h) on a broker
// database built by hand: a topic "t" read by the group "g" and feeding the
// queue "q" (dead-letter queue "q.dlq"), and a topic "u" feeding the queue
// "n" (no dead-letter queue), like the upstreams' notification queues.
//
// Each check must be able to fail: a queue nobody read, a message received
// forever, a group behind the end of its topic, a topic nothing reads, a
// good event in a dead-letter queue. And a clean broker passes, with one
// evaluation per queue, per group-read topic and per dead-letter queue.
#include "checks/queue_checker.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "sim/check.h"
#include "sim/simulator.h"
#include "sim/storage.h"

namespace paylab::system {
namespace {

constexpr sim::Duration kVisibility = sim::kSecond;
constexpr sim::Duration kSession = 10 * sim::kSecond;

std::vector<TopicConfig> Topics() { return {{"t", 1, false}, {"u", 1, false}}; }

std::vector<QueueConfig> Queues() {
  return {QueueConfig{"q", "t", kVisibility, 2, "q.dlq"},
          QueueConfig{"q.dlq", "", kVisibility, 0, ""}, QueueConfig{"n", "u", kVisibility, 0, ""}};
}

// A good event starts with "event"; anything else is poison.
std::vector<WatchedTopic> Watched() {
  const auto decodes = [](std::string_view p) { return p.starts_with("event"); };
  return {WatchedTopic{"t", decodes, "g"}, WatchedTopic{"u", decodes, ""}};
}

class QueueCheckerTest : public ::testing::Test {
 protected:
  QueueCheckerTest()
      : sim_(1),
        log_(db_, Topics()),
        queues_(db_, Queues()),
        checker_(sim_, [this](const Violation& v) { violations_.push_back(v); }) {}

  // Appends to the topic and fans out to its queues, as the broker does.
  void Publish(std::string_view topic, std::string_view payload) {
    log_.Publish(topic, "k", payload, "p", 0, 0);
    queues_.FanOut(topic, payload, 0);
  }

  // Receives every visible message of `queue` at `now` and deletes the
  // good events, as a consumer does (poison stays, to be dead-lettered).
  void Consume(std::string_view queue, sim::Time now) {
    for (const QueueMessage& m : queues_.Receive(queue, 100, now).messages) {
      if (m.payload.starts_with("event")) {
        queues_.Delete(queue, m.id, m.receipt);
      }
    }
  }

  // The group reads topic "t" to its end.
  void CommitGroup() {
    log_.Heartbeat("g", "m", "t", 0, kSession);
    log_.Commit("g", "m", "t", 0, log_.EndOffset("t", 0), 0, kSession);
  }

  void Check() { checker_.CheckFinal(db_, Topics(), Queues(), Watched()); }

  const CheckStatus& Status(std::string_view name) const {
    for (const CheckStatus& s : checker_.statuses()) {
      if (s.name == name) {
        return s;
      }
    }
    ADD_FAILURE() << "no check " << name;
    return checker_.statuses().front();
  }

  sim::Simulator sim_;
  sim::Database db_;
  BrokerLog log_;
  QueueStore queues_;
  QueueChecker checker_;
  std::vector<Violation> violations_;
};

TEST_F(QueueCheckerTest, DrainedBrokerPassesOnceForEveryQueueTopicAndDeadLetterQueue) {
  Publish("t", "event 1");
  Publish("u", "event 2");
  queues_.Inject("q", "garbage", 0);
  CommitGroup();
  Consume("q", 0);  // the garbage is not deleted: received once ...
  Consume("n", 0);
  for (sim::Time t : {2 * kVisibility, 4 * kVisibility, 6 * kVisibility}) {
    queues_.Receive("q", 100, t);  // ... then again until it is dead-lettered
  }
  Check();
  EXPECT_TRUE(violations_.empty()) << violations_.front().detail;
  // Topic t (its group), queue q, queue n; topic u is read through n only.
  EXPECT_EQ(Status("queue_drained").evaluations, 3);
  EXPECT_EQ(Status("dead_letters_are_poison").evaluations, 1);
  EXPECT_EQ(queues_.Depth("q.dlq"), 1);
}

TEST_F(QueueCheckerTest, QueueNobodyReadFailsNamingItsMessagesAndReceiveCounts) {
  for (int i = 0; i < 3; ++i) {
    Publish("u", "event");
  }
  Publish("t", "event");
  CommitGroup();
  Check();
  ASSERT_EQ(violations_.size(), 1u);
  EXPECT_EQ(violations_[0].check, "queue_drained");
  // Both undrained queues are named in the first violation.
  EXPECT_NE(violations_[0].detail.find("queue q still holds 1 message (receive counts: 0 x1)"),
            std::string::npos)
      << violations_[0].detail;
  EXPECT_NE(violations_[0].detail.find("also not drained: n: 3 messages (receive counts: 0 x3)"),
            std::string::npos)
      << violations_[0].detail;
  EXPECT_EQ(Status("queue_drained").violations, 2);
}

TEST_F(QueueCheckerTest, MessageReceivedForeverWithoutADeadLetterQueueFails) {
  queues_.Inject("n", "garbage", 0);
  for (sim::Time t : {0 * kVisibility, 2 * kVisibility, 4 * kVisibility}) {
    queues_.Receive("n", 100, t);
  }
  Check();
  ASSERT_EQ(violations_.size(), 1u);
  EXPECT_NE(violations_[0].detail.find("queue n still holds 1 message (receive counts: 3 x1)"),
            std::string::npos)
      << violations_[0].detail;
  EXPECT_NE(violations_[0].detail.find("no dead-letter queue"), std::string::npos);
}

TEST_F(QueueCheckerTest, GroupBehindTheEndOfItsTopicFails) {
  Publish("t", "event 1");
  CommitGroup();
  Publish("t", "event 2");
  Consume("q", 0);
  Check();
  ASSERT_EQ(violations_.size(), 1u);
  EXPECT_EQ(violations_[0].detail,
            "topic t: group g committed up to offset 1 of partition 0, whose log ends at 2 "
            "(1 messages never consumed)");
}

TEST_F(QueueCheckerTest, TopicNothingReadsMustBeEmpty) {
  const std::vector<WatchedTopic> watched = {WatchedTopic{"t", Watched()[0].decodes, "g"},
                                             WatchedTopic{"u", Watched()[1].decodes, ""}};
  log_.Publish("u", "k", "event", "p", 0, 0);
  // Without its queue, topic u has no reader at all.
  checker_.CheckFinal(db_, Topics(), {Queues()[0], Queues()[1]}, watched);
  ASSERT_EQ(violations_.size(), 1u);
  EXPECT_EQ(violations_[0].detail, "topic u holds 1 messages and nothing reads it");
}

TEST_F(QueueCheckerTest, GoodEventInADeadLetterQueueFails) {
  Publish("t", "event 7");
  CommitGroup();
  for (sim::Time t : {0 * kVisibility, 2 * kVisibility, 4 * kVisibility}) {
    queues_.Receive("q", 100, t);  // a consumer that keeps failing
  }
  Check();
  ASSERT_EQ(violations_.size(), 1u);
  EXPECT_EQ(violations_[0].check, "dead_letters_are_poison");
  EXPECT_NE(violations_[0].detail.find("dead-letter queue q.dlq (of q) holds message 1, a good "
                                       "event never applied: event 7"),
            std::string::npos)
      << violations_[0].detail;
}

TEST_F(QueueCheckerTest, TopicWithoutADescriptionIsAProgrammerError) {
  EXPECT_THROW(checker_.CheckFinal(db_, Topics(), Queues(), {Watched()[0]}), sim::CheckFailure);
}

TEST(QueueBacklogTest, EmptyQueueHasNoBacklog) {
  sim::Database db;
  QueueStore queues(db, Queues());
  EXPECT_EQ(QueueBacklog(db, "q"), "");
}

}  // namespace
}  // namespace paylab::system
