// The migration's checks (DESIGN.md "Checks", migration): run live where an
// event breaks them and over the four databases once the run is quiet.
//
//   cutover_balance_equal    every migrated user: what the point service
//                            activated equals what the wallet moved out at
//                            the cutover (and no side migrated a user the
//                            other did not)
//   points_in_one_system     a migrated user's CASHBACK in the wallet is
//                            zero: the points are spendable in one system
//                            only
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
#pragma once

#include <functional>
#include <string>

#include "sim/simulator.h"
#include "sim/storage.h"
#include "system/account_types.h"
#include "system/check_board.h"
#include "system/shopper.h"

namespace paylab::system {

struct MigrationDatabases {
  sim::Database* wallet = nullptr;
  sim::Database* point = nullptr;
  sim::Database* controller = nullptr;
  sim::Database* migrator = nullptr;
};

class MigrationChecker : public ShopperObserver {
 public:
  MigrationChecker(sim::Simulator& sim, std::function<void(const Violation&)> on_violation);

  void OnLookup(uint64_t id, std::string_view key, const MigReply& reply) override;

  void CheckFinal(const MigrationDatabases& dbs, int64_t users, TypeId cashback);

  const std::vector<CheckStatus>& statuses() const { return board_.statuses(); }
  const std::optional<Violation>& first_violation() const { return board_.first_violation(); }

 private:
  CheckBoard board_;
};

}  // namespace paylab::system
