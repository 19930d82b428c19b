// A reference model of the payment service's contract: its API's answers, its
// payments' state machine and its merchant ledger. A small in-memory
// executable specification written from seeds 003 and 004 and the contract
// in system/payments/payment_service.h's header comment, never from the service's code (it
// shares no helper for validation, state decisions, funding or rounding
// with system/payments/payment_service.cc; it uses only the service's public record types).
//
// Fed the service's audit view (system::PaymentApplied, in the order the
// service committed or answered), the model predicts each fact from its own
// state, compares, returns both sides on the first difference, then keeps
// the fact's effect as it predicted it. New payments are named by the IDs
// the facts gave them (a payment by its order key), new sales credits by the
// journal row that made them.
//
// The rules (the specification):
//  - Payments. A payment is created by a Create (status created, WIP,
//    request create) for an order key no payment has. A Create is malformed
//    (refused, nothing created) for an empty key, an unknown flow, a payer
//    or payee <= 0, an amount <= 0, a partner amount outside [0, amount] or
//    on a flow other than escrow, or a P2P transfer to the payer.
//  - The state machine. The only transitions: created -> authorized or
//    failed (a charge or an escrow: its Create finalized), created ->
//    captured or failed (a P2P transfer, captured when created), authorized
//    -> captured (a Capture finalized) or voided (a Void finalized). A
//    Capture or Void starts its request (WIP) only on an authorized payment
//    that is not busy (WAIT) and is not a P2P transfer. A request finishes
//    (WAIT; FAILED for a failed create) with one final transaction, or stops
//    FAILED with its status kept when a participant refused a confirm or a
//    cancel (given up).
//  - Funding (seed 003). An authorized payment (a captured P2P transfer)
//    holds exactly its amount: the partner its partner amount, the points
//    within [0, amount - partner], the wallet the rest. A P2P transfer moves
//    wallet to wallet: no points, the wallet holds all. The held amounts are
//    the service's record of its participants' answers, taken from the
//    finalize fact; they never change after the payment is authorized.
//  - The merchant ledger (seed 004). A capture's final transaction is one
//    movement whose rows all carry the payment: each participant's clearing
//    mirror takes minus what that participant held; a charge credits the
//    payee's unsettled sales with the amount (one row: the sales credit,
//    named by its seq); an escrow pays the seller out of the wallet's
//    clearing account (wallet clearing + amount). Nothing else moves the
//    merchant ledger but clearings; a create, a P2P transfer and a void move
//    nothing. Compared as the net change per (owner, account) of the
//    movement; a zero change has no row.
//  - Clearing. A clearing of merchant m covers exactly m's sales credits no
//    clearing has covered (by seq), and takes the fee once on their sum S:
//    fee = floor(S * fee_bp / 10000). Its rows (payment NULL): m's unsettled
//    -S, m's settled S - fee, fees (owner 0) + fee. A clearing of a merchant
//    with nothing to cover is wrong.
//  - Answers, from the payment's state when the answer is sent:
//    Get: unknown key refused; else ok with the payment's ID, status, and
//    in progress while WIP. Create: malformed refused; a key used with other
//    parameters (flow, payer, payee, amount, partner amount) refused; else
//    ok like Get (a new key's payment is created before it answers).
//    Capture: unknown refused; captured ok (a repeated capture answers the
//    same); WIP ok with the status, in progress (a request is being worked
//    on: the caller asks again); otherwise (voided, failed, given up)
//    refused: a capture cannot change a payment that is not authorized.
//    Void: unknown refused; captured refused (a captured payment cannot be
//    voided); WIP ok in progress; otherwise ok with the payment's state
//    (voiding what is voided or failed is harmless: the funds are free).
//    An authorized payment at rest never answers a Capture or Void: the
//    call starts its request first. Refusals are compared by status only
//    (the reason is text for people).
//
// Determinism: plain ordered containers; nothing iterated depends on hashing.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "system/payments/payment_service.h"
#include "system/points/payment_event.h"

namespace paylab::models {

using system::PayAccount;
using system::PaymentFlow;
using system::PaymentRequestKind;
using system::PaymentStatus;
using system::ResourceStatus;

struct PaymentRules {
  int64_t fee_bp = 0;  // the clearing's fee in basis points
};

// What the model saw, for reports.
struct PaymentModelStats {
  int64_t answers = 0;          // API calls answered and checked
  int64_t refusals = 0;         // answers refused
  int64_t in_progress = 0;      // answers ok while a request was being worked on
  int64_t conflicts = 0;        // creates refused for a key used with other parameters
  int64_t unknown_keys = 0;     // captures, voids and gets of a key with no payment
  int64_t created = 0;          // payments created
  int64_t authorized = 0;       // creates finalized authorized
  int64_t captured = 0;         // captures finalized (P2P transfers at create included)
  int64_t voided = 0;           // voids finalized
  int64_t failed = 0;           // creates finalized failed
  int64_t gave_up = 0;          // requests stopped FAILED after a refused confirm or cancel
  int64_t clearings = 0;        // clearing movements
  int64_t credits_cleared = 0;  // sales credits they covered
  int64_t fees = 0;             // fees taken
};

class PaymentModel {
 public:
  explicit PaymentModel(PaymentRules rules) : rules_(rules) {}

  // Predicts `fact`, compares, then applies it. "" when they agree, else
  // a report of the first difference with both sides.
  std::string Check(const system::PaymentApplied& fact);

  // The model's state, to compare with the database at the end.
  struct PaymentView {
    uint64_t id = 0;
    PaymentStatus status = PaymentStatus::kCreated;
    ResourceStatus resource = ResourceStatus::kWip;
    int64_t point_amount = 0;
    int64_t wallet_amount = 0;
  };
  std::optional<PaymentView> PaymentOf(uint64_t id) const;
  size_t payment_count() const { return payments_.size(); }
  // (owner, account) -> balance, every account the model saw move.
  const std::map<std::pair<int64_t, PayAccount>, int64_t>& balances() const { return balances_; }
  size_t credits_covered() const { return covered_; }
  const PaymentModelStats& stats() const { return stats_; }

  // Net change per (owner, account) of one movement.
  using Net = std::map<std::pair<int64_t, PayAccount>, int64_t>;

 private:
  struct Payment {
    uint64_t id = 0;
    std::string key;
    PaymentFlow flow = PaymentFlow::kCharge;
    int64_t payer = 0;
    int64_t payee = 0;
    int64_t amount = 0;
    int64_t partner = 0;
    int64_t points = 0;  // held, as recorded when authorized
    int64_t wallet = 0;
    PaymentStatus status = PaymentStatus::kCreated;
    ResourceStatus resource = ResourceStatus::kWip;
    PaymentRequestKind request = PaymentRequestKind::kCreate;
  };
  struct Credit {
    int64_t seq = 0;
    uint64_t payment = 0;
    int64_t amount = 0;
  };

  std::string CheckAnswer(const system::PaymentApplied& a);
  std::string PredictCreateAnswer(const system::CreatePaymentRequest& r,
                                  system::PaymentReply& want);
  void PredictCaptureAnswer(const Payment* p, system::PaymentReply& want);
  void PredictVoidAnswer(const Payment* p, system::PaymentReply& want);
  std::string CheckCreated(const system::PaymentRow& row);
  std::string CheckStarted(const system::PaymentRow& row);
  std::string CheckFinalized(const system::PaymentApplied& a);
  std::string FinalizeCreate(Payment& p, const system::PaymentRow& row,
                             const system::PaymentApplied& a);
  std::string FinalizeCapture(Payment& p, const system::PaymentRow& row,
                              const system::PaymentApplied& a);
  std::string CheckGaveUp(const system::PaymentRow& row);
  std::string CheckCleared(const system::PaymentApplied& a);
  // The funding rule; "" when the row's held amounts follow it.
  std::string CheckFunding(const Payment& p, const system::PaymentRow& row) const;
  // Compares a movement's rows with the predicted net changes; every row
  // must carry `payment` and one movement ID.
  std::string CompareJournal(const system::PaymentApplied& a, const Net& want,
                             uint64_t payment) const;
  void Apply(const Net& net);

  Payment* Find(std::string_view key);
  Payment* FindId(uint64_t id);

  PaymentRules rules_;
  std::map<std::string, uint64_t, std::less<>> by_key_;
  std::map<uint64_t, Payment> payments_;
  std::map<std::pair<int64_t, PayAccount>, int64_t> balances_;
  // Each merchant's sales credits no clearing has covered, by seq.
  std::map<int64_t, std::vector<Credit>> uncovered_;
  size_t covered_ = 0;
  PaymentModelStats stats_;
};

}  // namespace paylab::models
