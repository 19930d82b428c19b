// The configuration a node ran with, stored in its own database so that an
// auditor holding only the exported databases can re-derive every money
// check (the fee rate behind a clearing, the reward rate behind a grant,
// the grace the hold checks allow).
//
// One table per database:
//   config(key TEXT PRIMARY KEY, value)
// `value` is an INTEGER, a REAL or a TEXT, as the entry says. Durations are
// integers of virtual nanoseconds, like every timestamp in the databases,
// and their keys end in `_ns`; rates in basis points end in `_bp`.
//
// Services write their entries at every boot (INSERT OR REPLACE, one
// transaction): a restarted node rewrites the same values. Writing touches
// only this table, and nothing reads it back in the simulation, so it
// changes no behaviour and no trace.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

#include "sim/storage.h"

namespace paylab::system {

using ConfigValue = std::variant<int64_t, double, std::string>;

struct ConfigEntry {
  std::string_view key;
  ConfigValue value;
};

// Creates the config table if needed and writes `entries`, in one
// transaction. REQUIRES: no transaction is open on `db`.
void StoreConfig(sim::Database& db, std::initializer_list<ConfigEntry> entries);

}  // namespace paylab::system
