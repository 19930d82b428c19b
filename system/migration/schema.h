// The migration's stored schema: the tables of the controller's database
// (controller.h), of the migrator's (migrator.h) and those the point
// service's migration end keeps beside the point ledger (point_home.h), and
// the enums whose numeric values their columns store. See
// system/common/schema.h for how checkers write these values into SQL.
//
// On the wallet's side the migration's tables are the ledger's
// (migrated_users, migration_forwards, ...: system/wallet/schema.h).
#pragma once

#include <cstdint>
#include <string_view>

#include "system/common/schema.h"

namespace paylab::system {

// A user's migration status (status.state, status_log.state in the
// controller's database).
enum class MigrationState : uint8_t {
  kLegacy = 0, kMaintenance = 1, kMigrating = 2, kMigrated = 3,
};
std::string_view MigrationStateName(MigrationState s);

// Where a cross-system payment is at the point service's end (pays.state).
// The states below kCommitted are open: the payment may still hold points
// or a wallet hold.
enum class MigPayState : uint8_t {
  kComputed = 0,  // MIN and MAX stored, points not debited yet
  kPoints = 1,    // points debited
  kPrepared = 2,  // the wallet holds the rest
  kCommitted = 3,
  kRolledBack = 4,
  kDeclined = 5,
  kExpired = 6,
  // Rolled back by the caller after its Prepare answered ok: a replayed
  // Prepare answers ok again, as the wallet's ledger replays its stored
  // answer (the same key, the same answer, through either API).
  kRolledBackPrepared = 7,
  // Expired after its Prepare answered ok: a Commit hears expired, a
  // replayed Prepare ok again (the first answer), as with the wallet.
  kExpiredPrepared = 8,
};

// The tables of the controller's database.
namespace controller_tables {
// One user and its status (state: MigrationState), with the sequence
// number of the change that set it.
inline constexpr std::string_view kStatus = "status";
// One status change: users [lo, hi] set to a state, at a time.
inline constexpr std::string_view kStatusLog = "status_log";
// One banner change: shown to users [lo, hi] or removed, at a time.
inline constexpr std::string_view kBanners = "banners";
// One maintenance flag ("full"), its value and the sequence number of the
// change that set it.
inline constexpr std::string_view kFlags = "flags";
}  // namespace controller_tables

// The tables of the migrator's database.
namespace migrator_tables {
// One step of the migrator's progress ("attempt", "done", ...), by name.
inline constexpr std::string_view kProgress = "progress";
}  // namespace migrator_tables

// The tables the migration's point end keeps in the point service's
// database.
namespace point_home_tables {
// One cross-system payment, by its key: the range of points it may take,
// what it took, and where it is (state: MigPayState).
inline constexpr std::string_view kPays = "pays";
// One request key proxied to the wallet, so that a retry goes there again.
inline constexpr std::string_view kAttempts = "attempts";
// One user activated here, with the amount the wallet moved out for it.
inline constexpr std::string_view kActivated = "activated";
// One expiry term of an activated user's moved amount.
inline constexpr std::string_view kActivatedTerms = "activated_terms";
// One user's copy of its wallet CASHBACK balance (online strategy).
inline constexpr std::string_view kCopies = "copies";
// One counter of the migration's point end, by name.
inline constexpr std::string_view kHomeCounters = "home_counters";
}  // namespace point_home_tables

}  // namespace paylab::system
