// The wallet's money-movement event: what the wallet publishes (through its
// outbox) for every committed movement, and what consumers apply.
//
// Encoded as compact text so the broker's log stays readable in the sqlite3
// shell: "<movement id>|<kind>|<user>:<type>:<delta>,<user>:<type>:<delta>...".
// Decode refuses anything else with a reason (a poison message is a value,
// not a crash).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "system/wallet/ledger.h"

namespace paylab::system {

inline constexpr std::string_view kMovementTopic = "wallet.movements";

struct MovementEvent {
  uint64_t movement_id = 0;
  MovementKind kind = MovementKind::kDeposit;
  std::vector<JournalEntry> entries;
  bool operator==(const MovementEvent& o) const;
};

std::string EncodeMovementEvent(uint64_t movement_id, MovementKind kind,
                                std::span<const JournalEntry> entries);
// Returns the event, or nullopt and sets `error`.
std::optional<MovementEvent> DecodeMovementEvent(std::string_view payload, std::string* error);

}  // namespace paylab::system
