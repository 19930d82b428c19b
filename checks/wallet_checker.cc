// Implementation of the wallet checkers (see wallet_checker.h).
#include "checks/wallet_checker.h"

#include <fmt/format.h>

#include <span>

#include "system/wallet/schema.h"

namespace paylab::system {

namespace {
constexpr const char* kCheckNames[] = {
    "movement_balanced",
    "journal_zero",
    "no_forbidden_negative",
    "balance_reconciles",
    "ids_unique",
    "idempotency_one_effect",
    "idempotency_same_answer",
    "idempotency_mismatch_refused",
    "holds_resolved",
    "commit_before_expiry",
    "wallet_no_hold_left",
};

bool IsEffect(MovementKind k) {
  return k == MovementKind::kDeposit || k == MovementKind::kTransfer ||
         k == MovementKind::kPrepare || k == MovementKind::kPayout;
}

}  // namespace

WalletChecker::WalletChecker(sim::Simulator& sim, const AccountTypes& types,
                             std::function<void(const Violation&)> on_violation,
                             WalletCheckerOptions options)
    : sim_(sim),
      types_(types),
      options_(options),
      no_hold_left_listed_(options.no_hold_left),
      board_(sim, kCheckNames, std::move(on_violation)) {
  static_assert(std::size(kCheckNames) == kCheckCount);
  static_assert(kNoHoldLeft == kCheckCount - 1, "the opt-in check is the last one");
}

std::span<const CheckStatus> WalletChecker::statuses() const {
  const std::span<const CheckStatus> all(board_.statuses());
  return no_hold_left_listed_ ? all : all.first(kNoHoldLeft);
}

void WalletChecker::SeeId(uint64_t id, std::string_view what) {
  if (id % 2 != 0) {
    Fail(kIdsUnique, fmt::format("{} id {} is odd: wallet IDs have the system bit 0", what, id));
  } else if (!ids_.insert(id).second) {
    Fail(kIdsUnique, fmt::format("{} id {} was issued before", what, id));
  } else {
    Pass(kIdsUnique);
  }
}

void WalletChecker::OnMovement(const MovementRecord& m) {
  ++movements_;
  const std::string_view kind = MovementKindName(m.kind);
  int64_t sum = 0;
  for (const JournalEntry& e : m.entries) {
    sum += e.delta;
  }
  if (sum != 0) {
    Fail(kMovementBalanced,
         fmt::format("{} movement {} has entries summing to {}", kind, m.id, sum));
  } else {
    Pass(kMovementBalanced);
  }
  journal_total_ += sum;
  if (journal_total_ != 0) {
    Fail(kJournalZero,
         fmt::format("after {} movement {} the journal sums to {}", kind, m.id, journal_total_));
  } else {
    Pass(kJournalZero);
  }
  for (const JournalEntry& e : m.entries) {
    int64_t& b = model_[{e.user, e.type}];
    b += e.delta;
    if (b < 0 && !types_.Get(e.type).allow_negative) {
      Fail(kNoForbiddenNegative, fmt::format("{} movement {} left user {} {} at {}", kind, m.id,
                                             e.user, types_.Get(e.type).name, b));
    } else {
      Pass(kNoForbiddenNegative);
    }
  }
  SeeId(m.id, kind);
  if (IsEffect(m.kind) && !m.idem_key.empty()) {
    // A retry under another key is still the same operation (the client
    // names the aliases it used; none without the retry defect).
    std::string_view op_key = m.idem_key;
    if (!op_key_by_alias_.empty()) {
      if (auto a = op_key_by_alias_.find(std::string(m.idem_key)); a != op_key_by_alias_.end()) {
        op_key = a->second;
      }
    }
    auto [it, inserted] = effect_by_key_.emplace(std::string(op_key), m.id);
    if (!inserted) {
      Fail(kIdemOneEffect,
           fmt::format("key {} has a second effect: {} movement {} (sent as key {}) after {}",
                       op_key, kind, m.id, m.idem_key, it->second));
    } else {
      Pass(kIdemOneEffect);
    }
  }
  if (m.kind == MovementKind::kCommit) {
    auto h = hold_expiry_.find(m.hold_id);
    if (h != hold_expiry_.end() && m.at >= h->second) {
      Fail(kCommitBeforeExpiry,
           fmt::format("hold {} was committed by movement {} {:.3f} s after it expired", m.hold_id,
                       m.id, sim::ToSeconds(m.at - h->second)));
    } else {
      Pass(kCommitBeforeExpiry);
    }
  }
}

void WalletChecker::OnHoldCreated(uint64_t hold_id, sim::Time expires_at) {
  SeeId(hold_id, "hold");
  hold_expiry_[hold_id] = expires_at;
}

void WalletChecker::OnRetryKey(std::string_view op_key, std::string_view attempt_key) {
  op_key_by_alias_[std::string(attempt_key)] = std::string(op_key);
}

void WalletChecker::OnReply(OpKind kind, std::string_view key, const WalletReply& reply) {
  auto [it, inserted] = answer_by_key_.emplace(std::string(key), reply);
  if (!inserted && !(it->second == reply)) {
    Fail(kIdemSameAnswer,
         fmt::format("{} key {} answered {} (id {}, amount {}) after {} (id {}, amount {})",
                     OpKindName(kind), key, WalletStatusName(reply.status), reply.id, reply.amount,
                     WalletStatusName(it->second.status), it->second.id, it->second.amount));
  } else {
    Pass(kIdemSameAnswer);
  }
}

void WalletChecker::OnMisuseReply(std::string_view key, const WalletReply& reply) {
  if (reply.status != WalletStatus::kIdempotencyMismatch) {
    Fail(kIdemMismatchRefused, fmt::format("key {} reused with other parameters was answered {}",
                                           key, WalletStatusName(reply.status)));
  } else {
    Pass(kIdemMismatchRefused);
  }
}

void WalletChecker::CheckFinal(sim::Database& db) {
  CheckJournalZeroAtEnd(db);
  CheckMovementsBalancedAtEnd(db);
  CheckBalancesAgainstReplays(db);
  CheckItemsCoverBalances(db);
  CheckItemLogs(db);
  CheckIdsUniqueAtEnd(db);
  CheckOneEffectPerKeyAtEnd(db);
  CheckHoldsResolved(db);
  if (options_.no_hold_left) {
    CheckNoHoldLeft(db);
  }
}

void WalletChecker::CheckJournalZeroAtEnd(sim::Database& db) {
  const int64_t total = db.QueryInt("SELECT COALESCE(SUM(delta), 0) FROM journal");
  if (total != 0) {
    Fail(kJournalZero, fmt::format("at the end the journal sums to {}", total));
  } else {
    Pass(kJournalZero);
  }
}

void WalletChecker::CheckMovementsBalancedAtEnd(sim::Database& db) {
  sim::Statement q(db,
                   "SELECT movement_id, SUM(delta) FROM journal GROUP BY movement_id "
                   "HAVING SUM(delta) != 0 ORDER BY movement_id LIMIT 1");
  if (q.Step()) {
    Fail(kMovementBalanced,
         fmt::format("movement {} in the database sums to {}", q.Int(0), q.Int(1)));
  } else {
    Pass(kMovementBalanced);
  }
}

// Stored balance == journal replay == the checker's own replay
// (balance_reconciles), and no forbidden negative balance
// (no_forbidden_negative), in one pass over the accounts: the second is
// judged on the accounts read before the first difference, where that
// pass stops.
void WalletChecker::CheckBalancesAgainstReplays(sim::Database& db) {
  sim::Statement q(db,
                   "SELECT a.user_id, a.type, a.balance, COALESCE(j.s, 0) FROM accounts a "
                   "LEFT JOIN (SELECT user_id, type, SUM(delta) AS s FROM journal "
                   "GROUP BY user_id, type) j USING (user_id, type) ORDER BY a.user_id, a.type");
  bool reconciles = true, non_negative = true;
  while (q.Step()) {
    const UserId u = q.Int(0);
    const auto t = static_cast<TypeId>(q.Int(1));
    const int64_t stored = q.Int(2), replayed = q.Int(3);
    auto it = model_.find({u, t});
    const int64_t seen = it == model_.end() ? 0 : it->second;
    if (stored != replayed || stored != seen) {
      Fail(kBalanceReconciles,
           fmt::format("user {} {}: balance {}, journal replay {}, movements seen {}", u,
                       types_.Get(t).name, stored, replayed, seen));
      reconciles = false;
      break;
    }
    if (stored < 0 && !types_.Get(t).allow_negative && non_negative) {
      Fail(kNoForbiddenNegative,
           fmt::format("user {} {} ends at {}", u, types_.Get(t).name, stored));
      non_negative = false;
    }
  }
  if (reconciles) {
    Pass(kBalanceReconciles);
  }
  if (non_negative) {
    Pass(kNoForbiddenNegative);
  }
}

// balance_reconciles: a user's balance items hold max(balance, 0).
void WalletChecker::CheckItemsCoverBalances(sim::Database& db) {
  sim::Statement q(db,
                   "SELECT a.user_id, a.type, a.balance, COALESCE(i.s, 0) FROM accounts a "
                   "LEFT JOIN (SELECT user_id, type, SUM(remaining) AS s FROM balance_items "
                   "GROUP BY user_id, type) i USING (user_id, type) "
                   "WHERE a.user_id != 0 AND MAX(a.balance, 0) != COALESCE(i.s, 0) "
                   "ORDER BY a.user_id, a.type LIMIT 1");
  if (q.Step()) {
    Fail(kBalanceReconciles,
         fmt::format("user {} {}: balance {} but balance items hold {}", q.Int(0),
                     types_.Get(static_cast<TypeId>(q.Int(1))).name, q.Int(2), q.Int(3)));
  } else {
    Pass(kBalanceReconciles);
  }
}

// balance_reconciles: each item's remainder == its amount + its log, never
// below zero.
void WalletChecker::CheckItemLogs(sim::Database& db) {
  sim::Statement q(db,
                   "SELECT i.id, i.amount, i.remaining, COALESCE(l.s, 0) FROM balance_items i "
                   "LEFT JOIN (SELECT item_id, SUM(delta) AS s FROM balance_item_log "
                   "GROUP BY item_id) l ON l.item_id = i.id "
                   "WHERE i.remaining != i.amount + COALESCE(l.s, 0) OR i.remaining < 0 "
                   "ORDER BY i.id LIMIT 1");
  if (q.Step()) {
    Fail(kBalanceReconciles,
         fmt::format("balance item {}: amount {}, remaining {}, but its log sums to {}", q.Int(0),
                     q.Int(1), q.Int(2), q.Int(3)));
  } else {
    Pass(kBalanceReconciles);
  }
}

void WalletChecker::CheckIdsUniqueAtEnd(sim::Database& db) {
  sim::Statement q(db,
                   "SELECT id FROM (SELECT id FROM movements UNION ALL SELECT id FROM holds) "
                   "GROUP BY id HAVING COUNT(*) > 1 OR id % 2 != 0 ORDER BY id LIMIT 1");
  if (q.Step()) {
    Fail(kIdsUnique, fmt::format("id {} is duplicated or odd in the database", q.Int(0)));
  } else {
    Pass(kIdsUnique);
  }
}

void WalletChecker::CheckOneEffectPerKeyAtEnd(sim::Database& db) {
  sim::Statement q(db,
                   "SELECT idem_key, COUNT(*) FROM movements WHERE idem_key IS NOT NULL "
                   "GROUP BY idem_key HAVING COUNT(*) > 1 ORDER BY idem_key LIMIT 1");
  if (q.Step()) {
    Fail(kIdemOneEffect,
         fmt::format("key {} has {} movements in the database", q.Text(0), q.Int(1)));
  } else {
    Pass(kIdemOneEffect);
  }
}

void WalletChecker::CheckHoldsResolved(sim::Database& db) {
  sim::Statement q(db, fmt::format("SELECT id, expires_at FROM holds WHERE state = {} AND "
                                   "expires_at <= ? ORDER BY expires_at, id LIMIT 1",
                                   Stored(HoldState::kHeld)));
  // The expiry sweep runs every scan interval: a hold that expired within
  // the last one is not late yet.
  q.Bind(1, sim_.Now() - options_.expiry_grace);
  if (q.Step()) {
    Fail(kHoldsResolved, fmt::format("hold {} is still held, {:.3f} s past its expiry", q.Int(0),
                                     sim::ToSeconds(sim_.Now() - q.Int(1))));
  } else {
    Pass(kHoldsResolved);
  }
}

void WalletChecker::CheckNoHoldLeft(sim::Database& db) {
  no_hold_left_listed_ = true;
  // Only the orchestrator's Tries (keys "<payment>/wallet", system/common/tcc.h):
  // the upstream client abandons its own holds on purpose, to expire.
  const int64_t held = Stored(HoldState::kHeld);
  sim::Statement q(db, fmt::format("SELECT id, idem_key, expires_at, (SELECT COUNT(*) FROM holds "
                                   "WHERE state = {} AND idem_key LIKE '%/wallet') FROM holds "
                                   "WHERE state = {} AND idem_key LIKE '%/wallet' ORDER BY id "
                                   "LIMIT 1",
                                   held, held));
  if (q.Step()) {
    Fail(kNoHoldLeft,
         fmt::format("hold {} (key {}) is still held at the end, expiring at {:.3f} s; {} "
                     "hold(s) held in all",
                     q.Int(0), q.Text(1), sim::ToSeconds(q.Int(2)), q.Int(3)));
  } else {
    Pass(kNoHoldLeft);
  }
}

}  // namespace paylab::system
