// The external partner: an outside point programme that some escrows also
// pay with (seed 003). Its API is slow and unreliable, and the payment
// orchestrator must live with that: escrows that use it prefer rollback.
//
// The partner is a Try-Confirm-Cancel participant (system/common/tcc.h) and keeps
// the whole contract:
//  - TryHold takes an exact amount (amount_min == amount_max, else
//    kInvalid) from the user's partner points into HOLDS under a hold named
//    by the orchestrator's key; not enough points: kDeclined (remembered, so
//    a retried Try hears kDeclined again). A key tried again with the same
//    parameters answers as the first time; with others: kInvalid.
//  - CancelHold before any Try ("empty rollback") answers kOk with amount 0
//    and leaves a tombstone, so the late Try answers kCancelled and holds
//    nothing.
//  - ConfirmHold moves the held points to CLEARING; CancelHold (or expiry)
//    gives them back to the user. Both are idempotent. Confirm of an expired
//    hold answers kExpired every time; Cancel of an expired hold kOk,
//    releasing nothing twice. Confirm of a cancelled (or never tried, or
//    declined) key and Cancel of a confirmed one: kInvalid.
//  - Holds never confirmed or cancelled expire: a scan loop releases them.
//
// Where tcc.h leaves the choice to the participant, the partner decides:
//  - A Try's arguments are checked before its key is looked at: an empty
//    key, a range, an amount <= 0, a ttl outside (0, hold_ttl_max]: kInvalid,
//    whatever the key's history, and the key is not claimed. Then the key: a
//    tombstone answers kCancelled (whatever the parameters); a key tried
//    before answers its first answer if user, amount and ttl are the same,
//    else kInvalid. Then the user: unknown (or <= 0): kInvalid, not claimed.
//    A declined Try's row keeps its parameters and expiry (it holds nothing).
//  - A hold commits only while now < expires_at. A Confirm at or after the
//    instant (before the scan got to it) releases the hold as expired itself
//    and answers kExpired; the scan releases held holds with expires_at <=
//    now in (expires_at, id) order, up to its batch limit. A Cancel of a
//    hold still held releases it as cancelled, whatever the time.
//  - Answers carry the hold's ID and amount when a hold is named: a Try
//    that holds (and its replays), a Confirm that confirms (and its
//    replays), a Cancel of a held, cancelled or expired hold. Every other
//    answer (declined, kCancelled, kExpired, kInvalid, an empty rollback, a
//    Cancel of a declined key or a tombstone) carries ID 0 and amount 0.
//
// Slow and unreliable: every request first sleeps a service time drawn
// uniformly from [service_time_min, service_time_max] ("partner.latency"
// stream), then answers kUnavailable without doing anything with
// probability unavailable_rate ("partner.faults" stream) or if it is inside
// an outage window. The expiry scan is internal and never unavailable.
//
// Storage: the node's own SQLite database. A journal where every movement
// sums to zero, over per-user POINTS accounts and three system accounts of
// the system user 0: ISSUE (where the points were issued from; negative),
// HOLDS (points held by live holds) and CLEARING (the partner's half of the
// clearing pair with the payment service: confirmed holds; read it as
// `SELECT balance FROM accounts WHERE user_id = 0 AND account = 3`). Users
// 1..users are populated once, each with initial_balance points.
//
// IDs: the partner's IDs (holds, movements) are SQLite rowids of its own
// tables: deterministic, unique within the partner, and outside paylab's
// snowflake ID space (they are never compared with wallet or point IDs).
//
// Every operation is one SQLite transaction with no suspension inside, so a
// crash happens either before a request was applied or after it committed;
// a crash during the service time loses the request unanswered.
//
// Audit (PartnerConfig::audit): every request the partner applied is
// reported to its observer once it is done (PartnerObserver::OnApplied):
// what was asked, what was answered, and every fact it committed (the
// movements with their entries, the hold rows it created or resolved). An
// unavailable answer is reported too, with no facts: it must change
// nothing. The expiry scan and the population at boot are reported as
// requests of their own. A reference model (checks/models/partner_model.h)
// predicts the same from the request alone.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sim/context.h"
#include "sim/random.h"
#include "sim/simulator.h"
#include "sim/storage.h"
#include "system/common/tcc.h"
#include "system/payments/schema.h"

namespace paylab::system {

namespace asio = boost::asio;

// A window of virtual time [from, to) during which the partner answers
// every request kUnavailable.
struct PartnerOutage {
  sim::Time from = 0;
  sim::Time to = 0;
};

struct PartnerConfig {
  // Population: users 1..users, each with initial_balance partner points.
  int64_t users = 0;
  int64_t initial_balance = 0;
  // The largest ttl a Try may ask.
  sim::Duration hold_ttl_max = 3600 * sim::kSecond;
  // The expiry job releases up to expiry_batch_max expired holds per scan.
  sim::Duration expiry_scan_interval = 5 * sim::kSecond;
  int64_t expiry_batch_max = 1000;
  // Every request's service time, uniform in [min, max].
  // REQUIRES: 0 <= service_time_min <= service_time_max.
  sim::Duration service_time_min = 20 * sim::kMillisecond;
  sim::Duration service_time_max = 500 * sim::kMillisecond;
  // Fault: the probability that a request is answered kUnavailable.
  double unavailable_rate = 0;
  // Fault: windows during which every request is answered kUnavailable.
  std::vector<PartnerOutage> outages;
  // Report every applied request to the observer (the audit view). Off, the
  // partner collects nothing for it.
  bool audit = false;
  // DEFECT partner_key_ignores_params: a Try with a key tried before answers
  // the first answer whatever its parameters (idempotency by key alone), so
  // another amount, user or ttl is not refused.
  bool defect_key_ignores_params = false;
};

// One journal entry of a movement.
struct PartnerEntry {
  int64_t user = 0;
  PartnerAccount account = PartnerAccount::kPoints;
  int64_t delta = 0;
};

// --- the audit view: every request as the partner applied it --------------
enum class PartnerOp : uint8_t { kPopulate, kTry, kConfirm, kCancel, kExpire };
std::string_view PartnerOpName(PartnerOp op);

// The arguments of one request; fields an operation does not take stay zero.
struct PartnerRequest {
  PartnerOp op = PartnerOp::kTry;
  const TccTry* tcc = nullptr;  // try
  std::string_view key = {};    // try (tcc->key), confirm, cancel
  int64_t users = 0;            // populate
  int64_t initial_balance = 0;  // populate
  int64_t limit = 0;            // expiry scan: its batch limit
  sim::Time now = 0;            // when it was applied (after the service time)
};

// A committed movement.
struct PartnerMovementRecord {
  int64_t id = 0;
  PartnerMovementKind kind = PartnerMovementKind::kIssue;
  int64_t hold_id = 0;  // 0 for an issue
  sim::Time at = 0;
  std::span<const PartnerEntry> entries;
};

// A hold row a request wrote: inserted (a Try held or declined, a
// tombstone), or a held hold resolved (confirmed, cancelled, expired).
struct PartnerHoldChange {
  bool created = false;
  int64_t hold_id = 0;
  std::string_view key;
  int64_t user = 0;
  int64_t amount = 0;
  sim::Duration ttl = 0;                             // created rows only
  PartnerHoldState state = PartnerHoldState::kHeld;  // the row's state after the request
  sim::Time expires_at = 0;                          // created rows only
  int64_t movement = 0;  // the movement that made the change; 0: none (declined, tombstone)
};

struct PartnerApplied {
  const PartnerRequest& request;
  // The answer. Expiry scan: amount = how many holds it expired.
  TccReply reply;
  std::span<const PartnerMovementRecord> movements;  // in the order written
  std::span<const PartnerHoldChange> holds;          // in the order written
};

class PartnerObserver {
 public:
  virtual ~PartnerObserver() = default;
  virtual void OnPartnerApplied(const PartnerApplied& a) = 0;
};

// What the partner did, for tests and reports. Volatile: counted by one
// incarnation (pass a PartnerCounters to the constructor to count across
// restarts).
struct PartnerCounters {
  int64_t requests = 0;
  int64_t unavailable = 0;  // answered kUnavailable (rate or outage)
  int64_t tries_held = 0;
  int64_t tries_declined = 0;
  int64_t late_tries_refused = 0;  // a Try after its key's empty rollback
  int64_t confirms = 0;            // holds confirmed (first time only)
  int64_t cancels = 0;             // holds released by a Cancel
  int64_t empty_rollbacks = 0;     // tombstones written
  int64_t expired = 0;             // holds released by expiry
};

class Partner : public sim::Service {
 public:
  // `counters` may be null: the service then counts in its own.
  // `observer` hears every applied request when config.audit is on (null:
  // nobody).
  Partner(sim::NodeContext& ctx, const PartnerConfig& config, PartnerCounters* counters = nullptr,
          PartnerObserver* observer = nullptr);
  ~Partner() override;

  asio::awaitable<void> Boot() override;

  asio::awaitable<TccReply> TryHold(TccTry t);
  asio::awaitable<TccReply> ConfirmHold(std::string key);
  asio::awaitable<TccReply> CancelHold(std::string key);

  const PartnerCounters& counters() const { return *counters_; }

 private:
  struct Stmts;

  // Sleeps the service time, then decides whether to serve: false means
  // answer kUnavailable and do nothing.
  asio::awaitable<bool> Admit();
  asio::awaitable<void> ExpiryLoop();

  // The operations themselves, synchronous, one transaction each.
  TccReply DoTry(const TccTry& t);
  TccReply DoConfirm(const std::string& key);
  TccReply DoCancel(const std::string& key);
  int64_t DoExpire(int64_t limit);
  void Populate();

  // Writes one movement with its journal entries (which must sum to zero)
  // and applies them to the accounts; returns its ID.
  int64_t WriteMovement(PartnerMovementKind kind, int64_t hold_id,
                        std::initializer_list<PartnerEntry> e);
  // Inserts a hold row; returns its ID.
  int64_t InsertHold(std::string_view key, int64_t user, int64_t amount, sim::Duration ttl,
                     PartnerHoldState state, sim::Time expires_at);
  void ResolveHold(int64_t hold_id, PartnerHoldState state, int64_t movement);

  // Audit: starts collecting the facts of one request, and reports them.
  // Facts are noted as they are written; a request reports only once its
  // transaction has committed (or when it wrote nothing).
  void BeginAudit();
  void EndAudit(const PartnerRequest& request, const TccReply& reply);
  void NoteHold(const PartnerHoldChange& c);
  // Returns a held hold's points to its user and marks it `final_state`.
  void Release(int64_t hold_id, std::string_view key, int64_t user, int64_t amount,
               PartnerHoldState final_state);
  bool InOutage(sim::Time t) const;

  sim::NodeContext& ctx_;
  const PartnerConfig& config_;
  PartnerCounters own_counters_;
  PartnerCounters* counters_;
  PartnerObserver* observer_;
  // Audit: the facts of the request being applied (keys and entries owned
  // here, so the spans handed out stay valid until the report is done).
  struct NotedMovement {
    int64_t id;
    PartnerMovementKind kind;
    int64_t hold_id;
    sim::Time at;
    std::vector<PartnerEntry> entries;
  };
  std::vector<NotedMovement> audit_movements_;
  std::vector<PartnerHoldChange> audit_holds_;  // keys set when reported, from:
  std::vector<std::string> audit_hold_keys_;
  sim::Rng latency_rng_;
  sim::Rng fault_rng_;
  std::unique_ptr<Stmts> st_;
};

// The balance of the partner's CLEARING account (the points confirmed to
// the payment service), read from the partner's database.
int64_t PartnerClearingBalance(sim::Database& partner_db);

}  // namespace paylab::system
