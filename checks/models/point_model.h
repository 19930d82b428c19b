// A reference model of the point ledger: a small in-memory executable
// specification, written from the rules of seeds 000, 001, 002 and 003 and
// the contract in system/points/point_ledger.h, never from the ledger's code (it
// shares no helper for ordering, expiry or rewards with
// system/points/point_ledger.cc; it uses only the ledger's public record types).
//
// Fed each request the ledger applied, in the order it applied it
// (PointApplied), the model predicts the answer and every effect: which
// movements, with which accounts and amounts; which lots were created (with
// which amount, expiry and state), issued, revoked, and how much each lot's
// remainder changed, for which hold; which hold was created and when it
// expires. Check() compares the prediction with the facts and returns both
// sides on the first difference; the model then keeps the request's effect
// as it predicted it. New lots and holds are named with the IDs the facts
// gave them (the ledger's IDs cannot be predicted, only their use): a new
// lot by the user it was created for, a new hold as the call's one hold.
//
// The rules (the specification):
//  - Accounts. Users 1..N (Populate, once: later calls do nothing) each
//    have a POINT account; the system user 0 has ISSUE, HOLDS, BREAKAGE and
//    CLEARING. Every movement's entries sum to zero. Populate gives each
//    user one lot of the initial amount (key "initial/<user>"), expiring
//    `expires_after` later (never when <= 0), confirmed at once.
//  - Lots and grants (seeds 001, 002). A grant creates a lot provisional:
//    not spendable, no movement. Confirming it (at once for a confirmed
//    grant) moves its amount ISSUE -> user POINT in an issue movement keyed
//    by the grant key, and its remainder becomes its amount. Revoking a
//    provisional lot makes it revoked (its remainder stays 0). The life of
//    a lot never goes back: confirming a revoked lot or revoking a
//    confirmed one is invalid.
//  - Grants are idempotent by key. A key with a lot answers from it: the
//    same user, amount and expiry answer ok (with the lot's ID and amount)
//    and change nothing but a provisional lot a confirmed grant confirms;
//    other parameters are invalid; a revoked key (or tombstone) answers
//    revoked (amount 0) to a provisional grant, invalid to a confirmed one.
//    A fresh key needs a known user and expires_at > now; an empty key or
//    amount <= 0 is invalid. Confirming an unknown key: no_such_grant.
//    Revoking an unknown key leaves a tombstone: a revoked lot of user 0,
//    amount 0, expiring at the instant of the revoke; ok with its ID.
//    Revoking a revoked lot answers ok with its ID and amount again.
//  - Payment events (seed 002): reward = floor(amount * reward_bp / 10000)
//    (0 for amount <= 0; reward_bp in [0, 10000], grant_ttl > 0, else
//    invalid); key "grant/<payment id>". Reward 0 or status created:
//    ignored. Voided or failed: revoke the key (a tombstone if unknown).
//    Authorized or captured with a lot of another payer or amount (a
//    tombstone aside): invalid. Authorized: a provisional grant expiring at
//    now + grant_ttl if the key has no lot; a revoked lot answers revoked;
//    any other lot answers ok as it is. Captured: confirm the lot, or, if
//    there is none, grant and confirm it at once (expiring now + grant_ttl).
//  - Expiry boundary: a lot is spendable while now < expires_at. At
//    expires_at it is no longer spendable, but it keeps its points (in the
//    user's POINT balance) until the lot sweep moves its remainder to
//    BREAKAGE, one movement per lot keyed by its grant key.
//  - Debit by range (seed 000). A try (TCC, system/common/tcc.h) takes
//    min(amount_max, spendable) if that is >= amount_min, else it is
//    declined and nothing moves. It consumes confirmed spendable lots
//    soonest-expiring first, ties by lot ID, each as far as it goes, and
//    moves the amount user POINT -> HOLDS (no movement for 0: the hold is
//    still made). The hold expires at now + ttl. Invalid: an empty key,
//    amount_min < 0, amount_max < amount_min, ttl outside (0, hold_ttl_max],
//    user <= 0, an unknown user (none of these is remembered).
//  - Keys (TCC). A try's answer (ok or declined) is remembered with its
//    parameters: the same try answers the same again; other parameters are
//    invalid. A cancel of an unknown key answers ok, amount 0, and leaves a
//    tombstone: the late try answers cancelled.
//  - Holds. A hold confirms only while now < expires_at: HOLDS -> CLEARING
//    (no movement for 0), ok with the hold's ID and amount, the same again
//    after. At or after expires_at the confirm releases the hold as expired
//    and answers expired (ID, amount 0), every time after. A cancel
//    releases a held hold (whatever the time) as cancelled: HOLDS -> user,
//    each lot given back exactly what the try took from it (even a lot that
//    expired since: the lot sweep then takes it). A cancel of a cancelled or
//    expired hold answers ok with its ID and amount, moving nothing; of a
//    confirmed one, invalid; of a declined or cancelled-first key, ok with
//    ID 0 and amount 0. A confirm of anything but a try answered ok is
//    invalid, as is a confirm of a cancelled hold.
//  - Value received with its terms (a migration, seed 000: the data must
//    be identical): one lot per term, "<key>/<n>" in the terms' order,
//    issued at once and expiring as the term says; a term already expired
//    is issued and goes to BREAKAGE at once. A key received before answers
//    ok again only for the same user and terms; else invalid (so are an
//    empty key, no terms, a term of amount <= 0, an unknown user).
//  - Refunds give back a confirmed debit with its terms: each part the try
//    took becomes a lot "<refund key>/<n>" (in the order taken), issued at
//    once, expiring when the lot it came from expires (broken at once if
//    that has passed). A refund key answers as the first time for the same
//    debit, invalid for another; a debit not confirmed: invalid.
//  - Sweeps. The hold sweep releases, as expired, held holds with
//    expires_at <= now in (expires_at, ID) order, up to its limit; the lot
//    sweep moves confirmed lots with a remainder and expires_at <= now in
//    (expires_at, ID) order, up to its limit. Each answers how many.
//
// Determinism: plain containers; lookups in hash maps never depend on their
// order; everything iterated is ordered.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sim/time.h"
#include "system/points/point_ledger.h"

namespace paylab::models {

using system::LotEvent;
using system::LotState;
using system::PointAccount;
using system::PointHoldState;
using system::PointMovementKind;
using system::UserId;

struct PointRules {
  sim::Duration hold_ttl_max = 0;  // a try's ttl must be in (0, hold_ttl_max]
};

// What the model saw, for reports.
struct PointModelStats {
  int64_t requests = 0;
  int64_t refusals = 0;            // answered invalid, cancelled, expired, revoked, no_such_grant
  int64_t declines = 0;            // tries declined (not enough points within the range)
  int64_t multi_lot_debits = 0;    // tries that consumed two lots or more
  int64_t lots_expired = 0;        // lots whose remainder went to BREAKAGE
  int64_t holds_expired = 0;       // holds released as expired (sweep or late confirm)
  int64_t grants_provisional = 0;  // provisional lots created
  int64_t grants_confirmed = 0;    // lots confirmed (initial lots included)
  int64_t grants_revoked = 0;      // provisional lots revoked (tombstones aside)
};

class PointModel {
 public:
  explicit PointModel(PointRules rules) : rules_(rules) {}

  // Predicts `fact.request`, compares with the facts, then applies the
  // request. Returns "" when prediction and facts agree, else a report of
  // the first difference with both sides.
  std::string Check(const system::PointApplied& fact);

  // The model's state, to compare with the database at the end.
  int64_t UserBalance(UserId user) const;
  int64_t SystemBalance(PointAccount account) const;
  int64_t user_count() const { return static_cast<int64_t>(users_.size()) - 1; }
  struct LotView {
    int64_t remaining = 0;
    LotState state = LotState::kProvisional;
  };
  std::optional<LotView> LotOf(uint64_t lot) const;
  std::optional<PointHoldState> HoldStateOf(uint64_t hold) const;
  size_t lot_count() const { return lots_.size(); }
  size_t hold_count() const { return holds_.size(); }
  const PointModelStats& stats() const { return stats_; }

  // What a request is predicted to do.
  struct Entry {
    UserId user = 0;
    PointAccount account = PointAccount::kPoint;
    int64_t delta = 0;
    auto operator<=>(const Entry&) const = default;
  };
  struct Movement {
    PointMovementKind kind = PointMovementKind::kIssue;
    std::string key;
    uint64_t hold = 0;  // the hold it belongs to, 0 for none
    uint64_t lot = 0;   // the lot it belongs to (issue, breakage), 0 for none
    std::vector<Entry> entries;
  };
  // One lot change, tied to the movement it belongs to by its place in
  // the call's movements (1-based; 0: a change without a movement).
  struct LotFact {
    size_t movement = 0;
    LotEvent event = LotEvent::kLogged;
    uint64_t lot = 0;
    UserId user = 0;           // created, issued, revoked
    int64_t amount = 0;        // the lot's amount, or the remainder's change (logged)
    sim::Time expires_at = 0;  // created
    LotState state = LotState::kProvisional;  // created, issued, revoked
    uint64_t hold = 0;                        // logged
    auto operator<=>(const LotFact&) const = default;
  };
  struct Prediction {
    system::GrantReply grant;
    system::TccReply tcc;
    int64_t count = 0;
    std::vector<Movement> movements;
    std::vector<LotFact> lots;
    std::optional<system::PointHoldCreated> hold;
    // A fact the model cannot even take (a new ID that is not new); set
    // while predicting, reported first.
    std::string broken;
  };

 private:
  struct Lot {
    uint64_t id = 0;
    UserId user = 0;
    int64_t amount = 0;
    int64_t remaining = 0;
    sim::Time expires_at = 0;
    LotState state = LotState::kProvisional;
    std::string key;
  };
  struct Hold {
    uint64_t id = 0;
    std::string key;
    UserId user = 0;
    int64_t amount = 0;
    PointHoldState state = PointHoldState::kHeld;
    sim::Time expires_at = 0;
    std::vector<std::pair<uint64_t, int64_t>> taken;  // (lot, points), in the order taken
  };
  struct TccKey {
    bool cancelled_first = false;
    UserId user = 0;
    int64_t amount_min = 0;
    int64_t amount_max = 0;
    sim::Duration ttl = 0;
    system::TccReply answer;
  };
  struct User {
    int64_t balance = 0;  // the POINT account, as the journal builds it
    // Confirmed lots with a remainder, by (expires_at, ID): the try's order.
    std::set<std::pair<sim::Time, uint64_t>> open_lots;
  };

  // The new lot and hold IDs this call's facts give, looked up by the
  // predictions that create them.
  struct NewIds {
    std::vector<std::pair<UserId, uint64_t>> lots;  // created lots by user, sorted
    std::vector<bool> used;  // a call creating several lots for a user names them in order
    uint64_t hold = 0;
  };
  struct Refund {
    std::string debit_key;
    uint64_t lot = 0;
    int64_t amount = 0;
  };

  // --- the rules, each predicting into `p` and applying to the model ----
  void PredictPopulate(const system::PointRequest& r, Prediction& p);
  void PredictGrant(std::string_view key, UserId user, int64_t amount, sim::Time expires_at,
                    bool confirmed, sim::Time now, Prediction& p);
  void PredictConfirmGrant(std::string_view key, Prediction& p);
  void PredictRevokeGrant(std::string_view key, sim::Time now, Prediction& p);
  void PredictPaymentEvent(const system::PointRequest& r, Prediction& p);
  void PredictTry(const system::PointRequest& r, Prediction& p);
  void PredictConfirmDebit(const system::PointRequest& r, Prediction& p);
  void PredictCancelDebit(const system::PointRequest& r, Prediction& p);
  void PredictExpireHolds(const system::PointRequest& r, Prediction& p);
  void PredictExpireLots(const system::PointRequest& r, Prediction& p);
  void PredictReceiveValue(const system::PointRequest& r, Prediction& p);
  void PredictRefundDebit(const system::PointRequest& r, Prediction& p);
  // One issued lot per term, "<key>/<n>"; an expired term broken at once.
  void IssueTerms(std::string_view key, UserId user, const std::vector<system::ValueTerm>& terms,
                  sim::Time now, Prediction& p);
  // Moves a confirmed lot's remainder to BREAKAGE.
  void BreakLot(Lot& lot, Prediction& p);

  // Creates a provisional lot named by the facts; nullptr (and p.broken)
  // if the facts name none, or an ID already in use.
  Lot* CreateLot(std::string_view key, UserId user, int64_t amount, sim::Time expires_at,
                 LotState state, Prediction& p);
  // ISSUE -> user: the lot becomes confirmed with its amount spendable.
  void IssueLot(Lot& lot, Prediction& p);
  // Gives a held hold's points back to its lots.
  void Release(Hold& h, PointHoldState final_state, Prediction& p);
  // Every change of a lot's remainder goes through here: it keeps the
  // user's open lots and the expiry index in step.
  void AddRemaining(Lot& lot, int64_t delta);
  void ResolveHold(Hold& h, PointHoldState state);
  void AddSystem(PointAccount account, int64_t delta, Movement& m);
  void AddUser(UserId user, int64_t delta, Movement& m);
  Lot* FindLot(std::string_view key);
  bool UserExists(UserId user) const;

  // Compares p with the facts; "" when they agree.
  std::string Compare(const system::PointApplied& fact, const Prediction& p) const;
  std::string CompareMovements(const system::PointApplied& fact, const Prediction& p) const;
  std::string CompareLots(const system::PointApplied& fact, const Prediction& p) const;

  PointRules rules_;
  std::vector<User> users_ = std::vector<User>(1);  // by user ID; [0] unused
  int64_t issue_ = 0;
  int64_t holds_account_ = 0;
  int64_t breakage_ = 0;
  int64_t clearing_ = 0;
  std::unordered_map<uint64_t, Lot> lots_;
  std::unordered_map<std::string, uint64_t> lot_of_key_;
  // Confirmed lots with a remainder, and held holds, by (expiry, ID): the
  // sweeps' order, without scanning everything.
  std::set<std::pair<sim::Time, uint64_t>> lots_by_expiry_;
  std::set<std::pair<sim::Time, uint64_t>> held_by_expiry_;
  std::unordered_map<uint64_t, Hold> holds_;
  std::unordered_map<std::string, TccKey> tcc_;
  std::unordered_map<std::string, Refund> refunds_;
  // The IDs the call being checked gives to what it creates.
  NewIds new_ids_;
  PointModelStats stats_;
};

}  // namespace paylab::models
