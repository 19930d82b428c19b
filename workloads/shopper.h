// The shopper: the live traffic that runs while the migration moves users,
// as the apps of many users would send it (a Poisson process of
// operations over users 1..N).
//
//  pay     a two-phase payment to another user (the merchant): Prepare, a
//          pause (the time a checkout takes), then Commit, or Rollback for a
//          share of them. Sent through the old API (the wallet) or the new
//          one (the point service), a share of each; some use points and
//          some do not; a share comes in pairs for the same user at once
//          (two checkouts racing for one balance).
//  earn    a cashback credit. One refused for maintenance is retried after
//          the window (the write-ups: "left unprocessed during maintenance,
//          retried afterwards"), with the same key.
//  topup   money in (MONEY): works in every maintenance but the full one.
//  lookup  a recent payment looked up by its ID through the new API (ID
//          exclusivity decides which system answers).
// With misuse_ratio above 0, that share of finished payments is followed by
// one request the API's contract forbids or must answer as before, sent
// through the same API (a buggy or hostile app):
//  replay_prepare      the same Prepare again: the same answer (status, ID)
//  reused_key          the payment's key with another amount: refused
//  commit_rolled_back  a Commit of the payment the shopper rolled back:
//                      refused
//  rollback_committed  a Rollback of the payment it committed: refused
//  commit_unknown      a Commit of a key no Prepare ever used: refused
// The observer judges each answer; kUnavailable and kMaintenance (the
// request had no effect, whatever it was) prove nothing either way.
// Requests are retried with the same key on a timeout or kUnavailable.
//
// Every answer the shopper receives (kUnavailable ones included) is recorded
// in its own database, client.db (the `answers` table of
// system/common/answer_log.h, beside its configuration in `config`). A request is
// named by its key and op: a payment's second phase carries the payment's
// key (op pay_commit or pay_rollback); a lookup carries its own operation's
// key, the payment's ID and key in its params. Recording draws nothing from
// the random stream and traces nothing.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sim/context.h"
#include "system/common/answer_log.h"
#include "system/migration/controller.h"

namespace paylab::system {

enum class ShopOp : uint8_t { kPay, kEarn, kTopUp, kLookup };
inline constexpr size_t kShopOps = 4;
std::string_view ShopOpName(ShopOp o);

enum class ShopMisuse : uint8_t {
  kReplayPrepare,
  kReusedKey,
  kCommitRolledBack,
  kRollbackCommitted,
  kCommitUnknown,
};
inline constexpr size_t kShopMisuses = 5;
std::string_view ShopMisuseName(ShopMisuse m);

// One misuse and what it drew, for the observer.
struct ShopMisuseAnswer {
  ShopMisuse kind = ShopMisuse::kReplayPrepare;
  std::string_view key;  // the key the misuse was sent under
  bool new_api = false;
  MigReply first;   // the payment's earlier answer (replay_prepare: its Prepare's)
  MigReply answer;  // the misuse's answer
};

enum class ShopOutcome : uint8_t {
  kOk,          // earn, topup, lookup done; pay committed
  kRolledBack,  // pay: rolled back by the shopper
  kDeclined,    // funds or points did not cover it
  kRejected,    // refused for maintenance (user-visible unavailability)
  kExpired,     // pay: the hold expired before the commit
  kFailed,      // refused otherwise (unknown, invalid)
  kGaveUp,      // retries exhausted; the outcome is unknown to the shopper
};
inline constexpr size_t kShopOutcomes = 7;
std::string_view ShopOutcomeName(ShopOutcome o);

struct ShopperConfig {
  int64_t operations = 0;
  double rate_per_s = 100;
  int64_t users = 1;
  std::array<double, kShopOps> mix{0.6, 0.25, 0.1, 0.05};
  double use_points_ratio = 0.7;
  double new_api_ratio = 0.5;
  double pair_ratio = 0.05;
  int64_t amount_min = 100;
  int64_t amount_max = 3000;
  int64_t earn_min = 10;
  int64_t earn_max = 300;
  sim::Duration commit_delay_max = 5 * sim::kSecond;
  double rollback_ratio = 0.1;
  sim::Duration hold_ttl = 30 * sim::kSecond;
  sim::Duration timeout = 300 * sim::kMillisecond;
  int retry_count_max = 6;
  sim::Duration retry_backoff = 50 * sim::kMillisecond;
  sim::Duration maintenance_retry = 30 * sim::kSecond;
  int maintenance_retries_max = 20;
  double misuse_ratio = 0;  // share of finished payments followed by one misuse
  sim::NodeId wallet = 0;
  sim::NodeId point = 0;
};

class ShopperObserver {
 public:
  virtual ~ShopperObserver() = default;
  // A lookup of payment `id` (made under `key`) was answered.
  virtual void OnLookup(uint64_t id, std::string_view key, const MigReply& reply) = 0;
  // A misuse was answered (after its retries on kUnavailable).
  virtual void OnMisuse(const ShopMisuseAnswer& a) = 0;
};

class Shopper : public sim::Service {
 public:
  Shopper(sim::NodeContext& ctx, const ShopperConfig& config, ShopperObserver* observer);

  asio::awaitable<void> Boot() override;

  int64_t count(ShopOp k, ShopOutcome o) const {
    return counts_[static_cast<size_t>(k)][static_cast<size_t>(o)];
  }
  int64_t issued() const { return issued_; }
  int64_t finished() const { return finished_; }
  int64_t retries() const { return retries_; }
  // Requests refused for maintenance (each refusal, retried ones included).
  int64_t rejections() const { return rejections_; }
  bool done() const { return arrivals_done_ && finished_ == expected_; }
  // Misuses sent, by kind.
  int64_t misuses(ShopMisuse m) const { return misuses_[static_cast<size_t>(m)]; }

 private:
  asio::awaitable<void> Arrivals();
  asio::awaitable<void> RunPay(std::string key, int64_t user, bool new_api, bool use_points);
  asio::awaitable<void> RunEarn(std::string key, int64_t user);
  asio::awaitable<void> RunTopUp(std::string key, int64_t user);
  asio::awaitable<void> RunLookup(std::string key);
  // Sends until an answer other than kUnavailable arrives or the attempts
  // run out, recording every answer as one to `what` (by reference: it
  // outlives the co_await, and counts attempts across calls).
  template <class Svc, class F>
  asio::awaitable<std::optional<MigReply>> Attempts(sim::NodeId to, std::string_view method,
                                                    const F& fn, int attempts_max,
                                                    AnswerRecord& what);
  asio::awaitable<std::optional<MigReply>> SendPrepare(const MigPay& p, bool new_api,
                                                       AnswerRecord& what);
  asio::awaitable<std::optional<MigReply>> SendResolve(const MigResolve& r, bool new_api,
                                                       bool commit, AnswerRecord& what);
  // After a payment whose Prepare answered `prepared` and whose second
  // phase (`committed` or not) answered ok: maybe one misuse of it.
  asio::awaitable<void> MaybeMisuse(const MigPay& p, bool new_api, bool committed,
                                    const MigReply& prepared, const MigReply& resolved);
  void StoreWorkload();
  void Finish(ShopOp op, ShopOutcome o);

  sim::NodeContext& ctx_;
  const ShopperConfig& config_;
  ShopperObserver* observer_;
  sim::Rng rng_;
  // Misuse draws from a stream of its own: a scenario without misuse draws
  // what it drew before.
  sim::Rng misuse_rng_;
  std::array<int64_t, kShopMisuses> misuses_{};
  std::unique_ptr<AnswerLog> answers_;  // made at boot
  std::array<std::array<int64_t, kShopOutcomes>, kShopOps> counts_{};
  int64_t issued_ = 0;
  int64_t finished_ = 0;
  int64_t expected_ = 0;
  bool arrivals_done_ = false;
  int64_t retries_ = 0;
  int64_t rejections_ = 0;
  // Recent prepared payments (id, key), for lookups (bounded ring).
  std::vector<std::pair<uint64_t, std::string>> recent_;
  size_t recent_next_ = 0;
};

}  // namespace paylab::system
