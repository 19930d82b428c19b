// Tests of simulated processes: a crash cancels every coroutine of the node
// at once, drops its volatile state and keeps exactly the committed data; a
// coroutine of a crashed incarnation cannot act; a restart re-runs Boot(),
// which recovers from the database.
#include "sim/node.h"

#include <gtest/gtest.h>

#include "sim/context.h"
#include "sim/network.h"

namespace paylab::sim {
namespace {

// Counts in memory (volatile) and appends a row per tick (durable).
class Ticker : public Service {
 public:
  explicit Ticker(NodeContext& ctx, std::vector<int64_t>* boots) : ctx_(ctx), boots_(boots) {}

  asio::awaitable<void> Boot() override {
    ctx_.db().ExecScript("CREATE TABLE IF NOT EXISTS ticks(n INTEGER PRIMARY KEY, at INTEGER)");
    boots_->push_back(ctx_.db().QueryInt("SELECT COUNT(*) FROM ticks"));
    ctx_.Spawn(Loop());
    co_return;
  }

  asio::awaitable<void> Loop() {
    for (;;) {
      co_await ctx_.Sleep(kSecond);
      ++volatile_ticks;
      Transaction txn(ctx_.db());
      Statement(ctx_.db(), "INSERT INTO ticks(at) VALUES(?)").Bind(1, ctx_.Now()).Exec();
      txn.Commit();
    }
  }

  int volatile_ticks = 0;

 private:
  NodeContext& ctx_;
  std::vector<int64_t>* boots_;
};

struct Fixture {
  Simulator sim{11};
  Network net{sim, LatencyModel{}};
  std::vector<int64_t> boots;
  Node node{sim, net, 0, "ticker",
            [this](NodeContext& ctx) { return std::make_unique<Ticker>(ctx, &boots); }};
  Fixture() { net.AddNode(&node); }
};

TEST(NodeTest, CrashCancelsCoroutinesAndKeepsCommittedData) {
  Fixture f;
  f.node.Start();
  f.sim.ScheduleAt(FromSeconds(5.5), [&] { f.node.Crash(); });
  f.sim.Run(FromSeconds(60));
  // Ticks at 1..5 s committed; nothing after the crash at 5.5 s.
  EXPECT_EQ(f.node.db().QueryInt("SELECT COUNT(*) FROM ticks"), 5);
  EXPECT_EQ(f.node.db().QueryInt("SELECT MAX(at) FROM ticks"), 5 * kSecond);
  EXPECT_FALSE(f.node.up());
  EXPECT_EQ(f.node.live_tasks(), 0u);
  EXPECT_EQ(f.node.service(), nullptr);
}

TEST(NodeTest, RestartRunsBootWhichRecoversAndVolatileStateStartsOver) {
  Fixture f;
  f.node.Start();
  f.sim.ScheduleAt(FromSeconds(3.5), [&] { f.node.Crash(); });
  f.sim.ScheduleAt(FromSeconds(10.25), [&] { f.node.Restart(); });
  f.sim.Run(FromSeconds(12.5));
  EXPECT_EQ(f.boots, (std::vector<int64_t>{0, 3}));
  auto* t = dynamic_cast<Ticker*>(f.node.service());
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->volatile_ticks, 2);  // 11.25 s and 12.25 s, in the new incarnation
  EXPECT_EQ(f.node.db().QueryInt("SELECT COUNT(*) FROM ticks"), 5);
  EXPECT_EQ(f.node.incarnation(), 2u);
}

// A coroutine that swallows its cancellation and tries to carry on: the
// context refuses every action of the dead incarnation.
class Stubborn : public Service {
 public:
  explicit Stubborn(NodeContext& ctx) : ctx_(ctx) {}
  asio::awaitable<void> Boot() override {
    ctx_.db().ExecScript("CREATE TABLE IF NOT EXISTS w(v INTEGER)");
    try {
      co_await ctx_.Sleep(kHour);
    } catch (const boost::system::system_error&) {
      // Ignore the cancellation and try to write anyway.
    }
    ctx_.db().ExecScript("INSERT INTO w VALUES (1)");
  }

 private:
  NodeContext& ctx_;
};

TEST(NodeTest, CoroutineOfACrashedIncarnationCannotAct) {
  Simulator sim(3);
  Network net(sim, LatencyModel{});
  Node node(sim, net, 0, "stubborn",
            [](NodeContext& ctx) { return std::make_unique<Stubborn>(ctx); });
  net.AddNode(&node);
  node.Start();
  sim.ScheduleAt(kSecond, [&] { node.Crash(); });
  sim.Run(kMinute);
  EXPECT_EQ(node.db().QueryInt("SELECT COUNT(*) FROM w"), 0);
  EXPECT_EQ(node.live_tasks(), 0u);
}

}  // namespace
}  // namespace paylab::sim
