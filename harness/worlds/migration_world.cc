#include "harness/worlds/worlds.h"

#include <fmt/format.h>

#include <algorithm>

#include "sim/check.h"

namespace paylab::scenarios {

MigrationWorld::MigrationWorld(const Scenario& s, const RunOptions& o)
    : World(s, o),
      wallet_checks_(sim, s, StopOnViolation()),
      broker_(sim, StopOnViolation()),
      point_checks_(sim, StopOnViolation()),
      migration_checker_(sim, StopOnViolation()) {}

MigrationWorld::~MigrationWorld() { ShutdownNodes(); }

void MigrationWorld::Configure(const Scenario& s, const RunOptions& o) {
  PAYLAB_CHECK(s.migration.enabled);
  strategy_ = *ParseStrategy(s.migration.strategy);
  cashback_type_ = *wallet_checks_.types.Find(s.migration.cashback_type);
  ConfigureWallet(s, o);
  ConfigurePointHome(s, o);
  // Value moving between the two systems keeps its terms: the terms auditor
  // sees what both ledgers applied.
  migration_auditor_ = std::make_unique<models::MigrationAuditor>(
      sim,
      models::MigrationTermsRules{cashback_type_,
                                  wallet_checks_.types.Get(cashback_type_).expires_after},
      StopOnViolation());
  wallet_checks_.observers.Add(migration_auditor_.get());
  point_checks_.observers->Add(migration_auditor_.get());
  controller_config_.users = s.population.users;
  ConfigureMigrator(s, o);
  ConfigureShopper(s);
}

void MigrationWorld::ConfigureWallet(const Scenario& s, const RunOptions& o) {
  const MigrationOptions& m = s.migration;
  const bool per_user = strategy_ == system::MigrationStrategy::kOnline ||
                        strategy_ == system::MigrationStrategy::kGradual;
  const sim::Duration rpc = sim::FromMillis(m.rpc_timeout_ms);
  const system::WalletConfig base = WalletConfigOf(s, o, wallet_checks_.types);
  wallet_config_.types = &wallet_checks_.types;
  wallet_config_.ledger = base.ledger;
  wallet_config_.users = s.population.users;
  wallet_config_.initial_balances = base.initial_balances;
  wallet_config_.cashback = cashback_type_;
  wallet_config_.money = *wallet_checks_.types.Find(m.money_type);
  wallet_config_.controller = NodeIdOf("controller");
  wallet_config_.point = NodeIdOf("point");
  wallet_config_.rpc_timeout = rpc;
  wallet_config_.expiry_scan_interval = base.expiry_scan_interval;
  wallet_config_.dual_write = strategy_ == system::MigrationStrategy::kOnline && m.dual_write;
  wallet_config_.relay =
      system::RelayConfig{NodeIdOf("broker"), "wallet", sim::FromMillis(50), rpc, 200};
  wallet_config_.sweep_interval = per_user ? sim::kSecond : 0;
  // The dual-write's copies: the wallet publishes each CASHBACK change, the
  // point home consumes them through a queue.
  const std::string topic = wallet_config_.topic;
  copies_queue_ = topic + ".copies";
  broker_.config.topics.push_back(system::TopicConfig{topic, 4, false});
  broker_.config.queues.push_back(
      system::QueueConfig{copies_queue_, topic, sim::FromMillis(1000), 1000000, ""});
}

void MigrationWorld::ConfigurePointHome(const Scenario& s, const RunOptions& o) {
  using system::Defect;
  const MigrationOptions& m = s.migration;
  const sim::Duration rpc = sim::FromMillis(m.rpc_timeout_ms);
  const bool no_recon = o.defects.Has(Defect::kDualWriteWithoutReconciliation);
  int64_t cashback_seed = 0;
  for (const auto& [name, amount] : s.population.initial_balances) {
    if (name == m.cashback_type) {
      cashback_seed = amount;
    }
  }
  home_config_.ledger.id_worker = 1;
  home_config_.ledger.hold_ttl_max = wallet_config_.ledger.hold_ttl_max;
  // Every request the point ledger applies goes to its reference model too.
  home_config_.ledger.audit = true;
  point_checks_.Watch(sim, home_config_.ledger.hold_ttl_max, StopOnViolation());
  home_config_.ledger.defect_id_without_system_bit = o.defects.Has(Defect::kIdWithoutSystemBit);
  home_config_.users = s.population.users;
  home_config_.copy_seed = wallet_config_.dual_write ? cashback_seed : -1;
  home_config_.wallet = NodeIdOf("wallet");
  home_config_.controller = NodeIdOf("controller");
  home_config_.rpc_timeout = rpc;
  home_config_.expiry_grace = 2 * wallet_config_.expiry_scan_interval;
  if (wallet_config_.dual_write) {
    home_config_.consumer = system::QueueConsumerConfig{
        NodeIdOf("broker"), copies_queue_, 50, sim::FromMillis(50), sim::kSecond, rpc};
  }
  home_config_.reconcile_interval = no_recon ? 0 : sim::FromSeconds(m.reconcile_interval_s);
  home_config_.reconcile_batch = m.reconcile_batch;
  home_config_.defect_no_attempt_tracking = o.defects.Has(Defect::kNoAttemptTracking);
  home_config_.defect_stale_min_no_recheck = o.defects.Has(Defect::kStaleMinNoRecheck);
  home_config_.defect_rollback_of_committed_ok =
      o.defects.Has(Defect::kRollbackOfCommittedAnswersOk);
  home_config_.defect_trust_copy = no_recon;
  home_config_.defect_drop_expiry = o.defects.Has(Defect::kMigrationDropsExpiry);
  home_config_.cashback_expires_after = wallet_checks_.types.Get(cashback_type_).expires_after;
}

void MigrationWorld::ConfigureMigrator(const Scenario& s, const RunOptions& o) {
  const MigrationOptions& m = s.migration;
  migrator_config_.strategy = strategy_;
  migrator_config_.users = s.population.users;
  migrator_config_.start = sim::FromSeconds(m.start_s);
  migrator_config_.controller = NodeIdOf("controller");
  migrator_config_.wallet = NodeIdOf("wallet");
  migrator_config_.point = NodeIdOf("point");
  migrator_config_.rpc_timeout = 2 * sim::FromMillis(m.rpc_timeout_ms);
  migrator_config_.copy_per_user = sim::FromMillis(m.copy_ms_per_user);
  migrator_config_.batch_size = m.batch_size;
  migrator_config_.cohorts = m.cohorts;
  migrator_config_.cohort_gap = sim::FromSeconds(m.cohort_gap_s);
  migrator_config_.banner_lead = sim::FromSeconds(m.banner_lead_s);
  migrator_config_.cohort_attempts_max = m.cohort_attempts_max;
  migrator_config_.drain_timeout = sim::FromSeconds(m.drain_timeout_s);
  migrator_config_.job_rate_per_s = m.job_rate_per_s;
  migrator_config_.defect_no_drain = o.defects.Has(system::Defect::kNoDrainBeforeSwitch);
}

void MigrationWorld::ConfigureShopper(const Scenario& s) {
  const MigrationOptions& m = s.migration;
  const Workload& w = s.workload;
  shopper_config_.operations = w.operations;
  shopper_config_.rate_per_s = w.rate_per_s;
  shopper_config_.users = s.population.users;
  shopper_config_.mix = {m.pay, m.earn, m.topup, m.lookup};
  shopper_config_.use_points_ratio = m.use_points_ratio;
  shopper_config_.new_api_ratio = m.new_api_ratio;
  shopper_config_.pair_ratio = m.pair_ratio;
  shopper_config_.misuse_ratio = m.misuse_ratio;
  shopper_config_.amount_min = w.amount_min;
  shopper_config_.amount_max = w.amount_max;
  shopper_config_.earn_min = m.earn_min;
  shopper_config_.earn_max = m.earn_max;
  shopper_config_.commit_delay_max = sim::FromSeconds(m.commit_delay_s_max);
  shopper_config_.rollback_ratio = w.rollback_ratio;
  shopper_config_.hold_ttl = sim::FromSeconds(w.hold_ttl_s);
  shopper_config_.timeout = sim::FromMillis(w.timeout_ms);
  shopper_config_.retry_count_max = static_cast<int>(w.retry_count_max);
  shopper_config_.retry_backoff = sim::FromMillis(w.retry_backoff_ms);
  shopper_config_.maintenance_retry = sim::FromSeconds(m.maintenance_retry_s);
  shopper_config_.wallet = NodeIdOf("wallet");
  shopper_config_.point = NodeIdOf("point");
}

void MigrationWorld::AddNodes(const RunOptions& o) {
  shopper_ = std::make_unique<ServiceNode<system::Shopper>>(
      sim, net, "client", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::Shopper>(ctx, shopper_config_, &migration_checker_);
      });
  wallet_ = std::make_unique<ServiceNode<system::CashbackWallet>>(
      sim, net, "wallet", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::CashbackWallet>(ctx, wallet_config_, &migration_checker_);
      });
  broker_.Watch(sim, o, StopOnViolation());
  broker_.MakeNode(sim, net);
  AddNode(shopper_->node());
  AddNode(wallet_->node());
  AddNode(broker_.node->node());
  AddIdle("mirror");
  point_ = std::make_unique<ServiceNode<system::PointHome>>(
      sim, net, "point", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::PointHome>(ctx, home_config_, &*point_checks_.observers);
      });
  AddNode(point_->node());
  for (std::string_view name : {"payment", "partner", "checkout", "marketplace"}) {
    AddIdle(name);
  }
  controller_ = std::make_unique<ServiceNode<system::MigrationController>>(
      sim, net, "controller", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::MigrationController>(ctx, controller_config_);
      });
  migrator_ = std::make_unique<ServiceNode<system::Migrator>>(
      sim, net, "migrator", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::Migrator>(ctx, migrator_config_, &migrator_counters_);
      });
  AddNode(controller_->node());
  AddNode(migrator_->node());
  AddIdle("hostile");
  // The migration checker sees every wallet movement first, then the
  // wallet's own checks.
  migration_checker_.Watch([this]() -> sim::Database& { return wallet_->node().db(); },
                           cashback_type_, &wallet_checks_.observers);
}

void MigrationWorld::Sample() {
  system::Shopper* shopper = shopper_->service();
  series_.push_back(reports::RunResult::MigrationSample{
      sim::ToSeconds(sim.Now()),
      system::CountUsersIn(controller_->node().db(), system::MigrationState::kMigrated),
      shopper == nullptr ? 0 : shopper->rejections()});
}

void MigrationWorld::SampleEvery(sim::Duration every) {
  Sample();
  sim.ScheduleAfter(every, [this, every] { SampleEvery(every); });
}

void MigrationWorld::StartNodes(const Scenario& s) {
  wallet_->node().Start();
  for (sim::Node* n :
       {&broker_.node->node(), &point_->node(), &controller_->node(), &migrator_->node()}) {
    n->Start();
  }
  const sim::Duration every = sim::FromSeconds(s.migration.sample_interval_s);
  sim.ScheduleAt(0, [this, every] { SampleEvery(every); });
  shopper_->node().Start();
}

std::string MigrationWorld::NotQuietReason(const Scenario* s) {
  system::Shopper* shopper = shopper_->service();
  if (shopper == nullptr || !shopper->done()) {
    return s == nullptr || shopper == nullptr
               ? "shopper"
               : fmt::format("{} of {} shopper operations finished", shopper->finished(),
                             s->workload.operations);
  }
  if (!system::MigrationFinished(migrator_->node().db())) {
    return "the migrator has not finished";
  }
  sim::Database& point_db = point_->node().db();
  const int64_t open =
      point_db.QueryInt("SELECT COUNT(*) FROM sqlite_master WHERE name = 'pays'") == 0
          ? 0
          : point_db.QueryInt("SELECT COUNT(*) FROM pays WHERE state < 3");
  if (open > 0) {
    return fmt::format("{} cross-system payments still open", open);
  }
  const int64_t unsent =
      wallet_->node().db().QueryInt("SELECT COUNT(*) FROM migration_forwards WHERE sent = 0");
  if (unsent > 0) {
    return fmt::format("{} forwards of returned CASHBACK not yet sent", unsent);
  }
  return "";
}

std::string MigrationWorld::Backlog() { return BrokerBacklog(broker_, {&wallet_->node()}, nullptr); }

sim::Duration MigrationWorld::LivenessBound(const Scenario& s) const {
  const MigrationOptions& m = s.migration;
  const double workload_s = static_cast<double>(s.workload.operations) / s.workload.rate_per_s;
  const double users = static_cast<double>(s.population.users);
  const double recovery_s =
      m.start_s + 2 * users * m.copy_ms_per_user / 1000 + 2 * users / m.job_rate_per_s +
      static_cast<double>(m.cohorts * m.cohort_attempts_max) *
          (m.cohort_gap_s + m.drain_timeout_s + m.banner_lead_s) +
      m.maintenance_retry_s * 20;
  return sim::FromSeconds(2 * workload_s + recovery_s + 600);
}

void MigrationWorld::CheckFinal(const Scenario& s) {
  wallet_checks_.CheckFinal(sim, wallet_->node().db());
  if (!sim.stopped()) {
    point_checks_.CheckFinal(point_->node().db(), sim.Now());
    migration_checker_.CheckFinal(
        system::MigrationDatabases{&wallet_->node().db(), &point_->node().db(),
                                   &controller_->node().db(), &migrator_->node().db()},
        s.population.users, cashback_type_);
    if (!sim.stopped()) {
      migration_auditor_->CheckFinal();
    }
  }
  broker_.CheckFinal(sim, WatchedTopicsOf(broker_.config, "", wallet_config_.topic));
}

std::vector<reports::CheckResult> MigrationWorld::CheckResults() const {
  std::vector<reports::CheckResult> out;
  wallet_checks_.AppendResults(out);
  point_checks_.AppendResults(out);
  AppendStatuses(migration_checker_.statuses(), out);
  AppendStatuses(migration_auditor_->statuses(), out);
  broker_.AppendResults(out);
  return out;
}

std::vector<const std::optional<system::Violation>*> MigrationWorld::FirstViolations() const {
  return {&wallet_checks_.checker.first_violation(), &wallet_checks_.auditor.first_violation(),
          &point_checks_.checker.first_violation(),  &point_checks_.auditor->first_violation(),
          &migration_checker_.first_violation(),     &broker_.queue_checker.first_violation(),
          &migration_auditor_->first_violation(),    &broker_.auditor->first_violation()};
}

void MigrationWorld::CollectShopperFigures(reports::RunResult& r) {
  system::Shopper* shopper = shopper_->service();
  if (shopper == nullptr) {
    return;
  }
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

void MigrationWorld::CollectFigures(const Scenario& s, reports::RunResult& r) {
  wallet_checks_.AppendModelFigures(r);
  point_checks_.AppendModelFigures(r);
  broker_.AppendModelFigures(r);
  CollectShopperFigures(r);
  Sample();
  CollectMigrationFigures(s, r);
}

namespace {

// Seconds each user (1..users) could not use points, from the controller's
// status log: the time spent in a state that blocks points, plus every
// full-maintenance window. Sorted; and the full-maintenance total.
struct Unavailability {
  std::vector<double> per_user;
  double total_s = 0;
  sim::Duration full_maintenance = 0;
};

Unavailability UnavailabilityOf(const std::vector<system::StatusChange>& log, int64_t n,
                                sim::Time end) {
  std::vector<sim::Time> blocked(static_cast<size_t>(n) + 1, 0);
  std::vector<sim::Time> since(static_cast<size_t>(n) + 1, 0);
  std::vector<uint8_t> state(static_cast<size_t>(n) + 1, 0);
  Unavailability u;
  sim::Time full_since = -1;
  for (const system::StatusChange& c : log) {
    if (c.lo == 0) {
      if (c.state == system::MigrationState::kMaintenance && full_since < 0) {
        full_since = c.at;
      } else if (c.state != system::MigrationState::kMaintenance && full_since >= 0) {
        u.full_maintenance += c.at - full_since;
        full_since = -1;
      }
      continue;
    }
    for (int64_t user = std::max<int64_t>(1, c.lo); user <= std::min(n, c.hi); ++user) {
      const auto i = static_cast<size_t>(user);
      if (system::BlocksPoints(static_cast<system::MigrationState>(state[i]))) {
        blocked[i] += c.at - since[i];
      }
      state[i] = static_cast<uint8_t>(c.state);
      since[i] = c.at;
    }
  }
  if (full_since >= 0) {
    u.full_maintenance += end - full_since;
  }
  u.per_user.reserve(static_cast<size_t>(n));
  for (int64_t user = 1; user <= n; ++user) {
    const auto i = static_cast<size_t>(user);
    if (system::BlocksPoints(static_cast<system::MigrationState>(state[i]))) {
      blocked[i] += end - since[i];
    }
    const double x = sim::ToSeconds(blocked[i] + u.full_maintenance);
    u.per_user.push_back(x);
    u.total_s += x;
  }
  std::sort(u.per_user.begin(), u.per_user.end());
  return u;
}

double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) {
    return 0.0;
  }
  const auto k = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(k, sorted.size() - 1)];
}

}  // namespace

void MigrationWorld::CollectMigrationFigures(const Scenario& s, reports::RunResult& r) {
  const int64_t n = s.population.users;
  const Unavailability u =
      UnavailabilityOf(system::ReadStatusLog(controller_->node().db()), n, sim.Now());
  int64_t rejected = 0;
  int64_t failed = 0;
  int64_t pays = 0;
  if (system::Shopper* shopper = shopper_->service()) {
    rejected = shopper->rejections();
    for (auto o : {system::ShopOutcome::kDeclined, system::ShopOutcome::kExpired,
                   system::ShopOutcome::kFailed, system::ShopOutcome::kGaveUp}) {
      failed += shopper->count(system::ShopOp::kPay, o);
    }
    for (size_t o = 0; o < system::kShopOutcomes; ++o) {
      pays += shopper->count(system::ShopOp::kPay, static_cast<system::ShopOutcome>(o));
    }
  }
  const system::PointHomeCounters hc = system::ReadPointHomeCounters(point_->node().db());
  int64_t money_errors = 0;
  for (const system::CheckStatus& c : migration_checker_.statuses()) {
    if (c.name == "payment_money_exact" || c.name == "money_conserved_across_systems" ||
        c.name == "cutover_balance_equal" || c.name == "points_in_one_system") {
      money_errors += c.violations;
    }
  }
  const system::MigratorCounters& mc = migrator_counters_;
  const double complete_s = mc.started_at >= 0 && mc.finished_at >= mc.started_at
                                ? sim::ToSeconds(mc.finished_at - mc.started_at)
                                : -1;
  r.migration = {
      {"strategy", static_cast<double>(migrator_config_.strategy)},
      {"users", static_cast<double>(n)},
      {"unavailable_user_s", u.total_s},
      {"unavailable_p50_s", Quantile(u.per_user, 0.5)},
      {"unavailable_p99_s", Quantile(u.per_user, 0.99)},
      {"unavailable_max_s", u.per_user.empty() ? 0.0 : u.per_user.back()},
      {"full_maintenance_s", sim::ToSeconds(u.full_maintenance)},
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
  r.migration_series = series_;
}

}  // namespace paylab::scenarios
