// The migration's terms auditor (seed 000: "the data in the new system must
// be identical to the old"): value that moves from the wallet to the point
// service keeps its terms, its amount and its expiry, wherever it goes.
//
// Fed what both ledgers applied (the wallet's and the point service's audit
// views), it keeps, per user, the value the wallet moved out and has not yet
// arrived, by expiry instant: a MoveOut or a MoveOutAgain (a forward) adds
// each consumed balance item's part at that item's expiry. The point service
// must then issue exactly that: every lot it confirms under a migration key
// ("migrate/...", activation or a confirmed copy; "fwd/...", a forward)
// takes its amount from the user's value waiting at the lot's expiry, and a
// lot for which no such value waits fails the check at once, printing what
// waited. Refunds ("refund/<payment>") must give back the lots their debit
// took, each at that lot's expiry. A credit made in the point service for a
// migrated user (an earn) expires as a CASHBACK credit would in the wallet.
// At the end nothing may still wait.
//
// Check (name as printed in summaries and reports):
//   migration_terms_kept   per user, the point service received exactly the
//                          amounts and expiries the wallet moved out; refunds
//                          restore the debited lots' expiries; earns expire
//                          as CASHBACK does
//
// It never reads the services' code paths: only the facts they applied.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "sim/simulator.h"
#include "system/common/check_board.h"
#include "system/wallet/ledger.h"
#include "system/points/point_ledger.h"

namespace paylab::models {

struct MigrationTermsRules {
  system::TypeId cashback = 0;
  sim::Duration cashback_expires_after = 0;  // 0: never
};

class MigrationAuditor : public system::LedgerObserver, public system::PointLedgerObserver {
 public:
  MigrationAuditor(sim::Simulator& sim, MigrationTermsRules rules,
                   std::function<void(const system::Violation&)> on_violation);

  // The wallet's facts.
  void OnMovement(const system::MovementRecord&) override {}
  void OnHoldCreated(uint64_t, sim::Time) override {}
  void OnApplied(const system::WalletApplied& a) override;
  // The point service's facts.
  void OnPointMovement(const system::PointMovementRecord&) override {}
  void OnPointApplied(const system::PointApplied& a) override;

  // Nothing moved out may still wait to arrive.
  void CheckFinal();

  const std::vector<system::CheckStatus>& statuses() const { return board_.statuses(); }
  const std::optional<system::Violation>& first_violation() const {
    return board_.first_violation();
  }
  int64_t terms_received() const { return terms_received_; }

 private:
  // Amount by expiry instant.
  using Terms = std::map<sim::Time, int64_t>;
  struct Lot {
    system::UserId user = 0;
    int64_t amount = 0;
    sim::Time expires_at = 0;
    std::string key;
  };
  void Fail(std::string detail);
  void Receive(const Lot& lot);
  void CheckRefund(std::string_view debit_key, const Terms& refunded);
  static std::string Text(const Terms& t);

  MigrationTermsRules rules_;
  system::CheckBoard board_;
  bool failed_ = false;
  // Wallet balance items: their expiry.
  std::unordered_map<int64_t, sim::Time> item_expiry_;
  // Per user, value moved out of the wallet that has not arrived yet.
  std::map<system::UserId, Terms> waiting_;
  // Point lots: who, how much, when it expires, under which key.
  std::unordered_map<uint64_t, Lot> lots_;
  // What each point debit took, by expiry (from its try's lot changes).
  std::unordered_map<std::string, Terms> debited_;
  int64_t terms_received_ = 0;
};

}  // namespace paylab::models
