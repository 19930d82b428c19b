// The payment checks: what must hold across the payment service,
// its participants and its upstreams once the run is quiet.
//
// Checks, each on the shared CheckBoard:
//  - payment_journal_balanced: every movement of the merchant ledger, and the
//    whole ledger, sums to zero.
//  - payment_funded_exactly: an authorised or captured payment's amount is
//    exactly what its participants held (partner + points + wallet).
//  - payment_not_stuck: at quiescence no payment is WIP (past the recovery
//    horizon or not: the liveness phase gives every layer time to act), and
//    no payment stopped FAILED after a refused confirm or cancel.
//  - captured_equals_sales_credit: the captured charges' amounts equal the
//    merchants' unsettled-sales credits, and the captured escrows' amounts
//    equal the wallet's payouts to sellers.
//  - clearing_pairs_net_zero: each participant's clearing account and the
//    payment ledger's mirror of it sum to zero (wallet, points, partner),
//    leaving out what holds under PaymentDatabases::outside_key_prefix
//    confirmed into it.
//  - upstream_agrees: every order's final state matches its payment's
//    status, and every payment belongs to an order.
//  - grants_settled: every provisional point grant was confirmed or revoked,
//    a captured payment's grant is confirmed and a voided or failed one's is
//    not.
//  - ids_exclusive: every wallet ID is even and every point ID odd (the
//    lowest bit names the system, seed 000), and no ID is issued twice
//    across the wallet, the point service and the payment service.
// The participants' own checks (journals, holds, expiry, IDs) live in their
// checkers; this one looks at what connects them. The queues between them
// (the point-assignment queue and its dead-letter queue, the upstreams'
// notification queues) are judged by the QueueChecker
// (checks/queue_checker.h) with every other queue of the broker.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "sim/simulator.h"
#include "sim/storage.h"
#include "system/common/check_board.h"

namespace paylab::system {

struct PaymentDatabases {
  sim::Database* payment = nullptr;
  sim::Database* wallet = nullptr;
  sim::Database* point = nullptr;
  sim::Database* partner = nullptr;
  // Each upstream's name (its order-key prefix) and database.
  std::vector<std::pair<std::string, sim::Database*>> upstreams;
  // Holds whose keys start with this prefix were tried and confirmed by a
  // caller other than the payment service (the hostile caller,
  // workloads/hostile.h): what they cleared is not the payment service's, and
  // clearing_pairs_net_zero leaves it out. "" = no such caller.
  std::string outside_key_prefix;
};

class PaymentChecker {
 public:
  PaymentChecker(sim::Simulator& sim, std::function<void(const Violation&)> on_violation);

  void CheckFinal(const PaymentDatabases& d);

  const std::vector<CheckStatus>& statuses() const { return board_.statuses(); }
  const std::optional<Violation>& first_violation() const { return board_.first_violation(); }

 private:
  void CheckJournal(sim::Database& payment);
  void CheckFundedExactly(sim::Database& payment);
  void CheckNotStuck(sim::Database& payment);
  void CheckSales(const PaymentDatabases& d);
  void CheckClearing(const PaymentDatabases& d);
  void CheckUpstreams(const PaymentDatabases& d);
  void CheckGrants(const PaymentDatabases& d);
  void CheckIds(const PaymentDatabases& d);

  CheckBoard board_;
};

}  // namespace paylab::system
