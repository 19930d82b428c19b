// Stateful property test of the payment service (system/payments/payment_service.h) and its
// participants under faults: any interleaving of create, capture and void,
// under any fault schedule, ends consistent at quiescence.
//
// RapidCheck generates the simulator's seed and a sequence of at most 30
// commands on the hand-built platform of tests/payment_platform.h (wallet,
// broker, point service, payment service, partner) driven by a driver node of
// this file: creates of up to 10 orders (charges, escrows, some taking
// partner points, P2P transfers; small amounts and some the payer cannot
// afford), retries of a create with the same parameters, captures and voids
// of known and unknown order keys, each sent once with a timeout; crashes of
// any participant for a generated downtime; partitions between two nodes for
// a while; network faults (lost requests and replies, duplicates, delays, up
// to 30 %); and plain waits. Every command lets a generated amount of virtual
// time pass.
//
// Then the liveness phase: every fault is healed and every node restarted;
// the recovery layers get their time (the request queue's longest backoff,
// the hourly batch); the driver, as the upstream would, asks about every order
// and captures or voids (as generated) every one that is authorized, until
// each has a final answer. At quiescence:
//  - no payment is WIP;
//  - the participants' checkers pass (WalletChecker, fed every wallet movement,
//    with wallet_no_hold_left; PointChecker, fed every point movement;
//    PartnerChecker), and so does the PaymentChecker, with the driver's view
//    of its orders as the only upstream;
//  - every final answer the driver received during the run (captured,
//    voided, failed) is the payment's final status, an authorised one ended
//    captured or voided, and no create was refused.
// Since the model only tracks which orders exist, the commands themselves
// assert nothing: the property is the final state.
//
// CTest fixes RC_PARAMS (seed); a failure prints the simulator seed, the
// shrunk command sequence, what failed, and the RC_PARAMS="reproduce=..."
// string that replays it.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "sim/context.h"
#include "sim/network.h"
#include "sim/node.h"
#include "sim/storage.h"
#include "sim/time.h"
#include "system/common/check_board.h"
#include "checks/partner_checker.h"
#include "system/payments/partner.h"
#include "system/payments/payment_service.h"
#include "checks/payment_checker.h"
#include "checks/point_checker.h"
#include "system/payments/upstream.h"
#include "checks/wallet_checker.h"
#include "tests/payment_platform.h"

namespace paylab {
namespace {

using namespace paylab::payment_testing;
using system::CreatePaymentRequest;
using system::OrderState;
using system::PaymentFlow;
using system::PaymentReply;
using system::PaymentReplyStatus;
using system::PaymentStatus;

constexpr int kOrdersMax = 10;
constexpr int kCommandsMax = 30;
// Capture and void may name keys never created.
constexpr int kKeysMax = kOrdersMax + 2;
constexpr int64_t kPayers = 4;  // few payers: orders compete for their funds
constexpr int64_t kMerchants = 5;
constexpr sim::Duration kCallTimeout = 5 * kSecond;
constexpr sim::Duration kHour = 60 * kMinute;
// The recovery layers' bound: the request queue's longest backoff (one hour)
// and the hourly batch, with room to spare.
constexpr sim::Duration kRecoveryMax = 3 * kHour;
constexpr int kResolveRoundsMax = 6;
// Every node the platform has (the checkout is left out: node ids stay dense).
constexpr sim::NodeId kNodeCount = kPartner + 1;

// rc::gen::inRange scales its range with the generation size, and the
// command count is bounded through that size: every range here is asked for
// at the nominal size, so that it is the whole range in every case.
template <class T>
rc::Gen<T> Range(T min, T max) {
  return rc::gen::resize(rc::kNominalSize, rc::gen::inRange<T>(min, max));
}

std::string Key(int order) { return fmt::format("s-{}", order); }

std::string_view NodeName(sim::NodeId id) {
  constexpr std::array<std::string_view, kNodeCount> kNames = {"driver", "wallet",  "broker",
                                                               "point",  "payment", "partner"};
  return kNames.at(id);
}

// One call the driver made, and what it heard.
struct Answer {
  std::string op;
  std::string key;
  bool done = false;
  sim::RpcResult<PaymentReply> result;
};

// Sends creates, captures, voids and gets to the payment service, each once
// with a timeout: answers may be lost, as an upstream's are. What it heard
// goes to `answers`, which the harness owns (the driver never crashes, but
// the record must not depend on that).
class StateDriver : public sim::Service {
 public:
  StateDriver(sim::NodeContext& ctx, std::vector<Answer>* answers)
      : ctx_(ctx), answers_(*answers) {}
  asio::awaitable<void> Boot() override { co_return; }

  size_t Create(CreatePaymentRequest req) {
    const size_t t = Open("create", req.order_key);
    ctx_.Spawn(SendCreate(t, std::move(req)));
    return t;
  }
  size_t Capture(std::string key) {
    const size_t t = Open("capture", key);
    ctx_.Spawn(SendCapture(t, std::move(key)));
    return t;
  }
  size_t Void(std::string key) {
    const size_t t = Open("void", key);
    ctx_.Spawn(SendVoid(t, std::move(key)));
    return t;
  }
  size_t Get(std::string key) {
    const size_t t = Open("get", key);
    ctx_.Spawn(SendGet(t, std::move(key)));
    return t;
  }

 private:
  size_t Open(std::string op, std::string key) {
    answers_.push_back(Answer{std::move(op), std::move(key), false, {}});
    return answers_.size() - 1;
  }
  void Record(size_t t, const sim::RpcResult<PaymentReply>& r) {
    answers_[t].done = true;
    answers_[t].result = r;
  }
  // Each lambda is a named local: GCC 12 mishandles a temporary lambda that
  // owns memory inside a co_await expression.
  asio::awaitable<void> SendCreate(size_t t, CreatePaymentRequest req) {
    const auto fn = [req](system::PaymentService& p) { return p.Create(req); };
    const auto r =
        co_await ctx_.Call<system::PaymentService>(kPayment, "payment.create", kCallTimeout, fn);
    Record(t, r);
  }
  asio::awaitable<void> SendCapture(size_t t, std::string key) {
    const auto fn = [key](system::PaymentService& p) { return p.Capture(key); };
    const auto r =
        co_await ctx_.Call<system::PaymentService>(kPayment, "payment.capture", kCallTimeout, fn);
    Record(t, r);
  }
  asio::awaitable<void> SendVoid(size_t t, std::string key) {
    const auto fn = [key](system::PaymentService& p) { return p.Void(key); };
    const auto r =
        co_await ctx_.Call<system::PaymentService>(kPayment, "payment.void", kCallTimeout, fn);
    Record(t, r);
  }
  asio::awaitable<void> SendGet(size_t t, std::string key) {
    const auto fn = [key](system::PaymentService& p) { return p.Get(key); };
    const auto r =
        co_await ctx_.Call<system::PaymentService>(kPayment, "payment.get", kCallTimeout, fn);
    Record(t, r);
  }

  sim::NodeContext& ctx_;
  std::vector<Answer>& answers_;
};

// An order of the model: its create request (a retry sends it again, same
// parameters) and what the upstream does with it once authorised.
struct Order {
  CreatePaymentRequest req;
  bool capture_at_end = true;
};

struct Model {
  std::map<int, Order> orders;  // by order number; the key is Key(number)
};

// The platform of payment_platform.h with this file's driver and the
// checkers wired in as observers. Platform::Start() would build its own
// driver and no observers, so the same configs and node layout are built
// here through Platform::Add.
struct Sut {
  explicit Sut(uint64_t seed) : p(seed) {
    const auto on_violation = [this](const system::Violation& v) { violations.push_back(v); };
    wallet_checker = std::make_unique<system::WalletChecker>(p.sim, p.types, on_violation);
    point_checker = std::make_unique<system::PointChecker>(p.sim, on_violation);
    p.Add("driver",
          [this](sim::NodeContext& ctx) { return std::make_unique<StateDriver>(ctx, &answers); });
    p.Add("wallet", [this](sim::NodeContext& ctx) {
      return std::make_unique<system::Wallet>(ctx, p.wallet_config, wallet_checker.get());
    });
    p.Add("broker", [this](sim::NodeContext& ctx) {
      return std::make_unique<system::Broker>(ctx, p.broker_config);
    });
    p.Add("point", [this](sim::NodeContext& ctx) {
      return std::make_unique<system::PointService>(ctx, p.point_config, point_checker.get());
    });
    p.Add("payment", [this](sim::NodeContext& ctx) {
      return std::make_unique<system::PaymentService>(ctx, p.payment_config, &p.counters);
    });
    p.Add("partner", [this](sim::NodeContext& ctx) {
      return std::make_unique<system::Partner>(ctx, p.partner_config, &p.partner_counters);
    });
    PAYLAB_CHECK(p.nodes.size() == kNodeCount);
    for (sim::NodeId id = 0; id < kNodeCount; ++id) {
      PAYLAB_CHECK(p.node(id).name() == NodeName(id));
    }
    for (auto& n : p.nodes) {
      n->Start();
    }
  }

  StateDriver& driver() { return *dynamic_cast<StateDriver*>(p.node(kDriver).service()); }
  sim::Time Now() const { return p.sim.Now(); }
  void Advance(sim::Duration d) { p.sim.Run(p.sim.Now() + d); }

  // Crashes `id` now (from a simulator event, as Node requires) and restarts
  // it after `downtime`, unless the liveness phase restarted it first.
  void Crash(sim::NodeId id, sim::Duration downtime) {
    if (!p.node(id).up()) {
      return;  // still down from an earlier crash
    }
    const uint64_t epoch = ++epochs[id];
    p.sim.ScheduleAt(Now(), [this, id] {
      if (p.node(id).up()) {
        p.node(id).Crash();
      }
    });
    p.sim.ScheduleAt(Now() + downtime, [this, id, epoch] {
      if (epochs[id] == epoch && !p.node(id).up()) {
        p.node(id).Restart();
      }
    });
  }

  void Partition(sim::NodeId a, sim::NodeId b, sim::Duration duration) {
    p.net.Partition(a, b);
    const uint64_t epoch = partition_epoch;
    p.sim.ScheduleAt(Now() + duration, [this, a, b, epoch] {
      if (partition_epoch == epoch) {
        p.net.Heal(a, b);
      }
    });
  }

  // Heals every fault and restarts every node that is down.
  void HealEverything() {
    p.net.SetFaults(sim::NetworkFaults{});
    p.net.HealAll();
    ++partition_epoch;
    for (sim::NodeId id = 0; id < kNodeCount; ++id) {
      ++epochs[id];
      if (!p.node(id).up()) {
        p.sim.ScheduleAt(Now(), [this, id] { p.node(id).Restart(); });
      }
    }
    Advance(0);
  }

  // Lets time pass, a minute at a time, until no payment is WIP or `bound`
  // has passed.
  void RunUntilNoWip(sim::Duration bound) {
    const sim::Time end = Now() + bound;
    while (p.Wip() > 0 && Now() < end) {
      Advance(kMinute);
    }
  }

  std::vector<system::Violation> violations;
  std::vector<Answer> answers;
  std::array<uint64_t, kNodeCount> epochs{};
  uint64_t partition_epoch = 0;
  // The checkers are declared before the platform, so that the platform (and
  // the nodes that feed them) is destroyed first.
  std::unique_ptr<system::WalletChecker> wallet_checker;
  std::unique_ptr<system::PointChecker> point_checker;
  Platform p;
};

using Command = rc::state::Command<Model, Sut>;

// Every command lets some virtual time pass after acting.
class Timed : public Command {
 public:
  // Often only milliseconds, so that the next command overtakes this one's
  // work in progress.
  Timed() : advance_ms_(*rc::gen::weightedOneOf<int>({{1, Range(0, 21)}, {1, Range(20, 2001)}})) {}

 protected:
  void Pass(Sut& sut) const { sut.Advance(advance_ms_ * kMillisecond); }
  void ShowAdvance(std::ostream& os) const { os << " +" << advance_ms_ << "ms"; }

 private:
  int advance_ms_;
};

Order GenOrder() {
  Order o;
  o.req.flow = *rc::gen::element(PaymentFlow::kCharge, PaymentFlow::kEscrow, PaymentFlow::kP2p);
  o.req.payer = *Range<int64_t>(1, kPayers + 1);
  switch (o.req.flow) {
    case PaymentFlow::kCharge:
      o.req.payee = *Range<int64_t>(1, kMerchants + 1);
      break;
    case PaymentFlow::kEscrow:
      o.req.payee = *Range<int64_t>(1, Platform::kUsers + 1);
      break;
    case PaymentFlow::kP2p:
      o.req.payee = *Range<int64_t>(1, kPayers);
      o.req.payee += o.req.payee >= o.req.payer ? 1 : 0;
      break;
  }
  // Mostly small amounts (points cover some: every payer has 300), some the
  // payer's wallet (100000) cannot cover.
  const bool large = *rc::gen::weightedElement<bool>({{3, false}, {1, true}});
  o.req.amount = large ? *Range<int64_t>(50000, 150001) : *Range<int64_t>(1, 3001);
  // Some escrows take partner points (every user has 5000 there).
  if (o.req.flow == PaymentFlow::kEscrow && *rc::gen::arbitrary<bool>()) {
    o.req.partner_amount = *Range<int64_t>(1, std::min<int64_t>(o.req.amount, 6000) + 1);
  }
  o.capture_at_end = *rc::gen::arbitrary<bool>();
  return o;
}

// A new order, or a create sent again for an existing one (a retry: the same
// parameters).
class Create : public Timed {
 public:
  explicit Create(const Model& s) {
    const bool full = static_cast<int>(s.orders.size()) >= kOrdersMax;
    retry_ =
        full || (!s.orders.empty() && *rc::gen::weightedElement<bool>({{4, false}, {1, true}}));
    if (retry_) {
      std::vector<int> known;
      for (const auto& [i, o] : s.orders) {
        known.push_back(i);
      }
      order_ = *rc::gen::elementOf(known);
      return;
    }
    order_ = 0;
    while (s.orders.contains(order_)) {
      ++order_;
    }
    spec_ = GenOrder();
    spec_.req.order_key = Key(order_);
  }

  void checkPreconditions(const Model& s) const override {
    if (retry_) {
      RC_PRE(s.orders.contains(order_));
    } else {
      RC_PRE(!s.orders.contains(order_));
      RC_PRE(static_cast<int>(s.orders.size()) < kOrdersMax);
    }
  }

  void apply(Model& s) const override {
    if (!retry_) {
      s.orders.emplace(order_, spec_);
    }
  }

  void run(const Model& s, Sut& sut) const override {
    sut.driver().Create(retry_ ? s.orders.at(order_).req : spec_.req);
    Pass(sut);
  }

  void show(std::ostream& os) const override {
    if (retry_) {
      os << "CreateAgain(" << Key(order_) << ")";
    } else {
      const CreatePaymentRequest& r = spec_.req;
      os << "Create(" << r.order_key << ", " << system::PaymentFlowName(r.flow)
         << ", payer=" << r.payer << ", payee=" << r.payee << ", amount=" << r.amount;
      if (r.partner_amount > 0) {
        os << ", partner=" << r.partner_amount;
      }
      os << ", then " << (spec_.capture_at_end ? "capture" : "void") << ")";
    }
    ShowAdvance(os);
  }

 private:
  bool retry_ = false;
  int order_ = 0;
  Order spec_;
};

// Picks an order key: mostly one created, sometimes any (possibly unknown,
// possibly created later).
int GenTarget(const Model& s) {
  std::vector<int> known;
  for (const auto& [i, o] : s.orders) {
    known.push_back(i);
  }
  if (!known.empty() && *rc::gen::weightedElement<bool>({{4, true}, {1, false}})) {
    return *rc::gen::elementOf(known);
  }
  return *Range(0, kKeysMax);
}

class Capture : public Timed {
 public:
  explicit Capture(const Model& s) : order_(GenTarget(s)) {}
  void run(const Model&, Sut& sut) const override {
    sut.driver().Capture(Key(order_));
    Pass(sut);
  }
  void show(std::ostream& os) const override {
    os << "Capture(" << Key(order_) << ")";
    ShowAdvance(os);
  }

 private:
  int order_;
};

class Void : public Timed {
 public:
  explicit Void(const Model& s) : order_(GenTarget(s)) {}
  void run(const Model&, Sut& sut) const override {
    sut.driver().Void(Key(order_));
    Pass(sut);
  }
  void show(std::ostream& os) const override {
    os << "Void(" << Key(order_) << ")";
    ShowAdvance(os);
  }

 private:
  int order_;
};

// Crashes a participant; it restarts after a short or a long downtime.
class CrashRestart : public Timed {
 public:
  CrashRestart()
      : node_(*rc::gen::element<sim::NodeId>(kWallet, kBroker, kPoint, kPayment, kPartner)),
        downtime_ms_(*rc::gen::weightedOneOf<int64_t>(
            {{3, Range<int64_t>(0, 10'001)}, {1, Range<int64_t>(10'000, 20 * 60'000 + 1)}})) {}
  void run(const Model&, Sut& sut) const override {
    sut.Crash(node_, downtime_ms_ * kMillisecond);
    Pass(sut);
  }
  void show(std::ostream& os) const override {
    os << "CrashRestart(" << NodeName(node_) << ", down " << downtime_ms_ << "ms)";
    ShowAdvance(os);
  }

 private:
  sim::NodeId node_;
  int64_t downtime_ms_;
};

// Partitions two nodes (the driver included) for a while.
class Partition : public Timed {
 public:
  Partition()
      : a_(*Range<sim::NodeId>(0, kNodeCount)),
        b_(*rc::gen::distinctFrom(Range<sim::NodeId>(0, kNodeCount), a_)),
        duration_ms_(*rc::gen::weightedOneOf<int64_t>(
            {{3, Range<int64_t>(0, 10'001)}, {1, Range<int64_t>(10'000, 20 * 60'000 + 1)}})) {}
  void run(const Model&, Sut& sut) const override {
    sut.Partition(a_, b_, duration_ms_ * kMillisecond);
    Pass(sut);
  }
  void show(std::ostream& os) const override {
    os << "Partition(" << NodeName(a_) << ", " << NodeName(b_) << ", " << duration_ms_ << "ms)";
    ShowAdvance(os);
  }

 private:
  sim::NodeId a_;
  sim::NodeId b_;
  int64_t duration_ms_;
};

// Sets the network's fault rates (percent, up to 30 each; often zero).
class SetFaults : public Timed {
 public:
  SetFaults() : drop_request_(Rate()), drop_reply_(Rate()), duplicate_(Rate()), delay_(Rate()) {}
  void run(const Model&, Sut& sut) const override {
    sut.p.net.SetFaults(sim::NetworkFaults{.drop_request = drop_request_ / 100.0,
                                           .drop_reply = drop_reply_ / 100.0,
                                           .duplicate_request = duplicate_ / 100.0,
                                           .delay = delay_ / 100.0});
    Pass(sut);
  }
  void show(std::ostream& os) const override {
    os << "SetFaults(drop_request=" << drop_request_ << "%, drop_reply=" << drop_reply_
       << "%, duplicate=" << duplicate_ << "%, delay=" << delay_ << "%)";
    ShowAdvance(os);
  }

 private:
  static int Rate() {
    return *rc::gen::weightedOneOf<int>({{1, rc::gen::just(0)}, {2, Range(1, 31)}});
  }
  int drop_request_;
  int drop_reply_;
  int duplicate_;
  int delay_;
};

// Lets time pass with whatever faults are on: seconds, or long enough for
// the request queue (minutes) and sometimes the hourly batch.
class Advance : public Command {
 public:
  Advance()
      : ms_(*rc::gen::weightedOneOf<int64_t>({{4, Range<int64_t>(1, 60'001)},
                                              {2, Range<int64_t>(60'000, 30 * 60'000 + 1)},
                                              {1, Range<int64_t>(30 * 60'000, 90 * 60'000 + 1)}})) {
  }
  void run(const Model&, Sut& sut) const override { sut.Advance(ms_ * kMillisecond); }
  void show(std::ostream& os) const override { os << "Advance(" << ms_ << "ms)"; }

 private:
  int64_t ms_;
};

// What a get's answer says of order `i`: its final state, recorded in
// *final_state; or that it is authorised, and then it is captured or voided
// now (as generated), to be asked about again in the next round.
void ResolveFromAnswer(const Model& m, Sut& sut, int i, const Answer& a,
                       std::map<int, OrderState>* final_state) {
  if (!a.done || !a.result.ok()) {
    return;
  }
  const PaymentReply& r = a.result.value;
  if (r.status == PaymentReplyStatus::kRefused) {
    (*final_state)[i] = OrderState::kFailed;  // no payment: its create never arrived
    return;
  }
  if (r.in_progress) {
    return;
  }
  switch (r.payment_status) {
    case PaymentStatus::kCaptured:
      (*final_state)[i] = OrderState::kCaptured;
      break;
    case PaymentStatus::kVoided:
      (*final_state)[i] = OrderState::kVoided;
      break;
    case PaymentStatus::kFailed:
      (*final_state)[i] = OrderState::kDeclined;
      break;
    case PaymentStatus::kAuthorized:
      // The call adds to sut.answers, which `a` is part of: nothing reads
      // `a` after it.
      if (m.orders.at(i).capture_at_end) {
        sut.driver().Capture(Key(i));
      } else {
        sut.driver().Void(Key(i));
      }
      break;
    case PaymentStatus::kCreated:
      break;
  }
}

// The upstream's part of the liveness phase: asks about every order, and
// captures or voids the authorised ones, until each has a final answer or
// the rounds run out. Returns the final state of every order that has one.
std::map<int, OrderState> ResolveOrders(const Model& m, Sut& sut) {
  std::map<int, OrderState> final_state;
  for (int round = 0; round < kResolveRoundsMax && final_state.size() < m.orders.size(); ++round) {
    std::vector<std::pair<int, size_t>> gets;
    for (const auto& [i, o] : m.orders) {
      if (!final_state.contains(i)) {
        gets.emplace_back(i, sut.driver().Get(Key(i)));
      }
    }
    sut.Advance(kCallTimeout + kSecond);
    for (const auto& [i, t] : gets) {
      ResolveFromAnswer(m, sut, i, sut.answers[t], &final_state);
    }
    sut.Advance(kCallTimeout + kSecond);
    sut.RunUntilNoWip(kRecoveryMax);
  }
  return final_state;
}

// Writes the driver's orders into `orders`, as the upstream database
// upstream_agrees reads; an order with no final answer is a failure, and is
// written as still authorised.
void WriteUpstreamOrders(const Model& m, const std::map<int, OrderState>& final_state,
                         sim::Database& orders, std::vector<std::string>* failed) {
  orders.ExecScript("CREATE TABLE orders(key TEXT PRIMARY KEY, state INTEGER NOT NULL);");
  for (const auto& [i, o] : m.orders) {
    const auto it = final_state.find(i);
    if (it == final_state.end()) {
      failed->push_back(fmt::format("orders_resolved: order {} has no final answer after {} rounds",
                                    Key(i), kResolveRoundsMax));
    }
    sim::Statement s(orders, "INSERT INTO orders(key, state) VALUES(?, ?)");
    s.Bind(1, Key(i))
        .Bind(2,
              static_cast<int64_t>(it == final_state.end() ? OrderState::kAuthorized : it->second))
        .Exec();
  }
}

// no_wip: no payment is still being worked on.
void CheckNoWip(sim::Database& payment_db, std::vector<std::string>* failed) {
  sim::Statement s(payment_db,
                   "SELECT order_key, status, request, phase, rollback_phase, reason "
                   "FROM payments WHERE resource_status = 0 ORDER BY id");
  while (s.Step()) {
    failed->push_back(fmt::format(
        "no_wip: payment {} is WIP with status {}, request {}, phase {}, rollback phase {}: {}",
        s.Text(0), system::PaymentStatusName(static_cast<PaymentStatus>(s.Int(1))), s.Int(2),
        s.Int(3), s.Int(4), s.Text(5)));
  }
}

std::map<std::string, PaymentStatus> FinalStatuses(sim::Database& payment_db) {
  std::map<std::string, PaymentStatus> final_status;
  sim::Statement s(payment_db, "SELECT order_key, status FROM payments ORDER BY id");
  while (s.Step()) {
    final_status.emplace(std::string(s.Text(0)), static_cast<PaymentStatus>(s.Int(1)));
  }
  return final_status;
}

// Whether a payment that answered `heard` may end `end`. Created: anything
// may follow; authorised: captured or voided; any other status is final.
bool Agrees(PaymentStatus heard, PaymentStatus end) {
  return heard == PaymentStatus::kCreated ||
         (heard == PaymentStatus::kAuthorized &&
          (end == PaymentStatus::kCaptured || end == PaymentStatus::kVoided)) ||
         heard == end;
}

// answers_agree: every final answer the driver heard is the payment's final
// status, and no create was refused.
void CheckAnswersAgree(const Sut& sut, sim::Database& payment_db,
                       std::vector<std::string>* failed) {
  const std::map<std::string, PaymentStatus> final_status = FinalStatuses(payment_db);
  for (const Answer& a : sut.answers) {
    if (!a.done || !a.result.ok()) {
      continue;
    }
    const PaymentReply& r = a.result.value;
    if (r.status == PaymentReplyStatus::kRefused) {
      if (a.op == "create") {
        failed->push_back(fmt::format("answers_agree: create of {} refused: {}", a.key, r.reason));
      }
      continue;
    }
    const auto it = final_status.find(a.key);
    if (it == final_status.end()) {
      failed->push_back(fmt::format("answers_agree: {} of {} answered {} but there is no payment",
                                    a.op, a.key, system::PaymentStatusName(r.payment_status)));
      continue;
    }
    if (!Agrees(r.payment_status, it->second)) {
      failed->push_back(fmt::format("answers_agree: {} of {} answered {}{} but the payment ends {}",
                                    a.op, a.key, system::PaymentStatusName(r.payment_status),
                                    r.in_progress ? " (in progress)" : "",
                                    system::PaymentStatusName(it->second)));
    }
  }
}

// The checkers' final passes over every database, the driver's orders as
// the only upstream; every violation they saw during the run or now fails.
void RunFinalCheckers(Sut& sut, sim::Database& orders, std::vector<std::string>* failed) {
  sim::Database& payment_db = sut.p.node(kPayment).db();
  sim::Database& wallet_db = sut.p.node(kWallet).db();
  sim::Database& point_db = sut.p.node(kPoint).db();
  sim::Database& partner_db = sut.p.node(kPartner).db();
  const auto on_violation = [&sut](const system::Violation& v) { sut.violations.push_back(v); };
  sut.wallet_checker->CheckFinal(wallet_db);
  sut.wallet_checker->CheckNoHoldLeft(wallet_db);
  sut.point_checker->CheckFinal(point_db, sut.Now());
  system::PartnerChecker partner_checker(sut.p.sim, on_violation);
  partner_checker.CheckFinal(partner_db);
  system::PaymentChecker payment_checker(sut.p.sim, on_violation);
  payment_checker.CheckFinal(system::PaymentDatabases{
      &payment_db, &wallet_db, &point_db, &partner_db, {{"s", &orders}}, ""});
  for (const system::Violation& v : sut.violations) {
    failed->push_back(
        fmt::format("{} at t={:.3f} s: {}", v.check, sim::ToSeconds(v.at), v.detail));
  }
}

// The liveness phase and the final checks; returns what failed, one line each.
std::vector<std::string> SettleAndCheck(const Model& m, Sut& sut) {
  std::vector<std::string> failed;
  sut.HealEverything();
  // Whatever was in flight lands or times out, then the layers recover.
  sut.Advance(kMinute);
  sut.RunUntilNoWip(kRecoveryMax);
  const std::map<int, OrderState> final_state = ResolveOrders(m, sut);
  // Late messages land (the partner answers within a second), the clearing job runs.
  sut.Advance(2 * kMinute);
  sim::Database orders;
  WriteUpstreamOrders(m, final_state, orders, &failed);
  sim::Database& payment_db = sut.p.node(kPayment).db();
  CheckNoWip(payment_db, &failed);
  CheckAnswersAgree(sut, payment_db, &failed);
  RunFinalCheckers(sut, orders, &failed);
  return failed;
}

}  // namespace

RC_GTEST_PROP(PaymentStateProperty, AnyInterleavingEndsConsistentAtQuiescence, ()) {
  const auto seed = *Range<uint64_t>(1, uint64_t{1} << 32).as("simulator seed");
  const auto commands = *rc::gen::resize(
      kCommandsMax - 1,
      rc::state::gen::commands(
          Model{}, rc::state::gen::execOneOfWithArgs<Create, Create, Create, Capture, Capture, Void,
                                                     Void, CrashRestart, Partition, SetFaults,
                                                     SetFaults, Advance>()));
  Sut sut(seed);
  rc::state::runAll(commands, Model{}, sut);
  Model end;
  rc::state::applyAll(commands, end);
  const std::vector<std::string> failed = SettleAndCheck(end, sut);
  RC_LOG() << "t=" << sim::ToSeconds(sut.Now()) << " s, " << sut.p.counters.created
           << " payments created, " << sut.p.counters.queued << " queued, "
           << sut.p.counters.batch_requeued << " re-queued by the batch, "
           << sut.p.counters.rollbacks << " rolled back" << std::endl;
  for (const std::string& f : failed) {
    RC_LOG() << f << std::endl;
  }
  RC_ASSERT(failed.empty());
}

}  // namespace paylab
