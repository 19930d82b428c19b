// Implementation of the partner's reference model (see partner_model.h).
#include "checks/models/partner_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "sim/check.h"

namespace paylab::models {

using system::PartnerApplied;
using system::PartnerOp;
using system::PartnerRequest;
using system::TccStatus;

namespace {

constexpr int64_t kSystem = 0;

std::string EntriesText(std::vector<PartnerModel::Entry> e) {
  std::sort(e.begin(), e.end());
  std::string out;
  for (const auto& x : e) {
    out += fmt::format(" ({},{},{:+})", x.user, system::PartnerAccountName(x.account), x.delta);
  }
  return out;
}

std::string HoldText(bool created, int64_t id, std::string_view key, int64_t user, int64_t amount,
                     PartnerHoldState state, sim::Duration ttl, sim::Time expires_at,
                     int64_t movement) {
  std::string out =
      fmt::format("{} hold {} key '{}' user {} amount {} {}", created ? "new" : "resolved", id, key,
                  user, amount, system::PartnerHoldStateName(state));
  if (created) {
    out += fmt::format(" ttl {:.6f} s expiring at {:.6f} s", sim::ToSeconds(ttl),
                       sim::ToSeconds(expires_at));
  }
  return out + (movement == 0 ? " without a movement" : fmt::format(" by movement {}", movement));
}

bool IsRefusal(TccStatus s) {
  return s == TccStatus::kInvalid || s == TccStatus::kCancelled || s == TccStatus::kExpired;
}

}  // namespace

int64_t PartnerModel::Balance(int64_t user, PartnerAccount account) const {
  if (user != kSystem) {
    const bool known = account == PartnerAccount::kPoints && user > 0 && user <= user_count();
    return known ? points_[static_cast<size_t>(user)] : 0;
  }
  switch (account) {
    case PartnerAccount::kIssue:
      return issue_;
    case PartnerAccount::kHolds:
      return holds_account_;
    case PartnerAccount::kClearing:
      return clearing_;
    case PartnerAccount::kPoints:
      break;
  }
  return 0;
}

std::optional<PartnerModel::HoldView> PartnerModel::HoldOf(int64_t id) const {
  const auto it = holds_.find(id);
  if (it == holds_.end()) {
    return std::nullopt;
  }
  const Hold& h = it->second;
  return HoldView{h.key, h.user, h.amount, h.ttl, h.state, h.expires_at};
}

// --- effects -----------------------------------------------------------------

void PartnerModel::Answer(Prediction& p, TccStatus s, int64_t id, int64_t amount) {
  p.status = s;
  p.id = id;
  p.id_new_hold = false;
  p.amount = amount;
}

PartnerModel::Movement& PartnerModel::Move(PartnerMovementKind kind, int64_t hold,
                                           std::vector<Entry> entries, Prediction& p) {
  for (const Entry& e : entries) {
    if (e.user != kSystem) {
      PAYLAB_CHECK(e.account == PartnerAccount::kPoints);
      points_[static_cast<size_t>(e.user)] += e.delta;
    } else if (e.account == PartnerAccount::kIssue) {
      issue_ += e.delta;
    } else if (e.account == PartnerAccount::kHolds) {
      holds_account_ += e.delta;
    } else {
      PAYLAB_CHECK(e.account == PartnerAccount::kClearing);
      clearing_ += e.delta;
    }
  }
  ++movements_;
  p.movements.push_back(Movement{kind, hold, false, std::move(entries)});
  return p.movements.back();
}

void PartnerModel::Create(Hold h, size_t movement, Prediction& p) {
  PAYLAB_CHECK(!new_hold_.has_value());  // one new row per request at most
  p.holds.push_back(
      HoldFact{true, 0, h.key, h.user, h.amount, h.ttl, h.expires_at, h.state, movement});
  new_hold_ = std::move(h);
}

void PartnerModel::Resolve(Hold& h, PartnerHoldState state, Prediction& p) {
  PAYLAB_CHECK(h.state == PartnerHoldState::kHeld);
  held_by_expiry_.erase({h.expires_at, h.id});
  h.state = state;
  p.holds.push_back(
      HoldFact{false, h.id, h.key, h.user, h.amount, 0, 0, state, p.movements.size()});
}

void PartnerModel::Release(Hold& h, PartnerHoldState state, Prediction& p) {
  Move(state == PartnerHoldState::kExpired ? PartnerMovementKind::kExpire
                                           : PartnerMovementKind::kCancel,
       h.id,
       {{kSystem, PartnerAccount::kHolds, -h.amount}, {h.user, PartnerAccount::kPoints, h.amount}},
       p);
  Resolve(h, state, p);
  if (state == PartnerHoldState::kExpired) {
    ++stats_.holds_expired;
  }
}

// --- the requests ------------------------------------------------------------

void PartnerModel::PredictPopulate(const PartnerRequest& r, Prediction& p) {
  Answer(p, TccStatus::kOk);
  if (user_count() > 0) {
    return;  // populated before (a restart): nothing happens
  }
  points_.assign(static_cast<size_t>(std::max<int64_t>(r.users, 0)) + 1, 0);
  for (int64_t u = 1; u <= r.users && r.initial_balance > 0; ++u) {
    Move(PartnerMovementKind::kIssue, 0,
         {{kSystem, PartnerAccount::kIssue, -r.initial_balance},
          {u, PartnerAccount::kPoints, r.initial_balance}},
         p);
  }
}

void PartnerModel::PredictTry(const PartnerRequest& r, Prediction& p) {
  const system::TccTry& t = *r.tcc;
  if (t.key.empty() || t.amount_min != t.amount_max || t.amount_max <= 0 || t.ttl <= 0 ||
      t.ttl > rules_.hold_ttl_max) {
    return Answer(p, TccStatus::kInvalid);  // arguments first: the key stays free
  }
  const int64_t amount = t.amount_max;
  if (const auto k = hold_of_key_.find(t.key); k != hold_of_key_.end()) {
    const Hold& h = holds_.at(k->second);
    if (h.state == PartnerHoldState::kTombstone) {
      ++stats_.late_tries;
      return Answer(p, TccStatus::kCancelled);
    }
    if (h.user != t.user || h.amount != amount || h.ttl != t.ttl) {
      return Answer(p, TccStatus::kInvalid);
    }
    // The first answer again, whatever became of the hold since.
    return h.state == PartnerHoldState::kDeclined ? Answer(p, TccStatus::kDeclined)
                                                  : Answer(p, TccStatus::kOk, h.id, h.amount);
  }
  if (t.user <= 0 || t.user > user_count()) {
    return Answer(p, TccStatus::kInvalid);  // no such user: the key stays free
  }
  Hold h{0, t.key, t.user, amount, t.ttl, PartnerHoldState::kHeld, r.now + t.ttl};
  if (points_[static_cast<size_t>(t.user)] < amount) {
    h.state = PartnerHoldState::kDeclined;  // remembered, holding nothing
    Create(std::move(h), 0, p);
    return Answer(p, TccStatus::kDeclined);
  }
  Move(PartnerMovementKind::kTry, 0,
       {{t.user, PartnerAccount::kPoints, -amount}, {kSystem, PartnerAccount::kHolds, amount}}, p)
      .new_hold = true;
  Create(std::move(h), p.movements.size(), p);
  Answer(p, TccStatus::kOk, 0, amount);
  p.id_new_hold = true;
}

void PartnerModel::PredictConfirm(const PartnerRequest& r, Prediction& p) {
  const auto k = hold_of_key_.find(std::string(r.key));
  if (k == hold_of_key_.end()) {
    return Answer(p, TccStatus::kInvalid);  // never tried: nothing remembered
  }
  Hold& h = holds_.at(k->second);
  switch (h.state) {
    case PartnerHoldState::kConfirmed:
      return Answer(p, TccStatus::kOk, h.id, h.amount);
    case PartnerHoldState::kExpired:
      return Answer(p, TccStatus::kExpired);
    case PartnerHoldState::kCancelled:
    case PartnerHoldState::kDeclined:
    case PartnerHoldState::kTombstone:
      return Answer(p, TccStatus::kInvalid);
    case PartnerHoldState::kHeld:
      break;
  }
  if (r.now >= h.expires_at) {
    // The boundary: at its expiry instant a hold no longer confirms.
    Release(h, PartnerHoldState::kExpired, p);
    return Answer(p, TccStatus::kExpired);
  }
  Move(PartnerMovementKind::kConfirm, h.id,
       {{kSystem, PartnerAccount::kHolds, -h.amount},
        {kSystem, PartnerAccount::kClearing, h.amount}},
       p);
  Resolve(h, PartnerHoldState::kConfirmed, p);
  ++stats_.confirms;
  Answer(p, TccStatus::kOk, h.id, h.amount);
}

void PartnerModel::PredictCancel(const PartnerRequest& r, Prediction& p) {
  if (r.key.empty()) {
    return Answer(p, TccStatus::kInvalid);
  }
  const auto k = hold_of_key_.find(std::string(r.key));
  if (k == hold_of_key_.end()) {
    // The empty rollback: a tombstone, so the late Try is cancelled.
    Create(Hold{0, std::string(r.key), kSystem, 0, 0, PartnerHoldState::kTombstone, r.now}, 0, p);
    ++stats_.empty_rollbacks;
    return Answer(p, TccStatus::kOk);
  }
  Hold& h = holds_.at(k->second);
  switch (h.state) {
    case PartnerHoldState::kConfirmed:
      return Answer(p, TccStatus::kInvalid);
    case PartnerHoldState::kCancelled:
    case PartnerHoldState::kExpired:
      return Answer(p, TccStatus::kOk, h.id, h.amount);  // released once already
    case PartnerHoldState::kDeclined:
    case PartnerHoldState::kTombstone:
      return Answer(p, TccStatus::kOk);  // nothing was held
    case PartnerHoldState::kHeld:
      break;
  }
  Release(h, PartnerHoldState::kCancelled, p);
  ++stats_.cancels;
  Answer(p, TccStatus::kOk, h.id, h.amount);
}

void PartnerModel::PredictExpire(const PartnerRequest& r, Prediction& p) {
  std::vector<int64_t> due;
  for (auto it = held_by_expiry_.begin(); it != held_by_expiry_.end() && it->first <= r.now &&
                                          static_cast<int64_t>(due.size()) < r.limit;
       ++it) {
    due.push_back(it->second);
  }
  for (int64_t id : due) {
    Release(holds_.at(id), PartnerHoldState::kExpired, p);
  }
  Answer(p, TccStatus::kOk, 0, static_cast<int64_t>(due.size()));
}

// --- checking ------------------------------------------------------------------

bool PartnerModel::InOutage(sim::Time t) const {
  return std::any_of(rules_.outages.begin(), rules_.outages.end(),
                     [t](const system::PartnerOutage& o) { return o.from <= t && t < o.to; });
}

std::string PartnerModel::CheckUnavailable(const PartnerApplied& fact) const {
  const PartnerRequest& r = fact.request;
  if (r.op == PartnerOp::kPopulate || r.op == PartnerOp::kExpire) {
    return "answered unavailable; the partner's own jobs never are";
  }
  if (!fact.movements.empty() || !fact.holds.empty() || fact.reply.id != 0 ||
      fact.reply.amount != 0) {
    return fmt::format(
        "expected an unavailable answer to change nothing, the partner answered id {} amount {} "
        "and wrote {} movement(s) and {} hold row(s)",
        fact.reply.id, fact.reply.amount, fact.movements.size(), fact.holds.size());
  }
  if (rules_.unavailable_rate <= 0 && !InOutage(r.now)) {
    return "expected an answer (the unavailable rate is 0 and no outage window is open), the "
           "partner answered unavailable";
  }
  return "";
}

void PartnerModel::CountBoundary(const PartnerRequest& r) {
  if (r.op != PartnerOp::kConfirm && r.op != PartnerOp::kCancel) {
    return;
  }
  const auto k = hold_of_key_.find(std::string(r.key));
  if (k == hold_of_key_.end()) {
    return;
  }
  const Hold& h = holds_.at(k->second);
  const bool near = h.state != PartnerHoldState::kTombstone && r.now >= h.expires_at - 1 &&
                    r.now <= h.expires_at + 1;
  stats_.on_time_boundary += near ? 1 : 0;
}

std::string PartnerModel::Check(const PartnerApplied& fact) {
  ++stats_.requests;
  new_hold_.reset();
  const PartnerRequest& r = fact.request;
  const std::string_view key = r.op == PartnerOp::kTry ? std::string_view(r.tcc->key) : r.key;
  const auto report = [&](const std::string& diff) {
    return fmt::format("{} {}{} at t={:.6f} s: {}", system::PartnerOpName(r.op),
                       key.empty() ? "" : "key ", key, sim::ToSeconds(r.now), diff);
  };
  const bool tcc =
      r.op == PartnerOp::kTry || r.op == PartnerOp::kConfirm || r.op == PartnerOp::kCancel;
  if (fact.reply.status == TccStatus::kUnavailable) {
    ++stats_.unavailable;
    const std::string diff = CheckUnavailable(fact);
    return diff.empty() ? "" : report(diff);
  }
  if (tcc && InOutage(r.now)) {
    return report(fmt::format(
        "expected unavailable inside an outage window, the partner answered {} (id {}, amount {})",
        system::TccStatusName(fact.reply.status), fact.reply.id, fact.reply.amount));
  }
  CountBoundary(r);
  Prediction p;
  switch (r.op) {
    case PartnerOp::kPopulate:
      PredictPopulate(r, p);
      break;
    case PartnerOp::kTry:
      PredictTry(r, p);
      break;
    case PartnerOp::kConfirm:
      PredictConfirm(r, p);
      break;
    case PartnerOp::kCancel:
      PredictCancel(r, p);
      break;
    case PartnerOp::kExpire:
      PredictExpire(r, p);
      break;
  }
  stats_.refusals += IsRefusal(p.status) ? 1 : 0;
  stats_.declines += p.status == TccStatus::kDeclined ? 1 : 0;
  const std::string diff = Compare(fact, p);
  if (!diff.empty()) {
    return report(diff);
  }
  Learn(fact);
  return "";
}

std::string PartnerModel::Compare(const PartnerApplied& fact, const Prediction& p) const {
  const auto created = std::find_if(fact.holds.begin(), fact.holds.end(),
                                    [](const system::PartnerHoldChange& c) { return c.created; });
  const int64_t new_id = created == fact.holds.end() ? 0 : created->hold_id;
  const int64_t want_id = p.id_new_hold ? new_id : p.id;
  const system::TccReply& got = fact.reply;
  if (got.status != p.status || static_cast<int64_t>(got.id) != want_id || got.amount != p.amount) {
    return fmt::format(
        "expected answer {} (id {}, amount {}), the partner answered {} (id {}, amount {})",
        system::TccStatusName(p.status), want_id, p.amount, system::TccStatusName(got.status),
        got.id, got.amount);
  }
  std::string diff = CompareMovements(fact, p);
  return diff.empty() ? CompareHolds(fact, p) : diff;
}

std::string PartnerModel::CompareMovements(const PartnerApplied& fact, const Prediction& p) const {
  const auto fact_entries = [](const system::PartnerMovementRecord& m) {
    std::vector<Entry> e;
    for (const system::PartnerEntry& x : m.entries) {
      e.push_back(Entry{x.user, x.account, x.delta});
    }
    std::sort(e.begin(), e.end());
    return e;
  };
  const auto created = std::find_if(fact.holds.begin(), fact.holds.end(),
                                    [](const system::PartnerHoldChange& c) { return c.created; });
  const int64_t new_id = created == fact.holds.end() ? 0 : created->hold_id;
  if (p.movements.size() != fact.movements.size()) {
    std::string want;
    for (const Movement& m : p.movements) {
      want +=
          fmt::format(" {}:{}", system::PartnerMovementKindName(m.kind), EntriesText(m.entries));
    }
    std::string have;
    for (const system::PartnerMovementRecord& m : fact.movements) {
      have += fmt::format(" {}:{}", system::PartnerMovementKindName(m.kind),
                          EntriesText(fact_entries(m)));
    }
    return fmt::format("expected {} movement(s):{}; the partner wrote {}:{}", p.movements.size(),
                       want, fact.movements.size(), have);
  }
  for (size_t i = 0; i < p.movements.size(); ++i) {
    const Movement& want = p.movements[i];
    const system::PartnerMovementRecord& have = fact.movements[i];
    const int64_t want_hold = want.new_hold ? new_id : want.hold;
    std::vector<Entry> want_entries = want.entries;
    std::sort(want_entries.begin(), want_entries.end());
    const std::vector<Entry> have_entries = fact_entries(have);
    if (want.kind != have.kind || want_hold != have.hold_id || want_entries != have_entries ||
        have.at != fact.request.now) {
      return fmt::format(
          "movement {} expected {} of hold {} at {:.6f} s:{}; the partner wrote {} {} of hold {} "
          "at {:.6f} s:{}",
          i + 1, system::PartnerMovementKindName(want.kind), want_hold,
          sim::ToSeconds(fact.request.now), EntriesText(want_entries),
          system::PartnerMovementKindName(have.kind), have.id, have.hold_id,
          sim::ToSeconds(have.at), EntriesText(have_entries));
    }
  }
  return "";
}

std::string PartnerModel::CompareHolds(const PartnerApplied& fact, const Prediction& p) const {
  const auto want_text = [&](const HoldFact& w, int64_t id) {
    const int64_t movement = w.movement == 0 ? 0 : fact.movements[w.movement - 1].id;
    return HoldText(w.created, id, w.key, w.user, w.amount, w.state, w.ttl, w.expires_at, movement);
  };
  const auto have_text = [](const system::PartnerHoldChange& c) {
    return HoldText(c.created, c.hold_id, c.key, c.user, c.amount, c.state, c.ttl, c.expires_at,
                    c.movement);
  };
  if (p.holds.size() != fact.holds.size()) {
    std::string want;
    for (const HoldFact& w : p.holds) {
      want += "; " + want_text(w, w.hold);
    }
    std::string have;
    for (const system::PartnerHoldChange& c : fact.holds) {
      have += "; " + have_text(c);
    }
    return fmt::format("expected {} hold row change(s){}; the partner made {}{}", p.holds.size(),
                       want, fact.holds.size(), have);
  }
  for (size_t i = 0; i < p.holds.size(); ++i) {
    const HoldFact& w = p.holds[i];
    const system::PartnerHoldChange& c = fact.holds[i];
    // A new row's ID is the partner's to choose, but it must be new.
    const bool fresh = c.hold_id > 0 && !holds_.contains(c.hold_id);
    const int64_t id = w.created ? c.hold_id : w.hold;
    const int64_t movement = w.movement == 0 ? 0 : fact.movements[w.movement - 1].id;
    const bool same = w.created == c.created && (w.created ? fresh : w.hold == c.hold_id) &&
                      w.key == c.key && w.user == c.user && w.amount == c.amount &&
                      w.state == c.state && movement == c.movement &&
                      (!w.created || (w.ttl == c.ttl && w.expires_at == c.expires_at));
    if (!same) {
      return fmt::format("hold row change {} expected {}{}; the partner made {}", i + 1,
                         want_text(w, id),
                         w.created && !fresh ? " (with an ID not yet in use)" : "", have_text(c));
    }
  }
  return "";
}

void PartnerModel::Learn(const PartnerApplied& fact) {
  if (!new_hold_) {
    return;
  }
  for (const system::PartnerHoldChange& c : fact.holds) {
    if (c.created) {
      new_hold_->id = c.hold_id;
    }
  }
  PAYLAB_CHECK(new_hold_->id > 0);
  Hold& h = holds_[new_hold_->id];
  h = std::move(*new_hold_);
  new_hold_.reset();
  hold_of_key_[h.key] = h.id;
  if (h.state == PartnerHoldState::kHeld) {
    held_by_expiry_.emplace(h.expires_at, h.id);
  }
}

}  // namespace paylab::models
