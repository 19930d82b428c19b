// The partner's invariant checker (checks below), run at quiescence
// against the partner's database.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "sim/simulator.h"
#include "sim/storage.h"
#include "system/common/check_board.h"
#include "system/payments/partner.h"

namespace paylab::system {

// Checks (names as printed in summaries and reports):
//   partner_journal_balanced    every movement's entries sum to zero; the
//                               whole journal sums to zero
//   partner_balances_reconcile  every account's balance == its journal sum;
//                               no account but ISSUE is negative; HOLDS ==
//                               the held holds, CLEARING == the confirmed
//                               holds; a resolved hold has its movement
//   partner_no_hold_left        no hold is still held (every Try was
//                               confirmed, cancelled or expired)
class PartnerChecker {
 public:
  PartnerChecker(sim::Simulator& sim, std::function<void(const Violation&)> on_violation);

  void CheckFinal(sim::Database& partner_db);

  const std::vector<CheckStatus>& statuses() const { return board_.statuses(); }
  const std::optional<Violation>& first_violation() const { return board_.first_violation(); }

 private:
  // The final checks, one per invariant, in the order CheckFinal runs them.
  void CheckJournalBalanced(sim::Database& db);
  void CheckBalancesReconcile(sim::Database& db);
  void CheckNoHoldLeft(sim::Database& db);

  CheckBoard board_;
};

}  // namespace paylab::system
