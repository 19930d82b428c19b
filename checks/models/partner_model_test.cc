// Tests of the partner's reference model (checks/models/partner_model.h) against
// the real partner (system/payments/partner.h), driven over the simulated network
// from a caller node with a constant 1 ms latency each way, no network
// faults and no service time, so that a request sent at t is applied at
// t + 1 ms exactly.
//
// The cases are the Try-Confirm-Cancel contract's (system/common/tcc.h, seed 003):
// a Cancel before its Try (the empty rollback and the late Try it
// refuses), a Try repeated with the same and with other parameters, a
// double Confirm, a Confirm after a Cancel and a Cancel after a Confirm, a
// Confirm after the hold expired (released by the scan, or by the late
// Confirm itself), a Confirm at the expiry instant and one tick before it;
// the partner's own rules (a range, a bad amount or ttl, an unknown user,
// a decline remembered), and its unreliability (unavailable answers at a
// rate or inside outage windows change nothing). The model, fed every
// applied request, must agree at every step and with the database at the
// end. Then it must catch a wrong partner, each time printing both sides:
// the planted defect partner_key_ignores_params, and facts tampered with
// (points released to the wrong user, a tombstone not written, an
// unavailable answer that moved points, an unavailable answer where no
// fault allows one, a database changed behind the model's back).
#include "checks/models/partner_model.h"

#include <gtest/gtest.h>

#include "checks/models/model_feed.h"

#include <boost/asio.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "checks/models/partner_auditor.h"
#include "sim/context.h"
#include "sim/network.h"
#include "sim/node.h"
#include "sim/simulator.h"
#include "sim/storage.h"
#include "sim/time.h"
#include "system/payments/partner.h"
#include "system/common/tcc.h"

namespace paylab::system {
// Found by argument-dependent lookup; internal linkage so no other test source clashes.
static void PrintTo(const TccReply& r, std::ostream* os) {
  *os << "{" << TccStatusName(r.status) << ", id " << r.id << ", amount " << r.amount << "}";
}
}  // namespace paylab::system

namespace paylab::models {
namespace {

namespace asio = boost::asio;
using sim::kHour;
using sim::kMillisecond;
using sim::kSecond;
using system::Partner;
using system::PartnerApplied;
using system::PartnerConfig;
using system::PartnerEntry;
using system::PartnerHoldChange;
using system::PartnerMovementRecord;
using system::TccReply;
using system::TccStatus;
using system::TccTry;

constexpr sim::NodeId kPartnerNode = 1;
constexpr int64_t kUsers = 3;
constexpr int64_t kInitial = 1000;
// A request sent at t is applied at t + kHop.
constexpr sim::Duration kHop = kMillisecond;

using Op = std::function<asio::awaitable<TccReply>(Partner&)>;

Op TryRange(std::string key, int64_t user, int64_t lo, int64_t hi) {
  const TccTry t{std::move(key), user, lo, hi, 60 * kSecond};
  return [t](Partner& p) { return p.TryHold(t); };
}
Op Try(std::string key, int64_t user, int64_t amount, sim::Duration ttl = 60 * kSecond) {
  const TccTry t{std::move(key), user, amount, amount, ttl};
  return [t](Partner& p) { return p.TryHold(t); };
}
Op Confirm(std::string key) {
  return [key](Partner& p) { return p.ConfirmHold(key); };
}
Op Cancel(std::string key) {
  return [key](Partner& p) { return p.CancelHold(key); };
}

// Feeds every applied request to a model; `tamper` may change a copy of the
// facts before the model sees them (a wrong partner, simulated). Like the
// auditor, it stops at the first difference.
class ModelFeed : public system::PartnerObserver,
                  public ModelFeedBase<PartnerModel, PartnerApplied> {
 public:
  using Tamper =
      std::function<void(const PartnerApplied&, TccReply&, std::vector<std::vector<PartnerEntry>>&,
                         std::vector<PartnerHoldChange>&)>;
  explicit ModelFeed(PartnerRules rules) : ModelFeedBase(PartnerModel(std::move(rules))) {}

  void OnPartnerApplied(const PartnerApplied& a) override {
    Feed(a, static_cast<bool>(tamper), [&] {
      // A deep copy the test may change.
      TccReply reply = a.reply;
      std::vector<std::vector<PartnerEntry>> entries;
      for (const PartnerMovementRecord& m : a.movements) {
        entries.emplace_back(m.entries.begin(), m.entries.end());
      }
      std::vector<PartnerHoldChange> holds(a.holds.begin(), a.holds.end());
      tamper(a, reply, entries, holds);
      std::vector<PartnerMovementRecord> movements(a.movements.begin(), a.movements.end());
      movements.resize(entries.size());
      for (size_t i = 0; i < movements.size(); ++i) {
        movements[i].entries = entries[i];
      }
      return model.Check(PartnerApplied{a.request, reply, movements, holds});
    });
  }

  Tamper tamper;
};

// Requests sent one after the other, each no earlier than its not_before.
struct Script {
  struct Request {
    Op op;
    sim::Time not_before = 0;
  };
  std::vector<Request> requests;
  std::vector<TccReply> replies;
  bool done = false;

  Script& Add(Op op, sim::Time not_before = 0) {
    requests.push_back(Request{std::move(op), not_before});
    return *this;
  }
};

// A free coroutine with reference parameters only (GCC 12 mishandles
// coroutine parameters that own memory).
asio::awaitable<void> RunScript(sim::NodeContext& ctx, Script& s) {
  for (const Script::Request& r : s.requests) {
    if (ctx.Now() < r.not_before) {
      co_await ctx.Sleep(r.not_before - ctx.Now());
    }
    auto call = ctx.Call<Partner>(kPartnerNode, "partner.call", kHour, r.op);
    const sim::RpcResult<TccReply> got = co_await std::move(call);
    EXPECT_TRUE(got.ok());
    s.replies.push_back(got.value);
  }
  s.done = true;
}

class CallerService : public sim::Service {
 public:
  explicit CallerService(sim::NodeContext& ctx) : ctx(ctx) {}
  asio::awaitable<void> Boot() override { co_return; }
  sim::NodeContext& ctx;
};

// A fast, reliable partner with a slow scan unless a test says otherwise.
PartnerConfig BaseConfig() {
  PartnerConfig c;
  c.users = kUsers;
  c.initial_balance = kInitial;
  c.hold_ttl_max = kHour;
  c.service_time_min = 0;
  c.service_time_max = 0;
  c.expiry_scan_interval = 10 * kHour;
  c.audit = true;
  return c;
}

struct World {
  explicit World(PartnerConfig c)
      : config(std::move(c)),
        feed(PartnerRulesOf(config)),
        sim(7),
        net(sim, sim::LatencyModel{sim::LatencyDistribution::kConstant, 0, 0, kHop, 0}) {
    both.to = {&feed, &log};
    net.AddNode(&caller);
    net.AddNode(&partner);
    caller.Start();
    partner.Start();
  }
  ~World() {
    caller.Shutdown();
    partner.Shutdown();
  }

  void Run(Script& s) {
    caller.Spawn(RunScript(dynamic_cast<CallerService*>(caller.service())->ctx, s));
    const sim::Time end = sim.Now() + 10 * kHour;
    while (!s.done && sim.Now() < end) {
      sim.Run(std::min(end, sim.Now() + kSecond));
    }
    ASSERT_TRUE(s.done);
  }

  // The auditor's final comparison of a model fed the same requests with
  // the database; "" when they agree.
  std::string Final() {
    PartnerAuditor auditor(sim, PartnerRulesOf(config), nullptr);
    for (const std::unique_ptr<Replayed>& r : log.applied) {
      auditor.OnPartnerApplied(r->Facts());
    }
    auditor.CheckFinal(partner.db());
    return auditor.first_violation() ? auditor.first_violation()->detail : "";
  }

  // Every applied request kept (deep copies), to replay into an auditor.
  struct Replayed {
    system::PartnerRequest request;
    std::optional<TccTry> tcc;
    std::string key;
    TccReply reply;
    std::vector<std::vector<PartnerEntry>> entries;
    std::vector<PartnerMovementRecord> movements;
    std::vector<std::string> hold_keys;
    std::vector<PartnerHoldChange> holds;
    PartnerApplied Facts() const { return PartnerApplied{request, reply, movements, holds}; }
  };
  struct Log : system::PartnerObserver {
    std::vector<std::unique_ptr<Replayed>> applied;
    void OnPartnerApplied(const PartnerApplied& a) override {
      auto r = std::make_unique<Replayed>();
      r->request = a.request;
      if (a.request.tcc != nullptr) {
        r->tcc = *a.request.tcc;
        r->request.tcc = &*r->tcc;
        r->request.key = r->tcc->key;
      } else {
        r->key = std::string(a.request.key);
        r->request.key = r->key;
      }
      r->reply = a.reply;
      for (const PartnerMovementRecord& m : a.movements) {
        r->entries.emplace_back(m.entries.begin(), m.entries.end());
      }
      r->movements.assign(a.movements.begin(), a.movements.end());
      for (size_t i = 0; i < r->movements.size(); ++i) {
        r->movements[i].entries = r->entries[i];
      }
      r->holds.assign(a.holds.begin(), a.holds.end());
      r->hold_keys.reserve(r->holds.size());
      for (PartnerHoldChange& h : r->holds) {
        r->hold_keys.emplace_back(h.key);
      }
      for (size_t i = 0; i < r->holds.size(); ++i) {
        r->holds[i].key = r->hold_keys[i];
      }
      applied.push_back(std::move(r));
    }
  };
  // Both hear every request: the model under test, then the log.
  struct Both : system::PartnerObserver {
    std::vector<system::PartnerObserver*> to;
    void OnPartnerApplied(const PartnerApplied& a) override {
      for (auto* o : to) {
        o->OnPartnerApplied(a);
      }
    }
  };

  PartnerConfig config;
  ModelFeed feed;
  Log log;
  Both both;
  system::PartnerCounters counters;
  sim::Simulator sim;
  sim::Network net;
  sim::Node caller{sim, net, 0, "caller",
                   [](sim::NodeContext& ctx) { return std::make_unique<CallerService>(ctx); }};
  sim::Node partner{sim, net, kPartnerNode, "partner", [this](sim::NodeContext& ctx) {
                      return std::make_unique<Partner>(ctx, config, &counters, &both);
                    }};
};

TccReply Just(TccStatus s) { return TccReply{s, 0, 0}; }

void ExpectAgreed(World& w) {
  EXPECT_EQ(w.feed.first_diff, "");
  EXPECT_GT(w.feed.checked, 0);
  EXPECT_EQ(w.Final(), "");
}

// --- the contract, agreed -----------------------------------------------------

TEST(PartnerModelTest, CancelBeforeTryLeavesATombstoneAndTheLateTryIsCancelled) {
  World w(BaseConfig());
  Script s;
  s.Add(Cancel("pay1/partner"))
      .Add(Try("pay1/partner", 1, 300))
      .Add(Try("pay1/partner", 2, 999))  // other parameters: still cancelled
      .Add(Confirm("pay1/partner"))
      .Add(Cancel("pay1/partner"));
  w.Run(s);
  EXPECT_EQ(s.replies[0], Just(TccStatus::kOk));
  EXPECT_EQ(s.replies[1], Just(TccStatus::kCancelled));
  EXPECT_EQ(s.replies[2], Just(TccStatus::kCancelled));
  EXPECT_EQ(s.replies[3], Just(TccStatus::kInvalid));
  EXPECT_EQ(s.replies[4], Just(TccStatus::kOk));
  ExpectAgreed(w);
  EXPECT_EQ(w.feed.model.stats().empty_rollbacks, 1);
  EXPECT_EQ(w.feed.model.stats().late_tries, 2);
  EXPECT_EQ(w.feed.model.Balance(1, PartnerAccount::kPoints), kInitial);
}

TEST(PartnerModelTest, TryRepeatedDoubleConfirmAndCancelAfterConfirm) {
  World w(BaseConfig());
  Script s;
  s.Add(Try("k", 1, 300))
      .Add(Try("k", 1, 300))                // the same: the first answer
      .Add(Try("k", 1, 301))                // another amount
      .Add(Try("k", 2, 300))                // another user
      .Add(Try("k", 1, 300, 61 * kSecond))  // another ttl
      .Add(Confirm("k"))
      .Add(Confirm("k"))
      .Add(Cancel("k"))
      .Add(Try("k", 1, 300));  // after the confirm: still the first answer
  w.Run(s);
  const TccReply held = s.replies[0];
  ASSERT_EQ(held.status, TccStatus::kOk);
  EXPECT_EQ(s.replies[1], held);
  EXPECT_EQ(s.replies[2], Just(TccStatus::kInvalid));
  EXPECT_EQ(s.replies[3], Just(TccStatus::kInvalid));
  EXPECT_EQ(s.replies[4], Just(TccStatus::kInvalid));
  EXPECT_EQ(s.replies[5], held);
  EXPECT_EQ(s.replies[6], held);
  EXPECT_EQ(s.replies[7], Just(TccStatus::kInvalid));
  EXPECT_EQ(s.replies[8], held);
  ExpectAgreed(w);
  EXPECT_EQ(w.feed.model.Balance(0, PartnerAccount::kClearing), 300);
  EXPECT_EQ(w.feed.model.stats().confirms, 1);
}

TEST(PartnerModelTest, ConfirmAfterCancelIsInvalidAndCancelRepeatsItsAnswer) {
  World w(BaseConfig());
  Script s;
  s.Add(Try("k", 1, 300)).Add(Cancel("k")).Add(Confirm("k")).Add(Cancel("k"));
  w.Run(s);
  EXPECT_EQ(s.replies[2], Just(TccStatus::kInvalid));
  EXPECT_EQ(s.replies[3], s.replies[1]);
  EXPECT_EQ(s.replies[1].amount, 300);
  ExpectAgreed(w);
}

TEST(PartnerModelTest, ArgumentsUnknownUsersAndDeclines) {
  World w(BaseConfig());
  Script s;
  s.Add(TryRange("range", 1, 100, 200))
      .Add(Try("zero", 1, 0))
      .Add(Try("negative", 1, -5))
      .Add(Try("ttl", 1, 10, kHour + 1))
      .Add(Try("ttl0", 1, 10, 0))
      .Add(Try("", 1, 10))
      .Add(Try("nobody", kUsers + 1, 10))
      .Add(Try("nobody", 0, 10))
      .Add(Try("nobody", 1, 10))  // the key stayed free: this one holds
      .Add(Try("much", 2, kInitial + 1))
      .Add(Try("much", 2, kInitial + 1))  // the decline remembered
      .Add(Confirm("much"))
      .Add(Cancel("much"))
      .Add(Confirm("never"))
      .Add(Cancel(""));
  w.Run(s);
  for (size_t i = 0; i <= 7; ++i) {
    EXPECT_EQ(s.replies[i], Just(TccStatus::kInvalid)) << i;
  }
  EXPECT_EQ(s.replies[8].status, TccStatus::kOk);
  EXPECT_EQ(s.replies[9], Just(TccStatus::kDeclined));
  EXPECT_EQ(s.replies[10], Just(TccStatus::kDeclined));
  EXPECT_EQ(s.replies[11], Just(TccStatus::kInvalid));
  EXPECT_EQ(s.replies[12], Just(TccStatus::kOk));
  EXPECT_EQ(s.replies[13], Just(TccStatus::kInvalid));
  EXPECT_EQ(s.replies[14], Just(TccStatus::kInvalid));
  ExpectAgreed(w);
  EXPECT_EQ(w.feed.model.stats().declines, 2);
}

TEST(PartnerModelTest, ConfirmAtTheExpiryInstantIsExpiredOneTickBeforeConfirms) {
  World w(BaseConfig());
  const sim::Duration ttl = 10 * kSecond;
  // A request sent at t is applied at t + kHop and answered at t + 2 kHop:
  // "early" is tried at kHop and expires at kHop + ttl, "late" is tried at
  // 3 kHop and expires at 3 kHop + ttl.
  Script s;
  s.Add(Try("early", 1, 100, ttl))
      .Add(Try("late", 2, 100, ttl))
      .Add(Confirm("early"), ttl - 1)        // applied one tick before its expiry instant
      .Add(Confirm("late"), ttl + 2 * kHop)  // applied at its expiry instant
      .Add(Confirm("late"))
      .Add(Cancel("late"));
  w.Run(s);
  ASSERT_EQ(s.replies[0].status, TccStatus::kOk);
  EXPECT_EQ(s.replies[2], s.replies[0]);
  EXPECT_EQ(s.replies[3], Just(TccStatus::kExpired));
  EXPECT_EQ(s.replies[4], Just(TccStatus::kExpired));
  EXPECT_EQ(s.replies[5], s.replies[1]);  // the expired hold's cancel: ok, nothing again
  ExpectAgreed(w);
  EXPECT_EQ(w.feed.model.stats().on_time_boundary, 2);
  EXPECT_EQ(w.feed.model.stats().holds_expired, 1);
  EXPECT_EQ(w.feed.model.Balance(2, PartnerAccount::kPoints), kInitial);
}

TEST(PartnerModelTest, ConfirmAfterTheScanExpiredTheHold) {
  PartnerConfig c = BaseConfig();
  c.expiry_scan_interval = 5 * kSecond;
  World w(c);
  Script s;
  s.Add(Try("k", 1, 300, 2 * kSecond))
      .Add(Try("j", 2, 300, 20 * kSecond))
      .Add(Confirm("k"), 11 * kSecond)
      .Add(Cancel("k"))
      .Add(Cancel("j"));
  w.Run(s);
  EXPECT_EQ(s.replies[2], Just(TccStatus::kExpired));
  EXPECT_EQ(s.replies[3], s.replies[0]);
  EXPECT_EQ(s.replies[4].amount, 300);
  ExpectAgreed(w);
  EXPECT_EQ(w.feed.model.stats().holds_expired, 1);
  EXPECT_EQ(w.feed.model.stats().cancels, 1);
}

TEST(PartnerModelTest, UnavailableAnswersChangeNothingAndComeOnlyFromTheFaults) {
  PartnerConfig c = BaseConfig();
  c.outages = {system::PartnerOutage{10 * kSecond, 20 * kSecond}};
  World w(c);
  Script s;
  s.Add(Try("k", 1, 300))
      .Add(Confirm("k"), 12 * kSecond)
      .Add(Cancel("j"))
      .Add(Confirm("k"), 20 * kSecond);
  w.Run(s);
  EXPECT_EQ(s.replies[1], Just(TccStatus::kUnavailable));
  EXPECT_EQ(s.replies[2], Just(TccStatus::kUnavailable));
  EXPECT_EQ(s.replies[3], s.replies[0]);
  ExpectAgreed(w);
  EXPECT_EQ(w.feed.model.stats().unavailable, 2);

  PartnerConfig always = BaseConfig();
  always.unavailable_rate = 1;
  World u(always);
  Script t;
  t.Add(Try("k", 1, 300)).Add(Cancel("k")).Add(Confirm("k"));
  u.Run(t);
  for (const TccReply& r : t.replies) {
    EXPECT_EQ(r, Just(TccStatus::kUnavailable));
  }
  ExpectAgreed(u);
}

TEST(PartnerModelTest, ARestartPopulatesNothingAgainAndTheModelFollows) {
  World w(BaseConfig());
  Script s;
  s.Add(Try("k", 1, 300));
  w.Run(s);
  w.partner.Crash();
  w.sim.Run(w.sim.Now() + kSecond);
  w.partner.Restart();
  Script t;
  t.Add(Confirm("k"), w.sim.Now() + kSecond);
  w.Run(t);
  EXPECT_EQ(t.replies[0], s.replies[0]);
  ExpectAgreed(w);
}

// --- a wrong partner, caught --------------------------------------------------

// The first difference must name the request and show both sides.
void ExpectCaught(const World& w, std::string_view request, std::string_view expected) {
  const std::string& d = w.feed.first_diff;
  EXPECT_NE(d.find(request), std::string::npos) << d;
  EXPECT_NE(d.find("expected"), std::string::npos) << d;
  EXPECT_NE(d.find("the partner"), std::string::npos) << d;
  EXPECT_NE(d.find(expected), std::string::npos) << d;
}

TEST(PartnerModelTest, CatchesTheDefectKeyIgnoresParams) {
  PartnerConfig c = BaseConfig();
  c.defect_key_ignores_params = true;
  World w(c);
  Script s;
  s.Add(Try("k", 1, 300)).Add(Try("k", 1, 400));
  w.Run(s);
  EXPECT_EQ(s.replies[1], s.replies[0]);  // the defect: the first answer, not kInvalid
  ExpectCaught(w, "try key k", "expected answer invalid (id 0, amount 0), the partner answered ok");
}

TEST(PartnerModelTest, CatchesPointsReleasedToTheWrongUser) {
  World w(BaseConfig());
  w.feed.tamper = [](const PartnerApplied& a, TccReply&,
                     std::vector<std::vector<PartnerEntry>>& entries,
                     std::vector<PartnerHoldChange>&) {
    if (a.request.op == system::PartnerOp::kCancel && !entries.empty()) {
      for (PartnerEntry& e : entries[0]) {
        e.user = e.user == 1 ? 2 : e.user;
      }
    }
  };
  Script s;
  s.Add(Try("k", 1, 300)).Add(Cancel("k"));
  w.Run(s);
  ExpectCaught(w, "cancel key k", "(1,POINTS,+300)");
  EXPECT_NE(w.feed.first_diff.find("(2,POINTS,+300)"), std::string::npos) << w.feed.first_diff;
}

TEST(PartnerModelTest, CatchesATombstoneNotWritten) {
  World w(BaseConfig());
  w.feed.tamper = [](const PartnerApplied&, TccReply&, std::vector<std::vector<PartnerEntry>>&,
                     std::vector<PartnerHoldChange>& holds) {
    std::erase_if(holds, [](const PartnerHoldChange& h) {
      return h.state == system::PartnerHoldState::kTombstone;
    });
  };
  Script s;
  s.Add(Cancel("k"));
  w.Run(s);
  ExpectCaught(w, "cancel key k", "new hold 0 key 'k' user 0 amount 0 tombstone");
}

TEST(PartnerModelTest, CatchesAnUnavailableAnswerThatMovedPoints) {
  PartnerConfig c = BaseConfig();
  c.unavailable_rate = 0.5;
  World w(c);
  w.feed.tamper = [](const PartnerApplied& a, TccReply& reply,
                     std::vector<std::vector<PartnerEntry>>&, std::vector<PartnerHoldChange>&) {
    if (a.request.op == system::PartnerOp::kTry && a.reply.status == TccStatus::kOk) {
      reply = TccReply{TccStatus::kUnavailable, 0, 0};  // it moved points, then said it had not
    }
  };
  Script s;
  for (int i = 0; i < 10; ++i) {
    s.Add(Try("k" + std::to_string(i), 1, 10));
  }
  w.Run(s);
  ExpectCaught(w, "try key k", "expected an unavailable answer to change nothing");
}

TEST(PartnerModelTest, CatchesAnUnavailableAnswerNoFaultAllows) {
  World w(BaseConfig());
  w.feed.tamper = [](const PartnerApplied& a, TccReply& reply,
                     std::vector<std::vector<PartnerEntry>>& entries,
                     std::vector<PartnerHoldChange>& holds) {
    if (a.request.op == system::PartnerOp::kConfirm) {
      reply = TccReply{TccStatus::kUnavailable, 0, 0};
      entries.clear();
      holds.clear();
    }
  };
  Script s;
  s.Add(Try("k", 1, 300)).Add(Confirm("k"));
  w.Run(s);
  ExpectCaught(w, "confirm key k", "the unavailable rate is 0");
}

TEST(PartnerModelTest, CatchesADatabaseThatDiffersAtTheEnd) {
  World w(BaseConfig());
  Script s;
  s.Add(Try("k", 1, 300));
  w.Run(s);
  EXPECT_EQ(w.Final(), "");
  w.partner.db().ExecScript("UPDATE holds SET amount = 299 WHERE key = 'k'");
  const std::string d = w.Final();
  EXPECT_NE(d.find("at the end: hold"), std::string::npos) << d;
  EXPECT_NE(d.find("amount 299"), std::string::npos) << d;
  EXPECT_NE(d.find("the model says key 'k' user 1 amount 300"), std::string::npos) << d;
}

}  // namespace
}  // namespace paylab::models
