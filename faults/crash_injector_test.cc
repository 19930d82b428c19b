// Tests of crash injection: crashes happen at the plan's rate and each is
// followed by a restart; after Heal() nothing crashes and every node is up;
// the same seed crashes at the same times; scheduled crashes happen when
// scheduled; fault points crash a node at the hit they name, never a node
// that is immune, and never after Heal().
#include "faults/crash_injector.h"

#include <gtest/gtest.h>

#include "faults/fault_points.h"
#include "sim/context.h"
#include "sim/network.h"

namespace paylab::faults {
namespace {

class Idle : public sim::Service {
 public:
  boost::asio::awaitable<void> Boot() override { co_return; }
};

struct World {
  explicit World(uint64_t seed) : sim(seed), net(sim, sim::LatencyModel{}) {
    net.AddNode(&node);
    node.Start();
  }
  sim::Simulator sim;
  sim::Network net;
  sim::Node node{sim, net, 0, "victim", [](sim::NodeContext&) { return std::make_unique<Idle>(); }};
};

TEST(CrashInjectorTest, CrashesAtTheMeanRateAndRestartsEachTime) {
  World w(1);
  CrashInjector inj(w.sim, {CrashPlan{&w.node, 10 * sim::kSecond, sim::kSecond, 2 * sim::kSecond}});
  inj.Start();
  w.sim.Run(1000 * sim::kSecond);
  // About 1000 s / (10 s + 1.5 s) crashes.
  EXPECT_GT(inj.crashes(), 60);
  EXPECT_LT(inj.crashes(), 120);
  EXPECT_EQ(w.node.crashes(), static_cast<uint64_t>(inj.crashes()));
  inj.Heal();
  EXPECT_TRUE(w.node.up());
  const int64_t before = inj.crashes();
  w.sim.Run(2000 * sim::kSecond);
  EXPECT_EQ(inj.crashes(), before);
  EXPECT_TRUE(w.node.up());
}

TEST(CrashInjectorTest, SameSeedSameCrashes) {
  auto run = [](uint64_t seed) {
    World w(seed);
    CrashInjector inj(w.sim,
                      {CrashPlan{&w.node, 5 * sim::kSecond, sim::kSecond, 3 * sim::kSecond}});
    inj.Start();
    w.sim.Run(300 * sim::kSecond);
    return std::make_pair(w.sim.trace().hash(), inj.downtime_total());
  };
  EXPECT_EQ(run(3), run(3));
  EXPECT_NE(run(3).first, run(4).first);
}

TEST(CrashInjectorTest, ScheduledCrashHappensAtItsTimeForItsDowntime) {
  World w(1);
  CrashInjector inj(w.sim, {}, {ScheduledCrash{&w.node, 5 * sim::kSecond, 2 * sim::kSecond}});
  inj.Start();
  w.sim.Run(5 * sim::kSecond + 1);
  EXPECT_FALSE(w.node.up());
  w.sim.Run(7 * sim::kSecond - 1);
  EXPECT_FALSE(w.node.up());
  w.sim.Run(7 * sim::kSecond);
  EXPECT_TRUE(w.node.up());
  ASSERT_EQ(inj.realised().size(), 1u);
  EXPECT_EQ(inj.realised()[0].at, 5 * sim::kSecond);
  EXPECT_EQ(inj.realised()[0].downtime, 2 * sim::kSecond);
  EXPECT_EQ(inj.downtime_total(), 2 * sim::kSecond);
}

// A service that passes a fault point once a second.
class Looper : public sim::Service {
 public:
  explicit Looper(sim::NodeContext& ctx, int* passed) : ctx_(ctx), passed_(passed) {}
  boost::asio::awaitable<void> Boot() override {
    ctx_.Spawn(Loop());
    co_return;
  }

 private:
  boost::asio::awaitable<void> Loop() {
    for (;;) {
      co_await ctx_.Sleep(sim::kSecond);
      ctx_.FaultPoint("test.point");
      ++*passed_;  // only when the point did not crash the node
    }
  }
  sim::NodeContext& ctx_;
  int* passed_;
};

struct LoopWorld {
  LoopWorld() : sim(3), net(sim, sim::LatencyModel{}) {
    net.AddNode(&node);
    net.AddNode(&immune);
    node.Start();
    immune.Start();
  }
  sim::Simulator sim;
  sim::Network net;
  int passed = 0;
  int immune_passed = 0;
  sim::Node node{sim, net, 0, "victim",
                 [this](sim::NodeContext& ctx) { return std::make_unique<Looper>(ctx, &passed); }};
  sim::Node immune{sim, net, 1, "immune", [this](sim::NodeContext& ctx) {
                     return std::make_unique<Looper>(ctx, &immune_passed);
                   }};
};

TEST(FaultPointTest, CrashesAtTheNamedHitRightThereAndRestarts) {
  LoopWorld w;
  CrashInjector crashes(w.sim, {});
  FaultPointInjector points(
      w.sim, crashes, {FaultPointPlan{"test.point", 0, sim::kSecond / 2, sim::kSecond / 2, {3}}},
      {1});
  w.sim.set_fault_points(&points);
  w.sim.Run(3 * sim::kSecond);
  // Hits 1 and 2 passed; hit 3 doomed the node before it could go on.
  EXPECT_EQ(w.passed, 2);
  w.sim.Run(3 * sim::kSecond + 1);
  EXPECT_FALSE(w.node.up());
  EXPECT_EQ(w.node.crashes(), 1u);
  w.sim.Run(10 * sim::kSecond);
  EXPECT_TRUE(w.node.up());
  ASSERT_EQ(points.realised().size(), 1u);
  EXPECT_EQ(points.realised()[0].hit, 3);
  EXPECT_EQ(points.realised()[0].at, 3 * sim::kSecond);
  // The immune node passes every time and is never counted.
  EXPECT_EQ(w.immune.crashes(), 0u);
  EXPECT_EQ(w.immune_passed, 10);
  EXPECT_EQ(points.hits(0), 3 + 6);  // 3 before the crash, 6 after the restart at 3.5 s
  points.Heal();
  crashes.Heal();
  w.sim.set_fault_points(nullptr);
}

TEST(FaultPointTest, HealDisarmsEveryPoint) {
  LoopWorld w;
  CrashInjector crashes(w.sim, {});
  FaultPointInjector points(w.sim, crashes,
                            {FaultPointPlan{"test.point", 1.0, sim::kSecond, sim::kSecond, {}}});
  w.sim.set_fault_points(&points);
  points.Heal();
  crashes.Heal();
  w.sim.Run(10 * sim::kSecond);
  EXPECT_EQ(w.node.crashes(), 0u);
  EXPECT_EQ(w.passed, 10);
  w.sim.set_fault_points(nullptr);
}

}  // namespace
}  // namespace paylab::faults
