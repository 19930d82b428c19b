#include "harness/worlds/worlds.h"

#include <fmt/format.h>

#include <algorithm>
#include <tuple>

#include "sim/check.h"
#include "system/points/payment_event.h"

namespace paylab::scenarios {

PaymentsWorld::PaymentsWorld(const Scenario& s, const RunOptions& o)
    : MessagingWorld(s, o),
      point_checks_(sim, StopOnViolation()),
      partner_checker_(sim, StopOnViolation()),
      payment_checker_(sim, StopOnViolation()) {}

PaymentsWorld::~PaymentsWorld() { ShutdownNodes(); }

void PaymentsWorld::Configure(const Scenario& s, const RunOptions& o) {
  MessagingWorld::Configure(s, o);
  PAYLAB_CHECK(s.payments.enabled);
  ConfigureTopic(s);
  ConfigurePoints(s, o);
  ConfigurePartner(s, o);
  ConfigureHostile(s);
  ConfigurePaymentService(s, o);
  ConfigureUpstreams(s, o);
}

void PaymentsWorld::ConfigureTopic(const Scenario& s) {
  const std::string topic(system::kPaymentTopic);
  system::BrokerConfig& bc = broker_.config;
  bc.topics.push_back(system::TopicConfig{
      topic, static_cast<int32_t>(s.payments.topic_partitions), s.messaging.idempotent_producer});
  const sim::Duration visibility = sim::FromMillis(s.messaging.visibility_timeout_ms);
  // One queue per consumer of the completion notifications. The upstreams
  // leave a notification for a still-pending order on the queue, so theirs
  // keep messages for long; point assignment dead-letters what it cannot
  // apply after max_receives, for the operator to redrive.
  assignment_queue_ = topic + ".points";
  assignment_dlq_ = assignment_queue_ + ".dlq";
  bc.queues.push_back(system::QueueConfig{topic + ".checkout", topic, visibility, 1000, ""});
  bc.queues.push_back(system::QueueConfig{topic + ".marketplace", topic, visibility, 1000, ""});
  bc.queues.push_back(system::QueueConfig{assignment_queue_, topic, visibility,
                                          s.messaging.max_receives, assignment_dlq_});
  bc.queues.push_back(system::QueueConfig{assignment_dlq_, "", visibility, 0, ""});
}

void PaymentsWorld::ConfigurePoints(const Scenario& s, const RunOptions& o) {
  const PaymentsOptions& p = s.payments;
  const sim::Duration hold_ttl = sim::FromSeconds(p.hold_ttl_s);
  point_config_.users = s.population.users;
  point_config_.initial_points = p.initial_points;
  point_config_.lot_expiry = sim::FromSeconds(p.point_expiry_days * 86400);
  point_config_.ledger.hold_ttl_max = hold_ttl;
  // Every request the point ledger applies goes to its reference model too.
  point_config_.ledger.audit = true;
  point_checks_.Watch(sim, hold_ttl, StopOnViolation());
  point_config_.ledger.id_worker = 1;
  point_config_.broker = NodeIdOf("broker");
  point_config_.queue = assignment_queue_;
  point_config_.receive_max = 20;
  point_config_.poll_interval = sim::FromMillis(s.messaging.poll_interval_ms);
  point_config_.rpc_timeout = sim::FromMillis(s.messaging.rpc_timeout_ms);
  point_config_.reward_bp = p.reward_bp;
  point_config_.apply_failure_rate = p.assignment_failure;
  point_config_.ledger.defect_id_without_system_bit =
      o.defects.Has(system::Defect::kIdWithoutSystemBit);
}

void PaymentsWorld::ConfigurePartner(const Scenario& s, const RunOptions& o) {
  const PaymentsOptions& p = s.payments;
  partner_config_.users = s.population.users;
  partner_config_.initial_balance = p.partner_initial_balance;
  partner_config_.hold_ttl_max = sim::FromSeconds(p.hold_ttl_s);
  partner_config_.service_time_min = sim::FromMillis(p.partner_service_ms_min);
  partner_config_.service_time_max = sim::FromMillis(p.partner_service_ms_max);
  partner_config_.unavailable_rate = p.partner_unavailable;
  // Every request the partner applies goes to its reference model too.
  partner_config_.audit = true;
  partner_config_.defect_key_ignores_params =
      o.defects.Has(system::Defect::kPartnerKeyIgnoresParams);
  partner_auditor_.emplace(sim, models::PartnerRulesOf(partner_config_), StopOnViolation());
}

void PaymentsWorld::ConfigureHostile(const Scenario& s) {
  const PaymentsOptions& p = s.payments;
  const sim::Duration hold_ttl = sim::FromSeconds(p.hold_ttl_s);
  hostile_config_.rate_per_s = p.misuse_rate_per_s;
  hostile_config_.until = sim::FromSeconds(s.duration_s);
  hostile_config_.wallet = NodeIdOf("wallet");
  hostile_config_.point = NodeIdOf("point");
  hostile_config_.partner = NodeIdOf("partner");
  hostile_config_.users = s.population.users;
  hostile_config_.wallet_ttl_max = sim::FromSeconds(s.wallet.hold_ttl_max_s);
  hostile_config_.point_ttl_max = hold_ttl;
  hostile_config_.partner_ttl_max = hold_ttl;
  hostile_config_.timeout = sim::FromMillis(p.rpc_timeout_ms);
  hostile_config_.partner_timeout = sim::FromMillis(p.partner_timeout_ms);
  if (hostile_config_.rate_per_s > 0) {
    misuse_board_.emplace(sim, system::kHostileCheckNames, StopOnViolation());
  }
}

void PaymentsWorld::ConfigurePaymentService(const Scenario& s, const RunOptions& o) {
  const PaymentsOptions& p = s.payments;
  const sim::NodeId broker_id = NodeIdOf("broker");
  payment_config_.id_worker = 2;
  payment_config_.wallet = NodeIdOf("wallet");
  payment_config_.point = NodeIdOf("point");
  payment_config_.partner = NodeIdOf("partner");
  payment_config_.broker = broker_id;
  payment_config_.rpc_timeout = sim::FromMillis(p.rpc_timeout_ms);
  payment_config_.partner_timeout = sim::FromMillis(p.partner_timeout_ms);
  payment_config_.worker_attempts_max = static_cast<int>(p.worker_attempts_max);
  payment_config_.queue_backoff_min = sim::FromSeconds(p.queue_backoff_s_min);
  payment_config_.queue_backoff_max = sim::FromSeconds(p.queue_backoff_s_max);
  payment_config_.batch_interval = sim::FromSeconds(p.batch_interval_s);
  payment_config_.recovery_horizon = sim::FromSeconds(p.recovery_horizon_days * 86400);
  payment_config_.hold_ttl = sim::FromSeconds(p.hold_ttl_s);
  payment_config_.fee_bp = p.fee_bp;
  payment_config_.clearing_interval = sim::FromSeconds(p.clearing_interval_s);
  // Every answer and state change of the payment service goes to its model.
  payment_auditor_.emplace(sim, models::PaymentRules{p.fee_bp}, StopOnViolation());
  payment_config_.audit = &*payment_auditor_;
  payment_config_.defect_fee_rounded_up = o.defects.Has(system::Defect::kFeeRoundedUp);
  payment_config_.defect_batch_skips_old_wip =
      o.defects.Has(system::Defect::kRecoveryBatchSkipsOldWip);
  payment_config_.relay =
      system::RelayConfig{broker_id, "payment", sim::FromMillis(s.messaging.relay_interval_ms),
                          sim::FromMillis(s.messaging.rpc_timeout_ms), s.messaging.relay_batch_max};
}

void PaymentsWorld::ConfigureUpstreams(const Scenario& s, const RunOptions& o) {
  const PaymentsOptions& p = s.payments;
  const std::string topic(system::kPaymentTopic);
  const bool never_void = o.defects.Has(system::Defect::kUpstreamNeverVoidsOrphans);
  for (auto* u : {&checkout_config_, &marketplace_config_}) {
    u->payment = NodeIdOf("payment");
    u->broker = NodeIdOf("broker");
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
    u->defect_never_void_orphans = never_void;
  }
  checkout_config_.name = "checkout";
  checkout_config_.notify_queue = topic + ".checkout";
  checkout_config_.orders = p.charges;
  checkout_config_.rate_per_s = p.charge_rate_per_s;
  checkout_config_.mix = {1, 0, 0};
  checkout_config_.payees = p.merchants;
  marketplace_config_.name = "marketplace";
  marketplace_config_.notify_queue = topic + ".marketplace";
  marketplace_config_.orders = p.escrows;
  marketplace_config_.rate_per_s = p.escrow_rate_per_s;
  marketplace_config_.mix = {0, 1 - p.p2p_ratio, p.p2p_ratio};
  marketplace_config_.payees = s.population.users;  // sellers are users
  marketplace_config_.partner_ratio = p.partner_ratio;
  marketplace_config_.partner_amount_max = p.partner_amount_max;
}

void PaymentsWorld::AddNodes(const RunOptions& o) {
  MessagingWorld::AddNodes(o);
  point_ = std::make_unique<ServiceNode<system::PointService>>(
      sim, net, "point", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::PointService>(ctx, point_config_,
                                                      &*point_checks_.observers);
      });
  payment_ = std::make_unique<ServiceNode<system::PaymentService>>(
      sim, net, "payment", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::PaymentService>(ctx, payment_config_, &payment_counters_);
      });
  partner_ = std::make_unique<ServiceNode<system::Partner>>(
      sim, net, "partner", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::Partner>(ctx, partner_config_, &partner_counters_,
                                                 &*partner_auditor_);
      });
  checkout_ = std::make_unique<ServiceNode<system::Upstream>>(
      sim, net, "checkout", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::Upstream>(ctx, checkout_config_, &checkout_counters_);
      });
  marketplace_ = std::make_unique<ServiceNode<system::Upstream>>(
      sim, net, "marketplace", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::Upstream>(ctx, marketplace_config_,
                                                  &marketplace_counters_);
      });
  for (sim::Node* n : {&point_->node(), &payment_->node(), &partner_->node(), &checkout_->node(),
                       &marketplace_->node()}) {
    AddNode(*n);
  }
  if (hostile_config_.rate_per_s > 0) {
    // The migration's nodes come before the hostile caller: idle here.
    AddIdle("controller");
    AddIdle("migrator");
    hostile_ = std::make_unique<ServiceNode<system::Hostile>>(
        sim, net, "hostile", [this](sim::NodeContext& ctx) {
          return std::make_unique<system::Hostile>(ctx, hostile_config_, &hostile_counters_,
                                                   &*misuse_board_);
        });
    AddNode(hostile_->node());
  }
}

void PaymentsWorld::ScheduleOperatorActions(const Scenario& s, sim::Time safety_end) {
  if (s.payments.assignment_redrive_at_s > 0) {
    sim.ScheduleAt(sim::FromSeconds(s.payments.assignment_redrive_at_s),
                   Redrive{&sim, &broker_, assignment_dlq_, &assignment_redriven_});
  }
  // One stream for every queue's poison, the audit queue's drawn first.
  sim::Rng rng = sim.Stream("faults.poison");
  SchedulePoison(rng, audit_queue_, s.messaging.poison_messages, &poison_injected_, safety_end);
  SchedulePoison(rng, assignment_queue_, s.messaging.poison_messages, &assignment_poison_,
                 safety_end);
  if (!audit_queue_.empty()) {
    ScheduleAuditRedrive(s);
  }
}

void PaymentsWorld::StartNodes(const Scenario& s) {
  broker_.node->node().Start();
  mirror_->node().Start();
  wallet_->node().Start();
  for (sim::Node* n : {&point_->node(), &partner_->node(), &payment_->node(), &checkout_->node(),
                       &marketplace_->node()}) {
    n->Start();
  }
  if (hostile_) {
    hostile_->node().Start();
  }
  client_->node().Start();
}

std::string PaymentsWorld::PaymentsNotQuiet(const Scenario* s) {
  for (auto [node, counters, orders] :
       {std::tuple{checkout_.get(), &checkout_counters_, checkout_config_.orders},
        std::tuple{marketplace_.get(), &marketplace_counters_, marketplace_config_.orders}}) {
    system::Upstream* u = node->service();
    if (u == nullptr || !u->done()) {
      return s == nullptr ? "upstream"
                          : fmt::format("{}: {} of {} orders final", node->node().name(),
                                        counters->finished, orders);
    }
  }
  const int64_t wip =
      payment_->node().db().QueryInt("SELECT COUNT(*) FROM payments WHERE resource_status = 0");
  if (wip > 0) {
    return s == nullptr ? "payments" : fmt::format("{} payments still WIP", wip);
  }
  if (hostile_counters_.running > 0) {
    return s == nullptr
               ? "hostile"
               : fmt::format("{} misuse sequences still running", hostile_counters_.running);
  }
  return "";
}

std::string PaymentsWorld::NotQuietReason(const Scenario* s) {
  std::string client = ClientNotDone(s);
  return client.empty() ? PaymentsNotQuiet(s) : client;
}

std::string PaymentsWorld::Backlog() {
  return BrokerBacklog(broker_, {&wallet_->node(), &payment_->node()}, &mirror_config_.group);
}

sim::Duration PaymentsWorld::LivenessBound(const Scenario& s) const {
  const PaymentsOptions& p = s.payments;
  const double workload_s =
      std::max({static_cast<double>(s.workload.operations) / s.workload.rate_per_s,
                p.charges / p.charge_rate_per_s, p.escrows / p.escrow_rate_per_s});
  // Every layer gets its time: the queue's longest backoff, then the batch,
  // twice over.
  const double recovery_s =
      2 * (p.queue_backoff_s_max + p.batch_interval_s) + p.capture_delay_s_max;
  return sim::FromSeconds(2 * workload_s + recovery_s + 600);
}

void PaymentsWorld::CheckFinal(const Scenario& s) {
  wallet_checks_.CheckFinal(sim, wallet_->node().db());
  CheckMirrorFinal();
  if (!sim.stopped()) {
    point_checks_.CheckFinal(point_->node().db(), sim.Now());
    partner_checker_.CheckFinal(partner_->node().db());
    partner_auditor_->CheckFinal(partner_->node().db());
    payment_checker_.CheckFinal(system::PaymentDatabases{
        &payment_->node().db(),
        &wallet_->node().db(),
        &point_->node().db(),
        &partner_->node().db(),
        {{"checkout", &checkout_->node().db()}, {"marketplace", &marketplace_->node().db()}},
        hostile_ ? std::string(system::kHostileKeyPrefix) : ""});
    if (!sim.stopped()) {
      payment_auditor_->CheckFinal(payment_->node().db());
    }
  }
  broker_.CheckFinal(sim, WatchedTopics());
}

std::vector<reports::CheckResult> PaymentsWorld::CheckResults() const {
  std::vector<reports::CheckResult> out;
  wallet_checks_.AppendResults(out);
  point_checks_.AppendResults(out);
  AppendStatuses(partner_checker_.statuses(), out);
  AppendStatuses(partner_auditor_->statuses(), out);
  AppendStatuses(payment_checker_.statuses(), out);
  AppendStatuses(payment_auditor_->statuses(), out);
  if (misuse_board_) {
    AppendStatuses(misuse_board_->statuses(), out);
  }
  AppendStatuses(messaging_checker_.statuses(), out);
  broker_.AppendResults(out);
  return out;
}

std::vector<const std::optional<system::Violation>*> PaymentsWorld::FirstViolations() const {
  std::vector<const std::optional<system::Violation>*> out = {
      &wallet_checks_.checker.first_violation(), &wallet_checks_.auditor.first_violation(),
      &messaging_checker_.first_violation(),     &point_checks_.checker.first_violation(),
      &point_checks_.auditor->first_violation(), &partner_checker_.first_violation(),
      &partner_auditor_->first_violation()};
  if (misuse_board_) {
    out.push_back(&misuse_board_->first_violation());
  }
  for (const auto* v :
       {&payment_checker_.first_violation(), &broker_.queue_checker.first_violation(),
        &payment_auditor_->first_violation(), &broker_.auditor->first_violation()}) {
    out.push_back(v);
  }
  return out;
}

namespace {

void AppendPaymentModelFigures(const models::PaymentAuditor& auditor, reports::RunResult& r) {
  const models::PaymentModelStats& ms = auditor.model().stats();
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

void AppendPartnerModelFigures(const models::PartnerAuditor& auditor, reports::RunResult& r) {
  const models::PartnerModelStats& ps = auditor.model().stats();
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

// The hostile caller's figures: what it sent, what it heard, and how many
// sequences of each kind it started.
void AppendMisuseFigures(const system::HostileCounters& h,
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

}  // namespace

void PaymentsWorld::CollectPaymentFigures(reports::RunResult& r) {
  auto& out = r.payments;
  sim::Database& db = payment_->node().db();
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
  const system::PaymentCounters& c = payment_counters_;
  out.push_back({"worker_retries", c.worker_retries});
  out.push_back({"queued", c.queued});
  out.push_back({"queue_resumed", c.queue_resumed});
  out.push_back({"batch_requeued", c.batch_requeued});
  out.push_back({"rollbacks", c.rollbacks});
  out.push_back({"clearing_movements", c.cleared});
  CollectUpstreamFigures(r);
  const system::PointCounters pc = system::ReadPointCounters(point_->node().db());
  out.push_back({"points.grants_provisional", pc.grants_provisional});
  out.push_back({"points.grants_confirmed", pc.grants_confirmed});
  out.push_back({"points.grants_revoked", pc.grants_revoked});
  out.push_back({"points.apply_failures", pc.apply_failures});
  system::Broker* b = broker_.service();
  out.push_back(
      {"points.dead_lettered", b == nullptr ? 0 : b->queues().DeadLettered(assignment_dlq_)});
  out.push_back({"points.redriven", assignment_redriven_});
  out.push_back({"points.poison_injected", assignment_poison_});
  if (hostile_) {
    AppendMisuseFigures(hostile_counters_, out);
  }
}

void PaymentsWorld::CollectUpstreamFigures(reports::RunResult& r) {
  auto& out = r.payments;
  for (auto [name, u] : {std::pair{"checkout", &checkout_counters_},
                         std::pair{"marketplace", &marketplace_counters_}}) {
    for (size_t st = 0; st < system::kOrderStates; ++st) {
      out.push_back({fmt::format("{}.orders_{}", name,
                                 system::OrderStateName(static_cast<system::OrderState>(st))),
                     u->states[st]});
    }
    out.push_back({fmt::format("{}.create_retries", name), u->create_retries});
    out.push_back({fmt::format("{}.orphans_voided", name), u->orphans_voided});
    out.push_back({fmt::format("{}.late_successes", name), u->late_successes});
  }
  // The upstreams' misuse of the payment API, both together.
  const system::UpstreamCounters& ck = checkout_counters_;
  const system::UpstreamCounters& mk = marketplace_counters_;
  out.push_back({"upstream_misuse.sent", ck.misuse_sent + mk.misuse_sent});
  out.push_back({"upstream_misuse.answered", ck.misuse_answered + mk.misuse_answered});
  out.push_back({"upstream_misuse.refused", ck.misuse_refused + mk.misuse_refused});
  out.push_back({"upstream_misuse.probes", ck.probes + mk.probes});
}

void PaymentsWorld::CollectFigures(const Scenario& s, reports::RunResult& r) {
  CollectClientOperations(r);
  wallet_checks_.AppendModelFigures(r);
  AppendClientModelFigures(r);
  point_checks_.AppendModelFigures(r);
  AppendPaymentModelFigures(*payment_auditor_, r);
  broker_.AppendModelFigures(r);
  AppendPartnerModelFigures(*partner_auditor_, r);
  CollectPaymentFigures(r);
  CollectMessagingFigures(r);
}

}  // namespace paylab::scenarios
