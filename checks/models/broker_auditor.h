// The broker's auditor: feeds the reference model (checks/models/broker_model.h)
// every call the broker's log and queues applied, as they report it (a
// BrokerObserver given to the broker node with BrokerConfig::audit on), and
// fails the run on the first difference between prediction and fact,
// printing both sides.
//
// Check (name as printed in summaries and reports):
//   broker_model_agrees   every applied call (publish, heartbeat, commit,
//                         fan-out, inject, receive, delete, redrive, and each
//                         boot) answered and did exactly what the model
//                         predicted (partitions, offsets, duplicates,
//                         committed offsets, membership, generations,
//                         receipts, visibility deadlines, dead letters,
//                         redrives); and at the end, every message of every
//                         partition, every producer's last seq, every
//                         committed offset and every queue message (state,
//                         receive count, visibility, payload) in the broker's
//                         database equals the model's.
//
// The auditor sees only what the broker reports and, at the end, its
// database; it keeps the model across crashes of the broker node (the
// harness owns it), as the database outlives the node's memory, and a boot
// tells the model that membership is gone.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "checks/models/broker_model.h"
#include "checks/models/model_check.h"
#include "sim/simulator.h"
#include "sim/storage.h"
#include "system/messaging/broker_observer.h"
#include "system/common/check_board.h"

namespace paylab::models {

class BrokerAuditor : public system::BrokerObserver {
 public:
  BrokerAuditor(sim::Simulator& sim, BrokerRules rules,
                std::function<void(const system::Violation&)> on_violation);

  void OnBrokerApplied(const system::BrokerApplied& a) override;

  // Compares the model with the broker's database, at quiescence.
  void CheckFinal(sim::Database& broker_db);

  const std::vector<system::CheckStatus>& statuses() const { return check_.statuses(); }
  const std::optional<system::Violation>& first_violation() const {
    return check_.first_violation();
  }
  const BrokerModel& model() const { return model_; }

 private:
  std::string CompareMessages(sim::Database& db) const;
  std::string CompareProducers(sim::Database& db) const;
  std::string CompareOffsets(sim::Database& db) const;
  std::string CompareQueues(sim::Database& db) const;

  ModelCheck check_;
  BrokerModel model_;
};

}  // namespace paylab::models
