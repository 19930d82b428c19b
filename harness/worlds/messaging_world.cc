#include "harness/worlds/worlds.h"

#include <fmt/format.h>

#include "sim/check.h"
#include "system/wallet/movement_event.h"

namespace paylab::scenarios {

MessagingWorld::MessagingWorld(const Scenario& s, const RunOptions& o)
    : WalletWorld(s, o),
      messaging_checker_(sim, StopOnViolation()),
      broker_(sim, StopOnViolation()) {}

MessagingWorld::~MessagingWorld() { ShutdownNodes(); }

void MessagingWorld::Configure(const Scenario& s, const RunOptions& o) {
  WalletWorld::Configure(s, o);
  const MessagingOptions& m = s.messaging;
  PAYLAB_CHECK(m.enabled);
  const bool outside = o.defects.Has(system::Defect::kPublishOutsideOutbox);
  wallet_config_.ledger.publish_events = !outside;
  wallet_config_.defect_publish_outside_outbox = outside;
  wallet_config_.broker = NodeIdOf("broker");
  wallet_config_.relay_interval = sim::FromMillis(m.relay_interval_ms);
  wallet_config_.relay_batch_max = m.relay_batch_max;
  wallet_config_.relay_timeout = sim::FromMillis(m.rpc_timeout_ms);
  system::BrokerConfig& bc = broker_.config;
  bc.topics.push_back(system::TopicConfig{std::string(system::kMovementTopic),
                                          static_cast<int32_t>(m.partitions),
                                          m.idempotent_producer});
  bc.session_timeout = sim::FromMillis(m.session_timeout_ms);
  bc.duplicate_delivery = m.duplicate_delivery;
  if (m.audit_queue) {
    audit_queue_ = fmt::format("{}.audit", system::kMovementTopic);
    if (m.dead_letter_queue) {
      dead_letter_queue_ = fmt::format("{}.dlq", audit_queue_);
    }
    bc.queues.push_back(system::QueueConfig{audit_queue_, std::string(system::kMovementTopic),
                                            sim::FromMillis(m.visibility_timeout_ms),
                                            m.max_receives, dead_letter_queue_});
    if (!dead_letter_queue_.empty()) {
      bc.queues.push_back(system::QueueConfig{
          dead_letter_queue_, "", sim::FromMillis(m.visibility_timeout_ms), 0, ""});
    }
    mirror_config_.audit_queue = audit_queue_;
  }
  mirror_config_.broker = NodeIdOf("broker");
  mirror_config_.members = m.consumer_members;
  mirror_config_.poll_interval = sim::FromMillis(m.poll_interval_ms);
  mirror_config_.rpc_timeout = sim::FromMillis(m.rpc_timeout_ms);
  mirror_config_.fetch_max = m.fetch_max;
  mirror_config_.defect_no_dedup = o.defects.Has(system::Defect::kConsumerWithoutDedup);
}

void MessagingWorld::AddBrokerAndMirror(const RunOptions& o) {
  broker_.Watch(sim, o, StopOnViolation());
  broker_.MakeNode(sim, net);
  mirror_ = std::make_unique<ServiceNode<system::Mirror>>(
      sim, net, "mirror", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::Mirror>(ctx, mirror_config_, &messaging_checker_);
      });
  AddNode(broker_.node->node());
  AddNode(mirror_->node());
}

void MessagingWorld::AddNodes(const RunOptions& o) {
  WalletWorld::AddNodes(o);
  AddBrokerAndMirror(o);
}

void MessagingWorld::SchedulePoison(sim::Rng& rng, const std::string& queue, int64_t count,
                                    int64_t* injected, sim::Time safety_end) {
  for (int64_t i = 0; !queue.empty() && i < count; ++i) {
    sim.ScheduleAt(rng.UniformInt(0, safety_end - 1), [this, &queue, injected] {
      if (system::Broker* b = broker_.service()) {
        b->InjectPoison(queue);
        ++*injected;
      }
    });
  }
}

void MessagingWorld::ScheduleAuditRedrive(const Scenario& s) {
  if (s.messaging.redrive_at_s > 0 && !dead_letter_queue_.empty()) {
    sim.ScheduleAt(sim::FromSeconds(s.messaging.redrive_at_s),
                   Redrive{&sim, &broker_, dead_letter_queue_, &redriven_});
  }
}

void MessagingWorld::ScheduleOperatorActions(const Scenario& s, sim::Time safety_end) {
  sim::Rng rng = sim.Stream("faults.poison");
  SchedulePoison(rng, audit_queue_, s.messaging.poison_messages, &poison_injected_, safety_end);
  if (!audit_queue_.empty()) {
    ScheduleAuditRedrive(s);
  }
}

void MessagingWorld::StartNodes(const Scenario& s) {
  broker_.node->node().Start();
  mirror_->node().Start();
  wallet_->node().Start();
  client_->node().Start();
}

std::vector<system::WatchedTopic> MessagingWorld::WatchedTopics() const {
  return WatchedTopicsOf(broker_.config, mirror_config_.group, "");
}

std::string MessagingWorld::Backlog() {
  return BrokerBacklog(broker_, {&wallet_->node()}, &mirror_config_.group);
}

void MessagingWorld::CheckMirrorFinal() {
  if (!sim.stopped()) {
    messaging_checker_.CheckFinal(wallet_->node().db(), broker_.db(), mirror_->node().db(),
                                  system::kMovementTopic, audit_queue_);
  }
}

void MessagingWorld::CheckFinal(const Scenario& s) {
  wallet_checks_.CheckFinal(sim, wallet_->node().db());
  CheckMirrorFinal();
  broker_.CheckFinal(sim, WatchedTopics());
}

std::vector<reports::CheckResult> MessagingWorld::CheckResults() const {
  std::vector<reports::CheckResult> out;
  wallet_checks_.AppendResults(out);
  AppendStatuses(messaging_checker_.statuses(), out);
  broker_.AppendResults(out);
  return out;
}

std::vector<const std::optional<system::Violation>*> MessagingWorld::FirstViolations() const {
  return {&wallet_checks_.checker.first_violation(), &wallet_checks_.auditor.first_violation(),
          &messaging_checker_.first_violation(), &broker_.queue_checker.first_violation(),
          &broker_.auditor->first_violation()};
}

void MessagingWorld::CollectMessagingFigures(reports::RunResult& r) {
  sim::Database& b = broker_.db();
  const int64_t published = b.QueryInt("SELECT COUNT(*) FROM messages");
  const int64_t distinct = b.QueryInt("SELECT COUNT(DISTINCT payload) FROM messages");
  r.messaging = {
      {"published", published},
      {"published_twice", published - distinct},
      {"delivered", messaging_checker_.delivered()},
      {"redelivered", messaging_checker_.redelivered()},
      {"deduplicated", messaging_checker_.deduplicated()},
      {"applied", messaging_checker_.applied()},
  };
  if (audit_queue_.empty()) {
    return;
  }
  system::Broker* broker = broker_.service();
  r.messaging.push_back({"queue_applied", messaging_checker_.queue_applied()});
  r.messaging.push_back({"queue_deduplicated", messaging_checker_.queue_deduplicated()});
  r.messaging.push_back({"poison_injected", poison_injected_});
  r.messaging.push_back({"poison_received", messaging_checker_.poison_received()});
  r.messaging.push_back({"dead_lettered", dead_letter_queue_.empty() || broker == nullptr
                                              ? 0
                                              : broker->queues().DeadLettered(dead_letter_queue_)});
  r.messaging.push_back({"redriven", redriven_});
  r.messaging.push_back({"queue_depth", broker == nullptr ? 0 : broker->queues().Depth(audit_queue_)});
}

void MessagingWorld::CollectFigures(const Scenario& s, reports::RunResult& r) {
  WalletWorld::CollectFigures(s, r);
  broker_.AppendModelFigures(r);
  CollectMessagingFigures(r);
}

}  // namespace paylab::scenarios
