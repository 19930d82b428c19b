// The wallet's invariant checkers, fed every committed movement and every
// answer the upstream client receives; they check as the run goes and again
// at the end against the database itself (TigerBeetle's StateChecker,
// FoundationDB's workload check()).
//
// Checks (names as printed in summaries and reports):
//   movement_balanced       every movement's journal entries sum to zero
//   journal_zero            the database's journal sums to zero, always
//   no_forbidden_negative   no account of a type that forbids it goes below zero
//   balance_reconciles      balance == replay of the journal == what the
//                           checker replayed from the movements it saw, and
//                           SUM(balance items) == max(balance, 0); each
//                           item's remainder == its amount + its log
//   ids_unique              movement and hold IDs are unique and even (wallet)
//   idempotency_one_effect  a key has at most one effect movement, and so has
//                           an operation the client retried under other keys
//   idempotency_same_answer every answer for one key is the same answer
//   idempotency_mismatch_refused  a key reused with other parameters is refused
//   holds_resolved          at the end, no hold is still held past its expiry
//                           by more than the sweep's interval
//   commit_before_expiry    no hold is committed at or after its expiry
//   wallet_no_hold_left     (opt-in) at quiescence no hold of the payment
//                           orchestrator (key "<payment>/wallet") is still
//                           held: every Try was confirmed or cancelled (or
//                           expired). The upstream client's holds are not
//                           counted: it abandons holds on purpose. It runs when
//                           CheckNoHoldLeft is called (the payments runner
//                           does) or, with WalletCheckerOptions::no_hold_left,
//                           from CheckFinal; until it runs once it is not
//                           listed among the statuses.
//
// SYS_CLEARING (the clearing pair's wallet half) may go negative like
// SYS_EXTERNAL; payouts are effect movements of their key like deposits.
//
// The first violation is kept (check, virtual time, the event that broke
// it) and reported through the callback; later ones are counted only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "sim/simulator.h"
#include "sim/storage.h"
#include "system/common/check_board.h"
#include "workloads/client.h"
#include "system/wallet/ledger.h"

namespace paylab::system {

struct WalletCheckerOptions {
  // Run wallet_no_hold_left in CheckFinal (the payments runner does: its
  // orchestrator must resolve every hold it tries).
  bool no_hold_left = false;
  // holds_resolved allows a hold this long past its expiry: the wallet's
  // expiry sweep runs every expiry_scan_interval.
  sim::Duration expiry_grace = 0;
};

class WalletChecker : public LedgerObserver, public ClientObserver {
 public:
  WalletChecker(sim::Simulator& sim, const AccountTypes& types,
                std::function<void(const Violation&)> on_violation,
                WalletCheckerOptions options = {});

  // LedgerObserver
  void OnMovement(const MovementRecord& m) override;
  void OnHoldCreated(uint64_t hold_id, sim::Time expires_at) override;
  // ClientObserver
  void OnReply(OpKind kind, std::string_view key, const WalletReply& reply) override;
  void OnMisuseReply(std::string_view key, const WalletReply& reply) override;
  void OnRetryKey(std::string_view op_key, std::string_view attempt_key) override;

  // Checks the database against everything seen, at quiescence; with
  // options.no_hold_left, CheckNoHoldLeft too.
  void CheckFinal(sim::Database& db);
  // wallet_no_hold_left, at quiescence; lists the check from now on.
  void CheckNoHoldLeft(sim::Database& db);

  // Every check's status; wallet_no_hold_left only once it has run (or was
  // switched on by the options). Points into the checker: valid while it lives.
  std::span<const CheckStatus> statuses() const;
  const std::optional<Violation>& first_violation() const { return board_.first_violation(); }
  int64_t movements_seen() const { return movements_; }

 private:
  enum Check : size_t {
    kMovementBalanced,
    kJournalZero,
    kNoForbiddenNegative,
    kBalanceReconciles,
    kIdsUnique,
    kIdemOneEffect,
    kIdemSameAnswer,
    kIdemMismatchRefused,
    kHoldsResolved,
    kCommitBeforeExpiry,
    // Opt-in: keep it last, the board lists it only when it is on.
    kNoHoldLeft,
    kCheckCount,
  };
  void Pass(Check c) { board_.Pass(c); }
  void Fail(Check c, std::string detail) { board_.Fail(c, std::move(detail)); }
  void SeeId(uint64_t id, std::string_view what);

  // The final checks against the database, one per invariant (or part of
  // one), in the order CheckFinal runs them.
  void CheckJournalZeroAtEnd(sim::Database& db);
  void CheckMovementsBalancedAtEnd(sim::Database& db);
  void CheckBalancesAgainstReplays(sim::Database& db);
  void CheckItemsCoverBalances(sim::Database& db);
  void CheckItemLogs(sim::Database& db);
  void CheckIdsUniqueAtEnd(sim::Database& db);
  void CheckOneEffectPerKeyAtEnd(sim::Database& db);
  void CheckHoldsResolved(sim::Database& db);

  sim::Simulator& sim_;
  const AccountTypes& types_;
  WalletCheckerOptions options_;
  // Whether wallet_no_hold_left is listed: switched on, or run once.
  bool no_hold_left_listed_ = false;
  CheckBoard board_;
  int64_t movements_ = 0;
  int64_t journal_total_ = 0;
  // Balances replayed from the movements seen, by (user, type). Ordered so
  // that the final comparison reports the same first difference every run.
  std::map<std::pair<UserId, TypeId>, int64_t> model_;
  // Membership only: iteration order never matters.
  std::unordered_set<uint64_t> ids_;
  std::unordered_map<std::string, uint64_t> effect_by_key_;
  std::unordered_map<std::string, WalletReply> answer_by_key_;
  // Retry keys -> the operation's own key (empty without the retry defect).
  std::unordered_map<std::string, std::string> op_key_by_alias_;
  std::unordered_map<uint64_t, sim::Time> hold_expiry_;
};

}  // namespace paylab::system
