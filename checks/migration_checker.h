// The migration's checks (DESIGN.md "Checks", migration): run live where an
// event breaks them and over the four databases once the run is quiet.
//
//   cutover_balance_equal    every migrated user: what the point service
//                            activated equals what the wallet moved out at
//                            the cutover (and no side migrated a user the
//                            other did not)
//   points_in_one_system     live: no wallet movement spends (expiry is not
//                            spending) the CASHBACK of
//                            a user the wallet has moved out; at the end: a
//                            migrated user's CASHBACK in the wallet is zero.
//                            The points are spendable in one system only
//   no_double_processing     no request key took effect in both systems (a
//                            payment or credit processed by the wallet and
//                            again by the point service)
//   payment_money_exact      every payment of the cross-system debit kept
//                            its points only if it committed, and its
//                            wallet hold committed only then; none is left
//                            open
//   money_conserved_across_systems
//                            what left the wallet (SYS_MIGRATED) is what
//                            the point service issued for it
//   reconciliation_clean     nothing is left for reconciliation: no forward
//                            unsent, no copy of a user still in the wallet
//                            that differs from its balance
//   migration_completes      every user is migrated: in the controller, the
//                            wallet and the point service
//   id_lookup_exact          a payment looked up by its ID is the payment
//                            made (ID exclusivity: even wallet, odd point)
//   shopper_misuse_refused   live, per misuse the shopper sent (shopper.h):
//                            a replayed Prepare answers what it answered
//                            (status and ID); a key reused with another
//                            amount, a Commit of a rolled-back payment, a
//                            Rollback of a committed one and a Commit of an
//                            unknown key are refused, through either API.
//                            kUnavailable and kMaintenance prove nothing
#pragma once

#include <functional>
#include <string>

#include "sim/simulator.h"
#include "sim/storage.h"
#include "system/wallet/account_types.h"
#include "system/common/check_board.h"
#include "system/wallet/ledger.h"
#include "workloads/shopper.h"

namespace paylab::system {

struct MigrationDatabases {
  sim::Database* wallet = nullptr;
  sim::Database* point = nullptr;
  sim::Database* controller = nullptr;
  sim::Database* migrator = nullptr;
};

class MigrationChecker : public ShopperObserver, public LedgerObserver {
 public:
  // `wallet_db` reads the wallet's database (the harness's view; valid
  // whether the node is up or down); `next` (may be null) is fed every
  // wallet movement after this checker saw it.
  MigrationChecker(sim::Simulator& sim, std::function<void(const Violation&)> on_violation);
  void Watch(std::function<sim::Database&()> wallet_db, TypeId cashback, LedgerObserver* next);

  void OnLookup(uint64_t id, std::string_view key, const MigReply& reply) override;
  void OnMisuse(const ShopMisuseAnswer& a) override;
  void OnMovement(const MovementRecord& m) override;
  void OnHoldCreated(uint64_t hold_id, sim::Time expires_at) override;
  void OnApplied(const WalletApplied& a) override;

  void CheckFinal(const MigrationDatabases& dbs, int64_t users, TypeId cashback);

  const std::vector<CheckStatus>& statuses() const { return board_.statuses(); }
  const std::optional<Violation>& first_violation() const { return board_.first_violation(); }

 private:
  // The final checks, one per invariant, in the order CheckFinal runs them.
  void CheckCutoverBalanceEqual(sim::Database& w, sim::Database& p, int64_t users);
  void CheckNoCashbackLeftBehind(sim::Database& w, TypeId cashback);
  void CheckNoDoubleProcessing(sim::Database& w, sim::Database& p);
  void CheckPaymentMoneyExact(sim::Database& w, sim::Database& p);
  void CheckMoneyConserved(sim::Database& w, sim::Database& p);
  void CheckReconciliationClean(sim::Database& w);
  void CheckMigrationCompletes(const MigrationDatabases& dbs, int64_t users);

  CheckBoard board_;
  std::function<sim::Database&()> wallet_db_;
  TypeId cashback_ = 0;
  LedgerObserver* next_ = nullptr;
};

}  // namespace paylab::system
