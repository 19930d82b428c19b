// Tests of the external partner (system/payments/partner.h), driven over the simulated network from a
// caller node, with a constant 1 ms latency each way and no network faults.
//
// Exercises the whole Try-Confirm-Cancel contract of system/common/tcc.h: exact-amount Tries (a range
// is refused), declines remembered per key, idempotent Confirm and Cancel, the empty rollback's
// tombstone refusing the late Try, expiry by the scan loop and by a late Confirm (kExpired every
// time; a Cancel after it releases nothing). Then what makes the partner hard to work with: the
// service time drawn per request, unavailability at the configured rate and inside outage
// windows (an unavailable request must do nothing at all), and a crash and restart that must
// keep holds, tombstones and balances. The PartnerChecker must pass a clean run and catch a hold
// left held, an unbalanced journal and a balance that disagrees with its journal.
#include "checks/partner_checker.h"
#include "system/payments/partner.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sim/context.h"
#include "sim/network.h"
#include "sim/node.h"
#include "sim/simulator.h"
#include "sim/storage.h"
#include "sim/time.h"
#include "system/common/check_board.h"
#include "system/common/tcc.h"

namespace paylab::system {

// Found by argument-dependent lookup; internal linkage so no other test binary source clashes.
static void PrintTo(const TccReply& r, std::ostream* os) {
  *os << "{" << TccStatusName(r.status) << ", id " << r.id << ", amount " << r.amount << "}";
}

namespace {

using sim::kHour;
using sim::kMillisecond;
using sim::kSecond;

constexpr sim::NodeId kPartnerNode = 1;
constexpr int64_t kUsers = 3;
constexpr int64_t kInitial = 1000;

using Op = std::function<asio::awaitable<TccReply>(Partner&)>;

Op Try(std::string key, int64_t user, int64_t amount, sim::Duration ttl = 60 * kSecond) {
  const TccTry t{std::move(key), user, amount, amount, ttl};
  return [t](Partner& p) { return p.TryHold(t); };
}
Op TryRange(std::string key, int64_t user, int64_t lo, int64_t hi) {
  const TccTry t{std::move(key), user, lo, hi, 60 * kSecond};
  return [t](Partner& p) { return p.TryHold(t); };
}
Op Confirm(std::string key) {
  return [key](Partner& p) { return p.ConfirmHold(key); };
}
Op Cancel(std::string key) {
  return [key](Partner& p) { return p.CancelHold(key); };
}

// Requests sent one after the other, each no earlier than its not_before; the answers and how
// long each took, caller to caller.
struct Script {
  struct Request {
    Op op;
    sim::Time not_before = 0;
  };
  std::vector<Request> requests;
  std::vector<TccReply> replies;
  std::vector<sim::Duration> elapsed;
  bool done = false;

  Script& Add(Op op, sim::Time not_before = 0) {
    requests.push_back(Request{std::move(op), not_before});
    return *this;
  }
};

// A free coroutine with reference parameters only: nothing it owns by value lives in its frame
// across a suspension (GCC 12 mishandles coroutine parameters that own memory).
asio::awaitable<void> RunScript(sim::NodeContext& ctx, Script& s) {
  for (const Script::Request& r : s.requests) {
    if (ctx.Now() < r.not_before) {
      co_await ctx.Sleep(r.not_before - ctx.Now());
    }
    const sim::Time start = ctx.Now();
    auto call = ctx.Call<Partner>(kPartnerNode, "partner.call", kHour, r.op);
    const sim::RpcResult<TccReply> got = co_await std::move(call);
    EXPECT_TRUE(got.ok());
    s.replies.push_back(got.value);
    s.elapsed.push_back(ctx.Now() - start);
  }
  s.done = true;
}

class CallerService : public sim::Service {
 public:
  explicit CallerService(sim::NodeContext& ctx) : ctx(ctx) {}
  asio::awaitable<void> Boot() override { co_return; }
  sim::NodeContext& ctx;
};

// A fast, reliable partner unless a test says otherwise.
PartnerConfig BaseConfig() {
  PartnerConfig c;
  c.users = kUsers;
  c.initial_balance = kInitial;
  c.hold_ttl_max = kHour;
  c.service_time_min = 0;
  c.service_time_max = 0;
  return c;
}

struct World {
  explicit World(PartnerConfig c, uint64_t seed = 5)
      : sim(seed),
        net(sim, sim::LatencyModel{sim::LatencyDistribution::kConstant, 0, 0, kMillisecond, 0}),
        config(std::move(c)) {
    net.AddNode(&caller);
    net.AddNode(&partner);
    caller.Start();
    partner.Start();
  }
  ~World() {
    caller.Shutdown();
    partner.Shutdown();
  }

  // Runs the script from now until it is done or `limit` has passed.
  void Run(Script& s, sim::Duration limit = kHour) {
    caller.Spawn(RunScript(dynamic_cast<CallerService*>(caller.service())->ctx, s));
    const sim::Time end = sim.Now() + limit;
    while (!s.done && sim.Now() < end) {
      sim.Run(std::min(end, sim.Now() + kSecond));
    }
    ASSERT_TRUE(s.done);
  }

  sim::Database& db() { return partner.db(); }
  int64_t Int(const std::string& sql) { return db().QueryInt(sql); }
  int64_t Points(int64_t user) {
    return Int("SELECT balance FROM accounts WHERE account = 0 AND user_id = " +
               std::to_string(user));
  }
  int64_t System(PartnerAccount a) {
    return Int("SELECT balance FROM accounts WHERE user_id = 0 AND account = " +
               std::to_string(static_cast<int>(a)));
  }
  int64_t HoldsIn(PartnerHoldState s) {
    return Int("SELECT COUNT(*) FROM holds WHERE state = " + std::to_string(static_cast<int>(s)));
  }
  int64_t MovementsOf(PartnerMovementKind k) {
    return Int("SELECT COUNT(*) FROM movements WHERE kind = " +
               std::to_string(static_cast<int>(k)));
  }
  const PartnerCounters& counters() { return counters_; }

  // Runs the checker on the partner's database; the first violation's check, or "".
  std::string Check() {
    PartnerChecker checker(sim, nullptr);
    checker.CheckFinal(db());
    for (const CheckStatus& s : checker.statuses()) {
      EXPECT_EQ(s.evaluations, 1) << s.name;
    }
    return checker.first_violation() ? checker.first_violation()->check : "";
  }

  sim::Simulator sim;
  sim::Network net;
  PartnerConfig config;
  PartnerCounters counters_;
  sim::Node caller{sim, net, 0, "caller",
                   [](sim::NodeContext& ctx) { return std::make_unique<CallerService>(ctx); }};
  sim::Node partner{sim, net, kPartnerNode, "partner", [this](sim::NodeContext& ctx) {
                      return std::make_unique<Partner>(ctx, config, &counters_);
                    }};
};

TccReply Just(TccStatus s) { return TccReply{s, 0, 0}; }

// --- The contract -------------------------------------------------------------

TEST(PartnerTest, PopulatesUsersOnceFromIssue) {
  World w(BaseConfig());
  w.sim.Run(kSecond);
  for (int64_t u = 1; u <= kUsers; ++u) {
    EXPECT_EQ(w.Points(u), kInitial) << u;
  }
  EXPECT_EQ(w.System(PartnerAccount::kIssue), -kUsers * kInitial);
  EXPECT_EQ(w.System(PartnerAccount::kHolds), 0);
  EXPECT_EQ(w.System(PartnerAccount::kClearing), 0);
  EXPECT_EQ(w.MovementsOf(PartnerMovementKind::kIssue), kUsers);
  EXPECT_EQ(w.Check(), "");
}

TEST(PartnerTest, TryThenConfirmMovesPointsToClearingAndRepeatsAnswer) {
  World w(BaseConfig());
  Script s;
  s.Add(Try("pay1/partner", 1, 300))
      .Add(Try("pay1/partner", 1, 300))
      .Add(Try("pay1/partner", 1, 200))
      .Add(Try("pay1/partner", 2, 300))
      .Add(Confirm("pay1/partner"))
      .Add(Confirm("pay1/partner"))
      .Add(Cancel("pay1/partner"))
      .Add(Try("pay1/partner", 1, 300));
  w.Run(s);
  const TccReply tried = s.replies[0];
  EXPECT_EQ(tried.status, TccStatus::kOk);
  EXPECT_NE(tried.id, 0u);
  EXPECT_EQ(tried.amount, 300);
  EXPECT_EQ(s.replies[1], tried);
  EXPECT_EQ(s.replies[2], Just(TccStatus::kInvalid));  // same key, other amount
  EXPECT_EQ(s.replies[3], Just(TccStatus::kInvalid));  // same key, other user
  EXPECT_EQ(s.replies[4], tried);
  EXPECT_EQ(s.replies[5], tried);
  EXPECT_EQ(s.replies[6], Just(TccStatus::kInvalid));  // cancel of a confirmed hold
  EXPECT_EQ(s.replies[7], tried);                      // the Try still answers as the first time
  EXPECT_EQ(w.Points(1), kInitial - 300);
  EXPECT_EQ(w.System(PartnerAccount::kClearing), 300);
  EXPECT_EQ(PartnerClearingBalance(w.db()), 300);
  EXPECT_EQ(w.System(PartnerAccount::kHolds), 0);
  EXPECT_EQ(w.MovementsOf(PartnerMovementKind::kTry), 1);
  EXPECT_EQ(w.MovementsOf(PartnerMovementKind::kConfirm), 1);
  EXPECT_EQ(w.counters().confirms, 1);
  EXPECT_EQ(w.Check(), "");
}

TEST(PartnerTest, RangesBadArgumentsAndUnknownUsersAreInvalidAndClaimNoKey) {
  PartnerConfig c = BaseConfig();
  c.hold_ttl_max = kHour;
  World w(c);
  Script s;
  s.Add(TryRange("k", 1, 100, 200))
      .Add(Try("k", 1, 0))
      .Add(Try("k", 1, -5))
      .Add(Try("k", 1, 100, 0))
      .Add(Try("k", 1, 100, kHour + 1))
      .Add(Try("k", kUsers + 1, 100))
      .Add(Try("k", 0, 100))
      .Add(Try("", 1, 100))
      .Add(Cancel(""))
      .Add(Confirm("k"))  // never tried
      .Add(Try("k", 1, 100));
  w.Run(s);
  for (size_t i = 0; i + 1 < s.replies.size(); ++i) {
    EXPECT_EQ(s.replies[i], Just(TccStatus::kInvalid)) << "request " << i;
  }
  EXPECT_EQ(s.replies.back().status, TccStatus::kOk);
  EXPECT_EQ(w.Int("SELECT COUNT(*) FROM holds"), 1);
}

TEST(PartnerTest, InsufficientPointsAreDeclinedAndTheKeyKeepsItsAnswer) {
  World w(BaseConfig());
  Script s;
  s.Add(Try("k", 1, kInitial + 1))
      .Add(Try("k", 1, kInitial + 1))
      .Add(Confirm("k"))
      .Add(Cancel("k"))
      .Add(Cancel("k"))
      .Add(Try("k2", 1, kInitial));
  w.Run(s);
  EXPECT_EQ(s.replies[0], Just(TccStatus::kDeclined));
  EXPECT_EQ(s.replies[1], Just(TccStatus::kDeclined));
  EXPECT_EQ(s.replies[2], Just(TccStatus::kInvalid));
  EXPECT_EQ(s.replies[3], Just(TccStatus::kOk));
  EXPECT_EQ(s.replies[4], Just(TccStatus::kOk));
  EXPECT_EQ(s.replies[5].status, TccStatus::kOk);  // all of it fits exactly
  EXPECT_EQ(w.Points(1), 0);
  EXPECT_EQ(w.counters().tries_declined, 1);
  EXPECT_EQ(w.MovementsOf(PartnerMovementKind::kCancel), 0);
}

TEST(PartnerTest, EmptyRollbackLeavesATombstoneAndTheLateTryHoldsNothing) {
  World w(BaseConfig());
  Script s;
  s.Add(Cancel("pay1/partner"))
      .Add(Try("pay1/partner", 1, 300))
      .Add(Try("pay1/partner", 1, 300))
      .Add(Cancel("pay1/partner"))
      .Add(Confirm("pay1/partner"));
  w.Run(s);
  EXPECT_EQ(s.replies[0], Just(TccStatus::kOk));
  EXPECT_EQ(s.replies[1], Just(TccStatus::kCancelled));
  EXPECT_EQ(s.replies[2], Just(TccStatus::kCancelled));
  EXPECT_EQ(s.replies[3], Just(TccStatus::kOk));
  EXPECT_EQ(s.replies[4], Just(TccStatus::kInvalid));
  EXPECT_EQ(w.counters().empty_rollbacks, 1);
  EXPECT_EQ(w.counters().late_tries_refused, 2);
  EXPECT_EQ(w.HoldsIn(PartnerHoldState::kTombstone), 1);
  EXPECT_EQ(w.HoldsIn(PartnerHoldState::kHeld), 0);
  EXPECT_EQ(w.Points(1), kInitial);
  EXPECT_EQ(w.Int("SELECT COUNT(*) FROM movements"), kUsers);  // the issues only
  EXPECT_EQ(w.Check(), "");
}

TEST(PartnerTest, CancelReleasesOnceAndAConfirmAfterItIsInvalid) {
  World w(BaseConfig());
  Script s;
  s.Add(Try("k", 2, 400)).Add(Cancel("k")).Add(Cancel("k")).Add(Confirm("k"));
  w.Run(s);
  const TccReply tried = s.replies[0];
  ASSERT_EQ(tried.status, TccStatus::kOk);
  EXPECT_EQ(s.replies[1], tried);
  EXPECT_EQ(s.replies[2], tried);
  EXPECT_EQ(s.replies[3], Just(TccStatus::kInvalid));
  EXPECT_EQ(w.Points(2), kInitial);
  EXPECT_EQ(w.MovementsOf(PartnerMovementKind::kCancel), 1);
  EXPECT_EQ(w.counters().cancels, 1);
  EXPECT_EQ(w.Check(), "");
}

TEST(PartnerTest, HoldExpiredByTheScanConfirmsExpiredEveryTimeAndCancelReleasesNothing) {
  PartnerConfig c = BaseConfig();
  c.expiry_scan_interval = 5 * kSecond;
  World w(c);
  Script s;
  s.Add(Try("k", 1, 300, 2 * kSecond))
      .Add(Confirm("k"), 10 * kSecond)
      .Add(Confirm("k"))
      .Add(Cancel("k"))
      .Add(Cancel("k"))
      .Add(Confirm("k"));
  w.Run(s);
  const TccReply tried = s.replies[0];
  ASSERT_EQ(tried.status, TccStatus::kOk);
  EXPECT_EQ(s.replies[1], Just(TccStatus::kExpired));
  EXPECT_EQ(s.replies[2], Just(TccStatus::kExpired));
  EXPECT_EQ(s.replies[3], tried);
  EXPECT_EQ(s.replies[4], tried);
  EXPECT_EQ(s.replies[5], Just(TccStatus::kExpired));
  EXPECT_EQ(w.Points(1), kInitial);
  EXPECT_EQ(w.MovementsOf(PartnerMovementKind::kExpire), 1);
  EXPECT_EQ(w.MovementsOf(PartnerMovementKind::kCancel), 0);
  EXPECT_EQ(w.counters().expired, 1);
  EXPECT_EQ(w.Check(), "");
}

TEST(PartnerTest, ALateConfirmExpiresTheHoldItselfBeforeTheScan) {
  PartnerConfig c = BaseConfig();
  c.expiry_scan_interval = kHour;
  World w(c);
  Script s;
  s.Add(Try("k", 1, 300, 2 * kSecond)).Add(Confirm("k"), 10 * kSecond).Add(Confirm("k"));
  w.Run(s);
  EXPECT_EQ(s.replies[1], Just(TccStatus::kExpired));
  EXPECT_EQ(s.replies[2], Just(TccStatus::kExpired));
  EXPECT_EQ(w.HoldsIn(PartnerHoldState::kExpired), 1);
  EXPECT_EQ(w.MovementsOf(PartnerMovementKind::kExpire), 1);
  EXPECT_EQ(w.Points(1), kInitial);
  EXPECT_EQ(w.System(PartnerAccount::kClearing), 0);
}

// --- Slow and unreliable ------------------------------------------------------

TEST(PartnerTest, ServiceTimeIsDrawnWithinItsBounds) {
  PartnerConfig c = BaseConfig();
  c.service_time_min = 100 * kMillisecond;
  c.service_time_max = 400 * kMillisecond;
  World w(c);
  Script s;
  for (int i = 0; i < 50; ++i) {
    s.Add(Try("k" + std::to_string(i), 1 + i % kUsers, 1));
  }
  w.Run(s);
  sim::Duration lo = kHour, hi = 0;
  for (sim::Duration d : s.elapsed) {
    // 1 ms each way on the network, plus the service time.
    EXPECT_GE(d, 102 * kMillisecond);
    EXPECT_LE(d, 402 * kMillisecond);
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_GT(hi - lo, 100 * kMillisecond) << "the service time varies";
}

TEST(PartnerTest, AlwaysUnavailableDoesNothing) {
  PartnerConfig c = BaseConfig();
  c.unavailable_rate = 1.0;
  World w(c);
  Script s;
  s.Add(Try("k", 1, 300)).Add(Cancel("k2")).Add(Confirm("k"));
  w.Run(s);
  for (const TccReply& r : s.replies) {
    EXPECT_EQ(r, Just(TccStatus::kUnavailable));
  }
  EXPECT_EQ(w.Int("SELECT COUNT(*) FROM holds"), 0);
  EXPECT_EQ(w.Points(1), kInitial);
  EXPECT_EQ(w.counters().unavailable, 3);
  EXPECT_EQ(w.counters().requests, 3);
}

// Sends 200 Tries to a partner unavailable 30% of the time; the answers as a list.
std::vector<TccReply> FlakyRun(uint64_t seed, int64_t* held_rows) {
  PartnerConfig c = BaseConfig();
  c.unavailable_rate = 0.3;
  c.service_time_min = 10 * kMillisecond;
  c.service_time_max = 50 * kMillisecond;
  World w(c, seed);
  Script s;
  for (int i = 0; i < 200; ++i) {
    s.Add(Try("k" + std::to_string(i), 1 + i % kUsers, 1));
  }
  w.Run(s);
  *held_rows = w.HoldsIn(PartnerHoldState::kHeld);
  EXPECT_EQ(w.counters().unavailable + w.counters().tries_held, 200);
  return s.replies;
}

TEST(PartnerTest, UnavailableAtTheConfiguredRateAndDeterministicPerSeed) {
  int64_t held = 0;
  const std::vector<TccReply> first = FlakyRun(11, &held);
  int64_t ok = 0, unavailable = 0;
  for (const TccReply& r : first) {
    ok += r.status == TccStatus::kOk;
    unavailable += r.status == TccStatus::kUnavailable;
  }
  EXPECT_EQ(ok + unavailable, 200);
  EXPECT_GT(unavailable, 30);
  EXPECT_LT(unavailable, 90);
  // Only the served Tries hold anything.
  EXPECT_EQ(held, ok);

  int64_t held_again = 0;
  EXPECT_EQ(FlakyRun(11, &held_again), first) << "same seed, same answers";
  EXPECT_EQ(held_again, held);
  int64_t other = 0;
  EXPECT_NE(FlakyRun(12, &other), first) << "another seed, other faults";
}

TEST(PartnerTest, OutageWindowsRefuseEverythingInsideAndNothingOutside) {
  PartnerConfig c = BaseConfig();
  c.outages = {PartnerOutage{10 * kSecond, 20 * kSecond}};
  World w(c);
  // Each request reaches the partner 1 ms after it is sent (no service time).
  Script s;
  s.Add(Try("a", 1, 100), 10 * kSecond - 2 * kMillisecond)  // arrives just before the window
      .Add(Try("b", 1, 100), 10 * kSecond - kMillisecond)   // arrives at its start
      .Add(Cancel("c"), 15 * kSecond)
      .Add(Confirm("a"), 20 * kSecond - 2 * kMillisecond)  // arrives just before its end
      .Add(Confirm("a"), 20 * kSecond - kMillisecond)      // arrives at its end: served
      .Add(Try("c", 1, 100));
  w.Run(s);
  EXPECT_EQ(s.replies[0].status, TccStatus::kOk);
  EXPECT_EQ(s.replies[1], Just(TccStatus::kUnavailable));
  EXPECT_EQ(s.replies[2], Just(TccStatus::kUnavailable));
  EXPECT_EQ(s.replies[3], Just(TccStatus::kUnavailable));
  EXPECT_EQ(s.replies[4], s.replies[0]);
  // The Cancel in the outage left no tombstone: the Try goes through.
  EXPECT_EQ(s.replies[5].status, TccStatus::kOk);
  EXPECT_EQ(w.HoldsIn(PartnerHoldState::kTombstone), 0);
  EXPECT_EQ(w.counters().unavailable, 3);
  EXPECT_EQ(w.System(PartnerAccount::kClearing), 100);
}

TEST(PartnerTest, ARestartKeepsHoldsTombstonesAndBalances) {
  World w(BaseConfig());
  Script before;
  before.Add(Try("held", 1, 300)).Add(Cancel("gone"));
  w.Run(before);
  w.partner.Crash();
  w.partner.Restart();
  Script after;
  after.Add(Try("gone", 1, 300)).Add(Try("held", 1, 300)).Add(Confirm("held"));
  w.Run(after);
  EXPECT_EQ(after.replies[0], Just(TccStatus::kCancelled));
  EXPECT_EQ(after.replies[1], before.replies[0]);
  EXPECT_EQ(after.replies[2], before.replies[0]);
  // Populated once: the restart issued nothing more.
  EXPECT_EQ(w.MovementsOf(PartnerMovementKind::kIssue), kUsers);
  EXPECT_EQ(w.Points(1), kInitial - 300);
  EXPECT_EQ(w.System(PartnerAccount::kClearing), 300);
  EXPECT_EQ(w.Check(), "");
}

// --- The checker --------------------------------------------------------------

TEST(PartnerCheckerTest, CatchesAHoldLeftHeld) {
  World w(BaseConfig());
  Script s;
  s.Add(Try("k", 1, 300));
  w.Run(s);
  EXPECT_EQ(w.Check(), "partner_no_hold_left");
}

TEST(PartnerCheckerTest, CatchesAnUnbalancedJournal) {
  World w(BaseConfig());
  w.sim.Run(kSecond);
  w.db().ExecScript("INSERT INTO journal(movement_id, user_id, account, delta) VALUES(1, 1, 0, 5)");
  EXPECT_EQ(w.Check(), "partner_journal_balanced");
}

TEST(PartnerCheckerTest, CatchesABalanceThatDisagreesWithItsJournal) {
  World w(BaseConfig());
  w.sim.Run(kSecond);
  w.db().ExecScript("UPDATE accounts SET balance = balance + 5 WHERE user_id = 2");
  EXPECT_EQ(w.Check(), "partner_balances_reconcile");
}

TEST(PartnerCheckerTest, CatchesClearingThatDisagreesWithTheConfirmedHolds) {
  World w(BaseConfig());
  Script s;
  s.Add(Try("k", 1, 300)).Add(Confirm("k"));
  w.Run(s);
  ASSERT_EQ(w.Check(), "");
  w.db().ExecScript("UPDATE holds SET state = 3 WHERE key = 'k'");
  EXPECT_EQ(w.Check(), "partner_balances_reconcile");
}

}  // namespace
}  // namespace paylab::system
