// The defect catalogue's table (see defects.h).
#include "system/common/defects.h"

#include <array>

#include "sim/check.h"

namespace paylab::system {

namespace {

constexpr std::array<DefectInfo, static_cast<size_t>(Defect::kCount)> kCatalogue = {{
    {Defect::kCreditWithoutDebit, "credit_without_debit",
     "the ledger credits a transfer's destination without debiting its source",
     DefectNeeds::kWallet, "movement_balanced", "scenarios/chaos_wallet.json"},
    {Defect::kConsumerWithoutDedup, "consumer_without_dedup",
     "the mirror consumer applies every delivery, keeping no processed-event record",
     DefectNeeds::kMessaging, "event_applied_once", "scenarios/chaos_wallet.json"},
    {Defect::kPublishOutsideOutbox, "publish_outside_outbox",
     "the wallet publishes events from memory after commit instead of through its outbox",
     DefectNeeds::kMessaging, "no_event_lost", "scenarios/chaos_wallet.json"},
    {Defect::kRetryWithoutIdempotencyKey, "retry_without_idempotency_key",
     "the client retries a timed-out request under a fresh idempotency key", DefectNeeds::kWallet,
     "idempotency_one_effect", "scenarios/chaos_wallet.json"},
    {Defect::kCommitIgnoresHoldExpiry, "commit_ignores_hold_expiry",
     "the wallet commits a hold past its expiry if the expiry sweep has not released it yet",
     DefectNeeds::kWallet, "commit_before_expiry", "scenarios/chaos_wallet.json"},
    {Defect::kIdWithoutSystemBit, "id_without_system_bit",
     "the point service's ID generator leaves the system bit at 0, the wallet's value",
     DefectNeeds::kPayments, "point_ids_odd", "scenarios/chaos_payments.json"},
    {Defect::kNoClockRollbackGuard, "no_clock_rollback_guard",
     "the wallet's ID generator trusts its clock when it steps back and reissues timestamps",
     DefectNeeds::kWallet, "ids_unique", "scenarios/chaos_wallet.json"},
    {Defect::kCancelWithoutTombstone, "cancel_without_tombstone",
     "an empty rollback (Cancel before its Try) leaves no tombstone, so the late Try holds funds",
     DefectNeeds::kPayments, "wallet_model_agrees", "scenarios/chaos_payments.json"},
    {Defect::kRecoveryBatchSkipsOldWip, "recovery_batch_skips_old_wip",
     "the recovery batch looks back one batch period instead of the recovery horizon",
     DefectNeeds::kPayments, "workload_completes", "scenarios/chaos_payments.json"},
    {Defect::kUpstreamNeverVoidsOrphans, "upstream_never_voids_orphans",
     "the upstreams ignore notifications of payments they gave up on, leaving orphans",
     DefectNeeds::kPayments, "wallet_no_hold_left", "scenarios/chaos_payments.json"},
    {Defect::kNoAttemptTracking, "no_attempt_tracking",
     "the point service forgets which requests it proxied to the wallet, so a retry after the "
     "user's switch is processed again",
     DefectNeeds::kMigration, "no_double_processing", "scenarios/chaos_migration_online.json"},
    {Defect::kNoDrainBeforeSwitch, "no_drain_before_switch",
     "partial maintenance switches a cohort with its holds still in flight",
     DefectNeeds::kMigration, "points_in_one_system", "scenarios/chaos_migration_partial.json"},
    {Defect::kDualWriteWithoutReconciliation, "dual_write_without_reconciliation",
     "the online switch trusts the dual-written copy, and no reconciliation repairs it",
     DefectNeeds::kMigration, "migration_terms_kept", "scenarios/chaos_migration_online.json"},
    {Defect::kStaleMinNoRecheck, "stale_min_no_recheck",
     "the cross-system debit trusts MIN from a stale wallet total: no re-check, no refund",
     DefectNeeds::kMigration, "payment_money_exact", "scenarios/chaos_migration_online.json"},
    {Defect::kMigrationDropsExpiry, "migration_drops_expiry",
     "the point service makes the value it receives from the wallet (moved, copied, forwarded), "
     "its refunds and its own credits into lots that never expire",
     DefectNeeds::kMigration, "migration_terms_kept", "scenarios/chaos_migration_partial.json"},
    {Defect::kDebitIgnoresPriority, "debit_ignores_priority",
     "a wallet debit drains the user's accounts in credit order (MONEY first, CASHBACK last)",
     DefectNeeds::kWallet, "wallet_model_agrees", "scenarios/chaos_wallet.json"},
    {Defect::kItemsConsumedLatestFirst, "items_consumed_latest_first",
     "a wallet debit consumes an account's latest-expiring balance items first",
     DefectNeeds::kWallet, "wallet_model_agrees", "scenarios/chaos_wallet.json"},
    {Defect::kItemSpendableAtExpiry, "item_spendable_at_expiry",
     "a balance item counts as expired only after its expiry instant, so it pays at the instant",
     DefectNeeds::kWallet, "wallet_model_agrees", "scenarios/chaos_wallet.json"},
    {Defect::kFeeRoundedUp, "fee_rounded_up",
     "the merchant clearing rounds the fee up instead of down (every yen is still conserved)",
     DefectNeeds::kPayments, "payment_model_agrees", "scenarios/chaos_payments.json"},
    {Defect::kRollbackOfCommittedAnswersOk, "rollback_of_committed_answers_ok",
     "the new API answers ok to a Rollback of a committed payment (the money stays paid; the "
     "caller is told it was returned)",
     DefectNeeds::kMigration, "shopper_misuse_refused", "scenarios/chaos_migration_online.json"},
    {Defect::kDeadLetterOneReceiveEarly, "dead_letter_one_receive_early",
     "a queue moves a message to its dead-letter queue on its max_receives-th receive instead of "
     "handing it out (>= where the contract says more than)",
     DefectNeeds::kMessaging, "broker_model_agrees", "scenarios/chaos_wallet.json"},
    {Defect::kPartnerKeyIgnoresParams, "partner_key_ignores_params",
     "the partner answers a Try by its key alone: the key again with another amount, user or "
     "ttl hears the first answer instead of being refused",
     DefectNeeds::kPayments, "partner_model_agrees", "scenarios/chaos_tcc_misuse.json"},
}};

}  // namespace

std::span<const DefectInfo> DefectCatalogue() { return kCatalogue; }

const DefectInfo& InfoOf(Defect d) {
  const auto i = static_cast<size_t>(d);
  PAYLAB_CHECK(i < kCatalogue.size());
  PAYLAB_CHECK(kCatalogue[i].defect == d);
  return kCatalogue[i];
}

std::optional<Defect> FindDefect(std::string_view name) {
  for (const DefectInfo& d : kCatalogue) {
    if (d.name == name) {
      return d.defect;
    }
  }
  return std::nullopt;
}

std::string_view DefectNeedsName(DefectNeeds n) {
  switch (n) {
    case DefectNeeds::kWallet:
      return "wallet";
    case DefectNeeds::kMessaging:
      return "messaging";
    case DefectNeeds::kPayments:
      return "payments";
    case DefectNeeds::kMigration:
      return "migration";
  }
  return "?";
}

}  // namespace paylab::system
