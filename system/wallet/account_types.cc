// Implementation of the account type registry (see account_types.h).
#include "system/wallet/account_types.h"

#include <algorithm>

#include "sim/check.h"

namespace paylab::system {

AccountTypes::AccountTypes(std::vector<AccountType> user_types) {
  std::stable_sort(user_types.begin(), user_types.end(),
                   [](const AccountType& a, const AccountType& b) {
                     return a.debit_priority < b.debit_priority;
                   });
  TypeId next = 1;
  for (AccountType& t : user_types) {
    PAYLAB_CHECK(!t.name.empty());
    t.id = next++;
    t.system = false;
    debit_order_.push_back(t.id);
    all_.push_back(t);
  }
  // The ledger plans across at most kMaxUserTypes accounts (the scenario
  // loader refuses more).
  PAYLAB_CHECK(user_types.size() <= kMaxUserTypes);
  credit_order_.assign(debit_order_.rbegin(), debit_order_.rend());
  all_.push_back(
      AccountType{.name = "SYS_EXTERNAL", .id = kExternal, .allow_negative = true, .system = true});
  all_.push_back(AccountType{.name = "SYS_HOLDS", .id = kHolds, .system = true});
  all_.push_back(AccountType{.name = "SYS_BREAKAGE", .id = kBreakage, .system = true});
  all_.push_back(
      AccountType{.name = "SYS_CLEARING", .id = kClearing, .allow_negative = true, .system = true});
  all_.push_back(AccountType{.name = "SYS_MIGRATED", .id = kMigrated, .system = true});
}

const AccountType& AccountTypes::Get(TypeId id) const {
  // User types occupy ids 1..n, then the system types follow in id order.
  const size_t n = debit_order_.size();
  size_t index =
      id < kExternal ? static_cast<size_t>(id - 1) : n + static_cast<size_t>(id - kExternal);
  PAYLAB_CHECK(id >= 1 && index < all_.size());
  return all_[index];
}

std::optional<TypeId> AccountTypes::Find(std::string_view name) const {
  for (const AccountType& t : all_) {
    if (t.name == name) {
      return t.id;
    }
  }
  return std::nullopt;
}

}  // namespace paylab::system
