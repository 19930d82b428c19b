#include "harness/worlds/parts.h"

#include <fmt/format.h>

#include "harness/worlds/worlds.h"
#include "sim/check.h"
#include "system/migration/cashback_wallet.h"
#include "system/points/payment_event.h"
#include "system/wallet/movement_event.h"

namespace paylab::scenarios {

CheckedBroker::CheckedBroker(sim::Simulator& sim,
                             std::function<void(const system::Violation&)> on_violation)
    : queue_checker(sim, std::move(on_violation)) {}

void CheckedBroker::Watch(sim::Simulator& sim, const RunOptions& o,
                          std::function<void(const system::Violation&)> on_violation) {
  PAYLAB_CHECK(!auditor.has_value());
  auditor.emplace(sim,
                  models::BrokerRules{config.topics, config.queues,
                                      /*fan_out_follows_append=*/true},
                  std::move(on_violation));
  config.audit = true;
  config.observer = &*auditor;
  config.defect_dead_letter_early = o.defects.Has(system::Defect::kDeadLetterOneReceiveEarly);
}

void CheckedBroker::MakeNode(sim::Simulator& sim, sim::Network& net) {
  node = std::make_unique<ServiceNode<system::Broker>>(
      sim, net, "broker",
      [this](sim::NodeContext& ctx) { return std::make_unique<system::Broker>(ctx, config); });
}

void CheckedBroker::CheckFinal(sim::Simulator& sim,
                               const std::vector<system::WatchedTopic>& topics) {
  if (!sim.stopped()) {
    auditor->CheckFinal(db());
  }
  if (!sim.stopped()) {
    queue_checker.CheckFinal(db(), config.topics, config.queues, topics);
  }
}

void CheckedBroker::AppendResults(std::vector<reports::CheckResult>& out) const {
  AppendStatuses(auditor->statuses(), out);
  AppendStatuses(queue_checker.statuses(), out);
}

void CheckedBroker::AppendModelFigures(reports::RunResult& r) const {
  const models::BrokerModelStats& bs = auditor->model().stats();
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

std::string BrokerBacklog(CheckedBroker& broker, std::vector<sim::Node*> outboxes,
                          const std::string* mirror_group) {
  for (sim::Node* n : outboxes) {
    if (n->db().QueryInt(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'outbox'") == 0) {
      continue;
    }
    const int64_t pending = n->db().QueryInt("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL");
    if (pending > 0) {
      return fmt::format("{} outbox rows of {} not yet published", pending, n->name());
    }
  }
  sim::Database& b = broker.db();
  if (mirror_group != nullptr) {
    const int64_t behind = b.QueryInt(fmt::format(
        "SELECT COUNT(*) FROM (SELECT partition, MAX(offset) + 1 AS end FROM messages WHERE topic "
        "= '{}' GROUP BY partition) m LEFT JOIN group_offsets g ON g.topic = '{}' AND g.partition "
        "= m.partition AND g.grp = '{}' WHERE COALESCE(g.committed, 0) < m.end",
        system::kMovementTopic, system::kMovementTopic, *mirror_group));
    if (behind > 0) {
      return fmt::format("the mirror is behind on {} partition(s)", behind);
    }
  }
  for (const system::QueueConfig& q : broker.config.queues) {
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

std::vector<system::WatchedTopic> WatchedTopicsOf(const system::BrokerConfig& config,
                                                  const std::string& mirror_group,
                                                  const std::string& cashback_topic) {
  std::vector<system::WatchedTopic> out;
  for (const system::TopicConfig& t : config.topics) {
    system::WatchedTopic w{t.name, nullptr, ""};
    if (t.name == system::kMovementTopic) {
      w.decodes = [](std::string_view p) {
        std::string error;
        return system::DecodeMovementEvent(p, &error).has_value();
      };
      w.group = mirror_group;
    } else if (t.name == system::kPaymentTopic) {
      w.decodes = [](std::string_view p) {
        std::string error;
        return system::DecodePaymentEvent(p, &error).has_value();
      };
    } else if (!cashback_topic.empty() && t.name == cashback_topic) {
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

void Redrive::operator()() const {
  if (system::Broker* b = broker->service()) {
    *counter += b->Redrive(dlq);
  } else {
    sim->ScheduleAfter(sim::kSecond, Redrive{sim, broker, dlq, counter});
  }
}


PointChecks::PointChecks(sim::Simulator& sim,
                         std::function<void(const system::Violation&)> on_violation)
    : checker(sim, std::move(on_violation)) {}

void PointChecks::Watch(sim::Simulator& sim, sim::Duration hold_ttl_max,
                        std::function<void(const system::Violation&)> on_violation) {
  PAYLAB_CHECK(!auditor.has_value());
  auditor.emplace(sim, models::PointRules{hold_ttl_max}, std::move(on_violation));
  observers.emplace(std::vector<system::PointLedgerObserver*>{&checker, &*auditor});
}

void PointChecks::CheckFinal(sim::Database& point_db, sim::Time now) {
  checker.CheckFinal(point_db, now);
  auditor->CheckFinal(point_db);
}

void PointChecks::AppendResults(std::vector<reports::CheckResult>& out) const {
  AppendStatuses(checker.statuses(), out);
  AppendStatuses(auditor->statuses(), out);
}

void PointChecks::AppendModelFigures(reports::RunResult& r) const {
  const models::PointModelStats& ps = auditor->model().stats();
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

}  // namespace paylab::scenarios
