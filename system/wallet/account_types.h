// Configured account types (seed 004, "Configurable Value Account").
//
// A type is a set of attributes, not code: may it go negative, after how
// long do its balance items expire, is it created on first credit, what is
// its balance cap. Debits drain a user's accounts in ascending
// debit_priority; credits fill them in the reverse order (seed 000: CASHBACK
// is debited first and credited last).
//
// Besides the configured user types there are five system types, held by
// the system user (user 0): SYS_EXTERNAL (the outside world money comes in
// from; may go negative), SYS_HOLDS (funds reserved by prepared holds),
// SYS_BREAKAGE (balance items that expired unused) and SYS_CLEARING (the
// wallet's half of the clearing pair with the payment service: holds
// prepared to the system user are committed into it, payouts are paid out
// of it; may go negative), and SYS_MIGRATED (balances moved out to the point
// service by a migration).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/time.h"

namespace paylab::system {

using UserId = int64_t;
using TypeId = int32_t;

inline constexpr UserId kSystemUser = 0;
inline constexpr int64_t kNoCap = 0;
inline constexpr sim::Time kNever = INT64_MAX;

// A piece of value with its terms: an amount and the instant it expires
// (kNever: it does not). Moved between systems, value keeps its terms
// (seed 000: the data in the new system must be identical to the old).
struct ValueTerm {
  int64_t amount = 0;
  sim::Time expires_at = kNever;
  bool operator==(const ValueTerm&) const = default;
};

struct AccountType {
  std::string name;
  TypeId id = 0;
  int64_t debit_priority = 0;
  bool allow_negative = false;
  sim::Duration expires_after = 0;  // 0: balance items never expire
  bool auto_create = true;
  int64_t balance_cap = kNoCap;
  bool system = false;
};

class AccountTypes {
 public:
  static constexpr TypeId kExternal = 100;
  static constexpr TypeId kHolds = 101;
  static constexpr TypeId kBreakage = 102;
  static constexpr TypeId kClearing = 103;
  // Value migrated out of the wallet to the point service (MoveOut): the
  // wallet's half of the migration pair; the point service issued as much.
  static constexpr TypeId kMigrated = 104;
  static constexpr size_t kMaxUserTypes = 16;

  // User types, in any order; ids are assigned 1..n in debit order.
  // REQUIRES: names and debit priorities unique (the scenario loader checks).
  explicit AccountTypes(std::vector<AccountType> user_types);

  const AccountType& Get(TypeId id) const;
  std::optional<TypeId> Find(std::string_view name) const;
  // User type ids in debit order (lowest debit_priority first).
  const std::vector<TypeId>& debit_order() const { return debit_order_; }
  const std::vector<TypeId>& credit_order() const { return credit_order_; }
  // Every type, user and system, in id order.
  const std::vector<AccountType>& all() const { return all_; }

 private:
  std::vector<AccountType> all_;
  std::vector<TypeId> debit_order_;
  std::vector<TypeId> credit_order_;
};

}  // namespace paylab::system
