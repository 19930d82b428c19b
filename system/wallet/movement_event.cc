// Implementation of the movement event encoding (see movement_event.h).
#include "system/wallet/movement_event.h"

#include <fmt/format.h>

#include <charconv>

namespace paylab::system {

bool MovementEvent::operator==(const MovementEvent& o) const {
  if (movement_id != o.movement_id || kind != o.kind || entries.size() != o.entries.size()) {
    return false;
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].user != o.entries[i].user || entries[i].type != o.entries[i].type ||
        entries[i].delta != o.entries[i].delta) {
      return false;
    }
  }
  return true;
}

std::string EncodeMovementEvent(uint64_t movement_id, MovementKind kind,
                                std::span<const JournalEntry> entries) {
  std::string s = fmt::format("{}|{}|", movement_id, static_cast<int>(kind));
  for (size_t i = 0; i < entries.size(); ++i) {
    fmt::format_to(std::back_inserter(s), "{}{}:{}:{}", i == 0 ? "" : ",", entries[i].user,
                   entries[i].type, entries[i].delta);
  }
  return s;
}

namespace {

template <class T>
bool ParseNumber(std::string_view& in, char stop, T* out) {
  const char* end = in.data() + in.size();
  auto [p, ec] = std::from_chars(in.data(), end, *out);
  if (ec != std::errc() || (p != end && *p != stop) || (p == end && stop != '\0')) {
    return false;
  }
  in.remove_prefix(static_cast<size_t>(p - in.data()) + (p != end ? 1 : 0));
  return true;
}

}  // namespace

std::optional<MovementEvent> DecodeMovementEvent(std::string_view in, std::string* error) {
  MovementEvent e;
  int kind = 0;
  if (!ParseNumber(in, '|', &e.movement_id) || !ParseNumber(in, '|', &kind)) {
    *error = "expected <movement id>|<kind>|...";
    return std::nullopt;
  }
  if (kind < static_cast<int>(MovementKind::kDeposit) ||
      kind > static_cast<int>(MovementKind::kMigrateOut)) {
    *error = fmt::format("unknown movement kind {}", kind);
    return std::nullopt;
  }
  e.kind = static_cast<MovementKind>(kind);
  while (!in.empty()) {
    JournalEntry j;
    const bool last = in.find(',') == std::string_view::npos;
    if (!ParseNumber(in, ':', &j.user) || !ParseNumber(in, ':', &j.type) ||
        !ParseNumber(in, last ? '\0' : ',', &j.delta)) {
      *error = "expected entries <user>:<type>:<delta> separated by commas";
      return std::nullopt;
    }
    e.entries.push_back(j);
    if (!last && in.empty()) {
      *error = "a trailing comma after the last entry";
      return std::nullopt;
    }
  }
  if (e.entries.empty()) {
    *error = "a movement event needs at least one entry";
    return std::nullopt;
  }
  return e;
}

}  // namespace paylab::system
