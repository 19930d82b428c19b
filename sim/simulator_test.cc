// Tests of the kernel: events fire in (time, schedule order); time moves
// only between idle polls; sleeps honour cancellation so that
// `co_await (a || b)` resumes when the first finishes; two simulators in one
// process share nothing.
#include "sim/simulator.h"

#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <vector>

namespace paylab::sim {
namespace {

using namespace boost::asio::experimental::awaitable_operators;

TEST(SimulatorTest, EventsFireInTimeThenScheduleOrder) {
  Simulator sim(1);
  std::vector<std::pair<Time, int>> fired;
  sim.ScheduleAt(30, [&] { fired.push_back({sim.Now(), 3}); });
  sim.ScheduleAt(10, [&] { fired.push_back({sim.Now(), 1}); });
  sim.ScheduleAt(10, [&] { fired.push_back({sim.Now(), 2}); });
  sim.ScheduleAt(20, [&] {
    fired.push_back({sim.Now(), 4});
    sim.ScheduleAfter(0, [&] { fired.push_back({sim.Now(), 5}); });
  });
  EXPECT_EQ(sim.Run(1000), 5u);
  std::vector<std::pair<Time, int>> want = {{10, 1}, {10, 2}, {20, 4}, {20, 5}, {30, 3}};
  EXPECT_EQ(fired, want);
}

TEST(SimulatorTest, RunStopsAtTheLimitAndAdvancesTheClockToIt) {
  Simulator sim(1);
  int fired = 0;
  sim.ScheduleAt(5 * kSecond, [&] { ++fired; });
  sim.ScheduleAt(15 * kSecond, [&] { ++fired; });
  sim.Run(10 * kSecond);
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(sim.Now(), 10 * kSecond);
  sim.Run(20 * kSecond);
  EXPECT_EQ(fired, 2);
}

TEST(SimulatorTest, SchedulingInThePastIsAProgrammerError) {
  Simulator sim(1);
  sim.ScheduleAt(10, [] {});
  sim.Run(100);
  EXPECT_THROW(sim.ScheduleAt(5, [] {}), CheckFailure);
}

TEST(SimulatorTest, CoroutineSleepsInVirtualTime) {
  Simulator sim(1);
  std::vector<Time> woke;
  asio::co_spawn(
      sim.io(),
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 3; ++i) {
          co_await sim.AsyncSleep(kSecond, asio::use_awaitable);
          woke.push_back(sim.Now());
        }
      },
      asio::detached);
  sim.Run(kHour);
  EXPECT_EQ(woke, (std::vector<Time>{kSecond, 2 * kSecond, 3 * kSecond}));
}

TEST(SimulatorTest, OrOperatorResumesWhenTheFirstFinishes) {
  Simulator sim(1);
  Time resumed = -1;
  size_t which = 99;
  asio::co_spawn(
      sim.io(),
      [&]() -> asio::awaitable<void> {
        auto r = co_await (sim.AsyncSleep(10 * kMillisecond, asio::use_awaitable) ||
                           sim.AsyncSleep(kHour, asio::use_awaitable));
        which = r.index();
        resumed = sim.Now();
      },
      asio::detached);
  // Run only up to a minute: had the loser not been cancelled, the
  // coroutine would still be waiting for the hour-long sleep.
  sim.Run(kMinute);
  EXPECT_EQ(which, 0u);
  EXPECT_EQ(resumed, 10 * kMillisecond);
}

TEST(SimulatorTest, CancelledSleepCompletesWithOperationAborted) {
  Simulator sim(1);
  asio::cancellation_signal signal;
  boost::system::error_code got;
  Time at = -1;
  sim.AsyncSleep(kHour,
                 asio::bind_cancellation_slot(signal.slot(), [&](boost::system::error_code ec) {
                   got = ec;
                   at = sim.Now();
                 }));
  sim.ScheduleAt(kSecond, [&] { signal.emit(asio::cancellation_type::terminal); });
  sim.Run(2 * kSecond);
  EXPECT_EQ(got, asio::error::operation_aborted);
  EXPECT_EQ(at, kSecond);
}

TEST(SimulatorTest, TwoSimulatorsInOneProcessAreIndependent) {
  auto run = [](Simulator& sim, std::vector<uint64_t>& out) {
    asio::co_spawn(
        sim.io(),
        [&]() -> asio::awaitable<void> {
          Rng rng = sim.Stream("work");
          for (int i = 0; i < 50; ++i) {
            co_await sim.AsyncSleep(rng.UniformInt(1, 1000), asio::use_awaitable);
            out.push_back(static_cast<uint64_t>(sim.Now()) ^ rng.NextU64());
          }
        },
        asio::detached);
  };
  Simulator a(7), b(7), c(8);
  std::vector<uint64_t> ra, rb, rc;
  run(a, ra);
  run(b, rb);
  run(c, rc);
  // Interleave the runs a little to show they do not share state.
  a.Run(10'000);
  c.Run(kHour);
  b.Run(kHour);
  a.Run(kHour);
  EXPECT_EQ(ra, rb);
  EXPECT_NE(ra, rc);
}

}  // namespace
}  // namespace paylab::sim
