// Tests of the broker's reference model (checks/models/broker_model.h), from the
// seeds' own examples, against the real log and queues (system/messaging/broker_log.h,
// system/messaging/queue_store.h) on an in-memory database, driven as the broker node
// drives them (every appended message fanned out at once).
//
// Seed 002: payment events go out on a topic, keyed so that one payment's
// events keep their order; a point-assignment consumer reads them from a
// queue the topic fans out to (SNS -> SQS), at least once: a message not
// deleted comes back after its visibility timeout; what it cannot apply is
// dead-lettered after max_receives and redriven by the operator (DLQ
// re-drive). Seed 001: completion notifications published, subscribed and
// reconciled. Each test drives the broker through such an example, asserts
// the figures the contract gives, and checks that the model, fed every
// applied call, agrees at every step: a topic read by a consumer group,
// the group rebalancing when a member departs, a broker boot forgetting
// membership, at-least-once redelivery, the visibility boundary one tick
// before, at and after the deadline, a poison message dead-lettered after
// max_receives and redriven. Then the model must catch what a wrong broker
// would report, printing both sides: an offset skipped, a commit moving
// backwards accepted, a message handed out while still invisible, a message
// dead-lettered one receive too early (the catalogue's defect), an append
// never fanned out.
#include "checks/models/broker_model.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "checks/models/model_feed.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "checks/models/broker_auditor.h"
#include "sim/simulator.h"
#include "sim/storage.h"
#include "sim/time.h"
#include "system/messaging/broker_observer.h"
#include "system/messaging/broker_log.h"
#include "system/messaging/queue_store.h"

namespace paylab::models {
namespace {

using system::Assignment;
using system::BrokerApplied;
using system::BrokerLog;
using system::BrokerStatus;
using system::CommitReply;
using system::DeleteReply;
using system::PublishReply;
using system::QueueStatus;
using system::QueueStore;
using system::ReceiveReply;

constexpr sim::Duration kVisibility = sim::kSecond;
constexpr sim::Duration kSession = 3 * sim::kSecond;
constexpr int64_t kMaxReceives = 3;

std::vector<system::TopicConfig> Topics() {
  return {system::TopicConfig{"payments", 4, true}, system::TopicConfig{"movements", 2, false}};
}

std::vector<system::QueueConfig> Queues() {
  return {system::QueueConfig{"payments.points", "payments", kVisibility, kMaxReceives,
                              "payments.points.dlq"},
          system::QueueConfig{"payments.points.dlq", "", kVisibility, 0, ""},
          system::QueueConfig{"payments.checkout", "payments", kVisibility, 0, ""}};
}

BrokerRules Rules() { return BrokerRules{Topics(), Queues(), true}; }

// A deep copy of one report, for a test to change before the model sees it
// (a wrong broker, simulated).
struct Report {
  std::optional<PublishReply> publish;
  std::optional<Assignment> assignment;
  std::optional<CommitReply> commit;
  std::optional<ReceiveReply> receive;
  std::optional<DeleteReply> deleted;
  std::optional<QueueStatus> inject;
  int64_t redriven = 0;
  std::vector<system::AppendedMessage> appended;
  std::vector<system::OffsetCommitted> committed;
  std::optional<system::GroupChange> group = {};
  std::vector<std::string> left = {}, members = {};
  std::vector<system::QueueChange> queue = {};
};

template <typename T>
std::optional<T> CopyOf(const T* p) {
  return p == nullptr ? std::nullopt : std::optional<T>(*p);
}

template <typename T>
const T* PointerTo(const std::optional<T>& o) {
  return o ? &*o : nullptr;
}

// Feeds every applied call to a model; `tamper` may change a copy of a
// report before the model sees it. Like the auditor, it stops at the first
// difference.
class ModelFeed : public system::BrokerObserver,
                  public ModelFeedBase<BrokerModel, BrokerApplied> {
 public:
  ModelFeed() : ModelFeedBase(BrokerModel(Rules())) {}
  void OnBrokerApplied(const BrokerApplied& a) override {
    Feed(a, static_cast<bool>(tamper), [&] {
      Report r{CopyOf(a.publish),
               CopyOf(a.assignment),
               CopyOf(a.commit),
               CopyOf(a.receive),
               CopyOf(a.deleted),
               CopyOf(a.inject),
               a.redriven,
               {a.appended.begin(), a.appended.end()},
               {a.committed.begin(), a.committed.end()}};
      if (a.group != nullptr) {
        r.group = *a.group;
        r.left.assign(a.group->left.begin(), a.group->left.end());
        r.members.assign(a.group->members.begin(), a.group->members.end());
      }
      r.queue.assign(a.queue.begin(), a.queue.end());
      tamper(r);
      if (r.group) {
        r.group->left = r.left;
        r.group->members = r.members;
      }
      return model.Check(BrokerApplied{a.request, PointerTo(r.publish), PointerTo(r.assignment),
                                             PointerTo(r.commit), PointerTo(r.receive),
                                             PointerTo(r.deleted), PointerTo(r.inject), r.redriven,
                                             r.appended, r.committed, PointerTo(r.group), r.queue});
    });
  }

  std::function<void(Report&)> tamper;
};

class BrokerModelTest : public testing::Test {
 protected:
  BrokerModelTest() { Boot(0); }

  // A broker (re)boot: the log and the queues opened again on the same
  // database, membership gone.
  void Boot(sim::Time now, bool dead_letter_early = false) {
    log_.reset();
    queues_.reset();
    log_ = std::make_unique<BrokerLog>(db_, Topics(), &feed_, now);
    queues_ = std::make_unique<QueueStore>(
        db_, Queues(),
        system::QueueStoreOptions{.audit = &feed_, .defect_dead_letter_early = dead_letter_early});
  }

  // As the broker node publishes: the append, then its fan-out.
  PublishReply Publish(std::string_view topic, std::string_view key, std::string_view payload,
                       int64_t seq, sim::Time now) {
    const PublishReply r = log_->Publish(topic, key, payload, "payment", seq, now);
    if (r.status == BrokerStatus::kOk && !r.duplicate) {
      queues_->FanOut(topic, payload, now);
    }
    return r;
  }

  Assignment Heartbeat(std::string_view member, sim::Time now) {
    return log_->Heartbeat("points", member, "payments", now, kSession);
  }

  CommitReply Commit(std::string_view member, int32_t partition, int64_t offset, sim::Time now) {
    return log_->Commit("points", member, "payments", partition, offset, now, kSession);
  }

  ReceiveReply Receive(sim::Time now, int64_t max = 10) {
    return queues_->Receive("payments.points", max, now);
  }

  void ExpectAgreed() {
    EXPECT_EQ(feed_.first_diff, "");
    EXPECT_GT(feed_.checked, 0);
  }

  sim::Database db_;
  ModelFeed feed_;
  std::unique_ptr<BrokerLog> log_;
  std::unique_ptr<QueueStore> queues_;
};

// Seed 002: payment events on a partitioned topic, read by a consumer group
// of two point-assignment members.
TEST_F(BrokerModelTest, ATopicReadByAConsumerGroup) {
  for (int i = 0; i < 12; ++i) {
    const PublishReply r = Publish("payments", fmt::format("pay-{}", i % 5), "authorized", i, i);
    ASSERT_EQ(r.status, BrokerStatus::kOk);
    EXPECT_FALSE(r.duplicate);
  }
  const Assignment a1 = Heartbeat("a", sim::kSecond);
  EXPECT_EQ(a1.generation, 1);
  EXPECT_EQ(a1.partitions, (std::vector<int32_t>{0, 1, 2, 3}));
  const Assignment b = Heartbeat("b", sim::kSecond + 1);
  EXPECT_EQ(b.generation, 2);
  EXPECT_EQ(b.partitions, (std::vector<int32_t>{1, 3}));  // p mod 2 == 1
  EXPECT_EQ(Heartbeat("a", sim::kSecond + 2).partitions, (std::vector<int32_t>{0, 2}));
  const int64_t end = log_->EndOffset("payments", 1);
  ASSERT_GT(end, 0);
  EXPECT_EQ(Commit("b", 1, end, sim::kSecond + 3).committed, end);
  // a does not own partition 1 in this generation.
  EXPECT_EQ(Commit("a", 1, end, sim::kSecond + 4).status, BrokerStatus::kNotOwner);
  // A lower commit is ignored: the committed offset never moves backwards.
  const CommitReply back = Commit("b", 1, 0, sim::kSecond + 5);
  EXPECT_EQ(back.status, BrokerStatus::kOk);
  EXPECT_EQ(back.committed, end);
  EXPECT_EQ(Commit("b", 1, end + 1, sim::kSecond + 6).status, BrokerStatus::kInvalidArgument);
  ExpectAgreed();
  EXPECT_EQ(feed_.model.stats().published, 12);
  EXPECT_EQ(feed_.model.stats().commits_refused, 1);
  EXPECT_EQ(feed_.model.stats().commits_behind, 1);
}

// The idempotent producer (seed 001: a retried publish must not publish
// twice): the same seq again, or an older one, appends nothing.
TEST_F(BrokerModelTest, TheIdempotentProducerSuppressesRetries) {
  const PublishReply first = Publish("payments", "pay-1", "authorized", 7, 1);
  const PublishReply again = Publish("payments", "pay-1", "authorized", 7, 2);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.offset, first.offset);
  const PublishReply next = Publish("payments", "pay-2", "captured", 8, 3);
  // A late replay of seq 7 answers the position of the producer's latest.
  const PublishReply late = Publish("payments", "pay-1", "authorized", 7, 4);
  EXPECT_TRUE(late.duplicate);
  EXPECT_EQ(late.partition, next.partition);
  EXPECT_EQ(late.offset, next.offset);
  // Without the idempotent producer every publish appends.
  EXPECT_EQ(Publish("movements", "u1", "m", 1, 5).offset, 0);
  EXPECT_EQ(Publish("movements", "u1", "m", 1, 6).offset, 1);
  EXPECT_EQ(log_->Publish("payments", "k", "p", "", 1, 7).status, BrokerStatus::kInvalidArgument);
  EXPECT_EQ(log_->Publish("nope", "k", "p", "x", 1, 8).status, BrokerStatus::kNoSuchTopic);
  ExpectAgreed();
  EXPECT_EQ(feed_.model.stats().duplicates_suppressed, 2);
}

// A member that stops heartbeating leaves after the session timeout (not at
// it): its partitions go to the others in a new generation, and its commits
// are refused.
TEST_F(BrokerModelTest, TheGroupRebalancesWhenAMemberDeparts) {
  Publish("payments", "pay-1", "authorized", 1, 0);
  Heartbeat("a", 0);
  Heartbeat("b", 0);
  // At exactly the session timeout b is still a member.
  EXPECT_EQ(Heartbeat("a", kSession).generation, 2);
  EXPECT_EQ(Heartbeat("a", kSession).partitions, (std::vector<int32_t>{0, 2}));
  // One tick later it has left: a owns every partition.
  const Assignment alone = Heartbeat("a", kSession + 1);
  EXPECT_EQ(alone.generation, 3);
  EXPECT_EQ(alone.partitions, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(Commit("b", 1, 0, kSession + 2).status, BrokerStatus::kNotOwner);
  // b comes back: a new generation again.
  EXPECT_EQ(Heartbeat("b", kSession + 3).generation, 4);
  ExpectAgreed();
  EXPECT_EQ(feed_.model.stats().members_expired, 1);
  EXPECT_EQ(feed_.model.stats().rebalances, 4);
}

// A broker crash drops membership: the boot is reported, commits are
// refused until the members rejoin, and generations count from 1 again;
// committed offsets survive.
TEST_F(BrokerModelTest, ABootForgetsMembershipNotOffsets) {
  const PublishReply r = Publish("payments", "pay-1", "authorized", 1, 0);
  Heartbeat("a", 0);
  EXPECT_EQ(Commit("a", r.partition, 1, 1).committed, 1);
  Boot(sim::kSecond);
  EXPECT_EQ(Commit("a", r.partition, 1, sim::kSecond + 1).status, BrokerStatus::kNotOwner);
  EXPECT_EQ(Heartbeat("a", sim::kSecond + 2).generation, 1);
  EXPECT_EQ(log_->Committed("points", "payments", r.partition), 1);
  ExpectAgreed();
  EXPECT_EQ(feed_.model.stats().boots, 2);
}

// At-least-once (seed 002): a message received and not deleted comes back
// after its visibility timeout with a new receipt; the old receipt is
// stale.
TEST_F(BrokerModelTest, AMessageNotDeletedIsDeliveredAgain) {
  Publish("payments", "pay-1", "captured", 1, 0);
  const ReceiveReply first = Receive(sim::kSecond);
  ASSERT_EQ(first.messages.size(), 1u);
  EXPECT_EQ(first.messages[0].receipt, 1);
  EXPECT_EQ(queues_->Receive("payments.checkout", 10, sim::kSecond).messages.size(), 1u);
  const ReceiveReply again = Receive(sim::kSecond + kVisibility);
  ASSERT_EQ(again.messages.size(), 1u);
  EXPECT_EQ(again.messages[0].receipt, 2);
  const int64_t id = again.messages[0].id;
  EXPECT_EQ(queues_->Delete("payments.points", id, 1).status, QueueStatus::kStaleReceipt);
  EXPECT_EQ(queues_->Delete("payments.points", id, 2).status, QueueStatus::kOk);
  EXPECT_EQ(queues_->Delete("payments.points", id, 2).status, QueueStatus::kOk);
  EXPECT_EQ(queues_->Delete("payments.points", id + 100, 1).status, QueueStatus::kInvalidArgument);
  EXPECT_TRUE(Receive(10 * sim::kSecond).messages.empty());
  ExpectAgreed();
  EXPECT_EQ(feed_.model.stats().redeliveries, 1);
  EXPECT_EQ(feed_.model.stats().stale_receipts, 1);
}

// The visibility boundary: received at t, the message is hidden while
// now < t + timeout; one tick before the deadline a receive gets nothing, at
// the deadline it gets the message, and after it too.
TEST_F(BrokerModelTest, TheVisibilityBoundaryOneTickBeforeAtAndAfter) {
  Publish("payments", "pay-1", "captured", 1, 0);
  Publish("payments", "pay-2", "captured", 2, 0);
  const sim::Time t = sim::kSecond;
  ASSERT_EQ(Receive(t).messages.size(), 2u);
  EXPECT_TRUE(Receive(t + kVisibility - 1).messages.empty());
  const ReceiveReply at = Receive(t + kVisibility, 1);
  ASSERT_EQ(at.messages.size(), 1u);
  EXPECT_EQ(at.messages[0].receipt, 2);
  const ReceiveReply after = Receive(t + kVisibility + 1, 1);
  ASSERT_EQ(after.messages.size(), 1u);
  EXPECT_NE(after.messages[0].id, at.messages[0].id);
  ExpectAgreed();
  EXPECT_EQ(feed_.model.stats().on_visibility_boundary, 1);
}

// Seed 002's DLQ: a poison message the consumer can never apply is received
// max_receives times, then moved to the dead-letter queue; the operator's
// redrive puts it back with its receive count reset.
TEST_F(BrokerModelTest, APoisonMessageIsDeadLetteredAfterMaxReceivesAndRedriven) {
  ASSERT_EQ(queues_->Inject("payments.points", "poison", 0), QueueStatus::kOk);
  sim::Time now = sim::kSecond;
  for (int64_t i = 1; i <= kMaxReceives; ++i, now += kVisibility) {
    const ReceiveReply r = Receive(now);
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].receipt, i);
  }
  const ReceiveReply moved = Receive(now);
  EXPECT_TRUE(moved.messages.empty());
  EXPECT_EQ(moved.dead_lettered, 1);
  EXPECT_EQ(queues_->Depth("payments.points.dlq"), 1);
  EXPECT_EQ(queues_->Redrive("payments.points.dlq", now + 1), 1);
  EXPECT_EQ(queues_->Redrive("payments.checkout", now + 1), 0);
  const ReceiveReply back = Receive(now + 2);
  ASSERT_EQ(back.messages.size(), 1u);
  EXPECT_EQ(back.messages[0].receipt, 1);
  EXPECT_EQ(back.messages[0].payload, "poison");
  ExpectAgreed();
  EXPECT_EQ(feed_.model.stats().dead_lettered, 1);
  EXPECT_EQ(feed_.model.stats().redriven, 1);
}

TEST_F(BrokerModelTest, TheAuditorComparesTheDatabaseAtTheEnd) {
  sim::Simulator sim(1);
  int violations = 0;
  BrokerAuditor auditor(sim, Rules(), [&](const system::Violation&) { ++violations; });
  sim::Database db;
  BrokerLog log(db, Topics(), &auditor, 0);
  QueueStore queues(db, Queues(), system::QueueStoreOptions{.audit = &auditor});
  for (int64_t i = 0; i < 3; ++i) {
    log.Publish("payments", fmt::format("k{}", i), "p", "payment", i, i);
    queues.FanOut("payments", "p", i);
  }
  log.Heartbeat("g", "m", "payments", 5, kSession);
  log.Commit("g", "m", "payments", 0, log.EndOffset("payments", 0), 6, kSession);
  const ReceiveReply r = queues.Receive("payments.points", 2, 7);
  queues.Delete("payments.points", r.messages[0].id, r.messages[0].receipt);
  auditor.CheckFinal(db);
  EXPECT_EQ(violations, 0);
  EXPECT_EQ(auditor.statuses().front().evaluations, 12);  // a boot, ten calls, the end
  // A receive count changed behind the broker's back.
  db.ExecScript("UPDATE queue_messages SET receive_count = 5 WHERE state = 0");
  auditor.CheckFinal(db);
  ASSERT_TRUE(auditor.first_violation().has_value());
  EXPECT_NE(auditor.first_violation()->detail.find("received 5 time(s)"), std::string::npos)
      << auditor.first_violation()->detail;
  EXPECT_NE(auditor.first_violation()->detail.find("the model says state 0, received 0 time(s)"),
            std::string::npos)
      << auditor.first_violation()->detail;
}

// --- a wrong broker, simulated by changing the facts -------------------------

TEST_F(BrokerModelTest, CatchesAnOffsetSkipped) {
  feed_.tamper = [](Report& r) {
    if (r.publish) {
      ++r.publish->offset;
      ++r.appended.at(0).offset;
    }
  };
  const PublishReply p = Publish("payments", "pay-1", "authorized", 1, 0);
  EXPECT_NE(feed_.first_diff.find(fmt::format(
                "expected answer ok (partition {}, offset 0), the broker answered ok (partition "
                "{}, offset 1)",
                p.partition, p.partition)),
            std::string::npos)
      << feed_.first_diff;
}

TEST_F(BrokerModelTest, CatchesACommitMovingBackwardsAccepted) {
  for (int i = 0; i < 8; ++i) {
    Publish("payments", "pay-1", "authorized", i, i);
  }
  const int32_t p = log_->PartitionFor("payments", "pay-1");
  Heartbeat("a", 10);
  Commit("a", p, 5, 11);
  ASSERT_EQ(feed_.first_diff, "");
  // A broker that takes the lower offset.
  feed_.tamper = [p](Report& r) {
    if (r.commit) {
      r.commit->committed = 3;
      r.committed = {system::OffsetCommitted{"points", "payments", p, 5, 3}};
    }
  };
  Commit("a", p, 3, 12);
  EXPECT_NE(feed_.first_diff.find(
                "expected answer ok (committed 5), the broker answered ok (committed 3)"),
            std::string::npos)
      << feed_.first_diff;
}

TEST_F(BrokerModelTest, CatchesAMessageHandedOutWhileStillInvisible) {
  Publish("payments", "pay-1", "captured", 1, 0);
  const ReceiveReply first = Receive(sim::kSecond);
  ASSERT_EQ(first.messages.size(), 1u);
  const int64_t id = first.messages[0].id;
  // One tick before its deadline a wrong broker hands it out again.
  const sim::Time now = sim::kSecond + kVisibility - 1;
  feed_.tamper = [&](Report& r) {
    if (r.receive) {
      r.receive->messages.push_back(system::QueueMessage{id, "captured", 2});
      r.queue.push_back(system::QueueChange{.event = system::QueueEvent::kReceived,
                                            .queue = "payments.points",
                                            .id = id,
                                            .receive_count = 2,
                                            .visible_at = now + kVisibility});
    }
  };
  Receive(now);
  EXPECT_NE(feed_.first_diff.find(fmt::format("expected answer ok: handed out [], dead-lettered "
                                              "0, the broker answered ok: handed out [#{} receipt "
                                              "2], dead-lettered 0",
                                              id)),
            std::string::npos)
      << feed_.first_diff;
}

// The catalogue's defect dead_letter_one_receive_early, switched on in the
// real queues: the receive that should hand the message out for the
// max_receives-th time moves it instead.
TEST_F(BrokerModelTest, CatchesAMessageDeadLetteredOneReceiveTooEarly) {
  Boot(0, /*dead_letter_early=*/true);
  queues_->Inject("payments.points", "poison", 0);
  sim::Time now = sim::kSecond;
  for (int64_t i = 1; i < kMaxReceives; ++i, now += kVisibility) {
    ASSERT_EQ(Receive(now).messages.size(), 1u);
  }
  ASSERT_EQ(feed_.first_diff, "");
  EXPECT_EQ(Receive(now).dead_lettered, 1);
  EXPECT_NE(feed_.first_diff.find(fmt::format("expected answer ok: handed out [#1 receipt {}], "
                                              "dead-lettered 0, the broker answered ok: handed "
                                              "out [], dead-lettered 1",
                                              kMaxReceives)),
            std::string::npos)
      << feed_.first_diff;
}

TEST_F(BrokerModelTest, CatchesAnAppendNeverFannedOut) {
  log_->Publish("payments", "pay-1", "authorized", "payment", 1, 0);
  Receive(1);
  EXPECT_NE(feed_.first_diff.find("expected the fan-out of the message appended to payments"),
            std::string::npos)
      << feed_.first_diff;
  EXPECT_NE(feed_.first_diff.find("the broker made this receive call first"), std::string::npos)
      << feed_.first_diff;
}

TEST_F(BrokerModelTest, CatchesAMemberKeptPastItsSessionTimeout) {
  Heartbeat("a", 0);
  Heartbeat("b", 0);
  Heartbeat("a", kSession / 2);
  // A broker that never expires anyone: b keeps its partitions.
  feed_.tamper = [](Report& r) {
    if (r.assignment) {
      r.assignment->generation = 2;
      r.assignment->partitions = {0, 2};
      r.left.clear();
      r.group->generation = 2;
      r.members = {"a", "b"};
    }
  };
  Heartbeat("a", kSession + 1);
  EXPECT_NE(feed_.first_diff.find("expected answer ok (generation 3, partitions [0, 1, 2, 3]), "
                                  "the broker answered ok (generation 2, partitions [0, 2])"),
            std::string::npos)
      << feed_.first_diff;
}

}  // namespace
}  // namespace paylab::models
