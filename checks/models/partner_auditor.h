// The partner's auditor: feeds the reference model (checks/models/partner_model.h)
// every request the external partner applied, as the partner reports it (a
// PartnerObserver with PartnerConfig::audit on), and fails the run on the
// first difference between prediction and fact, printing both sides.
//
// Check (name as printed in summaries and reports):
//   partner_model_agrees   every applied request answered and did exactly
//                          what the model predicted (answers, movements,
//                          hold rows created and resolved, expiries; an
//                          unavailable answer only where the faults allow
//                          one, changing nothing); and at the end, every
//                          account balance and every hold row (key, user,
//                          amount, ttl, state, expiry) in the partner's
//                          database, and the number of its movements,
//                          equal the model's.
//
// The auditor sees only what the partner reports and, at the end, its
// database; it keeps the model across crashes of the partner node (the
// harness owns it), as the database outlives the node's memory.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "checks/models/model_check.h"
#include "checks/models/partner_model.h"
#include "sim/simulator.h"
#include "sim/storage.h"
#include "system/common/check_board.h"
#include "system/payments/partner.h"

namespace paylab::models {

// The model's rules from the partner's configuration.
PartnerRules PartnerRulesOf(const system::PartnerConfig& config);

class PartnerAuditor : public system::PartnerObserver {
 public:
  PartnerAuditor(sim::Simulator& sim, PartnerRules rules,
                 std::function<void(const system::Violation&)> on_violation);

  void OnPartnerApplied(const system::PartnerApplied& a) override;

  // Compares the model with the partner's database, at quiescence.
  void CheckFinal(sim::Database& partner_db);

  const std::vector<system::CheckStatus>& statuses() const { return check_.statuses(); }
  const std::optional<system::Violation>& first_violation() const {
    return check_.first_violation();
  }
  const PartnerModel& model() const { return model_; }

 private:
  std::string CompareAccounts(sim::Database& db) const;
  std::string CompareHolds(sim::Database& db) const;

  ModelCheck check_;
  PartnerModel model_;
};

}  // namespace paylab::models
