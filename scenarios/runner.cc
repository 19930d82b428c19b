// Implementation of the runner (see runner.h).
#include "scenarios/runner.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <memory>

#include "faults/crash_injector.h"
#include "sim/context.h"
#include "sim/network.h"
#include "sim/node.h"
#include "sim/simulator.h"
#include "system/account_types.h"
#include "system/broker.h"
#include "system/client.h"
#include "system/messaging_checker.h"
#include "system/mirror.h"
#include "system/wallet.h"
#include "system/wallet_checker.h"

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
        checker(sim, types, [this](const system::Violation&) { sim.Stop(); }),
        messaging_checker(sim, [this](const system::Violation&) { sim.Stop(); }) {
    wallet_config.types = &types;
    wallet_config.ledger.hold_ttl_max = sim::FromSeconds(s.wallet.hold_ttl_max_s);
    wallet_config.ledger.defect_credit_without_debit = o.defect_credit_without_debit;
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

    const sim::NodeId wallet_id = NodeIdOf("wallet");
    const MessagingOptions& m = s.messaging;
    messaging = m.enabled;
    if (messaging) {
      wallet_config.ledger.publish_events = !o.defect_publish_outside_outbox;
      wallet_config.defect_publish_outside_outbox = o.defect_publish_outside_outbox;
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
      mirror_config.defect_no_dedup = o.defect_consumer_without_dedup;
    }
    client = std::make_unique<sim::Node>(
        sim, net, NodeIdOf("client"), "client", [this, wallet_id](sim::NodeContext& ctx) {
          return std::make_unique<system::Client>(ctx, workload, wallet_id, &checker);
        });
    wallet =
        std::make_unique<sim::Node>(sim, net, wallet_id, "wallet", [this](sim::NodeContext& ctx) {
          return std::make_unique<system::Wallet>(ctx, wallet_config, &checker);
        });
    net.AddNode(client.get());
    net.AddNode(wallet.get());
    if (messaging) {
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
    std::vector<std::string> names;
    for (const KnownNode& n : kKnownNodes) {
      names.emplace_back(n.name);
    }
    sim.trace().SetNodeNames(std::move(names));

    const Faults& f = s.faults;
    net.SetFaults(sim::NetworkFaults{f.drop_request, f.drop_reply, f.duplicate_request, f.delay,
                                     sim::FromMillis(f.delay_ms_max)});
    std::vector<faults::CrashPlan> plans;
    for (const CrashSpec& c : f.crashes) {
      sim::Node* node = &net.node(NodeIdOf(c.node));
      plans.push_back(faults::CrashPlan{node, sim::FromSeconds(c.mean_interval_s),
                                        sim::FromSeconds(c.downtime_s_min),
                                        sim::FromSeconds(c.downtime_s_max)});
    }
    crashes = std::make_unique<faults::CrashInjector>(sim, std::move(plans));
  }

  ~World() {
    // End every coroutine while all they reference is alive.
    for (sim::Node* n : nodes()) {
      n->Shutdown();
    }
  }

  std::vector<sim::Node*> nodes() {
    std::vector<sim::Node*> all;
    for (auto* n : {client.get(), wallet.get(), broker.get(), mirror.get()}) {
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
  system::MessagingChecker messaging_checker;
  bool messaging = false;
  std::string audit_queue;        // "" when off
  std::string dead_letter_queue;  // "" when off
  int64_t poison_injected = 0;
  int64_t redriven = 0;
  system::WalletConfig wallet_config;
  system::WorkloadConfig workload;
  system::BrokerConfig broker_config;
  system::MirrorConfig mirror_config;
  std::unique_ptr<sim::Node> client;
  std::unique_ptr<sim::Node> wallet;
  std::unique_ptr<sim::Node> broker;
  std::unique_ptr<sim::Node> mirror;
  std::unique_ptr<faults::CrashInjector> crashes;
  sim::Duration partition_time = 0;
  int64_t partitions = 0;
};

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

// Poison messages at random times of the safety phase, and the operator's
// redrive of the dead-letter queue.
void ScheduleQueueActions(World& w, const Scenario& s, sim::Time safety_end) {
  if (w.audit_queue.empty()) {
    return;
  }
  sim::Rng rng = w.sim.Stream("faults.poison");
  for (int64_t i = 0; i < s.messaging.poison_messages; ++i) {
    w.sim.ScheduleAt(rng.UniformInt(0, safety_end - 1), [&w] {
      if (auto* b = dynamic_cast<system::Broker*>(w.broker->service())) {
        b->InjectPoison(w.audit_queue);
        ++w.poison_injected;
      }
    });
  }
  if (s.messaging.redrive_at_s > 0 && !w.dead_letter_queue.empty()) {
    // Retried each second while the broker is down.
    struct Redrive {
      World* w;
      void operator()() const {
        if (auto* b = dynamic_cast<system::Broker*>(w->broker->service())) {
          w->redriven += b->Redrive(w->dead_letter_queue);
        } else {
          w->sim.ScheduleAfter(sim::kSecond, Redrive{w});
        }
      }
    };
    w.sim.ScheduleAt(sim::FromSeconds(s.messaging.redrive_at_s), Redrive{&w});
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
      {"downtime_ms", w.crashes->downtime_total() / sim::kMillisecond},
      {"lost_to_partition", static_cast<int64_t>(n.partition_drops)},
      {"lost_to_node_down", static_cast<int64_t>(n.node_down_drops)},
      {"rpc_timeouts", static_cast<int64_t>(n.timeouts)},
  };
  for (sim::Node* node : w.nodes()) {
    r.faults.emplace_back(fmt::format("crash.{}", node->name()),
                          static_cast<int64_t>(node->crashes()));
  }
  for (const system::CheckStatus& c : w.checker.statuses()) {
    r.checks.push_back(reports::CheckResult{c.name, c.evaluations, c.violations});
  }
  if (w.messaging) {
    for (const system::CheckStatus& c : w.messaging_checker.statuses()) {
      r.checks.push_back(reports::CheckResult{c.name, c.evaluations, c.violations});
    }
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

}  // namespace

reports::RunResult RunScenario(const Scenario& s, const RunOptions& o) {
  const auto wall_start = std::chrono::steady_clock::now();
  reports::RunResult r;
  r.scenario_name = s.name;
  r.scenario_file = o.scenario_file;
  r.seed = o.seed;
  if (o.defect_credit_without_debit) {
    r.defects.emplace_back(std::string_view("credit_without_debit"));
  }
  if (o.defect_consumer_without_dedup) {
    r.defects.emplace_back(std::string_view("consumer_without_dedup"));
  }
  if (o.defect_publish_outside_outbox) {
    r.defects.emplace_back(std::string_view("publish_outside_outbox"));
  }
  r.operations_planned = s.workload.operations;
  reports::CheckResult completes{"workload_completes", 0, 0};
  try {
    World w(s, o);
    if (!o.trace_path.empty()) {
      if (!w.sim.trace().OpenSink(o.trace_path)) {
        r.outcome = reports::RunOutcome::kInternalError;
        r.internal_error = fmt::format("cannot write the trace file {}", o.trace_path);
        return r;
      }
      r.artifacts.push_back(o.trace_path);
    }
    const sim::Time safety_end = sim::FromSeconds(s.duration_s);
    SchedulePartitions(w, s, safety_end);
    ScheduleQueueActions(w, s, safety_end);
    if (w.messaging) {
      w.broker->Start();
      w.mirror->Start();
    }
    w.wallet->Start();
    w.client->Start();
    w.crashes->Start();

    // Safety phase.
    w.sim.Run(safety_end);

    // Liveness phase: heal everything, let the workload finish, then settle.
    if (!w.sim.stopped()) {
      w.net.SetFaults(sim::NetworkFaults{});
      w.net.HealAll();
      w.crashes->Heal();
      const double workload_s = static_cast<double>(s.workload.operations) / s.workload.rate_per_s;
      const sim::Time bound = safety_end + sim::FromSeconds(2 * workload_s + 600);
      while (!w.sim.stopped() && w.sim.Now() < bound && !w.client_service()->done()) {
        w.sim.Run(std::min(bound, w.sim.Now() + sim::kSecond));
      }
      ++completes.evaluations;
      if (!w.sim.stopped() && !w.client_service()->done()) {
        ++completes.violations;
        r.violation = reports::ViolationInfo{
            "workload_completes",
            fmt::format("{} of {} operations finished by t={:.3f} s, with every fault healed",
                        w.client_service()->finished(), s.workload.operations,
                        sim::ToSeconds(w.sim.Now())),
            sim::ToSeconds(w.sim.Now())};
      }
      if (!w.sim.stopped() && !r.violation) {
        w.sim.Run(w.sim.Now() + sim::FromSeconds(s.settle_s));
      }
    }
    if (!w.sim.stopped() && !r.violation) {
      w.checker.CheckFinal(w.wallet->db());
    }
    if (w.messaging && !w.sim.stopped() && !r.violation) {
      w.messaging_checker.CheckFinal(w.wallet->db(), w.broker->db(), w.mirror->db(),
                                     system::kMovementTopic, w.audit_queue, w.dead_letter_queue);
    }
    Collect(w, r);
    r.checks.push_back(completes);
    for (const auto* v : {&w.checker.first_violation(), &w.messaging_checker.first_violation()}) {
      if (*v && (!r.violation || sim::ToSeconds((*v)->at) < r.violation->at_s)) {
        r.violation = reports::ViolationInfo{(*v)->check, (*v)->detail, sim::ToSeconds((*v)->at)};
      }
    }
    if (r.violation) {
      r.outcome = reports::RunOutcome::kCheckFailed;
    }
    if (!o.out_dir.empty()) {
      for (sim::Node* node : w.nodes()) {
        const std::string path =
            (std::filesystem::path(o.out_dir) / (node->name() + ".db")).string();
        const std::string err = node->db().Backup(path);
        if (!err.empty()) {
          r.outcome = reports::RunOutcome::kInternalError;
          r.internal_error = err;
        } else {
          r.artifacts.push_back(path);
        }
      }
    }
  } catch (const std::exception& e) {
    // A failed PAYLAB_CHECK or another bug: report it with the seed.
    r.outcome = reports::RunOutcome::kInternalError;
    r.internal_error = e.what();
  }
  r.wall_time_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return r;
}

}  // namespace paylab::scenarios
