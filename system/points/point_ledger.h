// The point service's ledger: per-user POINT balances made of lots with
// expiry, provisional and confirmed grants, and Try-Confirm-Cancel debits by
// range, in one SQLite database of its own (seeds 000, 001, 003).
//
// Accounts. Every user (1..N, created by Populate) has one POINT account.
// The system user (user 0, as in the wallet) holds four system accounts:
//   ISSUE     the counterpart of every confirmed grant: it goes negative, and
//             minus its balance is every point ever issued (the liability
//             taken on; what is still owed is OutstandingPoints());
//   HOLDS     points reserved by tries not yet confirmed, cancelled or expired;
//   BREAKAGE  points that expired unused;
//   CLEARING  points spent on payments (the point service's half of the
//             clearing pair with the payment service).
// Points move only as movements whose journal rows (movement, user, account,
// delta) sum to zero.
//
// Lots. A grant creates a lot (id, user, amount, remaining, expires_at,
// state, grant key). A provisional lot is not spendable and has no journal
// row; confirming it moves its amount ISSUE -> user. Only confirmed lots
// with expires_at > now are spendable. Every consumption of a lot by a try
// and every return to it (cancel, expiry of the hold) is logged (lot, hold,
// movement, delta, at), as is every expiry to BREAKAGE (hold 0).
// Invariant per user: POINT balance == the journal's sum for it == SUM of
// remaining over the user's confirmed lots (expired lots count until
// ExpireLots has moved them to BREAKAGE; Balance() shows only what can be
// spent).
//
// Grants are idempotent by key: the same key with the same parameters
// answers as before and has no second effect; other parameters: kInvalid.
// Revoking an unknown key leaves a tombstone (a revoked lot of user 0 and
// amount 0), so that a provisional grant arriving later is a no-op answered
// kRevoked. The lifecycle never goes back: revoking a confirmed grant, or
// confirming a revoked one, is kInvalid (and counted as a conflict).
//
// Debits follow the TCC participant contract of system/common/tcc.h exactly, with
// holds named by the orchestrator's key. A try debits by range: it takes
// min(amount_max, spendable) if that is at least amount_min, consuming lots
// soonest-expiring first (ties by lot id), and refuses (kDeclined, nothing
// moved) otherwise.
//
// Contract:
//  - Every operation is one SQLite transaction: its effects, its idempotency
//    record, its counters and its ID reservation commit together or not at
//    all. Operations are synchronous, so a crash never splits one.
//  - Every lot, hold and movement ID comes from IdGenerator(IdSystem::kPoint,
//    ...): its lowest bit is 1, so it never collides with a wallet ID.
//  - Expected outcomes are statuses, never exceptions. SQL errors and broken
//    invariants on the write path are programmer errors (PAYLAB_CHECK).
//  - The ledger never reads a clock: callers pass the node's virtual time.
//  - Observers hear of a movement only after its transaction committed.
#pragma once

#include <cstdint>
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
#include "system/common/ids.h"
#include "system/points/payment_event.h"
#include "system/points/schema.h"
#include "system/common/tcc.h"

namespace paylab::system {

enum class GrantStatus : uint8_t {
  kOk,           // the grant is in the state asked for (now or already)
  kRevoked,      // a provisional grant for a key already revoked (or tombstoned)
  kNoSuchGrant,  // a confirm for a key never granted
  kIgnored,      // a payment event that grants nothing (reward 0, or status created)
  kInvalid,      // bad arguments, a key reused with other parameters, or a
                 // transition the lifecycle forbids (revoke confirmed, confirm revoked)
};
std::string_view GrantStatusName(GrantStatus s);

struct GrantReply {
  GrantStatus status = GrantStatus::kOk;
  uint64_t lot_id = 0;      // the grant's lot (the tombstone's for a revoke of an unknown key)
  int64_t amount = 0;       // the lot's amount (0 for a tombstone or a refusal)
  std::string_view reason;  // a static explanation for refusals; empty when kOk
  bool operator==(const GrantReply& o) const {
    return status == o.status && lot_id == o.lot_id && amount == o.amount;
  }
};

struct PointEntry {
  UserId user = 0;
  PointAccount account = PointAccount::kPoint;
  int64_t delta = 0;
};

// A committed movement, as handed to observers.
struct PointMovementRecord {
  uint64_t id = 0;
  PointMovementKind kind = PointMovementKind::kIssue;
  std::string_view key;  // the grant key (issue) or the TCC key (try, confirm, cancel, expire)
  uint64_t hold_id = 0;  // 0 unless the movement belongs to a hold
  uint64_t lot_id = 0;   // 0 unless the movement belongs to one lot (issue, breakage)
  sim::Time at = 0;
  std::span<const PointEntry> entries;
};

// --- the audit view: every request as the ledger applied it ---------------
// With PointLedgerOptions::audit on, each call of a public operation that
// can change the ledger is reported once it returns
// (PointLedgerObserver::OnPointApplied): what was asked, what was answered,
// and every fact the call committed: movements, lot changes, holds created.
// A reference model (models/) predicts the same from the request alone.
enum class PointOp : uint8_t {
  kPopulate,
  kGrantProvisional,
  kConfirmGrant,
  kRevokeGrant,
  kGrantConfirmed,
  kApplyPaymentEvent,
  kTryDebit,
  kConfirmDebit,
  kCancelDebit,
  kExpireHolds,
  kExpireLots,
  kRefundDebit,
  kReceiveValue,
};
std::string_view PointOpName(PointOp op);

// The arguments of one call; fields an operation does not take stay zero.
struct PointRequest {
  PointOp op = PointOp::kTryDebit;
  std::string_view key = {};              // grants, confirm and cancel of a debit; a refund's key
  std::string_view debit_key = {};        // RefundDebit: the debit given back
  std::span<const ValueTerm> terms = {};  // ReceiveValue
  UserId user = 0;                        // grants
  int64_t amount = 0;                     // grants; populate: points per user
  sim::Time expires_at = 0;               // grants
  const PaymentEvent* event = nullptr;    // ApplyPaymentEvent
  int64_t reward_bp = 0;                  // ApplyPaymentEvent
  sim::Duration grant_ttl = 0;            // ApplyPaymentEvent
  const TccTry* tcc = nullptr;            // TryDebit
  int64_t limit = 0;                      // sweeps; populate: the user count
  sim::Duration expires_after = 0;        // populate
  sim::Time now = 0;
};

// One lot changed by a call.
enum class LotEvent : uint8_t {
  kCreated,  // inserted (provisional, or a revoked tombstone): amount, expires_at, state
  kIssued,   // confirmed: its amount became spendable (ISSUE -> user)
  kRevoked,  // a provisional lot revoked
  kLogged,   // remaining changed by `amount` (a try, a release, an expiry)
};
struct LotChange {
  LotEvent event = LotEvent::kLogged;
  uint64_t lot = 0;
  UserId user = 0;
  int64_t amount = 0;
  sim::Time expires_at = 0;
  LotState state = LotState::kProvisional;
  std::string key = {};   // kCreated: the grant key
  uint64_t hold = 0;      // kLogged: the hold, 0 for an expiry
  uint64_t movement = 0;  // kIssued, kLogged
};

struct PointHoldCreated {
  uint64_t hold_id = 0;
  UserId user = 0;
  int64_t amount = 0;
  sim::Time expires_at = 0;
};

struct PointApplied {
  const PointRequest& request;
  GrantReply grant;                                // the grant operations' answer
  TccReply tcc;                                    // the debit operations' answer
  int64_t count = 0;                               // sweeps: holds or lots expired
  std::span<const PointMovementRecord> movements;  // in the order written
  std::span<const LotChange> lots;                 // in the order made
  std::span<const PointHoldCreated> holds;
};

// Fed every committed movement, after its transaction commits; with
// PointLedgerOptions::audit, every applied call as well (after its
// movements).
class PointLedgerObserver {
 public:
  virtual ~PointLedgerObserver() = default;
  virtual void OnPointMovement(const PointMovementRecord& m) = 0;
  virtual void OnPointApplied(const PointApplied& a) {}
};

// Hands every event to each of several observers, in the order given.
class PointLedgerObserverFanout : public PointLedgerObserver {
 public:
  explicit PointLedgerObserverFanout(std::vector<PointLedgerObserver*> observers)
      : observers_(std::move(observers)) {}
  void Add(PointLedgerObserver* o) { observers_.push_back(o); }
  void OnPointMovement(const PointMovementRecord& m) override {
    for (PointLedgerObserver* o : observers_) {
      o->OnPointMovement(m);
    }
  }
  void OnPointApplied(const PointApplied& a) override {
    for (PointLedgerObserver* o : observers_) {
      o->OnPointApplied(a);
    }
  }

 private:
  std::vector<PointLedgerObserver*> observers_;
};

// Outcome counts, durable (kept in the database, updated in the transaction
// of the operation they count), so they survive crashes of the node.
struct PointCounters {
  int64_t grants_provisional = 0;  // provisional lots created
  int64_t grants_confirmed = 0;    // lots confirmed (from provisional or directly)
  int64_t grants_revoked = 0;      // provisional lots revoked
  int64_t tombstones = 0;          // revokes of unknown keys
  int64_t grant_conflicts = 0;     // kInvalid grant answers (mismatch, forbidden transition)
  int64_t events_applied = 0;      // ApplyPaymentEvent calls answered (any status)
  int64_t poison_seen = 0;         // undecodable messages received (CountPoison)
  int64_t apply_failures = 0;      // applies that failed transiently (CountApplyFailure)
  bool operator==(const PointCounters&) const = default;
};

// Reads the counters of a point database (the harness may do this while the
// node is down). Zero for a database the ledger never opened.
PointCounters ReadPointCounters(sim::Database& db);

struct PointLedgerOptions {
  uint32_t id_worker = 0;
  // A try's ttl must be in (0, hold_ttl_max].
  sim::Duration hold_ttl_max = 3600 * sim::kSecond;
  // The wall clock this node believes in: Unix ms at virtual time 0.
  int64_t clock_origin_unix_ms = kIdEpochMs + 86'400'000;
  // DEFECT id_without_system_bit: IDs are issued with the wallet's system
  // bit (0), so they can collide with the wallet's across systems; the
  // write-path assertion on the bit is skipped as well.
  bool defect_id_without_system_bit = false;
  // Report every applied call to the observer (OnPointApplied), with the
  // lot changes it made: what a reference model checks.
  bool audit = false;
};

class PointLedger {
 public:
  // Creates the schema if missing and recovers the ID generator's lease.
  // `observer` may be null.
  PointLedger(sim::Database& db, PointLedgerOptions options, PointLedgerObserver* observer);
  ~PointLedger();
  PointLedger(const PointLedger&) = delete;
  PointLedger& operator=(const PointLedger&) = delete;

  // Creates users 1..users, each with one confirmed lot of
  // `initial_points_per_user` (key "initial/<user>") expiring after
  // `expires_after` (<= 0: never), once: does nothing if users exist.
  void Populate(int64_t users, int64_t initial_points_per_user, sim::Duration expires_after,
                sim::Time now);
  int64_t user_count();

  // --- grants (idempotent by key) ----------------------------------------
  // A provisional lot: not spendable, no journal row. Bad arguments (empty
  // key, amount <= 0, unknown user, expires_at <= now) are kInvalid; a key
  // already revoked (or tombstoned) is kRevoked and changes nothing.
  GrantReply GrantProvisional(std::string_view key, UserId user, int64_t amount,
                              sim::Time expires_at, sim::Time now);
  // Confirms a provisional lot (ISSUE -> user). Confirmed already: kOk.
  // Unknown key: kNoSuchGrant. Revoked: kInvalid.
  GrantReply ConfirmGrant(std::string_view key, sim::Time now);
  // Revokes a provisional lot. Revoked already: kOk. Unknown key: a
  // tombstone, kOk. Confirmed: kInvalid.
  GrantReply RevokeGrant(std::string_view key, sim::Time now);
  // Grants and confirms at once (a capture arriving before its
  // authorisation). A provisional lot with the same parameters is confirmed;
  // revoked: kInvalid. Arguments as GrantProvisional.
  GrantReply GrantConfirmed(std::string_view key, UserId user, int64_t amount, sim::Time expires_at,
                            sim::Time now);

  // The point-assignment rule, order-insensitive and idempotent. reward =
  // amount * reward_bp / 10000 (rounded down; 0 grants nothing: kIgnored);
  // key "grant/<payment id>"; authorized: a provisional grant expiring at
  // now + grant_ttl unless the key has a grant; captured: confirm (create
  // and confirm if there is none); voided or failed: revoke (a tombstone if
  // there is none); created: kIgnored. An existing grant for another user
  // or amount is kInvalid. One transaction, counted in events_applied.
  GrantReply ApplyPaymentEvent(const PaymentEvent& e, int64_t reward_bp, sim::Duration grant_ttl,
                               sim::Time now);

  // --- TCC debit (system/common/tcc.h) ------------------------------------------
  // Debit by range; see the header comment. kInvalid for an empty key,
  // amount_min < 0, amount_max < amount_min, ttl outside (0, hold_ttl_max],
  // an unknown user, or a key tried before with other parameters. An
  // amount_min of 0 lets a user with nothing spendable hold 0 (a real hold
  // that Confirm and Cancel then resolve).
  TccReply TryDebit(const TccTry& t, sim::Time now);
  // HOLDS -> CLEARING. At or after the hold's expiry the hold is released as
  // expired instead and the answer is kExpired (every time).
  TccReply ConfirmDebit(std::string_view key, sim::Time now);
  // HOLDS -> back to the exact lots the try consumed. An unknown key is an
  // empty rollback: kOk, amount 0, and a tombstone that refuses a late try
  // with kCancelled. A cancel of an expired hold is kOk and releases nothing
  // again (its amount is the one the expiry released).
  TccReply CancelDebit(std::string_view key, sim::Time now);

  // Gives back, once, what the confirmed debit `debit_key` took, keeping its
  // terms: each part to a new confirmed lot (grant key "<refund_key>/<n>",
  // issued from ISSUE as any grant) expiring when the lot it came from
  // expires; a part whose lot has expired by `now` goes on to BREAKAGE at
  // once. Idempotent by refund_key (the same debit: the first answer;
  // another: kInvalid). kInvalid for an empty key or a debit not confirmed.
  // Answers the first new lot and the amount given back.
  GrantReply RefundDebit(std::string_view refund_key, std::string_view debit_key, sim::Time now);
  // Value arriving from another system with its terms (a migration, seed
  // 000): one confirmed lot per term (grant key "<key>/<n>", issued from
  // ISSUE), expiring when the term says; a term already expired by `now` is
  // issued and goes to BREAKAGE at once. Idempotent by key: the same user and
  // terms answer as before; others: kInvalid. Terms with amount <= 0 or an
  // unknown user: kInvalid. Answers the first lot and the total.
  GrantReply ReceiveValue(std::string_view key, UserId user, std::span<const ValueTerm> terms,
                          sim::Time now);

  // Releases (as expired) up to `limit` held holds whose expiry has passed;
  // returns how many.
  int64_t ExpireHolds(sim::Time now, int64_t limit);
  // Moves the remainder of up to `limit` confirmed lots with expires_at <=
  // now to BREAKAGE; returns how many lots.
  int64_t ExpireLots(sim::Time now, int64_t limit);

  // --- reads -------------------------------------------------------------
  // What the user can spend now: remaining of confirmed lots with
  // expires_at > now.
  int64_t Balance(UserId user, sim::Time now);
  // An account's balance as the journal built it (user 0 for system accounts).
  int64_t AccountBalance(UserId user, PointAccount account);
  // Points issued and neither spent (CLEARING) nor expired (BREAKAGE): the
  // users' POINT balances plus HOLDS, i.e. -(ISSUE + CLEARING + BREAKAGE).
  int64_t OutstandingPoints();
  PointCounters Counters();

  // The assigner's transient outcomes, counted durably (each its own
  // transaction).
  void CountPoison();
  void CountApplyFailure();

 private:
  struct Stmts;
  struct Pending;
  struct Lot;
  struct Hold;
  struct TccKey;

  // Opens the transaction of one operation. Every path that opened one
  // commits it (CommitTxn), even a read-only one: an ID drawn inside it may
  // have extended the generator's lease, which must not be rolled back.
  sim::Transaction Begin();
  uint64_t NextId(sim::Time now);
  bool UserExists(UserId user);
  void AddToAccount(UserId user, PointAccount account, int64_t delta);
  void Count(std::string_view counter, int64_t by = 1);
  std::optional<Lot> FindLot(std::string_view key);
  std::optional<Hold> FindHold(uint64_t hold_id);
  std::optional<TccKey> FindTccKey(std::string_view key);
  // The grant operations without their transaction (ApplyPaymentEvent
  // composes them in one).
  GrantReply DoGrant(std::string_view key, UserId user, int64_t amount, sim::Time expires_at,
                     bool confirmed, sim::Time now);
  GrantReply DoConfirm(std::string_view key, sim::Time now);
  GrantReply DoRevoke(std::string_view key, sim::Time now);
  void InsertLot(uint64_t id, std::string_view key, UserId user, int64_t amount,
                 sim::Time expires_at, LotState state, sim::Time now);
  // Confirms a provisional lot: its amount moves ISSUE -> user.
  void IssueLot(uint64_t lot_id, std::string_view key, UserId user, int64_t amount, sim::Time now);
  // Returns a held hold's points to the lots they came from.
  void ReleaseHold(const Hold& h, PointHoldState final_state, sim::Time now);
  void SetHoldState(uint64_t hold_id, PointHoldState state, uint64_t movement);
  void WriteMovement(uint64_t id, PointMovementKind kind, std::string_view key, uint64_t hold_id,
                     uint64_t lot_id, sim::Time now, std::vector<PointEntry>& entries);
  void LogLot(uint64_t lot_id, uint64_t hold_id, uint64_t movement, int64_t delta, sim::Time now);
  void CommitTxn(sim::Transaction& txn);

  // The operations themselves; the public ones wrap them to report each
  // call (audit).
  void DoPopulate(int64_t users, int64_t initial_points_per_user, sim::Duration expires_after,
                  sim::Time now);
  GrantReply DoGrantProvisional(std::string_view key, UserId user, int64_t amount,
                                sim::Time expires_at, sim::Time now);
  GrantReply DoConfirmGrant(std::string_view key, sim::Time now);
  GrantReply DoRevokeGrant(std::string_view key, sim::Time now);
  GrantReply DoGrantConfirmed(std::string_view key, UserId user, int64_t amount,
                              sim::Time expires_at, sim::Time now);
  GrantReply DoApplyPaymentEvent(const PaymentEvent& e, int64_t reward_bp, sim::Duration grant_ttl,
                                 sim::Time now);
  TccReply DoTryDebit(const TccTry& t, sim::Time now);
  TccReply DoConfirmDebit(std::string_view key, sim::Time now);
  TccReply DoCancelDebit(std::string_view key, sim::Time now);
  int64_t DoExpireHolds(sim::Time now, int64_t limit);
  int64_t DoExpireLots(sim::Time now, int64_t limit);
  GrantReply DoRefundDebit(std::string_view refund_key, std::string_view debit_key, sim::Time now);
  GrantReply DoReceiveValue(std::string_view key, UserId user, std::span<const ValueTerm> terms,
                            sim::Time now);
  // One confirmed lot per term, "<key>/<n>"; an expired term broken at once.
  GrantReply IssueTerms(std::string_view key, UserId user, std::span<const ValueTerm> terms,
                        sim::Time now);
  // Moves a confirmed lot's remainder to BREAKAGE, in the open transaction.
  void BreakLot(uint64_t lot, UserId user, int64_t remaining, std::string_view key, sim::Time now);
  // Audit: starts collecting the facts of one call, and reports them.
  void BeginAudit();
  void EndAudit(const PointRequest& request, const GrantReply& grant, const TccReply& tcc,
                int64_t count);
  void NoteLot(const LotChange& c);

  sim::Database& db_;
  PointLedgerOptions options_;
  PointLedgerObserver* observer_;
  std::unique_ptr<Stmts> st_;
  std::unique_ptr<IdGenerator> ids_;
  // Movements written by the open transaction, handed to the observer once
  // it commits.
  std::vector<Pending> pending_;
  // Audit: lot changes and holds of the open transaction, and the committed
  // facts of the call being made.
  std::vector<LotChange> txn_lots_;
  std::vector<PointHoldCreated> txn_holds_;
  std::vector<LotChange> call_lots_;
  std::vector<PointHoldCreated> call_holds_;
  std::vector<Pending> call_movements_;
  std::vector<PointMovementRecord> call_records_;
};

}  // namespace paylab::system
