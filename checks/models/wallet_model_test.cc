// Tests of the wallet's reference model (checks/models/wallet_model.h), from the
// seeds' own examples, against the real ledger (system/wallet/ledger.h) on an
// in-memory database.
//
// Seed 000: a wallet holds several accounts; a debit drains CASHBACK first,
// then the other accounts in their priority order (C, B, A in its figure);
// a credit fills them in the reverse order. Seed 004: a balance is made of
// balance items, one per credit, each with its own expiry, consumed
// soonest-expiring first, every consumption logged. Each test drives the
// ledger through such an example, asserts the figures the seeds give, and
// checks that the model, fed every applied request, agrees at every step.
// Then the model must catch what a wrong ledger would report: value taken
// from the wrong account or the wrong item, a new item with the wrong
// expiry, a hold committed at its expiry instant, a cancelled key that
// still holds; each printed with both sides.
#include "checks/models/wallet_model.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "sim/storage.h"
#include "sim/time.h"
#include "system/wallet/account_types.h"
#include "system/wallet/ledger.h"

namespace paylab::models {
namespace {

using system::AccountType;
using system::AccountTypes;
using system::InitialBalance;
using system::Ledger;
using system::LedgerOptions;
using system::WalletApplied;
using system::WalletReply;

// Seed 000's figure: CASHBACK on top, then accounts C, B and A.
std::vector<AccountType> Seed000Types() {
  return {
      AccountType{.name = "CASHBACK", .debit_priority = 0, .expires_after = 90 * sim::kDay},
      AccountType{.name = "C", .debit_priority = 1},
      AccountType{.name = "B", .debit_priority = 2, .balance_cap = 1000},
      AccountType{.name = "A", .debit_priority = 3, .auto_create = false, .balance_cap = 1000},
  };
}

// Feeds every applied request to a model; `tamper` may change a copy of a
// fact before the model sees it (a wrong ledger, simulated).
class ModelFeed : public system::LedgerObserver {
 public:
  explicit ModelFeed(WalletRules rules) : model(std::move(rules)) {}
  void OnMovement(const system::MovementRecord&) override {}
  void OnHoldCreated(uint64_t, sim::Time) override {}
  void OnApplied(const WalletApplied& a) override {
    if (!tamper) {
      Record(model.Check(a));
      return;
    }
    // A deep copy the test may change.
    std::vector<std::vector<system::JournalEntry>> entries;
    std::vector<system::MovementRecord> movements(a.movements.begin(), a.movements.end());
    for (auto& m : movements) {
      entries.emplace_back(m.entries.begin(), m.entries.end());
    }
    for (size_t i = 0; i < movements.size(); ++i) {
      movements[i].entries = entries[i];
    }
    std::vector<system::ItemChange> items(a.items.begin(), a.items.end());
    std::vector<system::HoldCreated> holds(a.holds.begin(), a.holds.end());
    WalletReply reply = a.reply;
    tamper(reply, entries, items, holds);
    Record(model.Check(
        WalletApplied{a.request, reply, a.moved, a.refused_user, movements, items, holds}));
  }
  void Record(std::string diff) {
    ++checked;
    if (!diff.empty() && first_diff.empty()) {
      first_diff = std::move(diff);
    }
  }

  WalletModel model;
  std::function<void(WalletReply&, std::vector<std::vector<system::JournalEntry>>&,
                     std::vector<system::ItemChange>&, std::vector<system::HoldCreated>&)>
      tamper;
  int64_t checked = 0;
  std::string first_diff;
};

class WalletModelTest : public testing::Test {
 protected:
  WalletModelTest() : types_(Seed000Types()), feed_(RulesOf(types_)) {
    LedgerOptions o;
    o.hold_ttl_max = sim::kDay;
    o.audit = true;
    ledger_ = std::make_unique<Ledger>(db_, types_, o, &feed_);
  }

  static WalletRules RulesOf(const AccountTypes& types) {
    WalletRules r;
    r.hold_ttl_max = sim::kDay;
    for (const AccountType& t : types.all()) {
      if (!t.system) {
        r.types.push_back(WalletTypeRule{t.id, t.name, t.debit_priority, t.allow_negative,
                                         t.expires_after, t.auto_create, t.balance_cap});
      }
    }
    return r;
  }

  system::TypeId T(std::string_view name) const { return *types_.Find(name); }

  // Users 1 and 2 with CASHBACK 100, C 200, B 300, A 400 each.
  void PopulateSeed000() {
    const InitialBalance b[] = {{T("CASHBACK"), 100}, {T("C"), 200}, {T("B"), 300}, {T("A"), 400}};
    ledger_->Populate(2, b, 0);
  }

  void ExpectAgreed() {
    EXPECT_EQ(feed_.first_diff, "");
    EXPECT_GT(feed_.checked, 0);
  }

  sim::Database db_;
  AccountTypes types_;
  ModelFeed feed_;
  std::unique_ptr<Ledger> ledger_;
};

TEST_F(WalletModelTest, Seed000DebitDrainsCashbackThenCThenBThenA) {
  PopulateSeed000();
  // 550 = CASHBACK 100 + C 200 + B 250: A untouched.
  EXPECT_EQ(ledger_->Transfer("t1", 1, 2, 550, sim::kSecond).status, system::WalletStatus::kOk);
  EXPECT_EQ(ledger_->Balance(1, T("CASHBACK")), 0);
  EXPECT_EQ(ledger_->Balance(1, T("C")), 0);
  EXPECT_EQ(ledger_->Balance(1, T("B")), 50);
  EXPECT_EQ(ledger_->Balance(1, T("A")), 400);
  // The credit fills in reverse order: A first (no cap).
  EXPECT_EQ(ledger_->Balance(2, T("A")), 950);
  EXPECT_EQ(feed_.model.stats().multi_account_debits, 1);
  ExpectAgreed();
}

TEST_F(WalletModelTest, Seed000CreditFillsInReverseOrderUpToTheCaps) {
  const InitialBalance b[] = {{T("A"), 900}, {T("B"), 900}};
  ledger_->Populate(2, b, 0);
  // A credit fills A up to its cap of 1000, then B up to its cap of 1000,
  // then C (no cap); CASHBACK, credited last, gets nothing.
  EXPECT_EQ(ledger_->Transfer("t1", 1, 2, 500, sim::kSecond).status, system::WalletStatus::kOk);
  EXPECT_EQ(ledger_->Balance(2, T("A")), 1000);
  EXPECT_EQ(ledger_->Balance(2, T("B")), 1000);
  EXPECT_EQ(ledger_->Balance(2, T("C")), 300);
  EXPECT_EQ(ledger_->Balance(2, T("CASHBACK")), 0);
  EXPECT_EQ(ledger_->Deposit("d1", 2, T("B"), 1, sim::kSecond).status,
            system::WalletStatus::kCapExceeded);
  ExpectAgreed();
}

TEST_F(WalletModelTest, Seed004ItemsAreConsumedSoonestExpiringFirstAndGivenBackExactly) {
  PopulateSeed000();
  // A second CASHBACK credit ten days later expires ten days after the first.
  ASSERT_EQ(ledger_->Deposit("d1", 1, T("CASHBACK"), 70, 10 * sim::kDay).status,
            system::WalletStatus::kOk);
  // 150 of CASHBACK: the opening item's 100, then 50 of the later one.
  const WalletReply hold = ledger_->Prepare("p1", 1, 2, 150, sim::kHour, 11 * sim::kDay);
  ASSERT_EQ(hold.status, system::WalletStatus::kOk);
  EXPECT_EQ(feed_.model.stats().multi_item_debits, 1);
  EXPECT_EQ(ledger_->Balance(1, T("CASHBACK")), 20);
  // Rolled back, each item gets back exactly what it gave: the early one
  // expires at 90 days again, taking its 100 with it.
  ASSERT_EQ(ledger_->Rollback(hold.id, 11 * sim::kDay + sim::kSecond).status,
            system::WalletStatus::kOk);
  EXPECT_EQ(ledger_->ExpireBalanceItems(90 * sim::kDay, 100), 2);  // users 1 and 2
  EXPECT_EQ(ledger_->Balance(1, T("CASHBACK")), 70);
  ExpectAgreed();
}

TEST_F(WalletModelTest, AnItemIsSpendableUntilTheInstantBeforeItsExpiry) {
  PopulateSeed000();
  const sim::Time expiry = 90 * sim::kDay;
  // One tick before: the CASHBACK item still pays.
  ASSERT_EQ(ledger_->Transfer("t1", 1, 2, 10, expiry - 1).status, system::WalletStatus::kOk);
  EXPECT_EQ(ledger_->Balance(1, T("CASHBACK")), 90);
  // At the instant: user 2's item expires first, then pays nothing.
  ASSERT_EQ(ledger_->Transfer("t2", 2, 1, 10, expiry).status, system::WalletStatus::kOk);
  EXPECT_EQ(ledger_->Balance(2, T("CASHBACK")), 0);
  EXPECT_EQ(ledger_->Balance(2, T("C")), 190);
  ExpectAgreed();
}

TEST_F(WalletModelTest, AHoldCommitsOnlyBeforeItsExpiry) {
  PopulateSeed000();
  const WalletReply a = ledger_->Prepare("a", 1, 2, 10, sim::kMinute, 0);
  const WalletReply b = ledger_->Prepare("b", 1, 2, 10, sim::kMinute, 0);
  EXPECT_EQ(ledger_->Commit(a.id, sim::kMinute - 1).status, system::WalletStatus::kOk);
  EXPECT_EQ(ledger_->Commit(b.id, sim::kMinute).status, system::WalletStatus::kHoldExpired);
  EXPECT_EQ(ledger_->Commit(b.id, sim::kMinute + 1).status, system::WalletStatus::kHoldExpired);
  ExpectAgreed();
}

TEST_F(WalletModelTest, MisuseIsPredictedRefusalsAndReplaysIncluded) {
  PopulateSeed000();
  // A refusal is the key's answer for good, even once funds arrive.
  EXPECT_EQ(ledger_->Transfer("t1", 1, 2, 5000, 1).status,
            system::WalletStatus::kInsufficientFunds);
  ASSERT_EQ(ledger_->Deposit("d1", 1, T("C"), 9000, 2).status, system::WalletStatus::kOk);
  EXPECT_EQ(ledger_->Transfer("t1", 1, 2, 5000, 3).status,
            system::WalletStatus::kInsufficientFunds);
  EXPECT_EQ(ledger_->Transfer("t1", 1, 2, 4999, 4).status,
            system::WalletStatus::kIdempotencyMismatch);
  // A rollback before its prepare cancels it.
  EXPECT_EQ(ledger_->RollbackKey("k", 5).status, system::WalletStatus::kOk);
  EXPECT_EQ(ledger_->Prepare("k", 1, 2, 10, sim::kMinute, 6).status,
            system::WalletStatus::kCancelled);
  EXPECT_EQ(ledger_->CommitKey("k", 7).status, system::WalletStatus::kHoldNotActive);
  EXPECT_EQ(ledger_->CommitKey("never", 8).status, system::WalletStatus::kNoSuchHold);
  EXPECT_EQ(ledger_->RollbackKey("d1", 9).status, system::WalletStatus::kIdempotencyMismatch);
  EXPECT_EQ(ledger_->Prepare("x", 1, 1, 10, sim::kMinute, 10).status,
            system::WalletStatus::kInvalidArgument);
  EXPECT_EQ(ledger_->Prepare("y", 1, 2, 10, 2 * sim::kDay, 11).status,
            system::WalletStatus::kInvalidArgument);
  ExpectAgreed();
}

// --- a wrong ledger, simulated by changing the facts ------------------------

TEST_F(WalletModelTest, CatchesValueTakenFromTheWrongAccount) {
  PopulateSeed000();
  feed_.tamper = [this](WalletReply&, auto& entries, auto&, auto&) {
    for (auto& m : entries) {
      for (auto& e : m) {
        if (e.user == 1 && e.type == T("CASHBACK")) {
          e.type = T("A");  // A paid what CASHBACK should have
        }
      }
    }
  };
  ledger_->Transfer("t1", 1, 2, 50, 1);
  EXPECT_NE(feed_.first_diff.find("expected transfer key 't1': (1,1,-50) (2,4,+50)"),
            std::string::npos)
      << feed_.first_diff;
  EXPECT_NE(feed_.first_diff.find("the ledger wrote transfer"), std::string::npos)
      << feed_.first_diff;
}

TEST_F(WalletModelTest, CatchesTheWrongItemConsumed) {
  PopulateSeed000();
  ASSERT_EQ(ledger_->Deposit("d1", 1, T("CASHBACK"), 70, sim::kDay).status,
            system::WalletStatus::kOk);
  int64_t late_item = 0;
  feed_.tamper = [&late_item](WalletReply&, auto&, auto& items, auto&) {
    for (auto& i : items) {
      i.item = late_item;  // the later-expiring item paid instead
    }
  };
  // The later item's ID: the highest one.
  sim::Statement q(db_, "SELECT MAX(id) FROM balance_items");
  ASSERT_TRUE(q.Step());
  late_item = q.Int(0);
  ledger_->Transfer("t1", 1, 2, 50, 2 * sim::kDay);
  EXPECT_NE(feed_.first_diff.find("expected balance items"), std::string::npos) << feed_.first_diff;
}

TEST_F(WalletModelTest, CatchesANewItemWithoutItsExpiry) {
  PopulateSeed000();
  feed_.tamper = [](WalletReply&, auto&, auto& items, auto&) {
    for (auto& i : items) {
      if (i.created) {
        i.expires_at = INT64_MAX;  // the expiry lost
      }
    }
  };
  ledger_->Deposit("d1", 1, T("CASHBACK"), 70, 1);
  EXPECT_NE(feed_.first_diff.find("expires 7776000.000000s"), std::string::npos)
      << feed_.first_diff;
  EXPECT_NE(feed_.first_diff.find("expires never"), std::string::npos) << feed_.first_diff;
}

TEST_F(WalletModelTest, CatchesACommitAtTheExpiryInstant) {
  PopulateSeed000();
  const WalletReply h = ledger_->Prepare("p", 1, 2, 10, sim::kMinute, 0);
  ASSERT_EQ(feed_.first_diff, "");
  // A ledger that commits at the instant answers ok where the model says
  // hold_expired: here, the real answer turned into that one.
  feed_.tamper = [&h](WalletReply& r, auto&, auto&, auto&) {
    r = WalletReply{system::WalletStatus::kOk, h.id, 10, ""};
  };
  ledger_->Commit(h.id, sim::kMinute);
  EXPECT_NE(feed_.first_diff.find("expected answer hold_expired"), std::string::npos)
      << feed_.first_diff;
  EXPECT_NE(feed_.first_diff.find("the ledger answered ok"), std::string::npos) << feed_.first_diff;
}

}  // namespace
}  // namespace paylab::models
