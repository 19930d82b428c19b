// Unit tests for the point ledger (system/points/point_ledger.h), its checker
// (checks/point_checker.h) and the point service (system/points/point_service.h).
//
// The ledger is driven synchronously on an in-memory database: grants
// (provisional, confirmed, revoked, tombstoned, replayed, reused with other
// parameters), the point-assignment rule applied to payment events in every
// order and with redeliveries, TCC debits by range (try, confirm, cancel,
// empty rollback then a late try, expiry of holds, expiry of lots), and the
// IDs (odd, unique across a restart). Points must move only in balanced
// movements, an expired lot must never be spent, and a cancelled or expired
// hold must give its points back to the very lots they came from.
//
// The checker must pass a clean history and flag each of its checks when the
// database is corrupted by SQL. The service runs on simulated nodes with a
// broker: its assigner must grant from the queue despite poison messages and
// transient apply failures, and its TCC API must answer over RPC.
#include "system/points/point_ledger.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "sim/context.h"
#include "sim/network.h"
#include "sim/node.h"
#include "sim/simulator.h"
#include "sim/storage.h"
#include "sim/time.h"
#include "system/messaging/broker.h"
#include "system/common/ids.h"
#include "system/points/payment_event.h"
#include "checks/point_checker.h"
#include "system/points/point_service.h"
#include "system/common/tcc.h"

namespace paylab::system {

// Found by argument-dependent lookup; internal linkage so no other test source clashes.
static void PrintTo(const GrantReply& r, std::ostream* os) {
  *os << "{" << GrantStatusName(r.status) << ", lot " << r.lot_id << ", amount " << r.amount
      << ", reason \"" << r.reason << "\"}";
}
static void PrintTo(const TccReply& r, std::ostream* os) {
  *os << "{" << TccStatusName(r.status) << ", id " << r.id << ", amount " << r.amount << "}";
}

namespace {

constexpr sim::Duration kTtl = 60 * sim::kSecond;
constexpr sim::Time kFar = 1000 * sim::kDay;

using Entry = std::tuple<UserId, int32_t, int64_t>;  // (user, account, delta)

struct Seen {
  uint64_t id;
  PointMovementKind kind;
  std::string key;
  uint64_t hold_id;
  std::vector<Entry> entries;
};

// Remembers every movement the ledger reports.
class Recorder : public PointLedgerObserver {
 public:
  void OnPointMovement(const PointMovementRecord& m) override {
    Seen s{m.id, m.kind, std::string(m.key), m.hold_id, {}};
    for (const PointEntry& e : m.entries) {
      s.entries.emplace_back(e.user, static_cast<int32_t>(e.account), e.delta);
    }
    movements.push_back(std::move(s));
  }
  int64_t Count(PointMovementKind k) const {
    return std::count_if(movements.begin(), movements.end(),
                         [k](const Seen& s) { return s.kind == k; });
  }
  std::vector<Seen> movements;
};

// Forwards to two observers (the recorder and the checker).
class Tee : public PointLedgerObserver {
 public:
  Tee(PointLedgerObserver* a, PointLedgerObserver* b) : a_(a), b_(b) {}
  void OnPointMovement(const PointMovementRecord& m) override {
    a_->OnPointMovement(m);
    b_->OnPointMovement(m);
  }

 private:
  PointLedgerObserver* a_;
  PointLedgerObserver* b_;
};

int64_t Int(sim::Database& db, std::string_view sql, std::initializer_list<int64_t> args = {}) {
  sim::Statement q(db, sql);
  int i = 1;
  for (int64_t a : args) {
    q.Bind(i++, a);
  }
  return q.Step() ? q.Int(0) : 0;
}

// Everything a refused or replayed operation must leave alone.
struct Snapshot {
  int64_t journal_rows, movements, lots, lot_log, holds, tcc_keys, balance_sum;
  bool operator==(const Snapshot&) const = default;
};

class PointLedgerTest : public ::testing::Test {
 protected:
  PointLedgerTest()
      : checker_(sim_, [this](const Violation& v) { violations_.push_back(v); }),
        tee_(&recorder_, &checker_) {
    ledger_ = std::make_unique<PointLedger>(db_, PointLedgerOptions{}, &tee_);
  }

  // Users 1..3 with no points.
  void Users(int64_t n = 3) { ledger_->Populate(n, 0, 0, 0); }

  Snapshot Snap() {
    return Snapshot{Int(db_, "SELECT COUNT(*) FROM point_journal"),
                    Int(db_, "SELECT COUNT(*) FROM point_movements"),
                    Int(db_, "SELECT COUNT(*) FROM point_lots"),
                    Int(db_, "SELECT COUNT(*) FROM point_lot_log"),
                    Int(db_, "SELECT COUNT(*) FROM point_holds"),
                    Int(db_, "SELECT COUNT(*) FROM point_tcc_keys"),
                    Int(db_, "SELECT COALESCE(SUM(ABS(balance)), 0) FROM point_accounts")};
  }

  int64_t LotState(uint64_t lot) {
    return Int(db_, "SELECT state FROM point_lots WHERE id = ?", {static_cast<int64_t>(lot)});
  }
  int64_t Remaining(uint64_t lot) {
    return Int(db_, "SELECT remaining FROM point_lots WHERE id = ?", {static_cast<int64_t>(lot)});
  }
  int64_t HoldState(uint64_t hold) {
    return Int(db_, "SELECT state FROM point_holds WHERE id = ?", {static_cast<int64_t>(hold)});
  }
  int64_t Account(UserId u, PointAccount a) { return ledger_->AccountBalance(u, a); }

  // A confirmed lot for `user` of `amount` expiring at `expires_at`.
  uint64_t Lot(std::string_view key, UserId user, int64_t amount, sim::Time expires_at,
               sim::Time now = 0) {
    const GrantReply r = ledger_->GrantConfirmed(key, user, amount, expires_at, now);
    EXPECT_EQ(r.status, GrantStatus::kOk) << GrantStatusName(r.status);
    return r.lot_id;
  }

  // Runs the checker's final pass; expects every check clean.
  void ExpectClean(sim::Time now) {
    checker_.CheckFinal(db_, now);
    for (const Violation& v : violations_) {
      ADD_FAILURE() << v.check << ": " << v.detail;
    }
    for (const CheckStatus& s : checker_.statuses()) {
      EXPECT_EQ(s.violations, 0) << s.name;
      EXPECT_GT(s.evaluations, 0) << s.name;
    }
  }

  sim::Simulator sim_{1};
  sim::Database db_;
  Recorder recorder_;
  std::vector<Violation> violations_;
  PointChecker checker_;
  Tee tee_;
  std::unique_ptr<PointLedger> ledger_;
};

// --- population --------------------------------------------------------------

TEST_F(PointLedgerTest, PopulateIssuesInitialLotsOnce) {
  ledger_->Populate(3, 500, 10 * sim::kDay, 0);
  EXPECT_EQ(ledger_->user_count(), 3);
  EXPECT_EQ(ledger_->Balance(2, 0), 500);
  EXPECT_EQ(ledger_->OutstandingPoints(), 1500);
  EXPECT_EQ(Account(kSystemUser, PointAccount::kIssue), -1500);
  EXPECT_EQ(recorder_.Count(PointMovementKind::kIssue), 3);
  const Snapshot before = Snap();
  ledger_->Populate(5, 900, sim::kDay, sim::kSecond);
  EXPECT_EQ(Snap(), before);
  EXPECT_EQ(ledger_->user_count(), 3);
  // The initial lots expire as configured.
  EXPECT_EQ(ledger_->Balance(1, 10 * sim::kDay - 1), 500);
  EXPECT_EQ(ledger_->Balance(1, 10 * sim::kDay), 0);
  ExpectClean(0);
}

// --- grants --------------------------------------------------------------------

TEST_F(PointLedgerTest, ProvisionalGrantIsNotSpendableUntilConfirmed) {
  Users();
  const GrantReply g = ledger_->GrantProvisional("g1", 1, 300, kFar, 0);
  ASSERT_EQ(g.status, GrantStatus::kOk);
  EXPECT_EQ(g.amount, 300);
  EXPECT_EQ(LotState(g.lot_id), static_cast<int64_t>(LotState::kProvisional));
  EXPECT_EQ(ledger_->Balance(1, 0), 0);
  EXPECT_EQ(Int(db_, "SELECT COUNT(*) FROM point_journal"), 0);
  EXPECT_EQ(ledger_->TryDebit(TccTry{"t", 1, 1, 100, kTtl}, 0).status, TccStatus::kDeclined);

  const GrantReply c = ledger_->ConfirmGrant("g1", sim::kSecond);
  EXPECT_EQ(c, (GrantReply{GrantStatus::kOk, g.lot_id, 300, ""}));
  EXPECT_EQ(LotState(g.lot_id), static_cast<int64_t>(LotState::kConfirmed));
  EXPECT_EQ(ledger_->Balance(1, sim::kSecond), 300);
  ASSERT_EQ(recorder_.movements.size(), 1u);
  EXPECT_EQ(recorder_.movements[0].kind, PointMovementKind::kIssue);
  EXPECT_EQ(recorder_.movements[0].key, "g1");
  EXPECT_EQ(recorder_.movements[0].entries,
            (std::vector<Entry>{{0, static_cast<int32_t>(PointAccount::kIssue), -300},
                                {1, static_cast<int32_t>(PointAccount::kPoint), 300}}));
  EXPECT_EQ(ledger_->Counters().grants_provisional, 1);
  EXPECT_EQ(ledger_->Counters().grants_confirmed, 1);
}

TEST_F(PointLedgerTest, GrantsAreIdempotentAndRefuseOtherParameters) {
  Users();
  const GrantReply g = ledger_->GrantProvisional("g1", 1, 300, kFar, 0);
  ASSERT_EQ(g.status, GrantStatus::kOk);
  Snapshot before = Snap();
  EXPECT_EQ(ledger_->GrantProvisional("g1", 1, 300, kFar, sim::kSecond), g);
  EXPECT_EQ(Snap(), before);
  for (const GrantReply& r : {ledger_->GrantProvisional("g1", 2, 300, kFar, 0),
                              ledger_->GrantProvisional("g1", 1, 301, kFar, 0),
                              ledger_->GrantProvisional("g1", 1, 300, kFar - 1, 0),
                              ledger_->GrantConfirmed("g1", 1, 999, kFar, 0)}) {
    EXPECT_EQ(r.status, GrantStatus::kInvalid);
    EXPECT_FALSE(r.reason.empty());
  }
  EXPECT_EQ(Snap(), before);
  EXPECT_EQ(ledger_->Counters().grant_conflicts, 4);

  // Confirming twice issues once; a provisional replay after it is still kOk.
  EXPECT_EQ(ledger_->ConfirmGrant("g1", 0).status, GrantStatus::kOk);
  before = Snap();
  EXPECT_EQ(ledger_->ConfirmGrant("g1", 0), g);
  EXPECT_EQ(ledger_->GrantProvisional("g1", 1, 300, kFar, 0), g);
  EXPECT_EQ(ledger_->GrantConfirmed("g1", 1, 300, kFar, 0), g);
  EXPECT_EQ(Snap(), before);
  EXPECT_EQ(recorder_.Count(PointMovementKind::kIssue), 1);

  // GrantConfirmed with the parameters of a provisional grant confirms it.
  const GrantReply g2 = ledger_->GrantProvisional("g2", 2, 50, kFar, 0);
  EXPECT_EQ(ledger_->GrantConfirmed("g2", 2, 50, kFar, 0), g2);
  EXPECT_EQ(ledger_->Balance(2, 0), 50);
  ExpectClean(0);
}

TEST_F(PointLedgerTest, RevokeProvisionalThenConfirmIsInvalid) {
  Users();
  const GrantReply g = ledger_->GrantProvisional("g1", 1, 300, kFar, 0);
  const GrantReply r = ledger_->RevokeGrant("g1", 0);
  EXPECT_EQ(r, (GrantReply{GrantStatus::kOk, g.lot_id, 300, ""}));
  EXPECT_EQ(LotState(g.lot_id), static_cast<int64_t>(LotState::kRevoked));
  EXPECT_EQ(ledger_->RevokeGrant("g1", sim::kSecond), r);
  EXPECT_EQ(ledger_->ConfirmGrant("g1", 0).status, GrantStatus::kInvalid);
  EXPECT_EQ(ledger_->GrantConfirmed("g1", 1, 300, kFar, 0).status, GrantStatus::kInvalid);
  EXPECT_EQ(ledger_->GrantProvisional("g1", 1, 300, kFar, 0).status, GrantStatus::kRevoked);
  EXPECT_EQ(ledger_->Balance(1, 0), 0);
  EXPECT_EQ(Int(db_, "SELECT COUNT(*) FROM point_journal"), 0);
  const PointCounters c = ledger_->Counters();
  EXPECT_EQ(c.grants_revoked, 1);
  EXPECT_EQ(c.grant_conflicts, 2);
}

TEST_F(PointLedgerTest, RevokeOfUnknownKeyLeavesATombstone) {
  Users();
  const GrantReply r = ledger_->RevokeGrant("g1", 0);
  EXPECT_EQ(r.status, GrantStatus::kOk);
  EXPECT_EQ(r.amount, 0);
  EXPECT_EQ(r.lot_id % 2, 1u);
  EXPECT_EQ(ledger_->RevokeGrant("g1", 0), r);
  const Snapshot before = Snap();
  const GrantReply late = ledger_->GrantProvisional("g1", 1, 300, kFar, sim::kSecond);
  EXPECT_EQ(late.status, GrantStatus::kRevoked);
  EXPECT_EQ(Snap(), before);
  EXPECT_EQ(ledger_->GrantConfirmed("g1", 1, 300, kFar, 0).status, GrantStatus::kInvalid);
  EXPECT_EQ(Int(db_, "SELECT COUNT(*) FROM point_lots WHERE user_id = 1"), 0);
  EXPECT_EQ(ledger_->Counters().tombstones, 1);
}

TEST_F(PointLedgerTest, RevokeOfConfirmedGrantIsInvalidAndCounted) {
  Users();
  Lot("g1", 1, 300, kFar);
  const Snapshot before = Snap();
  EXPECT_EQ(ledger_->RevokeGrant("g1", 0).status, GrantStatus::kInvalid);
  EXPECT_EQ(Snap(), before);
  EXPECT_EQ(ledger_->Counters().grant_conflicts, 1);
  EXPECT_EQ(ledger_->Balance(1, 0), 300);
}

TEST_F(PointLedgerTest, GrantRefusalsChangeNothing) {
  Users();
  const Snapshot before = Snap();
  EXPECT_EQ(ledger_->ConfirmGrant("nope", 0).status, GrantStatus::kNoSuchGrant);
  EXPECT_EQ(ledger_->GrantProvisional("", 1, 10, kFar, 0).status, GrantStatus::kInvalid);
  EXPECT_EQ(ledger_->GrantProvisional("g", 1, 0, kFar, 0).status, GrantStatus::kInvalid);
  EXPECT_EQ(ledger_->GrantProvisional("g", 1, -5, kFar, 0).status, GrantStatus::kInvalid);
  EXPECT_EQ(ledger_->GrantProvisional("g", 9, 10, kFar, 0).status, GrantStatus::kInvalid);
  EXPECT_EQ(ledger_->GrantProvisional("g", 0, 10, kFar, 0).status, GrantStatus::kInvalid);
  EXPECT_EQ(ledger_->GrantConfirmed("g", 1, 10, 5, 5).status, GrantStatus::kInvalid);
  EXPECT_EQ(ledger_->RevokeGrant("", 0).status, GrantStatus::kInvalid);
  EXPECT_EQ(ledger_->ConfirmGrant("", 0).status, GrantStatus::kInvalid);
  EXPECT_EQ(Snap(), before);
}

// --- the point-assignment rule ---------------------------------------------------

PaymentEvent Event(PaymentStatus s, uint64_t payment = 77, int64_t amount = 12'345) {
  return PaymentEvent{payment, PaymentFlow::kCharge, s, 2, amount, "order-77"};
}

TEST_F(PointLedgerTest, CapturedPaymentGetsItsPointsWhateverTheOrder) {
  Users();
  const std::vector<PaymentStatus> events = {PaymentStatus::kAuthorized, PaymentStatus::kAuthorized,
                                             PaymentStatus::kCaptured, PaymentStatus::kCaptured};
  std::vector<size_t> order = {0, 1, 2, 3};
  uint64_t payment = 100;
  int64_t runs = 0;
  do {
    ++payment;
    ++runs;
    sim::Time now = runs * sim::kSecond;
    for (size_t i : order) {
      const GrantReply r = ledger_->ApplyPaymentEvent(Event(events[i], payment), 150, kFar, now);
      EXPECT_EQ(r.status, GrantStatus::kOk) << GrantStatusName(r.status);
      EXPECT_EQ(r.amount, 185);
    }
    EXPECT_EQ(Int(db_, "SELECT state FROM point_lots WHERE grant_key = 'grant/' || ?",
                  {static_cast<int64_t>(payment)}),
              static_cast<int64_t>(LotState::kConfirmed));
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(ledger_->Balance(2, 0), 185 * runs);
  EXPECT_EQ(recorder_.Count(PointMovementKind::kIssue), runs);
  EXPECT_EQ(ledger_->Counters().events_applied, 4 * runs);
  ExpectClean(0);
}

TEST_F(PointLedgerTest, VoidedOrFailedPaymentGetsNothingWhateverTheOrder) {
  Users();
  uint64_t payment = 200;
  for (PaymentStatus undo : {PaymentStatus::kVoided, PaymentStatus::kFailed}) {
    const std::vector<PaymentStatus> events = {PaymentStatus::kAuthorized, undo,
                                               PaymentStatus::kAuthorized, undo};
    std::vector<size_t> order = {0, 1, 2, 3};
    do {
      ++payment;
      for (size_t i : order) {
        const GrantReply r = ledger_->ApplyPaymentEvent(Event(events[i], payment), 150, kFar, 0);
        if (events[i] == undo) {
          EXPECT_EQ(r.status, GrantStatus::kOk);
        } else {
          EXPECT_TRUE(r.status == GrantStatus::kOk || r.status == GrantStatus::kRevoked)
              << GrantStatusName(r.status);
        }
      }
      EXPECT_EQ(Int(db_, "SELECT state FROM point_lots WHERE grant_key = 'grant/' || ?",
                    {static_cast<int64_t>(payment)}),
                static_cast<int64_t>(LotState::kRevoked));
    } while (std::next_permutation(order.begin(), order.end()));
  }
  EXPECT_EQ(ledger_->Balance(2, 0), 0);
  EXPECT_EQ(Int(db_, "SELECT COUNT(*) FROM point_journal"), 0);
  EXPECT_EQ(Int(db_, "SELECT COUNT(*) FROM point_lots WHERE state != 3"), 0);
}

TEST_F(PointLedgerTest, ContradictoryCaptureAndVoidFirstOneWinsTheOtherIsInvalid) {
  Users();
  const std::vector<PaymentStatus> events = {PaymentStatus::kAuthorized, PaymentStatus::kCaptured,
                                             PaymentStatus::kVoided};
  std::vector<size_t> order = {0, 1, 2};
  uint64_t payment = 300;
  int64_t captured_first = 0;
  do {
    ++payment;
    const auto pos = [&](size_t e) { return std::find(order.begin(), order.end(), e); };
    const bool capture_wins = pos(1) < pos(2);
    for (size_t i : order) {
      const GrantReply r = ledger_->ApplyPaymentEvent(Event(events[i], payment), 150, kFar, 0);
      if ((i == 1 && !capture_wins) || (i == 2 && capture_wins)) {
        EXPECT_EQ(r.status, GrantStatus::kInvalid);
      }
    }
    captured_first += capture_wins;
    EXPECT_EQ(Int(db_, "SELECT state FROM point_lots WHERE grant_key = 'grant/' || ?",
                  {static_cast<int64_t>(payment)}),
              static_cast<int64_t>(capture_wins ? LotState::kConfirmed : LotState::kRevoked));
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(captured_first, 3);
  EXPECT_EQ(ledger_->Balance(2, 0), 185 * 3);
  EXPECT_EQ(ledger_->Counters().grant_conflicts, 6);
  ExpectClean(0);
}

TEST_F(PointLedgerTest, PaymentEventsThatGrantNothingAreIgnored) {
  Users();
  const Snapshot before = Snap();
  EXPECT_EQ(ledger_->ApplyPaymentEvent(Event(PaymentStatus::kCaptured, 1, 66), 150, kFar, 0).status,
            GrantStatus::kIgnored);  // 66 * 150 / 10000 = 0
  EXPECT_EQ(ledger_->ApplyPaymentEvent(Event(PaymentStatus::kCreated), 150, kFar, 0).status,
            GrantStatus::kIgnored);
  EXPECT_EQ(ledger_->ApplyPaymentEvent(Event(PaymentStatus::kCaptured), 0, kFar, 0).status,
            GrantStatus::kIgnored);
  EXPECT_EQ(ledger_->ApplyPaymentEvent(Event(PaymentStatus::kCaptured), -1, kFar, 0).status,
            GrantStatus::kInvalid);
  EXPECT_EQ(ledger_->ApplyPaymentEvent(Event(PaymentStatus::kCaptured), 150, 0, 0).status,
            GrantStatus::kInvalid);
  Snapshot after = Snap();
  EXPECT_EQ(after, before);
  // A payer the point service does not know is refused, for good.
  PaymentEvent stranger = Event(PaymentStatus::kAuthorized);
  stranger.payer = 99;
  EXPECT_EQ(ledger_->ApplyPaymentEvent(stranger, 150, kFar, 0).status, GrantStatus::kInvalid);
  EXPECT_EQ(Snap(), before);
}

TEST_F(PointLedgerTest, PaymentEventForAnotherAmountIsAConflict) {
  Users();
  ASSERT_EQ(ledger_->ApplyPaymentEvent(Event(PaymentStatus::kAuthorized), 150, kFar, 0).status,
            GrantStatus::kOk);
  EXPECT_EQ(
      ledger_->ApplyPaymentEvent(Event(PaymentStatus::kCaptured, 77, 99'999), 150, kFar, 0).status,
      GrantStatus::kInvalid);
  EXPECT_EQ(ledger_->Balance(2, 0), 0);
  EXPECT_EQ(ledger_->Counters().grant_conflicts, 1);
}

// --- TCC debit by range -------------------------------------------------------------

TEST_F(PointLedgerTest, TryHoldsWithinTheRangeAndConfirmMovesToClearing) {
  Users();
  Lot("a", 1, 300, kFar);
  Lot("b", 1, 200, kFar);
  // Spendable 500: MAX 400 is taken in full.
  const TccReply t = ledger_->TryDebit(TccTry{"p1/points", 1, 100, 400, kTtl}, sim::kSecond);
  ASSERT_EQ(t.status, TccStatus::kOk);
  EXPECT_EQ(t.amount, 400);
  EXPECT_EQ(t.id % 2, 1u);
  EXPECT_EQ(ledger_->Balance(1, sim::kSecond), 100);
  EXPECT_EQ(Account(kSystemUser, PointAccount::kHolds), 400);
  EXPECT_EQ(HoldState(t.id), static_cast<int64_t>(PointHoldState::kHeld));

  const TccReply c = ledger_->ConfirmDebit("p1/points", 2 * sim::kSecond);
  EXPECT_EQ(c, (TccReply{TccStatus::kOk, t.id, 400}));
  EXPECT_EQ(Account(kSystemUser, PointAccount::kHolds), 0);
  EXPECT_EQ(Account(kSystemUser, PointAccount::kClearing), 400);
  const Snapshot before = Snap();
  EXPECT_EQ(ledger_->ConfirmDebit("p1/points", 3 * sim::kSecond), c);
  EXPECT_EQ(ledger_->TryDebit(TccTry{"p1/points", 1, 100, 400, kTtl}, 3 * sim::kSecond), t);
  EXPECT_EQ(ledger_->CancelDebit("p1/points", 3 * sim::kSecond).status, TccStatus::kInvalid);
  EXPECT_EQ(Snap(), before);
  ExpectClean(3 * sim::kSecond);
}

TEST_F(PointLedgerTest, TryTakesWhatIsSpendableBetweenMinAndMax) {
  Users();
  Lot("a", 1, 250, kFar);
  const TccReply t = ledger_->TryDebit(TccTry{"k", 1, 100, 1000, kTtl}, 0);
  EXPECT_EQ(t.status, TccStatus::kOk);
  EXPECT_EQ(t.amount, 250);
  EXPECT_EQ(ledger_->Balance(1, 0), 0);
}

TEST_F(PointLedgerTest, TryBelowMinIsDeclinedAndStaysDeclined) {
  Users();
  Lot("a", 1, 99, kFar);
  const Snapshot before = Snap();
  const TccReply t = ledger_->TryDebit(TccTry{"k", 1, 100, 200, kTtl}, 0);
  EXPECT_EQ(t, (TccReply{TccStatus::kDeclined, 0, 0}));
  Snapshot after = Snap();
  EXPECT_EQ(after.tcc_keys, before.tcc_keys + 1);  // only the answer is remembered
  after.tcc_keys = before.tcc_keys;
  EXPECT_EQ(after, before);
  // Points arriving later do not change the answer to the same key.
  Lot("b", 1, 500, kFar);
  EXPECT_EQ(ledger_->TryDebit(TccTry{"k", 1, 100, 200, kTtl}, 0), t);
  EXPECT_EQ(ledger_->ConfirmDebit("k", 0).status, TccStatus::kInvalid);
  EXPECT_EQ(ledger_->CancelDebit("k", 0), (TccReply{TccStatus::kOk, 0, 0}));
  EXPECT_EQ(ledger_->Balance(1, 0), 599);
}

TEST_F(PointLedgerTest, ZeroMinLetsAUserWithoutPointsHoldZero) {
  Users();
  const TccReply t = ledger_->TryDebit(TccTry{"z1", 1, 0, 500, kTtl}, 0);
  ASSERT_EQ(t.status, TccStatus::kOk);
  EXPECT_EQ(t.amount, 0);
  EXPECT_NE(t.id, 0u);
  EXPECT_EQ(HoldState(t.id), static_cast<int64_t>(PointHoldState::kHeld));
  EXPECT_EQ(ledger_->ConfirmDebit("z1", 0), (TccReply{TccStatus::kOk, t.id, 0}));
  EXPECT_EQ(HoldState(t.id), static_cast<int64_t>(PointHoldState::kConfirmed));

  const TccReply t2 = ledger_->TryDebit(TccTry{"z2", 2, 0, 500, kTtl}, 0);
  ASSERT_EQ(t2.status, TccStatus::kOk);
  EXPECT_EQ(ledger_->CancelDebit("z2", 0), (TccReply{TccStatus::kOk, t2.id, 0}));
  EXPECT_EQ(HoldState(t2.id), static_cast<int64_t>(PointHoldState::kCancelled));
  EXPECT_EQ(Int(db_, "SELECT COUNT(*) FROM point_journal"), 0);
  ExpectClean(0);
}

TEST_F(PointLedgerTest, TryReplayAnswersTheSameAndOtherParametersAreInvalid) {
  Users();
  Lot("a", 1, 1000, kFar);
  const TccReply t = ledger_->TryDebit(TccTry{"k", 1, 10, 300, kTtl}, 0);
  ASSERT_EQ(t.status, TccStatus::kOk);
  const Snapshot before = Snap();
  EXPECT_EQ(ledger_->TryDebit(TccTry{"k", 1, 10, 300, kTtl}, sim::kSecond), t);
  EXPECT_EQ(ledger_->TryDebit(TccTry{"k", 2, 10, 300, kTtl}, 0).status, TccStatus::kInvalid);
  EXPECT_EQ(ledger_->TryDebit(TccTry{"k", 1, 11, 300, kTtl}, 0).status, TccStatus::kInvalid);
  EXPECT_EQ(ledger_->TryDebit(TccTry{"k", 1, 10, 301, kTtl}, 0).status, TccStatus::kInvalid);
  EXPECT_EQ(ledger_->TryDebit(TccTry{"k", 1, 10, 300, kTtl + 1}, 0).status, TccStatus::kInvalid);
  EXPECT_EQ(Snap(), before);
  EXPECT_EQ(recorder_.Count(PointMovementKind::kTry), 1);
}

TEST_F(PointLedgerTest, BadTryArgumentsAreInvalidAndChangeNothing) {
  Users();
  Lot("a", 1, 1000, kFar);
  const Snapshot before = Snap();
  for (const TccTry& t : {TccTry{"", 1, 1, 2, kTtl}, TccTry{"k", 1, -1, 2, kTtl},
                          TccTry{"k", 1, 3, 2, kTtl}, TccTry{"k", 1, 1, 2, 0},
                          TccTry{"k", 1, 1, 2, -kTtl}, TccTry{"k", 1, 1, 2, 3601 * sim::kSecond},
                          TccTry{"k", 0, 1, 2, kTtl}, TccTry{"k", 9, 1, 2, kTtl}}) {
    EXPECT_EQ(ledger_->TryDebit(t, 0), (TccReply{TccStatus::kInvalid, 0, 0})) << t.key;
  }
  EXPECT_EQ(ledger_->ConfirmDebit("", 0).status, TccStatus::kInvalid);
  EXPECT_EQ(ledger_->CancelDebit("", 0).status, TccStatus::kInvalid);
  EXPECT_EQ(ledger_->ConfirmDebit("never-tried", 0).status, TccStatus::kInvalid);
  EXPECT_EQ(Snap(), before);
}

TEST_F(PointLedgerTest, TryConsumesSoonestExpiringLotsFirstTiesByLotId) {
  Users();
  const uint64_t late = Lot("late", 1, 100, 900 * sim::kSecond);
  const uint64_t tie_a = Lot("tie-a", 1, 100, 500 * sim::kSecond);
  const uint64_t tie_b = Lot("tie-b", 1, 100, 500 * sim::kSecond);
  const uint64_t soon = Lot("soon", 1, 100, 100 * sim::kSecond);
  ASSERT_LT(tie_a, tie_b);
  const TccReply t = ledger_->TryDebit(TccTry{"k", 1, 0, 250, kTtl}, 0);
  ASSERT_EQ(t.amount, 250);
  EXPECT_EQ(Remaining(soon), 0);
  EXPECT_EQ(Remaining(tie_a), 0);
  EXPECT_EQ(Remaining(tie_b), 50);
  EXPECT_EQ(Remaining(late), 100);
  // Each consumption is logged with its hold.
  EXPECT_EQ(Int(db_, "SELECT COUNT(*) FROM point_lot_log WHERE hold_id = ? AND delta < 0",
                {static_cast<int64_t>(t.id)}),
            3);
}

TEST_F(PointLedgerTest, CancelReturnsPointsToTheExactLots) {
  Users();
  const uint64_t a = Lot("a", 1, 100, 100 * sim::kSecond);
  const uint64_t b = Lot("b", 1, 100, 200 * sim::kSecond);
  const TccReply t = ledger_->TryDebit(TccTry{"k", 1, 0, 150, kTtl}, 0);
  ASSERT_EQ(t.amount, 150);
  const TccReply c = ledger_->CancelDebit("k", sim::kSecond);
  EXPECT_EQ(c, (TccReply{TccStatus::kOk, t.id, 150}));
  EXPECT_EQ(Remaining(a), 100);
  EXPECT_EQ(Remaining(b), 100);
  EXPECT_EQ(Int(db_, "SELECT COUNT(*) FROM point_lot_log WHERE hold_id = ? AND delta > 0",
                {static_cast<int64_t>(t.id)}),
            2);
  EXPECT_EQ(Account(kSystemUser, PointAccount::kHolds), 0);
  const Snapshot before = Snap();
  EXPECT_EQ(ledger_->CancelDebit("k", 2 * sim::kSecond), c);
  EXPECT_EQ(ledger_->ConfirmDebit("k", 2 * sim::kSecond).status, TccStatus::kInvalid);
  EXPECT_EQ(Snap(), before);
  EXPECT_EQ(recorder_.Count(PointMovementKind::kCancel), 1);
  ExpectClean(2 * sim::kSecond);
}

TEST_F(PointLedgerTest, EmptyRollbackRefusesTheLateTryAndLeavesNoHold) {
  Users();
  Lot("a", 1, 1000, kFar);
  const TccReply c = ledger_->CancelDebit("p9/points", 0);
  EXPECT_EQ(c, (TccReply{TccStatus::kOk, 0, 0}));
  EXPECT_EQ(ledger_->CancelDebit("p9/points", sim::kSecond), c);
  const Snapshot before = Snap();
  EXPECT_EQ(ledger_->TryDebit(TccTry{"p9/points", 1, 10, 100, kTtl}, 2 * sim::kSecond),
            (TccReply{TccStatus::kCancelled, 0, 0}));
  EXPECT_EQ(ledger_->TryDebit(TccTry{"p9/points", 2, 0, 5, kTtl}, 2 * sim::kSecond),
            (TccReply{TccStatus::kCancelled, 0, 0}));
  EXPECT_EQ(ledger_->ConfirmDebit("p9/points", 2 * sim::kSecond).status, TccStatus::kInvalid);
  EXPECT_EQ(Snap(), before);
  EXPECT_EQ(Int(db_, "SELECT COUNT(*) FROM point_holds"), 0);
  EXPECT_EQ(ledger_->Balance(1, 0), 1000);
  ExpectClean(2 * sim::kSecond);
}

TEST_F(PointLedgerTest, ExpiredHoldConfirmsAsExpiredEveryTimeAndCancelReleasesNothingAgain) {
  Users();
  const uint64_t a = Lot("a", 1, 500, kFar);
  const TccReply t = ledger_->TryDebit(TccTry{"k", 1, 0, 300, kTtl}, 0);
  ASSERT_EQ(t.amount, 300);
  EXPECT_EQ(ledger_->ExpireHolds(kTtl - 1, 100), 0);
  EXPECT_EQ(ledger_->ExpireHolds(kTtl, 100), 1);
  EXPECT_EQ(HoldState(t.id), static_cast<int64_t>(PointHoldState::kExpired));
  EXPECT_EQ(Remaining(a), 500);
  EXPECT_EQ(Account(kSystemUser, PointAccount::kHolds), 0);
  EXPECT_EQ(recorder_.Count(PointMovementKind::kExpireHold), 1);
  const Snapshot before = Snap();
  const TccReply c1 = ledger_->ConfirmDebit("k", kTtl + 1);
  EXPECT_EQ(c1, (TccReply{TccStatus::kExpired, t.id, 0}));
  EXPECT_EQ(ledger_->ConfirmDebit("k", kTtl + 2), c1);
  const TccReply x = ledger_->CancelDebit("k", kTtl + 3);
  EXPECT_EQ(x.status, TccStatus::kOk);
  EXPECT_EQ(ledger_->CancelDebit("k", kTtl + 4), x);
  EXPECT_EQ(ledger_->ConfirmDebit("k", kTtl + 5), c1);
  EXPECT_EQ(Snap(), before);
  EXPECT_EQ(ledger_->Balance(1, kTtl), 500);
  ExpectClean(kTtl + 5);
}

TEST_F(PointLedgerTest, ConfirmAtExpiryReleasesAndAnswersExpired) {
  Users();
  Lot("a", 1, 500, kFar);
  const TccReply t = ledger_->TryDebit(TccTry{"k", 1, 0, 300, kTtl}, 0);
  const TccReply c = ledger_->ConfirmDebit("k", kTtl);
  EXPECT_EQ(c, (TccReply{TccStatus::kExpired, t.id, 0}));
  EXPECT_EQ(ledger_->ConfirmDebit("k", kTtl + 1), c);
  EXPECT_EQ(ledger_->ExpireHolds(kTtl + 1, 100), 0);
  EXPECT_EQ(ledger_->Balance(1, kTtl), 500);
  EXPECT_EQ(Account(kSystemUser, PointAccount::kClearing), 0);
  // Just before expiry a confirm goes through.
  ledger_->TryDebit(TccTry{"k2", 1, 0, 300, kTtl}, kTtl);
  EXPECT_EQ(ledger_->ConfirmDebit("k2", 2 * kTtl - 1).status, TccStatus::kOk);
  ExpectClean(2 * kTtl);
}

TEST_F(PointLedgerTest, ExpireLotsMovesRemaindersToBreakage) {
  Users();
  const uint64_t a = Lot("a", 1, 300, 100 * sim::kSecond);
  Lot("b", 2, 50, 100 * sim::kSecond);
  Lot("c", 1, 70, 200 * sim::kSecond);
  ledger_->TryDebit(TccTry{"k", 1, 0, 100, kTtl}, 0);
  ASSERT_EQ(ledger_->ConfirmDebit("k", 1).status, TccStatus::kOk);
  // Expired but not swept: not spendable, still in the account.
  EXPECT_EQ(ledger_->Balance(1, 100 * sim::kSecond), 70);
  EXPECT_EQ(Account(1, PointAccount::kPoint), 270);
  EXPECT_EQ(ledger_->ExpireLots(100 * sim::kSecond, 1), 1);
  EXPECT_EQ(ledger_->ExpireLots(100 * sim::kSecond, 100), 1);
  EXPECT_EQ(ledger_->ExpireLots(100 * sim::kSecond, 100), 0);
  EXPECT_EQ(Remaining(a), 0);
  EXPECT_EQ(Account(1, PointAccount::kPoint), 70);
  EXPECT_EQ(Account(2, PointAccount::kPoint), 0);
  EXPECT_EQ(Account(kSystemUser, PointAccount::kBreakage), 250);
  EXPECT_EQ(recorder_.Count(PointMovementKind::kBreakage), 2);
  EXPECT_EQ(Account(kSystemUser, PointAccount::kIssue), -420);
  EXPECT_EQ(Account(kSystemUser, PointAccount::kClearing), 100);
  EXPECT_EQ(ledger_->OutstandingPoints(), 70);
  ExpectClean(100 * sim::kSecond);
}

TEST_F(PointLedgerTest, SpendingNeverUsesAnExpiredLot) {
  Users();
  const uint64_t old_lot = Lot("old", 1, 100, 10 * sim::kSecond);
  const uint64_t new_lot = Lot("new", 1, 100, 100 * sim::kSecond);
  // At the lot's expiry it is already unspendable, swept or not.
  EXPECT_EQ(ledger_->TryDebit(TccTry{"k1", 1, 150, 150, kTtl}, 10 * sim::kSecond).status,
            TccStatus::kDeclined);
  const TccReply t = ledger_->TryDebit(TccTry{"k2", 1, 0, 150, kTtl}, 10 * sim::kSecond);
  EXPECT_EQ(t.amount, 100);
  EXPECT_EQ(Remaining(old_lot), 100);
  EXPECT_EQ(Remaining(new_lot), 0);
  // A moment before, the old lot goes first.
  ledger_->CancelDebit("k2", 10 * sim::kSecond);
  const TccReply t3 = ledger_->TryDebit(TccTry{"k3", 1, 0, 150, kTtl}, 9 * sim::kSecond);
  EXPECT_EQ(t3.amount, 150);
  EXPECT_EQ(Remaining(old_lot), 0);
  EXPECT_EQ(Remaining(new_lot), 50);
  // Cancelled after the old lot expired: its points go back to it, then to breakage.
  ledger_->CancelDebit("k3", 20 * sim::kSecond);
  EXPECT_EQ(Remaining(old_lot), 100);
  EXPECT_EQ(ledger_->Balance(1, 20 * sim::kSecond), 100);
  EXPECT_EQ(ledger_->ExpireLots(20 * sim::kSecond, 10), 1);
  EXPECT_EQ(Account(kSystemUser, PointAccount::kBreakage), 100);
  EXPECT_EQ(Int(db_,
                "SELECT COUNT(*) FROM point_lot_log l JOIN point_lots o ON o.id = l.lot_id "
                "WHERE l.delta < 0 AND l.hold_id != 0 AND l.at >= o.expires_at"),
            0);
  ExpectClean(20 * sim::kSecond);
}

// --- IDs -------------------------------------------------------------------------

TEST_F(PointLedgerTest, EveryIdIsOddAndFromThePointSystem) {
  ledger_->Populate(3, 100, sim::kDay, 0);
  ledger_->GrantProvisional("g", 1, 10, kFar, 0);
  ledger_->RevokeGrant("tomb", 0);
  ledger_->TryDebit(TccTry{"k", 1, 0, 50, kTtl}, 0);
  ledger_->TryDebit(TccTry{"k0", 2, 0, 0, kTtl}, 0);
  ledger_->CancelDebit("k", 0);
  sim::Statement q(db_,
                   "SELECT id FROM point_lots UNION ALL SELECT id FROM point_holds "
                   "UNION ALL SELECT id FROM point_movements");
  int64_t n = 0;
  while (q.Step()) {
    const auto id = static_cast<uint64_t>(q.Int(0));
    EXPECT_EQ(id & 1, 1u) << id;
    EXPECT_EQ(DecodeId(id).system, IdSystem::kPoint);
    ++n;
  }
  EXPECT_GT(n, 8);
}

TEST_F(PointLedgerTest, RestartOnTheSameDatabaseKeepsIdsUnique) {
  ledger_->Populate(3, 100, sim::kDay, 0);
  ledger_->TryDebit(TccTry{"k1", 1, 0, 50, kTtl}, 0);
  // A new incarnation at the same virtual time (the clock may even step back).
  ledger_ = std::make_unique<PointLedger>(db_, PointLedgerOptions{}, &tee_);
  EXPECT_EQ(ledger_->user_count(), 3);
  ledger_->TryDebit(TccTry{"k2", 2, 0, 50, kTtl}, 0);
  ledger_->GrantConfirmed("g", 3, 10, kFar, 0);
  ledger_ = std::make_unique<PointLedger>(db_, PointLedgerOptions{}, &tee_);
  ledger_->CancelDebit("k1", 0);
  ledger_->GrantProvisional("g2", 3, 10, kFar, 0);
  ledger_->CancelDebit("k2", 0);
  std::set<int64_t> ids;
  sim::Statement q(db_,
                   "SELECT id FROM point_lots UNION ALL SELECT id FROM point_holds "
                   "UNION ALL SELECT id FROM point_movements");
  int64_t n = 0;
  while (q.Step()) {
    EXPECT_TRUE(ids.insert(q.Int(0)).second) << "duplicate id " << q.Int(0);
    ++n;
  }
  // Initial lots and their issues, two holds and their tries, grant g and its
  // issue, two cancels, g2.
  EXPECT_EQ(n, 3 + 3 + 2 + 2 + 2 + 2 + 1);
  ExpectClean(0);
}

TEST_F(PointLedgerTest, CountersSurviveARestartAndReadFromTheDatabase) {
  Users();
  ledger_->GrantProvisional("g", 1, 10, kFar, 0);
  ledger_->RevokeGrant("x", 0);
  ledger_->CountPoison();
  ledger_->CountApplyFailure();
  ledger_->CountApplyFailure();
  ledger_ = std::make_unique<PointLedger>(db_, PointLedgerOptions{}, nullptr);
  const PointCounters c = ReadPointCounters(db_);
  EXPECT_EQ(c, ledger_->Counters());
  EXPECT_EQ(c.grants_provisional, 1);
  EXPECT_EQ(c.tombstones, 1);
  EXPECT_EQ(c.poison_seen, 1);
  EXPECT_EQ(c.apply_failures, 2);
  sim::Database empty;
  EXPECT_EQ(ReadPointCounters(empty), PointCounters{});
}

// --- the checker: every check can fail -----------------------------------------------

class PointCheckerTest : public PointLedgerTest {
 protected:
  // A history touching every table: grants, a confirmed, a cancelled and an
  // expired hold, breakage.
  void History() {
    ledger_->Populate(3, 1000, 50 * sim::kSecond, 0);
    ledger_->GrantProvisional("g", 2, 40, kFar, 0);
    ledger_->ConfirmGrant("g", sim::kSecond);
    ledger_->RevokeGrant("gone", 0);
    ledger_->TryDebit(TccTry{"c", 1, 100, 300, kTtl}, sim::kSecond);
    ledger_->ConfirmDebit("c", 2 * sim::kSecond);
    ledger_->TryDebit(TccTry{"x", 2, 0, 500, kTtl}, sim::kSecond);
    ledger_->CancelDebit("x", 2 * sim::kSecond);
    ledger_->TryDebit(TccTry{"e", 3, 0, 600, 10 * sim::kSecond}, sim::kSecond);
    ledger_->ExpireHolds(20 * sim::kSecond, 100);
    ledger_->ExpireLots(60 * sim::kSecond, 100);
  }

  const CheckStatus& Status(std::string_view name) {
    for (const CheckStatus& s : checker_.statuses()) {
      if (s.name == name) {
        return s;
      }
    }
    ADD_FAILURE() << "no check " << name;
    return checker_.statuses().front();
  }

  // Runs the final pass and expects `check` violated, with a detail naming `row`.
  void ExpectFlagged(std::string_view check, std::string_view row) {
    checker_.CheckFinal(db_, 60 * sim::kSecond);
    EXPECT_GT(Status(check).violations, 0) << check;
    bool named = false;
    for (const Violation& v : violations_) {
      named |= v.check == check && v.detail.find(row) != std::string::npos;
    }
    EXPECT_TRUE(named) << check << " does not name " << row << "; first violation: "
                       << (violations_.empty() ? "none" : violations_[0].detail);
  }

  std::string FirstId(std::string_view table) {
    return std::to_string(
        Int(db_, "SELECT MIN(id) FROM " + std::string(table) + " WHERE user_id != 0"));
  }
};

TEST_F(PointCheckerTest, CleanHistoryPassesEveryCheck) {
  History();
  EXPECT_EQ(checker_.movements_seen(), Int(db_, "SELECT COUNT(*) FROM point_movements"));
  ExpectClean(60 * sim::kSecond);
}

TEST_F(PointCheckerTest, UnbalancedMovementIsFlagged) {
  History();
  const int64_t movement =
      Int(db_,
          "SELECT movement_id FROM point_journal WHERE seq = (SELECT MAX(seq) FROM point_journal)");
  db_.ExecScript(
      "UPDATE point_journal SET delta = delta + 7 WHERE seq = (SELECT MAX(seq) FROM "
      "point_journal)");
  ExpectFlagged("point_journal_balanced", std::to_string(movement));
}

TEST_F(PointCheckerTest, UnbalancedMovementSeenLiveIsFlagged) {
  Users();
  const PointEntry entries[] = {{1, PointAccount::kPoint, 10}, {0, PointAccount::kIssue, -9}};
  checker_.OnPointMovement(
      PointMovementRecord{12345, PointMovementKind::kIssue, "k", 0, 0, 0, entries});
  EXPECT_EQ(Status("point_journal_balanced").violations, 1);
  ASSERT_FALSE(violations_.empty());
  EXPECT_NE(violations_[0].detail.find("12345"), std::string::npos);
}

TEST_F(PointCheckerTest, LotsThatDisagreeWithTheBalanceAreFlagged) {
  History();
  const std::string lot = FirstId("point_lots");
  db_.ExecScript("UPDATE point_lots SET remaining = remaining + 1 WHERE id = " + lot);
  ExpectFlagged("point_balance_matches_lots", "user 1");
}

TEST_F(PointCheckerTest, ALotWhoseLogDisagreesIsFlagged) {
  History();
  // Moving points between two lots of one user keeps the per-user sums.
  const std::string a =
      std::to_string(Int(db_, "SELECT MIN(id) FROM point_lots WHERE user_id = 2 AND state = 2"));
  const std::string b =
      std::to_string(Int(db_, "SELECT MAX(id) FROM point_lots WHERE user_id = 2 AND state = 2"));
  ASSERT_NE(a, b);
  db_.ExecScript("UPDATE point_lots SET remaining = remaining - 1 WHERE id = " + a);
  db_.ExecScript("UPDATE point_lots SET remaining = remaining + 1 WHERE id = " + b);
  ExpectFlagged("point_balance_matches_lots", "lot " + a);
}

TEST_F(PointCheckerTest, ABalanceThatDisagreesWithTheJournalIsFlagged) {
  History();
  db_.ExecScript(
      "UPDATE point_accounts SET balance = balance + 5 WHERE user_id = 0 AND account = 101");
  ExpectFlagged("point_balance_matches_lots", "HOLDS");
}

TEST_F(PointCheckerTest, SpendingAfterExpiryIsFlagged) {
  History();
  const int64_t seq = Int(db_, "SELECT MIN(seq) FROM point_lot_log WHERE hold_id != 0");
  db_.ExecScript(
      "UPDATE point_lot_log SET at = (SELECT expires_at FROM point_lots WHERE id = lot_id) "
      "WHERE seq = " +
      std::to_string(seq));
  ExpectFlagged("point_not_spent_after_expiry", "lot log entry " + std::to_string(seq));
}

TEST_F(PointCheckerTest, AHoldLeftHeldIsFlagged) {
  History();
  const TccReply t = ledger_->TryDebit(TccTry{"left", 2, 0, 10, kTtl}, 60 * sim::kSecond);
  ASSERT_EQ(t.status, TccStatus::kOk);
  ExpectFlagged("point_no_hold_left", std::to_string(t.id));
}

TEST_F(PointCheckerTest, AnEvenIdIsFlagged) {
  History();
  const int64_t hold = Int(db_, "SELECT MAX(id) FROM point_holds");
  db_.ExecScript("UPDATE point_holds SET id = id + 1 WHERE id = " + std::to_string(hold));
  ExpectFlagged("point_ids_odd", "hold id " + std::to_string(hold + 1));
}

TEST_F(PointCheckerTest, AnEvenIdSeenLiveIsFlagged) {
  Users();
  const PointEntry entries[] = {{1, PointAccount::kPoint, 10}, {0, PointAccount::kIssue, -10}};
  checker_.OnPointMovement(
      PointMovementRecord{4242, PointMovementKind::kIssue, "k", 0, 0, 0, entries});
  EXPECT_EQ(Status("point_ids_odd").violations, 1);
}

// --- the service on simulated nodes ----------------------------------------------------

constexpr std::string_view kQueue = "payment.events.points";
constexpr std::string_view kDlq = "payment.events.points.dlq";

// A caller node: runs `script` once booted.
class Caller : public sim::Service {
 public:
  using Script = std::function<asio::awaitable<void>(sim::NodeContext&)>;
  Caller(sim::NodeContext& ctx, Script script) : ctx_(ctx), script_(std::move(script)) {}
  asio::awaitable<void> Boot() override {
    ctx_.Spawn(script_(ctx_));
    co_return;
  }

 private:
  sim::NodeContext& ctx_;
  Script script_;
};

struct World {
  explicit World(double apply_failure_rate, Caller::Script script = nullptr)
      : caller_script(std::move(script)) {
    if (!caller_script) {
      caller_script = [](sim::NodeContext&) -> asio::awaitable<void> { co_return; };
    }
    broker_config.topics.push_back(TopicConfig{std::string(kPaymentTopic), 1, false});
    broker_config.queues.push_back(QueueConfig{std::string(kQueue), std::string(kPaymentTopic),
                                               200 * sim::kMillisecond, 3, std::string(kDlq)});
    broker_config.queues.push_back(
        QueueConfig{std::string(kDlq), "", 200 * sim::kMillisecond, 0, ""});
    point_config.ledger.id_worker = 3;
    point_config.users = 4;
    point_config.initial_points = 1000;
    point_config.lot_expiry = sim::kDay;
    point_config.expiry_scan_interval = sim::kSecond;
    point_config.broker = 1;
    point_config.queue = std::string(kQueue);
    point_config.reward_bp = 100;
    point_config.apply_failure_rate = apply_failure_rate;
    net.AddNode(&point);
    net.AddNode(&broker);
    net.AddNode(&caller);
  }
  ~World() {
    for (sim::Node* n : {&caller, &point, &broker}) {
      n->Shutdown();
    }
  }

  Broker& broker_service() { return *dynamic_cast<Broker*>(broker.service()); }
  PointService& point_service() { return *dynamic_cast<PointService*>(point.service()); }

  void Publish(const PaymentEvent& e) {
    broker_service().queues().FanOut(kPaymentTopic, EncodePaymentEvent(e), sim.Now());
  }

  sim::Simulator sim{5};
  sim::Network net{sim, sim::LatencyModel{}};
  std::vector<Violation> violations;
  PointChecker checker{sim, [this](const Violation& v) { violations.push_back(v); }};
  BrokerConfig broker_config;
  PointServiceConfig point_config;
  Caller::Script caller_script;
  sim::Node point{sim, net, 0, "point", [this](sim::NodeContext& ctx) {
                    return std::make_unique<PointService>(ctx, point_config, &checker);
                  }};
  sim::Node broker{sim, net, 1, "broker", [this](sim::NodeContext& ctx) {
                     return std::make_unique<Broker>(ctx, broker_config);
                   }};
  sim::Node caller{sim, net, 2, "caller", [this](sim::NodeContext& ctx) {
                     return std::make_unique<Caller>(ctx, caller_script);
                   }};
};

PaymentEvent Payment(uint64_t id, PaymentStatus s, int64_t payer) {
  return PaymentEvent{id, PaymentFlow::kCharge, s, payer, 10'000, fmt::format("order-{}", id)};
}

TEST(PointServiceTest, AssignerGrantsFromTheQueueDespitePoisonAndFailures) {
  World w(0.3);
  w.broker.Start();
  w.point.Start();
  w.caller.Start();
  w.sim.Run(sim::kSecond);
  // Payments 1..6: authorised and captured (payment 5 voided instead), events
  // published out of order for some.
  for (uint64_t p = 1; p <= 6; ++p) {
    const int64_t payer = static_cast<int64_t>(p % 4) + 1;
    if (p % 2 == 0) {
      w.Publish(Payment(p, PaymentStatus::kCaptured, payer));
      w.Publish(Payment(p, PaymentStatus::kAuthorized, payer));
    } else {
      w.Publish(Payment(p, PaymentStatus::kAuthorized, payer));
      w.Publish(Payment(p, p == 5 ? PaymentStatus::kVoided : PaymentStatus::kCaptured, payer));
    }
  }
  ASSERT_EQ(w.broker_service().queues().Inject(kQueue, "not|an event", w.sim.Now()),
            QueueStatus::kOk);
  w.sim.Run(30 * sim::kSecond);
  // Dead letters (poison, and events whose applies failed too often) are redriven
  // until only the poison message is left.
  for (int round = 0; round < 20; ++round) {
    w.broker_service().queues().Redrive(kDlq, w.sim.Now());
    w.sim.Run(w.sim.Now() + 10 * sim::kSecond);
  }
  PointService& svc = w.point_service();
  const PointCounters c = svc.counters();
  EXPECT_GT(c.poison_seen, 0);
  EXPECT_GT(c.apply_failures, 0);
  EXPECT_EQ(c.grants_confirmed, 5);  // payments 1, 2, 3, 4, 6
  EXPECT_EQ(c.grant_conflicts, 0);
  // 1% of 10000 = 100 points per captured payment, on top of the initial 1000.
  const sim::Time now = w.sim.Now();
  EXPECT_EQ(svc.ledger().Balance(1, now), 1000 + 100);      // payment 4
  EXPECT_EQ(svc.ledger().Balance(2, now), 1000 + 100);      // payment 1 (5 was voided)
  EXPECT_EQ(svc.ledger().Balance(3, now), 1000 + 2 * 100);  // payments 2 and 6
  EXPECT_EQ(svc.ledger().Balance(4, now), 1000 + 100);      // payment 3
  EXPECT_EQ(w.broker_service().queues().Depth(kQueue) + w.broker_service().queues().Depth(kDlq),
            1);  // only the poison message remains
  w.checker.CheckFinal(w.point.db(), now);
  for (const Violation& v : w.violations) {
    ADD_FAILURE() << v.check << ": " << v.detail;
  }
}

TEST(PointServiceTest, TccOverRpcAndBalance) {
  struct Answers {
    std::vector<TccReply> replies;
    int64_t balance_before = -1, balance_after = -1;
  } answers;
  // The calls are named locals, never temporaries inside a co_await
  // expression: GCC 12 destroys such temporaries twice when they own memory.
  World w(0, [&answers](sim::NodeContext& ctx) -> asio::awaitable<void> {
    const sim::Duration timeout = sim::kSecond;
    const auto balance = [](PointService& s) { return s.Balance(1); };
    const TccTry t{"pay-1/points", 1, 100, 700, 30 * sim::kSecond};
    const auto try_debit = [t](PointService& s) { return s.TryDebit(t); };
    const auto confirm = [](PointService& s) { return s.ConfirmDebit("pay-1/points"); };
    const auto cancel = [](PointService& s) { return s.CancelDebit("pay-2/points"); };
    const TccTry late{"pay-2/points", 1, 0, 10, 30 * sim::kSecond};
    const auto late_try = [late](PointService& s) { return s.TryDebit(late); };

    auto b = co_await ctx.Call<PointService>(0, "point.balance", timeout, balance);
    answers.balance_before = b.value;
    auto r = co_await ctx.Call<PointService>(0, "point.try", timeout, try_debit);
    answers.replies.push_back(r.value);
    r = co_await ctx.Call<PointService>(0, "point.confirm", timeout, confirm);
    answers.replies.push_back(r.value);
    r = co_await ctx.Call<PointService>(0, "point.cancel", timeout, cancel);
    answers.replies.push_back(r.value);
    r = co_await ctx.Call<PointService>(0, "point.try", timeout, late_try);
    answers.replies.push_back(r.value);
    b = co_await ctx.Call<PointService>(0, "point.balance", timeout, balance);
    answers.balance_after = b.value;
  });
  w.point_config.queue.clear();  // no assigner
  w.broker.Start();
  w.point.Start();
  w.caller.Start();
  w.sim.Run(10 * sim::kSecond);
  EXPECT_EQ(answers.balance_before, 1000);
  ASSERT_EQ(answers.replies.size(), 4u);
  EXPECT_EQ(answers.replies[0].status, TccStatus::kOk);
  EXPECT_EQ(answers.replies[0].amount, 700);
  EXPECT_EQ(answers.replies[1], (TccReply{TccStatus::kOk, answers.replies[0].id, 700}));
  EXPECT_EQ(answers.replies[2], (TccReply{TccStatus::kOk, 0, 0}));
  EXPECT_EQ(answers.replies[3].status, TccStatus::kCancelled);
  EXPECT_EQ(answers.balance_after, 300);
  EXPECT_EQ(w.point_service().ledger().AccountBalance(kSystemUser, PointAccount::kClearing), 700);
  w.checker.CheckFinal(w.point.db(), w.sim.Now());
  EXPECT_TRUE(w.violations.empty()) << w.violations.front().detail;
}

TEST(PointServiceTest, RestartRecoversTheLedgerAndKeepsIdsUnique) {
  World w(0);
  w.point_config.queue.clear();
  w.broker.Start();
  w.point.Start();
  w.caller.Start();
  w.sim.Run(sim::kSecond);
  w.point_service().ledger().TryDebit(TccTry{"a", 1, 0, 10, sim::kMinute}, w.sim.Now());
  w.sim.ScheduleAt(2 * sim::kSecond, [&] { w.point.Crash(); });
  w.sim.ScheduleAt(3 * sim::kSecond, [&] { w.point.Restart(); });
  w.sim.Run(4 * sim::kSecond);
  PointLedger& l = w.point_service().ledger();
  EXPECT_EQ(l.user_count(), 4);
  EXPECT_EQ(l.Balance(1, w.sim.Now()), 990);
  l.TryDebit(TccTry{"b", 2, 0, 10, sim::kMinute}, w.sim.Now());
  l.CancelDebit("a", w.sim.Now());
  l.CancelDebit("b", w.sim.Now());
  EXPECT_EQ(w.point.db().QueryInt("SELECT COUNT(*) - COUNT(DISTINCT id) FROM (SELECT id FROM "
                                  "point_lots UNION ALL SELECT id FROM point_holds UNION ALL "
                                  "SELECT id FROM point_movements)"),
            0);
  w.checker.CheckFinal(w.point.db(), w.sim.Now());
  EXPECT_TRUE(w.violations.empty()) << w.violations.front().detail;
}

}  // namespace
}  // namespace paylab::system
