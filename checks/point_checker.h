// The point ledger's invariant checker, fed every committed point movement
// (as a PointLedgerObserver, directly or through the PointService) and run
// again at the end against the point database itself.
//
// Checks (names as printed in summaries and reports):
//   point_journal_balanced        every movement's entries sum to zero, as
//                                 seen and in the database; the whole journal
//                                 sums to zero
//   point_balance_matches_lots    every account's balance == its journal sum
//                                 == the checker's replay of the movements it
//                                 saw; per user, the journal sum == SUM of
//                                 remaining of the user's confirmed lots; each
//                                 lot's remaining == its amount + its lot log
//                                 (within [0, amount]), and a lot never
//                                 confirmed holds and logged nothing; HOLDS ==
//                                 the held holds, CLEARING == the confirmed
//                                 holds, ISSUE == minus the confirmed lots
//   point_not_spent_after_expiry  no try consumed a lot at or after the lot's
//                                 expires_at
//   point_no_hold_left            at the end no hold is still held
//   point_ids_odd                 every lot, hold and movement ID has its
//                                 lowest bit 1 (the point system's bit)
//
// Violations name the row (movement, account, user, lot, log entry, hold)
// that broke them. The first violation is kept and reported through the
// callback; later ones are counted only.
//
// REQUIRES: the checker observes the ledger from its first movement on (it
// replays them), so wire it in before the service boots.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "sim/simulator.h"
#include "sim/storage.h"
#include "sim/time.h"
#include "system/common/check_board.h"
#include "system/points/point_ledger.h"

namespace paylab::system {

class PointChecker : public PointLedgerObserver {
 public:
  PointChecker(sim::Simulator& sim, std::function<void(const Violation&)> on_violation);

  // PointLedgerObserver
  void OnPointMovement(const PointMovementRecord& m) override;

  // Checks the point database against everything seen, at quiescence.
  void CheckFinal(sim::Database& point_db, sim::Time now);

  const std::vector<CheckStatus>& statuses() const { return board_.statuses(); }
  const std::optional<Violation>& first_violation() const { return board_.first_violation(); }
  int64_t movements_seen() const { return movements_; }

 private:
  enum Check : size_t {
    kJournalBalanced,
    kBalanceMatchesLots,
    kNotSpentAfterExpiry,
    kNoHoldLeft,
    kIdsOdd,
    kCheckCount,
  };
  void Pass(Check c) { board_.Pass(c); }
  void Fail(Check c, std::string detail) { board_.Fail(c, std::move(detail)); }
  void SeeId(uint64_t id, std::string_view what);

  // The final checks, one per invariant, in the order CheckFinal runs them.
  void CheckJournalBalanced(sim::Database& db);
  void CheckBalanceMatchesLots(sim::Database& db);
  void CheckNotSpentAfterExpiry(sim::Database& db);
  void CheckNoHoldLeft(sim::Database& db, sim::Time now);
  void CheckIdsOdd(sim::Database& db);

  CheckBoard board_;
  int64_t movements_ = 0;
  int64_t journal_total_ = 0;
  // Balances replayed from the movements seen, by (user, account). Ordered
  // so that the final comparison reports the same first difference every run.
  std::map<std::pair<UserId, int32_t>, int64_t> model_;
};

}  // namespace paylab::system
