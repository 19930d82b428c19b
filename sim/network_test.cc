// Tests of the simulated network: typed calls with latency, timeouts that
// resume the caller on time, lost replies after the callee acted, duplicated
// requests, partitions, a callee crashing mid-call, explicit faults on the
// Nth call of a method, and the record of faults that happened.
#include "sim/network.h"

#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "sim/context.h"

namespace paylab::sim {
namespace {

using namespace boost::asio::experimental::awaitable_operators;

class Counter : public Service {
 public:
  explicit Counter(NodeContext& ctx) : ctx(ctx) {}
  asio::awaitable<void> Boot() override { co_return; }
  asio::awaitable<int64_t> Add(int64_t v, Duration work) {
    if (work > 0) {
      co_await ctx.Sleep(work);
    }
    total += v;
    ++calls;
    co_return total;
  }
  NodeContext& ctx;
  int64_t total = 0;
  int calls = 0;
};

class Caller : public Service {
 public:
  explicit Caller(NodeContext& ctx) : ctx(ctx) {}
  asio::awaitable<void> Boot() override { co_return; }
  NodeContext& ctx;
};

struct World {
  explicit World(LatencyModel lat = {LatencyDistribution::kConstant, 0, 0, kMillisecond, 0})
      : net(sim, lat) {
    net.AddNode(&caller);
    net.AddNode(&counter);
    caller.Start();
    counter.Start();
  }
  Caller& c() { return *dynamic_cast<Caller*>(caller.service()); }
  Counter& s() { return *dynamic_cast<Counter*>(counter.service()); }
  // Runs `body` as a task of the caller node.
  template <class F>
  void OnCaller(F body) {
    caller.Spawn(body(c().ctx));
  }
  Simulator sim{5};
  Network net;
  Node caller{sim, net, 0, "caller",
              [](NodeContext& ctx) { return std::make_unique<Caller>(ctx); }};
  Node counter{sim, net, 1, "counter",
               [](NodeContext& ctx) { return std::make_unique<Counter>(ctx); }};
};

auto Add(int64_t v, Duration work = 0) {
  return [v, work](Counter& s) { return s.Add(v, work); };
}

TEST(NetworkTest, CallReturnsTheAnswerAfterTheRoundTrip) {
  World w;
  RpcResult<int64_t> got;
  Time at = -1;
  w.OnCaller([&](NodeContext& ctx) -> asio::awaitable<void> {
    got = co_await ctx.Call<Counter>(1, "counter.add", kSecond, Add(5));
    at = ctx.Now();
  });
  w.sim.Run(kMinute);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.value, 5);
  EXPECT_EQ(at, 2 * kMillisecond);  // constant 1 ms each way
}

TEST(NetworkTest, SlowCalleeTimesOutAtTheDeadline) {
  World w;
  RpcResult<int64_t> got;
  got.status = RpcStatus::kOk;
  Time at = -1;
  w.OnCaller([&](NodeContext& ctx) -> asio::awaitable<void> {
    got = co_await ctx.Call<Counter>(1, "counter.add", 100 * kMillisecond, Add(5, kSecond));
    at = ctx.Now();
  });
  w.sim.Run(kMinute);
  EXPECT_EQ(got.status, RpcStatus::kTimeout);
  EXPECT_EQ(at, 100 * kMillisecond);
  EXPECT_EQ(w.s().calls, 1);  // the callee still did the work, later
}

TEST(NetworkTest, OrOperatorWithACallResumesAtTheTimer) {
  World w;
  Time at = -1;
  size_t which = 99;
  w.OnCaller([&](NodeContext& ctx) -> asio::awaitable<void> {
    auto r = co_await (ctx.Call<Counter>(1, "counter.add", kHour, Add(1, 10 * kMinute)) ||
                       ctx.Sleep(50 * kMillisecond));
    which = r.index();
    at = ctx.Now();
  });
  w.sim.Run(kMinute);
  EXPECT_EQ(which, 1u);
  EXPECT_EQ(at, 50 * kMillisecond);
}

TEST(NetworkTest, DroppedReplyMeansTheCalleeActedButTheCallerTimesOut) {
  World w;
  w.net.SetFaults(NetworkFaults{.drop_reply = 1.0});
  RpcResult<int64_t> got;
  w.OnCaller([&](NodeContext& ctx) -> asio::awaitable<void> {
    got = co_await ctx.Call<Counter>(1, "counter.add", kSecond, Add(7));
  });
  w.sim.Run(kMinute);
  EXPECT_EQ(got.status, RpcStatus::kTimeout);
  EXPECT_EQ(w.s().total, 7);
  EXPECT_EQ(w.net.counters().replies_dropped, 1u);
}

TEST(NetworkTest, DroppedRequestMeansTheCalleeNeverActs) {
  World w;
  w.net.SetFaults(NetworkFaults{.drop_request = 1.0});
  RpcResult<int64_t> got;
  w.OnCaller([&](NodeContext& ctx) -> asio::awaitable<void> {
    got = co_await ctx.Call<Counter>(1, "counter.add", kSecond, Add(7));
  });
  w.sim.Run(kMinute);
  EXPECT_EQ(got.status, RpcStatus::kTimeout);
  EXPECT_EQ(w.s().calls, 0);
}

TEST(NetworkTest, DuplicatedRequestIsExecutedTwice) {
  World w;
  w.net.SetFaults(NetworkFaults{.duplicate_request = 1.0});
  RpcResult<int64_t> got;
  w.OnCaller([&](NodeContext& ctx) -> asio::awaitable<void> {
    got = co_await ctx.Call<Counter>(1, "counter.add", kSecond, Add(3));
  });
  w.sim.Run(kMinute);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.value, 3);  // the first answer wins
  EXPECT_EQ(w.s().calls, 2);
  EXPECT_EQ(w.s().total, 6);
}

TEST(NetworkTest, PartitionLosesMessagesUntilHealed) {
  World w;
  std::vector<RpcStatus> got;
  w.net.Partition(0, 1);
  w.sim.ScheduleAt(10 * kSecond, [&] { w.net.Heal(0, 1); });
  w.OnCaller([&](NodeContext& ctx) -> asio::awaitable<void> {
    for (int i = 0; i < 4; ++i) {
      auto r = co_await ctx.Call<Counter>(1, "counter.add", kSecond, Add(1));
      got.push_back(r.status);
      co_await ctx.Sleep(3 * kSecond);
    }
  });
  w.sim.Run(kMinute);
  // Calls at 0, 4, 8 s are lost; the one at 12 s gets through.
  EXPECT_EQ(got, (std::vector<RpcStatus>{RpcStatus::kTimeout, RpcStatus::kTimeout,
                                         RpcStatus::kTimeout, RpcStatus::kOk}));
  EXPECT_EQ(w.s().calls, 1);
}

TEST(NetworkTest, CalleeCrashMidCallLeavesTheWorkUndoneAndTheCallerTimesOut) {
  World w;
  RpcResult<int64_t> got;
  got.status = RpcStatus::kOk;
  w.OnCaller([&](NodeContext& ctx) -> asio::awaitable<void> {
    got = co_await ctx.Call<Counter>(1, "counter.add", 5 * kSecond, Add(9, kSecond));
  });
  w.sim.ScheduleAt(500 * kMillisecond, [&] { w.counter.Crash(); });
  w.sim.ScheduleAt(700 * kMillisecond, [&] { w.counter.Restart(); });
  w.sim.Run(kMinute);
  EXPECT_EQ(got.status, RpcStatus::kTimeout);
  EXPECT_EQ(w.s().calls, 0);  // a fresh incarnation; the old one never finished
  EXPECT_EQ(w.counter.crashes(), 1u);
}

TEST(NetworkTest, CallerCrashCancelsItsPendingCall) {
  World w;
  bool resumed = false;
  w.OnCaller([&](NodeContext& ctx) -> asio::awaitable<void> {
    co_await ctx.Call<Counter>(1, "counter.add", kHour, Add(1, kSecond));
    resumed = true;
  });
  w.sim.ScheduleAt(100 * kMillisecond, [&] { w.caller.Crash(); });
  w.sim.Run(kMinute);
  EXPECT_FALSE(resumed);
  EXPECT_EQ(w.caller.live_tasks(), 0u);
}

TEST(NetworkTest, SameSeedSameTraceHash) {
  auto run = [](uint64_t seed) {
    Simulator sim(seed);
    Network net(sim, LatencyModel{});
    net.SetFaults(NetworkFaults{
        .drop_request = 0.1, .drop_reply = 0.1, .duplicate_request = 0.1, .delay = 0.1});
    Node a(sim, net, 0, "a", [](NodeContext& ctx) { return std::make_unique<Caller>(ctx); });
    Node b(sim, net, 1, "b", [](NodeContext& ctx) { return std::make_unique<Counter>(ctx); });
    net.AddNode(&a);
    net.AddNode(&b);
    a.Start();
    b.Start();
    auto& ctx = dynamic_cast<Caller*>(a.service())->ctx;
    a.Spawn([](NodeContext& ctx) -> asio::awaitable<void> {
      for (int i = 0; i < 200; ++i) {
        co_await ctx.Call<Counter>(1, "counter.add", 20 * kMillisecond, Add(i));
      }
    }(ctx));
    sim.Run(kHour);
    return sim.trace().hash();
  };
  EXPECT_EQ(run(1), run(1));
  EXPECT_NE(run(1), run(2));
}

TEST(NetworkTest, ScheduledFaultsHitTheNthCallOfTheirMethodOnly) {
  World w;
  w.net.SetRpcSchedule({RpcFaultRule{"counter.add", 2, RpcFaultKind::kDropReply},
                        RpcFaultRule{"counter.add", 3, RpcFaultKind::kDropRequest},
                        RpcFaultRule{"counter.add", 4, RpcFaultKind::kDelay, 50 * kMillisecond},
                        RpcFaultRule{"other.method", 1, RpcFaultKind::kDropRequest}});
  std::vector<RpcStatus> got;
  std::vector<Time> took;
  w.OnCaller([&](NodeContext& ctx) -> asio::awaitable<void> {
    for (int i = 0; i < 5; ++i) {
      const Time start = ctx.Now();
      auto r = co_await ctx.Call<Counter>(1, "counter.add", kSecond, Add(1));
      got.push_back(r.status);
      took.push_back(ctx.Now() - start);
    }
  });
  w.sim.Run(kMinute);
  EXPECT_EQ(got, (std::vector<RpcStatus>{RpcStatus::kOk, RpcStatus::kTimeout, RpcStatus::kTimeout,
                                         RpcStatus::kOk, RpcStatus::kOk}));
  EXPECT_EQ(w.s().calls, 4);  // the 2nd acted (its reply was lost), the 3rd never arrived
  EXPECT_EQ(took[3], 52 * kMillisecond);
  EXPECT_EQ(took[4], 2 * kMillisecond);
  // An empty schedule disarms it.
  w.net.SetRpcSchedule({});
}

TEST(NetworkTest, RecordedFaultsNameTheCallTheyHit) {
  World w;
  w.net.RecordFaults(true);
  w.net.SetFaults(NetworkFaults{.drop_reply = 0.5});
  std::vector<RpcStatus> got;
  w.OnCaller([&](NodeContext& ctx) -> asio::awaitable<void> {
    for (int i = 0; i < 40; ++i) {
      got.push_back((co_await ctx.Call<Counter>(1, "counter.add", kSecond, Add(1))).status);
    }
  });
  w.sim.Run(kHour);
  std::vector<uint64_t> lost;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] == RpcStatus::kTimeout) {
      lost.push_back(i + 1);
    }
  }
  ASSERT_FALSE(lost.empty());
  ASSERT_EQ(w.net.realised().size(), lost.size());
  for (size_t i = 0; i < lost.size(); ++i) {
    EXPECT_EQ(w.net.realised()[i].method, "counter.add");
    EXPECT_EQ(w.net.realised()[i].nth, lost[i]);
    EXPECT_EQ(w.net.realised()[i].kind, RpcFaultKind::kDropReply);
  }
}

}  // namespace
}  // namespace paylab::sim
