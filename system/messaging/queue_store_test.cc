// Unit tests for the queue store (system/messaging/queue_store.h), driven synchronously on an in-memory
// database. The main setup has a queue "q" fed by topic "t" (visibility 1 s, max_receives 3,
// dead letter "q.dlq"), the dead-letter queue "q.dlq" itself (no topic), a second subscriber
// "audit" of "t" and a queue "other" fed by topic "u". A second setup has the same "q" without a
// dead-letter queue.
//
// Exercises fan-out to every subscribed queue and no other, receives in id order hidden for the
// visibility timeout with receipts equal to the receive count, deletes with current, repeated and
// stale receipts, dead-lettering after max_receives, the poison message that returns forever
// without a dead-letter queue, redrive with receive counts reset, injection, and refusals of bad
// calls. A "crash" destroys the QueueStore and constructs a new one on the same Database: hidden
// messages must stay hidden until their timeout and deleted ones must stay deleted.
#include "system/messaging/queue_store.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sim/storage.h"
#include "sim/time.h"

namespace paylab::system {

namespace {

constexpr sim::Duration kVisibility = sim::kSecond;

QueueConfig Config(std::string name, std::string topic, int64_t max_receives = 0,
                   std::string dead_letter = "") {
  return QueueConfig{.name = std::move(name),
                     .topic = std::move(topic),
                     .visibility_timeout = kVisibility,
                     .max_receives = max_receives,
                     .dead_letter = std::move(dead_letter)};
}

std::vector<QueueConfig> WithDeadLetter() {
  return {Config("q", "t", 3, "q.dlq"), Config("q.dlq", ""), Config("audit", "t"),
          Config("other", "u")};
}

std::vector<QueueConfig> WithoutDeadLetter() { return {Config("q", "t", 3, "")}; }

class QueueStoreTest : public ::testing::Test {
 protected:
  QueueStoreTest() : qs_(std::make_unique<QueueStore>(db_, WithDeadLetter())) {}

  // Destroys the store and recreates it on the same database, as a node restart does.
  void Crash() {
    qs_.reset();
    qs_ = std::make_unique<QueueStore>(db_, WithDeadLetter());
  }

  // Receives "q" once at each of `times`, expecting exactly one message each time.
  void ReceiveOnceAt(std::initializer_list<sim::Time> times) {
    for (sim::Time t : times) {
      const ReceiveReply r = qs_->Receive("q", 10, t);
      ASSERT_EQ(r.status, QueueStatus::kOk) << t;
      ASSERT_EQ(r.messages.size(), 1u) << t;
    }
  }

  sim::Database db_;
  std::unique_ptr<QueueStore> qs_;
};

class QueueStoreNoDlqTest : public ::testing::Test {
 protected:
  QueueStoreNoDlqTest() : qs_(std::make_unique<QueueStore>(db_, WithoutDeadLetter())) {}

  sim::Database db_;
  std::unique_ptr<QueueStore> qs_;
};

// --- fan-out ------------------------------------------------------------------------------

TEST_F(QueueStoreTest, FanOutCopiesIntoEverySubscribedQueueAndNoOther) {
  qs_->FanOut("t", "m1", 0);
  qs_->FanOut("t", "m2", 0);
  EXPECT_EQ(qs_->Depth("q"), 2);
  EXPECT_EQ(qs_->Depth("audit"), 2);
  EXPECT_EQ(qs_->Depth("other"), 0);
  EXPECT_EQ(qs_->Depth("q.dlq"), 0);

  const ReceiveReply q = qs_->Receive("q", 10, 0);
  const ReceiveReply audit = qs_->Receive("audit", 10, 0);
  ASSERT_EQ(q.messages.size(), 2u);
  ASSERT_EQ(audit.messages.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(q.messages[i].id, static_cast<int64_t>(i) + 1);
    EXPECT_EQ(audit.messages[i].id, static_cast<int64_t>(i) + 1);
    EXPECT_EQ(q.messages[i].payload, "m" + std::to_string(i + 1));
    EXPECT_EQ(audit.messages[i].payload, "m" + std::to_string(i + 1));
  }
}

TEST_F(QueueStoreTest, FanOutToAnotherTopicOnlyReachesItsSubscribers) {
  qs_->FanOut("u", "x", 0);
  EXPECT_EQ(qs_->Depth("other"), 1);
  EXPECT_EQ(qs_->Depth("q"), 0);
  EXPECT_EQ(qs_->Depth("audit"), 0);
  EXPECT_EQ(qs_->Depth("q.dlq"), 0);
}

TEST_F(QueueStoreTest, FanOutToAnUnsubscribedOrEmptyTopicReachesNoQueue) {
  qs_->FanOut("nobody", "x", 0);
  qs_->FanOut("", "x", 0);  // the dead-letter queue's topic is "", which means none
  for (const char* name : {"q", "q.dlq", "audit", "other"}) {
    EXPECT_EQ(qs_->Depth(name), 0) << name;
  }
}

// --- receive and visibility ---------------------------------------------------------------

TEST_F(QueueStoreTest, ReceiveReturnsUpToMaxInIdOrderWithReceiptOne) {
  for (int i = 1; i <= 5; ++i) {
    qs_->FanOut("t", "m" + std::to_string(i), 0);
  }
  const ReceiveReply r = qs_->Receive("q", 3, 0);
  ASSERT_EQ(r.status, QueueStatus::kOk);
  EXPECT_EQ(r.dead_lettered, 0);
  ASSERT_EQ(r.messages.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(r.messages[i].id, static_cast<int64_t>(i) + 1);
    EXPECT_EQ(r.messages[i].payload, "m" + std::to_string(i + 1));
    EXPECT_EQ(r.messages[i].receipt, 1);
  }
  // The next call hands out the remaining two, not the hidden ones.
  const ReceiveReply rest = qs_->Receive("q", 3, 0);
  ASSERT_EQ(rest.messages.size(), 2u);
  EXPECT_EQ(rest.messages[0].id, 4);
  EXPECT_EQ(rest.messages[1].id, 5);
  EXPECT_EQ(qs_->Depth("q"), 5);  // received is not deleted
}

TEST_F(QueueStoreTest, ReceiveOfAnEmptyQueueIsOkAndEmpty) {
  const ReceiveReply r = qs_->Receive("q", 10, 0);
  EXPECT_EQ(r.status, QueueStatus::kOk);
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(r.dead_lettered, 0);
}

TEST_F(QueueStoreTest, AMessageEnqueuedLaterIsNotVisibleBeforeItsEnqueueTime) {
  qs_->FanOut("t", "m", 5 * sim::kSecond);
  EXPECT_TRUE(qs_->Receive("q", 10, 5 * sim::kSecond - 1).messages.empty());
  EXPECT_EQ(qs_->Receive("q", 10, 5 * sim::kSecond).messages.size(), 1u);
}

TEST_F(QueueStoreTest, AReceivedMessageIsHiddenUntilItsVisibilityTimeoutPasses) {
  qs_->FanOut("t", "m", 0);
  const sim::Time t0 = 10 * sim::kSecond;
  ASSERT_EQ(qs_->Receive("q", 10, t0).messages.size(), 1u);
  EXPECT_TRUE(qs_->Receive("q", 10, t0).messages.empty());
  EXPECT_TRUE(qs_->Receive("q", 10, t0 + kVisibility / 2).messages.empty());
  EXPECT_TRUE(qs_->Receive("q", 10, t0 + kVisibility - 1).messages.empty());
  const ReceiveReply again = qs_->Receive("q", 10, t0 + kVisibility);
  ASSERT_EQ(again.messages.size(), 1u);
  EXPECT_EQ(again.messages[0].id, 1);
  EXPECT_EQ(again.messages[0].payload, "m");
}

TEST_F(QueueStoreTest, ReceiptIsTheReceiveCount) {
  qs_->FanOut("t", "m", 0);
  for (int64_t n = 1; n <= 3; ++n) {
    const ReceiveReply r = qs_->Receive("q", 10, (n - 1) * kVisibility);
    ASSERT_EQ(r.messages.size(), 1u) << n;
    EXPECT_EQ(r.messages[0].receipt, n);
  }
}

TEST_F(QueueStoreTest, AReappearingMessageKeepsItsIdOrderAmongFreshOnes) {
  qs_->FanOut("t", "m1", 0);
  ASSERT_EQ(qs_->Receive("q", 1, 0).messages.size(), 1u);  // hides 1
  qs_->FanOut("t", "m2", 0);
  qs_->FanOut("t", "m3", 0);
  const ReceiveReply r = qs_->Receive("q", 10, kVisibility);
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].id, 1);
  EXPECT_EQ(r.messages[0].receipt, 2);
  EXPECT_EQ(r.messages[1].id, 2);
  EXPECT_EQ(r.messages[1].receipt, 1);
  EXPECT_EQ(r.messages[2].id, 3);
  EXPECT_EQ(r.messages[2].receipt, 1);
}

// --- delete -------------------------------------------------------------------------------

TEST_F(QueueStoreTest, DeleteWithTheCurrentReceiptRemovesTheMessage) {
  qs_->FanOut("t", "m1", 0);
  qs_->FanOut("t", "m2", 0);
  const ReceiveReply r = qs_->Receive("q", 10, 0);
  ASSERT_EQ(r.messages.size(), 2u);
  const DeleteReply d = qs_->Delete("q", r.messages[0].id, r.messages[0].receipt);
  EXPECT_EQ(d.status, QueueStatus::kOk);
  EXPECT_EQ(qs_->Depth("q"), 1);
  // After the timeout only the undeleted message comes back.
  const ReceiveReply later = qs_->Receive("q", 10, kVisibility);
  ASSERT_EQ(later.messages.size(), 1u);
  EXPECT_EQ(later.messages[0].id, 2);
}

TEST_F(QueueStoreTest, DeletingTwiceIsOk) {
  qs_->FanOut("t", "m", 0);
  const ReceiveReply r = qs_->Receive("q", 10, 0);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(qs_->Delete("q", 1, r.messages[0].receipt).status, QueueStatus::kOk);
  EXPECT_EQ(qs_->Delete("q", 1, r.messages[0].receipt).status, QueueStatus::kOk);
  EXPECT_EQ(qs_->Depth("q"), 0);
}

TEST_F(QueueStoreTest, DeleteOnlyRemovesFromTheNamedQueue) {
  qs_->FanOut("t", "m", 0);
  const ReceiveReply r = qs_->Receive("q", 10, 0);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(qs_->Delete("q", 1, 1).status, QueueStatus::kOk);
  EXPECT_EQ(qs_->Depth("q"), 0);
  EXPECT_EQ(qs_->Depth("audit"), 1);
}

TEST_F(QueueStoreTest, AStaleReceiptIsRefusedWithAReason) {
  qs_->FanOut("t", "m", 0);
  ReceiveOnceAt({0, kVisibility});  // receipts 1, then 2
  const DeleteReply stale = qs_->Delete("q", 1, 1);
  EXPECT_EQ(stale.status, QueueStatus::kStaleReceipt);
  EXPECT_FALSE(stale.reason.empty());
  EXPECT_EQ(qs_->Depth("q"), 1);
  // The current receipt still works.
  EXPECT_EQ(qs_->Delete("q", 1, 2).status, QueueStatus::kOk);
  EXPECT_EQ(qs_->Depth("q"), 0);
}

TEST_F(QueueStoreTest, DeleteOfAnUnknownIdIsInvalidArgument) {
  qs_->FanOut("t", "m", 0);
  const DeleteReply d = qs_->Delete("q", 2, 1);
  EXPECT_EQ(d.status, QueueStatus::kInvalidArgument);
  EXPECT_FALSE(d.reason.empty());
  EXPECT_EQ(qs_->Depth("q"), 1);
}

TEST_F(QueueStoreTest, DeleteInAnUnknownQueueIsNoSuchQueue) {
  qs_->FanOut("t", "m", 0);
  const DeleteReply d = qs_->Delete("nope", 1, 1);
  EXPECT_EQ(d.status, QueueStatus::kNoSuchQueue);
  EXPECT_FALSE(d.reason.empty());
  EXPECT_EQ(qs_->Depth("q"), 1);
}

// --- dead-letter queue --------------------------------------------------------------------

TEST_F(QueueStoreTest, AfterMaxReceivesTheNextReceiveDeadLettersInsteadOfReturning) {
  qs_->FanOut("t", "poison", 0);
  ReceiveOnceAt({0, kVisibility, 2 * kVisibility});  // receipts 1, 2, 3
  const ReceiveReply r = qs_->Receive("q", 10, 3 * kVisibility);
  EXPECT_EQ(r.status, QueueStatus::kOk);
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(r.dead_lettered, 1);
  EXPECT_EQ(qs_->DeadLettered("q.dlq"), 1);
  EXPECT_EQ(qs_->Depth("q"), 0);
  EXPECT_EQ(qs_->Depth("q.dlq"), 1);
  // It is gone from the source for good.
  EXPECT_TRUE(qs_->Receive("q", 10, 10 * kVisibility).messages.empty());
}

TEST_F(QueueStoreTest, TheDeadLetteredMessageIsReceivableFromTheDlqWithAFreshCount) {
  qs_->FanOut("t", "poison", 0);
  ReceiveOnceAt({0, kVisibility, 2 * kVisibility});
  ASSERT_EQ(qs_->Receive("q", 10, 3 * kVisibility).dead_lettered, 1);
  const ReceiveReply r = qs_->Receive("q.dlq", 10, 3 * kVisibility);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].id, 1);
  EXPECT_EQ(r.messages[0].payload, "poison");
  EXPECT_EQ(r.messages[0].receipt, 1);
}

TEST_F(QueueStoreTest, DeadLetteringTakesPlaceOfOthersInTheSameReceive) {
  qs_->FanOut("t", "poison", 0);
  ReceiveOnceAt({0, kVisibility, 2 * kVisibility});
  qs_->FanOut("t", "good", 2 * kVisibility);
  const ReceiveReply r = qs_->Receive("q", 10, 3 * kVisibility);
  EXPECT_EQ(r.dead_lettered, 1);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].id, 2);
  EXPECT_EQ(r.messages[0].payload, "good");
  EXPECT_EQ(r.messages[0].receipt, 1);
  EXPECT_EQ(qs_->Depth("q"), 1);
  EXPECT_EQ(qs_->Depth("q.dlq"), 1);
}

TEST_F(QueueStoreTest, DeleteWithTheLastReceiptAfterDeadLetteringIsStale) {
  qs_->FanOut("t", "poison", 0);
  ReceiveOnceAt({0, kVisibility, 2 * kVisibility});
  ASSERT_EQ(qs_->Receive("q", 10, 3 * kVisibility).dead_lettered, 1);
  const DeleteReply d = qs_->Delete("q", 1, 3);
  EXPECT_EQ(d.status, QueueStatus::kStaleReceipt);
  EXPECT_FALSE(d.reason.empty());
  EXPECT_EQ(qs_->Depth("q.dlq"), 1);
}

TEST_F(QueueStoreTest, AMessageDeletedOnItsLastReceiveIsNotDeadLettered) {
  qs_->FanOut("t", "m", 0);
  ReceiveOnceAt({0, kVisibility, 2 * kVisibility});
  EXPECT_EQ(qs_->Delete("q", 1, 3).status, QueueStatus::kOk);
  const ReceiveReply r = qs_->Receive("q", 10, 3 * kVisibility);
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(r.dead_lettered, 0);
  EXPECT_EQ(qs_->DeadLettered("q.dlq"), 0);
  EXPECT_EQ(qs_->Depth("q.dlq"), 0);
}

TEST_F(QueueStoreNoDlqTest, WithoutADeadLetterQueueAPoisonMessageComesBackForever) {
  qs_->FanOut("t", "poison", 0);
  for (int64_t n = 1; n <= 20; ++n) {
    const ReceiveReply r = qs_->Receive("q", 10, (n - 1) * kVisibility);
    ASSERT_EQ(r.status, QueueStatus::kOk) << n;
    EXPECT_EQ(r.dead_lettered, 0) << n;
    ASSERT_EQ(r.messages.size(), 1u) << n;
    EXPECT_EQ(r.messages[0].id, 1) << n;
    EXPECT_EQ(r.messages[0].payload, "poison") << n;
    EXPECT_EQ(r.messages[0].receipt, n);
  }
  EXPECT_EQ(qs_->Depth("q"), 1);
}

TEST_F(QueueStoreNoDlqTest, WithoutADeadLetterQueueRedriveMovesNothing) {
  qs_->FanOut("t", "m", 0);
  EXPECT_EQ(qs_->Redrive("q", 0), 0);
  EXPECT_EQ(qs_->Redrive("", 0), 0);
  EXPECT_EQ(qs_->Depth("q"), 1);
}

// --- redrive ------------------------------------------------------------------------------

TEST_F(QueueStoreTest, RedriveMovesTheDlqBackWithReceiveCountsReset) {
  qs_->FanOut("t", "p1", 0);
  qs_->FanOut("t", "p2", 0);
  for (int n = 0; n < 3; ++n) {
    ASSERT_EQ(qs_->Receive("q", 10, n * kVisibility).messages.size(), 2u) << n;
  }
  ASSERT_EQ(qs_->Receive("q", 10, 3 * kVisibility).dead_lettered, 2);
  ASSERT_EQ(qs_->Depth("q.dlq"), 2);

  EXPECT_EQ(qs_->Redrive("q.dlq", 4 * kVisibility), 2);
  EXPECT_EQ(qs_->Redriven("q.dlq"), 2);
  EXPECT_EQ(qs_->Depth("q.dlq"), 0);
  EXPECT_EQ(qs_->Depth("q"), 2);
  EXPECT_EQ(qs_->DeadLettered("q.dlq"), 2);  // ever moved in: redrive does not undo it

  const ReceiveReply r = qs_->Receive("q", 10, 4 * kVisibility);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].payload, "p1");
  EXPECT_EQ(r.messages[1].payload, "p2");
  EXPECT_EQ(r.messages[0].receipt, 1);
  EXPECT_EQ(r.messages[1].receipt, 1);
  EXPECT_EQ(r.messages[0].id, 3);  // new ids after the two the queue already had
  EXPECT_EQ(r.messages[1].id, 4);
}

TEST_F(QueueStoreTest, RedriveSkipsDlqMessagesAlreadyDeleted) {
  qs_->FanOut("t", "p1", 0);
  qs_->FanOut("t", "p2", 0);
  for (int n = 0; n < 3; ++n) {
    ASSERT_EQ(qs_->Receive("q", 10, n * kVisibility).messages.size(), 2u) << n;
  }
  ASSERT_EQ(qs_->Receive("q", 10, 3 * kVisibility).dead_lettered, 2);
  const ReceiveReply dlq = qs_->Receive("q.dlq", 1, 3 * kVisibility);
  ASSERT_EQ(dlq.messages.size(), 1u);
  ASSERT_EQ(qs_->Delete("q.dlq", dlq.messages[0].id, dlq.messages[0].receipt).status,
            QueueStatus::kOk);

  EXPECT_EQ(qs_->Redrive("q.dlq", 4 * kVisibility), 1);
  EXPECT_EQ(qs_->Redriven("q.dlq"), 1);
  EXPECT_EQ(qs_->Depth("q.dlq"), 0);
  EXPECT_EQ(qs_->Depth("q"), 1);
  const ReceiveReply r = qs_->Receive("q", 10, 4 * kVisibility);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].payload, "p2");
}

TEST_F(QueueStoreTest, RedriveOfAnEmptyDlqOrOfANonDlqMovesNothing) {
  qs_->FanOut("t", "m", 0);
  EXPECT_EQ(qs_->Redrive("q.dlq", 0), 0);
  EXPECT_EQ(qs_->Redrive("q", 0), 0);
  EXPECT_EQ(qs_->Redrive("nope", 0), 0);
  EXPECT_EQ(qs_->Redriven("q.dlq"), 0);
  EXPECT_EQ(qs_->Depth("q"), 1);
  EXPECT_EQ(qs_->Depth("audit"), 1);
}

TEST_F(QueueStoreTest, ARedrivenPoisonMessageIsDeadLetteredAgainAfterMaxReceives) {
  qs_->FanOut("t", "poison", 0);
  ReceiveOnceAt({0, kVisibility, 2 * kVisibility});
  ASSERT_EQ(qs_->Receive("q", 10, 3 * kVisibility).dead_lettered, 1);
  ASSERT_EQ(qs_->Redrive("q.dlq", 3 * kVisibility), 1);

  // Three more receives are allowed, since the count was reset.
  for (int64_t n = 1; n <= 3; ++n) {
    const ReceiveReply r = qs_->Receive("q", 10, (2 + n) * kVisibility);
    ASSERT_EQ(r.messages.size(), 1u) << n;
    EXPECT_EQ(r.messages[0].payload, "poison");
    EXPECT_EQ(r.messages[0].receipt, n);
    EXPECT_EQ(r.dead_lettered, 0);
  }
  const ReceiveReply r = qs_->Receive("q", 10, 6 * kVisibility);
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(r.dead_lettered, 1);
  EXPECT_EQ(qs_->DeadLettered("q.dlq"), 2);
  EXPECT_EQ(qs_->Redriven("q.dlq"), 1);
  EXPECT_EQ(qs_->Depth("q"), 0);
  EXPECT_EQ(qs_->Depth("q.dlq"), 1);
}

// --- inject -------------------------------------------------------------------------------

TEST_F(QueueStoreTest, InjectPutsAMessageStraightIntoOneQueue) {
  EXPECT_EQ(qs_->Inject("q", "poison", 0), QueueStatus::kOk);
  EXPECT_EQ(qs_->Depth("q"), 1);
  EXPECT_EQ(qs_->Depth("audit"), 0);  // not fanned out to the topic's other subscribers
  const ReceiveReply r = qs_->Receive("q", 10, 0);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].id, 1);
  EXPECT_EQ(r.messages[0].payload, "poison");
  EXPECT_EQ(r.messages[0].receipt, 1);
}

TEST_F(QueueStoreTest, InjectedIdsFollowFannedOutOnes) {
  qs_->FanOut("t", "m1", 0);
  EXPECT_EQ(qs_->Inject("q", "x", 0), QueueStatus::kOk);
  qs_->FanOut("t", "m2", 0);
  const ReceiveReply r = qs_->Receive("q", 10, 0);
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].payload, "m1");
  EXPECT_EQ(r.messages[1].id, 2);
  EXPECT_EQ(r.messages[1].payload, "x");
  EXPECT_EQ(r.messages[2].id, 3);
  EXPECT_EQ(r.messages[2].payload, "m2");
  EXPECT_EQ(qs_->Depth("audit"), 2);
}

TEST_F(QueueStoreTest, InjectIntoAnUnknownQueueIsNoSuchQueue) {
  EXPECT_EQ(qs_->Inject("nope", "x", 0), QueueStatus::kNoSuchQueue);
  EXPECT_EQ(qs_->Depth("nope"), 0);
  EXPECT_EQ(qs_->Depth("q"), 0);
}

// --- bad calls ----------------------------------------------------------------------------

TEST_F(QueueStoreTest, ReceiveWithMaxBelowOneIsInvalidArgument) {
  qs_->FanOut("t", "m", 0);
  for (int64_t max : {0, -1}) {
    const ReceiveReply r = qs_->Receive("q", max, 0);
    EXPECT_EQ(r.status, QueueStatus::kInvalidArgument) << max;
    EXPECT_FALSE(r.reason.empty()) << max;
    EXPECT_TRUE(r.messages.empty()) << max;
  }
  // Nothing was hidden by the refused calls.
  const ReceiveReply ok = qs_->Receive("q", 1, 0);
  ASSERT_EQ(ok.messages.size(), 1u);
  EXPECT_EQ(ok.messages[0].receipt, 1);
}

TEST_F(QueueStoreTest, ReceiveFromAnUnknownQueueIsNoSuchQueue) {
  const ReceiveReply r = qs_->Receive("nope", 10, 0);
  EXPECT_EQ(r.status, QueueStatus::kNoSuchQueue);
  EXPECT_FALSE(r.reason.empty());
  EXPECT_TRUE(r.messages.empty());
}

TEST(QueueStatusNameTest, NamesEveryStatus) {
  EXPECT_EQ(QueueStatusName(QueueStatus::kOk), "ok");
  EXPECT_EQ(QueueStatusName(QueueStatus::kNoSuchQueue), "no_such_queue");
  EXPECT_EQ(QueueStatusName(QueueStatus::kInvalidArgument), "invalid_argument");
  EXPECT_EQ(QueueStatusName(QueueStatus::kStaleReceipt), "stale_receipt");
}

// --- crash --------------------------------------------------------------------------------

TEST_F(QueueStoreTest, HiddenMessagesStayHiddenAcrossACrashUntilTheirTimeout) {
  qs_->FanOut("t", "m1", 0);
  qs_->FanOut("t", "m2", 0);
  ASSERT_EQ(qs_->Receive("q", 1, 0).messages.size(), 1u);  // hides 1 until 1 s
  Crash();
  const ReceiveReply before = qs_->Receive("q", 10, kVisibility - 1);
  ASSERT_EQ(before.messages.size(), 1u);
  EXPECT_EQ(before.messages[0].id, 2);
  const ReceiveReply after = qs_->Receive("q", 10, kVisibility);
  ASSERT_EQ(after.messages.size(), 1u);
  EXPECT_EQ(after.messages[0].id, 1);
  EXPECT_EQ(after.messages[0].receipt, 2);  // the count survived too
}

TEST_F(QueueStoreTest, DeletedMessagesStayDeletedAcrossACrash) {
  qs_->FanOut("t", "m1", 0);
  qs_->FanOut("t", "m2", 0);
  ASSERT_EQ(qs_->Receive("q", 10, 0).messages.size(), 2u);
  ASSERT_EQ(qs_->Delete("q", 1, 1).status, QueueStatus::kOk);
  Crash();
  EXPECT_EQ(qs_->Depth("q"), 1);
  const ReceiveReply r = qs_->Receive("q", 10, kVisibility);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].id, 2);
  EXPECT_EQ(qs_->Delete("q", 1, 1).status, QueueStatus::kOk);  // deleting twice is still fine
}

TEST_F(QueueStoreTest, ReceiptsFromBeforeACrashStillDelete) {
  qs_->FanOut("t", "m", 0);
  const ReceiveReply r = qs_->Receive("q", 10, 0);
  ASSERT_EQ(r.messages.size(), 1u);
  Crash();
  EXPECT_EQ(qs_->Delete("q", r.messages[0].id, r.messages[0].receipt).status, QueueStatus::kOk);
  EXPECT_EQ(qs_->Depth("q"), 0);
}

TEST_F(QueueStoreTest, IdsAndDeadLetterCountsContinueAfterACrash) {
  qs_->FanOut("t", "poison", 0);
  ReceiveOnceAt({0, kVisibility, 2 * kVisibility});
  Crash();
  // The fourth receive happens in the new process: the count of three survived.
  ASSERT_EQ(qs_->Receive("q", 10, 3 * kVisibility).dead_lettered, 1);
  qs_->FanOut("t", "m2", 3 * kVisibility);
  Crash();
  EXPECT_EQ(qs_->DeadLettered("q.dlq"), 1);
  EXPECT_EQ(qs_->Depth("q.dlq"), 1);
  const ReceiveReply r = qs_->Receive("q", 10, 3 * kVisibility);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].id, 2);
  EXPECT_EQ(r.messages[0].payload, "m2");
}

}  // namespace

}  // namespace paylab::system

namespace paylab::system {
namespace {

TEST_F(QueueStoreTest, AReceiptOfZeroNeverDeletesAMessageNobodyReceived) {
  qs_->FanOut("t", "m1", 0);
  const DeleteReply d = qs_->Delete("q", 1, 0);
  EXPECT_EQ(d.status, QueueStatus::kStaleReceipt);
  EXPECT_FALSE(d.reason.empty());
  EXPECT_EQ(qs_->Depth("q"), 1);
}

}  // namespace
}  // namespace paylab::system
