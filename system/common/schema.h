// What the common layer stores, and how SQL names a stored enum.
//
// Every service owns a schema.h in its folder: the names of the tables it
// keeps in its node's database, what one row of each is, and the enums
// whose numeric values its columns store. Checkers and auditors read those
// databases after (and during) a run; they write a stored value into their
// SQL through its enum's name (Stored, StoredList), never as a bare
// number, so a query says which state it means and follows the enum.
//
// Contract: a stored enum keeps every numeric value it has ever stored.
// New values are appended; none is renumbered or reused.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

namespace paylab::system {

// The integer `value` is stored as, for SQL built around it:
//   fmt::format("SELECT ... FROM holds WHERE state = {}", Stored(HoldState::kHeld))
template <typename Enum>
constexpr int64_t Stored(Enum value) {
  static_assert(std::is_enum_v<Enum>, "only enums are stored by name");
  return static_cast<int64_t>(value);
}

// The integers `values` are stored as, in the given order, as the body of an
// SQL list: StoredList({HoldState::kCommitted, HoldState::kRolledBack}) is
// "2, 3", for "state IN (2, 3)".
template <typename Enum>
std::string StoredList(std::initializer_list<Enum> values) {
  std::string list;
  for (const Enum value : values) {
    if (!list.empty()) {
      list += ", ";
    }
    list += std::to_string(Stored(value));
  }
  return list;
}

// The tables of the common layer, kept in the database of each node that
// uses them.
namespace common_tables {
// One answer a workload node received, as it arrived (answer_log.h).
inline constexpr std::string_view kAnswers = "answers";
// One setting a service ran with, by name (config_table.h).
inline constexpr std::string_view kConfig = "config";
}  // namespace common_tables

}  // namespace paylab::system
