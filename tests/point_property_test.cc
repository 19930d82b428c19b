// Property tests for the point ledger (system/points/point_ledger.h): debit by range.
//
// RapidCheck generates a user's lots (amounts, expiries, confirmed or only
// provisional), the moment of the debit and a range [MIN, MAX], and then
// whole sequences of grants, payment events, tries, confirms, cancels, time
// passing (with the hold and lot expiry jobs run after it) and replays, with
// keys drawn from small sets so that they collide.
//
//  - The debited amount is never below MIN, never above MAX, never above the
//    spendable balance (confirmed lots not yet expired), and the try is
//    refused exactly when the spendable balance is below MIN; a refusal moves
//    nothing.
//  - A try replayed with the same key and parameters answers the same and
//    debits once.
//  - After any sequence, every movement balances, the point journal sums to
//    zero, every user's balance equals the remaining of its confirmed lots, no
//    lot was spent at or after its expiry, no hold is left and every ID is
//    odd (the PointChecker, fed every movement, then CheckFinal).
//
// CI fixes RC_PARAMS (seed) through CTest; a failure prints the shrunk input
// and the RC_PARAMS="reproduce=..." string that replays it.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "sim/simulator.h"
#include "sim/storage.h"
#include "sim/time.h"
#include "system/points/payment_event.h"
#include "checks/point_checker.h"
#include "system/points/point_ledger.h"
#include "system/common/tcc.h"

namespace paylab::system {

struct LotSpec {
  int64_t amount = 0;
  int expires_s = 0;  // after t = 0, when every lot is granted
  bool confirmed = true;
};

std::ostream& operator<<(std::ostream& os, const LotSpec& l) {
  return os << "Lot{amount=" << l.amount << " expires_s=" << l.expires_s
            << (l.confirmed ? " confirmed" : " provisional") << "}";
}

struct Cmd {
  enum Kind {
    kGrantProvisional,
    kGrantConfirmed,
    kConfirmGrant,
    kRevokeGrant,
    kPaymentEvent,
    kTry,
    kConfirm,
    kCancel,
    kAdvance,
    kReplay,
    kKinds,
  };
  int kind = 0;
  int user = 0;
  int key = 0;
  int64_t a = 0;  // amount, MIN, or payment status
  int64_t b = 0;  // MAX - MIN, or the grant's lifetime in seconds
  int s = 0;      // seconds: ttl or time to advance
};

std::ostream& operator<<(std::ostream& os, const Cmd& c) {
  static const char* names[] = {
      "GrantProvisional", "GrantConfirmed", "ConfirmGrant", "RevokeGrant", "PaymentEvent", "Try",
      "Confirm",          "Cancel",         "Advance",      "Replay"};
  return os << names[c.kind] << "{user=" << c.user << " key=" << c.key << " a=" << c.a
            << " b=" << c.b << " s=" << c.s << "}";
}

namespace {

constexpr sim::Duration kTtlMax = 3600 * sim::kSecond;

rc::Gen<LotSpec> GenLot() {
  return rc::gen::build<LotSpec>(
      rc::gen::set(&LotSpec::amount, rc::gen::inRange<int64_t>(1, 500)),
      rc::gen::set(&LotSpec::expires_s, rc::gen::inRange(1, 200)),
      rc::gen::set(&LotSpec::confirmed, rc::gen::weightedElement<bool>({{4, true}, {1, false}})));
}

rc::Gen<Cmd> GenCmd() {
  return rc::gen::build<Cmd>(rc::gen::set(&Cmd::kind, rc::gen::inRange(0, int{Cmd::kKinds})),
                             rc::gen::set(&Cmd::user, rc::gen::inRange(0, 5)),
                             rc::gen::set(&Cmd::key, rc::gen::inRange(0, 8)),
                             rc::gen::set(&Cmd::a, rc::gen::inRange<int64_t>(-2, 600)),
                             rc::gen::set(&Cmd::b, rc::gen::inRange<int64_t>(-2, 600)),
                             rc::gen::set(&Cmd::s, rc::gen::inRange(0, 150)));
}

struct Harness {
  explicit Harness(int64_t users)
      : sim(1),
        checker(sim, nullptr),
        ledger(db, PointLedgerOptions{.hold_ttl_max = kTtlMax}, &checker) {
    ledger.Populate(users, 0, 0, 0);
  }

  int64_t JournalRows() { return db.QueryInt("SELECT COUNT(*) FROM point_journal"); }
  int64_t Holds() { return db.QueryInt("SELECT COUNT(*) FROM point_holds"); }

  // Lets every hold expire, sweeps, and runs the checker's final pass.
  void Finish() {
    now += kTtlMax + sim::kSecond;
    ledger.ExpireHolds(now, 1'000'000);
    ledger.ExpireLots(now, 1'000'000);
    checker.CheckFinal(db, now);
    const auto& v = checker.first_violation();
    if (v) {
      RC_FAIL(v->check + ": " + v->detail);
    }
    RC_ASSERT(db.QueryInt("SELECT COALESCE(SUM(delta), 0) FROM point_journal") == 0);
    RC_ASSERT(checker.movements_seen() == db.QueryInt("SELECT COUNT(*) FROM point_movements"));
  }

  sim::Simulator sim;
  sim::Database db;
  PointChecker checker;
  PointLedger ledger;
  sim::Time now = 0;
};

// What the user can spend at `now` according to the generated lots.
int64_t Spendable(const std::vector<LotSpec>& lots, sim::Time now) {
  int64_t sum = 0;
  for (const LotSpec& l : lots) {
    if (l.confirmed && l.expires_s * sim::kSecond > now) {
      sum += l.amount;
    }
  }
  return sum;
}

// Checks one try against the range properties, given the spendable balance
// just before it.
void CheckTry(const TccTry& t, const TccReply& r, int64_t spendable_before) {
  if (spendable_before < t.amount_min) {
    RC_ASSERT(r.status == TccStatus::kDeclined);
    RC_ASSERT(r.amount == 0);
  } else {
    RC_ASSERT(r.status == TccStatus::kOk);
    RC_ASSERT(r.amount >= t.amount_min);
    RC_ASSERT(r.amount <= t.amount_max);
    RC_ASSERT(r.amount <= spendable_before);
    RC_ASSERT(r.amount == std::min(t.amount_max, spendable_before));
    RC_ASSERT(r.id % 2 == 1);
  }
}

}  // namespace

RC_GTEST_PROP(PointProperty, DebitByRangeStaysWithinTheRangeAndTheBalance, ()) {
  const auto lots = *rc::gen::container<std::vector<LotSpec>>(GenLot());
  const sim::Time now = *rc::gen::inRange<int64_t>(0, 210) * sim::kSecond;
  const int64_t min = *rc::gen::inRange<int64_t>(0, 1500);
  const int64_t max = min + *rc::gen::inRange<int64_t>(0, 1500);
  const bool swept = *rc::gen::arbitrary<bool>();
  RC_TAG(Spendable(lots, now) < min ? "declined" : "debited");

  Harness h(2);
  for (size_t i = 0; i < lots.size(); ++i) {
    const std::string key = "lot/" + std::to_string(i);
    const sim::Time expires_at = lots[i].expires_s * sim::kSecond;
    const GrantReply g = lots[i].confirmed
                             ? h.ledger.GrantConfirmed(key, 1, lots[i].amount, expires_at, 0)
                             : h.ledger.GrantProvisional(key, 1, lots[i].amount, expires_at, 0);
    RC_ASSERT(g.status == GrantStatus::kOk);
  }
  if (swept) {
    // Sweeping expired lots first changes nothing about what can be spent.
    h.ledger.ExpireLots(now, 1'000'000);
  }
  const int64_t spendable = Spendable(lots, now);
  RC_ASSERT(h.ledger.Balance(1, now) == spendable);

  const int64_t rows_before = h.JournalRows();
  const TccTry t{"pay/points", 1, min, max, 60 * sim::kSecond};
  const TccReply r = h.ledger.TryDebit(t, now);
  CheckTry(t, r, spendable);
  RC_ASSERT(h.ledger.Balance(1, now) == spendable - r.amount);
  if (r.status == TccStatus::kDeclined) {
    RC_ASSERT(h.JournalRows() == rows_before);
    RC_ASSERT(h.Holds() == 0);
  }
  // A retry answers the same and debits once.
  const int64_t rows_after = h.JournalRows();
  RC_ASSERT(h.ledger.TryDebit(t, now + sim::kSecond) == r);
  RC_ASSERT(h.ledger.TryDebit(t, now) == r);
  RC_ASSERT(h.JournalRows() == rows_after);
  RC_ASSERT(h.ledger.Balance(1, now) == spendable - r.amount);
  RC_ASSERT(h.Holds() == (r.status == TccStatus::kOk ? 1 : 0));

  // Confirm or cancel, then the invariants of the whole database.
  if (*rc::gen::arbitrary<bool>()) {
    h.ledger.ConfirmDebit(t.key, now);
  } else {
    h.ledger.CancelDebit(t.key, now);
    RC_ASSERT(h.ledger.Balance(1, now) == spendable);
  }
  h.now = now;
  h.Finish();
}

namespace {

// Applies generated commands to a ledger of `users` users, checking each
// try and replay as it goes; remembers every first try (a replay sends one
// again).
class SequenceRun {
 public:
  explicit SequenceRun(int64_t users) : users_(users), h_(users) {}

  void Apply(const Cmd& c) {
    const UserId user = c.user % (users_ + 1);  // 0 is no user: refused
    const std::string grant_key = "g" + std::to_string(c.key);
    const std::string tcc_key = "p" + std::to_string(c.key) + "/points";
    switch (c.kind) {
      case Cmd::kGrantProvisional:
        h_.ledger.GrantProvisional(grant_key, user, c.a, h_.now + c.b * sim::kSecond, h_.now);
        break;
      case Cmd::kGrantConfirmed:
        h_.ledger.GrantConfirmed(grant_key, user, c.a, h_.now + c.b * sim::kSecond, h_.now);
        break;
      case Cmd::kConfirmGrant:
        h_.ledger.ConfirmGrant(grant_key, h_.now);
        break;
      case Cmd::kRevokeGrant:
        h_.ledger.RevokeGrant(grant_key, h_.now);
        break;
      case Cmd::kPaymentEvent:
        ApplyPaymentEvent(c, user);
        break;
      case Cmd::kTry:
        Try(c, user, tcc_key);
        break;
      case Cmd::kConfirm: {
        const TccReply r = h_.ledger.ConfirmDebit(tcc_key, h_.now);
        RC_ASSERT(r.status != TccStatus::kCancelled);
        RC_ASSERT(r.status != TccStatus::kDeclined);
        break;
      }
      case Cmd::kCancel: {
        const TccReply r = h_.ledger.CancelDebit(tcc_key, h_.now);
        RC_ASSERT(r.status == TccStatus::kOk || r.status == TccStatus::kInvalid);
        break;
      }
      case Cmd::kAdvance:
        h_.now += c.s * sim::kSecond;
        h_.ledger.ExpireHolds(h_.now, 1'000);
        h_.ledger.ExpireLots(h_.now, 1'000);
        break;
      case Cmd::kReplay:
        Replay(c);
        break;
    }
  }

  // Spendable never goes negative; every user's balance equals its lots.
  void CheckBalancesEqualLots() {
    for (UserId u = 1; u <= users_; ++u) {
      RC_ASSERT(h_.ledger.Balance(u, h_.now) >= 0);
      RC_ASSERT(h_.ledger.AccountBalance(u, PointAccount::kPoint) ==
                h_.db.QueryInt("SELECT COALESCE(SUM(remaining), 0) FROM point_lots WHERE state = 2 "
                               "AND user_id = " +
                               std::to_string(u)));
    }
  }

  // One try movement per key that held points; then the invariants of the
  // whole database.
  void Finish() {
    int64_t held = 0;
    for (const Sent& s : sent_) {
      held += s.first.status == TccStatus::kOk && s.first.amount > 0;
    }
    RC_ASSERT(h_.db.QueryInt("SELECT COUNT(*) FROM point_movements WHERE kind = 2") == held);
    RC_CLASSIFY(held > 0, "points held");
    RC_CLASSIFY(h_.db.QueryInt("SELECT COUNT(*) FROM point_movements WHERE kind = 3") > 0,
                "hold confirmed");
    RC_CLASSIFY(h_.db.QueryInt("SELECT COUNT(*) FROM point_movements WHERE kind IN (4, 5)") > 0,
                "hold released");
    h_.Finish();
  }

 private:
  // A try as first sent, and its answer.
  struct Sent {
    TccTry t;
    TccReply first;
  };

  void ApplyPaymentEvent(const Cmd& c, UserId user) {
    const auto status = static_cast<PaymentStatus>((c.a % 5 + 5) % 5);
    const PaymentEvent e{
        static_cast<uint64_t>(c.key), PaymentFlow::kCharge, status, user, c.b * 100, "order"};
    h_.ledger.ApplyPaymentEvent(e, 150, (c.s + 1) * sim::kSecond, h_.now);
  }

  // An invalid try is refused; a first try keeps the range properties; a
  // try sent again answers as the first did when its parameters are the
  // same, and is refused when they are not.
  void Try(const Cmd& c, UserId user, const std::string& tcc_key) {
    const TccTry t{tcc_key, user, c.a, c.a + c.b, (c.s + 1) * sim::kSecond};
    const bool valid = t.amount_min >= 0 && t.amount_max >= t.amount_min && user > 0;
    const int64_t spendable = valid ? h_.ledger.Balance(user, h_.now) : 0;
    const TccReply r = h_.ledger.TryDebit(t, h_.now);
    auto it = first_by_key_.find(tcc_key);
    if (!valid) {
      RC_ASSERT(r.status == TccStatus::kInvalid);
    } else if (it == first_by_key_.end()) {
      if (r.status != TccStatus::kCancelled) {
        CheckTry(t, r, spendable);
        first_by_key_.emplace(tcc_key, sent_.size());
        sent_.push_back(Sent{t, r});
      }
    } else {
      const Sent& first = sent_[it->second];
      const bool same = first.t.user == t.user && first.t.amount_min == t.amount_min &&
                        first.t.amount_max == t.amount_max && first.t.ttl == t.ttl;
      RC_ASSERT(r == (same ? first.first : TccReply{TccStatus::kInvalid, 0, 0}));
    }
  }

  // A first try sent again answers the same and moves nothing.
  void Replay(const Cmd& c) {
    if (sent_.empty()) {
      return;
    }
    const Sent& s = sent_[static_cast<size_t>(c.key) % sent_.size()];
    const int64_t rows = h_.JournalRows();
    RC_ASSERT(h_.ledger.TryDebit(s.t, h_.now) == s.first);
    RC_ASSERT(h_.JournalRows() == rows);
  }

  const int64_t users_;
  Harness h_;
  std::vector<Sent> sent_;
  std::map<std::string, size_t> first_by_key_;  // tcc key -> its first try in sent_
};

}  // namespace

RC_GTEST_PROP(PointProperty, AnySequenceKeepsTheJournalBalancedAndBalancesEqualLots, ()) {
  const int64_t users = *rc::gen::inRange<int64_t>(1, 4);
  const auto cmds = *rc::gen::container<std::vector<Cmd>>(GenCmd());
  SequenceRun run(users);
  for (const Cmd& c : cmds) {
    run.Apply(c);
    run.CheckBalancesEqualLots();
  }
  run.Finish();
}

}  // namespace paylab::system
