// Implementation of the payment event encoding (see payment_event.h).
#include "system/points/payment_event.h"

#include <fmt/format.h>

#include <charconv>

namespace paylab::system {

std::string_view PaymentFlowName(PaymentFlow f) {
  switch (f) {
    case PaymentFlow::kCharge:
      return "charge";
    case PaymentFlow::kEscrow:
      return "escrow";
    case PaymentFlow::kP2p:
      return "p2p";
  }
  return "?";
}

std::string_view PaymentStatusName(PaymentStatus s) {
  switch (s) {
    case PaymentStatus::kCreated:
      return "created";
    case PaymentStatus::kAuthorized:
      return "authorized";
    case PaymentStatus::kCaptured:
      return "captured";
    case PaymentStatus::kVoided:
      return "voided";
    case PaymentStatus::kFailed:
      return "failed";
  }
  return "?";
}

std::string EncodePaymentEvent(const PaymentEvent& e) {
  return fmt::format("{}|{}|{}|{}|{}|{}", e.payment_id, static_cast<int>(e.flow),
                     static_cast<int>(e.status), e.payer, e.amount, e.order_key);
}

namespace {

template <class T>
bool Field(std::string_view& in, T* out) {
  const size_t bar = in.find('|');
  if (bar == std::string_view::npos) {
    return false;
  }
  const char* end = in.data() + bar;
  auto [p, ec] = std::from_chars(in.data(), end, *out);
  if (ec != std::errc() || p != end) {
    return false;
  }
  in.remove_prefix(bar + 1);
  return true;
}

}  // namespace

std::optional<PaymentEvent> DecodePaymentEvent(std::string_view in, std::string* error) {
  PaymentEvent e;
  int flow = 0;
  int status = 0;
  if (!Field(in, &e.payment_id) || !Field(in, &flow) || !Field(in, &status) ||
      !Field(in, &e.payer) || !Field(in, &e.amount)) {
    *error = "expected <payment id>|<flow>|<status>|<payer>|<amount>|<order key>";
    return std::nullopt;
  }
  if (flow < 1 || flow > 3) {
    *error = fmt::format("unknown payment flow {}", flow);
    return std::nullopt;
  }
  if (status < 0 || status > 4) {
    *error = fmt::format("unknown payment status {}", status);
    return std::nullopt;
  }
  if (e.amount < 0 || in.empty() || in.find('|') != std::string_view::npos) {
    *error = "a payment event needs a non-negative amount and one order key";
    return std::nullopt;
  }
  e.flow = static_cast<PaymentFlow>(flow);
  e.status = static_cast<PaymentStatus>(status);
  e.order_key = std::string(in);
  return e;
}

}  // namespace paylab::system
