// Tests of crash injection: crashes happen at the plan's rate and each is
// followed by a restart; after Heal() nothing crashes and every node is up;
// the same seed crashes at the same times.
#include "faults/crash_injector.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace paylab::faults
