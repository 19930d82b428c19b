// Implementation of the hostile caller (see hostile.h).
#include "workloads/hostile.h"

#include <fmt/format.h>

#include <algorithm>

#include "system/wallet/account_types.h"
#include "system/common/config_table.h"
#include "system/payments/partner.h"
#include "system/points/point_service.h"
#include "system/wallet/wallet.h"

namespace paylab::system {

std::string_view HostileWayName(HostileWay k) {
  switch (k) {
    case HostileWay::kConfirmBeforeTry:
      return "confirm_before_try";
    case HostileWay::kCancelThenTry:
      return "cancel_then_try";
    case HostileWay::kTryTwiceSame:
      return "try_twice_same";
    case HostileWay::kTryTwiceDifferent:
      return "try_twice_different";
    case HostileWay::kConfirmAfterCancel:
      return "confirm_after_cancel";
    case HostileWay::kCancelAfterConfirm:
      return "cancel_after_confirm";
    case HostileWay::kDoubleConfirm:
      return "double_confirm";
    case HostileWay::kConfirmAfterExpiry:
      return "confirm_after_expiry";
    case HostileWay::kRange:
      return "range";
    case HostileWay::kUnknownUser:
      return "unknown_user";
    case HostileWay::kBadAmount:
      return "bad_amount";
    case HostileWay::kTtlTooLong:
      return "ttl_too_long";
  }
  return "?";
}

std::string_view TccTargetName(TccTarget t) {
  switch (t) {
    case TccTarget::kWallet:
      return "wallet";
    case TccTarget::kPoint:
      return "point";
    case TccTarget::kPartner:
      return "partner";
  }
  return "?";
}

namespace {

// The traced method names (the payment service's) and the answer log's ops.
constexpr std::string_view kMethods[kTccTargets][3] = {
    {"wallet.try", "wallet.confirm", "wallet.cancel"},
    {"point.try", "point.confirm", "point.cancel"},
    {"partner.try", "partner.confirm", "partner.cancel"},
};
enum Phase : size_t { kTry = 0, kConfirm = 1, kCancel = 2 };

std::string_view MethodOf(TccTarget t, Phase p) { return kMethods[static_cast<size_t>(t)][p]; }

std::string KeyOf(const Hostile::Sequence& q) {
  return fmt::format("{}{}/{}", kHostileKeyPrefix, q.n, TccTargetName(q.target));
}

// An answer heard, and served: the request was applied.
bool Answered(const std::optional<TccReply>& r) {
  return r.has_value() && r->status != TccStatus::kUnavailable;
}

std::string ReplyText(const TccReply& r) {
  return fmt::format("{} (id {}, amount {})", TccStatusName(r.status), r.id, r.amount);
}

Expectation Refusal() { return Expectation{MustHear::kRefusal, {}}; }
Expectation Replay(const TccReply& first) { return Expectation{MustHear::kReplay, first}; }
Expectation RefusalIf(bool decided) { return decided ? Refusal() : Expectation{}; }

}  // namespace

bool IsRefusal(const TccReply& r) {
  return r.status != TccStatus::kOk && r.status != TccStatus::kUnavailable;
}

std::string JudgeMisuseAnswer(const Expectation& e, const TccReply& heard) {
  switch (e.rule) {
    case MustHear::kAnything:
      return "";
    case MustHear::kRefusal:
      return IsRefusal(heard) ? "" : fmt::format("expected a refusal, heard {}", ReplyText(heard));
    case MustHear::kReplay:
      return heard == e.first ? ""
                              : fmt::format("expected the first answer again, {}, heard {}",
                                            ReplyText(e.first), ReplyText(heard));
  }
  return "";
}

Hostile::Hostile(sim::NodeContext& ctx, const HostileConfig& config, HostileCounters* counters,
                 CheckBoard* board)
    : ctx_(ctx),
      config_(config),
      counters_(counters != nullptr ? counters : &own_counters_),
      board_(board),
      rng_(ctx.Stream("hostile")) {}

asio::awaitable<void> Hostile::Boot() {
  const HostileConfig& c = config_;
  StoreConfig(ctx_.db(), {
                             {"rate_per_s", c.rate_per_s},
                             {"until_ns", c.until},
                             {"users", c.users},
                             {"amount_max", c.amount_max},
                             {"ttl_min_ns", c.ttl_min},
                             {"ttl_max_ns", c.ttl_max},
                             {"wallet_ttl_max_ns", c.wallet_ttl_max},
                             {"point_ttl_max_ns", c.point_ttl_max},
                             {"partner_ttl_max_ns", c.partner_ttl_max},
                             {"timeout_ns", c.timeout},
                             {"partner_timeout_ns", c.partner_timeout},
                             {"pause_max_ns", c.pause_max},
                             {"key_prefix", std::string(kHostileKeyPrefix)},
                         });
  answers_ = std::make_unique<AnswerLog>(ctx_);
  ctx_.Spawn(Arrivals());
  co_return;
}

sim::Duration Hostile::TtlMaxOf(TccTarget t) const {
  switch (t) {
    case TccTarget::kWallet:
      return config_.wallet_ttl_max;
    case TccTarget::kPoint:
      return config_.point_ttl_max;
    case TccTarget::kPartner:
      return config_.partner_ttl_max;
  }
  return 0;
}

asio::awaitable<void> Hostile::Arrivals() {
  if (config_.rate_per_s <= 0) {
    co_return;
  }
  const double mean_gap_ns = 1e9 / config_.rate_per_s;
  for (int64_t n = 0;; ++n) {
    co_await ctx_.Sleep(static_cast<sim::Duration>(rng_.Exponential(mean_gap_ns)));
    if (ctx_.Now() >= config_.until) {
      co_return;
    }
    const Sequence q = Draw(n);
    ++counters_->sequences[static_cast<size_t>(q.kind)];
    ++counters_->running;
    ctx_.Spawn(Run(q));
  }
}

Hostile::Sequence Hostile::Draw(int64_t n) {
  Sequence q;
  q.n = n;
  // Every way meets every participant once every kTccTargets * kHostileWays
  // sequences.
  q.target = static_cast<TccTarget>(n % static_cast<int64_t>(kTccTargets));
  q.kind = static_cast<HostileWay>((n / static_cast<int64_t>(kTccTargets)) %
                                   static_cast<int64_t>(kHostileWays));
  // The same draws for every kind, so that one sequence never shifts the
  // next one's.
  const int64_t users = std::max<int64_t>(config_.users, 1);
  q.user = rng_.UniformInt(1, users);
  q.amount = rng_.UniformInt(1, config_.amount_max);
  q.ttl = rng_.UniformInt(config_.ttl_min, config_.ttl_max);
  const int64_t who = rng_.UniformInt(0, 2);
  const int64_t off = rng_.UniformInt(1, 5);
  q.unknown_user = who == 0 ? 0 : who == 1 ? -off : users + off;
  const bool negative = rng_.Bernoulli(0.5);
  const int64_t magnitude = rng_.UniformInt(1, config_.amount_max);
  q.bad_amount = negative ? -magnitude : 0;
  q.range_max = q.amount + rng_.UniformInt(1, config_.amount_max);
  q.long_ttl = TtlMaxOf(q.target) + rng_.UniformInt(1, sim::kSecond);
  q.variant = rng_.UniformInt(0, 2);
  for (sim::Duration& p : q.pauses) {
    p = rng_.UniformInt(0, config_.pause_max);
  }
  return q;
}

asio::awaitable<void> Hostile::Pause(const Sequence& q, size_t i) {
  if (q.pauses[i] > 0) {
    co_await ctx_.Sleep(q.pauses[i]);
  }
}

// The second Try of the key: the same parameters, or others (variant).
asio::awaitable<void> Hostile::TryTwice(const Sequence& q) {
  const int64_t users = std::max<int64_t>(config_.users, 1);
  const bool same = q.kind == HostileWay::kTryTwiceSame;
  const auto first = co_await Try(q, q.user, q.amount, q.amount, q.ttl);
  co_await Pause(q, 0);
  const int64_t user = !same && q.variant == 1 ? q.user % users + 1 : q.user;
  const int64_t amount = !same && q.variant == 0 ? q.amount + 1 : q.amount;
  const sim::Duration ttl = !same && q.variant == 2 ? q.ttl + sim::kSecond : q.ttl;
  // One user only: "another user" is the same one, and the Try a replay.
  const bool replay = user == q.user && amount == q.amount && ttl == q.ttl;
  Expectation e;
  if (Answered(first)) {
    // A key taken (held or declined) refuses other parameters.
    const bool taken = first->status == TccStatus::kOk || first->status == TccStatus::kDeclined;
    e = replay ? Replay(*first) : RefusalIf(taken);
  }
  co_await Try(q, user, amount, amount, ttl, e);
  co_await Pause(q, 1);
  co_await Resolve(q, false);
}

// Try, then two of Confirm and Cancel in the order the kind names.
asio::awaitable<void> Hostile::TryThenResolveTwice(const Sequence& q) {
  const auto tried = co_await Try(q, q.user, q.amount, q.amount, q.ttl);
  co_await Pause(q, 0);
  const bool cancel_first = q.kind == HostileWay::kConfirmAfterCancel;
  const auto second = co_await Resolve(q, !cancel_first);
  co_await Pause(q, 1);
  const bool both = Answered(tried) && Answered(second);
  switch (q.kind) {
    case HostileWay::kConfirmAfterCancel:
      // Cancelled, or never held: nothing to confirm.
      co_await Resolve(q, true, RefusalIf(both));
      break;
    case HostileWay::kCancelAfterConfirm:
      co_await Resolve(q, false, RefusalIf(both && second->status == TccStatus::kOk));
      break;
    default:  // double_confirm
      co_await Resolve(q, true, both ? Replay(*second) : Expectation{});
      break;
  }
}

asio::awaitable<void> Hostile::Run(Sequence q) {
  // Ranges, and a range [0, 0], are refused by the participants that take
  // exact amounts.
  const bool exact = q.target != TccTarget::kPoint;
  switch (q.kind) {
    case HostileWay::kConfirmBeforeTry:
      co_await Resolve(q, true, Refusal());
      break;
    case HostileWay::kCancelThenTry: {
      const auto cancelled = co_await Resolve(q, false);
      co_await Pause(q, 0);
      co_await Try(q, q.user, q.amount, q.amount, q.ttl, RefusalIf(Answered(cancelled)));
      break;
    }
    case HostileWay::kTryTwiceSame:
    case HostileWay::kTryTwiceDifferent:
      co_await TryTwice(q);
      break;
    case HostileWay::kConfirmAfterCancel:
    case HostileWay::kCancelAfterConfirm:
    case HostileWay::kDoubleConfirm:
      co_await TryThenResolveTwice(q);
      break;
    case HostileWay::kConfirmAfterExpiry: {
      const auto tried = co_await Try(q, q.user, q.amount, q.amount, q.ttl);
      // The hold was made before its answer came back: after ttl it has
      // expired, whether or not the participant's scan got to it.
      co_await ctx_.Sleep(q.ttl + q.pauses[0]);
      co_await Resolve(q, true, RefusalIf(Answered(tried) && tried->status == TccStatus::kOk));
      co_await Pause(q, 1);
      co_await Resolve(q, false);
      break;
    }
    case HostileWay::kRange:
      co_await Try(q, q.user, q.amount, q.range_max, q.ttl, RefusalIf(exact));
      co_await Pause(q, 0);
      co_await Resolve(q, false);
      break;
    case HostileWay::kUnknownUser:
      co_await Try(q, q.unknown_user, q.amount, q.amount, q.ttl, Refusal());
      co_await Pause(q, 0);
      // Refused, the Try held nothing: there is nothing to confirm.
      co_await Resolve(q, true, Refusal());
      break;
    case HostileWay::kBadAmount:
      // The point service takes a range from 0: [0, 0] holds nothing, as
      // its contract allows (system/points/point_ledger.h).
      co_await Try(q, q.user, q.bad_amount, q.bad_amount, q.ttl,
                   RefusalIf(exact || q.bad_amount < 0));
      co_await Pause(q, 0);
      co_await Resolve(q, false);
      break;
    case HostileWay::kTtlTooLong:
      co_await Try(q, q.user, q.amount, q.amount, q.long_ttl, Refusal());
      co_await Pause(q, 0);
      co_await Resolve(q, false);
      break;
  }
  --counters_->running;
}

void Hostile::Heard(const AnswerRecord& rec, const std::optional<TccReply>& reply,
                    const Expectation& e) {
  if (!reply) {
    ++counters_->lost;
    return;
  }
  switch (reply->status) {
    case TccStatus::kOk:
      ++counters_->accepted;
      break;
    case TccStatus::kUnavailable:
      ++counters_->unavailable;
      break;
    case TccStatus::kDeclined:
    case TccStatus::kCancelled:
    case TccStatus::kExpired:
    case TccStatus::kInvalid:
      ++counters_->refused;
      break;
  }
  answers_->Record(
      rec,
      Answer{.status = TccStatusName(reply->status), .id = reply->id, .amount = reply->amount});
  if (e.rule == MustHear::kAnything || reply->status == TccStatus::kUnavailable) {
    return;  // the contract leaves it open, or the request was not served
  }
  const std::string diff = JudgeMisuseAnswer(e, *reply);
  if (!diff.empty()) {
    ++counters_->wrong;
    if (board_ != nullptr) {
      board_->Fail(0, fmt::format("{} key {} ({}): {}", rec.op, rec.key, rec.params, diff));
    }
    return;
  }
  ++(e.rule == MustHear::kRefusal ? counters_->refusals_checked : counters_->replays_checked);
  if (board_ != nullptr) {
    board_->Pass(0);
  }
}

asio::awaitable<std::optional<TccReply>> Hostile::Try(const Sequence& q, int64_t user, int64_t lo,
                                                      int64_t hi, sim::Duration ttl,
                                                      Expectation e) {
  const TccTry t{KeyOf(q), user, lo, hi, ttl};
  const std::string_view method = MethodOf(q.target, kTry);
  ++counters_->calls;
  ++counters_->calls_to[static_cast<size_t>(q.target)];
  std::optional<TccReply> reply;
  switch (q.target) {
    case TccTarget::kWallet: {
      // To the clearing account, as the payment service's charges are.
      const WalletTry req{t, kSystemUser};
      const auto fn = [req](Wallet& w) { return w.TryHold(req); };
      auto r = co_await ctx_.Call<Wallet>(config_.wallet, method, config_.timeout, fn);
      reply = r.ok() ? std::optional<TccReply>(r.value) : std::nullopt;
      break;
    }
    case TccTarget::kPoint: {
      const auto fn = [t](PointService& p) { return p.TryDebit(t); };
      auto r = co_await ctx_.Call<PointService>(config_.point, method, config_.timeout, fn);
      reply = r.ok() ? std::optional<TccReply>(r.value) : std::nullopt;
      break;
    }
    case TccTarget::kPartner: {
      const auto fn = [t](Partner& p) { return p.TryHold(t); };
      auto r = co_await ctx_.Call<Partner>(config_.partner, method, config_.partner_timeout, fn);
      reply = r.ok() ? std::optional<TccReply>(r.value) : std::nullopt;
      break;
    }
  }
  Heard(AnswerRecord{.key = t.key,
                     .op = method,
                     .user = user,
                     .amount = hi,
                     .params = fmt::format(R"({{"kind":"{}","amount_min":{},"ttl_ns":{}}})",
                                           HostileWayName(q.kind), lo, ttl),
                     .attempts = 1},
        reply, e);
  co_return reply;
}

asio::awaitable<std::optional<TccReply>> Hostile::Resolve(const Sequence& q, bool confirm,
                                                          Expectation e) {
  const std::string key = KeyOf(q);
  const std::string_view method = MethodOf(q.target, confirm ? kConfirm : kCancel);
  ++counters_->calls;
  ++counters_->calls_to[static_cast<size_t>(q.target)];
  std::optional<TccReply> reply;
  switch (q.target) {
    case TccTarget::kWallet: {
      const auto fn = [key, confirm](Wallet& w) {
        return confirm ? w.ConfirmHold(key) : w.CancelHold(key);
      };
      auto r = co_await ctx_.Call<Wallet>(config_.wallet, method, config_.timeout, fn);
      reply = r.ok() ? std::optional<TccReply>(r.value) : std::nullopt;
      break;
    }
    case TccTarget::kPoint: {
      const auto fn = [key, confirm](PointService& p) {
        return confirm ? p.ConfirmDebit(key) : p.CancelDebit(key);
      };
      auto r = co_await ctx_.Call<PointService>(config_.point, method, config_.timeout, fn);
      reply = r.ok() ? std::optional<TccReply>(r.value) : std::nullopt;
      break;
    }
    case TccTarget::kPartner: {
      const auto fn = [key, confirm](Partner& p) {
        return confirm ? p.ConfirmHold(key) : p.CancelHold(key);
      };
      auto r = co_await ctx_.Call<Partner>(config_.partner, method, config_.partner_timeout, fn);
      reply = r.ok() ? std::optional<TccReply>(r.value) : std::nullopt;
      break;
    }
  }
  Heard(AnswerRecord{.key = key,
                     .op = method,
                     .params = fmt::format(R"({{"kind":"{}"}})", HostileWayName(q.kind)),
                     .attempts = 1},
        reply, e);
  co_return reply;
}

}  // namespace paylab::system
