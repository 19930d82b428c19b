// A reference model of the external partner (system/payments/partner.h): a small
// in-memory executable specification of a Try-Confirm-Cancel participant,
// written from the contract in system/common/tcc.h and system/payments/partner.h, never
// from the partner's code (it shares no helper with system/payments/partner.cc; it
// uses only the partner's public record types).
//
// Fed each request the partner applied, in the order it applied it
// (PartnerApplied), the model predicts the answer and every effect: which
// movements, of which kind, with which entries; which hold rows were
// created (held, declined, tombstone: with key, user, amount, ttl and
// expiry) or resolved (confirmed, cancelled, expired), and by which
// movement. Check() compares the prediction with the facts and returns both
// sides on the first difference; the model then keeps the request's effect
// as it predicted it, naming a new hold row with the ID the facts gave it
// (the partner's IDs cannot be predicted, only their use).
//
// The rules (the specification):
//  - Accounts. Users 1..N (populate, once: later calls do nothing) each
//    have a POINTS account opened with the initial balance, issued from the
//    system user's ISSUE account (one issue movement per user; none for a
//    balance of 0). The system user 0 has ISSUE, HOLDS and CLEARING. Every
//    movement's entries sum to zero.
//  - Try (key, user, amount_min, amount_max, ttl). First the arguments: an
//    empty key, a range (min != max), an amount <= 0, a ttl outside
//    (0, hold_ttl_max]: invalid, and the key stays free. Then the key: a
//    tombstone answers cancelled (whatever the parameters); a key tried
//    before answers its first answer (declined; or ok with its hold's ID and
//    amount, whatever became of the hold since) if user, amount and ttl are
//    the same, else invalid. Then the user: unknown (or <= 0): invalid, the
//    key stays free. A user with at least the amount in POINTS gets a held
//    hold expiring at now + ttl, its amount moved POINTS -> HOLDS in a try
//    movement; else a declined row (same parameters and expiry, no
//    movement) remembers the answer.
//  - Confirm (key). Never tried: invalid, nothing remembered. Confirmed:
//    ok again (ID, amount). Expired: expired. Cancelled, declined or a
//    tombstone: invalid. Held: while now < expires_at, HOLDS -> CLEARING
//    in a confirm movement, ok (ID, amount); at or after the instant, the
//    hold is released as expired (HOLDS -> POINTS, an expire movement) and
//    the answer is expired.
//  - Cancel (key). An empty key: invalid. Never tried: an empty rollback,
//    ok with ID 0 and amount 0, and a tombstone row (user 0, amount 0, ttl
//    0, expiring at the instant of the cancel). Held (whatever the time):
//    released as cancelled (HOLDS -> POINTS, a cancel movement), ok (ID,
//    amount). Cancelled or expired: ok (ID, amount) again, nothing moved.
//    Confirmed: invalid. Declined or a tombstone: ok, ID 0, amount 0.
//  - Expiry scan (limit): held holds with expires_at <= now, in
//    (expires_at, ID) order, up to the limit, each released as expired;
//    answers ok with amount = how many.
//  - Every answer that names no hold carries ID 0 and amount 0.
//  - Unavailable. Try, Confirm and Cancel may be answered unavailable only
//    if the unavailable rate is above zero or the request was applied inside
//    an outage window [from, to); and inside one they must be. An
//    unavailable answer changes nothing. Populate and the scan never are.
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
#include "system/payments/partner.h"
#include "system/common/tcc.h"

namespace paylab::models {

using system::PartnerAccount;
using system::PartnerHoldState;
using system::PartnerMovementKind;

struct PartnerRules {
  sim::Duration hold_ttl_max = 0;  // a Try's ttl must be in (0, hold_ttl_max]
  double unavailable_rate = 0;     // > 0: any request may be answered unavailable
  std::vector<system::PartnerOutage> outages;
};

// What the model saw, for reports.
struct PartnerModelStats {
  int64_t requests = 0;
  int64_t unavailable = 0;      // answered unavailable (nothing done)
  int64_t refusals = 0;         // answered invalid, cancelled or expired
  int64_t declines = 0;         // tries declined (not enough points)
  int64_t confirms = 0;         // holds confirmed (the first time)
  int64_t cancels = 0;          // holds released by a cancel
  int64_t empty_rollbacks = 0;  // tombstones written
  int64_t late_tries = 0;       // tries answered cancelled (after their empty rollback)
  int64_t holds_expired = 0;    // holds released as expired (scan or late confirm)
  // Confirms and cancels applied within one tick of their hold's expiry.
  int64_t on_time_boundary = 0;
};

class PartnerModel {
 public:
  explicit PartnerModel(PartnerRules rules) : rules_(std::move(rules)) {}

  // Predicts `fact.request`, compares with the facts, then applies the
  // request. Returns "" when prediction and facts agree, else a report of
  // the first difference with both sides.
  std::string Check(const system::PartnerApplied& fact);

  // The model's state, to compare with the database at the end.
  int64_t Balance(int64_t user, PartnerAccount account) const;
  int64_t user_count() const { return static_cast<int64_t>(points_.size()) - 1; }
  struct HoldView {
    std::string key;
    int64_t user = 0;
    int64_t amount = 0;
    sim::Duration ttl = 0;
    PartnerHoldState state = PartnerHoldState::kHeld;
    sim::Time expires_at = 0;
  };
  std::optional<HoldView> HoldOf(int64_t id) const;
  size_t hold_count() const { return holds_.size(); }
  int64_t movement_count() const { return movements_; }
  const PartnerModelStats& stats() const { return stats_; }

  // What a request is predicted to do.
  struct Entry {
    int64_t user = 0;
    PartnerAccount account = PartnerAccount::kPoints;
    int64_t delta = 0;
    auto operator<=>(const Entry&) const = default;
  };
  struct Movement {
    PartnerMovementKind kind = PartnerMovementKind::kIssue;
    int64_t hold = 0;  // a known hold's ID; 0 with new_hold or for an issue
    bool new_hold = false;
    std::vector<Entry> entries;
  };
  struct HoldFact {
    bool created = false;
    int64_t hold = 0;  // a known hold's ID; 0 for the row this request creates
    std::string key;
    int64_t user = 0;
    int64_t amount = 0;
    sim::Duration ttl = 0;     // created rows
    sim::Time expires_at = 0;  // created rows
    PartnerHoldState state = PartnerHoldState::kHeld;
    size_t movement = 0;  // its movement's place in the request's movements (1-based; 0: none)
  };
  struct Prediction {
    system::TccStatus status = system::TccStatus::kOk;
    int64_t id = 0;  // a known hold's ID, or (id_new_hold) the new row's
    bool id_new_hold = false;
    int64_t amount = 0;
    std::vector<Movement> movements;
    std::vector<HoldFact> holds;
  };

 private:
  struct Hold {
    int64_t id = 0;
    std::string key;
    int64_t user = 0;
    int64_t amount = 0;
    sim::Duration ttl = 0;
    PartnerHoldState state = PartnerHoldState::kHeld;
    sim::Time expires_at = 0;
  };

  // --- the rules, each predicting into `p` and applying to the model ----
  void PredictPopulate(const system::PartnerRequest& r, Prediction& p);
  void PredictTry(const system::PartnerRequest& r, Prediction& p);
  void PredictConfirm(const system::PartnerRequest& r, Prediction& p);
  void PredictCancel(const system::PartnerRequest& r, Prediction& p);
  void PredictExpire(const system::PartnerRequest& r, Prediction& p);
  // Gives a held hold's points back to its user; the row becomes `state`.
  void Release(Hold& h, PartnerHoldState state, Prediction& p);
  void Resolve(Hold& h, PartnerHoldState state, Prediction& p);
  // A movement into p, applied to the accounts.
  Movement& Move(PartnerMovementKind kind, int64_t hold, std::vector<Entry> entries, Prediction& p);
  // A new row this request creates (named by the facts in Learn).
  void Create(Hold h, size_t movement, Prediction& p);
  static void Answer(Prediction& p, system::TccStatus s, int64_t id = 0, int64_t amount = 0);

  bool InOutage(sim::Time t) const;
  // The unavailable answers' rule; "" when the fact keeps it.
  std::string CheckUnavailable(const system::PartnerApplied& fact) const;
  void CountBoundary(const system::PartnerRequest& r);

  // Compares p with the facts; "" when they agree.
  std::string Compare(const system::PartnerApplied& fact, const Prediction& p) const;
  std::string CompareMovements(const system::PartnerApplied& fact, const Prediction& p) const;
  std::string CompareHolds(const system::PartnerApplied& fact, const Prediction& p) const;
  // Names the new row with the ID the facts gave it.
  void Learn(const system::PartnerApplied& fact);

  PartnerRules rules_;
  std::vector<int64_t> points_ = std::vector<int64_t>(1);  // POINTS by user ID; [0] unused
  int64_t issue_ = 0;
  int64_t holds_account_ = 0;
  int64_t clearing_ = 0;
  int64_t movements_ = 0;
  std::unordered_map<int64_t, Hold> holds_;
  std::unordered_map<std::string, int64_t> hold_of_key_;
  // Held holds by (expiry, ID): the scan's order.
  std::set<std::pair<sim::Time, int64_t>> held_by_expiry_;
  // The row the request being checked creates, until Learn() names it.
  std::optional<Hold> new_hold_;
  PartnerModelStats stats_;
};

}  // namespace paylab::models
