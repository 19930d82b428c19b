// The wallet service: a node that serves the ledger's API over RPC and runs
// the expiry job (seed 000's legacy wallet).
//
// All state that matters is in the node's database; the service keeps only
// prepared statements and the ID generator's lease in memory, and its Boot()
// rebuilds both. Handlers are synchronous once they run (one SQLite
// transaction each), so a crash either happened before a request was
// applied or after its transaction committed.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "sim/context.h"
#include "system/account_types.h"
#include "system/ledger.h"

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

class Wallet : public sim::Service, public LedgerObserver {
 public:
  Wallet(sim::NodeContext& ctx, const WalletConfig& config, LedgerObserver* observer);

  asio::awaitable<void> Boot() override;

  asio::awaitable<WalletReply> Deposit(DepositRequest r);
  asio::awaitable<WalletReply> Transfer(TransferRequest r);
  asio::awaitable<WalletReply> Prepare(PrepareRequest r);
  asio::awaitable<WalletReply> Commit(uint64_t hold_id);
  asio::awaitable<WalletReply> Rollback(uint64_t hold_id);

  // REQUIRES: booted.
  Ledger& ledger() { return *ledger_; }

  // Traces every committed movement, then forwards it to the outside
  // observer (the checkers).
  void OnMovement(const MovementRecord& m) override;
  void OnHoldCreated(uint64_t hold_id, sim::Time expires_at) override;

 private:
  asio::awaitable<void> ExpiryLoop();
  // Publishes pending outbox rows in order; stops at the first failure and
  // tries again on the next tick, so events never overtake each other.
  asio::awaitable<void> RelayLoop();
  Ledger& Live();

  sim::NodeContext& ctx_;
  const WalletConfig& config_;
  LedgerObserver* observer_;
  std::unique_ptr<Ledger> ledger_;
  // The defect's events waiting to be published: volatile, lost on a crash.
  std::deque<OutboxRow> unsent_;
  int64_t unsent_seq_ = 0;
};

}  // namespace paylab::system
