// The wallet's ledger: accounts, balance items, double-entry money
// movements, holds and idempotency, in one SQLite database (seeds 000, 004).
//
// Contract:
//  - Every operation is one SQLite transaction: all of its effects, its
//    idempotency record and its ID reservation commit together or not at
//    all. Operations are synchronous (no coroutine suspends inside one), so
//    a crash never splits one.
//  - Money moves only as movements whose journal entries sum to zero.
//    A debit drains the user's accounts in debit order, consuming balance
//    items soonest-expiring first and logging each consumption; a credit
//    fills accounts in credit order up to their caps, creating a balance
//    item (with the type's expiry) per credit.
//  - Expiry: a balance item is spendable while now < expires_at. Before a
//    call debits or credits a user (deposit, transfer, prepare, a commit's
//    credit, payout, migration moves), the user's items whose expiry has
//    come go to SYS_BREAKAGE in that call's transaction; a sweep
//    (ExpireBalanceItems) takes the rest. A hold commits only while
//    now < expires_at.
//  - Invariant per user account: SUM(items.remaining) == max(balance, 0);
//    balance == the journal's sum for that account.
//  - Two-phase: Prepare moves the funds into SYS_HOLDS under a hold with an
//    expiry; Commit credits the destination from SYS_HOLDS; Rollback (or
//    expiry) returns them to the exact balance items they came from, even
//    past a balance cap: caps limit what flows in, and these funds never
//    left the user. A commit of an expired hold answers kHoldExpired every
//    time it is asked.
//  - Idempotency: an operation with a key already used with the same
//    parameters returns the stored answer and has no further effect; with
//    other parameters it is refused (kIdempotencyMismatch).
//  - Try-Confirm-Cancel (system/common/tcc.h): CommitKey and RollbackKey name a
//    hold by the key of the Prepare that created it. A RollbackKey of a key
//    never prepared is an "empty rollback": it answers kOk with amount 0
//    and records a tombstone in its own transaction, so a later Prepare
//    with that key answers kCancelled and creates no hold. Tombstones live
//    in the idempotency table and so survive restarts.
//  - Clearing: a Prepare whose destination is the system user commits into
//    (kSystemUser, SYS_CLEARING), with no cap; Payout pays a user out of
//    SYS_CLEARING. SYS_CLEARING may go negative: it is the wallet's half of
//    the clearing pair with the payment service.
//  - Expected outcomes (declined, refused, expired) are statuses, never
//    exceptions. Bad arguments get kInvalidArgument and a reason.
//  - The ledger never reads a clock: callers pass the node's virtual time.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/storage.h"
#include "sim/time.h"
#include "system/wallet/account_types.h"
#include "system/wallet/schema.h"
#include "system/common/ids.h"
#include "system/messaging/outbox.h"

namespace paylab::system {

struct WalletReply {
  WalletStatus status = WalletStatus::kOk;
  uint64_t id = 0;          // the movement (deposit, transfer) or hold (prepare, commit, rollback)
  int64_t amount = 0;       // the amount moved
  std::string_view reason;  // a static explanation for refusals; empty when kOk
  bool operator==(const WalletReply& o) const {
    return status == o.status && id == o.id && amount == o.amount;
  }
};

struct JournalEntry {
  UserId user = 0;
  TypeId type = 0;
  int64_t delta = 0;
};

// A committed movement, as handed to observers.
struct MovementRecord {
  uint64_t id = 0;
  MovementKind kind = MovementKind::kDeposit;
  std::string_view idem_key;  // empty for movements without a key
  uint64_t hold_id = 0;
  sim::Time at = 0;
  std::span<const JournalEntry> entries;
};

struct InitialBalance {
  TypeId type = 0;
  int64_t amount = 0;
};

// --- the audit view: every request as the ledger applied it ---------------
// With LedgerOptions::audit on, each call of a public operation below is
// reported once it returns (LedgerObserver::OnApplied): what was asked, what
// was answered, and every fact the call committed: movements, balance item
// changes, holds created. A reference model (models/) predicts the same from
// the request alone and compares. Reads (Balance, TotalBalance, ...) are not
// reported: they change nothing.
enum class WalletOp : uint8_t {
  kPopulate,
  kDeposit,
  kTransfer,
  kPrepare,
  kCommit,
  kRollback,
  kCommitKey,
  kRollbackKey,
  kPayout,
  kExpireHolds,
  kExpireItems,
  kMoveOut,
  kMoveOutAgain,
};
std::string_view WalletOpName(WalletOp op);

// The arguments of one call; fields an operation does not take stay zero.
struct WalletRequest {
  WalletOp op = WalletOp::kDeposit;
  std::string_view key = {};
  UserId user = 0;     // deposit, payout, MoveOutAgain: the user; transfer, prepare: the source
  UserId dst = 0;      // transfer, prepare
  TypeId type = 0;     // deposit, MoveOut, MoveOutAgain: the type; prepare: the type left out
  int64_t amount = 0;  // populate: the user count
  sim::Duration ttl = 0;
  uint64_t hold_id = 0;                           // commit, rollback
  int64_t limit = 0;                              // expiry sweeps
  std::span<const UserId> users = {};             // MoveOut
  std::span<const int64_t> expected = {};         // MoveOut
  bool require_no_holds = false;                  // MoveOut
  std::span<const InitialBalance> balances = {};  // populate
  sim::Time now = 0;
};

// One balance item changed by a call: created (delta = its amount), or its
// remainder consumed (delta < 0) or given back (delta > 0).
struct ItemChange {
  int64_t item = 0;
  UserId user = 0;
  TypeId type = 0;
  int64_t delta = 0;
  bool created = false;
  sim::Time expires_at = 0;
  uint64_t movement = 0;
};

struct HoldCreated {
  uint64_t hold_id = 0;
  sim::Time expires_at = 0;
};

struct WalletApplied {
  const WalletRequest& request;
  // The answer. Sweeps: amount = how many holds or items they expired.
  // MoveOut: status and reason only; the amounts are in `moved`.
  WalletReply reply;
  std::span<const int64_t> moved;
  UserId refused_user = 0;                    // MoveOut refused
  std::span<const MovementRecord> movements;  // in the order written
  std::span<const ItemChange> items;          // in the order written
  std::span<const HoldCreated> holds;
};

// Fed every committed movement and hold, after its transaction commits;
// with LedgerOptions::audit, every applied call as well (after its
// movements).
class LedgerObserver {
 public:
  virtual ~LedgerObserver() = default;
  virtual void OnMovement(const MovementRecord& m) = 0;
  virtual void OnHoldCreated(uint64_t hold_id, sim::Time expires_at) = 0;
  virtual void OnApplied(const WalletApplied& a) {}
};

// Hands every event to each of several observers, in the order given.
class LedgerObserverFanout : public LedgerObserver {
 public:
  explicit LedgerObserverFanout(std::vector<LedgerObserver*> observers)
      : observers_(std::move(observers)) {}
  void Add(LedgerObserver* o) { observers_.push_back(o); }
  void OnMovement(const MovementRecord& m) override {
    for (LedgerObserver* o : observers_) {
      o->OnMovement(m);
    }
  }
  void OnHoldCreated(uint64_t hold_id, sim::Time expires_at) override {
    for (LedgerObserver* o : observers_) {
      o->OnHoldCreated(hold_id, expires_at);
    }
  }
  void OnApplied(const WalletApplied& a) override {
    for (LedgerObserver* o : observers_) {
      o->OnApplied(a);
    }
  }

 private:
  std::vector<LedgerObserver*> observers_;
};

struct LedgerOptions {
  uint32_t id_worker = 0;
  sim::Duration hold_ttl_max = 3600 * sim::kSecond;
  // The wall clock this node believes in: Unix ms at virtual time 0.
  int64_t clock_origin_unix_ms = kIdEpochMs + 86'400'000;
  // Publish every committed movement as an event through the outbox (in
  // the movement's own transaction); a relay sends them to the broker.
  bool publish_events = false;
  // TEST ONLY. Transfers credit the destination without debiting the
  // source, and the write-path balance assertion is skipped: a deliberately
  // wrong ledger that the checkers must catch.
  bool defect_credit_without_debit = false;
  // DEFECT commit_ignores_hold_expiry: a hold still held past its expiry
  // (the sweep has not reached it) is committed anyway.
  bool defect_commit_ignores_expiry = false;
  // DEFECT cancel_without_tombstone: an empty rollback records nothing, so
  // the Prepare still on its way creates a hold nobody resolves.
  bool defect_cancel_without_tombstone = false;
  // DEFECT no_clock_rollback_guard: the ID generator trusts a clock that
  // steps back (IdGenerator's trust_clock_steps).
  bool defect_no_clock_rollback_guard = false;
  // DEFECT debit_ignores_priority: a debit drains the user's accounts in
  // credit order (MONEY first, CASHBACK last), the loop's order reversed.
  bool defect_debit_ignores_priority = false;
  // DEFECT items_consumed_latest_first: a debit consumes an account's
  // latest-expiring balance items first, so soon-to-expire value is wasted.
  bool defect_items_latest_first = false;
  // DEFECT item_spendable_at_expiry: an item counts as expired only after
  // its expiry instant (< instead of <=), so it is spendable at the instant.
  bool defect_item_spendable_at_expiry = false;
  // The node's clock error in ms, added to the time IDs are made from (the
  // node's clock steps are a fault: faults.schedule's clock_step). Points
  // into the node, which outlives the ledger; nullptr = none.
  const int64_t* clock_offset_ms = nullptr;
  // Report every applied call to the observer (OnApplied), with the
  // balance item changes it made: what a reference model checks. Off, the
  // ledger collects nothing for it.
  bool audit = false;
};

// What a migration MoveOut answers: per user (in the order asked) the
// balance moved out, or a refusal naming the first user refused.
struct MoveOutReply {
  WalletStatus status = WalletStatus::kOk;
  std::vector<int64_t> amounts;
  // Per user (in the order asked), what moved with its terms: one term per
  // expiry instant, soonest first, summing to the user's amount.
  std::vector<std::vector<ValueTerm>> terms;
  UserId refused_user = 0;
  std::string_view reason;
};

// Value that came back to a migrated user's account after the move (a hold
// prepared before it and released after), moved out again and waiting to be
// sent to the point service.
struct MigrationForward {
  std::string key;
  UserId user = 0;
  int64_t amount = 0;
  std::vector<ValueTerm> terms;  // what moved, with its expiries
};

class Ledger {
 public:
  // Creates the schema if missing and recovers the ID generator.
  Ledger(sim::Database& db, const AccountTypes& types, LedgerOptions options,
         LedgerObserver* observer);
  ~Ledger();

  // Creates users 1..count with the given opening balances (deposits from
  // SYS_EXTERNAL), once: does nothing if users already exist.
  void Populate(int64_t count, std::span<const InitialBalance> balances, sim::Time now);
  int64_t user_count();

  WalletReply Deposit(std::string_view key, UserId user, TypeId type, int64_t amount,
                      sim::Time now);
  WalletReply Transfer(std::string_view key, UserId src, UserId dst, int64_t amount, sim::Time now);
  // Moves `amount` from src's accounts into SYS_HOLDS under a new hold that
  // expires at now + ttl; answers the hold's ID. dst is a user, or
  // kSystemUser for a payment to the clearing account. A key tombstoned by
  // an empty RollbackKey answers kCancelled.
  // `skip_type` (0: none) is left out of the debit: a migrated user's
  // CASHBACK, or any payment that must not use points.
  WalletReply Prepare(std::string_view key, UserId src, UserId dst, int64_t amount,
                      sim::Duration ttl, sim::Time now, TypeId skip_type = 0);
  WalletReply Commit(uint64_t hold_id, sim::Time now);
  WalletReply Rollback(uint64_t hold_id, sim::Time now);

  // The second phase by the Prepare's key (the TCC participant's contract,
  // system/common/tcc.h). Answers carry the hold's ID and amount.
  //   CommitKey:   held -> kOk (dst credited; kCapExceeded if the caps
  //                leave no room, and the hold stays held); committed ->
  //                kOk again; expired (or past its expiry) -> kHoldExpired,
  //                every time; rolled back or tombstoned -> kHoldNotActive;
  //                never prepared -> kNoSuchHold (no tombstone).
  //   RollbackKey: held -> kOk (funds released); rolled back or expired ->
  //                kOk, nothing released again; committed ->
  //                kHoldNotActive; never prepared -> kOk with id 0 and
  //                amount 0, and a tombstone (see the contract above); a
  //                Prepare that was refused -> kOk, amount 0 (nothing was
  //                held); a key used by another operation ->
  //                kIdempotencyMismatch.
  WalletReply CommitKey(std::string_view key, sim::Time now);
  WalletReply RollbackKey(std::string_view key, sim::Time now);

  // Pays `amount` out of (kSystemUser, SYS_CLEARING) to the user, credited
  // in credit order as any credit (kCapExceeded if the caps leave no room).
  // Idempotent by key like Deposit; answers the movement's ID.
  WalletReply Payout(std::string_view key, UserId user, int64_t amount, sim::Time now);

  // Rolls back every held hold whose expiry has passed; returns how many.
  int64_t ExpireHolds(sim::Time now, int64_t limit);
  // Moves every expired balance item's remainder to SYS_BREAKAGE.
  int64_t ExpireBalanceItems(sim::Time now, int64_t limit);

  int64_t Balance(UserId user, TypeId type);
  // When a hold expires; 0 for an unknown hold.
  sim::Time HoldExpiry(uint64_t hold_id);
  // The outbox, when publish_events is on; nullptr otherwise.
  Outbox* outbox() { return outbox_.get(); }
  // Sum of a user's balances over the user types.
  int64_t TotalBalance(UserId user);
  // The same without one type (the cross-system debit's TOTAL_WALLET_BALANCE).
  int64_t TotalBalanceExcept(UserId user, TypeId type);
  // A user's spendable value in one account with its terms: the remainders
  // of its items not expired at `now`, one term per expiry instant, soonest
  // first.
  std::vector<ValueTerm> OpenTerms(UserId user, TypeId type, sim::Time now);
  // Whether an operation was recorded under this key (or it is tombstoned).
  bool HasKey(std::string_view key);
  // Holds still held whose source is a user in [lo, hi] and that took from
  // that user's `type` account.
  int64_t HeldHolds(UserId lo, UserId hi, TypeId type);

  // --- migration (seed 000) ------------------------------------------------
  // Moves each user's whole `type` balance to (kSystemUser, SYS_MIGRATED)
  // and marks the user migrated, all users in one transaction, all or
  // nothing. With `expected` (one per user) a balance that differs refuses
  // the batch (kMigrationRefused); so does a held hold of a user that took
  // from `type` when `require_no_holds`. A user migrated before moves nothing again.
  // Idempotent by key: a retry answers what the batch moved.
  MoveOutReply MoveOut(std::string_view key, std::span<const UserId> users, TypeId type,
                       std::span<const int64_t> expected, bool require_no_holds, sim::Time now);
  // The amount moved out for a migrated user; nullopt if not migrated.
  std::optional<int64_t> MigratedAmount(UserId user);
  // For a migrated user: moves what came back to `type` since (a released
  // hold) out again, recording a forward for the point service. Idempotent
  // by key; answers the amount (0: nothing came back).
  WalletReply MoveOutAgain(std::string_view key, UserId user, TypeId type, sim::Time now);
  std::vector<MigrationForward> PendingForwards(int64_t limit);
  void MarkForwardSent(std::string_view key);
  // Migrated users whose `type` balance is above zero again.
  std::vector<UserId> MigratedWithBalance(TypeId type, int64_t limit);

 private:
  struct Stmts;
  struct Pending;
  using Op = IdempotencyOp;
  struct IdemParams {
    Op op;
    int64_t a, b, c, d;
  };

  // The operations themselves; the public ones wrap them to report each
  // call (audit).
  void DoPopulate(int64_t count, std::span<const InitialBalance> balances, sim::Time now);
  WalletReply DoDeposit(std::string_view key, UserId user, TypeId type, int64_t amount,
                        sim::Time now);
  WalletReply DoTransfer(std::string_view key, UserId src, UserId dst, int64_t amount,
                         sim::Time now);
  WalletReply DoPrepare(std::string_view key, UserId src, UserId dst, int64_t amount,
                        sim::Duration ttl, sim::Time now, TypeId skip_type);
  WalletReply DoCommitKey(std::string_view key, sim::Time now);
  WalletReply DoRollbackKey(std::string_view key, sim::Time now);
  WalletReply DoPayout(std::string_view key, UserId user, int64_t amount, sim::Time now);
  int64_t DoExpireHolds(sim::Time now, int64_t limit);
  int64_t DoExpireBalanceItems(sim::Time now, int64_t limit);
  MoveOutReply DoMoveOut(std::string_view key, std::span<const UserId> users, TypeId type,
                         std::span<const int64_t> expected, bool require_no_holds, sim::Time now);
  WalletReply DoMoveOutAgain(std::string_view key, UserId user, TypeId type, sim::Time now);

  // Audit: starts collecting the facts of one call, and reports them.
  void BeginAudit();
  void EndAudit(const WalletRequest& request, const WalletReply& reply,
                std::span<const int64_t> moved = {}, UserId refused_user = 0);
  void NoteItem(int64_t item, UserId user, TypeId type, int64_t delta, bool created,
                sim::Time expires_at, uint64_t movement);

  // Balance items expire at their instant: before a call debits or credits
  // a user, the user's items whose expiry has come are moved to
  // SYS_BREAKAGE (one movement each, soonest first), so expired value is
  // never spent, moved, or counted against a cap.
  void ExpireDueItems(UserId user, sim::Time now);
  // Moves one item's remainder to SYS_BREAKAGE, in the open transaction.
  void BreakItem(int64_t item, UserId user, TypeId type, int64_t remaining, sim::Time now);

  std::optional<WalletReply> LookupIdempotent(std::string_view key, const IdemParams& p);
  void StoreIdempotent(std::string_view key, const IdemParams& p, const WalletReply& r);
  uint64_t NextId(sim::Time now);
  bool UserExists(UserId user);
  std::optional<int64_t> AccountBalance(UserId user, TypeId type);
  void AddToAccount(UserId user, TypeId type, int64_t delta);
  static constexpr size_t kMaxUserTypes = AccountTypes::kMaxUserTypes;
  // A user's balances indexed by type id (user types only).
  struct Balances {
    static constexpr size_t kMax = AccountTypes::kExternal;
    std::array<int64_t, kMax> value{};
    std::array<bool, kMax> exists{};
  };
  void LoadBalances(UserId user, Balances& b);
  // Which accounts an amount comes from or goes to; planned before any write.
  struct Plan {
    std::array<std::pair<TypeId, int64_t>, kMaxUserTypes> parts;
    size_t n = 0;
  };
  // Plans draining `amount` from the user's accounts in debit order. False
  // if the user cannot cover it.
  bool PlanDebit(UserId user, int64_t amount, Plan& plan, TypeId skip = 0);
  void ApplyDebit(UserId user, const Plan& plan, uint64_t movement, std::vector<JournalEntry>& out);
  // Takes `amount` from one account, consuming balance items; with
  // `consumed`, adds what it took to it as terms (one per expiry instant).
  void DebitAccount(UserId user, TypeId type, int64_t amount, uint64_t movement,
                    std::vector<ValueTerm>* consumed = nullptr);
  // The terms moved out for a migrated user, and of a forward, as stored.
  std::vector<ValueTerm> MigratedTerms(UserId user);
  std::vector<ValueTerm> ForwardTerms(std::string_view key);
  // Plans filling the user's accounts in credit order up to their caps.
  // False if the caps leave no room for all of it.
  bool PlanCredit(UserId user, int64_t amount, Plan& plan);
  void ApplyCredit(UserId user, const Plan& plan, uint64_t movement, sim::Time now,
                   std::vector<JournalEntry>& out);
  void CreditAccount(UserId user, TypeId type, int64_t amount, uint64_t movement, sim::Time now);
  void WriteMovement(uint64_t id, MovementKind kind, std::string_view key, uint64_t hold_id,
                     sim::Time now, std::vector<JournalEntry>& entries);
  // Returns the funds of a held hold to the items they came from.
  void ReleaseHold(uint64_t hold_id, UserId src, int64_t amount, uint64_t prepare_movement,
                   HoldState final_state, sim::Time now);
  void CommitTxn(sim::Transaction& txn);
  // The second phase of one hold, inside the caller's open transaction;
  // they commit it when they change anything.
  WalletReply CommitHold(sim::Transaction& txn, uint64_t hold_id, sim::Time now);
  WalletReply RollbackHold(sim::Transaction& txn, uint64_t hold_id, sim::Time now);
  // The hold a Prepare with this key created, if any.
  std::optional<uint64_t> HoldOfKey(std::string_view key);
  // The operation the key is recorded under in the idempotency table, if any.
  std::optional<Op> OpOfKey(std::string_view key);

  sim::Database& db_;
  const AccountTypes& types_;
  LedgerOptions options_;
  LedgerObserver* observer_;
  std::unique_ptr<Stmts> st_;
  std::unique_ptr<IdGenerator> ids_;
  std::unique_ptr<Outbox> outbox_;
  // Movements written by the open transaction, handed to the observer
  // once it commits.
  std::vector<Pending> pending_;
  std::vector<std::pair<uint64_t, sim::Time>> pending_holds_;
  // Whether some user type expires (else ExpireDueItems has nothing to do).
  bool any_expiry_ = false;
  // Audit: item changes of the open transaction, and the committed facts of
  // the call being made.
  std::vector<ItemChange> txn_items_;
  std::vector<ItemChange> call_items_;
  std::vector<Pending> call_movements_;
  std::vector<MovementRecord> call_records_;
  std::vector<HoldCreated> call_holds_;
};

}  // namespace paylab::system
