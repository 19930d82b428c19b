// A small payment platform built by hand for tests that place their own
// faults: wallet, broker, point service, payment service, partner and a
// checkout upstream, plus a driver node that sends creates. Configs are
// public: adjust them, then Start().
#pragma once

#include <fmt/format.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sim/context.h"
#include "sim/network.h"
#include "sim/node.h"
#include "sim/simulator.h"
#include "system/messaging/broker.h"
#include "system/payments/partner.h"
#include "system/payments/payment_service.h"
#include "system/points/point_service.h"
#include "system/payments/upstream.h"
#include "system/wallet/wallet.h"

namespace paylab::payment_testing {

namespace asio = boost::asio;
using sim::kMillisecond;
using sim::kSecond;
inline constexpr sim::Duration kMinute = 60 * kSecond;

// Sends creates to the payment service, once each (no retries: the tests
// look at the payment service's database, not at the answers).
class Driver : public sim::Service {
 public:
  explicit Driver(sim::NodeContext& ctx) : ctx_(ctx) {}
  asio::awaitable<void> Boot() override { co_return; }
  void Submit(sim::NodeId payment, system::CreatePaymentRequest req) {
    ctx_.Spawn(Send(payment, std::move(req)));
  }

 private:
  asio::awaitable<void> Send(sim::NodeId payment, system::CreatePaymentRequest req) {
    const auto create = [req](system::PaymentService& p) { return p.Create(req); };
    co_await ctx_.Call<system::PaymentService>(payment, "payment.create", 5 * kSecond, create);
  }
  sim::NodeContext& ctx_;
};

enum : sim::NodeId { kDriver, kWallet, kBroker, kPoint, kPayment, kPartner, kCheckout };

struct Platform {
  explicit Platform(uint64_t seed, sim::LatencyModel latency = {})
      : sim(seed),
        net(sim, latency),
        types({system::AccountType{.name = "CASHBACK", .debit_priority = 0},
               system::AccountType{.name = "MONEY", .debit_priority = 1}}) {
    wallet_config.types = &types;
    wallet_config.users = kUsers;
    wallet_config.initial_balances = {system::InitialBalance{*types.Find("MONEY"), 100000}};
    wallet_config.ledger.hold_ttl_max = 86400 * kSecond;
    broker_config.topics.push_back(
        system::TopicConfig{std::string(system::kPaymentTopic), 2, true});
    broker_config.queues.push_back(system::QueueConfig{
        "notify.checkout", std::string(system::kPaymentTopic), 2 * kSecond, 1000, ""});
    point_config.users = kUsers;
    point_config.initial_points = 300;
    point_config.ledger.hold_ttl_max = 86400 * kSecond;
    point_config.ledger.id_worker = 1;
    partner_config.users = kUsers;
    partner_config.initial_balance = 5000;
    partner_config.hold_ttl_max = 86400 * kSecond;
    partner_config.unavailable_rate = 0;
    payment_config.id_worker = 2;
    payment_config.wallet = kWallet;
    payment_config.point = kPoint;
    payment_config.partner = kPartner;
    payment_config.broker = kBroker;
    payment_config.hold_ttl = 86400 * kSecond;
    payment_config.relay.broker = kBroker;
    payment_config.relay.producer = "payment";
    checkout_config.name = "checkout";
    checkout_config.payment = kPayment;
    checkout_config.broker = kBroker;
    checkout_config.notify_queue = "notify.checkout";
    checkout_config.users = kUsers;
    checkout_config.payees = 5;
    checkout_config.orders = 0;
  }

  ~Platform() {
    for (auto& n : nodes) {
      n->Shutdown();
    }
  }

  // Builds the nodes once every config is final, and starts them.
  void Start() {
    Add("driver", [this](sim::NodeContext& ctx) { return std::make_unique<Driver>(ctx); });
    Add("wallet", [this](sim::NodeContext& ctx) {
      return std::make_unique<system::Wallet>(ctx, wallet_config, nullptr);
    });
    Add("broker", [this](sim::NodeContext& ctx) {
      return std::make_unique<system::Broker>(ctx, broker_config);
    });
    Add("point", [this](sim::NodeContext& ctx) {
      return std::make_unique<system::PointService>(ctx, point_config, nullptr);
    });
    Add("payment", [this](sim::NodeContext& ctx) {
      return std::make_unique<system::PaymentService>(ctx, payment_config, &counters);
    });
    Add("partner", [this](sim::NodeContext& ctx) {
      return std::make_unique<system::Partner>(ctx, partner_config, &partner_counters);
    });
    Add("checkout", [this](sim::NodeContext& ctx) {
      return std::make_unique<system::Upstream>(ctx, checkout_config, &checkout_counters);
    });
    for (auto& n : nodes) {
      n->Start();
    }
  }

  void Add(std::string name, sim::Node::Factory f) {
    nodes.push_back(std::make_unique<sim::Node>(sim, net, static_cast<sim::NodeId>(nodes.size()),
                                                std::move(name), std::move(f)));
    net.AddNode(nodes.back().get());
  }

  sim::Node& node(sim::NodeId id) { return *nodes.at(id); }
  Driver& driver() { return *dynamic_cast<Driver*>(node(kDriver).service()); }

  void Charge(int i, int64_t amount = 1000) {
    system::CreatePaymentRequest r;
    r.order_key = fmt::format("t-{}", i);
    r.flow = system::PaymentFlow::kCharge;
    r.payer = 1 + i % kUsers;
    r.payee = 1;
    r.amount = amount;
    driver().Submit(kPayment, r);
  }

  int64_t Count(std::string_view where) {
    return node(kPayment).db().QueryInt(
        fmt::format("SELECT COUNT(*) FROM payments WHERE {}", where));
  }
  int64_t Wip() { return Count("resource_status = 0"); }
  int64_t Authorized() { return Count("status = 1 AND resource_status = 1"); }

  static constexpr int64_t kUsers = 20;
  sim::Simulator sim;
  sim::Network net;
  system::AccountTypes types;
  system::WalletConfig wallet_config;
  system::BrokerConfig broker_config;
  system::PointServiceConfig point_config;
  system::PartnerConfig partner_config;
  system::PartnerCounters partner_counters;
  system::PaymentConfig payment_config;
  system::PaymentCounters counters;
  system::UpstreamConfig checkout_config;
  system::UpstreamCounters checkout_counters;
  std::vector<std::unique_ptr<sim::Node>> nodes;
};

}  // namespace paylab::payment_testing
