// The wallet service: a node that serves the ledger's API over RPC and runs
// the expiry job (seed 000's legacy wallet).
//
// All state that matters is in the node's database; the service keeps only
// prepared statements and the ID generator's lease in memory, and its Boot()
// rebuilds both. Handlers are synchronous once they run (one SQLite
// transaction each), so a crash either happened before a request was
// applied or after its transaction committed.
//
// Besides the legacy API (hold IDs, used by the upstream client) the wallet
// is a Try-Confirm-Cancel participant of the payment service (system/common/tcc.h):
// TryHold / ConfirmHold / CancelHold name a hold by the orchestrator's key,
// and answer TccReply values (see ToTcc). Payout pays a user out of the
// clearing account that holds tried to the system user are confirmed into.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "sim/context.h"
#include "system/wallet/account_types.h"
#include "system/wallet/ledger.h"
#include "system/messaging/relay.h"
#include "system/common/tcc.h"

namespace paylab::system {

namespace asio = boost::asio;

struct WalletConfig {
  const AccountTypes* types = nullptr;
  LedgerOptions ledger;
  int64_t users = 0;
  std::vector<InitialBalance> initial_balances;
  sim::Duration expiry_scan_interval = 5 * sim::kSecond;
  int64_t expiry_batch_max = 1000;
  // Messaging: with ledger.publish_events on, a relay sends the outbox to
  // the broker node.
  sim::NodeId broker = 0;
  sim::Duration relay_interval = 50 * sim::kMillisecond;
  int64_t relay_batch_max = 100;
  sim::Duration relay_timeout = 200 * sim::kMillisecond;
  // TEST ONLY: publish events from memory after the commit instead of
  // through the outbox, so a crash between commit and publish loses them.
  bool defect_publish_outside_outbox = false;
};

struct DepositRequest {
  std::string key;
  UserId user = 0;
  TypeId type = 0;
  int64_t amount = 0;
};
struct TransferRequest {
  std::string key;
  UserId src = 0;
  UserId dst = 0;
  int64_t amount = 0;
};
struct PrepareRequest {
  std::string key;
  UserId src = 0;
  UserId dst = 0;
  int64_t amount = 0;
  sim::Duration ttl = 0;
};

// A TCC Try on the wallet: the orchestrator's Try (tcc.user pays) and the
// destination the hold is committed to (kSystemUser: the clearing account).
// The wallet cannot take a range: tcc.amount_min must equal tcc.amount_max.
struct WalletTry {
  TccTry tcc;
  UserId dst = 0;
};
struct PayoutRequest {
  std::string key;
  UserId user = 0;
  int64_t amount = 0;
};

// The wallet's statuses as TCC statuses, the one place they are mapped:
//   kOk                                -> kOk
//   kInsufficientFunds, kCapExceeded   -> kDeclined (the funds or the room
//                                         are not there now)
//   kCancelled                         -> kCancelled (empty rollback first)
//   kHoldExpired                       -> kExpired
//   anything else                      -> kInvalid (unknown user or hold,
//       a hold resolved the other way, a key reused with other parameters,
//       bad arguments: refused whatever the timing)
TccStatus ToTcc(WalletStatus s);
// A ledger answer as a TCC answer: the mapped status, the hold's ID and
// the amount.
TccReply ToTccReply(const WalletReply& r);

// Traces a committed movement (its kind, ID and the amount it moved).
void TraceMovement(sim::NodeContext& ctx, const MovementRecord& m);

class Wallet : public sim::Service, public LedgerObserver {
 public:
  Wallet(sim::NodeContext& ctx, const WalletConfig& config, LedgerObserver* observer);

  asio::awaitable<void> Boot() override;

  asio::awaitable<WalletReply> Deposit(DepositRequest r);
  asio::awaitable<WalletReply> Transfer(TransferRequest r);
  asio::awaitable<WalletReply> Prepare(PrepareRequest r);
  asio::awaitable<WalletReply> Commit(uint64_t hold_id);
  asio::awaitable<WalletReply> Rollback(uint64_t hold_id);

  // TCC participant (system/common/tcc.h). TryHold refuses a range
  // (amount_min != amount_max) with kInvalid, then Prepares
  // (key, tcc.user -> dst, amount, ttl).
  asio::awaitable<TccReply> TryHold(WalletTry r);
  asio::awaitable<TccReply> ConfirmHold(std::string key);
  asio::awaitable<TccReply> CancelHold(std::string key);
  // Pays out of the clearing account (Ledger::Payout).
  asio::awaitable<WalletReply> Payout(PayoutRequest r);
  // The user's total over the user account types; 0 for an unknown user.
  asio::awaitable<int64_t> TotalBalance(UserId user);
  // One account's balance (0 if it does not exist): a workload aiming at a
  // cap's room reads it.
  asio::awaitable<int64_t> AccountBalance(std::pair<UserId, TypeId> account);
  // When a hold expires (0: no such hold): a workload aiming at the instant
  // reads it.
  asio::awaitable<sim::Time> HoldExpiry(uint64_t hold_id);

  // REQUIRES: booted.
  Ledger& ledger() { return *ledger_; }

  // Traces every committed movement, then forwards it to the outside
  // observer (the checkers).
  void OnMovement(const MovementRecord& m) override;
  void OnHoldCreated(uint64_t hold_id, sim::Time expires_at) override;
  void OnApplied(const WalletApplied& a) override;

 private:
  asio::awaitable<void> ExpiryLoop();
  Ledger& Live();

  sim::NodeContext& ctx_;
  const WalletConfig& config_;
  LedgerObserver* observer_;
  std::unique_ptr<Ledger> ledger_;
  // The defect's events waiting to be published: volatile, lost on a crash.
  std::deque<OutboxRow> unsent_;
  int64_t unsent_seq_ = 0;
  // What the relay publishes (the outbox, or the defect's memory), and how.
  RelaySource relay_source_;
  RelayConfig relay_config_;
};

}  // namespace paylab::system
