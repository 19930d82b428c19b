// The payments domain's stored schema: the tables of the payment service's
// database (payment_service.h), of the external partner's (partner.h) and of
// each upstream's (upstream.h), and the enums whose numeric values their
// columns store. See system/common/schema.h for how checkers write these
// values into SQL.
//
// A payment's business status and flow (payments.status, payments.flow,
// orders.flow) are PaymentStatus and PaymentFlow, declared with the payment
// event in system/points/payment_event.h: the point service decodes that
// event, and it sits below this folder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "system/common/schema.h"
#include "system/points/payment_event.h"

namespace paylab::system {

// --- the payment service -------------------------------------------------

// Whether a payment's request is being worked on (payments.resource_status):
// WIP while a worker owns it, WAIT when stable, FAILED when given up.
enum class ResourceStatus : uint8_t { kWip = 0, kWait = 1, kFailed = 2 };
std::string_view ResourceStatusName(ResourceStatus s);

// The request a payment is on (payments.request).
enum class PaymentRequestKind : uint8_t { kCreate = 0, kCapture = 1, kVoid = 2 };

// Accounts of the merchant ledger (pay_accounts.account,
// pay_journal.account). Clearing accounts and fees belong to owner 0;
// sales accounts to the merchant (or seller) id.
enum class PayAccount : uint8_t {
  kWalletClearing = 1, kPointClearing = 2, kPartnerClearing = 3, kUnsettled = 4, kSettled = 5,
  kFees = 6,
};

// The tables of the payment service's database. It also keeps the
// completion notifications' outbox (system/messaging/schema.h) and its
// config (system/common/schema.h).
namespace payment_tables {
// One key of the ID generator's lease, with its value.
inline constexpr std::string_view kMeta = "meta";
// One payment, by its upstream's order key: what it pays, what each
// participant holds for it, and where its state machine is (status,
// resource_status, request, phase, rollback_phase).
inline constexpr std::string_view kPayments = "payments";
// One merchant-ledger account: an (owner, account: PayAccount) pair and its
// balance.
inline constexpr std::string_view kPayAccounts = "pay_accounts";
// One merchant-ledger entry: a movement's change to one account, with the
// payment it belongs to (NULL for a clearing's entries).
inline constexpr std::string_view kPayJournal = "pay_journal";
// One sales credit a clearing settled: the crediting journal row, the
// clearing movement and the credit's payment.
inline constexpr std::string_view kPayClearingItems = "pay_clearing_items";
}  // namespace payment_tables

// --- the external partner ------------------------------------------------

// The partner's accounts (accounts.account in its database). Users hold
// kPoints; the system user 0 holds the others.
enum class PartnerAccount : uint8_t { kPoints = 0, kIssue = 1, kHolds = 2, kClearing = 3 };

// A hold's row in the partner's `holds` table (keyed by the TCC key).
// Declined Tries and empty-rollback tombstones are rows too, so that a key
// keeps its first answer; only kHeld rows hold points.
enum class PartnerHoldState : uint8_t {
  kHeld = 1, kConfirmed = 2, kCancelled = 3, kExpired = 4, kDeclined = 5, kTombstone = 6,
};

// What a partner movement did (movements.kind in its database).
enum class PartnerMovementKind : uint8_t {
  kIssue = 1, kTry = 2, kConfirm = 3, kCancel = 4, kExpire = 5,
};

std::string_view PartnerAccountName(PartnerAccount a);
std::string_view PartnerHoldStateName(PartnerHoldState s);
std::string_view PartnerMovementKindName(PartnerMovementKind k);

// The tables of the partner's database.
namespace partner_tables {
// One account: a (user, account: PartnerAccount) pair and its balance.
inline constexpr std::string_view kAccounts = "accounts";
// One movement of partner points (kind: PartnerMovementKind), with its hold.
inline constexpr std::string_view kMovements = "movements";
// One journal entry: a movement's change to one account. A movement's
// entries sum to zero.
inline constexpr std::string_view kJournal = "journal";
// One TCC key's hold (state: PartnerHoldState), with the movements that
// tried and resolved it.
inline constexpr std::string_view kHolds = "holds";
}  // namespace partner_tables

// --- the upstreams -------------------------------------------------------

// Where an upstream's order is (orders.state).
enum class OrderState : uint8_t {
  kPending = 0,
  kAuthorized = 1,
  kCaptured = 2,
  kVoided = 3,
  kDeclined = 4,  // the payment failed: declined by a participant
  kFailed = 5,    // the upstream gave up on the payment (or it refused)
};
inline constexpr size_t kOrderStates = 6;
std::string_view OrderStateName(OrderState s);

// The tables of an upstream's database. It also keeps every answer the
// payment service gave it and its config (system/common/schema.h).
namespace upstream_tables {
// One order, by its key: what it pays (flow: PaymentFlow), where it is
// (state: OrderState) and its payment.
inline constexpr std::string_view kOrders = "orders";
}  // namespace upstream_tables

}  // namespace paylab::system
