// The payment service's auditor: feeds the reference model
// (checks/models/payment_model.h) the service's audit view (a PaymentObserver set
// as PaymentConfig::audit), and fails the run on the first difference
// between prediction and fact, printing both sides.
//
// Check (name as printed in summaries and reports):
//   payment_model_agrees   every API answer (Create, Capture, Void, Get),
//                          state transition, funding split, capture movement
//                          and clearing (credits covered, fee) is what the
//                          model predicted; and at the end every merchant
//                          account's balance, every payment's status,
//                          resource status and held amounts, and the number
//                          of sales credits cleared in payment.db equal the
//                          model's.
//
// The auditor sees only what the service reports and, at the end, its
// database; the harness owns it, so it outlives crashes of the payment node
// as the database does.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "checks/models/model_check.h"
#include "checks/models/payment_model.h"
#include "sim/simulator.h"
#include "sim/storage.h"
#include "system/common/check_board.h"
#include "system/payments/payment_service.h"

namespace paylab::models {

class PaymentAuditor : public system::PaymentObserver {
 public:
  PaymentAuditor(sim::Simulator& sim, PaymentRules rules,
                 std::function<void(const system::Violation&)> on_violation);

  void OnPaymentApplied(const system::PaymentApplied& a) override;

  // Compares the model with the payment database, at quiescence.
  void CheckFinal(sim::Database& payment_db);

  const std::vector<system::CheckStatus>& statuses() const { return check_.statuses(); }
  const std::optional<system::Violation>& first_violation() const {
    return check_.first_violation();
  }
  const PaymentModel& model() const { return model_; }

 private:
  std::string CompareAccounts(sim::Database& db) const;
  std::string ComparePayments(sim::Database& db) const;

  ModelCheck check_;
  PaymentModel model_;
};

}  // namespace paylab::models
