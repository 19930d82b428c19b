// The point service's stored schema: the tables of its database (the point
// ledger's, point_ledger.h) and the enums whose numeric values their columns
// store. See system/common/schema.h for how checkers write these values
// into SQL.
//
// The system user (kSystemUser, 0, as in the wallet) holds the system
// accounts. The point service's database also keeps the migration's point
// end (system/migration/schema.h) and the service's config
// (system/common/schema.h).
#pragma once

#include <cstdint>
#include <string_view>

#include "system/common/schema.h"

namespace paylab::system {

// The accounts of the point ledger (point_accounts.account,
// point_journal.account). A user holds kPoint; the system user holds the
// others.
enum class PointAccount : int32_t {
  kPoint = 1, kIssue = 100, kHolds = 101, kBreakage = 102, kClearing = 103,
};
std::string_view PointAccountName(PointAccount a);

// What a movement did (point_movements.kind).
enum class PointMovementKind : uint8_t {
  kIssue = 1,       // ISSUE -> user: a grant confirmed
  kTry = 2,         // user -> HOLDS: a try held points
  kConfirm = 3,     // HOLDS -> CLEARING: a hold confirmed
  kCancel = 4,      // HOLDS -> user: a hold cancelled
  kExpireHold = 5,  // HOLDS -> user: a hold expired
  kBreakage = 6,    // user -> BREAKAGE: a lot expired
};
// "point_issue", "point_try", ...: distinct from the wallet's movement names
// in a trace.
std::string_view PointMovementKindName(PointMovementKind k);

// Where a grant's lot is (point_lots.state). Only confirmed lots hold
// spendable points.
enum class LotState : uint8_t { kProvisional = 1, kConfirmed = 2, kRevoked = 3 };

// Where a try's hold is (point_holds.state). Only held holds hold points in
// HOLDS.
enum class PointHoldState : uint8_t { kHeld = 1, kConfirmed = 2, kCancelled = 3, kExpired = 4 };

// What a TCC key records (point_tcc_keys.kind): a try and its answer, or a
// cancel that came first.
enum class TccKeyKind : uint8_t { kTried = 1, kCancelledFirst = 2 };

// The tables of the point service's database.
namespace point_tables {
// One key of the ID generator's lease, with its value.
inline constexpr std::string_view kMeta = "point_meta";
// One counter of the ledger (grants_provisional, tombstones, ...), by name.
inline constexpr std::string_view kCounters = "point_counters";
// One user, with when it was created.
inline constexpr std::string_view kUsers = "point_users";
// One account: a (user, account: PointAccount) pair and its balance.
inline constexpr std::string_view kAccounts = "point_accounts";
// One grant's lot, by its grant key: the user, the amount, what of it is
// left (remaining), when it expires, and its state (LotState). A revoked
// lot of user 0 and amount 0 is a tombstone.
inline constexpr std::string_view kLots = "point_lots";
// One change to a lot's remainder: a try took from it, a release gave back
// to it (hold_id: the hold), or it expired to BREAKAGE (hold_id 0).
inline constexpr std::string_view kLotLog = "point_lot_log";
// One movement of points (kind: PointMovementKind), with its key, its hold
// and its lot (0: none).
inline constexpr std::string_view kMovements = "point_movements";
// One journal entry: a movement's change to one account. A movement's
// entries sum to zero.
inline constexpr std::string_view kJournal = "point_journal";
// One try's hold, named by its TCC key (state: PointHoldState).
inline constexpr std::string_view kHolds = "point_holds";
// One refund of a confirmed debit, by the refund's key: the debit's key,
// the first lot it created and the amount given back.
inline constexpr std::string_view kRefunds = "point_refunds";
// One TCC key (kind: TccKeyKind): the try's parameters and answer (status:
// TccStatus, system/common/tcc.h), or a cancel that came first.
inline constexpr std::string_view kTccKeys = "point_tcc_keys";
}  // namespace point_tables

}  // namespace paylab::system
