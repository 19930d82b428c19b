// Implementation of `paylab bench` (see bench.h). Wall-clock timing lives
// here, outside the simulator, and only measures.
#include "cli/bench.h"

#include <fmt/format.h>

#include <chrono>
#include <memory>

#include "scenarios/runner.h"
#include "scenarios/scenario.h"
#include "sim/context.h"
#include "sim/network.h"
#include "sim/node.h"
#include "sim/random.h"
#include "sim/simulator.h"
#include "sim/storage.h"
#include "system/account_types.h"
#include "system/broker.h"
#include "system/broker_log.h"
#include "system/ledger.h"

namespace paylab::cli {

namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

constexpr int64_t kUsers = 1000;
constexpr int64_t kOpening = 1'000'000'000;

// Raw events: each fired event schedules the next one; 1024 are pending at
// any time, so the heap does real work.
double KernelEventsPerSecond(int64_t events) {
  sim::Simulator sim(1);
  sim::Rng rng(1, "bench");
  int64_t left = events;
  struct Chain {
    sim::Simulator* sim;
    sim::Rng* rng;
    int64_t* left;
    void operator()() const {
      if (--*left > 0) {
        sim->ScheduleAfter(rng->UniformInt(1, 1000), Chain{*this});
      }
    }
  };
  for (int i = 0; i < 1024; ++i) {
    sim.ScheduleAfter(rng.UniformInt(1, 1000), Chain{&sim, &rng, &left});
  }
  const auto t0 = Clock::now();
  const uint64_t fired = sim.Run(INT64_MAX);
  return static_cast<double>(fired) / Since(t0);
}

// A coroutine sleeping in virtual time: an Asio resumption plus a queue event.
double CoroutineHopsPerSecond(int64_t hops) {
  sim::Simulator sim(1);
  boost::asio::co_spawn(
      sim.io(),
      [&sim, hops]() -> boost::asio::awaitable<void> {
        for (int64_t i = 0; i < hops; ++i) {
          co_await sim.AsyncSleep(1, boost::asio::use_awaitable);
        }
      },
      boost::asio::detached);
  const auto t0 = Clock::now();
  sim.Run(INT64_MAX);
  return static_cast<double>(hops) / Since(t0);
}

scenarios::Scenario TransferScenario(int64_t operations) {
  scenarios::Scenario s;
  s.name = "bench";
  s.duration_s = 1;
  s.settle_s = 0;
  s.account_types.push_back(scenarios::AccountTypeSpec{.name = "MONEY", .debit_priority = 0});
  s.population.users = kUsers;
  s.population.initial_balances["MONEY"] = kOpening;
  s.workload.operations = operations;
  s.workload.rate_per_s = 1000;
  s.workload.mix = scenarios::Mix{0, 1, 0, 0};
  s.workload.amount_min = 1;
  s.workload.amount_max = 10000;
  s.workload.deposit_type = "MONEY";
  s.network.latency_ms.distribution = scenarios::LatencyDistribution::kConstant;
  s.network.latency_ms.median = 1;
  return s;
}

// Seconds of wall time for `n` simulated transfers, net of the set-up
// (population, schema) measured by a one-transfer run.
double SimulatedSeconds(int64_t n) {
  scenarios::RunOptions o;
  o.seed = 1;
  o.scenario_file = "(bench)";
  const reports::RunResult base = scenarios::RunScenario(TransferScenario(1), o);
  const reports::RunResult full = scenarios::RunScenario(TransferScenario(n + 1), o);
  if (full.outcome != reports::RunOutcome::kPass || base.outcome != reports::RunOutcome::kPass) {
    fmt::print(stderr, "paylab bench: the benchmark run failed: {}{}\n",
               full.violation ? full.violation->detail : "", full.internal_error);
    return -1;
  }
  return full.wall_time_s - base.wall_time_s;
}

// The same ledger work with no simulator: Transfer called in a loop.
double BareSeconds(int64_t n) {
  sim::Database db;
  system::AccountTypes types({system::AccountType{.name = "MONEY", .debit_priority = 0}});
  system::Ledger ledger(db, types, system::LedgerOptions{}, nullptr);
  const system::InitialBalance opening{1, kOpening};
  ledger.Populate(kUsers, {&opening, 1}, 0);
  sim::Rng rng(1, "bench.bare");
  std::string key;
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < n; ++i) {
    const system::UserId src = rng.UniformInt(1, kUsers);
    system::UserId dst = rng.UniformInt(1, kUsers);
    if (dst == src) {
      dst = src % kUsers + 1;
    }
    key = fmt::format("c1-{}", i);
    const auto r = ledger.Transfer(key, src, dst, rng.UniformInt(1, 10000), i * sim::kMillisecond);
    if (r.status != system::WalletStatus::kOk) {
      fmt::print(stderr, "paylab bench: bare transfer failed: {}\n",
                 system::WalletStatusName(r.status));
      return -1;
    }
  }
  return Since(t0);
}

constexpr std::string_view kBenchPayload = "6980186347130880|2|17:3:-2500,17:1:-100,42:3:2600";
constexpr int32_t kBenchPartitions = 4;
constexpr int64_t kFetchMax = 100;

// The same broker work with no simulator: publish n messages, then consume
// every partition in batches, committing after each batch.
double BareBrokerSeconds(int64_t n) {
  sim::Database db;
  system::BrokerLog log(db, {system::TopicConfig{"bench", kBenchPartitions, false}});
  const auto t0 = Clock::now();
  std::string key;
  for (int64_t i = 0; i < n; ++i) {
    key = fmt::format("{}", i % 1000);
    log.Publish("bench", key, kBenchPayload, "producer", i, i);
  }
  log.Heartbeat("group", "member", "bench", n, sim::kHour);
  int64_t consumed = 0;
  for (int32_t p = 0; p < kBenchPartitions; ++p) {
    int64_t offset = 0;
    for (;;) {
      const system::FetchReply f = log.Fetch("bench", p, offset, kFetchMax);
      if (f.messages.empty()) {
        break;
      }
      offset += static_cast<int64_t>(f.messages.size());
      consumed += static_cast<int64_t>(f.messages.size());
      log.Commit("group", "member", "bench", p, offset, n, sim::kHour);
    }
  }
  const double s = Since(t0);
  return consumed == n ? s : -1;
}

class Idle : public sim::Service {
 public:
  boost::asio::awaitable<void> Boot() override { co_return; }
};

// The same work through the simulator: a producer node publishes over RPC
// to the broker node, then a consumer node fetches and commits over RPC.
double SimulatedBrokerSeconds(int64_t n) {
  sim::Simulator sim(1);
  sim::Network net(
      sim, sim::LatencyModel{sim::LatencyDistribution::kConstant, 0, 0, sim::kMillisecond, 0});
  system::BrokerConfig config;
  config.topics.push_back(system::TopicConfig{"bench", kBenchPartitions, false});
  config.session_timeout = sim::kHour;
  auto idle = [](sim::NodeContext&) { return std::make_unique<Idle>(); };
  sim::Node producer(sim, net, 0, "producer", idle);
  sim::Node broker(sim, net, 1, "broker", [&config](sim::NodeContext& ctx) {
    return std::make_unique<system::Broker>(ctx, config);
  });
  sim::Node consumer(sim, net, 2, "consumer", idle);
  for (sim::Node* node : {&producer, &broker, &consumer}) {
    net.AddNode(node);
    node->Start();
  }
  int64_t consumed = 0;
  const auto t0 = Clock::now();
  sim.Run(sim.Now());  // boots
  producer.Spawn([](sim::Network& net, int64_t n, sim::Node& self) -> boost::asio::awaitable<void> {
    for (int64_t i = 0; i < n; ++i) {
      system::PublishRequest req{"bench", fmt::format("{}", i % 1000), std::string(kBenchPayload),
                                 "producer", i};
      const auto publish = [req](system::Broker& b) { return b.Publish(req); };
      co_await net.AsyncCall<system::Broker, system::PublishReply>(
          self.id(), 1, "broker.publish", sim::kSecond, publish, boost::asio::use_awaitable);
    }
  }(net, n, producer));
  sim.Run(INT64_MAX / 2);
  consumer.Spawn(
      [](sim::Network& net, sim::Node& self, int64_t* consumed) -> boost::asio::awaitable<void> {
        system::HeartbeatRequest hb{"group", "member", "bench"};
        const auto heartbeat = [hb](system::Broker& b) { return b.Heartbeat(hb); };
        co_await net.AsyncCall<system::Broker, system::Assignment>(
            self.id(), 1, "broker.heartbeat", sim::kSecond, heartbeat, boost::asio::use_awaitable);
        for (int32_t p = 0; p < kBenchPartitions; ++p) {
          int64_t offset = 0;
          for (;;) {
            system::FetchRequest f{"bench", p, offset, kFetchMax};
            const auto fetch = [f](system::Broker& b) { return b.Fetch(f); };
            auto r = co_await net.AsyncCall<system::Broker, system::FetchReply>(
                self.id(), 1, "broker.fetch", sim::kSecond, fetch, boost::asio::use_awaitable);
            if (!r.ok() || r.value.messages.empty()) {
              break;
            }
            offset += static_cast<int64_t>(r.value.messages.size());
            *consumed += static_cast<int64_t>(r.value.messages.size());
            system::CommitRequest c{"group", "member", "bench", p, offset};
            const auto commit = [c](system::Broker& b) { return b.Commit(c); };
            co_await net.AsyncCall<system::Broker, system::CommitReply>(
                self.id(), 1, "broker.commit", sim::kSecond, commit, boost::asio::use_awaitable);
          }
        }
      }(net, consumer, &consumed));
  sim.Run(INT64_MAX / 2);
  const double s = Since(t0);
  for (sim::Node* node : {&producer, &broker, &consumer}) {
    node->Shutdown();
  }
  return consumed == n ? s : -1;
}

}  // namespace

int RunBench(const BenchArgs& a) {
  fmt::print("paylab bench (single thread; figures vary with the machine)\n");
  const double eps = KernelEventsPerSecond(a.events);
  fmt::print("  kernel events          {:>12.0f} events/s   ({} raw events, 1024 pending)\n", eps,
             a.events);
  const double hops = CoroutineHopsPerSecond(a.events / 2);
  fmt::print("  coroutine sleeps       {:>12.0f} hops/s     ({} co_await sleeps)\n", hops,
             a.events / 2);
  const double bare = BareSeconds(a.transfers);
  const double simulated = SimulatedSeconds(a.transfers);
  if (bare <= 0 || simulated <= 0) {
    return 3;
  }
  const double n = static_cast<double>(a.transfers);
  fmt::print(
      "  simulated transfers    {:>12.0f} transfers/s ({:.2f} us each: client, network, wallet, "
      "checkers)\n",
      n / simulated, simulated / n * 1e6);
  fmt::print(
      "  bare ledger on SQLite  {:>12.0f} transfers/s ({:.2f} us each: the same SQL, no "
      "simulator)\n",
      n / bare, bare / n * 1e6);
  fmt::print("  ratio simulated/bare   {:>12.2f}             (target: at most 2.00)\n",
             simulated / bare);
  fmt::print("  kernel target          {:>12}             (target: at least 5,000,000 events/s)\n",
             eps >= 5e6 ? "met" : "NOT met");
  const double broker_bare = BareBrokerSeconds(a.messages);
  const double broker_sim = SimulatedBrokerSeconds(a.messages);
  if (broker_bare <= 0 || broker_sim <= 0) {
    fmt::print(stderr, "paylab bench: the broker benchmark lost messages\n");
    return 3;
  }
  const double m = static_cast<double>(a.messages);
  fmt::print(
      "  simulated broker       {:>12.0f} messages/s ({:.2f} us each: publish, fetch, commit over "
      "RPC)\n",
      m / broker_sim, broker_sim / m * 1e6);
  fmt::print(
      "  bare broker log        {:>12.0f} messages/s ({:.2f} us each: the same SQL, no "
      "simulator)\n",
      m / broker_bare, broker_bare / m * 1e6);
  fmt::print("  ratio simulated/bare   {:>12.2f}\n", broker_sim / broker_bare);
  return 0;
}

}  // namespace paylab::cli
