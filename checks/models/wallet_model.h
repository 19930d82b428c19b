// A reference model of the wallet ledger: a small in-memory executable
// specification, written from the rules of seeds 000 and 004 and the
// scenario's account types, never from the ledger's code (it shares no
// helper for ordering, expiry or caps with system/wallet/ledger.cc).
//
// Fed each request the ledger applied, in the order it applied it
// (system/wallet/ledger.h, WalletApplied), the model predicts the answer and every
// effect: which movements, with which accounts and amounts, which balance
// items were consumed or given back and by how much, which items were
// created with which expiry, and when a new hold expires. Check() compares
// the prediction with the facts and returns both sides on the first
// difference; then the model takes the request's effect as it predicted it,
// naming new things (movements, items, holds) with the IDs the facts gave
// them (the ledger's IDs cannot be predicted, only their use).
//
// The rules (the specification):
//  - Account types are configured: a debit priority (lower first), may it
//    go negative, how long its items live, auto-created on first credit or
//    opened with the user, a balance cap. A debit drains the user's open
//    accounts in ascending priority, each down to zero; whatever is left
//    goes to the first account (same order) that may go negative. A credit
//    fills accounts in descending priority, each up to its cap (a missing
//    account counts only if it is auto-created). Seed 000: CASHBACK is
//    debited first and credited last.
//  - Balance items (seed 004): a credit creates one item per account it
//    reaches (what repays the account's debt first creates none), expiring
//    `expires_after` after the credit (never when 0). A debit consumes the
//    account's items soonest-expiring first, ties by item ID (the order of
//    creation).
//  - Expiry boundary: an item is spendable while now < expires_at. Before a
//    fresh request debits or credits a user (deposit, transfer, prepare,
//    the credit of a commit, payout, migration moves), every item of that
//    user with expires_at <= now goes to SYS_BREAKAGE, one movement per
//    item, soonest first (transfer: the source's, then the destination's).
//    The sweep (ExpireBalanceItems) takes due items of all users in
//    (expires_at, id) order, up to its limit.
//  - Holds: Prepare moves the amount into SYS_HOLDS and the hold expires at
//    now + ttl, ttl in (0, hold_ttl_max]. A hold commits only while
//    now < expires_at; at or after it, a commit releases the hold as expired
//    and answers hold_expired (every time after). Commit credits the
//    destination (the clearing account for the system user, uncapped); if
//    the caps leave no room the hold stays held (cap_exceeded). A release
//    (rollback, expiry) gives each account back what the prepare took from
//    it and each item exactly what was taken from it; an account that may
//    go negative gets its part as a fresh credit instead (debt first).
//  - Two-phase by key (system/common/tcc.h): commit and rollback by the prepare's
//    key; a rollback of a key never seen is an empty rollback: ok, amount
//    0, and a tombstone that makes the late prepare answer cancelled.
//  - Idempotency: a key used again with the same operation and parameters
//    answers what it answered first and changes nothing (refusals
//    included); with anything else it is refused (idempotency_mismatch).
//  - Migration (seed 000): MoveOut moves each user's whole balance of one
//    type to SYS_MIGRATED, all users or none; a user moved before moves
//    nothing again; a batch key seen before answers what it moved.
//    MoveOutAgain moves what came back to a migrated user.
//
// Determinism: plain containers; lookups in hash maps never depend on their
// order; everything iterated is ordered.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "sim/time.h"
#include "system/wallet/ledger.h"

namespace paylab::models {

using system::MovementKind;
using system::TypeId;
using system::UserId;
using system::WalletStatus;

// One configured user account type, as the scenario states it.
struct WalletTypeRule {
  TypeId id = 0;  // the ID the ledger's journal names it by
  std::string name;
  int64_t debit_priority = 0;
  bool allow_negative = false;
  sim::Duration expires_after = 0;  // 0: never
  bool auto_create = true;
  int64_t balance_cap = 0;  // 0: none
};

struct WalletRules {
  std::vector<WalletTypeRule> types;
  sim::Duration hold_ttl_max = 0;
};

// What the model saw of one request, for reports.
struct WalletModelStats {
  int64_t requests = 0;
  int64_t multi_account_debits = 0;  // debits that drained two accounts or more
  int64_t multi_item_debits = 0;     // debits that consumed two items or more of one account
  int64_t items_expired = 0;         // items moved to SYS_BREAKAGE
  int64_t holds_expired = 0;         // holds released as expired (sweep or late commit)
  int64_t refusals = 0;              // requests answered with a refusal
  // Requests that landed on a boundary: within one tick of the expiry of a
  // hold or balance item they touch; an amount equal to the source's whole
  // spendable balance (or one more), or to a cap's room (or one more).
  int64_t on_time_boundary = 0;
  int64_t on_amount_boundary = 0;
};

class WalletModel {
 public:
  explicit WalletModel(WalletRules rules);

  // Predicts `fact.request`, compares with the facts, then applies the
  // request. Returns "" when prediction and facts agree, else a report of
  // the first difference with both sides.
  std::string Check(const system::WalletApplied& fact);

  // The model's state, to compare with the database at the end.
  int64_t Balance(UserId user, TypeId type) const;
  int64_t SystemBalance(TypeId type) const;
  // Remaining of an item the model knows; nullopt for an unknown item.
  std::optional<int64_t> ItemRemaining(int64_t item) const;
  std::optional<system::HoldState> HoldStateOf(uint64_t hold) const;
  size_t item_count() const { return items_.size(); }
  size_t hold_count() const { return holds_.size(); }
  const WalletModelStats& stats() const { return stats_; }

  // What a request is predicted to do: the answer and every effect.
  struct Entry {
    UserId user = 0;
    TypeId type = 0;
    int64_t delta = 0;
    auto operator<=>(const Entry&) const = default;
  };
  struct ItemDelta {
    int64_t item = 0;  // 0: a new item (matched by user and type)
    UserId user = 0;
    TypeId type = 0;
    int64_t delta = 0;
    sim::Time expires_at = 0;  // new items
    auto operator<=>(const ItemDelta&) const = default;
  };
  struct Movement {
    MovementKind kind = MovementKind::kDeposit;
    std::string key;
    std::vector<Entry> entries;
    std::vector<ItemDelta> items;
  };
  struct Prediction {
    WalletStatus status = WalletStatus::kOk;
    int64_t amount = 0;
    // The answer's ID: a hold's ID known to the model, or which fact names
    // it (a new movement's or hold's ID).
    enum class IdFrom : uint8_t { kNone, kKnown, kFirstMovement, kLastMovement, kNewHold };
    IdFrom id_from = IdFrom::kNone;
    uint64_t id = 0;
    std::vector<Movement> movements;
    std::optional<sim::Time> new_hold_expires;
    std::vector<int64_t> moved;  // MoveOut
    UserId refused_user = 0;
  };

 private:
  struct Item {
    int64_t id = 0;
    UserId user = 0;
    TypeId type = 0;
    int64_t remaining = 0;
    sim::Time expires_at = 0;
  };
  struct Account {
    bool open = false;
    int64_t balance = 0;
  };
  struct User {
    bool exists = false;
    std::map<TypeId, Account> accounts;
    // Items with something left, in any order (consumption sorts them).
    std::vector<int64_t> open_items;
    // Holds still held that this user pays.
    std::vector<uint64_t> held;
  };
  struct Hold {
    uint64_t id = 0;
    std::string key;
    UserId src = 0;
    UserId dst = 0;
    int64_t amount = 0;
    system::HoldState state = system::HoldState::kHeld;
    sim::Time expires_at = 0;
    std::vector<std::pair<TypeId, int64_t>> taken;         // by account
    std::vector<std::pair<int64_t, int64_t>> items_taken;  // by item
  };
  enum class KeyOp : uint8_t { kDeposit, kTransfer, kPrepare, kPayout, kTombstone };
  struct KeyRecord {
    KeyOp op = KeyOp::kDeposit;
    int64_t a = 0, b = 0, c = 0, d = 0;
    WalletStatus status = WalletStatus::kOk;
    uint64_t id = 0;
    int64_t amount = 0;
    bool pending_id = false;  // the id is the new movement's or hold's, set once known
  };

  // --- the rules, each predicting into `p` and applying to the model ----
  // (Apply* functions change the state; the caller has checked the facts.)
  void PredictPopulate(const system::WalletRequest& r, Prediction& p);
  void PredictDeposit(const system::WalletRequest& r, Prediction& p);
  void PredictTransfer(const system::WalletRequest& r, Prediction& p);
  void PredictPrepare(const system::WalletRequest& r, Prediction& p);
  void PredictCommitHold(uint64_t hold, sim::Time now, Prediction& p);
  void PredictRollbackHold(uint64_t hold, sim::Time now, Prediction& p);
  void PredictCommitKey(const system::WalletRequest& r, Prediction& p);
  void PredictRollbackKey(const system::WalletRequest& r, Prediction& p);
  void PredictPayout(const system::WalletRequest& r, Prediction& p);
  void PredictExpireHolds(const system::WalletRequest& r, Prediction& p);
  void PredictExpireItems(const system::WalletRequest& r, Prediction& p);
  void PredictMoveOut(const system::WalletRequest& r, Prediction& p);
  void PredictMoveOutAgain(const system::WalletRequest& r, Prediction& p);

  // Counts the request if it lands on a boundary (before it is applied).
  void CountBoundaries(const system::WalletRequest& r);
  bool NearItemExpiry(UserId user, sim::Time now) const;
  int64_t Spendable(UserId user, TypeId skip) const;
  // A refusal, remembered under the key when `key` is set.
  void Refuse(Prediction& p, WalletStatus s);
  // Whether the key answers from its record (filled into p).
  bool Replayed(std::string_view key, KeyOp op, int64_t a, int64_t b, int64_t c, int64_t d,
                Prediction& p);
  void Remember(std::string_view key, KeyOp op, int64_t a, int64_t b, int64_t c, int64_t d,
                const Prediction& p);

  // Breaks the user's due items (movements into p, state changed).
  void ExpireDue(UserId user, sim::Time now, Prediction& p);
  void BreakItem(Item& item, Prediction& p);
  // Every change of an item's remainder goes through here: it keeps the
  // user's open items and the expiry index in step.
  void AddRemaining(Item& item, int64_t delta);
  void SetHoldState(Hold& h, system::HoldState state);
  // Debit and credit plans: which accounts, how much. False: not coverable.
  using Plan = std::vector<std::pair<TypeId, int64_t>>;
  bool PlanDebit(UserId user, int64_t amount, TypeId skip, Plan& plan) const;
  bool PlanCredit(UserId user, int64_t amount, Plan& plan) const;
  // Applies a plan into movement m (entries and item deltas).
  void TakeDebit(UserId user, const Plan& plan, Movement& m,
                 std::vector<std::pair<int64_t, int64_t>>* items_taken);
  void TakeFromAccount(UserId user, TypeId type, int64_t amount, Movement& m,
                       std::vector<std::pair<int64_t, int64_t>>* items_taken);
  void GiveCredit(UserId user, const Plan& plan, sim::Time now, Movement& m);
  void CreditAccount(UserId user, TypeId type, int64_t amount, sim::Time now, Movement& m);
  void Release(Hold& h, system::HoldState final_state, sim::Time now, Prediction& p);
  void AddSystem(TypeId type, int64_t delta, Movement& m);

  // Compares p with the facts; "" when they agree. Then names new items,
  // holds and key answers from the facts.
  std::string Compare(const system::WalletApplied& fact, const Prediction& p) const;
  void Learn(const system::WalletApplied& fact, const Prediction& p);

  const WalletTypeRule* Rule(TypeId type) const;
  User& UserAt(UserId user);
  const User* FindUser(UserId user) const;

  WalletRules rules_;
  std::vector<TypeId> debit_order_;   // ascending priority
  std::vector<TypeId> credit_order_;  // descending priority
  std::vector<User> users_;           // by user ID; [0] unused
  std::map<TypeId, int64_t> system_;  // the system user's accounts
  std::unordered_map<int64_t, Item> items_;
  // Open items that expire, and held holds, by (expiry, ID): the sweeps'
  // order, without scanning everything.
  std::set<std::pair<sim::Time, int64_t>> expiring_items_;
  std::set<std::pair<sim::Time, uint64_t>> held_by_expiry_;
  std::unordered_map<uint64_t, Hold> holds_;
  std::unordered_map<std::string, uint64_t> hold_of_key_;
  std::unordered_map<std::string, KeyRecord> keys_;
  std::map<UserId, int64_t> migrated_;
  std::unordered_map<std::string, bool> batches_;
  std::unordered_map<std::string, int64_t> forwards_;
  // Items created by the request being checked carry temporary IDs (< 0)
  // until Learn() names them from the facts.
  int64_t next_temp_item_ = -1;
  // A hold created by the request being checked, until Learn() names it.
  std::optional<Hold> new_hold_;
  // The key whose record waits for the new movement's or hold's ID.
  std::string pending_key_;
  WalletModelStats stats_;
};

}  // namespace paylab::models
