// The wallet during the migration (seed 000): the legacy wallet, CASHBACK
// still one of its accounts, serving the old API while its users move to the
// point service.
//
// Old API. Prepare / Commit / Rollback (a two-phase payment to a merchant),
// Earn (a cashback credit), TopUp (money in). On every request that could
// use points the wallet reads the user's status from the controller: a
// maintenance window refuses point use and cashback credit (kMaintenance),
// full maintenance refuses everything. Then, in the handler's one
// synchronous step:
//  - a request whose key the ledger already knows is the ledger's (a second
//    phase of a hold prepared here before the user moved completes here: the
//    compatibility of in-flight two-phase calls);
//  - a migrated user's point use or cashback credit goes to the point
//    service (the source of truth for that user), which answers it;
//  - anything else is served here, and a migrated user's CASHBACK is left
//    out of every debit.
// A request the point service forwards (forwarded = true) is served here or
// answered kMoved; it is never forwarded back.
//
// Migration API, for the migrator and the point service: MoveOut (one
// all-or-nothing batch, Ledger::MoveOut; what moved keeps its terms),
// CashbackBalances, CashbackTerms, HeldHolds, Total
// (TOTAL_WALLET_BALANCE: everything but CASHBACK), Lookup (a payment by its
// even ID).
//
// Dual-write: every CASHBACK change of a user not yet migrated is published
// to the cashback topic after its transaction commits, from memory, as a
// real dual-write is: a crash between the commit and the publish loses it.
// Reconciliation on the point service repairs what is lost.
//
// Compatibility sweep (when on): value that comes back to a migrated user's
// CASHBACK after the move (a hold prepared before the switch and released
// after it) is moved out again and forwarded to the point service, durably.
// The maintenance strategies run without it: their drain guarantees no hold
// is in flight at the switch.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "sim/context.h"
#include "system/wallet/account_types.h"
#include "system/wallet/ledger.h"
#include "system/migration/controller.h"
#include "system/messaging/relay.h"

namespace paylab::system {

struct CashbackWalletConfig {
  const AccountTypes* types = nullptr;
  LedgerOptions ledger;
  int64_t users = 0;
  std::vector<InitialBalance> initial_balances;
  TypeId cashback = 0;
  TypeId money = 0;
  sim::NodeId controller = 0;
  sim::NodeId point = 0;
  sim::Duration rpc_timeout = 200 * sim::kMillisecond;
  sim::Duration expiry_scan_interval = 5 * sim::kSecond;
  // Dual-write to the broker.
  bool dual_write = false;
  std::string topic = "cashback";
  RelayConfig relay;
  // The compatibility sweep (0: off).
  sim::Duration sweep_interval = 0;
};

struct MoveOutRequest {
  std::string key;
  std::vector<int64_t> users;
  std::vector<int64_t> expected;  // empty: move whatever is there
  bool require_no_holds = false;
};

// The dual-write message: the user's CASHBACK balance after a movement.
std::string EncodeCashbackChange(int64_t user, int64_t balance, uint64_t movement);
bool DecodeCashbackChange(std::string_view in, int64_t* user, int64_t* balance, uint64_t* movement);

class CashbackWallet : public sim::Service, public LedgerObserver {
 public:
  CashbackWallet(sim::NodeContext& ctx, const CashbackWalletConfig& config,
                 LedgerObserver* observer);

  asio::awaitable<void> Boot() override;

  // Old API.
  asio::awaitable<MigReply> Prepare(MigPay p);
  asio::awaitable<MigReply> Commit(MigResolve r);
  asio::awaitable<MigReply> Rollback(MigResolve r);
  asio::awaitable<MigReply> Earn(MigCredit c);
  asio::awaitable<MigReply> TopUp(MigCredit c);
  asio::awaitable<MigReply> Lookup(uint64_t id);

  // Migration API.
  asio::awaitable<MoveOutReply> MoveOut(MoveOutRequest r);
  asio::awaitable<std::vector<int64_t>> CashbackBalances(std::vector<int64_t> users);
  // Each user's spendable CASHBACK with its terms (Ledger::OpenTerms).
  asio::awaitable<std::vector<std::vector<ValueTerm>>> CashbackTerms(std::vector<int64_t> users);
  asio::awaitable<int64_t> HeldHolds(std::pair<int64_t, int64_t> range);
  // -1 for an unknown user.
  asio::awaitable<int64_t> Total(int64_t user);

  Ledger& ledger() { return *ledger_; }

  void OnMovement(const MovementRecord& m) override;
  void OnHoldCreated(uint64_t hold_id, sim::Time expires_at) override;
  void OnApplied(const WalletApplied& a) override;

 private:
  asio::awaitable<void> ExpiryLoop();
  asio::awaitable<void> SweepLoop();
  MigReply Resolve(const MigResolve& r, bool commit);
  Ledger& Live();

  sim::NodeContext& ctx_;
  const CashbackWalletConfig& config_;
  LedgerObserver* observer_;
  std::unique_ptr<Ledger> ledger_;
  std::deque<OutboxRow> unsent_;
  int64_t unsent_seq_ = 0;
  bool populating_ = false;
  RelaySource relay_source_;
  sim::Statement hold_by_id_;
};

}  // namespace paylab::system
