// The payment service (seeds 003, 004): an orchestrator that runs charges,
// escrows and P2P transfers as Try-Confirm-Cancel over the point service, the
// wallet and (for some escrows) an external partner, and keeps the merchant
// accounts those payments pay into.
//
// State machine. Each payment row persists its business `status` (created,
// authorized, captured, voided, failed), its `resource_status` (WIP while a
// request is being worked on, WAIT when stable, FAILED when given up), the
// `request` being worked on (create, capture, void), its `phase` (steps of
// that request done) and `rollback_phase` (0: going forward; k > 0: rolling
// back, k - 1 compensations done). Every step is one call to a participant
// followed by one transaction that records its answer, so a crash at any
// point leaves a row a later worker resumes from. The final transaction of a
// request sets the status, moves the payment's money in the merchant ledger,
// and writes the completion notification to the outbox, all at once.
//
// Funding: points first (a point Try with the range [0, amount - partner],
// taking as many points as the payer has), then the wallet for the rest (the
// wallet drains the payer's accounts in its own priority order). Escrows may
// take part of the amount from the external partner first.
//
// Recovery, three layers (seed 003):
//  1. the worker retries a call that timed out or found the participant
//     unavailable, with jittered backoff from milliseconds to seconds;
//  2. when the worker gives up, the payment goes back to an in-memory
//     request queue with backoff from one minute to one hour;
//  3. a recovery batch every hour re-queues WIP payments of the last three
//     days — the only layer that survives a crash, since the queue is
//     volatile. Boot does not rescan: the batch is what recovers.
// Escrows that use the partner prefer rollback: if the partner cannot be
// reached while creating, the escrow is rolled back (wallet and points are
// released first, the partner last) and stays WIP until the partner's cancel
// succeeds.
//
// Idempotency: Create is keyed by the upstream's order key (same parameters:
// the same payment; others: refused). Capture and Void are keyed by the order
// key and answer with the payment's state, so a retry is harmless.
//
// Merchant ledger (in this service's database): clearing accounts mirroring
// each participant's clearing account with the opposite sign, merchants'
// unsettled and settled sales, and fees. Every movement sums to zero; a
// clearing job moves unsettled sales to settled, less the fee.
//
// The database (payment.db), as an auditor reads it:
//   payments(id, order_key, flow, payer, payee, amount, partner_amount,
//     point_amount, wallet_amount, status, resource_status, request, phase,
//     rollback_phase, reason, created_at, updated_at)
//     flow: 1 charge, 2 escrow, 3 p2p (PaymentFlow); status: 0 created,
//     1 authorized, 2 captured, 3 voided, 4 failed (PaymentStatus);
//     resource_status: 0 WIP, 1 WAIT, 2 FAILED; request: 0 create,
//     1 capture, 2 void.
//   pay_accounts(owner, account, balance): account 1 wallet clearing,
//     2 point clearing, 3 partner clearing (owner 0, mirrors), 4 unsettled
//     sales, 5 settled sales (owner: the merchant), 6 fees (owner 0)
//     (PayAccount).
//   pay_journal(seq, movement, owner, account, delta, at, payment_id): one
//     row per account a movement changes (a zero change has no row).
//     payment_id is the payment the movement belongs to: every row of a
//     capture's movement carries it; the rows of a clearing movement carry
//     NULL, since one clearing settles many payments.
//   pay_clearing_items(credit_seq, clearing, payment_id): what each clearing
//     movement covered. One row per sales credit it settled: credit_seq is
//     the pay_journal row that credited the merchant's unsettled sales (a
//     captured charge), clearing the clearing movement, payment_id that
//     credit's payment. A clearing of merchant m settles exactly m's credits
//     not yet covered, and takes the fee on their sum:
//       fee = SUM(covered credits) * fee_bp / 10000, rounded down
//     (one fee per clearing, not per payment: a payment's share of the fee
//     is not rounded on its own). Its rows: unsettled -SUM, settled
//     SUM - fee, fees +fee.
//   config(key, value): what this service ran with (system/common/config_table.h):
//     fee_bp, hold_ttl_ns, clearing_interval_ns, the recovery layers'
//     bounds, the timeouts.
//   meta, outbox: the ID generator's lease and the notifications' outbox.
//
// The audit view (PaymentConfig::audit, off when null): the service reports
// to the auditor, in the order it commits or answers, every API call it
// answered (Create, Capture, Void, Get, with the answer, as the answer is
// sent) and every committed transaction that changes a payment's status or
// resource status or moves money in the merchant ledger: a payment created
// (created, WIP), a capture or void started (WIP), a request finalized (the
// row as committed, and the merchant-ledger rows written: seq, movement,
// owner, account, delta, payment), a request given up (a refused confirm or
// cancel: FAILED), and each clearing (the merchant, the rows, and the sales
// credits it covered). A reference model (checks/models/payment_model.h) predicts
// the same from the rules. When off, nothing is collected.
#pragma once

#include <boost/asio.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sim/context.h"
#include "system/common/ids.h"
#include "system/messaging/outbox.h"
#include "system/points/payment_event.h"
#include "system/payments/schema.h"
#include "system/messaging/relay.h"
#include "system/common/tcc.h"

namespace paylab::system {

namespace asio = boost::asio;

class PaymentObserver;

struct PaymentConfig {
  uint32_t id_worker = 1;
  int64_t clock_origin_unix_ms = kIdEpochMs + 86'400'000;
  sim::NodeId wallet = 0;
  sim::NodeId point = 0;
  sim::NodeId partner = 0;
  sim::NodeId broker = 0;
  sim::Duration rpc_timeout = 300 * sim::kMillisecond;
  sim::Duration partner_timeout = 2 * sim::kSecond;
  // Layer 1: the worker.
  int worker_attempts_max = 5;
  sim::Duration worker_backoff_min = 20 * sim::kMillisecond;
  sim::Duration worker_backoff_max = 2 * sim::kSecond;
  // Layer 2: the request queue.
  sim::Duration queue_backoff_min = 60 * sim::kSecond;
  sim::Duration queue_backoff_max = 3600 * sim::kSecond;
  sim::Duration queue_poll = 1 * sim::kSecond;
  // Layer 3: the recovery batch (0: off).
  sim::Duration batch_interval = 3600 * sim::kSecond;
  sim::Duration recovery_horizon = 3 * 86400 * sim::kSecond;
  // DEFECT recovery_batch_skips_old_wip: the batch looks back one batch
  // period instead of the recovery horizon, so a WIP payment lost from the
  // request queue (a crash) and older than one period is never resumed.
  bool defect_batch_skips_old_wip = false;
  // The holds' lifetime at the participants: longer than any capture delay.
  sim::Duration hold_ttl = 86400 * sim::kSecond;
  // Clearing: the fee in basis points, and how often the job runs (0: off).
  int64_t fee_bp = 250;
  sim::Duration clearing_interval = 60 * sim::kSecond;
  // DEFECT fee_rounded_up: the clearing rounds the fee up instead of down.
  // Every yen is still conserved (settled + fee = the sales cleared).
  bool defect_fee_rounded_up = false;
  // The completion notifications' relay (broker < 0: no relay).
  RelayConfig relay;
  bool publish = true;
  // The audit view's receiver (null: off). It outlives every incarnation.
  PaymentObserver* audit = nullptr;
};

struct CreatePaymentRequest {
  std::string order_key;
  PaymentFlow flow = PaymentFlow::kCharge;
  int64_t payer = 0;
  int64_t payee = 0;  // merchant (charge), seller (escrow), user (P2P)
  int64_t amount = 0;
  int64_t partner_amount = 0;  // escrow only: the part paid with partner points
};

enum class PaymentReplyStatus : uint8_t { kOk, kRefused };

struct PaymentReply {
  PaymentReplyStatus status = PaymentReplyStatus::kOk;
  uint64_t payment_id = 0;
  PaymentStatus payment_status = PaymentStatus::kCreated;
  bool in_progress = false;  // a request is still being worked on (WIP)
  std::string_view reason;   // why refused, or why failed; static text
};

// One payment as stored.
struct PaymentRow {
  uint64_t id = 0;
  std::string order_key;
  PaymentFlow flow = PaymentFlow::kCharge;
  int64_t payer = 0;
  int64_t payee = 0;
  int64_t amount = 0;
  int64_t partner_amount = 0;
  int64_t point_amount = 0;
  int64_t wallet_amount = 0;
  PaymentStatus status = PaymentStatus::kCreated;
  ResourceStatus resource_status = ResourceStatus::kWip;
  PaymentRequestKind request = PaymentRequestKind::kCreate;
  int64_t phase = 0;
  int64_t rollback_phase = 0;
  std::string reason;
  sim::Time created_at = 0;
  sim::Time updated_at = 0;
};

// --- the audit view (see the header comment) ------------------------------
enum class PaymentOp : uint8_t { kCreate, kCapture, kVoid, kGet };
std::string_view PaymentOpName(PaymentOp op);

enum class PaymentFactKind : uint8_t {
  kAnswered,   // an API call answered: op, order_key, create (kCreate), reply
  kCreated,    // a Create inserted a payment: row (created, WIP, request create)
  kStarted,    // a Capture or Void started its request: row (WIP)
  kFinalized,  // a request's final transaction: row as committed, journal
  kGaveUp,     // a confirm or cancel was refused: row (FAILED, status kept)
  kCleared,    // one clearing movement: merchant, journal, credits
};
std::string_view PaymentFactKindName(PaymentFactKind k);

// One merchant-ledger row as written.
struct PayJournalRow {
  int64_t seq = 0;
  uint64_t movement = 0;
  int64_t owner = 0;
  PayAccount account = PayAccount::kFees;
  int64_t delta = 0;
  uint64_t payment = 0;  // 0: NULL (a clearing's rows)
};

// A sales credit a clearing covered (a pay_clearing_items row).
struct PayClearedCredit {
  int64_t credit_seq = 0;
  uint64_t payment = 0;
};

struct PaymentApplied {
  PaymentFactKind kind = PaymentFactKind::kAnswered;
  sim::Time at = 0;
  // kAnswered.
  PaymentOp op = PaymentOp::kGet;
  std::string_view order_key = {};
  const CreatePaymentRequest* create = nullptr;
  PaymentReply reply = {};
  // kCreated, kStarted, kFinalized, kGaveUp: the payment as committed.
  const PaymentRow* row = nullptr;
  // kFinalized, kCleared: the merchant-ledger rows, in the order written.
  std::span<const PayJournalRow> journal = {};
  // kCleared.
  int64_t merchant = 0;
  std::span<const PayClearedCredit> credits = {};
};

class PaymentObserver {
 public:
  virtual ~PaymentObserver() = default;
  virtual void OnPaymentApplied(const PaymentApplied& a) = 0;
};

struct PaymentCounters {
  int64_t created = 0;
  int64_t worker_retries = 0;  // layer 1
  int64_t queued = 0;          // layer 2: times a payment went back to the queue
  int64_t queue_resumed = 0;   // layer 2: queue entries picked up again
  int64_t batch_requeued = 0;  // layer 3
  int64_t rollbacks = 0;       // create requests rolled back
  int64_t cleared = 0;         // merchant clearing movements
  int64_t inconsistent = 0;    // a confirm or cancel refused: never expected
};

class PaymentService : public sim::Service {
 public:
  // `counters` outlive the incarnation (the harness owns them), so the
  // layers' work is counted across crashes.
  PaymentService(sim::NodeContext& ctx, const PaymentConfig& config, PaymentCounters* counters);
  ~PaymentService() override;

  asio::awaitable<void> Boot() override;

  asio::awaitable<PaymentReply> Create(CreatePaymentRequest r);
  asio::awaitable<PaymentReply> Capture(std::string order_key);
  asio::awaitable<PaymentReply> Void(std::string order_key);
  asio::awaitable<PaymentReply> Get(std::string order_key);

  // Payments waiting in the volatile request queue.
  size_t queue_depth() const { return queue_.size(); }

 private:
  struct Stmts;
  enum class Participant : uint8_t { kPartner, kPoints, kWallet };
  enum class Action : uint8_t { kTry, kConfirm, kCancel, kPayout, kFinalize };
  struct Step {
    Action action = Action::kFinalize;
    Participant participant = Participant::kWallet;
  };

  // Works on one payment until its request is done or must wait (queue).
  asio::awaitable<void> Drive(uint64_t id);
  asio::awaitable<std::optional<TccReply>> Call(const PaymentRow& row, Step step);
  asio::awaitable<void> QueueLoop();
  asio::awaitable<void> BatchLoop();
  asio::awaitable<void> ClearingLoop();

  Step NextStep(const PaymentRow& row) const;
  // Records a definitive answer to `step`.
  void Record(PaymentRow& row, Step step, const TccReply& reply);
  void StartRollback(PaymentRow& row, std::string_view reason);
  void Finalize(PaymentRow& row);
  void Enqueue(uint64_t id, sim::Duration delay);
  bool PrefersRollback(const PaymentRow& row) const;

  std::optional<PaymentRow> Load(uint64_t id);
  std::optional<PaymentRow> LoadByKey(std::string_view order_key);
  void Save(const PaymentRow& row);
  // `payment`: the payment the movement belongs to (0: none, a clearing).
  void AddJournal(uint64_t movement, int64_t owner, PayAccount account, int64_t delta,
                  uint64_t payment);
  // Settles `merchant`'s unsettled sales `amount` (REQUIRES: in a
  // transaction), recording the sales credits it covers.
  void Clear(int64_t merchant, int64_t amount);
  // The audit view of the clearing transaction just committed.
  void ReportClearings();
  void StoreSettings();
  // The audit view: reports `a` (stamped now) when auditing.
  void Report(PaymentApplied a);
  PaymentReply Answered(PaymentOp op, std::string_view order_key,
                        const CreatePaymentRequest* create, PaymentReply reply);
  // A transaction that moved `row` to a new state, with the journal rows
  // written since BeginFacts.
  void ReportRow(PaymentFactKind kind, const PaymentRow& row);
  uint64_t NextId();
  PaymentReply ReplyOf(const PaymentRow& row) const;
  sim::Database& Db();

  sim::NodeContext& ctx_;
  const PaymentConfig& config_;
  sim::Rng rng_;
  std::unique_ptr<Stmts> st_;
  std::unique_ptr<IdGenerator> ids_;
  std::unique_ptr<Outbox> outbox_;
  RelaySource relay_source_;
  PaymentCounters& counters_;
  // Volatile: lost on a crash, as the real request queue is.
  std::set<uint64_t> in_flight_;
  // The request queue: (due time, payment), and the payments in it.
  std::multimap<sim::Time, uint64_t> queue_;
  std::set<uint64_t> queued_;
  std::map<uint64_t, int64_t> queue_attempts_;
  // Audit: the journal rows and covered credits of the open transaction.
  struct AuditClearing {
    int64_t merchant = 0;
    size_t rows_from = 0;
    size_t credits_from = 0;
  };
  std::vector<PayJournalRow> audit_rows_;
  std::vector<PayClearedCredit> audit_credits_;
  std::vector<AuditClearing> audit_clearings_;
};

}  // namespace paylab::system
