// The payment service's completion notification (seed 003): published
// through the payment's outbox after the final database update of every
// request, on a fan-out topic feeding one queue per consumer (the upstream
// checkout and marketplace, and point assignment).
//
// Encoded as text: "<payment id>|<flow>|<status>|<payer>|<amount>|<order key>".
// The status is the payment's business status after the request; consumers
// act on it, so an event replayed or arriving out of order is harmless.
// Decode refuses anything else with a reason (a poison message is a value).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace paylab::system {

inline constexpr std::string_view kPaymentTopic = "payment.events";

enum class PaymentFlow : uint8_t { kCharge = 1, kEscrow = 2, kP2p = 3 };
std::string_view PaymentFlowName(PaymentFlow f);

// The business status (`status`) of a payment.
enum class PaymentStatus : uint8_t {
  kCreated = 0,     // accepted, nothing held yet
  kAuthorized = 1,  // funds held (charge/escrow), waiting for capture or void
  kCaptured = 2,    // done: the payee was paid
  kVoided = 3,      // undone after authorisation
  kFailed = 4,      // declined or given up: nothing held, nothing moved
};
std::string_view PaymentStatusName(PaymentStatus s);

struct PaymentEvent {
  uint64_t payment_id = 0;
  PaymentFlow flow = PaymentFlow::kCharge;
  PaymentStatus status = PaymentStatus::kCreated;
  int64_t payer = 0;
  int64_t amount = 0;
  std::string order_key;
  bool operator==(const PaymentEvent&) const = default;
};

std::string EncodePaymentEvent(const PaymentEvent& e);
// Returns the event, or nullopt and sets `error`.
std::optional<PaymentEvent> DecodePaymentEvent(std::string_view payload, std::string* error);

}  // namespace paylab::system
