// Tests of the point ledger's reference model (checks/models/point_model.h), from
// the seeds' own examples, against the real ledger (system/points/point_ledger.h)
// on an in-memory database.
//
// Seed 000: a payment spanning both systems debits points by range, MIN =
// requested - wallet total (never below 0), MAX = requested; the point
// service debits as much as it can within the range, or declines. Lots
// carry their own expiry and are consumed soonest-expiring first; a lot is
// spendable until the instant before its expiry, and a hold confirms only
// before its own. Seed 002: points are granted provisionally at
// authorisation and confirmed at capture; a void revokes them, even one
// that arrives first (a tombstone). Seed 003: a Cancel may come before its
// Try. Each test drives the ledger through such an example, asserts the
// figures the seeds give, and checks that the model, fed every applied
// request, agrees at every step. Then the model must catch what a wrong
// ledger would report: points taken from the wrong lot, a lot created
// without its expiry, a try accepted outside its range, a confirm at the
// expiry instant; each printed with both sides.
#include "checks/models/point_model.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "checks/models/model_feed.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "checks/models/point_auditor.h"
#include "sim/simulator.h"
#include "sim/storage.h"
#include "sim/time.h"
#include "system/points/payment_event.h"
#include "system/points/point_ledger.h"
#include "system/common/tcc.h"

namespace paylab::models {
namespace {

using system::GrantReply;
using system::GrantStatus;
using system::PointApplied;
using system::PointLedger;
using system::PointLedgerOptions;
using system::TccReply;
using system::TccStatus;
using system::TccTry;

constexpr sim::Duration kHoldTtlMax = sim::kDay;

// Feeds every applied request to a model; `tamper` may change a copy of a
// fact before the model sees it (a wrong ledger, simulated). Like the
// auditor, it stops at the first difference.
class ModelFeed : public system::PointLedgerObserver,
                  public ModelFeedBase<PointModel, PointApplied> {
 public:
  ModelFeed() : ModelFeedBase(PointModel(PointRules{kHoldTtlMax})) {}
  void OnPointMovement(const system::PointMovementRecord&) override {}
  void OnPointApplied(const PointApplied& a) override {
    Feed(a, static_cast<bool>(tamper), [&] {
      // A deep copy the test may change.
      std::vector<std::vector<system::PointEntry>> entries;
      std::vector<system::PointMovementRecord> movements(a.movements.begin(), a.movements.end());
      for (auto& m : movements) {
        entries.emplace_back(m.entries.begin(), m.entries.end());
      }
      for (size_t i = 0; i < movements.size(); ++i) {
        movements[i].entries = entries[i];
      }
      std::vector<system::LotChange> lots(a.lots.begin(), a.lots.end());
      std::vector<system::PointHoldCreated> holds(a.holds.begin(), a.holds.end());
      GrantReply grant = a.grant;
      TccReply tcc = a.tcc;
      tamper(grant, tcc, lots, holds);
      return model.Check(PointApplied{a.request, grant, tcc, a.count, movements, lots, holds});
    });
  }

  std::function<void(GrantReply&, TccReply&, std::vector<system::LotChange>&,
                     std::vector<system::PointHoldCreated>&)>
      tamper;
};

class PointModelTest : public testing::Test {
 protected:
  PointModelTest() {
    PointLedgerOptions o;
    o.hold_ttl_max = kHoldTtlMax;
    o.id_worker = 1;
    o.audit = true;
    ledger_ = std::make_unique<PointLedger>(db_, o, &feed_);
    // Three users, no initial points: each test grants the lots it needs.
    ledger_->Populate(3, 0, 0, 0);
  }

  // A confirmed lot of `amount` for `user`, expiring at `expires_at`.
  uint64_t Lot(std::string key, int64_t user, int64_t amount, sim::Time expires_at) {
    const GrantReply g = ledger_->GrantConfirmed(key, user, amount, expires_at, 0);
    EXPECT_EQ(g.status, GrantStatus::kOk);
    return g.lot_id;
  }

  TccReply Try(std::string key, int64_t user, int64_t min, int64_t max, sim::Time now,
               sim::Duration ttl = sim::kHour) {
    return ledger_->TryDebit(TccTry{std::move(key), user, min, max, ttl}, now);
  }

  int64_t Remaining(uint64_t lot) {
    sim::Statement q(db_, "SELECT remaining FROM point_lots WHERE id = ?");
    q.Bind(1, static_cast<int64_t>(lot));
    EXPECT_TRUE(q.Step());
    return q.Int(0);
  }

  void ExpectAgreed() {
    EXPECT_EQ(feed_.first_diff, "");
    EXPECT_GT(feed_.checked, 0);
  }

  sim::Database db_;
  ModelFeed feed_;
  std::unique_ptr<PointLedger> ledger_;
};

TEST_F(PointModelTest, Seed000DebitByRangeTakesWhatItCanWithinMinAndMax) {
  Lot("l1", 1, 300, 90 * sim::kDay);
  // The cross-system debit's range: MIN = requested - wallet total (not
  // below 0), MAX = requested.
  const auto range = [](int64_t requested, int64_t wallet_total) {
    return std::pair<int64_t, int64_t>{std::max<int64_t>(0, requested - wallet_total), requested};
  };
  // 600 asked, 500 in the wallet: points cover 100..600; all 300 are taken.
  auto [min, max] = range(600, 500);
  EXPECT_EQ(Try("a", 1, min, max, 1).amount, 300);
  ASSERT_EQ(ledger_->CancelDebit("a", 2).status, TccStatus::kOk);
  // 200 asked: MAX bounds it, 100 points are left.
  std::tie(min, max) = range(200, 500);
  EXPECT_EQ(Try("b", 1, min, max, 3).amount, 200);
  EXPECT_EQ(ledger_->Balance(1, 4), 100);
  // 600 asked with 100 in the wallet: MIN 500 is more than the 100 left.
  std::tie(min, max) = range(600, 100);
  EXPECT_EQ(Try("c", 1, min, max, 5).status, TccStatus::kDeclined);
  EXPECT_EQ(ledger_->Balance(1, 6), 100);
  // A declined try stays declined, even once points arrive.
  Lot("l2", 1, 1000, 90 * sim::kDay);
  EXPECT_EQ(Try("c", 1, min, max, 7).status, TccStatus::kDeclined);
  EXPECT_EQ(feed_.model.stats().declines, 2);
  ExpectAgreed();
}

TEST_F(PointModelTest, LotsAreConsumedSoonestExpiringFirstAndGivenBackExactly) {
  const uint64_t late = Lot("late", 1, 100, 30 * sim::kDay);
  const uint64_t soon = Lot("soon", 1, 50, 10 * sim::kDay);
  const uint64_t mid = Lot("mid", 1, 80, 20 * sim::kDay);
  // 170 = soon's 50 + mid's 80 + 40 of late's 100.
  const TccReply t = Try("t", 1, 170, 170, sim::kDay);
  ASSERT_EQ(t.status, TccStatus::kOk);
  EXPECT_EQ(Remaining(soon), 0);
  EXPECT_EQ(Remaining(mid), 0);
  EXPECT_EQ(Remaining(late), 60);
  EXPECT_EQ(feed_.model.stats().multi_lot_debits, 1);
  // Cancelled, each lot gets back exactly what it gave.
  ASSERT_EQ(ledger_->CancelDebit("t", sim::kDay + 1).status, TccStatus::kOk);
  EXPECT_EQ(Remaining(soon), 50);
  EXPECT_EQ(Remaining(mid), 80);
  EXPECT_EQ(Remaining(late), 100);
  // Two lots expiring together: the lower ID goes first.
  const uint64_t a = Lot("a", 2, 10, 5 * sim::kDay);
  const uint64_t b = Lot("b", 2, 10, 5 * sim::kDay);
  ASSERT_LT(a, b);
  ASSERT_EQ(Try("u", 2, 15, 15, sim::kDay).amount, 15);
  EXPECT_EQ(Remaining(a), 0);
  EXPECT_EQ(Remaining(b), 5);
  ExpectAgreed();
}

TEST_F(PointModelTest, ALotIsSpendableUntilTheInstantBeforeItsExpiry) {
  const sim::Time expiry = 10 * sim::kDay;
  Lot("l", 1, 100, expiry);
  Lot("k", 2, 100, expiry);
  EXPECT_EQ(Try("a", 1, 0, 30, expiry - 1).amount, 30);
  EXPECT_EQ(ledger_->Balance(2, expiry - 1), 100);
  // At the instant: nothing is spendable, though the points stay in the
  // account until the sweep moves them to BREAKAGE.
  EXPECT_EQ(ledger_->Balance(2, expiry), 0);
  EXPECT_EQ(Try("b", 2, 1, 30, expiry).status, TccStatus::kDeclined);
  EXPECT_EQ(Try("c", 2, 0, 30, expiry).amount, 0);
  EXPECT_EQ(ledger_->AccountBalance(2, system::PointAccount::kPoint), 100);
  // The hold on user 1 still holds 30; the sweep takes both remainders.
  EXPECT_EQ(ledger_->ExpireLots(expiry, 10), 2);
  EXPECT_EQ(ledger_->AccountBalance(0, system::PointAccount::kBreakage), 170);
  EXPECT_EQ(feed_.model.stats().lots_expired, 2);
  // The hold cancelled after its lot expired gives the lot its 30 back:
  // the next sweep takes them too.
  ASSERT_EQ(ledger_->CancelDebit("a", expiry + 1).amount, 30);
  EXPECT_EQ(ledger_->ExpireLots(expiry + 1, 10), 1);
  EXPECT_EQ(ledger_->AccountBalance(0, system::PointAccount::kBreakage), 200);
  ExpectAgreed();
}

TEST_F(PointModelTest, AHoldConfirmsOnlyBeforeItsExpiry) {
  Lot("l", 1, 100, 90 * sim::kDay);
  const TccReply a = Try("a", 1, 10, 10, 0, sim::kMinute);
  const TccReply b = Try("b", 1, 10, 10, 0, sim::kMinute);
  EXPECT_EQ(ledger_->ConfirmDebit("a", sim::kMinute - 1), (TccReply{TccStatus::kOk, a.id, 10}));
  EXPECT_EQ(ledger_->ConfirmDebit("b", sim::kMinute), (TccReply{TccStatus::kExpired, b.id, 0}));
  EXPECT_EQ(ledger_->ConfirmDebit("b", sim::kMinute + 1), (TccReply{TccStatus::kExpired, b.id, 0}));
  EXPECT_EQ(ledger_->CancelDebit("b", sim::kMinute + 2), (TccReply{TccStatus::kOk, b.id, 10}));
  EXPECT_EQ(ledger_->Balance(1, sim::kMinute), 90);
  EXPECT_EQ(feed_.model.stats().holds_expired, 1);
  // The sweep releases due holds in expiry order, up to its limit.
  Try("c", 1, 5, 5, sim::kMinute, 2 * sim::kMinute);
  Try("d", 1, 5, 5, sim::kMinute, sim::kMinute);
  EXPECT_EQ(ledger_->ExpireHolds(3 * sim::kMinute, 1), 1);
  EXPECT_EQ(ledger_->ExpireHolds(3 * sim::kMinute, 5), 1);
  EXPECT_EQ(ledger_->ExpireHolds(3 * sim::kMinute, 5), 0);
  ExpectAgreed();
}

TEST_F(PointModelTest, ProvisionalGrantsAreNotSpendableUntilConfirmed) {
  ASSERT_EQ(ledger_->GrantProvisional("g", 1, 100, 90 * sim::kDay, 0).status, GrantStatus::kOk);
  EXPECT_EQ(Try("a", 1, 1, 100, 1).status, TccStatus::kDeclined);
  EXPECT_EQ(ledger_->ConfirmGrant("g", 2).status, GrantStatus::kOk);
  EXPECT_EQ(Try("b", 1, 1, 100, 3).amount, 100);
  // Revoked, a provisional grant stays revoked; a tombstone refuses the
  // provisional grant that comes after it.
  ASSERT_EQ(ledger_->GrantProvisional("r", 1, 50, 90 * sim::kDay, 4).status, GrantStatus::kOk);
  EXPECT_EQ(ledger_->RevokeGrant("r", 5).status, GrantStatus::kOk);
  EXPECT_EQ(ledger_->ConfirmGrant("r", 6).status, GrantStatus::kInvalid);
  EXPECT_EQ(ledger_->RevokeGrant("g", 7).status, GrantStatus::kInvalid);
  EXPECT_EQ(ledger_->RevokeGrant("t", 8).status, GrantStatus::kOk);
  EXPECT_EQ(ledger_->GrantProvisional("t", 1, 50, 90 * sim::kDay, 9).status, GrantStatus::kRevoked);
  EXPECT_EQ(ledger_->ConfirmGrant("none", 10).status, GrantStatus::kNoSuchGrant);
  EXPECT_EQ(ledger_->GrantProvisional("g", 1, 99, 90 * sim::kDay, 11).status,
            GrantStatus::kInvalid);
  EXPECT_EQ(feed_.model.stats().grants_provisional, 2);
  EXPECT_EQ(feed_.model.stats().grants_revoked, 1);
  ExpectAgreed();
}

TEST_F(PointModelTest, Seed002PaymentEventsGrantProvisionallyThenConfirmOrRevoke) {
  using system::PaymentStatus;
  const auto event = [](uint64_t id, PaymentStatus s, int64_t amount) {
    return system::PaymentEvent{id, system::PaymentFlow::kCharge, s, 1, amount, "o"};
  };
  const sim::Duration ttl = 30 * sim::kDay;
  // 1% of 1,999 is 19 points (rounded down): provisional, then confirmed.
  EXPECT_EQ(
      ledger_->ApplyPaymentEvent(event(7, PaymentStatus::kAuthorized, 1999), 100, ttl, 1).amount,
      19);
  EXPECT_EQ(ledger_->Balance(1, 2), 0);
  ledger_->ApplyPaymentEvent(event(7, PaymentStatus::kCaptured, 1999), 100, ttl, 3);
  EXPECT_EQ(ledger_->Balance(1, 4), 19);
  // A void before its authorisation: the late authorisation is revoked.
  ledger_->ApplyPaymentEvent(event(8, PaymentStatus::kVoided, 500), 100, ttl, 5);
  EXPECT_EQ(
      ledger_->ApplyPaymentEvent(event(8, PaymentStatus::kAuthorized, 500), 100, ttl, 6).status,
      GrantStatus::kRevoked);
  // A capture before its authorisation grants and confirms at once.
  ledger_->ApplyPaymentEvent(event(9, PaymentStatus::kCaptured, 300), 100, ttl, 7);
  EXPECT_EQ(ledger_->Balance(1, 8), 22);
  EXPECT_EQ(ledger_->ApplyPaymentEvent(event(9, PaymentStatus::kCaptured, 400), 100, ttl, 9).status,
            GrantStatus::kInvalid);
  EXPECT_EQ(
      ledger_->ApplyPaymentEvent(event(10, PaymentStatus::kAuthorized, 99), 100, ttl, 10).status,
      GrantStatus::kIgnored);
  ExpectAgreed();
}

TEST_F(PointModelTest, ACancelBeforeItsTryRefusesTheLateTry) {
  Lot("l", 1, 100, 90 * sim::kDay);
  EXPECT_EQ(ledger_->CancelDebit("k", 1), (TccReply{TccStatus::kOk, 0, 0}));
  EXPECT_EQ(Try("k", 1, 10, 10, 2).status, TccStatus::kCancelled);
  EXPECT_EQ(ledger_->ConfirmDebit("k", 3).status, TccStatus::kInvalid);
  EXPECT_EQ(ledger_->CancelDebit("k", 4), (TccReply{TccStatus::kOk, 0, 0}));
  EXPECT_EQ(ledger_->Balance(1, 5), 100);
  // A replayed try answers the same; other parameters are invalid.
  const TccReply t = Try("t", 1, 10, 20, 6);
  EXPECT_EQ(Try("t", 1, 10, 20, 7), t);
  EXPECT_EQ(Try("t", 1, 10, 21, 8).status, TccStatus::kInvalid);
  EXPECT_EQ(Try("x", 1, 10, 20, 9, 2 * kHoldTtlMax).status, TccStatus::kInvalid);
  ExpectAgreed();
}

TEST_F(PointModelTest, TheAuditorComparesTheDatabaseAtTheEnd) {
  sim::Simulator sim(1);
  int violations = 0;
  PointAuditor auditor(sim, PointRules{kHoldTtlMax},
                       [&](const system::Violation&) { ++violations; });
  sim::Database db;
  PointLedgerOptions o;
  o.hold_ttl_max = kHoldTtlMax;
  o.id_worker = 1;
  o.audit = true;
  PointLedger ledger(db, o, &auditor);
  ledger.Populate(2, 100, 10 * sim::kDay, 0);
  ledger.TryDebit(TccTry{"t", 1, 150, 150, sim::kHour}, 1);
  ledger.TryDebit(TccTry{"u", 1, 40, 40, sim::kHour}, 2);
  ledger.ExpireLots(10 * sim::kDay, 10);
  auditor.CheckFinal(db);
  EXPECT_EQ(violations, 0);
  EXPECT_EQ(auditor.statuses().front().evaluations, 5);  // four requests, the end
  // A remainder changed behind the ledger's back.
  db.ExecScript("UPDATE point_lots SET remaining = remaining + 1 WHERE remaining = 0");
  auditor.CheckFinal(db);
  ASSERT_TRUE(auditor.first_violation().has_value());
  EXPECT_NE(auditor.first_violation()->detail.find("the model says 0"), std::string::npos)
      << auditor.first_violation()->detail;
}

// --- a wrong ledger, simulated by changing the facts ------------------------

TEST_F(PointModelTest, CatchesPointsTakenFromTheWrongLot) {
  const uint64_t soon = Lot("soon", 1, 100, 10 * sim::kDay);
  const uint64_t late = Lot("late", 1, 100, 20 * sim::kDay);
  feed_.tamper = [&](GrantReply&, TccReply&, auto& lots, auto&) {
    for (auto& c : lots) {
      if (c.lot == soon) {
        c.lot = late;  // the later-expiring lot paid instead
      }
    }
  };
  Try("t", 1, 30, 30, 1);
  EXPECT_NE(feed_.first_diff.find(fmt::format("lot {} -30", soon)), std::string::npos)
      << feed_.first_diff;
  EXPECT_NE(feed_.first_diff.find(fmt::format("the ledger made 1: lot {} -30", late)),
            std::string::npos)
      << feed_.first_diff;
}

TEST_F(PointModelTest, CatchesALotCreatedWithoutItsExpiry) {
  feed_.tamper = [](GrantReply&, TccReply&, auto& lots, auto&) {
    for (auto& c : lots) {
      if (c.event == system::LotEvent::kCreated) {
        c.expires_at = INT64_MAX;  // the expiry lost
      }
    }
  };
  ledger_->GrantProvisional("g", 1, 100, 10 * sim::kDay, 0);
  EXPECT_NE(feed_.first_diff.find("expires 864000.000000s"), std::string::npos) << feed_.first_diff;
  EXPECT_NE(feed_.first_diff.find("expires never"), std::string::npos) << feed_.first_diff;
}

TEST_F(PointModelTest, CatchesATryAcceptedOutsideItsRange) {
  Lot("l", 1, 50, 10 * sim::kDay);
  // A ledger that ignores MIN holds the 50 it has where 80 were needed.
  feed_.tamper = [](GrantReply&, TccReply& r, auto&, auto&) {
    r = TccReply{TccStatus::kOk, 1, 50};
  };
  Try("t", 1, 80, 100, 1);
  EXPECT_NE(feed_.first_diff.find("expected answer declined (hold 0, amount 0)"), std::string::npos)
      << feed_.first_diff;
  EXPECT_NE(feed_.first_diff.find("the ledger answered ok (hold 1, amount 50)"), std::string::npos)
      << feed_.first_diff;
}

TEST_F(PointModelTest, CatchesAConfirmAtTheExpiryInstant) {
  Lot("l", 1, 100, 10 * sim::kDay);
  const TccReply t = Try("t", 1, 10, 10, 0, sim::kMinute);
  ASSERT_EQ(feed_.first_diff, "");
  // A ledger that confirms at the instant answers ok where the model says
  // expired: here, the real answer turned into that one.
  feed_.tamper = [&t](GrantReply&, TccReply& r, auto&, auto&) {
    r = TccReply{TccStatus::kOk, t.id, 10};
  };
  ledger_->ConfirmDebit("t", sim::kMinute);
  EXPECT_NE(feed_.first_diff.find(fmt::format("expected answer expired (hold {}, amount 0)", t.id)),
            std::string::npos)
      << feed_.first_diff;
  EXPECT_NE(feed_.first_diff.find("the ledger answered ok"), std::string::npos) << feed_.first_diff;
}

}  // namespace
}  // namespace paylab::models
