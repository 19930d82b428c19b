// Try-Confirm-Cancel: the contract every participant of a payment (the
// wallet, the point service, the external partner) keeps with the payment
// orchestrator (seeds 003, 004).
//
// A participant's hold is named by a key the orchestrator chooses
// ("<payment id>/<participant>"), never by an ID the participant returns,
// so that a Cancel can be sent for a Try whose answer was lost — or that
// has not even arrived yet. The participant guarantees:
//  - Try with a key already tried (same parameters) answers as the first
//    time and has no further effect; with other parameters: kInvalid.
//  - Cancel before Try ("empty rollback"): answers kOk with amount 0 and
//    remembers the key, so the late Try is refused with kCancelled and
//    leaves no hanging hold.
//  - Confirm and Cancel are idempotent: asked again they answer as the
//    first time, with no second effect.
//  - An expired hold has released its funds: Confirm answers kExpired every
//    time; Cancel answers kOk and releases nothing a second time.
//  - Confirm of a cancelled hold, or Cancel of a confirmed one, is kInvalid
//    (the orchestrator never asks either: that would be its bug).
// Expected outcomes are values; a participant never throws at a caller.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sim/time.h"

namespace paylab::system {

enum class TccStatus : uint8_t {
  kOk,
  kDeclined,     // Try: not enough funds or points within the range asked
  kCancelled,    // Try: the key was cancelled first (empty rollback)
  kExpired,      // Confirm: the hold expired before the confirm arrived
  kUnavailable,  // the participant could not serve now; ask again later
  kInvalid,      // a request the participant refuses whatever the timing
};
std::string_view TccStatusName(TccStatus s);

struct TccReply {
  TccStatus status = TccStatus::kOk;
  uint64_t id = 0;     // the hold's ID in the participant's own ID space
  int64_t amount = 0;  // Try: the amount held; Confirm/Cancel: the amount moved
  bool operator==(const TccReply& o) const {
    return status == o.status && id == o.id && amount == o.amount;
  }
};

// A Try as the orchestrator sends it. A participant that cannot take a range
// (the wallet) requires amount_min == amount_max.
struct TccTry {
  std::string key;
  int64_t user = 0;
  int64_t amount_min = 0;
  int64_t amount_max = 0;
  sim::Duration ttl = 0;
};

}  // namespace paylab::system
