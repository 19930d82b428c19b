// Implementation of the point ledger's reference model (see point_model.h).
#include "checks/models/point_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "sim/check.h"

namespace paylab::models {

using system::GrantReply;
using system::GrantStatus;
using system::PaymentStatus;
using system::PointApplied;
using system::PointOp;
using system::PointRequest;
using system::TccReply;
using system::TccStatus;

namespace {

constexpr UserId kSystem = system::kSystemUser;
// "Never expires", as the ledger's requests say it.
constexpr sim::Time kNever = std::numeric_limits<sim::Time>::max();
// How many items a report shows on each side of a difference.
constexpr size_t kShown = 4;

GrantReply GrantAnswer(GrantStatus s, uint64_t lot = 0, int64_t amount = 0) {
  return GrantReply{s, lot, amount, {}};
}

TccReply TccAnswer(TccStatus s, uint64_t id = 0, int64_t amount = 0) {
  return TccReply{s, id, amount};
}

// floor(amount * bp / 10000), exact for any int64 amount.
int64_t RewardOf(int64_t amount, int64_t bp) {
  return static_cast<int64_t>(static_cast<__int128>(amount) * bp / 10'000);
}

std::string TimeText(sim::Time t) {
  return t == kNever ? std::string("never") : fmt::format("{:.6f}s", sim::ToSeconds(t));
}

std::string EntriesText(std::vector<PointModel::Entry> e) {
  std::sort(e.begin(), e.end());
  std::string out;
  for (const PointModel::Entry& x : e) {
    out += fmt::format(" ({},{},{:+})", x.user, system::PointAccountName(x.account), x.delta);
  }
  return out;
}

std::string MovementText(const PointModel::Movement& m) {
  return fmt::format("{} key '{}' hold {} lot {}:{}", system::PointMovementKindName(m.kind), m.key,
                     m.hold, m.lot, EntriesText(m.entries));
}

std::string LotStateName(LotState s) {
  switch (s) {
    case LotState::kProvisional:
      return "provisional";
    case LotState::kConfirmed:
      return "confirmed";
    case LotState::kRevoked:
      return "revoked";
  }
  return "?";
}

std::string LotFactText(const PointModel::LotFact& f) {
  const std::string in = f.movement == 0 ? "" : fmt::format(" in movement {}", f.movement);
  switch (f.event) {
    case LotEvent::kCreated:
      return fmt::format("created lot {} user {} amount {} expires {} {}", f.lot, f.user, f.amount,
                         TimeText(f.expires_at), LotStateName(f.state));
    case LotEvent::kIssued:
      return fmt::format("issued lot {} user {} amount {}{}", f.lot, f.user, f.amount, in);
    case LotEvent::kRevoked:
      return fmt::format("revoked lot {} user {} amount {}", f.lot, f.user, f.amount);
    case LotEvent::kLogged:
      return fmt::format("lot {} {:+} hold {}{}", f.lot, f.amount, f.hold, in);
  }
  return "?";
}

// Up to kShown items from `from` on, with how many more there are.
std::string LotFactsText(const std::vector<PointModel::LotFact>& facts, size_t from) {
  std::string out;
  for (size_t i = from; i < facts.size() && i < from + kShown; ++i) {
    out += (out.empty() ? " " : "; ") + LotFactText(facts[i]);
  }
  if (facts.size() > from + kShown) {
    out += fmt::format("; ... ({} more)", facts.size() - from - kShown);
  }
  return out.empty() ? " nothing" : out;
}

// What names the request in a report: its key, its payment, its range.
std::string RequestText(const PointRequest& r) {
  switch (r.op) {
    case PointOp::kApplyPaymentEvent:
      return fmt::format(" payment {} {} amount {} payer {}", r.event->payment_id,
                         system::PaymentStatusName(r.event->status), r.event->amount,
                         r.event->payer);
    case PointOp::kTryDebit:
      return fmt::format(" key {} user {} range [{}, {}] ttl {:.6f} s", r.tcc->key, r.tcc->user,
                         r.tcc->amount_min, r.tcc->amount_max, sim::ToSeconds(r.tcc->ttl));
    case PointOp::kGrantProvisional:
    case PointOp::kGrantConfirmed:
      return fmt::format(" key {} user {} amount {} expires {}", r.key, r.user, r.amount,
                         TimeText(r.expires_at));
    case PointOp::kPopulate:
    case PointOp::kExpireHolds:
    case PointOp::kExpireLots:
      return "";
    case PointOp::kReceiveValue:
      return fmt::format(" key {} user {} ({} terms)", r.key, r.user, r.terms.size());
    case PointOp::kRefundDebit:
      return fmt::format(" key {} of debit {}", r.key, r.debit_key);
    case PointOp::kConfirmGrant:
    case PointOp::kRevokeGrant:
    case PointOp::kConfirmDebit:
    case PointOp::kCancelDebit:
      break;
  }
  return fmt::format(" key {}", r.key);
}

bool IsGrantOp(PointOp op) {
  return op == PointOp::kGrantProvisional || op == PointOp::kConfirmGrant ||
         op == PointOp::kRevokeGrant || op == PointOp::kGrantConfirmed ||
         op == PointOp::kApplyPaymentEvent || op == PointOp::kReceiveValue ||
         op == PointOp::kRefundDebit;
}

bool IsTccOp(PointOp op) {
  return op == PointOp::kTryDebit || op == PointOp::kConfirmDebit || op == PointOp::kCancelDebit;
}

}  // namespace

// --- state -------------------------------------------------------------------

int64_t PointModel::UserBalance(UserId user) const {
  return UserExists(user) ? users_[static_cast<size_t>(user)].balance : 0;
}

int64_t PointModel::SystemBalance(PointAccount account) const {
  switch (account) {
    case PointAccount::kIssue:
      return issue_;
    case PointAccount::kHolds:
      return holds_account_;
    case PointAccount::kBreakage:
      return breakage_;
    case PointAccount::kClearing:
      return clearing_;
    case PointAccount::kPoint:
      break;
  }
  return 0;
}

std::optional<PointModel::LotView> PointModel::LotOf(uint64_t lot) const {
  const auto it = lots_.find(lot);
  if (it == lots_.end()) {
    return std::nullopt;
  }
  return LotView{it->second.remaining, it->second.state};
}

std::optional<PointHoldState> PointModel::HoldStateOf(uint64_t hold) const {
  const auto it = holds_.find(hold);
  if (it == holds_.end()) {
    return std::nullopt;
  }
  return it->second.state;
}

bool PointModel::UserExists(UserId user) const {
  return user > 0 && static_cast<size_t>(user) < users_.size();
}

PointModel::Lot* PointModel::FindLot(std::string_view key) {
  const auto it = lot_of_key_.find(std::string(key));
  return it == lot_of_key_.end() ? nullptr : &lots_.at(it->second);
}

// --- effects -------------------------------------------------------------------

void PointModel::AddSystem(PointAccount account, int64_t delta, Movement& m) {
  switch (account) {
    case PointAccount::kIssue:
      issue_ += delta;
      break;
    case PointAccount::kHolds:
      holds_account_ += delta;
      break;
    case PointAccount::kBreakage:
      breakage_ += delta;
      break;
    case PointAccount::kClearing:
      clearing_ += delta;
      break;
    case PointAccount::kPoint:
      PAYLAB_CHECK(false && "POINT is a user's account");
  }
  m.entries.push_back(Entry{kSystem, account, delta});
}

void PointModel::AddUser(UserId user, int64_t delta, Movement& m) {
  PAYLAB_CHECK(UserExists(user));
  users_[static_cast<size_t>(user)].balance += delta;
  m.entries.push_back(Entry{user, PointAccount::kPoint, delta});
}

void PointModel::AddRemaining(Lot& lot, int64_t delta) {
  // Only a confirmed lot ever holds points.
  PAYLAB_CHECK(lot.state == LotState::kConfirmed);
  const int64_t before = lot.remaining;
  lot.remaining += delta;
  PAYLAB_CHECK(lot.remaining >= 0);
  PAYLAB_CHECK(lot.remaining <= lot.amount);
  User& u = users_[static_cast<size_t>(lot.user)];
  if (before == 0 && lot.remaining > 0) {
    u.open_lots.emplace(lot.expires_at, lot.id);
    lots_by_expiry_.emplace(lot.expires_at, lot.id);
  } else if (before > 0 && lot.remaining == 0) {
    u.open_lots.erase({lot.expires_at, lot.id});
    lots_by_expiry_.erase({lot.expires_at, lot.id});
  }
}

void PointModel::ResolveHold(Hold& h, PointHoldState state) {
  PAYLAB_CHECK(h.state == PointHoldState::kHeld);
  h.state = state;
  held_by_expiry_.erase({h.expires_at, h.id});
}

PointModel::Lot* PointModel::CreateLot(std::string_view key, UserId user, int64_t amount,
                                       sim::Time expires_at, LotState state, Prediction& p) {
  // The facts name the new lot: the one created for this user.
  auto named = std::lower_bound(new_ids_.lots.begin(), new_ids_.lots.end(),
                                std::pair<UserId, uint64_t>{user, 0});
  while (named != new_ids_.lots.end() && named->first == user &&
         new_ids_.used[static_cast<size_t>(named - new_ids_.lots.begin())]) {
    ++named;  // named already, by an earlier lot of this call
  }
  uint64_t id = 0;
  if (named != new_ids_.lots.end() && named->first == user) {
    id = named->second;
    new_ids_.used[static_cast<size_t>(named - new_ids_.lots.begin())] = true;
  }
  p.lots.push_back(LotFact{0, LotEvent::kCreated, id, user, amount, expires_at, state, 0});
  if (id == 0) {
    return nullptr;  // the comparison reports the missing lot
  }
  if (lots_.contains(id)) {
    p.broken =
        fmt::format("the ledger named a new lot (key '{}') {}, the ID of an existing lot", key, id);
    return nullptr;
  }
  Lot& lot = lots_[id];
  lot = Lot{id, user, amount, 0, expires_at, state, std::string(key)};
  lot_of_key_[lot.key] = id;
  return &lot;
}

void PointModel::IssueLot(Lot& lot, Prediction& p) {
  PAYLAB_CHECK(lot.state == LotState::kProvisional);
  Movement m{PointMovementKind::kIssue, lot.key, 0, lot.id, {}};
  AddSystem(PointAccount::kIssue, -lot.amount, m);
  AddUser(lot.user, lot.amount, m);
  lot.state = LotState::kConfirmed;
  AddRemaining(lot, lot.amount);
  p.movements.push_back(std::move(m));
  p.lots.push_back(LotFact{p.movements.size(), LotEvent::kIssued, lot.id, lot.user, lot.amount, 0,
                           LotState::kConfirmed, 0});
  ++stats_.grants_confirmed;
}

void PointModel::Release(Hold& h, PointHoldState final_state, Prediction& p) {
  if (h.amount > 0) {
    const PointMovementKind kind = final_state == PointHoldState::kExpired
                                       ? PointMovementKind::kExpireHold
                                       : PointMovementKind::kCancel;
    Movement m{kind, h.key, h.id, 0, {}};
    AddSystem(PointAccount::kHolds, -h.amount, m);
    AddUser(h.user, h.amount, m);
    p.movements.push_back(std::move(m));
    // Each lot gets back exactly what the try took from it, expired or not.
    for (const auto& [lot, points] : h.taken) {
      AddRemaining(lots_.at(lot), points);
      p.lots.push_back(LotFact{p.movements.size(), LotEvent::kLogged, lot, 0, points, 0,
                               LotState::kProvisional, h.id});
    }
  }
  ResolveHold(h, final_state);
  if (final_state == PointHoldState::kExpired) {
    ++stats_.holds_expired;
  }
}

// --- grants ----------------------------------------------------------------------

void PointModel::PredictPopulate(const PointRequest& r, Prediction& p) {
  if (user_count() > 0 || r.limit <= 0) {
    return;  // populated before (a restart): nothing happens
  }
  users_.resize(static_cast<size_t>(r.limit) + 1);
  if (r.amount <= 0) {
    return;
  }
  const sim::Time expires_at = r.expires_after > 0 ? r.now + r.expires_after : kNever;
  for (UserId u = 1; u <= r.limit; ++u) {
    if (Lot* lot = CreateLot(fmt::format("initial/{}", u), u, r.amount, expires_at,
                             LotState::kProvisional, p)) {
      IssueLot(*lot, p);
    }
  }
}

void PointModel::PredictGrant(std::string_view key, UserId user, int64_t amount,
                              sim::Time expires_at, bool confirmed, sim::Time now, Prediction& p) {
  if (key.empty() || amount <= 0) {
    p.grant = GrantAnswer(GrantStatus::kInvalid);
    return;
  }
  if (Lot* lot = FindLot(key)) {
    if (lot->state == LotState::kRevoked) {
      p.grant = confirmed ? GrantAnswer(GrantStatus::kInvalid)
                          : GrantAnswer(GrantStatus::kRevoked, lot->id, 0);
      return;
    }
    if (lot->user != user || lot->amount != amount || lot->expires_at != expires_at) {
      p.grant = GrantAnswer(GrantStatus::kInvalid);
      return;
    }
    if (confirmed && lot->state == LotState::kProvisional) {
      IssueLot(*lot, p);
    }
    p.grant = GrantAnswer(GrantStatus::kOk, lot->id, amount);
    return;
  }
  if (!UserExists(user) || expires_at <= now) {
    p.grant = GrantAnswer(GrantStatus::kInvalid);
    return;
  }
  Lot* lot = CreateLot(key, user, amount, expires_at, LotState::kProvisional, p);
  if (!confirmed) {
    ++stats_.grants_provisional;
  } else if (lot != nullptr) {
    IssueLot(*lot, p);
  }
  p.grant = GrantAnswer(GrantStatus::kOk, lot == nullptr ? 0 : lot->id, amount);
}

void PointModel::PredictConfirmGrant(std::string_view key, Prediction& p) {
  if (key.empty()) {
    p.grant = GrantAnswer(GrantStatus::kInvalid);
    return;
  }
  Lot* lot = FindLot(key);
  if (lot == nullptr) {
    p.grant = GrantAnswer(GrantStatus::kNoSuchGrant);
    return;
  }
  if (lot->state == LotState::kRevoked) {
    p.grant = GrantAnswer(GrantStatus::kInvalid);
    return;
  }
  if (lot->state == LotState::kProvisional) {
    IssueLot(*lot, p);
  }
  p.grant = GrantAnswer(GrantStatus::kOk, lot->id, lot->amount);
}

void PointModel::PredictRevokeGrant(std::string_view key, sim::Time now, Prediction& p) {
  if (key.empty()) {
    p.grant = GrantAnswer(GrantStatus::kInvalid);
    return;
  }
  Lot* lot = FindLot(key);
  if (lot == nullptr) {
    // The tombstone: the provisional grant that may still come is refused.
    Lot* tomb = CreateLot(key, kSystem, 0, now, LotState::kRevoked, p);
    p.grant = GrantAnswer(GrantStatus::kOk, tomb == nullptr ? 0 : tomb->id, 0);
    return;
  }
  switch (lot->state) {
    case LotState::kConfirmed:
      p.grant = GrantAnswer(GrantStatus::kInvalid);
      return;
    case LotState::kProvisional:
      lot->state = LotState::kRevoked;
      p.lots.push_back(LotFact{0, LotEvent::kRevoked, lot->id, lot->user, lot->amount, 0,
                               LotState::kRevoked, 0});
      ++stats_.grants_revoked;
      break;
    case LotState::kRevoked:
      break;
  }
  p.grant = GrantAnswer(GrantStatus::kOk, lot->id, lot->amount);
}

void PointModel::PredictPaymentEvent(const PointRequest& r, Prediction& p) {
  PAYLAB_CHECK(r.event != nullptr);
  const system::PaymentEvent& e = *r.event;
  if (r.reward_bp < 0 || r.reward_bp > 10'000 || r.grant_ttl <= 0) {
    p.grant = GrantAnswer(GrantStatus::kInvalid);
    return;
  }
  const int64_t reward = e.amount > 0 ? RewardOf(e.amount, r.reward_bp) : 0;
  const std::string key = fmt::format("grant/{}", e.payment_id);
  if (reward == 0 || e.status == PaymentStatus::kCreated) {
    p.grant = GrantAnswer(GrantStatus::kIgnored);
    return;
  }
  if (e.status == PaymentStatus::kVoided || e.status == PaymentStatus::kFailed) {
    return PredictRevokeGrant(key, r.now, p);
  }
  const Lot* lot = FindLot(key);
  const bool tombstone = lot != nullptr && lot->user == kSystem;
  if (lot != nullptr && !tombstone && (lot->user != e.payer || lot->amount != reward)) {
    p.grant = GrantAnswer(GrantStatus::kInvalid);
    return;
  }
  if (e.status == PaymentStatus::kAuthorized) {
    if (lot == nullptr) {
      return PredictGrant(key, e.payer, reward, r.now + r.grant_ttl, /*confirmed=*/false, r.now, p);
    }
    p.grant = lot->state == LotState::kRevoked
                  ? GrantAnswer(GrantStatus::kRevoked, lot->id, 0)
                  : GrantAnswer(GrantStatus::kOk, lot->id, lot->amount);
    return;
  }
  // Captured: confirm the grant, made now if the authorisation is not here.
  if (lot != nullptr) {
    return PredictConfirmGrant(key, p);
  }
  PredictGrant(key, e.payer, reward, r.now + r.grant_ttl, /*confirmed=*/true, r.now, p);
}

// --- TCC debit -------------------------------------------------------------------

void PointModel::PredictTry(const PointRequest& r, Prediction& p) {
  PAYLAB_CHECK(r.tcc != nullptr);
  const system::TccTry& t = *r.tcc;
  if (t.key.empty() || t.amount_min < 0 || t.amount_max < t.amount_min || t.ttl <= 0 ||
      t.ttl > rules_.hold_ttl_max || t.user <= kSystem) {
    p.tcc = TccAnswer(TccStatus::kInvalid);
    return;
  }
  if (const auto k = tcc_.find(t.key); k != tcc_.end()) {
    const TccKey& known = k->second;
    if (known.cancelled_first) {
      p.tcc = TccAnswer(TccStatus::kCancelled);
    } else if (known.user != t.user || known.amount_min != t.amount_min ||
               known.amount_max != t.amount_max || known.ttl != t.ttl) {
      p.tcc = TccAnswer(TccStatus::kInvalid);
    } else {
      p.tcc = known.answer;
    }
    return;
  }
  if (!UserExists(t.user)) {
    p.tcc = TccAnswer(TccStatus::kInvalid);
    return;
  }
  // Spendable: confirmed lots with expires_at > now, soonest first, ties
  // by ID; each taken as far as the range's top still needs.
  const User& u = users_[static_cast<size_t>(t.user)];
  std::vector<std::pair<uint64_t, int64_t>> taken;
  int64_t amount = 0;
  for (auto it = u.open_lots.upper_bound({r.now, std::numeric_limits<uint64_t>::max()});
       it != u.open_lots.end() && amount < t.amount_max; ++it) {
    const int64_t take = std::min(lots_.at(it->second).remaining, t.amount_max - amount);
    taken.emplace_back(it->second, take);
    amount += take;
  }
  TccKey& record = tcc_[t.key];
  record = TccKey{false, t.user, t.amount_min, t.amount_max, t.ttl, TccAnswer(TccStatus::kOk)};
  if (amount < t.amount_min) {
    record.answer = TccAnswer(TccStatus::kDeclined);
    p.tcc = record.answer;
    return;
  }
  Hold h{new_ids_.hold, t.key, t.user, amount, PointHoldState::kHeld, r.now + t.ttl, taken};
  p.hold = system::PointHoldCreated{h.id, h.user, h.amount, h.expires_at};
  if (amount > 0) {
    Movement m{PointMovementKind::kTry, t.key, h.id, 0, {}};
    AddUser(t.user, -amount, m);
    AddSystem(PointAccount::kHolds, amount, m);
    p.movements.push_back(std::move(m));
    for (const auto& [lot, points] : taken) {
      AddRemaining(lots_.at(lot), -points);
      p.lots.push_back(LotFact{p.movements.size(), LotEvent::kLogged, lot, 0, -points, 0,
                               LotState::kProvisional, h.id});
    }
  }
  if (taken.size() >= 2) {
    ++stats_.multi_lot_debits;
  }
  record.answer = TccAnswer(TccStatus::kOk, h.id, amount);
  p.tcc = record.answer;
  if (h.id == 0) {
    return;  // the comparison reports the missing hold
  }
  if (holds_.contains(h.id)) {
    p.broken = fmt::format("the ledger named a new hold (key '{}') {}, the ID of an existing hold",
                           t.key, h.id);
    return;
  }
  held_by_expiry_.emplace(h.expires_at, h.id);
  holds_[h.id] = std::move(h);
}

void PointModel::PredictConfirmDebit(const PointRequest& r, Prediction& p) {
  p.tcc = TccAnswer(TccStatus::kInvalid);
  const auto k = r.key.empty() ? tcc_.end() : tcc_.find(std::string(r.key));
  // Only a try answered ok has a hold to confirm.
  if (k == tcc_.end() || k->second.cancelled_first || k->second.answer.status != TccStatus::kOk) {
    return;
  }
  Hold& h = holds_.at(k->second.answer.id);
  switch (h.state) {
    case PointHoldState::kConfirmed:
      p.tcc = TccAnswer(TccStatus::kOk, h.id, h.amount);
      return;
    case PointHoldState::kExpired:
      p.tcc = TccAnswer(TccStatus::kExpired, h.id, 0);
      return;
    case PointHoldState::kCancelled:
      return;
    case PointHoldState::kHeld:
      break;
  }
  if (r.now >= h.expires_at) {
    // The boundary: at its expiry instant a hold no longer confirms.
    Release(h, PointHoldState::kExpired, p);
    p.tcc = TccAnswer(TccStatus::kExpired, h.id, 0);
    return;
  }
  if (h.amount > 0) {
    Movement m{PointMovementKind::kConfirm, h.key, h.id, 0, {}};
    AddSystem(PointAccount::kHolds, -h.amount, m);
    AddSystem(PointAccount::kClearing, h.amount, m);
    p.movements.push_back(std::move(m));
  }
  ResolveHold(h, PointHoldState::kConfirmed);
  p.tcc = TccAnswer(TccStatus::kOk, h.id, h.amount);
}

void PointModel::PredictCancelDebit(const PointRequest& r, Prediction& p) {
  if (r.key.empty()) {
    p.tcc = TccAnswer(TccStatus::kInvalid);
    return;
  }
  p.tcc = TccAnswer(TccStatus::kOk);
  const auto k = tcc_.find(std::string(r.key));
  if (k == tcc_.end()) {
    // The empty rollback: remembered, so that the late try is cancelled.
    tcc_[std::string(r.key)] = TccKey{true, 0, 0, 0, 0, TccAnswer(TccStatus::kCancelled)};
    return;
  }
  if (k->second.cancelled_first || k->second.answer.status != TccStatus::kOk) {
    return;  // nothing was ever held under the key
  }
  Hold& h = holds_.at(k->second.answer.id);
  switch (h.state) {
    case PointHoldState::kConfirmed:
      p.tcc = TccAnswer(TccStatus::kInvalid);
      return;
    case PointHoldState::kCancelled:
    case PointHoldState::kExpired:
      break;
    case PointHoldState::kHeld:
      Release(h, PointHoldState::kCancelled, p);
      break;
  }
  p.tcc = TccAnswer(TccStatus::kOk, h.id, h.amount);
}

// --- sweeps ------------------------------------------------------------------------

void PointModel::PredictExpireHolds(const PointRequest& r, Prediction& p) {
  std::vector<uint64_t> due;
  for (auto it = held_by_expiry_.begin(); it != held_by_expiry_.end() && it->first <= r.now &&
                                          static_cast<int64_t>(due.size()) < r.limit;
       ++it) {
    due.push_back(it->second);
  }
  for (uint64_t id : due) {
    Release(holds_.at(id), PointHoldState::kExpired, p);
  }
  p.count = static_cast<int64_t>(due.size());
}

void PointModel::PredictExpireLots(const PointRequest& r, Prediction& p) {
  std::vector<uint64_t> due;
  for (auto it = lots_by_expiry_.begin(); it != lots_by_expiry_.end() && it->first <= r.now &&
                                          static_cast<int64_t>(due.size()) < r.limit;
       ++it) {
    due.push_back(it->second);
  }
  for (uint64_t id : due) {
    BreakLot(lots_.at(id), p);
  }
  p.count = static_cast<int64_t>(due.size());
}

// --- value with its terms ---------------------------------------------------------

void PointModel::BreakLot(Lot& lot, Prediction& p) {
  const int64_t points = lot.remaining;
  Movement m{PointMovementKind::kBreakage, lot.key, 0, lot.id, {}};
  AddUser(lot.user, -points, m);
  AddSystem(PointAccount::kBreakage, points, m);
  p.movements.push_back(std::move(m));
  AddRemaining(lot, -points);
  p.lots.push_back(LotFact{p.movements.size(), LotEvent::kLogged, lot.id, 0, -points, 0,
                           LotState::kProvisional, 0});
  ++stats_.lots_expired;
}

void PointModel::IssueTerms(std::string_view key, UserId user,
                            const std::vector<system::ValueTerm>& terms, sim::Time now,
                            Prediction& p) {
  p.grant = GrantAnswer(GrantStatus::kOk);
  for (size_t i = 0; i < terms.size(); ++i) {
    Lot* lot = CreateLot(fmt::format("{}/{}", key, i), user, terms[i].amount, terms[i].expires_at,
                         LotState::kProvisional, p);
    if (lot == nullptr) {
      return;  // the comparison reports the missing lot
    }
    IssueLot(*lot, p);
    if (terms[i].expires_at <= now) {
      BreakLot(*lot, p);  // it arrived expired
    }
    p.grant.lot_id = i == 0 ? lot->id : p.grant.lot_id;
    p.grant.amount += terms[i].amount;
  }
}

void PointModel::PredictReceiveValue(const PointRequest& r, Prediction& p) {
  const std::vector<system::ValueTerm> terms(r.terms.begin(), r.terms.end());
  const bool bad_term = std::any_of(terms.begin(), terms.end(),
                                    [](const system::ValueTerm& t) { return t.amount <= 0; });
  if (r.key.empty() || terms.empty() || bad_term || !UserExists(r.user)) {
    p.grant = GrantAnswer(GrantStatus::kInvalid);
    return;
  }
  if (const Lot* first = FindLot(fmt::format("{}/0", r.key))) {
    // Received before: only the same user and terms answer ok.
    bool same =
        first->user == r.user && FindLot(fmt::format("{}/{}", r.key, terms.size())) == nullptr;
    int64_t total = 0;
    for (size_t i = 0; same && i < terms.size(); ++i) {
      const Lot* lot = FindLot(fmt::format("{}/{}", r.key, i));
      same = lot != nullptr && lot->amount == terms[i].amount &&
             lot->expires_at == terms[i].expires_at;
      total += terms[i].amount;
    }
    p.grant =
        same ? GrantAnswer(GrantStatus::kOk, first->id, total) : GrantAnswer(GrantStatus::kInvalid);
    return;
  }
  IssueTerms(r.key, r.user, terms, r.now, p);
}

void PointModel::PredictRefundDebit(const PointRequest& r, Prediction& p) {
  if (r.key.empty() || r.debit_key.empty()) {
    p.grant = GrantAnswer(GrantStatus::kInvalid);
    return;
  }
  if (const auto seen = refunds_.find(std::string(r.key)); seen != refunds_.end()) {
    p.grant = seen->second.debit_key == r.debit_key
                  ? GrantAnswer(GrantStatus::kOk, seen->second.lot, seen->second.amount)
                  : GrantAnswer(GrantStatus::kInvalid);
    return;
  }
  const auto k = tcc_.find(std::string(r.debit_key));
  const Hold* h = nullptr;
  if (k != tcc_.end() && !k->second.cancelled_first && k->second.answer.status == TccStatus::kOk) {
    const auto found = holds_.find(k->second.answer.id);
    h = found == holds_.end() ? nullptr : &found->second;
  }
  if (h == nullptr || h->state != PointHoldState::kConfirmed) {
    p.grant = GrantAnswer(GrantStatus::kInvalid);
    return;
  }
  std::vector<system::ValueTerm> parts;
  for (const auto& [lot, points] : h->taken) {
    parts.push_back(system::ValueTerm{points, lots_.at(lot).expires_at});
  }
  IssueTerms(r.key, h->user, parts, r.now, p);
  refunds_[std::string(r.key)] = Refund{std::string(r.debit_key), p.grant.lot_id, p.grant.amount};
}

// --- checking ----------------------------------------------------------------------

std::string PointModel::Check(const PointApplied& fact) {
  ++stats_.requests;
  const PointRequest& r = fact.request;
  new_ids_.lots.clear();
  for (const system::LotChange& c : fact.lots) {
    if (c.event == LotEvent::kCreated) {
      new_ids_.lots.emplace_back(c.user, c.lot);
    }
  }
  std::sort(new_ids_.lots.begin(), new_ids_.lots.end());
  new_ids_.used.assign(new_ids_.lots.size(), false);
  new_ids_.hold = fact.holds.size() == 1 ? fact.holds.front().hold_id : 0;
  Prediction p;
  switch (r.op) {
    case PointOp::kPopulate:
      PredictPopulate(r, p);
      break;
    case PointOp::kGrantProvisional:
      PredictGrant(r.key, r.user, r.amount, r.expires_at, /*confirmed=*/false, r.now, p);
      break;
    case PointOp::kConfirmGrant:
      PredictConfirmGrant(r.key, p);
      break;
    case PointOp::kRevokeGrant:
      PredictRevokeGrant(r.key, r.now, p);
      break;
    case PointOp::kGrantConfirmed:
      PredictGrant(r.key, r.user, r.amount, r.expires_at, /*confirmed=*/true, r.now, p);
      break;
    case PointOp::kApplyPaymentEvent:
      PredictPaymentEvent(r, p);
      break;
    case PointOp::kTryDebit:
      PredictTry(r, p);
      break;
    case PointOp::kConfirmDebit:
      PredictConfirmDebit(r, p);
      break;
    case PointOp::kCancelDebit:
      PredictCancelDebit(r, p);
      break;
    case PointOp::kExpireHolds:
      PredictExpireHolds(r, p);
      break;
    case PointOp::kExpireLots:
      PredictExpireLots(r, p);
      break;
    case PointOp::kReceiveValue:
      PredictReceiveValue(r, p);
      break;
    case PointOp::kRefundDebit:
      PredictRefundDebit(r, p);
      break;
  }
  if (IsGrantOp(r.op) && p.grant.status != GrantStatus::kOk &&
      p.grant.status != GrantStatus::kIgnored) {
    ++stats_.refusals;
  }
  if (IsTccOp(r.op) && p.tcc.status == TccStatus::kDeclined) {
    ++stats_.declines;
  } else if (IsTccOp(r.op) && p.tcc.status != TccStatus::kOk) {
    ++stats_.refusals;
  }
  std::string diff = p.broken.empty() ? Compare(fact, p) : p.broken;
  if (diff.empty()) {
    return "";
  }
  return fmt::format("{}{} at t={:.6f} s: {}", system::PointOpName(r.op), RequestText(r),
                     sim::ToSeconds(r.now), diff);
}

std::string PointModel::Compare(const PointApplied& fact, const Prediction& p) const {
  const PointOp op = fact.request.op;
  if (IsGrantOp(op) && !(fact.grant == p.grant)) {
    return fmt::format(
        "expected answer {} (lot {}, amount {}), the ledger answered {} (lot {}, amount {})",
        system::GrantStatusName(p.grant.status), p.grant.lot_id, p.grant.amount,
        system::GrantStatusName(fact.grant.status), fact.grant.lot_id, fact.grant.amount);
  }
  if (IsTccOp(op) && !(fact.tcc == p.tcc)) {
    return fmt::format(
        "expected answer {} (hold {}, amount {}), the ledger answered {} (hold {}, amount {})",
        system::TccStatusName(p.tcc.status), p.tcc.id, p.tcc.amount,
        system::TccStatusName(fact.tcc.status), fact.tcc.id, fact.tcc.amount);
  }
  if (fact.count != p.count) {
    return fmt::format("expected {} expired, the ledger expired {}", p.count, fact.count);
  }
  const auto hold_text = [](const system::PointHoldCreated& h) {
    return fmt::format(" hold {} user {} amount {} expiring at {}", h.hold_id, h.user, h.amount,
                       TimeText(h.expires_at));
  };
  const bool same_hold = fact.holds.size() == (p.hold ? 1u : 0u) &&
                         (!p.hold || (fact.holds.front().hold_id == p.hold->hold_id &&
                                      fact.holds.front().user == p.hold->user &&
                                      fact.holds.front().amount == p.hold->amount &&
                                      fact.holds.front().expires_at == p.hold->expires_at));
  if (!same_hold) {
    std::string made;
    for (const system::PointHoldCreated& h : fact.holds) {
      made += hold_text(h);
    }
    return fmt::format("expected {} new hold(s){}; the ledger made {}{}", p.hold ? 1 : 0,
                       p.hold ? hold_text(*p.hold) : "", fact.holds.size(), made);
  }
  std::string diff = CompareMovements(fact, p);
  return diff.empty() ? CompareLots(fact, p) : diff;
}

std::string PointModel::CompareMovements(const PointApplied& fact, const Prediction& p) const {
  const size_t n = std::max(p.movements.size(), fact.movements.size());
  for (size_t i = 0; i < n; ++i) {
    std::string want = i < p.movements.size() ? MovementText(p.movements[i]) : "nothing";
    std::string have = "nothing";
    if (i < fact.movements.size()) {
      const system::PointMovementRecord& f = fact.movements[i];
      Movement m{f.kind, std::string(f.key), f.hold_id, f.lot_id, {}};
      for (const system::PointEntry& e : f.entries) {
        m.entries.push_back(Entry{e.user, e.account, e.delta});
      }
      have = MovementText(m);
    }
    // The texts sort the entries: equal texts are equal movements.
    if (want != have) {
      return fmt::format("movement {} of {} expected {}; the ledger wrote {} of {}: {}", i + 1,
                         p.movements.size(), want, i + 1, fact.movements.size(), have);
    }
  }
  return "";
}

std::string PointModel::CompareLots(const PointApplied& fact, const Prediction& p) const {
  // The facts' lot changes, each tied to its movement's place in the call.
  std::vector<std::pair<uint64_t, size_t>> place;
  for (size_t i = 0; i < fact.movements.size(); ++i) {
    place.emplace_back(fact.movements[i].id, i + 1);
  }
  std::sort(place.begin(), place.end());
  std::vector<LotFact> have;
  for (const system::LotChange& c : fact.lots) {
    size_t movement = 0;
    if (c.movement != 0) {
      const auto it =
          std::lower_bound(place.begin(), place.end(), std::pair<uint64_t, size_t>{c.movement, 0});
      // A change in a movement the call did not report: place it nowhere.
      movement = it != place.end() && it->first == c.movement ? it->second : SIZE_MAX;
    }
    LotFact f{movement, c.event, c.lot, 0, c.amount, 0, LotState::kProvisional, 0};
    // Each event carries only its own fields.
    if (c.event == LotEvent::kLogged) {
      f.hold = c.hold;
    } else {
      f.user = c.user;
      f.state = c.state;
    }
    if (c.event == LotEvent::kCreated) {
      f.expires_at = c.expires_at;
    }
    have.push_back(f);
  }
  std::vector<LotFact> want = p.lots;
  std::sort(have.begin(), have.end());
  std::sort(want.begin(), want.end());
  if (have == want) {
    return "";
  }
  size_t first = 0;
  while (first < have.size() && first < want.size() && have[first] == want[first]) {
    ++first;
  }
  return fmt::format("expected {} lot change(s), from change {} on:{}; the ledger made {}:{}",
                     want.size(), first + 1, LotFactsText(want, first), have.size(),
                     LotFactsText(have, first));
}

}  // namespace paylab::models
