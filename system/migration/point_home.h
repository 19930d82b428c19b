// The point service as CASHBACK's new home during the migration (seed 000):
// the point ledger, the new API, the proxy to the wallet for users not yet
// here, and the migration's receiving end.
//
// New API: Prepare / Commit / Rollback / Earn / Lookup.
//  - Attempt tracking: before anything else, a key this service once
//    proxied to the wallet goes to the wallet again, whatever the user's
//    status now. A payment that started before the user's switch and is
//    retried after it is so never processed twice (once in each system).
//  - A user not activated here (and any payment without points) is proxied
//    to the wallet; the attempt is recorded first. If the wallet answers
//    kMoved (the user moved between the two), the attempt is voided and the
//    caller asked to retry.
//  - An activated user's payment is the cross-system debit: TOTAL =
//    the wallet's total without CASHBACK; MAX_POINT_DEBIT = amount,
//    MIN_POINT_DEBIT = max(0, amount - TOTAL), stored with the payment so a
//    retry reuses them; points debited within the range (try and confirm at
//    once); the wallet's total read again and the points refunded (a grant
//    "refund/<key>") if points + total no longer cover the amount; then a
//    wallet hold "<key>/w" for the rest. Commit commits that hold; Rollback
//    and expiry release it and refund the points.
// Lookup by payment ID relies on ID exclusivity: an odd ID is this
// service's, an even one is forwarded to the wallet.
//
// Migration API: Activate (the user's moved balance becomes confirmed lots
// "migrate/<user>/<attempt>/<n>", one per expiry instant, keeping each
// expiry, and the user is served here from then on), Copy / ConfirmCopies /
// RevokeCopies (partial maintenance: provisional lots with the copied
// terms, confirmed at the switch, revoked when a cohort rolls back),
// ForwardIn (value the wallet's compatibility sweep forwards, with its
// terms). Value keeps its terms wherever it goes (seed 000: the data must
// be identical): a refund gives points back with the expiries of the lots
// they came from (PointLedger::RefundDebit), and a credit made here expires
// as a CASHBACK credit would in the wallet.
//
// Copies (online strategy): a shadow of each user's wallet CASHBACK, seeded
// with the opening balances (the bulk copy made before the migration) and
// kept current by the wallet's dual-write. At the switch Activate compares
// the copy with what the wallet moved: a difference is an inconsistency
// (counted) and the moved amount wins. Reconciliation compares copies with
// the wallet periodically, a batch of users at a time; a difference seen
// twice with neither side changed in between is repaired (counted).
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "sim/context.h"
#include "system/common/ids.h"
#include "system/migration/controller.h"
#include "system/migration/schema.h"
#include "system/points/point_ledger.h"
#include "system/messaging/queue_consumer.h"

namespace paylab::system {

struct PointHomeConfig {
  PointLedgerOptions ledger;
  int64_t users = 0;
  // Copies: seeded with this CASHBACK balance per user (< 0: no copies).
  int64_t copy_seed = -1;
  sim::NodeId wallet = 0;
  sim::NodeId controller = 0;
  sim::Duration rpc_timeout = 200 * sim::kMillisecond;
  sim::Duration expiry_scan_interval = 5 * sim::kSecond;
  // How long past a payment's expiry it is released (the wallet's own
  // expiry scan releases its hold first).
  sim::Duration expiry_grace = 10 * sim::kSecond;
  // The dual-write consumer ("": none).
  QueueConsumerConfig consumer;
  // Reconciliation (0: off).
  sim::Duration reconcile_interval = 0;
  int64_t reconcile_batch = 500;
  // CASHBACK's expiry in the wallet: a credit made here (Earn) expires this
  // long after it, as it would have there (0: never).
  sim::Duration cashback_expires_after = 0;
  // Defects (system/common/defects.h).
  bool defect_no_attempt_tracking = false;
  // DEFECT migration_drops_expiry: value arriving from the wallet (moved,
  // copied, forwarded) and credits made here become lots that never expire.
  bool defect_drop_expiry = false;
  bool defect_stale_min_no_recheck = false;
  bool defect_trust_copy = false;
  // DEFECT rollback_of_committed_answers_ok: a Rollback of a committed
  // payment answers ok and changes nothing.
  bool defect_rollback_of_committed_ok = false;
};

struct ActivateRequest {
  std::string key;
  std::vector<int64_t> users;
  std::vector<int64_t> amounts;               // what the wallet moved out, per user
  std::vector<std::vector<ValueTerm>> terms;  // and with which expiries
  int64_t attempt = 0;
};

struct CopiesRequest {
  std::vector<int64_t> users;
  std::vector<std::vector<ValueTerm>> terms;  // Copy only: each user's value with its terms
  int64_t attempt = 0;
};

// Durable counts of the migration's receiving end.
struct PointHomeCounters {
  int64_t proxied = 0;               // requests proxied to the wallet
  int64_t duplicates_prevented = 0;  // tracked attempts of users activated since
  int64_t cross_debits = 0;          // payments debited across both systems
  int64_t refunds = 0;               // point debits refunded (re-check, decline, rollback, expiry)
  int64_t switch_inconsistencies = 0;  // copies that differed from the moved balance
  int64_t recon_differences = 0;       // differences reconciliation found
  int64_t recon_repairs = 0;           // and repaired
  int64_t recon_passes = 0;
  int64_t dual_writes_applied = 0;
  int64_t forwards_in = 0;
};
PointHomeCounters ReadPointHomeCounters(sim::Database& db);

class PointHome : public sim::Service, public PointLedgerObserver {
 public:
  PointHome(sim::NodeContext& ctx, const PointHomeConfig& config, PointLedgerObserver* observer);
  ~PointHome() override;

  asio::awaitable<void> Boot() override;

  asio::awaitable<MigReply> Prepare(MigPay p);
  asio::awaitable<MigReply> Commit(MigResolve r);
  asio::awaitable<MigReply> Rollback(MigResolve r);
  asio::awaitable<MigReply> Earn(MigCredit c);
  asio::awaitable<MigReply> Lookup(uint64_t id);

  asio::awaitable<bool> Activate(ActivateRequest r);
  // Provisional lots, one per term ("migrate/<user>/<attempt>/<n>"); answers
  // per user the terms as copied (a term of amount -1 where a grant failed).
  asio::awaitable<std::vector<std::vector<ValueTerm>>> Copy(CopiesRequest r);
  asio::awaitable<bool> ConfirmCopies(CopiesRequest r);
  asio::awaitable<bool> RevokeCopies(CopiesRequest r);
  asio::awaitable<MigReply> ForwardIn(MigCredit c);

  PointLedger& ledger() { return *ledger_; }

  void OnPointMovement(const PointMovementRecord& m) override;
  void OnPointApplied(const PointApplied& a) override;

 private:
  struct Pay;
  struct Stmts;
  asio::awaitable<void> ExpiryLoop();
  asio::awaitable<void> ReconcileLoop();
  bool ApplyDualWrite(std::string_view payload);
  asio::awaitable<MigReply> Proxy(MigPay p);
  asio::awaitable<MigReply> CrossDebit(MigPay p);
  asio::awaitable<MigReply> ResolvePay(MigResolve r, bool commit);
  // Releases a payment that will not be committed: the wallet hold, then
  // the points (refund). Returns false if the wallet did not answer.
  asio::awaitable<bool> Release(Pay& pay, int final_state);
  asio::awaitable<std::optional<int64_t>> WalletTotal(int64_t user);
  std::optional<Pay> LoadPay(std::string_view key);
  void SavePay(const Pay& pay);
  void Refund(const Pay& pay);
  // The terms value keeps here (all of them; the defect drops the expiry).
  std::vector<ValueTerm> Kept(std::vector<ValueTerm> terms) const;
  // The grant keys of a user's copies made in one attempt, in order.
  std::vector<std::string> CopyKeys(int64_t user, int64_t attempt);
  bool Activated(int64_t user);
  bool AttemptProxied(std::string_view key);
  // Records (and counts) a request proxied to the wallet; forgets one the
  // wallet did not take.
  void RecordAttempt(std::string_view key, int64_t user);
  void ForgetAttempt(std::string_view key);
  void Count(std::string_view name, int64_t by = 1);
  MigReply ReplyOf(const Pay& pay);
  // The answer to a Prepare, first or replayed: once it answered ok, ok.
  MigReply PrepareReplyOf(const Pay& pay);
  PointLedger& Live();

  sim::NodeContext& ctx_;
  const PointHomeConfig& config_;
  PointLedgerObserver* observer_;
  std::unique_ptr<PointLedger> ledger_;
  std::unique_ptr<Stmts> st_;
  QueueHandler handler_;
  int64_t reconcile_cursor_ = 1;
  // Payments being worked on now (a duplicate request waits its turn: it is
  // answered kUnavailable and retried). Shared with the guards in coroutine
  // frames, which may outlive this incarnation's service object.
  std::shared_ptr<std::set<std::string>> busy_ = std::make_shared<std::set<std::string>>();
  // Differences seen by the last pass: user -> (wallet balance, copy) then.
  std::map<int64_t, std::pair<int64_t, int64_t>> suspects_;
};

}  // namespace paylab::system
