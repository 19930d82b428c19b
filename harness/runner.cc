// Implementation of the runner (see runner.h).
#include "harness/runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <span>

#include "faults/crash_injector.h"
#include "faults/fault_points.h"
#include "checks/models/broker_auditor.h"
#include "checks/models/migration_auditor.h"
#include "checks/models/partner_auditor.h"
#include "checks/models/payment_auditor.h"
#include "checks/models/point_auditor.h"
#include "checks/models/wallet_auditor.h"
#include "reports/report.h"
#include "harness/swarm.h"
#include "sim/context.h"
#include "sim/network.h"
#include "sim/node.h"
#include "sim/simulator.h"
#include "system/wallet/account_types.h"
#include "system/messaging/broker.h"
#include "workloads/client.h"
#include "workloads/hostile.h"
#include "checks/messaging_checker.h"
#include "system/migration/controller.h"
#include "checks/migration_checker.h"
#include "system/migration/point_home.h"
#include "system/migration/cashback_wallet.h"
#include "system/migration/migrator.h"
#include "system/wallet/mirror.h"
#include "system/wallet/movement_event.h"
#include "checks/partner_checker.h"
#include "system/payments/partner.h"
#include "system/payments/payment_service.h"
#include "checks/payment_checker.h"
#include "system/points/payment_event.h"
#include "checks/point_checker.h"
#include "system/points/point_service.h"
#include "checks/queue_checker.h"
#include "workloads/shopper.h"
#include "system/payments/upstream.h"
#include "system/wallet/wallet.h"
#include "checks/wallet_checker.h"

namespace paylab::scenarios {

namespace {

sim::LatencyModel ToLatency(const LatencySpec& l) {
  sim::LatencyModel m;
  switch (l.distribution) {
    case LatencyDistribution::kConstant:
      m.distribution = sim::LatencyDistribution::kConstant;
      break;
    case LatencyDistribution::kUniform:
      m.distribution = sim::LatencyDistribution::kUniform;
      break;
    case LatencyDistribution::kLogNormal:
      m.distribution = sim::LatencyDistribution::kLogNormal;
      break;
  }
  m.min = sim::FromMillis(l.min);
  m.max = sim::FromMillis(l.max);
  m.median = sim::FromMillis(l.median);
  m.sigma = l.sigma;
  return m;
}

std::vector<system::AccountType> ToTypes(const Scenario& s) {
  std::vector<system::AccountType> out;
  for (const AccountTypeSpec& t : s.account_types) {
    out.push_back(system::AccountType{
        .name = t.name,
        .debit_priority = t.debit_priority,
        .allow_negative = t.allow_negative,
        .expires_after = sim::FromSeconds(t.expires_after_days * 86400.0),
        .auto_create = t.auto_create,
        .balance_cap = t.balance_cap,
    });
  }
  return out;
}

sim::NodeId NodeIdOf(std::string_view name) {
  for (size_t i = 0; i < kKnownNodes.size(); ++i) {
    if (kKnownNodes[i].name == name) {
      return static_cast<sim::NodeId>(i);
    }
  }
  PAYLAB_CHECK(false && "unknown node name (the loader checks names)");
  return 0;
}

// Everything one run builds, destroyed in reverse order of construction.
struct World {
  World(const Scenario& s, const RunOptions& o)
      : sim(o.seed),
        net(sim, ToLatency(s.network.latency_ms)),
        types(ToTypes(s)),
        checker(
            sim, types, [this](const system::Violation&) { sim.Stop(); },
            // The payment orchestrator and the migration's services must
            // resolve every hold they try: wallet_no_hold_left is listed from
            // the start, so a run that stops early shows it not evaluated.
            system::WalletCheckerOptions{
                .no_hold_left = s.payments.enabled || s.migration.enabled,
                .expiry_grace = sim::FromSeconds(s.wallet.expiry_scan_interval_s)}),
        wallet_auditor(sim, models::WalletRulesOf(types, sim::FromSeconds(s.wallet.hold_ttl_max_s)),
                       [this](const system::Violation&) { sim.Stop(); }),
        wallet_observers({&checker, &wallet_auditor}),
        messaging_checker(sim, [this](const system::Violation&) { sim.Stop(); }),
        point_checker(sim, [this](const system::Violation&) { sim.Stop(); }),
        partner_checker(sim, [this](const system::Violation&) { sim.Stop(); }),
        payment_checker(sim, [this](const system::Violation&) { sim.Stop(); }),
        migration_checker(sim, [this](const system::Violation&) { sim.Stop(); }),
        queue_checker(sim, [this](const system::Violation&) { sim.Stop(); }) {
    wallet_config.types = &types;
    wallet_config.ledger.hold_ttl_max = sim::FromSeconds(s.wallet.hold_ttl_max_s);
    // Every request the wallet applies goes to its reference model too.
    wallet_config.ledger.audit = true;
    wallet_config.ledger.defect_credit_without_debit =
        o.defects.Has(system::Defect::kCreditWithoutDebit);
    wallet_config.ledger.defect_commit_ignores_expiry =
        o.defects.Has(system::Defect::kCommitIgnoresHoldExpiry);
    wallet_config.ledger.defect_cancel_without_tombstone =
        o.defects.Has(system::Defect::kCancelWithoutTombstone);
    wallet_config.ledger.defect_no_clock_rollback_guard =
        o.defects.Has(system::Defect::kNoClockRollbackGuard);
    wallet_config.ledger.defect_debit_ignores_priority =
        o.defects.Has(system::Defect::kDebitIgnoresPriority);
    wallet_config.ledger.defect_items_latest_first =
        o.defects.Has(system::Defect::kItemsConsumedLatestFirst);
    wallet_config.ledger.defect_item_spendable_at_expiry =
        o.defects.Has(system::Defect::kItemSpendableAtExpiry);
    wallet_config.users = s.population.users;
    for (const auto& [name, amount] : s.population.initial_balances) {
      wallet_config.initial_balances.push_back(system::InitialBalance{*types.Find(name), amount});
    }
    wallet_config.expiry_scan_interval = sim::FromSeconds(s.wallet.expiry_scan_interval_s);

    const Workload& w = s.workload;
    workload.operations = w.operations;
    workload.rate_per_s = w.rate_per_s;
    workload.mix = {w.mix.deposit, w.mix.transfer, w.mix.two_phase, w.mix.misuse};
    workload.amount_min = w.amount_min;
    workload.amount_max = w.amount_max;
    workload.deposit_type = *types.Find(w.deposit_type);
    workload.rollback_ratio = w.rollback_ratio;
    workload.abandon_ratio = w.abandon_ratio;
    workload.hold_ttl = sim::FromSeconds(w.hold_ttl_s);
    workload.timeout = sim::FromMillis(w.timeout_ms);
    workload.retry_count_max = static_cast<int>(w.retry_count_max);
    workload.retry_backoff = sim::FromMillis(w.retry_backoff_ms);
    workload.users = s.population.users;
    workload.defect_retry_without_key = o.defects.Has(system::Defect::kRetryWithoutIdempotencyKey);
    workload.boundary_ratio = w.boundary_ratio;
    workload.hold_ttl_max = sim::FromSeconds(s.wallet.hold_ttl_max_s);
    workload.deposit_cap = types.Get(workload.deposit_type).balance_cap;
    // The opening balance items are made at 0: they expire at their type's
    // expiry, an instant the client can aim at.
    for (const auto& [name, amount] : s.population.initial_balances) {
      const sim::Duration after = types.Get(*types.Find(name)).expires_after;
      if (amount > 0 && after > 0) {
        workload.item_expiries.push_back(after);
      }
    }

    const sim::NodeId wallet_id = NodeIdOf("wallet");
    const MessagingOptions& m = s.messaging;
    messaging = m.enabled;
    if (messaging) {
      const bool outside = o.defects.Has(system::Defect::kPublishOutsideOutbox);
      wallet_config.ledger.publish_events = !outside;
      wallet_config.defect_publish_outside_outbox = outside;
      wallet_config.broker = NodeIdOf("broker");
      wallet_config.relay_interval = sim::FromMillis(m.relay_interval_ms);
      wallet_config.relay_batch_max = m.relay_batch_max;
      wallet_config.relay_timeout = sim::FromMillis(m.rpc_timeout_ms);
      broker_config.topics.push_back(system::TopicConfig{std::string(system::kMovementTopic),
                                                         static_cast<int32_t>(m.partitions),
                                                         m.idempotent_producer});
      broker_config.session_timeout = sim::FromMillis(m.session_timeout_ms);
      broker_config.duplicate_delivery = m.duplicate_delivery;
      if (m.audit_queue) {
        audit_queue = fmt::format("{}.audit", system::kMovementTopic);
        if (m.dead_letter_queue) {
          dead_letter_queue = fmt::format("{}.dlq", audit_queue);
        }
        broker_config.queues.push_back(system::QueueConfig{
            audit_queue, std::string(system::kMovementTopic),
            sim::FromMillis(m.visibility_timeout_ms), m.max_receives, dead_letter_queue});
        if (!dead_letter_queue.empty()) {
          broker_config.queues.push_back(system::QueueConfig{
              dead_letter_queue, "", sim::FromMillis(m.visibility_timeout_ms), 0, ""});
        }
        mirror_config.audit_queue = audit_queue;
      }
      mirror_config.broker = NodeIdOf("broker");
      mirror_config.members = m.consumer_members;
      mirror_config.poll_interval = sim::FromMillis(m.poll_interval_ms);
      mirror_config.rpc_timeout = sim::FromMillis(m.rpc_timeout_ms);
      mirror_config.fetch_max = m.fetch_max;
      mirror_config.defect_no_dedup = o.defects.Has(system::Defect::kConsumerWithoutDedup);
    }
    if (s.payments.enabled) {
      ConfigurePayments(s, o);
    }
    migration = s.migration.enabled;
    if (migration) {
      BuildMigration(s, o);
    } else {
      client = std::make_unique<sim::Node>(
          sim, net, NodeIdOf("client"), "client", [this, wallet_id](sim::NodeContext& ctx) {
            return std::make_unique<system::Client>(ctx, workload, wallet_id, &checker);
          });
      wallet =
          std::make_unique<sim::Node>(sim, net, wallet_id, "wallet", [this](sim::NodeContext& ctx) {
            return std::make_unique<system::Wallet>(ctx, wallet_config, &wallet_observers);
          });
      net.AddNode(client.get());
      net.AddNode(wallet.get());
    }
    if (messaging) {
      WatchBroker(o);
      broker = std::make_unique<sim::Node>(
          sim, net, NodeIdOf("broker"), "broker", [this](sim::NodeContext& ctx) {
            return std::make_unique<system::Broker>(ctx, broker_config);
          });
      mirror = std::make_unique<sim::Node>(
          sim, net, NodeIdOf("mirror"), "mirror", [this](sim::NodeContext& ctx) {
            return std::make_unique<system::Mirror>(ctx, mirror_config, &messaging_checker);
          });
      net.AddNode(broker.get());
      net.AddNode(mirror.get());
    }
    if (payments) {
      AddPaymentNodes();
    }
    std::vector<std::string> names;
    for (const KnownNode& n : kKnownNodes) {
      names.emplace_back(n.name);
    }
    sim.trace().SetNodeNames(std::move(names));

    const Faults& f = s.faults;
    net.RecordFaults(o.record_faults);
    net.SetFaults(sim::NetworkFaults{f.drop_request, f.drop_reply, f.duplicate_request, f.delay,
                                     sim::FromMillis(f.delay_ms_max)});
    std::vector<faults::CrashPlan> plans;
    for (const CrashSpec& c : f.crashes) {
      sim::Node* node = &net.node(NodeIdOf(c.node));
      plans.push_back(faults::CrashPlan{node, sim::FromSeconds(c.mean_interval_s),
                                        sim::FromSeconds(c.downtime_s_min),
                                        sim::FromSeconds(c.downtime_s_max)});
    }
    std::vector<faults::ScheduledCrash> scheduled;
    for (const ScheduledCrashSpec& c : f.schedule.crashes) {
      // Only the safety phase has faults.
      if (c.at_s < s.duration_s) {
        scheduled.push_back(faults::ScheduledCrash{
            &net.node(NodeIdOf(c.node)), sim::FromSeconds(c.at_s), sim::FromSeconds(c.downtime_s)});
      }
    }
    crashes = std::make_unique<faults::CrashInjector>(sim, std::move(plans), std::move(scheduled));
    std::vector<faults::FaultPointPlan> point_plans;
    for (const FaultPointSpec& p : f.points) {
      point_plans.push_back(faults::FaultPointPlan{p.point, p.probability,
                                                   sim::FromSeconds(p.downtime_s_min),
                                                   sim::FromSeconds(p.downtime_s_max), p.hits});
    }
    if (!point_plans.empty()) {
      std::set<sim::NodeId> immune;
      for (const KnownNode& n : kKnownNodes) {
        if (!n.crashable) {
          immune.insert(NodeIdOf(n.name));
        }
      }
      fault_points = std::make_unique<faults::FaultPointInjector>(
          sim, *crashes, std::move(point_plans), std::move(immune));
      sim.set_fault_points(fault_points.get());
    }
    std::vector<sim::RpcFaultRule> rules;
    for (const RpcFaultSpec& r : f.schedule.rpc_faults) {
      sim::RpcFaultKind kind = sim::RpcFaultKind::kDropReply;
      for (auto k : {sim::RpcFaultKind::kDropRequest, sim::RpcFaultKind::kDropReply,
                     sim::RpcFaultKind::kDuplicateRequest, sim::RpcFaultKind::kDelay}) {
        if (sim::RpcFaultKindName(k) == r.fault) {
          kind = k;
        }
      }
      rules.push_back(sim::RpcFaultRule{r.method, static_cast<uint64_t>(r.nth), kind,
                                        sim::FromMillis(r.delay_ms),
                                        static_cast<uint32_t>(r.reply)});
    }
    net.SetRpcSchedule(std::move(rules));
  }

  ~World() {
    // End every coroutine while all they reference is alive.
    for (sim::Node* n : nodes()) {
      n->Shutdown();
    }
    sim.set_fault_points(nullptr);
  }

  void ConfigurePayments(const Scenario& s, const RunOptions& o);
  // Makes the broker's auditor from the broker's finished configuration,
  // and has the broker report every call to it (audit on).
  void WatchBroker(const RunOptions& o);
  // Makes the point ledger's auditor for a ledger whose tries may last up
  // to hold_ttl_max, and the observers the point node reports to.
  void WatchPoints(sim::Duration hold_ttl_max);
  // The migration world (issue 6): nodes in kKnownNodes' order, the ones it
  // does not use as idle placeholders (the network numbers nodes densely).
  void BuildMigration(const Scenario& s, const RunOptions& o);
  std::string MigrationNotQuiet(const Scenario* s);
  void SampleMigration();
  // Unavailability per user from the controller's status log.
  void CollectMigration(const Scenario& s, reports::RunResult& r);

  // The workload has finished and, with payments, every order is final, no
  // orphan void is running and no payment is WIP.
  bool Quiet() { return NotQuietReason(nullptr).empty(); }
  std::string NotQuietReason(const Scenario* s);
  // What messaging still has in flight once the workload is quiet: outbox
  // rows not yet published, topic messages the mirror's group has not
  // committed, messages left in any queue the broker feeds from a topic.
  // "" when drained. Background jobs (hold expiry) keep making movements
  // after the workload ends, so the run waits for this before the final
  // checks look at the databases.
  std::string Backlog();
  // Every topic of the broker as the queue checker needs to know it.
  std::vector<system::WatchedTopic> WatchedTopics() const;
  // Every check this run reports, in the order of the report, with its
  // counts so far (workload_completes is the runner's own and comes last).
  std::vector<reports::CheckResult> CheckResults() const;
  void AddPaymentNodes();
  // A node the world does not use, in its place: the network numbers nodes
  // densely, in kKnownNodes' order.
  void AddIdle(std::string_view name);

  std::vector<sim::Node*> nodes() {
    std::vector<sim::Node*> all;
    for (auto* n : {client.get(), wallet.get(), broker.get(), mirror.get(), point.get(),
                    payment.get(), partner.get(), checkout.get(), marketplace.get(),
                    controller.get(), migrator.get(), hostile.get()}) {
      if (n != nullptr) {
        all.push_back(n);
      }
    }
    return all;
  }

  system::Client* client_service() { return dynamic_cast<system::Client*>(client->service()); }

  sim::Simulator sim;
  sim::Network net;
  system::AccountTypes types;
  system::WalletChecker checker;
  models::WalletAuditor wallet_auditor;
  // The wallet's observers: the invariant checker, then the model.
  system::LedgerObserverFanout wallet_observers;
  system::MessagingChecker messaging_checker;
  bool messaging = false;
  std::string audit_queue;        // "" when off
  std::string dead_letter_queue;  // "" when off
  int64_t poison_injected = 0;
  int64_t redriven = 0;
  system::WalletConfig wallet_config;
  system::WorkloadConfig workload;
  system::BrokerConfig broker_config;
  // The broker's reference model, made once the broker's topics and queues
  // are configured (WatchBroker), in every world with a broker.
  std::optional<models::BrokerAuditor> broker_auditor;
  system::MirrorConfig mirror_config;
  std::unique_ptr<sim::Node> client;
  std::unique_ptr<sim::Node> wallet;
  std::unique_ptr<sim::Node> broker;
  std::unique_ptr<sim::Node> mirror;
  // Payments (issue 4).
  bool payments = false;
  system::PointChecker point_checker;
  // The point ledger's reference model, and the point node's observers (the
  // invariant checker, then the model): made once the world's point
  // configuration is known (WatchPoints), with payments or the migration.
  std::optional<models::PointAuditor> point_auditor;
  std::optional<system::PointLedgerObserverFanout> point_observers;
  system::PartnerChecker partner_checker;
  // The partner's reference model: made with the payments world's partner
  // configuration (ConfigurePayments).
  std::optional<models::PartnerAuditor> partner_auditor;
  system::PaymentChecker payment_checker;
  // The payment service's reference model (issue 12), fed its audit view.
  std::optional<models::PaymentAuditor> payment_auditor;
  system::PointServiceConfig point_config;
  system::PartnerConfig partner_config;
  system::PartnerCounters partner_counters;
  system::PaymentConfig payment_config;
  system::PaymentCounters payment_counters;
  system::UpstreamConfig checkout_config;
  system::UpstreamConfig marketplace_config;
  system::UpstreamCounters checkout_counters;
  system::UpstreamCounters marketplace_counters;
  std::string assignment_queue;
  std::string assignment_dlq;
  int64_t assignment_redriven = 0;
  int64_t assignment_poison = 0;
  std::unique_ptr<sim::Node> point;
  std::unique_ptr<sim::Node> payment;
  std::unique_ptr<sim::Node> partner;
  std::unique_ptr<sim::Node> checkout;
  std::unique_ptr<sim::Node> marketplace;
  // The hostile caller (/payments/misuse_rate_per_s > 0), last of the nodes.
  system::HostileConfig hostile_config;
  system::HostileCounters hostile_counters;
  // Its check (misuse_refused_or_replayed), only when it runs.
  std::optional<system::CheckBoard> misuse_board;
  std::unique_ptr<sim::Node> hostile;
  std::unique_ptr<faults::CrashInjector> crashes;
  std::unique_ptr<faults::FaultPointInjector> fault_points;  // null: no points armed
  sim::Duration partition_time = 0;
  int64_t partitions = 0;
  int64_t clock_steps = 0;
  // The network's counters when the safety phase ended (faults still on).
  sim::NetworkCounters safety_counters;
  // Migration (issue 6).
  bool migration = false;
  system::MigrationChecker migration_checker;
  system::TypeId cashback_type = 0;
  system::CashbackWalletConfig mwallet_config;
  system::PointHomeConfig home_config;
  system::ControllerConfig controller_config;
  system::MigratorConfig migrator_config;
  system::MigratorCounters migrator_counters;
  system::ShopperConfig shopper_config;
  std::unique_ptr<models::MigrationAuditor> migration_auditor;
  std::unique_ptr<sim::Node> controller;
  std::unique_ptr<sim::Node> migrator;
  std::vector<std::unique_ptr<sim::Node>> placeholders;
  std::vector<reports::RunResult::MigrationSample> series;
  // Every queue and topic of the broker, whichever world built it.
  system::QueueChecker queue_checker;
};

// A node the migration world does not use: never started, never called.
class IdleService : public sim::Service {
 public:
  boost::asio::awaitable<void> Boot() override { co_return; }
};

void World::BuildMigration(const Scenario& s, const RunOptions& o) {
  const MigrationOptions& m = s.migration;
  const system::MigrationStrategy strategy = *ParseStrategy(m.strategy);
  const bool online = strategy == system::MigrationStrategy::kOnline;
  const bool per_user = online || strategy == system::MigrationStrategy::kGradual;
  const sim::Duration rpc = sim::FromMillis(m.rpc_timeout_ms);
  const int64_t users = s.population.users;
  cashback_type = *types.Find(m.cashback_type);
  int64_t cashback_seed = 0;
  for (const auto& [name, amount] : s.population.initial_balances) {
    if (name == m.cashback_type) {
      cashback_seed = amount;
    }
  }
  const bool dual_write = online && m.dual_write;
  const bool no_recon = o.defects.Has(system::Defect::kDualWriteWithoutReconciliation);

  mwallet_config.types = &types;
  mwallet_config.ledger = wallet_config.ledger;
  mwallet_config.users = users;
  mwallet_config.initial_balances = wallet_config.initial_balances;
  mwallet_config.cashback = cashback_type;
  mwallet_config.money = *types.Find(m.money_type);
  mwallet_config.controller = NodeIdOf("controller");
  mwallet_config.point = NodeIdOf("point");
  mwallet_config.rpc_timeout = rpc;
  mwallet_config.expiry_scan_interval = wallet_config.expiry_scan_interval;
  mwallet_config.dual_write = dual_write;
  mwallet_config.relay =
      system::RelayConfig{NodeIdOf("broker"), "wallet", sim::FromMillis(50), rpc, 200};
  mwallet_config.sweep_interval = per_user ? sim::kSecond : 0;

  const std::string topic = mwallet_config.topic;
  const std::string queue = topic + ".copies";
  broker_config.topics.push_back(system::TopicConfig{topic, 4, false});
  broker_config.queues.push_back(
      system::QueueConfig{queue, topic, sim::FromMillis(1000), 1000000, ""});

  home_config.ledger.id_worker = 1;
  home_config.ledger.hold_ttl_max = wallet_config.ledger.hold_ttl_max;
  // Every request the point ledger applies goes to its reference model too.
  home_config.ledger.audit = true;
  WatchPoints(home_config.ledger.hold_ttl_max);
  home_config.ledger.defect_id_without_system_bit =
      o.defects.Has(system::Defect::kIdWithoutSystemBit);
  home_config.users = users;
  home_config.copy_seed = dual_write ? cashback_seed : -1;
  home_config.wallet = NodeIdOf("wallet");
  home_config.controller = NodeIdOf("controller");
  home_config.rpc_timeout = rpc;
  home_config.expiry_grace = 2 * wallet_config.expiry_scan_interval;
  if (dual_write) {
    home_config.consumer = system::QueueConsumerConfig{NodeIdOf("broker"),  queue,        50,
                                                       sim::FromMillis(50), sim::kSecond, rpc};
  }
  home_config.reconcile_interval = no_recon ? 0 : sim::FromSeconds(m.reconcile_interval_s);
  home_config.reconcile_batch = m.reconcile_batch;
  home_config.defect_no_attempt_tracking = o.defects.Has(system::Defect::kNoAttemptTracking);
  home_config.defect_stale_min_no_recheck = o.defects.Has(system::Defect::kStaleMinNoRecheck);
  home_config.defect_rollback_of_committed_ok =
      o.defects.Has(system::Defect::kRollbackOfCommittedAnswersOk);
  home_config.defect_trust_copy = no_recon;
  home_config.defect_drop_expiry = o.defects.Has(system::Defect::kMigrationDropsExpiry);
  home_config.cashback_expires_after = types.Get(cashback_type).expires_after;
  home_config.ledger.audit = true;
  // Value moving between the two systems keeps its terms: the terms auditor
  // sees what both ledgers applied.
  migration_auditor = std::make_unique<models::MigrationAuditor>(
      sim, models::MigrationTermsRules{cashback_type, types.Get(cashback_type).expires_after},
      [this](const system::Violation&) { sim.Stop(); });
  wallet_observers.Add(migration_auditor.get());
  point_observers->Add(migration_auditor.get());

  controller_config.users = users;

  migrator_config.strategy = strategy;
  migrator_config.users = users;
  migrator_config.start = sim::FromSeconds(m.start_s);
  migrator_config.controller = NodeIdOf("controller");
  migrator_config.wallet = NodeIdOf("wallet");
  migrator_config.point = NodeIdOf("point");
  migrator_config.rpc_timeout = 2 * rpc;
  migrator_config.copy_per_user = sim::FromMillis(m.copy_ms_per_user);
  migrator_config.batch_size = m.batch_size;
  migrator_config.cohorts = m.cohorts;
  migrator_config.cohort_gap = sim::FromSeconds(m.cohort_gap_s);
  migrator_config.banner_lead = sim::FromSeconds(m.banner_lead_s);
  migrator_config.cohort_attempts_max = m.cohort_attempts_max;
  migrator_config.drain_timeout = sim::FromSeconds(m.drain_timeout_s);
  migrator_config.job_rate_per_s = m.job_rate_per_s;
  migrator_config.defect_no_drain = o.defects.Has(system::Defect::kNoDrainBeforeSwitch);

  const Workload& w = s.workload;
  shopper_config.operations = w.operations;
  shopper_config.rate_per_s = w.rate_per_s;
  shopper_config.users = users;
  shopper_config.mix = {m.pay, m.earn, m.topup, m.lookup};
  shopper_config.use_points_ratio = m.use_points_ratio;
  shopper_config.new_api_ratio = m.new_api_ratio;
  shopper_config.pair_ratio = m.pair_ratio;
  shopper_config.misuse_ratio = m.misuse_ratio;
  shopper_config.amount_min = w.amount_min;
  shopper_config.amount_max = w.amount_max;
  shopper_config.earn_min = m.earn_min;
  shopper_config.earn_max = m.earn_max;
  shopper_config.commit_delay_max = sim::FromSeconds(m.commit_delay_s_max);
  shopper_config.rollback_ratio = w.rollback_ratio;
  shopper_config.hold_ttl = sim::FromSeconds(w.hold_ttl_s);
  shopper_config.timeout = sim::FromMillis(w.timeout_ms);
  shopper_config.retry_count_max = static_cast<int>(w.retry_count_max);
  shopper_config.retry_backoff = sim::FromMillis(w.retry_backoff_ms);
  shopper_config.maintenance_retry = sim::FromSeconds(m.maintenance_retry_s);
  shopper_config.wallet = NodeIdOf("wallet");
  shopper_config.point = NodeIdOf("point");

  client = std::make_unique<sim::Node>(
      sim, net, NodeIdOf("client"), "client", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::Shopper>(ctx, shopper_config, &migration_checker);
      });
  wallet = std::make_unique<sim::Node>(
      sim, net, NodeIdOf("wallet"), "wallet", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::CashbackWallet>(ctx, mwallet_config, &migration_checker);
      });
  WatchBroker(o);
  broker = std::make_unique<sim::Node>(
      sim, net, NodeIdOf("broker"), "broker", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::Broker>(ctx, broker_config);
      });
  net.AddNode(client.get());
  net.AddNode(wallet.get());
  net.AddNode(broker.get());
  AddIdle("mirror");
  point = std::make_unique<sim::Node>(
      sim, net, NodeIdOf("point"), "point", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::PointHome>(ctx, home_config, &*point_observers);
      });
  net.AddNode(point.get());
  for (std::string_view name : {"payment", "partner", "checkout", "marketplace"}) {
    AddIdle(name);
  }
  controller = std::make_unique<sim::Node>(
      sim, net, NodeIdOf("controller"), "controller", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::MigrationController>(ctx, controller_config);
      });
  migrator = std::make_unique<sim::Node>(
      sim, net, NodeIdOf("migrator"), "migrator", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::Migrator>(ctx, migrator_config, &migrator_counters);
      });
  net.AddNode(controller.get());
  net.AddNode(migrator.get());
  AddIdle("hostile");
  // The migration checker sees every wallet movement first, then the
  // wallet checker.
  migration_checker.Watch([this]() -> sim::Database& { return wallet->db(); }, cashback_type,
                          &wallet_observers);
}

std::string World::MigrationNotQuiet(const Scenario* s) {
  auto* shopper = dynamic_cast<system::Shopper*>(client->service());
  if (shopper == nullptr || !shopper->done()) {
    return s == nullptr || shopper == nullptr
               ? "shopper"
               : fmt::format("{} of {} shopper operations finished", shopper->finished(),
                             s->workload.operations);
  }
  if (!system::MigrationFinished(migrator->db())) {
    return "the migrator has not finished";
  }
  const int64_t open =
      point->db().QueryInt("SELECT COUNT(*) FROM sqlite_master WHERE name = 'pays'") == 0
          ? 0
          : point->db().QueryInt("SELECT COUNT(*) FROM pays WHERE state < 3");
  if (open > 0) {
    return fmt::format("{} cross-system payments still open", open);
  }
  const int64_t unsent =
      wallet->db().QueryInt("SELECT COUNT(*) FROM migration_forwards WHERE sent = 0");
  if (unsent > 0) {
    return fmt::format("{} forwards of returned CASHBACK not yet sent", unsent);
  }
  return "";
}

void World::SampleMigration() {
  auto* shopper = dynamic_cast<system::Shopper*>(client->service());
  series.push_back(reports::RunResult::MigrationSample{
      sim::ToSeconds(sim.Now()),
      system::CountUsersIn(controller->db(), system::MigrationState::kMigrated),
      shopper == nullptr ? 0 : shopper->rejections()});
}

// Samples the migration's progress every interval until the run ends.
struct MigrationSampler {
  World* w;
  sim::Duration every;
  void operator()() const {
    w->SampleMigration();
    w->sim.ScheduleAfter(every, MigrationSampler{w, every});
  }
};

void World::CollectMigration(const Scenario& s, reports::RunResult& r) {
  const int64_t n = s.population.users;
  const sim::Time end = sim.Now();
  std::vector<sim::Time> blocked(static_cast<size_t>(n) + 1, 0);
  std::vector<sim::Time> since(static_cast<size_t>(n) + 1, 0);
  std::vector<uint8_t> state(static_cast<size_t>(n) + 1, 0);
  sim::Time full_total = 0;
  sim::Time full_since = -1;
  for (const system::StatusChange& c : system::ReadStatusLog(controller->db())) {
    if (c.lo == 0) {
      if (c.state == system::MigrationState::kMaintenance && full_since < 0) {
        full_since = c.at;
      } else if (c.state != system::MigrationState::kMaintenance && full_since >= 0) {
        full_total += c.at - full_since;
        full_since = -1;
      }
      continue;
    }
    for (int64_t u = std::max<int64_t>(1, c.lo); u <= std::min(n, c.hi); ++u) {
      const auto i = static_cast<size_t>(u);
      if (system::BlocksPoints(static_cast<system::MigrationState>(state[i]))) {
        blocked[i] += c.at - since[i];
      }
      state[i] = static_cast<uint8_t>(c.state);
      since[i] = c.at;
    }
  }
  if (full_since >= 0) {
    full_total += end - full_since;
  }
  std::vector<double> per_user;
  per_user.reserve(static_cast<size_t>(n));
  double total = 0;
  for (int64_t u = 1; u <= n; ++u) {
    const auto i = static_cast<size_t>(u);
    if (system::BlocksPoints(static_cast<system::MigrationState>(state[i]))) {
      blocked[i] += end - since[i];
    }
    const double x = sim::ToSeconds(blocked[i] + full_total);
    per_user.push_back(x);
    total += x;
  }
  std::sort(per_user.begin(), per_user.end());
  auto quantile = [&per_user](double q) {
    if (per_user.empty()) {
      return 0.0;
    }
    const auto k = static_cast<size_t>(q * static_cast<double>(per_user.size() - 1) + 0.5);
    return per_user[std::min(k, per_user.size() - 1)];
  };
  auto* shopper = dynamic_cast<system::Shopper*>(client->service());
  int64_t rejected = 0;
  int64_t failed = 0;
  int64_t pays = 0;
  if (shopper != nullptr) {
    rejected = shopper->rejections();
    for (auto o : {system::ShopOutcome::kDeclined, system::ShopOutcome::kExpired,
                   system::ShopOutcome::kFailed, system::ShopOutcome::kGaveUp}) {
      failed += shopper->count(system::ShopOp::kPay, o);
    }
    for (size_t o = 0; o < system::kShopOutcomes; ++o) {
      pays += shopper->count(system::ShopOp::kPay, static_cast<system::ShopOutcome>(o));
    }
  }
  const system::PointHomeCounters hc = system::ReadPointHomeCounters(point->db());
  int64_t money_errors = 0;
  for (const system::CheckStatus& c : migration_checker.statuses()) {
    if (c.name == "payment_money_exact" || c.name == "money_conserved_across_systems" ||
        c.name == "cutover_balance_equal" || c.name == "points_in_one_system") {
      money_errors += c.violations;
    }
  }
  const system::MigratorCounters& mc = migrator_counters;
  const double complete_s = mc.started_at >= 0 && mc.finished_at >= mc.started_at
                                ? sim::ToSeconds(mc.finished_at - mc.started_at)
                                : -1;
  r.migration = {
      {"strategy", static_cast<double>(migrator_config.strategy)},
      {"users", static_cast<double>(n)},
      {"unavailable_user_s", total},
      {"unavailable_p50_s", quantile(0.5)},
      {"unavailable_p99_s", quantile(0.99)},
      {"unavailable_max_s", per_user.empty() ? 0.0 : per_user.back()},
      {"full_maintenance_s", sim::ToSeconds(full_total)},
      {"operations_rejected", static_cast<double>(rejected)},
      {"payments", static_cast<double>(pays)},
      {"payments_failed", static_cast<double>(failed)},
      {"recon_differences", static_cast<double>(hc.recon_differences)},
      {"switch_inconsistencies", static_cast<double>(hc.switch_inconsistencies)},
      {"repairs", static_cast<double>(hc.recon_repairs + hc.switch_inconsistencies)},
      {"money_errors", static_cast<double>(money_errors)},
      {"duplicates_prevented", static_cast<double>(hc.duplicates_prevented)},
      {"proxied", static_cast<double>(hc.proxied)},
      {"cross_debits", static_cast<double>(hc.cross_debits)},
      {"refunds", static_cast<double>(hc.refunds)},
      {"forwards", static_cast<double>(hc.forwards_in)},
      {"cohorts_rolled_back", static_cast<double>(mc.cohorts_rolled_back)},
      {"drain_timeouts", static_cast<double>(mc.drain_timeouts)},
      {"time_to_complete_s", complete_s},
  };
  r.migration_series = series;
}

void World::WatchPoints(sim::Duration hold_ttl_max) {
  point_auditor.emplace(sim, models::PointRules{hold_ttl_max},
                        [this](const system::Violation&) { sim.Stop(); });
  point_observers.emplace(
      std::vector<system::PointLedgerObserver*>{&point_checker, &*point_auditor});
}

void World::WatchBroker(const RunOptions& o) {
  broker_auditor.emplace(sim,
                         models::BrokerRules{broker_config.topics, broker_config.queues,
                                             /*fan_out_follows_append=*/true},
                         [this](const system::Violation&) { sim.Stop(); });
  broker_config.audit = true;
  broker_config.observer = &*broker_auditor;
  broker_config.defect_dead_letter_early =
      o.defects.Has(system::Defect::kDeadLetterOneReceiveEarly);
}

void World::ConfigurePayments(const Scenario& s, const RunOptions& o) {
  const PaymentsOptions& p = s.payments;
  payments = true;
  const sim::NodeId broker_id = NodeIdOf("broker");
  const std::string topic(system::kPaymentTopic);
  broker_config.topics.push_back(system::TopicConfig{topic, 4, s.messaging.idempotent_producer});
  const sim::Duration visibility = sim::FromMillis(s.messaging.visibility_timeout_ms);
  // One queue per consumer of the completion notifications. The upstreams
  // leave a notification for a still-pending order on the queue, so theirs
  // keep messages for long; point assignment dead-letters what it cannot
  // apply after max_receives, for the operator to redrive.
  assignment_queue = topic + ".points";
  assignment_dlq = assignment_queue + ".dlq";
  broker_config.queues.push_back(
      system::QueueConfig{topic + ".checkout", topic, visibility, 1000, ""});
  broker_config.queues.push_back(
      system::QueueConfig{topic + ".marketplace", topic, visibility, 1000, ""});
  broker_config.queues.push_back(system::QueueConfig{assignment_queue, topic, visibility,
                                                     s.messaging.max_receives, assignment_dlq});
  broker_config.queues.push_back(system::QueueConfig{assignment_dlq, "", visibility, 0, ""});

  const sim::Duration hold_ttl = sim::FromSeconds(p.hold_ttl_s);
  point_config.users = s.population.users;
  point_config.initial_points = p.initial_points;
  point_config.lot_expiry = sim::FromSeconds(p.point_expiry_days * 86400);
  point_config.ledger.hold_ttl_max = hold_ttl;
  // Every request the point ledger applies goes to its reference model too.
  point_config.ledger.audit = true;
  WatchPoints(hold_ttl);
  point_config.ledger.id_worker = 1;
  point_config.broker = broker_id;
  point_config.queue = assignment_queue;
  point_config.receive_max = 20;
  point_config.poll_interval = sim::FromMillis(s.messaging.poll_interval_ms);
  point_config.rpc_timeout = sim::FromMillis(s.messaging.rpc_timeout_ms);
  point_config.reward_bp = p.reward_bp;
  point_config.apply_failure_rate = p.assignment_failure;

  partner_config.users = s.population.users;
  partner_config.initial_balance = p.partner_initial_balance;
  partner_config.hold_ttl_max = hold_ttl;
  partner_config.service_time_min = sim::FromMillis(p.partner_service_ms_min);
  partner_config.service_time_max = sim::FromMillis(p.partner_service_ms_max);
  partner_config.unavailable_rate = p.partner_unavailable;
  // Every request the partner applies goes to its reference model too.
  partner_config.audit = true;
  partner_config.defect_key_ignores_params =
      o.defects.Has(system::Defect::kPartnerKeyIgnoresParams);
  partner_auditor.emplace(sim, models::PartnerRulesOf(partner_config),
                          [this](const system::Violation&) { sim.Stop(); });

  hostile_config.rate_per_s = p.misuse_rate_per_s;
  hostile_config.until = sim::FromSeconds(s.duration_s);
  hostile_config.wallet = NodeIdOf("wallet");
  hostile_config.point = NodeIdOf("point");
  hostile_config.partner = NodeIdOf("partner");
  hostile_config.users = s.population.users;
  hostile_config.wallet_ttl_max = sim::FromSeconds(s.wallet.hold_ttl_max_s);
  hostile_config.point_ttl_max = hold_ttl;
  hostile_config.partner_ttl_max = hold_ttl;
  hostile_config.timeout = sim::FromMillis(p.rpc_timeout_ms);
  hostile_config.partner_timeout = sim::FromMillis(p.partner_timeout_ms);
  if (hostile_config.rate_per_s > 0) {
    misuse_board.emplace(sim, system::kHostileCheckNames,
                         [this](const system::Violation&) { sim.Stop(); });
  }

  payment_config.id_worker = 2;
  payment_config.wallet = NodeIdOf("wallet");
  payment_config.point = NodeIdOf("point");
  payment_config.partner = NodeIdOf("partner");
  payment_config.broker = broker_id;
  payment_config.rpc_timeout = sim::FromMillis(p.rpc_timeout_ms);
  payment_config.partner_timeout = sim::FromMillis(p.partner_timeout_ms);
  payment_config.worker_attempts_max = static_cast<int>(p.worker_attempts_max);
  payment_config.queue_backoff_min = sim::FromSeconds(p.queue_backoff_s_min);
  payment_config.queue_backoff_max = sim::FromSeconds(p.queue_backoff_s_max);
  payment_config.batch_interval = sim::FromSeconds(p.batch_interval_s);
  payment_config.recovery_horizon = sim::FromSeconds(p.recovery_horizon_days * 86400);
  payment_config.hold_ttl = hold_ttl;
  payment_config.fee_bp = p.fee_bp;
  payment_config.clearing_interval = sim::FromSeconds(p.clearing_interval_s);
  // Every answer and state change of the payment service goes to its model.
  payment_auditor.emplace(sim, models::PaymentRules{p.fee_bp},
                          [this](const system::Violation&) { sim.Stop(); });
  payment_config.audit = &*payment_auditor;
  payment_config.defect_fee_rounded_up = o.defects.Has(system::Defect::kFeeRoundedUp);
  payment_config.relay =
      system::RelayConfig{broker_id, "payment", sim::FromMillis(s.messaging.relay_interval_ms),
                          sim::FromMillis(s.messaging.rpc_timeout_ms), s.messaging.relay_batch_max};

  for (auto* u : {&checkout_config, &marketplace_config}) {
    u->payment = NodeIdOf("payment");
    u->broker = broker_id;
    u->users = s.population.users;
    u->amount_min = p.amount_min;
    u->amount_max = p.amount_max;
    u->void_ratio = p.void_ratio;
    u->capture_delay_min = sim::FromSeconds(p.capture_delay_s_min);
    u->capture_delay_max = sim::FromSeconds(p.capture_delay_s_max);
    u->timeout = sim::FromMillis(p.upstream_timeout_ms);
    u->retry_count_max = static_cast<int>(p.upstream_retry_count_max);
    u->poll_interval = sim::FromMillis(s.messaging.poll_interval_ms);
    u->rpc_timeout = sim::FromMillis(s.messaging.rpc_timeout_ms);
    u->misuse_ratio = p.misuse_ratio;
  }
  checkout_config.name = "checkout";
  checkout_config.notify_queue = topic + ".checkout";
  checkout_config.orders = p.charges;
  checkout_config.rate_per_s = p.charge_rate_per_s;
  checkout_config.mix = {1, 0, 0};
  checkout_config.payees = p.merchants;
  marketplace_config.name = "marketplace";
  marketplace_config.notify_queue = topic + ".marketplace";
  marketplace_config.orders = p.escrows;
  marketplace_config.rate_per_s = p.escrow_rate_per_s;
  marketplace_config.mix = {0, 1 - p.p2p_ratio, p.p2p_ratio};
  marketplace_config.payees = s.population.users;  // sellers are users
  marketplace_config.partner_ratio = p.partner_ratio;
  marketplace_config.partner_amount_max = p.partner_amount_max;
  const bool never_void = o.defects.Has(system::Defect::kUpstreamNeverVoidsOrphans);
  checkout_config.defect_never_void_orphans = never_void;
  marketplace_config.defect_never_void_orphans = never_void;
  point_config.ledger.defect_id_without_system_bit =
      o.defects.Has(system::Defect::kIdWithoutSystemBit);
  payment_config.defect_batch_skips_old_wip =
      o.defects.Has(system::Defect::kRecoveryBatchSkipsOldWip);
}

std::string World::NotQuietReason(const Scenario* s) {
  if (migration) {
    return MigrationNotQuiet(s);
  }
  system::Client* c = client_service();
  if (!c->done()) {
    return s == nullptr ? "client"
                        : fmt::format("{} of {} client operations finished", c->finished(),
                                      s->workload.operations);
  }
  if (!payments) {
    return "";
  }
  for (auto [node, counters, orders] :
       {std::tuple{checkout.get(), &checkout_counters, checkout_config.orders},
        std::tuple{marketplace.get(), &marketplace_counters, marketplace_config.orders}}) {
    auto* u = dynamic_cast<system::Upstream*>(node->service());
    if (u == nullptr || !u->done()) {
      return s == nullptr ? "upstream"
                          : fmt::format("{}: {} of {} orders final", node->name(),
                                        counters->finished, orders);
    }
  }
  const int64_t wip =
      payment->db().QueryInt("SELECT COUNT(*) FROM payments WHERE resource_status = 0");
  if (wip > 0) {
    return s == nullptr ? "payments" : fmt::format("{} payments still WIP", wip);
  }
  if (hostile_counters.running > 0) {
    return s == nullptr
               ? "hostile"
               : fmt::format("{} misuse sequences still running", hostile_counters.running);
  }
  return "";
}

std::string World::Backlog() {
  if (broker == nullptr) {
    return "";
  }
  for (sim::Node* n : {wallet.get(), payment.get()}) {
    if (n == nullptr ||
        n->db().QueryInt(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'outbox'") == 0) {
      continue;
    }
    const int64_t pending = n->db().QueryInt("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL");
    if (pending > 0) {
      return fmt::format("{} outbox rows of {} not yet published", pending, n->name());
    }
  }
  sim::Database& b = broker->db();
  if (messaging) {
    const int64_t behind = b.QueryInt(fmt::format(
        "SELECT COUNT(*) FROM (SELECT partition, MAX(offset) + 1 AS end FROM messages WHERE topic "
        "= '{}' GROUP BY partition) m LEFT JOIN group_offsets g ON g.topic = '{}' AND g.partition "
        "= m.partition AND g.grp = '{}' WHERE COALESCE(g.committed, 0) < m.end",
        system::kMovementTopic, system::kMovementTopic, mirror_config.group));
    if (behind > 0) {
      return fmt::format("the mirror is behind on {} partition(s)", behind);
    }
  }
  // Every queue a topic feeds: the ones the final check judges. Dead-letter
  // queues keep what they hold.
  for (const system::QueueConfig& q : broker_config.queues) {
    if (q.topic.empty()) {
      continue;
    }
    const std::string left = system::QueueBacklog(b, q.name);
    if (!left.empty()) {
      return fmt::format("{} in {}", left, q.name);
    }
  }
  return "";
}

std::vector<system::WatchedTopic> World::WatchedTopics() const {
  std::vector<system::WatchedTopic> out;
  for (const system::TopicConfig& t : broker_config.topics) {
    system::WatchedTopic w{t.name, nullptr, ""};
    if (t.name == system::kMovementTopic) {
      w.decodes = [](std::string_view p) {
        std::string error;
        return system::DecodeMovementEvent(p, &error).has_value();
      };
      w.group = mirror_config.group;
    } else if (t.name == system::kPaymentTopic) {
      w.decodes = [](std::string_view p) {
        std::string error;
        return system::DecodePaymentEvent(p, &error).has_value();
      };
    } else if (migration && t.name == mwallet_config.topic) {
      w.decodes = [](std::string_view p) {
        int64_t user = 0;
        int64_t balance = 0;
        uint64_t movement = 0;
        return system::DecodeCashbackChange(p, &user, &balance, &movement);
      };
    } else {
      PAYLAB_CHECK(false && "a topic the queue checker does not know");
    }
    out.push_back(std::move(w));
  }
  return out;
}

std::vector<reports::CheckResult> World::CheckResults() const {
  std::vector<reports::CheckResult> out;
  const auto add = [&out](std::span<const system::CheckStatus> board) {
    for (const system::CheckStatus& c : board) {
      out.push_back(reports::CheckResult{c.name, c.evaluations, c.violations});
    }
  };
  add(checker.statuses());
  add(wallet_auditor.statuses());
  if (payments) {
    add(point_checker.statuses());
    add(point_auditor->statuses());
    add(partner_checker.statuses());
    add(partner_auditor->statuses());
    add(payment_checker.statuses());
    add(payment_auditor->statuses());
    if (misuse_board) {
      add(misuse_board->statuses());
    }
  }
  if (migration) {
    add(point_checker.statuses());
    add(point_auditor->statuses());
    add(migration_checker.statuses());
    add(migration_auditor->statuses());
  }
  if (messaging) {
    add(messaging_checker.statuses());
  }
  if (broker != nullptr) {
    add(broker_auditor->statuses());
    add(queue_checker.statuses());
  }
  return out;
}

void World::AddPaymentNodes() {
  point = std::make_unique<sim::Node>(
      sim, net, NodeIdOf("point"), "point", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::PointService>(ctx, point_config, &*point_observers);
      });
  partner = std::make_unique<sim::Node>(
      sim, net, NodeIdOf("partner"), "partner", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::Partner>(ctx, partner_config, &partner_counters,
                                                 &*partner_auditor);
      });
  payment = std::make_unique<sim::Node>(
      sim, net, NodeIdOf("payment"), "payment", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::PaymentService>(ctx, payment_config, &payment_counters);
      });
  checkout = std::make_unique<sim::Node>(
      sim, net, NodeIdOf("checkout"), "checkout", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::Upstream>(ctx, checkout_config, &checkout_counters);
      });
  marketplace = std::make_unique<sim::Node>(
      sim, net, NodeIdOf("marketplace"), "marketplace", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::Upstream>(ctx, marketplace_config, &marketplace_counters);
      });
  // The network numbers nodes in the order they are added: kKnownNodes' order.
  for (sim::Node* n :
       {point.get(), payment.get(), partner.get(), checkout.get(), marketplace.get()}) {
    net.AddNode(n);
  }
  if (hostile_config.rate_per_s > 0) {
    // The migration's nodes come before the hostile caller: idle here.
    for (std::string_view name : {"controller", "migrator"}) {
      AddIdle(name);
    }
    hostile = std::make_unique<sim::Node>(
        sim, net, NodeIdOf("hostile"), "hostile", [this](sim::NodeContext& ctx) {
          return std::make_unique<system::Hostile>(ctx, hostile_config, &hostile_counters,
                                                   &*misuse_board);
        });
    net.AddNode(hostile.get());
  }
}

void World::AddIdle(std::string_view name) {
  auto n = std::make_unique<sim::Node>(
      sim, net, NodeIdOf(name), std::string(name),
      [](sim::NodeContext&) { return std::make_unique<IdleService>(); });
  net.AddNode(n.get());
  placeholders.push_back(std::move(n));
}

void SchedulePartitions(World& w, const Scenario& s, sim::Time safety_end) {
  for (const PartitionSpec& p : s.faults.partitions) {
    const sim::NodeId a = NodeIdOf(p.between[0]);
    const sim::NodeId b = NodeIdOf(p.between[1]);
    const sim::Time from = sim::FromSeconds(p.from_s);
    const sim::Time to = std::min(sim::FromSeconds(p.to_s), safety_end);
    if (from >= safety_end) {
      continue;  // the safety phase ends first
    }
    w.sim.ScheduleAt(from, [&w, a, b] {
      w.net.Partition(a, b);
      ++w.partitions;
    });
    w.sim.ScheduleAt(to, [&w, a, b, from, to] {
      w.net.Heal(a, b);
      w.partition_time += to - from;
    });
  }
}

void ScheduleClockSteps(World& w, const Scenario& s, sim::Time safety_end) {
  for (const ClockStepSpec& c : s.faults.schedule.clock_steps) {
    const sim::Time at = sim::FromSeconds(c.at_s);
    if (at >= safety_end) {
      continue;
    }
    sim::Node* node = &w.net.node(NodeIdOf(c.node));
    const auto step = static_cast<int64_t>(c.step_ms);
    w.sim.ScheduleAt(at, [&w, node, step] {
      node->StepClock(step);
      ++w.clock_steps;
    });
  }
}

// The operator's redrive of a dead-letter queue, retried each second while
// the broker is down.
struct Redrive {
  World* w;
  std::string dlq;
  int64_t* counter;
  void operator()() const {
    if (auto* b = dynamic_cast<system::Broker*>(w->broker->service())) {
      *counter += b->Redrive(dlq);
    } else {
      w->sim.ScheduleAfter(sim::kSecond, Redrive{w, dlq, counter});
    }
  }
};

// Poison messages at random times of the safety phase, and the operator's
// redrives of the dead-letter queues.
void ScheduleQueueActions(World& w, const Scenario& s, sim::Time safety_end) {
  if (w.payments && s.payments.assignment_redrive_at_s > 0) {
    w.sim.ScheduleAt(sim::FromSeconds(s.payments.assignment_redrive_at_s),
                     Redrive{&w, w.assignment_dlq, &w.assignment_redriven});
  }
  sim::Rng rng = w.sim.Stream("faults.poison");
  for (auto [queue, counter] : {std::pair{&w.audit_queue, &w.poison_injected},
                                std::pair{&w.assignment_queue, &w.assignment_poison}}) {
    for (int64_t i = 0; !queue->empty() && i < s.messaging.poison_messages; ++i) {
      w.sim.ScheduleAt(rng.UniformInt(0, safety_end - 1), [&w, queue, counter] {
        if (auto* b = dynamic_cast<system::Broker*>(w.broker->service())) {
          b->InjectPoison(*queue);
          ++*counter;
        }
      });
    }
  }
  if (w.audit_queue.empty()) {
    return;
  }
  if (s.messaging.redrive_at_s > 0 && !w.dead_letter_queue.empty()) {
    w.sim.ScheduleAt(sim::FromSeconds(s.messaging.redrive_at_s),
                     Redrive{&w, w.dead_letter_queue, &w.redriven});
  }
}

// The hostile caller's figures: what it sent, what it heard, and how many
// sequences of each kind it started.
void CollectMisuse(const system::HostileCounters& h,
                   std::vector<std::pair<std::string, int64_t>>& out) {
  int64_t sequences = 0;
  for (int64_t n : h.sequences) {
    sequences += n;
  }
  out.push_back({"misuse.sequences", sequences});
  out.push_back({"misuse.calls", h.calls});
  out.push_back({"misuse.accepted", h.accepted});
  out.push_back({"misuse.refused", h.refused});
  out.push_back({"misuse.unavailable", h.unavailable});
  out.push_back({"misuse.lost", h.lost});
  out.push_back({"misuse.refusals_checked", h.refusals_checked});
  out.push_back({"misuse.replays_checked", h.replays_checked});
  out.push_back({"misuse.wrong", h.wrong});
  for (size_t t = 0; t < system::kTccTargets; ++t) {
    out.push_back({fmt::format("misuse.calls_to_{}",
                               system::TccTargetName(static_cast<system::TccTarget>(t))),
                   h.calls_to[t]});
  }
  for (size_t k = 0; k < system::kHostileWays; ++k) {
    out.push_back(
        {fmt::format("misuse.{}", system::HostileWayName(static_cast<system::HostileWay>(k))),
         h.sequences[k]});
  }
}

void CollectPayments(World& w, reports::RunResult& r) {
  auto& out = r.payments;
  sim::Database& db = w.payment->db();
  out.push_back({"payments", db.QueryInt("SELECT COUNT(*) FROM payments")});
  for (int flow = 1; flow <= 3; ++flow) {
    for (int status = 1; status <= 4; ++status) {
      out.push_back(
          {fmt::format("{}.{}", system::PaymentFlowName(static_cast<system::PaymentFlow>(flow)),
                       system::PaymentStatusName(static_cast<system::PaymentStatus>(status))),
           db.QueryInt(fmt::format("SELECT COUNT(*) FROM payments WHERE flow = {} AND status = {}",
                                   flow, status))});
    }
  }
  out.push_back(
      {"funded_by_points", db.QueryInt("SELECT COUNT(*) FROM payments WHERE point_amount > 0")});
  out.push_back({"funded_by_points_and_wallet",
                 db.QueryInt("SELECT COUNT(*) FROM payments WHERE point_amount > 0 AND "
                             "wallet_amount > 0")});
  out.push_back(
      {"funded_by_partner", db.QueryInt("SELECT COUNT(*) FROM payments WHERE partner_amount > 0")});
  const system::PaymentCounters& c = w.payment_counters;
  out.push_back({"worker_retries", c.worker_retries});
  out.push_back({"queued", c.queued});
  out.push_back({"queue_resumed", c.queue_resumed});
  out.push_back({"batch_requeued", c.batch_requeued});
  out.push_back({"rollbacks", c.rollbacks});
  out.push_back({"clearing_movements", c.cleared});
  for (auto [name, u] : {std::pair{"checkout", &w.checkout_counters},
                         std::pair{"marketplace", &w.marketplace_counters}}) {
    for (size_t st = 0; st < system::kOrderStates; ++st) {
      out.push_back({fmt::format("{}.orders_{}", name,
                                 system::OrderStateName(static_cast<system::OrderState>(st))),
                     u->states[st]});
    }
    out.push_back({fmt::format("{}.create_retries", name), u->create_retries});
    out.push_back({fmt::format("{}.orphans_voided", name), u->orphans_voided});
    out.push_back({fmt::format("{}.late_successes", name), u->late_successes});
  }
  // The upstreams' misuse of the payment API (issue 12), both together.
  const system::UpstreamCounters& ck = w.checkout_counters;
  const system::UpstreamCounters& mk = w.marketplace_counters;
  out.push_back({"upstream_misuse.sent", ck.misuse_sent + mk.misuse_sent});
  out.push_back({"upstream_misuse.answered", ck.misuse_answered + mk.misuse_answered});
  out.push_back({"upstream_misuse.refused", ck.misuse_refused + mk.misuse_refused});
  out.push_back({"upstream_misuse.probes", ck.probes + mk.probes});
  const system::PointCounters pc = system::ReadPointCounters(w.point->db());
  out.push_back({"points.grants_provisional", pc.grants_provisional});
  out.push_back({"points.grants_confirmed", pc.grants_confirmed});
  out.push_back({"points.grants_revoked", pc.grants_revoked});
  out.push_back({"points.apply_failures", pc.apply_failures});
  auto* b = dynamic_cast<system::Broker*>(w.broker->service());
  out.push_back(
      {"points.dead_lettered", b == nullptr ? 0 : b->queues().DeadLettered(w.assignment_dlq)});
  out.push_back({"points.redriven", w.assignment_redriven});
  out.push_back({"points.poison_injected", w.assignment_poison});
  if (w.hostile) {
    CollectMisuse(w.hostile_counters, out);
  }
}

void CollectRealised(World& w, reports::RunResult& r) {
  using K = reports::RealisedFault::Kind;
  for (const sim::RealisedRpcFault& f : w.net.realised()) {
    reports::RealisedFault x;
    x.kind = K::kRpc;
    x.what = std::string(sim::RpcFaultKindName(f.kind));
    x.method = f.method;
    x.nth = static_cast<int64_t>(f.nth);
    x.delay_ms = static_cast<double>(f.delay) / sim::kMillisecond;
    x.reply = f.reply;
    x.at_s = sim::ToSeconds(f.at);
    r.realised.push_back(std::move(x));
  }
  for (const faults::RealisedCrash& c : w.crashes->realised()) {
    if (c.from_fault_point) {
      continue;  // recorded below, as the point that caused it
    }
    reports::RealisedFault x;
    x.kind = K::kCrash;
    x.node = std::string(kKnownNodes[c.node].name);
    x.at_s = sim::ToSeconds(c.at);
    x.downtime_s = sim::ToSeconds(c.downtime);
    r.realised.push_back(std::move(x));
  }
  if (w.fault_points) {
    for (const faults::RealisedPointFire& p : w.fault_points->realised()) {
      reports::RealisedFault x;
      x.kind = K::kFaultPoint;
      x.what = p.point;
      x.node = std::string(kKnownNodes[p.node].name);
      x.nth = p.hit;
      x.at_s = sim::ToSeconds(p.at);
      x.downtime_s = sim::ToSeconds(p.downtime);
      r.realised.push_back(std::move(x));
    }
  }
}

void Collect(World& w, reports::RunResult& r) {
  r.trace_hash = w.sim.trace().hash();
  r.trace_events = w.sim.trace().count();
  r.kernel_events = w.sim.events_fired();
  r.virtual_time_s = sim::ToSeconds(w.sim.Now());
  r.movements = w.checker.movements_seen();
  if (system::Client* c = w.client_service()) {
    r.operations_issued = c->issued();
    r.operations_finished = c->finished();
    r.retries = c->retries();
    for (size_t k = 0; k < system::kOpKinds; ++k) {
      std::vector<std::pair<std::string, int64_t>> outcomes;
      for (size_t o = 0; o < system::kOutcomes; ++o) {
        outcomes.emplace_back(
            system::OutcomeName(static_cast<system::Outcome>(o)),
            c->count(static_cast<system::OpKind>(k), static_cast<system::Outcome>(o)));
      }
      r.operations.emplace_back(system::OpKindName(static_cast<system::OpKind>(k)),
                                std::move(outcomes));
    }
  }
  const sim::NetworkCounters& n = w.net.counters();
  r.rpc_calls = static_cast<int64_t>(n.calls);
  r.faults = {
      {"drop_request", static_cast<int64_t>(n.requests_dropped)},
      {"drop_reply", static_cast<int64_t>(n.replies_dropped)},
      {"duplicate_request", static_cast<int64_t>(n.requests_duplicated)},
      {"delay", static_cast<int64_t>(n.requests_delayed)},
      {"partition", w.partitions},
      {"partition_ms", w.partition_time / sim::kMillisecond},
      {"crash", w.crashes->crashes()},
      {"fault_point", w.fault_points ? static_cast<int64_t>(w.fault_points->realised().size()) : 0},
      {"clock_step", w.clock_steps},
      {"downtime_ms", w.crashes->downtime_total() / sim::kMillisecond},
      {"lost_to_partition", static_cast<int64_t>(n.partition_drops)},
      {"lost_to_node_down", static_cast<int64_t>(n.node_down_drops)},
      {"rpc_timeouts", static_cast<int64_t>(n.timeouts)},
      {"rpc_calls_safety", static_cast<int64_t>(w.safety_counters.calls)},
      {"drop_reply_safety", static_cast<int64_t>(w.safety_counters.replies_dropped)},
  };
  for (sim::Node* node : w.nodes()) {
    r.faults.emplace_back(fmt::format("crash.{}", node->name()),
                          static_cast<int64_t>(node->crashes()));
  }
  r.checks = w.CheckResults();
  const models::WalletModelStats& ws = w.wallet_auditor.model().stats();
  r.models = {
      {"wallet.requests", ws.requests},
      {"wallet.refusals", ws.refusals},
      {"wallet.multi_account_debits", ws.multi_account_debits},
      {"wallet.multi_item_debits", ws.multi_item_debits},
      {"wallet.items_expired", ws.items_expired},
      {"wallet.holds_expired", ws.holds_expired},
      {"wallet.on_time_boundary", ws.on_time_boundary},
      {"wallet.on_amount_boundary", ws.on_amount_boundary},
  };
  if (system::Client* c = w.client_service()) {
    r.models.emplace_back("workload.aimed_at_time", c->aimed_at_time());
    r.models.emplace_back("workload.aimed_at_amount", c->aimed_at_amount());
    for (size_t k = 0; k < system::kMisuseKinds; ++k) {
      const auto kind = static_cast<system::MisuseKind>(k);
      r.models.emplace_back(fmt::format("workload.misuse.{}", system::MisuseKindName(kind)),
                            c->misuse_sent(kind));
    }
  }
  if (w.point_auditor) {
    const models::PointModelStats& ps = w.point_auditor->model().stats();
    const std::pair<std::string, int64_t> figures[] = {
        {"point.requests", ps.requests},
        {"point.refusals", ps.refusals},
        {"point.declines", ps.declines},
        {"point.multi_lot_debits", ps.multi_lot_debits},
        {"point.lots_expired", ps.lots_expired},
        {"point.holds_expired", ps.holds_expired},
        {"point.grants_provisional", ps.grants_provisional},
        {"point.grants_confirmed", ps.grants_confirmed},
        {"point.grants_revoked", ps.grants_revoked},
    };
    r.models.insert(r.models.end(), std::begin(figures), std::end(figures));
  }
  if (w.payment_auditor) {
    const models::PaymentModelStats& ms = w.payment_auditor->model().stats();
    const std::pair<std::string, int64_t> figures[] = {
        {"payment.answers", ms.answers},
        {"payment.refusals", ms.refusals},
        {"payment.in_progress", ms.in_progress},
        {"payment.conflicts", ms.conflicts},
        {"payment.unknown_keys", ms.unknown_keys},
        {"payment.created", ms.created},
        {"payment.captured", ms.captured},
        {"payment.voided", ms.voided},
        {"payment.failed", ms.failed},
        {"payment.gave_up", ms.gave_up},
        {"payment.clearings", ms.clearings},
        {"payment.credits_cleared", ms.credits_cleared},
        {"payment.fees", ms.fees},
    };
    r.models.insert(r.models.end(), std::begin(figures), std::end(figures));
  }
  if (w.broker_auditor) {
    const models::BrokerModelStats& bs = w.broker_auditor->model().stats();
    const std::pair<std::string, int64_t> figures[] = {
        {"broker.requests", bs.requests},
        {"broker.boots", bs.boots},
        {"broker.refusals", bs.refusals},
        {"broker.published", bs.published},
        {"broker.duplicates_suppressed", bs.duplicates_suppressed},
        {"broker.commits", bs.commits},
        {"broker.commits_refused", bs.commits_refused},
        {"broker.commits_behind", bs.commits_behind},
        {"broker.members_expired", bs.members_expired},
        {"broker.rebalances", bs.rebalances},
        {"broker.receives", bs.receives},
        {"broker.redeliveries", bs.redeliveries},
        {"broker.on_visibility_boundary", bs.on_visibility_boundary},
        {"broker.deleted", bs.deleted},
        {"broker.stale_receipts", bs.stale_receipts},
        {"broker.dead_lettered", bs.dead_lettered},
        {"broker.redriven", bs.redriven},
    };
    r.models.insert(r.models.end(), std::begin(figures), std::end(figures));
  }
  if (w.partner_auditor) {
    const models::PartnerModelStats& ps = w.partner_auditor->model().stats();
    const std::pair<std::string, int64_t> figures[] = {
        {"partner.requests", ps.requests},
        {"partner.refusals", ps.refusals},
        {"partner.declines", ps.declines},
        {"partner.unavailable", ps.unavailable},
        {"partner.confirms", ps.confirms},
        {"partner.cancels", ps.cancels},
        {"partner.empty_rollbacks", ps.empty_rollbacks},
        {"partner.late_tries", ps.late_tries},
        {"partner.holds_expired", ps.holds_expired},
        {"partner.on_time_boundary", ps.on_time_boundary},
    };
    r.models.insert(r.models.end(), std::begin(figures), std::end(figures));
  }
  if (w.payments) {
    CollectPayments(w, r);
  }
  if (w.migration) {
    if (auto* shopper = dynamic_cast<system::Shopper*>(w.client->service())) {
      r.operations_issued = shopper->issued();
      r.operations_finished = shopper->finished();
      r.retries = shopper->retries();
      for (size_t k = 0; k < system::kShopOps; ++k) {
        std::vector<std::pair<std::string, int64_t>> outcomes;
        for (size_t o = 0; o < system::kShopOutcomes; ++o) {
          outcomes.emplace_back(
              system::ShopOutcomeName(static_cast<system::ShopOutcome>(o)),
              shopper->count(static_cast<system::ShopOp>(k), static_cast<system::ShopOutcome>(o)));
        }
        r.operations.emplace_back(system::ShopOpName(static_cast<system::ShopOp>(k)),
                                  std::move(outcomes));
      }
      for (size_t k = 0; k < system::kShopMisuses; ++k) {
        const auto kind = static_cast<system::ShopMisuse>(k);
        r.models.emplace_back(fmt::format("shopper.misuse.{}", system::ShopMisuseName(kind)),
                              shopper->misuses(kind));
      }
    }
  }
  if (w.messaging) {
    const int64_t published = w.broker->db().QueryInt("SELECT COUNT(*) FROM messages");
    const int64_t distinct =
        w.broker->db().QueryInt("SELECT COUNT(DISTINCT payload) FROM messages");
    r.messaging = {
        {"published", published},
        {"published_twice", published - distinct},
        {"delivered", w.messaging_checker.delivered()},
        {"redelivered", w.messaging_checker.redelivered()},
        {"deduplicated", w.messaging_checker.deduplicated()},
        {"applied", w.messaging_checker.applied()},
    };
    if (!w.audit_queue.empty()) {
      auto* b = dynamic_cast<system::Broker*>(w.broker->service());
      r.messaging.push_back({"queue_applied", w.messaging_checker.queue_applied()});
      r.messaging.push_back({"queue_deduplicated", w.messaging_checker.queue_deduplicated()});
      r.messaging.push_back({"poison_injected", w.poison_injected});
      r.messaging.push_back({"poison_received", w.messaging_checker.poison_received()});
      r.messaging.push_back({"dead_lettered", w.dead_letter_queue.empty() || b == nullptr
                                                  ? 0
                                                  : b->queues().DeadLettered(w.dead_letter_queue)});
      r.messaging.push_back({"redriven", w.redriven});
      r.messaging.push_back({"queue_depth", b == nullptr ? 0 : b->queues().Depth(w.audit_queue)});
    }
  }
}

// The final checks, once the run is quiet. Each stops at a violation: what
// follows a failed check would judge a run already known to be wrong. (The
// wallet checker's CheckFinal includes wallet_no_hold_left with payments or
// the migration on.)
void CheckFinal(World& w, const Scenario& s) {
  w.checker.CheckFinal(w.wallet->db());
  if (!w.sim.stopped()) {
    w.wallet_auditor.CheckFinal(w.wallet->db());
  }
  if (w.migration && !w.sim.stopped()) {
    w.point_checker.CheckFinal(w.point->db(), w.sim.Now());
    w.point_auditor->CheckFinal(w.point->db());
    w.migration_checker.CheckFinal(
        system::MigrationDatabases{&w.wallet->db(), &w.point->db(), &w.controller->db(),
                                   &w.migrator->db()},
        s.population.users, w.cashback_type);
    if (!w.sim.stopped()) {
      w.migration_auditor->CheckFinal();
    }
  }
  if (w.messaging && !w.sim.stopped()) {
    w.messaging_checker.CheckFinal(w.wallet->db(), w.broker->db(), w.mirror->db(),
                                   system::kMovementTopic, w.audit_queue);
  }
  if (w.payments && !w.sim.stopped()) {
    w.point_checker.CheckFinal(w.point->db(), w.sim.Now());
    w.point_auditor->CheckFinal(w.point->db());
    w.partner_checker.CheckFinal(w.partner->db());
    w.partner_auditor->CheckFinal(w.partner->db());
    w.payment_checker.CheckFinal(system::PaymentDatabases{
        &w.payment->db(),
        &w.wallet->db(),
        &w.point->db(),
        &w.partner->db(),
        {{"checkout", &w.checkout->db()}, {"marketplace", &w.marketplace->db()}},
        w.hostile ? std::string(system::kHostileKeyPrefix) : ""});
    if (!w.sim.stopped()) {
      w.payment_auditor->CheckFinal(w.payment->db());
    }
  }
  if (w.broker != nullptr && !w.sim.stopped()) {
    w.broker_auditor->CheckFinal(w.broker->db());
  }
  // Last: a queue left full is often the symptom of what an earlier check
  // names more precisely (a hold never released, an order never voided).
  if (w.broker != nullptr && !w.sim.stopped()) {
    w.queue_checker.CheckFinal(w.broker->db(), w.broker_config.topics, w.broker_config.queues,
                               w.WatchedTopics());
  }
}

// The first required check `checks` does not have, as an error naming the
// scenario field.
std::optional<ScenarioError> MissingRequiredCheck(const Scenario& s,
                                                  const std::vector<reports::CheckResult>& checks) {
  for (size_t i = 0; i < s.checks.required.size(); ++i) {
    const std::string& name = s.checks.required[i];
    const bool known =
        std::any_of(checks.begin(), checks.end(),
                    [&name](const reports::CheckResult& c) { return c.name == name; });
    if (!known) {
      std::string names;
      for (const reports::CheckResult& c : checks) {
        names += (names.empty() ? "" : ", ") + c.name;
      }
      return ScenarioError{
          fmt::format("/checks/required/{}", i),
          fmt::format("this run has no check \"{}\" (with this scenario's messaging, payments "
                      "and migration settings its checks are: {})",
                      name, names)};
    }
  }
  return std::nullopt;
}

// Marks the required checks, and fails a run that otherwise passed when one
// of them was never evaluated.
void JudgeRequiredChecks(const Scenario& s, reports::RunResult& r) {
  for (reports::CheckResult& c : r.checks) {
    c.required = std::find(s.checks.required.begin(), s.checks.required.end(), c.name) !=
                 s.checks.required.end();
  }
  // A run that failed or broke stopped before its final checks: what they
  // did not evaluate says nothing more.
  if (r.violation || r.outcome == reports::RunOutcome::kInternalError) {
    return;
  }
  std::vector<std::string> unevaluated;
  for (reports::CheckResult& c : r.checks) {
    if (c.required && c.evaluations == 0) {
      ++c.violations;
      unevaluated.push_back(c.name);
    }
  }
  if (unevaluated.empty()) {
    return;
  }
  std::string detail = fmt::format("required check {} was not evaluated", unevaluated.front());
  if (unevaluated.size() > 1) {
    detail += fmt::format(" (nor were the required checks {})",
                          fmt::join(unevaluated.begin() + 1, unevaluated.end(), ", "));
  }
  r.violation = reports::ViolationInfo{unevaluated.front(), detail, r.virtual_time_s};
}

}  // namespace

std::optional<ScenarioError> RequiredCheckError(const Scenario& s) {
  if (s.checks.required.empty()) {
    return std::nullopt;
  }
  // The checks a run has depend only on which worlds the scenario builds,
  // so a world built and never started knows them.
  World w(s, RunOptions{});
  std::vector<reports::CheckResult> checks = w.CheckResults();
  checks.push_back(reports::CheckResult{"workload_completes", 0, 0});
  return MissingRequiredCheck(s, checks);
}

std::string DefectUnreachable(const Scenario& s, system::Defect defect) {
  switch (system::InfoOf(defect).needs) {
    case system::DefectNeeds::kWallet:
      return "";
    case system::DefectNeeds::kMessaging:
      return s.messaging.enabled ? ""
                                 : "the scenario has messaging off (/messaging/enabled), and "
                                   "this defect lives in messaging";
    case system::DefectNeeds::kPayments:
      return s.payments.enabled ? ""
                                : "the scenario has payments off (/payments/enabled), and this "
                                  "defect lives in payments";
    case system::DefectNeeds::kMigration:
      return s.migration.enabled ? ""
                                 : "the scenario has the migration off (/migration/enabled), and "
                                   "this defect lives in the migration";
  }
  return "";
}

namespace {

// Who ran what, filled in before the run starts.
void Describe(const Scenario& s, const RunOptions& o, reports::RunResult& r) {
  r.swarm = o.swarm;
  if (o.swarm) {
    r.swarm_faults = SwarmDraw(s).dump();
  }
  r.scenario_name = s.name;
  r.scenario_file = o.scenario_file;
  r.seed = o.seed;
  for (const system::DefectInfo& d : system::DefectCatalogue()) {
    if (o.defects.Has(d.defect)) {
      r.defects.emplace_back(d.name);
    }
  }
  r.operations_planned = s.workload.operations;
}

// Starts every node the world has, the harness's jobs and the faults.
void Start(World& w, const Scenario& s, const RunOptions& o, sim::Time safety_end) {
  SchedulePartitions(w, s, safety_end);
  ScheduleClockSteps(w, s, safety_end);
  ScheduleQueueActions(w, s, safety_end);
  if (o.fail_internally_at_s >= 0) {
    // TEST ONLY: the error a failed PAYLAB_CHECK raises, from inside the
    // simulation, so a test can see what an internal error leaves behind.
    w.sim.ScheduleAt(sim::FromSeconds(o.fail_internally_at_s), [at = o.fail_internally_at_s] {
      throw sim::CheckFailure(fmt::format(
          "internal error injected at t={:.3f} s (TEST ONLY: RunOptions::fail_internally_at_s)",
          at));
    });
  }
  if (w.messaging) {
    w.broker->Start();
    w.mirror->Start();
  }
  w.wallet->Start();
  if (w.payments) {
    for (sim::Node* n :
         {w.point.get(), w.partner.get(), w.payment.get(), w.checkout.get(), w.marketplace.get()}) {
      n->Start();
    }
    if (w.hostile) {
      w.hostile->Start();
    }
  }
  if (w.migration) {
    for (sim::Node* n : {w.broker.get(), w.point.get(), w.controller.get(), w.migrator.get()}) {
      n->Start();
    }
    const sim::Duration every = sim::FromSeconds(s.migration.sample_interval_s);
    w.sim.ScheduleAt(0, MigrationSampler{&w, every});
  }
  w.client->Start();
  w.crashes->Start();
}

// How long the liveness phase may last before the workload must be done.
sim::Duration LivenessBound(const World& w, const Scenario& s) {
  double workload_s = static_cast<double>(s.workload.operations) / s.workload.rate_per_s;
  double recovery_s = 0;
  if (w.payments) {
    const PaymentsOptions& p = s.payments;
    workload_s =
        std::max({workload_s, p.charges / p.charge_rate_per_s, p.escrows / p.escrow_rate_per_s});
    // Every layer gets its time: the queue's longest backoff, then the
    // batch, twice over.
    recovery_s = 2 * (p.queue_backoff_s_max + p.batch_interval_s) + p.capture_delay_s_max;
  }
  if (w.migration) {
    const MigrationOptions& m = s.migration;
    const double users = static_cast<double>(s.population.users);
    recovery_s = m.start_s + 2 * users * m.copy_ms_per_user / 1000 + 2 * users / m.job_rate_per_s +
                 static_cast<double>(m.cohorts * m.cohort_attempts_max) *
                     (m.cohort_gap_s + m.drain_timeout_s + m.banner_lead_s) +
                 m.maintenance_retry_s * 20;
  }
  return sim::FromSeconds(2 * workload_s + recovery_s + 600);
}

// The liveness phase: heal everything, let the workload finish (or fail
// workload_completes), then settle and let messaging drain.
void RunLiveness(World& w, const Scenario& s, sim::Time safety_end, reports::RunResult& r,
                 reports::CheckResult& completes) {
  w.net.SetFaults(sim::NetworkFaults{});
  w.net.SetRpcSchedule({});
  w.net.HealAll();
  if (w.fault_points) {
    w.fault_points->Heal();
  }
  w.crashes->Heal();
  const sim::Time bound = safety_end + LivenessBound(w, s);
  while (!w.sim.stopped() && w.sim.Now() < bound && !w.Quiet()) {
    w.sim.Run(std::min(bound, w.sim.Now() + sim::kSecond));
  }
  ++completes.evaluations;
  if (!w.sim.stopped() && !w.Quiet()) {
    ++completes.violations;
    r.violation =
        reports::ViolationInfo{"workload_completes",
                               fmt::format("not quiet by t={:.3f} s, with every fault healed: {}",
                                           sim::ToSeconds(w.sim.Now()), w.NotQuietReason(&s)),
                               sim::ToSeconds(w.sim.Now())};
  }
  if (!w.sim.stopped() && !r.violation) {
    w.sim.Run(w.sim.Now() + sim::FromSeconds(s.settle_s));
    // Then let messaging drain what the background jobs made meanwhile,
    // bounded; what is still in flight then is the final checks' to judge.
    const sim::Time drain_bound = w.sim.Now() + sim::FromSeconds(60);
    while (!w.sim.stopped() && w.sim.Now() < drain_bound && !w.Backlog().empty()) {
      w.sim.Run(std::min(drain_bound, w.sim.Now() + 100 * sim::kMillisecond));
    }
  }
}

// The result: the figures, every check, and the first violation of all.
void Conclude(World& w, const Scenario& s, const RunOptions& o,
              const reports::CheckResult& completes, reports::RunResult& r) {
  Collect(w, r);
  if (w.migration) {
    w.SampleMigration();
    w.CollectMigration(s, r);
  }
  if (o.record_faults) {
    CollectRealised(w, r);
  }
  r.checks.push_back(completes);
  const std::optional<system::Violation> none;
  for (const auto* v : {&w.checker.first_violation(), &w.wallet_auditor.first_violation(),
                        &w.messaging_checker.first_violation(), &w.point_checker.first_violation(),
                        w.point_auditor ? &w.point_auditor->first_violation() : &none,
                        &w.partner_checker.first_violation(),
                        w.partner_auditor ? &w.partner_auditor->first_violation() : &none,
                        w.misuse_board ? &w.misuse_board->first_violation() : &none,
                        &w.payment_checker.first_violation(),
                        &w.migration_checker.first_violation(), &w.queue_checker.first_violation(),
                        w.migration_auditor ? &w.migration_auditor->first_violation() : &none,
                        w.payment_auditor ? &w.payment_auditor->first_violation() : &none,
                        w.broker_auditor ? &w.broker_auditor->first_violation() : &none}) {
    if (*v && (!r.violation || sim::ToSeconds((*v)->at) < r.violation->at_s)) {
      r.violation = reports::ViolationInfo{(*v)->check, (*v)->detail, sim::ToSeconds((*v)->at)};
    }
  }
  JudgeRequiredChecks(s, r);
  if (r.violation) {
    r.outcome = reports::RunOutcome::kCheckFailed;
  }
}

// Runs the world through both phases and the final checks. Throws on an
// internal error (a failed assertion, a constraint a bug violated).
void RunWorld(World& w, const Scenario& s, const RunOptions& o, reports::RunResult& r) {
  const sim::Time safety_end = sim::FromSeconds(s.duration_s);
  Start(w, s, o, safety_end);
  w.sim.Run(safety_end);
  w.safety_counters = w.net.counters();
  reports::CheckResult completes{"workload_completes", 0, 0};
  if (!w.sim.stopped()) {
    RunLiveness(w, s, safety_end, r, completes);
  }
  // A check stopped the simulation at its violation, or the workload did
  // not finish: the databases are as they stood then, not settled.
  r.stopped_early = w.sim.stopped() || r.violation.has_value();
  if (!r.stopped_early) {
    CheckFinal(w, s);
  }
  Conclude(w, s, o, completes, r);
}

// Where a run that ended in an internal error stood, for the reports.
void RecordInterruption(World& w, reports::RunResult& r) {
  r.trace_hash = w.sim.trace().hash();
  r.trace_events = w.sim.trace().count();
  r.kernel_events = w.sim.events_fired();
  r.virtual_time_s = sim::ToSeconds(w.sim.Now());
}

// Writes every node's database into `out_dir` as it stands (committed
// transactions only, as a crash would leave it), whatever way the run
// ended. A file that cannot be written makes the run an internal error
// naming it; this never throws.
void BackUpDatabases(World& w, const std::string& out_dir, reports::RunResult& r) {
  std::vector<std::string> errors;
  for (sim::Node* node : w.nodes()) {
    const std::string name = node->name() + ".db";
    const std::string path = (std::filesystem::path(out_dir) / name).string();
    std::string err;
    try {
      if (node->db().InTransaction()) {
        node->db().Rollback();  // an internal error left it open mid-way
      }
      err = node->db().Backup(path);
    } catch (const std::exception& e) {
      err = fmt::format("cannot back up {}: {}", path, e.what());
    }
    if (!err.empty()) {
      errors.push_back(std::move(err));
      continue;
    }
    r.artifacts.push_back(path);
    r.databases.push_back(name);
  }
  for (const std::string& err : errors) {
    r.internal_error += r.internal_error.empty() ? err : "; and " + err;
    r.outcome = reports::RunOutcome::kInternalError;
  }
}

// Writes run.json (reports/README.md) into `out_dir`; a file that cannot be
// written makes the run an internal error naming it.
void WriteRunRecord(const std::string& out_dir, reports::RunResult& r) {
  const std::filesystem::path path = std::filesystem::path(out_dir) / "run.json";
  const std::string err = reports::WriteFileAtomic(path, reports::RunJson(r).dump(2) + "\n");
  if (!err.empty()) {
    r.internal_error += r.internal_error.empty() ? err : "; and " + err;
    r.outcome = reports::RunOutcome::kInternalError;
    return;
  }
  r.artifacts.push_back(path.string());
}

}  // namespace

reports::RunResult RunScenario(const Scenario& configured, const RunOptions& o) {
  const auto wall_start = std::chrono::steady_clock::now();
  reports::RunResult r;
  Scenario s = o.swarm ? Swarm(configured, o.seed) : configured;
  Describe(s, o, r);
  std::unique_ptr<World> world;
  if (!o.strategy.empty() && (!ParseStrategy(o.strategy) || !s.migration.enabled)) {
    r.outcome = reports::RunOutcome::kInternalError;
    r.internal_error =
        fmt::format("strategy {} asked of a run whose scenario {}", o.strategy,
                    s.migration.enabled ? "knows no such strategy" : "has the migration off");
    r.stopped_early = true;
  } else {
    if (!o.strategy.empty()) {
      s.migration.strategy = o.strategy;
      r.strategy_override = o.strategy;
    }
    try {
      // The world outlives this block: an internal error still leaves its
      // databases to back up.
      world = std::make_unique<World>(s, o);
      std::vector<reports::CheckResult> planned = world->CheckResults();
      planned.push_back(reports::CheckResult{"workload_completes", 0, 0});
      if (std::optional<ScenarioError> e = MissingRequiredCheck(s, planned)) {
        r.outcome = reports::RunOutcome::kInternalError;
        r.internal_error = fmt::format("{}: {}", e->pointer, e->reason);
        r.stopped_early = true;
        world.reset();  // it never ran: no databases to show
      } else if (!o.trace_path.empty() && !world->sim.trace().OpenSink(o.trace_path)) {
        r.outcome = reports::RunOutcome::kInternalError;
        r.internal_error = fmt::format("cannot write the trace file {}", o.trace_path);
        r.stopped_early = true;
        world.reset();  // it never ran: no databases to show
      } else {
        if (!o.trace_path.empty()) {
          r.artifacts.push_back(o.trace_path);
        }
        RunWorld(*world, s, o, r);
      }
    } catch (const std::exception& e) {
      // A failed PAYLAB_CHECK or another bug: report it with the seed.
      r.outcome = reports::RunOutcome::kInternalError;
      r.internal_error = e.what();
      r.stopped_early = true;
      if (world) {
        RecordInterruption(*world, r);
      }
    }
  }
  if (world && !o.out_dir.empty()) {
    BackUpDatabases(*world, o.out_dir, r);
  }
  world.reset();
  if (!o.out_dir.empty()) {
    WriteRunRecord(o.out_dir, r);
  }
  r.wall_time_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return r;
}

}  // namespace paylab::scenarios
