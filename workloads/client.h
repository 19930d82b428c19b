// The upstream client: a node that sends the workload to the wallet the way
// a real upstream service would.
//
// Operations arrive as a Poisson process. Each one is sent with an
// idempotency key; on a timeout the client retries with the same key and
// the same parameters, with jittered exponential backoff, and gives up after
// retry_count_max retries (the outcome is then unknown to it: "gave_up").
// Two-phase operations prepare a hold and then commit it, roll it back, or
// abandon it to expire. A small share of "misuse" requests reuse a finished
// operation's key with different parameters, which the wallet must refuse.
//
// Every answer the client receives is reported to a ClientObserver (the
// idempotency checker) and recorded in the client's own database (the
// `answers` table of system/common/answer_log.h, beside its workload in `config`),
// so the idempotency checks can be re-derived from client.db with SQL.
// Recording draws nothing from the random streams and traces nothing.
// Outcome counts are volatile: the client node is never crashed by the
// scenarios of this issue.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/context.h"
#include "system/common/answer_log.h"
#include "system/wallet/ledger.h"
#include "system/wallet/wallet.h"

namespace paylab::system {

namespace asio = boost::asio;

enum class OpKind : uint8_t { kDeposit, kTransfer, kTwoPhase, kMisuse };
inline constexpr size_t kOpKinds = 4;
std::string_view OpKindName(OpKind k);

enum class Outcome : uint8_t {
  kOk,          // done (a two-phase operation: committed)
  kRolledBack,  // two-phase: rolled back by the client
  kAbandoned,   // two-phase: left for the hold to expire
  kDeclined,    // the wallet said no (funds, caps)
  kExpired,     // two-phase: the hold expired before the commit arrived
  kRefused,     // misuse refused, as it must be
  kAccepted,    // misuse accepted: an idempotency defect
  kGaveUp,      // retries exhausted; the outcome is unknown to the client
};
inline constexpr size_t kOutcomes = 8;
std::string_view OutcomeName(Outcome o);

struct WorkloadConfig {
  int64_t operations = 0;
  double rate_per_s = 1;
  std::array<double, kOpKinds> mix{0, 1, 0, 0};  // weights, by OpKind
  int64_t amount_min = 1;
  int64_t amount_max = 10000;
  TypeId deposit_type = 1;
  double rollback_ratio = 0;
  double abandon_ratio = 0;
  sim::Duration hold_ttl = 30 * sim::kSecond;
  sim::Duration timeout = 200 * sim::kMillisecond;
  int retry_count_max = 5;
  sim::Duration retry_backoff = 50 * sim::kMillisecond;
  int64_t users = 1;
  // Boundaries (bugs hide where behaviour changes; random instants and
  // amounts almost never land there): this share of operations is aimed at
  // one, drawn from the "workload.boundary" stream. A time boundary makes
  // the request arrive one tick before, at, or one tick after an instant
  // the workload knows: a hold's expiry (read from the wallet), or when the
  // opening balance items expire (`item_expiries`). An amount boundary
  // sends exactly the source's whole balance, or one more; a deposit
  // exactly its account's room under `deposit_cap`, or one more.
  double boundary_ratio = 0;
  std::vector<sim::Time> item_expiries;
  int64_t deposit_cap = 0;  // the deposit type's cap (0: none)
  // The wallet's longest hold, which a misuse asks to exceed.
  sim::Duration hold_ttl_max = 0;
  // DEFECT retry_without_idempotency_key: a retry carries a fresh key.
  bool defect_retry_without_key = false;
};

// The kinds of misuse the client sends (OpKind::kMisuse), each a request
// the wallet's state or contract forbids or answers from its record.
enum class MisuseKind : uint8_t {
  kReusedKey,          // a finished transfer's key, other parameters
  kReplay,             // a finished transfer again, same parameters: the same answer
  kCommitRolledBack,   // a commit of a hold this client rolled back
  kRollbackCommitted,  // a rollback of a hold this client committed
  kUnknownHold,        // a commit of a hold that never was
  kTtlTooLong,         // a prepare asking a hold longer than the wallet allows
  kToSelf,             // a transfer from a user to itself
  kUnknownUser,        // a deposit for a user that does not exist
};
inline constexpr size_t kMisuseKinds = 8;
std::string_view MisuseKindName(MisuseKind k);

// What the client saw. `key` identifies the request being answered (the
// idempotency key; "commit/<hold>" or "rollback/<hold>" for second phases).
class ClientObserver {
 public:
  virtual ~ClientObserver() = default;
  virtual void OnReply(OpKind kind, std::string_view key, const WalletReply& reply) = 0;
  // A misuse request (a reused key with other parameters) was answered.
  virtual void OnMisuseReply(std::string_view key, const WalletReply& reply) = 0;
  // The operation `op_key` is about to be retried under another key (only
  // the retry_without_idempotency_key defect does this): both keys name one
  // operation, which must still have one effect.
  virtual void OnRetryKey(std::string_view op_key, std::string_view attempt_key) = 0;
};

class Client : public sim::Service {
 public:
  Client(sim::NodeContext& ctx, const WorkloadConfig& config, sim::NodeId wallet,
         ClientObserver* observer);

  asio::awaitable<void> Boot() override;

  int64_t count(OpKind k, Outcome o) const {
    return counts_[static_cast<size_t>(k)][static_cast<size_t>(o)];
  }
  int64_t issued() const { return issued_; }
  int64_t finished() const { return finished_; }
  int64_t retries() const { return retries_; }
  bool done() const { return finished_ == config_.operations; }
  // Operations aimed at a time or an amount boundary.
  int64_t aimed_at_time() const { return aimed_at_time_; }
  int64_t aimed_at_amount() const { return aimed_at_amount_; }
  int64_t misuse_sent(MisuseKind k) const { return misuse_sent_[static_cast<size_t>(k)]; }

 private:
  struct Finished {
    std::string key;
    TransferRequest request;
    WalletReply reply;  // its answer
  };
  struct Resolved {
    uint64_t hold = 0;
    bool committed = false;
  };
  // Where an aimed request lands: the instant it arrives at (-1: whenever
  // the network takes it there) and the amount it carries (-1: drawn).
  struct Aim {
    sim::Time arrive_at = -1;
    int64_t amount = -1;
  };

  asio::awaitable<void> Arrivals();
  asio::awaitable<void> Run(OpKind kind, int64_t seq);
  asio::awaitable<Outcome> RunDeposit(std::string key);
  asio::awaitable<Outcome> RunTransfer(std::string key);
  asio::awaitable<Outcome> RunTwoPhase(std::string key);
  asio::awaitable<Outcome> RunMisuse(std::string key);
  // The misuses that need something of the client's past (a finished
  // transfer, a resolved hold) fall back to one that does not.
  asio::awaitable<Outcome> RunMisuseOf(MisuseKind kind, std::string key);
  asio::awaitable<Outcome> MisuseResolved(MisuseKind kind, std::string key);
  // Whether this operation aims at a boundary, and where: `balance` reads
  // the amount an amount boundary is made of (nullopt: unknown, no aim).
  bool DrawAimed();
  std::optional<sim::Time> NextItemExpiry() const;
  asio::awaitable<Aim> AimAtBalance(UserId user, int64_t extra_from);
  asio::awaitable<Aim> AimAt(std::optional<std::pair<UserId, TypeId>> cap_account, UserId user);
  // The instant an aimed second phase of `hold` arrives at (-1: none).
  asio::awaitable<sim::Time> AimAtHoldExpiry(uint64_t hold);
  void Remember(const Finished& f);
  // Sends until an answer arrives or the retries run out; every answer is
  // recorded as one to `what`. `fn` and `what` are taken by reference:
  // callers pass named locals that outlive the co_await (a by-value lambda
  // parameter of a coroutine trips a GCC 12 bug).
  template <class F>
  asio::awaitable<std::optional<WalletReply>> Send(std::string_view method, const F& fn,
                                                   AnswerRecord& what, sim::Time arrive_at = -1);
  // The retry loop itself: attempt n sends make_call(n), a callable on the
  // wallet (taken by reference: it must outlive the co_await). `keyed`: the
  // request carries what.key as its idempotency key (see AttemptKey).
  // With `arrive_at` (>= now) the first attempt arrives at that instant.
  template <class MakeCall>
  asio::awaitable<std::optional<WalletReply>> SendAttempts(std::string_view method,
                                                           const MakeCall& make_call,
                                                           AnswerRecord& what, bool keyed,
                                                           sim::Time arrive_at);
  // Send() for a request that carries an idempotency key: every attempt
  // sends `request` as it is (with the retry defect, a retry renames the key).
  template <class Req>
  asio::awaitable<std::optional<WalletReply>> SendKeyed(
      std::string_view method, const Req& request, asio::awaitable<WalletReply> (Wallet::*op)(Req),
      AnswerRecord& what, sim::Time arrive_at = -1);
  // The key attempt `attempt` (0 = the first) of a keyed request carries:
  // `key`, unless the retry_without_idempotency_key defect renames retries.
  std::string AttemptKey(std::string_view key, int attempt) const;
  void StoreWorkload();
  // Counts a retry and waits before attempt `attempt` + 1.
  asio::awaitable<void> PauseBeforeRetry(int attempt);
  OpKind DrawKind();
  UserId DrawUser();
  Outcome FromStatus(const WalletReply& r) const;

  sim::NodeContext& ctx_;
  const WorkloadConfig& config_;
  sim::NodeId wallet_;
  ClientObserver* observer_;
  sim::Rng rng_;
  sim::Rng aim_rng_;  // boundary choices: aiming never shifts the workload's own draws
  std::unique_ptr<AnswerLog> answers_;  // made at boot
  std::array<std::array<int64_t, kOutcomes>, kOpKinds> counts_{};
  int64_t issued_ = 0;
  int64_t finished_ = 0;
  int64_t retries_ = 0;
  int64_t aimed_at_time_ = 0;
  int64_t aimed_at_amount_ = 0;
  std::array<int64_t, kMisuseKinds> misuse_sent_{};
  // Recently finished transfers and resolved holds, for misuse requests to
  // reuse (bounded).
  std::vector<Finished> recent_;
  size_t recent_next_ = 0;
  std::vector<Resolved> resolved_;
  size_t resolved_next_ = 0;
};

}  // namespace paylab::system
