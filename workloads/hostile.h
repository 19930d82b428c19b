// The hostile caller: a node that misuses every Try-Confirm-Cancel API of
// the payment platform the way a buggy or hostile caller would, sending its
// calls out of order, repeated, and contradicting earlier ones. Its targets
// are the three participants of system/common/tcc.h: the wallet (TryHold,
// ConfirmHold, CancelHold), the point service (TryDebit, ConfirmDebit,
// CancelDebit) and the external partner (TryHold, ConfirmHold, CancelHold).
//
// Misuse arrives as a Poisson process of sequences (rate_per_s, until
// `until`). Sequence n misuses participant n % 3 in the way (n / 3) % 12
// names (HostileWay), so that every way meets every participant once every
// 36 sequences:
//   confirm_before_try      Confirm of a key never tried
//   cancel_then_try         Cancel of a fresh key, then its Try
//   try_twice_same          Try, the same Try again, then Cancel
//   try_twice_different     Try, the key again with another amount, user or
//                           ttl, then Cancel
//   confirm_after_cancel    Try, Cancel, Confirm
//   cancel_after_confirm    Try, Confirm, Cancel
//   double_confirm          Try, Confirm, Confirm
//   confirm_after_expiry    Try, wait past its ttl, Confirm, then Cancel
//   range                   a Try with amount_min < amount_max (the wallet
//                           and the partner take exact amounts), then Cancel
//   unknown_user            a Try for user 0, a negative user or one past
//                           the population, then Confirm
//   bad_amount              a Try of 0 or a negative amount, then Cancel
//   ttl_too_long            a Try with a ttl above the participant's
//                           maximum, then Cancel
// The calls of a sequence are sent one after the other with a pause between
// them (uniform in [0, pause_max]); a lost answer does not stop the
// sequence (a hostile caller does not care).
//
// Each answer is judged twice. The participants report what they applied
// to their reference models (wallet_model_agrees, point_model_agrees,
// partner_model_agrees), which predict every answer. And the hostile
// caller holds each participant to the contract of system/common/tcc.h itself
// (check misuse_refused_or_replayed, on the CheckBoard it is given): an
// answer the contract decides from what the sequence heard before must be
// a refusal (any status but ok and unavailable) or an exact replay (status,
// ID and amount of the first answer):
//   confirm_before_try      the Confirm: a refusal
//   cancel_then_try         the Try, once the Cancel was answered: a refusal
//   try_twice_same          the second Try, once the first was answered:
//                           the first answer again
//   try_twice_different     the second Try, once the first was answered ok
//                           or declined (the key is taken): a refusal
//   confirm_after_cancel    the Confirm, once Try and Cancel were answered:
//                           a refusal
//   cancel_after_confirm    the Cancel, once the Confirm was answered ok: a
//                           refusal
//   double_confirm          the second Confirm, once Try and the first
//                           Confirm were answered: the first answer again
//   confirm_after_expiry    the Confirm, once the Try was answered ok: a
//                           refusal (expired)
//   range                   the Try, at the wallet and the partner: a
//                           refusal (the point service debits a range)
//   unknown_user            the Try, and the Confirm after it: refusals
//   bad_amount              the Try: a refusal (at the point service, whose
//                           ranges may start at 0, only a negative amount)
//   ttl_too_long            the Try: a refusal
// "Answered" means heard, and not unavailable: an answer lost, or a request
// the participant did not serve, may yet be applied (or not), so the
// sequence's later answers are then not judged. Every other answer (a
// first Try, a Cancel that ends a sequence) the contract leaves open. The
// caller counts what it sent, what it heard and how its answers were
// judged (HostileCounters), and records every answer in its own database
// (the `answers` table of system/common/answer_log.h: op
// "<participant>.<try|confirm|cancel>", params with the misuse kind,
// amount_min and ttl_ns).
//
// It never touches real payments' holds: its keys are
// "hostile/<n>/<participant>" (kHostileKeyPrefix), a namespace the payment
// service never uses. It holds little (amounts in [1, amount_max]) for
// short (ttl in [ttl_min, ttl_max]), so real payments are not starved, and
// every hold it leaves is resolved by its participant's expiry scan. Its
// wallet holds are to the clearing account, as the payment service's are:
// what it confirms clears nothing with the payment service, and the
// clearing check leaves it out (PaymentDatabases::outside_key_prefix).
//
// Determinism: every choice is drawn from the node's "hostile" stream when
// a sequence starts. The node is not crashed by the scenarios; its counts
// are kept by the harness (pass a HostileCounters).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sim/context.h"
#include "sim/random.h"
#include "system/common/answer_log.h"
#include "system/common/check_board.h"
#include "system/common/tcc.h"

namespace paylab::system {

namespace asio = boost::asio;

inline constexpr std::string_view kHostileKeyPrefix = "hostile/";

enum class HostileWay : uint8_t {
  kConfirmBeforeTry,
  kCancelThenTry,
  kTryTwiceSame,
  kTryTwiceDifferent,
  kConfirmAfterCancel,
  kCancelAfterConfirm,
  kDoubleConfirm,
  kConfirmAfterExpiry,
  kRange,
  kUnknownUser,
  kBadAmount,
  kTtlTooLong,
};
inline constexpr size_t kHostileWays = 12;
std::string_view HostileWayName(HostileWay k);

enum class TccTarget : uint8_t { kWallet, kPoint, kPartner };
inline constexpr size_t kTccTargets = 3;
std::string_view TccTargetName(TccTarget t);

// What the contract says one misuse call must hear (see above).
enum class MustHear : uint8_t { kAnything, kRefusal, kReplay };
struct Expectation {
  MustHear rule = MustHear::kAnything;
  TccReply first;  // kReplay: the answer to hear again
};
// An answer is a refusal when it is neither ok nor unavailable.
bool IsRefusal(const TccReply& r);
// "" when `heard` keeps `e`; else what was expected and what was heard.
std::string JudgeMisuseAnswer(const Expectation& e, const TccReply& heard);

// The hostile caller's check, on the board it is given.
inline constexpr const char* kHostileCheckNames[] = {"misuse_refused_or_replayed"};

struct HostileConfig {
  double rate_per_s = 0;  // sequences started per second; 0: none
  sim::Time until = 0;    // no sequence starts at or after this
  sim::NodeId wallet = 0;
  sim::NodeId point = 0;
  sim::NodeId partner = 0;
  int64_t users = 0;        // users 1..users exist at every participant
  int64_t amount_max = 50;  // a Try takes an amount in [1, amount_max]
  sim::Duration ttl_min = 1 * sim::kSecond;
  sim::Duration ttl_max = 3 * sim::kSecond;
  // Each participant's largest ttl: ttl_too_long asks for more.
  sim::Duration wallet_ttl_max = 0;
  sim::Duration point_ttl_max = 0;
  sim::Duration partner_ttl_max = 0;
  sim::Duration timeout = 300 * sim::kMillisecond;  // per wallet or point call
  sim::Duration partner_timeout = 2 * sim::kSecond;
  sim::Duration pause_max = 200 * sim::kMillisecond;
};

struct HostileCounters {
  std::array<int64_t, kHostileWays> sequences{};  // started, by kind
  std::array<int64_t, kTccTargets> calls_to{};    // sent, by participant
  int64_t calls = 0;                              // sent
  int64_t accepted = 0;                           // answered ok
  int64_t refused = 0;      // answered declined, cancelled, expired or invalid
  int64_t unavailable = 0;  // answered unavailable (the partner)
  int64_t lost = 0;         // not answered in time
  int64_t running = 0;      // sequences not yet finished
  // Answers the contract decided (see above), and kept: refusals and exact
  // replays; and those it decided that were neither.
  int64_t refusals_checked = 0;
  int64_t replays_checked = 0;
  int64_t wrong = 0;
};

class Hostile : public sim::Service {
 public:
  // `counters` may be null: the service then counts in its own. `board`
  // (kHostileCheckNames) hears every judged answer; null: judged answers
  // are only counted.
  Hostile(sim::NodeContext& ctx, const HostileConfig& config, HostileCounters* counters,
          CheckBoard* board = nullptr);

  asio::awaitable<void> Boot() override;

  const HostileCounters& counters() const { return *counters_; }

  // One sequence, drawn when it starts (plain values: it lives in a
  // coroutine frame).
  struct Sequence {
    int64_t n = 0;
    HostileWay kind = HostileWay::kConfirmBeforeTry;
    TccTarget target = TccTarget::kWallet;
    int64_t user = 0;
    int64_t amount = 0;
    sim::Duration ttl = 0;
    int64_t unknown_user = 0;    // unknown_user
    int64_t bad_amount = 0;      // bad_amount: 0 or negative
    int64_t range_max = 0;       // range: the upper bound (above amount)
    sim::Duration long_ttl = 0;  // ttl_too_long
    int64_t variant = 0;         // try_twice_different: 0 amount, 1 user, 2 ttl
    std::array<sim::Duration, 3> pauses{};
  };

 private:
  asio::awaitable<void> Arrivals();
  Sequence Draw(int64_t n);
  asio::awaitable<void> Run(Sequence q);
  // The calls, each counted, recorded and judged by `e`; each returns what
  // it heard (nullopt: lost).
  asio::awaitable<std::optional<TccReply>> Try(const Sequence& q, int64_t user, int64_t lo,
                                               int64_t hi, sim::Duration ttl, Expectation e = {});
  // Confirm (confirm) or Cancel of the sequence's key.
  asio::awaitable<std::optional<TccReply>> Resolve(const Sequence& q, bool confirm,
                                                   Expectation e = {});
  asio::awaitable<void> Pause(const Sequence& q, size_t i);
  // The sequences, by what they send.
  asio::awaitable<void> TryTwice(const Sequence& q);
  asio::awaitable<void> TryThenResolveTwice(const Sequence& q);
  // Counts, records and judges one answer (nullopt: lost).
  void Heard(const AnswerRecord& rec, const std::optional<TccReply>& reply, const Expectation& e);
  sim::Duration TtlMaxOf(TccTarget t) const;

  sim::NodeContext& ctx_;
  const HostileConfig& config_;
  HostileCounters own_counters_;
  HostileCounters* counters_;
  CheckBoard* board_;
  sim::Rng rng_;
  std::unique_ptr<AnswerLog> answers_;
};

}  // namespace paylab::system
