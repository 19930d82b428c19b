// Implementation of the wallet's reference model (see wallet_model.h).
#include "checks/models/wallet_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "sim/check.h"

namespace paylab::models {

using system::HoldState;
using system::WalletApplied;
using system::WalletOp;
using system::WalletRequest;

namespace {

// The system user's accounts, as the journal names them (the wallet's
// external interface: system/wallet/account_types.h).
constexpr UserId kSystem = system::kSystemUser;
constexpr TypeId kExternal = system::AccountTypes::kExternal;
constexpr TypeId kHolds = system::AccountTypes::kHolds;
constexpr TypeId kBreakage = system::AccountTypes::kBreakage;
constexpr TypeId kClearing = system::AccountTypes::kClearing;
constexpr TypeId kMigrated = system::AccountTypes::kMigrated;
constexpr sim::Time kNever = INT64_MAX;

std::string EntriesText(std::vector<WalletModel::Entry> e) {
  std::sort(e.begin(), e.end());
  std::string out;
  for (const auto& x : e) {
    out += fmt::format(" ({},{},{:+})", x.user, x.type, x.delta);
  }
  return out;
}

std::string ItemsText(std::vector<WalletModel::ItemDelta> items) {
  std::sort(items.begin(), items.end());
  std::string out;
  for (const auto& i : items) {
    if (i.item < 0) {
      out += fmt::format(" new(user {} type {} amount {} expires {})", i.user, i.type, i.delta,
                         i.expires_at == kNever
                             ? std::string("never")
                             : fmt::format("{:.6f}s", sim::ToSeconds(i.expires_at)));
    } else {
      out += fmt::format(" item {} {:+}", i.item, i.delta);
    }
  }
  return out;
}

// The parts of WalletModel::Compare, each answering how the facts differ
// from the prediction in one respect, or "".

// The answer: status, amount and ID; and MoveOut's amounts.
std::string AnswerDifference(const WalletApplied& fact, const WalletModel::Prediction& p) {
  using IdFrom = WalletModel::Prediction::IdFrom;
  const system::WalletReply& got = fact.reply;
  uint64_t want_id = 0;
  switch (p.id_from) {
    case IdFrom::kNone:
      break;
    case IdFrom::kKnown:
      want_id = p.id;
      break;
    case IdFrom::kFirstMovement:
    case IdFrom::kLastMovement:
      want_id = fact.movements.empty()                ? 0
                : p.id_from == IdFrom::kFirstMovement ? fact.movements.front().id
                                                      : fact.movements.back().id;
      break;
    case IdFrom::kNewHold:
      want_id = fact.holds.empty() ? 0 : fact.holds.front().hold_id;
      break;
  }
  if (got.status != p.status || got.amount != p.amount || got.id != want_id) {
    return fmt::format(
        "expected answer {} (id {}, amount {}), the ledger answered {} (id {}, "
        "amount {})",
        system::WalletStatusName(p.status), want_id, p.amount, system::WalletStatusName(got.status),
        got.id, got.amount);
  }
  if (p.moved.size() != fact.moved.size() ||
      !std::equal(p.moved.begin(), p.moved.end(), fact.moved.begin()) ||
      p.refused_user != fact.refused_user) {
    return fmt::format(
        "expected moved amounts [{}] (refused user {}), the ledger moved [{}] "
        "(refused user {})",
        fmt::join(p.moved, ", "), p.refused_user, fmt::join(fact.moved, ", "), fact.refused_user);
  }
  return "";
}

// The hold the call created, if any, and its expiry.
std::string NewHoldDifference(const WalletApplied& fact, const WalletModel::Prediction& p) {
  const size_t new_holds = p.new_hold_expires ? 1 : 0;
  if (fact.holds.size() != new_holds ||
      (new_holds == 1 && fact.holds.front().expires_at != *p.new_hold_expires)) {
    return fmt::format(
        "expected {} new hold(s){}, the ledger made {}{}", new_holds,
        p.new_hold_expires
            ? fmt::format(" expiring at {:.6f} s", sim::ToSeconds(*p.new_hold_expires))
            : "",
        fact.holds.size(),
        fact.holds.empty()
            ? ""
            : fmt::format(" expiring at {:.6f} s", sim::ToSeconds(fact.holds.front().expires_at)));
  }
  return "";
}

std::vector<WalletModel::Entry> EntriesOf(const system::MovementRecord& m) {
  std::vector<WalletModel::Entry> entries;
  for (const system::JournalEntry& j : m.entries) {
    entries.push_back(WalletModel::Entry{j.user, j.type, j.delta});
  }
  return entries;
}

// How many movements the call wrote; the difference lists both sides.
std::string MovementCountDifference(const WalletApplied& fact, const WalletModel::Prediction& p) {
  if (p.movements.size() == fact.movements.size()) {
    return "";
  }
  std::string want;
  for (const WalletModel::Movement& m : p.movements) {
    want += fmt::format(" {}:{}", system::MovementKindName(m.kind), EntriesText(m.entries));
  }
  std::string have;
  for (const system::MovementRecord& m : fact.movements) {
    have += fmt::format(" {}:{}", system::MovementKindName(m.kind), EntriesText(EntriesOf(m)));
  }
  return fmt::format("expected {} movement(s):{}; the ledger wrote {}:{}", p.movements.size(), want,
                     fact.movements.size(), have);
}

// The i-th movement the call wrote: its kind, key, entries and the balance
// items it changed.
std::string MovementDifference(size_t i, const WalletModel::Movement& want,
                               const WalletApplied& fact) {
  const system::MovementRecord& have = fact.movements[i];
  std::vector<WalletModel::Entry> entries = EntriesOf(have);
  std::vector<WalletModel::Entry> want_entries = want.entries;
  std::sort(entries.begin(), entries.end());
  std::sort(want_entries.begin(), want_entries.end());
  // Entries of one account within a movement are one change to it.
  const bool same_key = want.key == have.idem_key;
  if (want.kind != have.kind || !same_key || want_entries != entries) {
    return fmt::format(
        "movement {} expected {} key '{}':{}; the ledger wrote {} {} key "
        "'{}':{}",
        i + 1, system::MovementKindName(want.kind), want.key, EntriesText(want.entries),
        system::MovementKindName(have.kind), have.id, have.idem_key, EntriesText(entries));
  }
  std::vector<WalletModel::ItemDelta> items;
  for (const system::ItemChange& c : fact.items) {
    if (c.movement == have.id) {
      items.push_back(WalletModel::ItemDelta{c.created ? -1 : c.item, c.user, c.type, c.delta,
                                             c.created ? c.expires_at : 0});
    }
  }
  std::vector<WalletModel::ItemDelta> want_items = want.items;
  for (WalletModel::ItemDelta& d : want_items) {
    if (d.item < 0) {
      d.item = -1;  // new items compare by what they are, not by ID
    }
  }
  std::sort(items.begin(), items.end());
  std::sort(want_items.begin(), want_items.end());
  if (items != want_items) {
    return fmt::format("movement {} ({} {}) expected balance items:{}; the ledger changed:{}",
                       i + 1, system::MovementKindName(have.kind), have.id, ItemsText(want.items),
                       ItemsText(items));
  }
  return "";
}

}  // namespace

WalletModel::WalletModel(WalletRules rules) : rules_(std::move(rules)), users_(1) {
  std::vector<const WalletTypeRule*> by_priority;
  for (const WalletTypeRule& t : rules_.types) {
    by_priority.push_back(&t);
  }
  std::sort(by_priority.begin(), by_priority.end(),
            [](const WalletTypeRule* a, const WalletTypeRule* b) {
              return a->debit_priority < b->debit_priority;
            });
  for (const WalletTypeRule* t : by_priority) {
    debit_order_.push_back(t->id);
  }
  credit_order_.assign(debit_order_.rbegin(), debit_order_.rend());
}

const WalletTypeRule* WalletModel::Rule(TypeId type) const {
  for (const WalletTypeRule& t : rules_.types) {
    if (t.id == type) {
      return &t;
    }
  }
  return nullptr;
}

WalletModel::User& WalletModel::UserAt(UserId user) {
  PAYLAB_CHECK(user > 0);
  if (static_cast<size_t>(user) >= users_.size()) {
    users_.resize(static_cast<size_t>(user) + 1);
  }
  return users_[static_cast<size_t>(user)];
}

const WalletModel::User* WalletModel::FindUser(UserId user) const {
  if (user <= 0 || static_cast<size_t>(user) >= users_.size() ||
      !users_[static_cast<size_t>(user)].exists) {
    return nullptr;
  }
  return &users_[static_cast<size_t>(user)];
}

int64_t WalletModel::Balance(UserId user, TypeId type) const {
  const User* u = FindUser(user);
  if (u == nullptr) {
    return 0;
  }
  const auto it = u->accounts.find(type);
  return it == u->accounts.end() ? 0 : it->second.balance;
}

int64_t WalletModel::SystemBalance(TypeId type) const {
  const auto it = system_.find(type);
  return it == system_.end() ? 0 : it->second;
}

std::optional<int64_t> WalletModel::ItemRemaining(int64_t item) const {
  const auto it = items_.find(item);
  if (it == items_.end()) {
    return std::nullopt;
  }
  return it->second.remaining;
}

std::optional<HoldState> WalletModel::HoldStateOf(uint64_t hold) const {
  const auto it = holds_.find(hold);
  if (it == holds_.end()) {
    return std::nullopt;
  }
  return it->second.state;
}

// --- keys ------------------------------------------------------------------

void WalletModel::Refuse(Prediction& p, WalletStatus s) {
  p.status = s;
  p.amount = 0;
  p.id_from = Prediction::IdFrom::kNone;
  p.id = 0;
}

bool WalletModel::Replayed(std::string_view key, KeyOp op, int64_t a, int64_t b, int64_t c,
                           int64_t d, Prediction& p) {
  const auto it = keys_.find(std::string(key));
  if (it == keys_.end()) {
    return false;
  }
  const KeyRecord& k = it->second;
  if (k.op == KeyOp::kTombstone) {
    // Rolled back before it was prepared: the late prepare is cancelled;
    // anything else under the key is a misuse.
    Refuse(p,
           op == KeyOp::kPrepare ? WalletStatus::kCancelled : WalletStatus::kIdempotencyMismatch);
    return true;
  }
  if (k.op != op || k.a != a || k.b != b || k.c != c || k.d != d) {
    Refuse(p, WalletStatus::kIdempotencyMismatch);
    return true;
  }
  p.status = k.status;
  p.amount = k.amount;
  p.id_from = Prediction::IdFrom::kKnown;
  p.id = k.id;
  return true;
}

void WalletModel::Remember(std::string_view key, KeyOp op, int64_t a, int64_t b, int64_t c,
                           int64_t d, const Prediction& p) {
  KeyRecord k{op, a, b, c, d, p.status, p.id, p.amount, false};
  k.pending_id =
      p.id_from == Prediction::IdFrom::kLastMovement || p.id_from == Prediction::IdFrom::kNewHold;
  keys_[std::string(key)] = k;
  if (k.pending_id) {
    pending_key_ = std::string(key);
  }
}

// --- plans -----------------------------------------------------------------

bool WalletModel::PlanDebit(UserId user, int64_t amount, TypeId skip, Plan& plan) const {
  const User* u = FindUser(user);
  PAYLAB_CHECK(u != nullptr);
  plan.clear();
  int64_t left = amount;
  for (TypeId t : debit_order_) {
    const auto it = u->accounts.find(t);
    if (left == 0 || t == skip || it == u->accounts.end() || !it->second.open) {
      continue;
    }
    const int64_t take = std::min(std::max<int64_t>(it->second.balance, 0), left);
    if (take > 0) {
      plan.emplace_back(t, take);
      left -= take;
    }
  }
  if (left == 0) {
    return true;
  }
  for (TypeId t : debit_order_) {
    const auto it = u->accounts.find(t);
    if (t == skip || it == u->accounts.end() || !it->second.open || !Rule(t)->allow_negative) {
      continue;
    }
    auto part = std::find_if(plan.begin(), plan.end(), [t](const auto& x) { return x.first == t; });
    if (part == plan.end()) {
      plan.emplace_back(t, left);
    } else {
      part->second += left;
    }
    return true;
  }
  return false;
}

bool WalletModel::PlanCredit(UserId user, int64_t amount, Plan& plan) const {
  const User* u = FindUser(user);
  PAYLAB_CHECK(u != nullptr);
  plan.clear();
  int64_t left = amount;
  for (TypeId t : credit_order_) {
    if (left == 0) {
      break;
    }
    const WalletTypeRule& rule = *Rule(t);
    const auto it = u->accounts.find(t);
    const bool open = it != u->accounts.end() && it->second.open;
    if (!open && !rule.auto_create) {
      continue;
    }
    const int64_t balance = open ? it->second.balance : 0;
    const int64_t room =
        rule.balance_cap == 0 ? left : std::max<int64_t>(0, rule.balance_cap - balance);
    const int64_t put = std::min(room, left);
    if (put > 0) {
      plan.emplace_back(t, put);
      left -= put;
    }
  }
  return left == 0;
}

// --- effects ---------------------------------------------------------------

void WalletModel::AddSystem(TypeId type, int64_t delta, Movement& m) {
  system_[type] += delta;
  m.entries.push_back(Entry{kSystem, type, delta});
}

void WalletModel::TakeFromAccount(UserId user, TypeId type, int64_t amount, Movement& m,
                                  std::vector<std::pair<int64_t, int64_t>>* items_taken) {
  User& u = UserAt(user);
  Account& acc = u.accounts[type];
  acc.balance -= amount;
  m.entries.push_back(Entry{user, type, -amount});
  // Soonest-expiring first; ties by item ID, the order of creation.
  std::vector<Item*> open;
  for (int64_t id : u.open_items) {
    Item& it = items_.at(id);
    if (it.type == type && it.remaining > 0) {
      open.push_back(&it);
    }
  }
  std::sort(open.begin(), open.end(), [](const Item* a, const Item* b) {
    return a->expires_at != b->expires_at ? a->expires_at < b->expires_at : a->id < b->id;
  });
  int64_t left = amount;
  int64_t consumed = 0;
  for (Item* it : open) {
    if (left == 0) {
      break;
    }
    const int64_t take = std::min(it->remaining, left);
    AddRemaining(*it, -take);
    left -= take;
    ++consumed;
    m.items.push_back(ItemDelta{it->id, user, type, -take, 0});
    if (items_taken != nullptr) {
      items_taken->emplace_back(it->id, take);
    }
  }
  // What no item covers drives the balance below zero: only a type that
  // may go negative is ever planned so.
  PAYLAB_CHECK(left == 0 || Rule(type)->allow_negative);
  if (consumed >= 2) {
    ++stats_.multi_item_debits;
  }
}

void WalletModel::AddRemaining(Item& item, int64_t delta) {
  const int64_t before = item.remaining;
  item.remaining += delta;
  PAYLAB_CHECK(item.remaining >= 0);
  User& u = UserAt(item.user);
  if (before == 0 && item.remaining > 0) {
    u.open_items.push_back(item.id);
    if (item.expires_at != kNever) {
      expiring_items_.emplace(item.expires_at, item.id);
    }
  } else if (before > 0 && item.remaining == 0) {
    std::erase(u.open_items, item.id);
    expiring_items_.erase({item.expires_at, item.id});
  }
}

void WalletModel::SetHoldState(Hold& h, HoldState state) {
  PAYLAB_CHECK(h.state == HoldState::kHeld);
  h.state = state;
  held_by_expiry_.erase({h.expires_at, h.id});
  std::erase(UserAt(h.src).held, h.id);
}

void WalletModel::TakeDebit(UserId user, const Plan& plan, Movement& m,
                            std::vector<std::pair<int64_t, int64_t>>* items_taken) {
  if (plan.size() >= 2) {
    ++stats_.multi_account_debits;
  }
  for (const auto& [type, amount] : plan) {
    TakeFromAccount(user, type, amount, m, items_taken);
  }
}

void WalletModel::CreditAccount(UserId user, TypeId type, int64_t amount, sim::Time now,
                                Movement& m) {
  User& u = UserAt(user);
  Account& acc = u.accounts[type];
  acc.open = true;
  // A credit repays the account's debt first; only the rest is an item.
  const int64_t repay = acc.balance < 0 ? std::min(-acc.balance, amount) : 0;
  acc.balance += amount;
  m.entries.push_back(Entry{user, type, amount});
  if (amount - repay == 0) {
    return;
  }
  const WalletTypeRule& rule = *Rule(type);
  const sim::Time expires = rule.expires_after > 0 ? now + rule.expires_after : kNever;
  const int64_t id = next_temp_item_--;
  Item& item = items_[id];
  item = Item{id, user, type, 0, expires};
  AddRemaining(item, amount - repay);
  m.items.push_back(ItemDelta{id, user, type, amount - repay, expires});
}

void WalletModel::GiveCredit(UserId user, const Plan& plan, sim::Time now, Movement& m) {
  for (const auto& [type, amount] : plan) {
    CreditAccount(user, type, amount, now, m);
  }
}

void WalletModel::BreakItem(Item& item, Prediction& p) {
  Movement m{MovementKind::kBreakage, "", {}, {}};
  User& u = UserAt(item.user);
  u.accounts[item.type].balance -= item.remaining;
  m.entries.push_back(Entry{item.user, item.type, -item.remaining});
  AddSystem(kBreakage, item.remaining, m);
  m.items.push_back(ItemDelta{item.id, item.user, item.type, -item.remaining, 0});
  AddRemaining(item, -item.remaining);
  ++stats_.items_expired;
  p.movements.push_back(std::move(m));
}

void WalletModel::ExpireDue(UserId user, sim::Time now, Prediction& p) {
  User& u = UserAt(user);
  std::vector<Item*> due;
  for (int64_t id : u.open_items) {
    Item& it = items_.at(id);
    if (it.remaining > 0 && it.expires_at <= now) {
      due.push_back(&it);
    }
  }
  std::sort(due.begin(), due.end(), [](const Item* a, const Item* b) {
    return a->expires_at != b->expires_at ? a->expires_at < b->expires_at : a->id < b->id;
  });
  for (Item* it : due) {
    BreakItem(*it, p);
  }
}

void WalletModel::Release(Hold& h, HoldState final_state, sim::Time now, Prediction& p) {
  Movement m{
      final_state == HoldState::kExpired ? MovementKind::kExpireHold : MovementKind::kRollback,
      "",
      {},
      {}};
  AddSystem(kHolds, -h.amount, m);
  User& u = UserAt(h.src);
  for (const auto& [type, part] : h.taken) {
    if (Rule(type)->allow_negative) {
      CreditAccount(h.src, type, part, now, m);
    } else {
      u.accounts[type].balance += part;
      m.entries.push_back(Entry{h.src, type, part});
    }
  }
  // Each item gets back exactly what was taken from it, expiry kept; items
  // of an account that may go negative were credited afresh above.
  for (const auto& [id, amount] : h.items_taken) {
    Item& it = items_.at(id);
    if (Rule(it.type)->allow_negative) {
      continue;
    }
    AddRemaining(it, amount);
    m.items.push_back(ItemDelta{id, h.src, it.type, amount, 0});
  }
  SetHoldState(h, final_state);
  if (final_state == HoldState::kExpired) {
    ++stats_.holds_expired;
  }
  p.movements.push_back(std::move(m));
}

// --- the requests ------------------------------------------------------------

void WalletModel::PredictPopulate(const WalletRequest& r, Prediction& p) {
  for (size_t u = 1; u < users_.size(); ++u) {
    if (users_[u].exists) {
      return;  // populated before (a restart): nothing happens
    }
  }
  for (UserId u = 1; u <= r.amount; ++u) {
    User& user = UserAt(u);
    user.exists = true;
    for (TypeId t : debit_order_) {
      if (!Rule(t)->auto_create) {
        user.accounts[t].open = true;
      }
    }
    for (const system::InitialBalance& b : r.balances) {
      if (b.amount == 0) {
        continue;
      }
      Movement m{MovementKind::kDeposit, "", {}, {}};
      AddSystem(kExternal, -b.amount, m);
      CreditAccount(u, b.type, b.amount, r.now, m);
      p.movements.push_back(std::move(m));
    }
  }
}

void WalletModel::PredictDeposit(const WalletRequest& r, Prediction& p) {
  const WalletTypeRule* rule = Rule(r.type);
  if (r.key.empty() || r.amount <= 0 || rule == nullptr) {
    return Refuse(p, WalletStatus::kInvalidArgument);
  }
  if (Replayed(r.key, KeyOp::kDeposit, r.user, r.type, r.amount, 0, p)) {
    return;
  }
  if (FindUser(r.user) == nullptr) {
    Refuse(p, WalletStatus::kNoSuchUser);
  } else {
    ExpireDue(r.user, r.now, p);
    const User& u = *FindUser(r.user);
    const auto it = u.accounts.find(r.type);
    const bool open = it != u.accounts.end() && it->second.open;
    const int64_t balance = open ? it->second.balance : 0;
    if (!open && !rule->auto_create) {
      Refuse(p, WalletStatus::kNoSuchAccount);
    } else if (rule->balance_cap != 0 && balance + r.amount > rule->balance_cap) {
      Refuse(p, WalletStatus::kCapExceeded);
    } else {
      Movement m{MovementKind::kDeposit, std::string(r.key), {}, {}};
      AddSystem(kExternal, -r.amount, m);
      CreditAccount(r.user, r.type, r.amount, r.now, m);
      p.movements.push_back(std::move(m));
      p.amount = r.amount;
      p.id_from = Prediction::IdFrom::kLastMovement;
    }
  }
  Remember(r.key, KeyOp::kDeposit, r.user, r.type, r.amount, 0, p);
}

void WalletModel::PredictTransfer(const WalletRequest& r, Prediction& p) {
  if (r.key.empty() || r.amount <= 0 || r.user == r.dst) {
    return Refuse(p, WalletStatus::kInvalidArgument);
  }
  if (Replayed(r.key, KeyOp::kTransfer, r.user, r.dst, r.amount, 0, p)) {
    return;
  }
  Plan debit;
  Plan credit;
  if (FindUser(r.user) == nullptr || FindUser(r.dst) == nullptr) {
    Refuse(p, WalletStatus::kNoSuchUser);
  } else {
    ExpireDue(r.user, r.now, p);
    ExpireDue(r.dst, r.now, p);
    if (!PlanDebit(r.user, r.amount, 0, debit)) {
      Refuse(p, WalletStatus::kInsufficientFunds);
    } else if (!PlanCredit(r.dst, r.amount, credit)) {
      Refuse(p, WalletStatus::kCapExceeded);
    } else {
      Movement m{MovementKind::kTransfer, std::string(r.key), {}, {}};
      TakeDebit(r.user, debit, m, nullptr);
      GiveCredit(r.dst, credit, r.now, m);
      p.movements.push_back(std::move(m));
      p.amount = r.amount;
      p.id_from = Prediction::IdFrom::kLastMovement;
    }
  }
  Remember(r.key, KeyOp::kTransfer, r.user, r.dst, r.amount, 0, p);
}

void WalletModel::PredictPrepare(const WalletRequest& r, Prediction& p) {
  if (r.key.empty() || r.amount <= 0 || r.user == r.dst || r.ttl <= 0 ||
      r.ttl > rules_.hold_ttl_max) {
    return Refuse(p, WalletStatus::kInvalidArgument);
  }
  if (Replayed(r.key, KeyOp::kPrepare, r.user, r.dst, r.amount, r.ttl, p)) {
    return;
  }
  Plan debit;
  if (FindUser(r.user) == nullptr || (r.dst != kSystem && FindUser(r.dst) == nullptr)) {
    Refuse(p, WalletStatus::kNoSuchUser);
  } else {
    ExpireDue(r.user, r.now, p);
    if (!PlanDebit(r.user, r.amount, r.type, debit)) {
      Refuse(p, WalletStatus::kInsufficientFunds);
    } else {
      Hold h;
      h.key = std::string(r.key);
      h.src = r.user;
      h.dst = r.dst;
      h.amount = r.amount;
      h.expires_at = r.now + r.ttl;
      h.taken = debit;
      Movement m{MovementKind::kPrepare, std::string(r.key), {}, {}};
      TakeDebit(r.user, debit, m, &h.items_taken);
      AddSystem(kHolds, r.amount, m);
      p.movements.push_back(std::move(m));
      p.amount = r.amount;
      p.id_from = Prediction::IdFrom::kNewHold;
      p.new_hold_expires = h.expires_at;
      new_hold_ = std::move(h);
    }
  }
  Remember(r.key, KeyOp::kPrepare, r.user, r.dst, r.amount, r.ttl, p);
}

void WalletModel::PredictCommitHold(uint64_t hold, sim::Time now, Prediction& p) {
  const auto found = holds_.find(hold);
  if (found == holds_.end()) {
    return Refuse(p, WalletStatus::kNoSuchHold);
  }
  Hold& h = found->second;
  p.id_from = Prediction::IdFrom::kKnown;
  p.id = hold;
  switch (h.state) {
    case HoldState::kCommitted:
      p.amount = h.amount;
      return;
    case HoldState::kExpired:
      return Refuse(p, WalletStatus::kHoldExpired);
    case HoldState::kRolledBack:
      return Refuse(p, WalletStatus::kHoldNotActive);
    case HoldState::kHeld:
      break;
  }
  if (now >= h.expires_at) {
    // The boundary: at its expiry instant a hold is no longer committable.
    Release(h, HoldState::kExpired, now, p);
    return Refuse(p, WalletStatus::kHoldExpired);
  }
  Movement m{MovementKind::kCommit, "", {}, {}};
  if (h.dst == kSystem) {
    AddSystem(kHolds, -h.amount, m);
    AddSystem(kClearing, h.amount, m);
  } else {
    ExpireDue(h.dst, now, p);
    Plan credit;
    if (!PlanCredit(h.dst, h.amount, credit)) {
      return Refuse(p, WalletStatus::kCapExceeded);
    }
    AddSystem(kHolds, -h.amount, m);
    GiveCredit(h.dst, credit, now, m);
  }
  SetHoldState(h, HoldState::kCommitted);
  p.movements.push_back(std::move(m));
  p.id_from = Prediction::IdFrom::kKnown;
  p.id = hold;
  p.amount = h.amount;
}

void WalletModel::PredictRollbackHold(uint64_t hold, sim::Time now, Prediction& p) {
  const auto found = holds_.find(hold);
  if (found == holds_.end()) {
    return Refuse(p, WalletStatus::kNoSuchHold);
  }
  Hold& h = found->second;
  switch (h.state) {
    case HoldState::kCommitted:
      return Refuse(p, WalletStatus::kHoldNotActive);
    case HoldState::kRolledBack:
    case HoldState::kExpired:
      break;
    case HoldState::kHeld:
      Release(h, HoldState::kRolledBack, now, p);
      break;
  }
  p.status = WalletStatus::kOk;
  p.id_from = Prediction::IdFrom::kKnown;
  p.id = hold;
  p.amount = h.amount;
}

void WalletModel::PredictCommitKey(const WalletRequest& r, Prediction& p) {
  if (r.key.empty()) {
    return Refuse(p, WalletStatus::kInvalidArgument);
  }
  const auto hold = hold_of_key_.find(std::string(r.key));
  if (hold != hold_of_key_.end()) {
    return PredictCommitHold(hold->second, r.now, p);
  }
  const auto k = keys_.find(std::string(r.key));
  if (k != keys_.end() && k->second.op == KeyOp::kTombstone) {
    return Refuse(p, WalletStatus::kHoldNotActive);
  }
  Refuse(p, WalletStatus::kNoSuchHold);
}

void WalletModel::PredictRollbackKey(const WalletRequest& r, Prediction& p) {
  if (r.key.empty()) {
    return Refuse(p, WalletStatus::kInvalidArgument);
  }
  const auto hold = hold_of_key_.find(std::string(r.key));
  if (hold != hold_of_key_.end()) {
    return PredictRollbackHold(hold->second, r.now, p);
  }
  const auto k = keys_.find(std::string(r.key));
  if (k == keys_.end()) {
    // The empty rollback: remembered, so the late prepare is cancelled.
    keys_[std::string(r.key)] = KeyRecord{KeyOp::kTombstone};
    p.status = WalletStatus::kOk;
    return;
  }
  if (k->second.op == KeyOp::kTombstone || k->second.op == KeyOp::kPrepare) {
    p.status = WalletStatus::kOk;  // nothing is held under it
    return;
  }
  Refuse(p, WalletStatus::kIdempotencyMismatch);
}

void WalletModel::PredictPayout(const WalletRequest& r, Prediction& p) {
  if (r.key.empty() || r.amount <= 0) {
    return Refuse(p, WalletStatus::kInvalidArgument);
  }
  if (Replayed(r.key, KeyOp::kPayout, r.user, r.amount, 0, 0, p)) {
    return;
  }
  if (FindUser(r.user) == nullptr) {
    Refuse(p, WalletStatus::kNoSuchUser);
  } else {
    ExpireDue(r.user, r.now, p);
    Plan credit;
    if (!PlanCredit(r.user, r.amount, credit)) {
      Refuse(p, WalletStatus::kCapExceeded);
    } else {
      Movement m{MovementKind::kPayout, std::string(r.key), {}, {}};
      AddSystem(kClearing, -r.amount, m);
      GiveCredit(r.user, credit, r.now, m);
      p.movements.push_back(std::move(m));
      p.amount = r.amount;
      p.id_from = Prediction::IdFrom::kLastMovement;
    }
  }
  Remember(r.key, KeyOp::kPayout, r.user, r.amount, 0, 0, p);
}

void WalletModel::PredictExpireHolds(const WalletRequest& r, Prediction& p) {
  std::vector<uint64_t> due;
  for (auto it = held_by_expiry_.begin(); it != held_by_expiry_.end() && it->first <= r.now &&
                                          static_cast<int64_t>(due.size()) < r.limit;
       ++it) {
    due.push_back(it->second);
  }
  for (uint64_t id : due) {
    Release(holds_.at(id), HoldState::kExpired, r.now, p);
  }
  p.amount = static_cast<int64_t>(due.size());
}

void WalletModel::PredictExpireItems(const WalletRequest& r, Prediction& p) {
  std::vector<int64_t> due;
  for (auto it = expiring_items_.begin(); it != expiring_items_.end() && it->first <= r.now &&
                                          static_cast<int64_t>(due.size()) < r.limit;
       ++it) {
    due.push_back(it->second);
  }
  for (int64_t id : due) {
    BreakItem(items_.at(id), p);
  }
  p.amount = static_cast<int64_t>(due.size());
}

void WalletModel::PredictMoveOut(const WalletRequest& r, Prediction& p) {
  if (r.key.empty() || r.users.empty() ||
      (!r.expected.empty() && r.expected.size() != r.users.size())) {
    return Refuse(p, WalletStatus::kInvalidArgument);
  }
  if (batches_.contains(std::string(r.key))) {
    for (UserId u : r.users) {
      const auto m = migrated_.find(u);
      p.moved.push_back(m == migrated_.end() ? 0 : m->second);
    }
    return;
  }
  for (UserId u : r.users) {
    if (FindUser(u) == nullptr) {
      return Refuse(p, WalletStatus::kNoSuchUser);
    }
  }
  for (UserId u : r.users) {
    ExpireDue(u, r.now, p);
  }
  std::vector<int64_t> amounts;
  for (size_t i = 0; i < r.users.size(); ++i) {
    const UserId u = r.users[i];
    const int64_t balance = migrated_.contains(u) ? 0 : std::max<int64_t>(Balance(u, r.type), 0);
    bool holds_in_flight = false;
    for (uint64_t id : UserAt(u).held) {
      const Hold& h = holds_.at(id);
      holds_in_flight =
          holds_in_flight || std::any_of(h.taken.begin(), h.taken.end(),
                                         [&r](const auto& t) { return t.first == r.type; });
    }
    if ((!r.expected.empty() && r.expected[i] != balance) ||
        (r.require_no_holds && holds_in_flight)) {
      Refuse(p, WalletStatus::kMigrationRefused);
      p.refused_user = u;
      return;  // what expired stays expired
    }
    amounts.push_back(balance);
  }
  batches_[std::string(r.key)] = true;
  for (size_t i = 0; i < r.users.size(); ++i) {
    const UserId u = r.users[i];
    if (const auto m = migrated_.find(u); m != migrated_.end()) {
      p.moved.push_back(m->second);
      continue;
    }
    if (amounts[i] > 0) {
      Movement m{MovementKind::kMigrateOut, fmt::format("{}/{}", r.key, u), {}, {}};
      TakeFromAccount(u, r.type, amounts[i], m, nullptr);
      AddSystem(kMigrated, amounts[i], m);
      p.movements.push_back(std::move(m));
    }
    migrated_[u] = amounts[i];
    p.moved.push_back(amounts[i]);
  }
}

void WalletModel::PredictMoveOutAgain(const WalletRequest& r, Prediction& p) {
  if (const auto f = forwards_.find(std::string(r.key)); f != forwards_.end()) {
    p.amount = f->second;
    p.id_from = Prediction::IdFrom::kKnown;
    p.id = 0;
    return;
  }
  if (!migrated_.contains(r.user)) {
    return Refuse(p, WalletStatus::kInvalidArgument);
  }
  ExpireDue(r.user, r.now, p);
  const int64_t amount = std::max<int64_t>(Balance(r.user, r.type), 0);
  p.amount = amount;
  p.id_from = Prediction::IdFrom::kKnown;
  p.id = 0;
  if (amount > 0) {
    Movement m{MovementKind::kMigrateOut, std::string(r.key), {}, {}};
    TakeFromAccount(r.user, r.type, amount, m, nullptr);
    AddSystem(kMigrated, amount, m);
    p.movements.push_back(std::move(m));
    forwards_[std::string(r.key)] = amount;
    p.id_from = Prediction::IdFrom::kLastMovement;
  }
}

// --- boundaries ----------------------------------------------------------------

bool WalletModel::NearItemExpiry(UserId user, sim::Time now) const {
  const User* u = FindUser(user);
  if (u == nullptr) {
    return false;
  }
  for (int64_t id : u->open_items) {
    const sim::Time e = items_.at(id).expires_at;
    if (e != kNever && now >= e - 1 && now <= e + 1) {
      return true;
    }
  }
  return false;
}

int64_t WalletModel::Spendable(UserId user, TypeId skip) const {
  const User* u = FindUser(user);
  int64_t total = 0;
  if (u != nullptr) {
    for (const auto& [type, acc] : u->accounts) {
      if (type != skip && acc.open && acc.balance > 0) {
        total += acc.balance;
      }
    }
  }
  return total;
}

void WalletModel::CountBoundaries(const WalletRequest& r) {
  bool time = false;
  bool amount = false;
  switch (r.op) {
    case WalletOp::kDeposit: {
      time = NearItemExpiry(r.user, r.now);
      const WalletTypeRule* rule = Rule(r.type);
      if (rule != nullptr && rule->balance_cap != 0) {
        const int64_t room = rule->balance_cap - Balance(r.user, r.type);
        amount = r.amount == room || r.amount == room + 1;
      }
      break;
    }
    case WalletOp::kTransfer:
    case WalletOp::kPrepare: {
      time = NearItemExpiry(r.user, r.now) || NearItemExpiry(r.dst, r.now);
      const int64_t spendable = Spendable(r.user, r.op == WalletOp::kPrepare ? r.type : 0);
      amount = r.amount == spendable || r.amount == spendable + 1;
      break;
    }
    case WalletOp::kCommit:
    case WalletOp::kRollback:
    case WalletOp::kCommitKey:
    case WalletOp::kRollbackKey: {
      uint64_t id = r.hold_id;
      if (id == 0) {
        const auto k = hold_of_key_.find(std::string(r.key));
        id = k == hold_of_key_.end() ? 0 : k->second;
      }
      const auto h = holds_.find(id);
      time = h != holds_.end() && r.now >= h->second.expires_at - 1 &&
             r.now <= h->second.expires_at + 1;
      break;
    }
    case WalletOp::kPayout:
    case WalletOp::kMoveOutAgain:
      time = NearItemExpiry(r.user, r.now);
      break;
    default:
      break;
  }
  stats_.on_time_boundary += time ? 1 : 0;
  stats_.on_amount_boundary += amount ? 1 : 0;
}

// --- checking ------------------------------------------------------------------

std::string WalletModel::Check(const WalletApplied& fact) {
  ++stats_.requests;
  new_hold_.reset();
  pending_key_.clear();
  const WalletRequest& r = fact.request;
  CountBoundaries(r);
  Prediction p;
  switch (r.op) {
    case WalletOp::kPopulate:
      PredictPopulate(r, p);
      break;
    case WalletOp::kDeposit:
      PredictDeposit(r, p);
      break;
    case WalletOp::kTransfer:
      PredictTransfer(r, p);
      break;
    case WalletOp::kPrepare:
      PredictPrepare(r, p);
      break;
    case WalletOp::kCommit:
      PredictCommitHold(r.hold_id, r.now, p);
      break;
    case WalletOp::kRollback:
      PredictRollbackHold(r.hold_id, r.now, p);
      break;
    case WalletOp::kCommitKey:
      PredictCommitKey(r, p);
      break;
    case WalletOp::kRollbackKey:
      PredictRollbackKey(r, p);
      break;
    case WalletOp::kPayout:
      PredictPayout(r, p);
      break;
    case WalletOp::kExpireHolds:
      PredictExpireHolds(r, p);
      break;
    case WalletOp::kExpireItems:
      PredictExpireItems(r, p);
      break;
    case WalletOp::kMoveOut:
      PredictMoveOut(r, p);
      break;
    case WalletOp::kMoveOutAgain:
      PredictMoveOutAgain(r, p);
      break;
  }
  if (p.status != WalletStatus::kOk) {
    ++stats_.refusals;
  }
  std::string diff = Compare(fact, p);
  if (!diff.empty()) {
    return fmt::format("{} {}{} at t={:.6f} s: {}", system::WalletOpName(r.op),
                       r.key.empty() ? "" : "key ", r.key, sim::ToSeconds(r.now), diff);
  }
  Learn(fact, p);
  return "";
}

std::string WalletModel::Compare(const WalletApplied& fact, const Prediction& p) const {
  std::string diff = AnswerDifference(fact, p);
  if (diff.empty()) {
    diff = NewHoldDifference(fact, p);
  }
  if (diff.empty()) {
    diff = MovementCountDifference(fact, p);
  }
  for (size_t i = 0; diff.empty() && i < p.movements.size(); ++i) {
    diff = MovementDifference(i, p.movements[i], fact);
  }
  return diff;
}

void WalletModel::Learn(const WalletApplied& fact, const Prediction& p) {
  // New items: the model's temporary IDs become the ledger's, matched by
  // movement, user and type (a movement creates one item per account).
  for (size_t i = 0; i < p.movements.size(); ++i) {
    for (const ItemDelta& d : p.movements[i].items) {
      if (d.item >= 0) {
        continue;
      }
      const auto fact_item =
          std::find_if(fact.items.begin(), fact.items.end(), [&](const system::ItemChange& c) {
            return c.created && c.movement == fact.movements[i].id && c.user == d.user &&
                   c.type == d.type;
          });
      PAYLAB_CHECK(fact_item != fact.items.end());
      Item item = items_.at(d.item);
      items_.erase(d.item);
      const int64_t temp = item.id;
      item.id = fact_item->item;
      PAYLAB_CHECK(!items_.contains(item.id));
      items_[item.id] = item;
      User& u = UserAt(d.user);
      std::replace(u.open_items.begin(), u.open_items.end(), temp, item.id);
      if (expiring_items_.erase({item.expires_at, temp}) > 0) {
        expiring_items_.emplace(item.expires_at, item.id);
      }
    }
  }
  next_temp_item_ = -1;
  uint64_t new_id = 0;
  if (new_hold_) {
    new_hold_->id = fact.holds.front().hold_id;
    new_id = new_hold_->id;
    hold_of_key_[new_hold_->key] = new_hold_->id;
    held_by_expiry_.emplace(new_hold_->expires_at, new_hold_->id);
    UserAt(new_hold_->src).held.push_back(new_hold_->id);
    holds_[new_hold_->id] = std::move(*new_hold_);
    new_hold_.reset();
  } else if (p.id_from == Prediction::IdFrom::kLastMovement) {
    new_id = fact.movements.back().id;
  }
  if (!pending_key_.empty()) {
    keys_.at(pending_key_).id = new_id;
    keys_.at(pending_key_).pending_id = false;
  }
}

}  // namespace paylab::models
