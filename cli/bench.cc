// Implementation of `paylab bench` (see bench.h). Wall-clock timing lives
// here, outside the simulator, and only measures.
#include "cli/bench.h"

#include <fmt/format.h>

#include <chrono>
#include <memory>

#include "harness/runner.h"
#include "harness/schema/scenario.h"
#include "sim/context.h"
#include "sim/network.h"
#include "sim/node.h"
#include "sim/random.h"
#include "sim/simulator.h"
#include "sim/storage.h"
#include "system/wallet/account_types.h"
#include "system/messaging/broker.h"
#include "system/messaging/broker_log.h"
#include "system/wallet/ledger.h"
#include "system/payments/payment_service.h"
#include "system/points/point_ledger.h"
#include "system/points/point_service.h"
#include "system/wallet/wallet.h"

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

// Charges end to end: a driver node creates and captures charges one after
// the other through the payment service, which runs each as TCC over the
// point service and the wallet (points first, the wallet for the rest). No
// faults, no broker: the figure is the simulator's cost per charge.
constexpr int64_t kChargePoints = 1'000'000;
constexpr sim::Duration kChargeTtl = 3600 * sim::kSecond;

double SimulatedChargeSeconds(int64_t n) {
  sim::Simulator sim(1);
  sim::Network net(
      sim, sim::LatencyModel{sim::LatencyDistribution::kConstant, 0, 0, sim::kMillisecond, 0});
  system::AccountTypes types({system::AccountType{.name = "MONEY", .debit_priority = 0}});
  system::WalletConfig wallet_config;
  wallet_config.types = &types;
  wallet_config.users = kUsers;
  wallet_config.initial_balances = {system::InitialBalance{1, kOpening}};
  system::PointServiceConfig point_config;
  point_config.users = kUsers;
  point_config.initial_points = kChargePoints;
  point_config.ledger.id_worker = 1;
  system::PaymentConfig payment_config;
  payment_config.id_worker = 2;
  payment_config.wallet = 1;
  payment_config.point = 2;
  payment_config.hold_ttl = kChargeTtl;
  payment_config.publish = false;
  payment_config.batch_interval = 0;
  payment_config.clearing_interval = 0;
  system::PaymentCounters counters;
  auto idle = [](sim::NodeContext&) { return std::make_unique<Idle>(); };
  sim::Node driver(sim, net, 0, "driver", idle);
  sim::Node wallet(sim, net, 1, "wallet", [&](sim::NodeContext& ctx) {
    return std::make_unique<system::Wallet>(ctx, wallet_config, nullptr);
  });
  sim::Node point(sim, net, 2, "point", [&](sim::NodeContext& ctx) {
    return std::make_unique<system::PointService>(ctx, point_config, nullptr);
  });
  sim::Node payment(sim, net, 3, "payment", [&](sim::NodeContext& ctx) {
    return std::make_unique<system::PaymentService>(ctx, payment_config, &counters);
  });
  for (sim::Node* node : {&driver, &wallet, &point, &payment}) {
    net.AddNode(node);
    node->Start();
  }
  sim.Run(sim.Now());  // boots and populates
  int64_t captured = 0;
  const auto t0 = Clock::now();
  driver.Spawn([](sim::Network& net, sim::Node& self, int64_t n,
                  int64_t* captured) -> boost::asio::awaitable<void> {
    sim::Rng rng(1, "bench.charges");
    for (int64_t i = 0; i < n; ++i) {
      system::CreatePaymentRequest req{fmt::format("o-{}", i),    system::PaymentFlow::kCharge,
                                       rng.UniformInt(1, kUsers), rng.UniformInt(1, 100),
                                       rng.UniformInt(100, 5000), 0};
      const auto create = [req](system::PaymentService& p) { return p.Create(req); };
      co_await net.AsyncCall<system::PaymentService, system::PaymentReply>(
          self.id(), 3, "payment.create", sim::kSecond, create, boost::asio::use_awaitable);
      const std::string key = req.order_key;
      const auto capture = [key](system::PaymentService& p) { return p.Capture(key); };
      auto r = co_await net.AsyncCall<system::PaymentService, system::PaymentReply>(
          self.id(), 3, "payment.capture", sim::kSecond, capture, boost::asio::use_awaitable);
      *captured += r.ok() && r.value.payment_status == system::PaymentStatus::kCaptured ? 1 : 0;
    }
  }(net, driver, n, &captured));
  // The services' background loops never end: run until the driver is done.
  int64_t asked = 0;
  while (captured + asked < n && sim.Now() < INT64_MAX / 4) {
    sim.Run(sim.Now() + sim::kSecond);
    asked = driver.live_tasks() == 0 ? n : 0;
  }
  const double s = Since(t0);
  for (sim::Node* node : {&driver, &wallet, &point, &payment}) {
    node->Shutdown();
  }
  return captured == n ? s : -1;
}

// The same SQL work with no simulator: the point ledger's try and confirm,
// the wallet ledger's prepare and commit, and the payment row's insert,
// one update per step and the merchant-ledger entries, in the same
// transactions the payment service uses.
double BareChargeSeconds(int64_t n) {
  sim::Database wallet_db;
  sim::Database point_db;
  sim::Database payment_db;
  system::AccountTypes types({system::AccountType{.name = "MONEY", .debit_priority = 0}});
  system::Ledger wallet(wallet_db, types, system::LedgerOptions{}, nullptr);
  const system::InitialBalance opening{1, kOpening};
  wallet.Populate(kUsers, {&opening, 1}, 0);
  system::PointLedgerOptions point_options;
  point_options.id_worker = 1;
  system::PointLedger points(point_db, point_options, nullptr);
  points.Populate(kUsers, kChargePoints, 0, 0);
  payment_db.ExecScript(
      "CREATE TABLE payments(id INTEGER PRIMARY KEY, order_key TEXT NOT NULL UNIQUE, payer "
      "INTEGER, amount INTEGER, point_amount INTEGER, wallet_amount INTEGER, status INTEGER, "
      "resource_status INTEGER, phase INTEGER, updated_at INTEGER);"
      "CREATE TABLE pay_accounts(owner INTEGER, account INTEGER, balance INTEGER, "
      "PRIMARY KEY(owner, account)) WITHOUT ROWID;"
      "CREATE TABLE pay_journal(seq INTEGER PRIMARY KEY, movement INTEGER, owner INTEGER, "
      "account INTEGER, delta INTEGER);");
  sim::Statement insert(payment_db, "INSERT INTO payments VALUES(?, ?, ?, ?, 0, 0, 0, 0, 0, ?)");
  sim::Statement update(payment_db,
                        "UPDATE payments SET point_amount = ?, wallet_amount = ?, status = ?, "
                        "resource_status = ?, phase = ?, updated_at = ? WHERE id = ?");
  sim::Statement account(payment_db,
                         "INSERT INTO pay_accounts VALUES(?, ?, ?) ON CONFLICT(owner, account) "
                         "DO UPDATE SET balance = balance + excluded.balance");
  sim::Statement journal(payment_db,
                         "INSERT INTO pay_journal(movement, owner, account, delta) "
                         "VALUES(?, ?, ?, ?)");
  const auto step = [&](int64_t id, int64_t points_held, int64_t wallet_held, int64_t status,
                        int64_t phase, sim::Time now) {
    sim::Transaction txn(payment_db);
    update.Bind(1, points_held)
        .Bind(2, wallet_held)
        .Bind(3, status)
        .Bind(4, 0)
        .Bind(5, phase)
        .Bind(6, now)
        .Bind(7, id)
        .Exec();
    txn.Commit();
  };
  sim::Rng rng(1, "bench.charges");
  std::string key;
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < n; ++i) {
    const sim::Time now = i * sim::kMillisecond;
    const int64_t payer = rng.UniformInt(1, kUsers);
    const int64_t merchant = rng.UniformInt(1, 100);
    const int64_t amount = rng.UniformInt(100, 5000);
    key = fmt::format("o-{}", i);
    {
      sim::Transaction txn(payment_db);
      insert.Bind(1, i + 1).Bind(2, key).Bind(3, payer).Bind(4, amount).Bind(5, now).Exec();
      txn.Commit();
    }
    // Create: points first (take half, so the wallet pays the rest).
    const system::TccReply p =
        points.TryDebit(system::TccTry{key + "/points", payer, 0, amount / 2, kChargeTtl}, now);
    step(i + 1, p.amount, 0, 0, 1, now);
    const system::WalletReply w =
        wallet.Prepare(key + "/wallet", payer, 0, amount - p.amount, kChargeTtl, now);
    step(i + 1, p.amount, amount - p.amount, 0, 2, now);
    step(i + 1, p.amount, amount - p.amount, 1, 0, now);
    // Capture.
    step(i + 1, p.amount, amount - p.amount, 1, 0, now);
    points.ConfirmDebit(key + "/points", now);
    step(i + 1, p.amount, amount - p.amount, 1, 1, now);
    const system::WalletReply c = wallet.CommitKey(key + "/wallet", now);
    step(i + 1, p.amount, amount - p.amount, 1, 2, now);
    {
      sim::Transaction txn(payment_db);
      update.Bind(1, p.amount)
          .Bind(2, amount - p.amount)
          .Bind(3, 2)
          .Bind(4, 1)
          .Bind(5, 0)
          .Bind(6, now)
          .Bind(7, i + 1)
          .Exec();
      for (auto [owner, acct, delta] :
           {std::tuple{int64_t{0}, 1, -(amount - p.amount)}, std::tuple{int64_t{0}, 2, -p.amount},
            std::tuple{merchant, 4, amount}}) {
        account.Bind(1, owner).Bind(2, acct).Bind(3, delta).Exec();
        journal.Bind(1, i + 1).Bind(2, owner).Bind(3, acct).Bind(4, delta).Exec();
      }
      txn.Commit();
    }
    if (w.status != system::WalletStatus::kOk || c.status != system::WalletStatus::kOk) {
      fmt::print(
          stderr, "paylab bench: bare charge failed: {}\n",
          system::WalletStatusName(w.status != system::WalletStatus::kOk ? w.status : c.status));
      return -1;
    }
  }
  return Since(t0);
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
  const double charge_bare = BareChargeSeconds(a.charges);
  const double charge_sim = SimulatedChargeSeconds(a.charges);
  if (charge_bare <= 0 || charge_sim <= 0) {
    fmt::print(stderr, "paylab bench: the charge benchmark failed\n");
    return 3;
  }
  const double c = static_cast<double>(a.charges);
  fmt::print(
      "  simulated charges      {:>12.0f} charges/s  ({:.2f} us each: create and capture over "
      "RPC, TCC on points and wallet)\n",
      c / charge_sim, charge_sim / c * 1e6);
  fmt::print(
      "  bare charge SQL        {:>12.0f} charges/s  ({:.2f} us each: the same ledgers and "
      "payment rows, no simulator)\n",
      c / charge_bare, charge_bare / c * 1e6);
  fmt::print("  ratio simulated/bare   {:>12.2f}\n", charge_sim / charge_bare);
  return 0;
}

}  // namespace paylab::cli
