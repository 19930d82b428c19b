// The wallet's stored schema: the tables of the wallet's database (the
// ledger's, ledger.h) and of the mirror's (mirror.h), and the enums whose
// numeric values their columns store. See system/common/schema.h for how
// checkers write these values into SQL.
//
// The system user (kSystemUser, 0, account_types.h) holds the system
// account types; an account's `type` column holds a TypeId (AccountTypes).
// The wallet's database also keeps the movement events' outbox
// (system/messaging/schema.h) and the wallet's config
// (system/common/schema.h); the mirror's keeps its processed events.
#pragma once

#include <cstdint>
#include <string_view>

#include "system/common/schema.h"

namespace paylab::system {

// An operation's answer (idempotency.status). Stored: values are appended,
// never renumbered.
enum class WalletStatus : uint8_t {
  kOk = 0,
  kInsufficientFunds = 1,
  kCapExceeded = 2,
  kNoSuchUser = 3,
  kNoSuchAccount = 4,
  kNoSuchHold = 5,
  kHoldExpired = 6,
  kHoldNotActive = 7,
  kIdempotencyMismatch = 8,
  kInvalidArgument = 9,
  // A Prepare whose key was rolled back first (an empty rollback's
  // tombstone): no hold was created.
  kCancelled = 10,
  // A migration MoveOut refused: a balance differs from the verified one,
  // or a hold of the user is in flight. Nothing moved.
  kMigrationRefused = 11,
};
std::string_view WalletStatusName(WalletStatus s);

// What a movement did (movements.kind; audit_counts.kind in the mirror).
enum class MovementKind : uint8_t {
  kDeposit = 1, kTransfer = 2, kPrepare = 3, kCommit = 4, kRollback = 5, kExpireHold = 6,
  kBreakage = 7, kPayout = 8, kMigrateOut = 9,
};
std::string_view MovementKindName(MovementKind k);

// Where a hold is (holds.state). Only kHeld holds funds in SYS_HOLDS.
enum class HoldState : uint8_t { kHeld = 1, kCommitted = 2, kRolledBack = 3, kExpired = 4 };

// The operation a key was used for (idempotency.op). kTombstone marks a key
// cancelled by an empty rollback: it had no effect.
enum class IdempotencyOp : uint8_t {
  kDeposit = 1, kTransfer = 2, kPrepare = 3, kPayout = 4, kTombstone = 5,
};

// The tables of the wallet's database.
namespace wallet_tables {
// One key of the ID generator's lease, with its value.
inline constexpr std::string_view kMeta = "meta";
// One account type the wallet runs with (AccountType).
inline constexpr std::string_view kAccountTypes = "account_types";
// One user, with when it was created.
inline constexpr std::string_view kUsers = "users";
// One account: a (user, type) pair and its balance.
inline constexpr std::string_view kAccounts = "accounts";
// One credit to a user's account: its amount, what of it is left
// (remaining) and when it expires.
inline constexpr std::string_view kBalanceItems = "balance_items";
// One change to a balance item's remainder by a movement: consumed by a
// debit, or given back by a release.
inline constexpr std::string_view kBalanceItemLog = "balance_item_log";
// One movement of money (kind: MovementKind), with the key it was made
// under and its hold, if any.
inline constexpr std::string_view kMovements = "movements";
// One journal entry: a movement's change to one account. A movement's
// entries sum to zero.
inline constexpr std::string_view kJournal = "journal";
// One two-phase hold, named by its Prepare's key (state: HoldState).
inline constexpr std::string_view kHolds = "holds";
// One user moved out to the point service, with the amount moved.
inline constexpr std::string_view kMigratedUsers = "migrated_users";
// One expiry term of what a migrated user moved out.
inline constexpr std::string_view kMigratedTerms = "migrated_terms";
// One MoveOut batch applied, by its key.
inline constexpr std::string_view kMigrationBatches = "migration_batches";
// One amount that came back to a migrated user and was moved out again,
// to be forwarded to the point service (sent: 1 once it was).
inline constexpr std::string_view kMigrationForwards = "migration_forwards";
// One expiry term of a forward.
inline constexpr std::string_view kMigrationForwardTerms = "migration_forward_terms";
// One key an operation was asked under: its parameters and the answer it
// got (op: IdempotencyOp; status: WalletStatus).
inline constexpr std::string_view kIdempotency = "idempotency";
}  // namespace wallet_tables

// The tables of the mirror's database (the movement events' consumer).
namespace mirror_tables {
// One account as the mirror replayed it from the events: (user, type) and
// its balance.
inline constexpr std::string_view kMirrorBalances = "mirror_balances";
// Per movement kind (MovementKind), how many movements the audit worker
// applied.
inline constexpr std::string_view kAuditCounts = "audit_counts";
}  // namespace mirror_tables

}  // namespace paylab::system
