// Implementation of the upstream client (see client.h).
#include "system/client.h"

#include <fmt/format.h>

#include <algorithm>

#include "system/config_table.h"

namespace paylab::system {

std::string_view OpKindName(OpKind k) {
  switch (k) {
    case OpKind::kDeposit:
      return "deposit";
    case OpKind::kTransfer:
      return "transfer";
    case OpKind::kTwoPhase:
      return "two_phase";
    case OpKind::kMisuse:
      return "misuse";
  }
  return "unknown";
}

std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kRolledBack:
      return "rolled_back";
    case Outcome::kAbandoned:
      return "abandoned";
    case Outcome::kDeclined:
      return "declined";
    case Outcome::kExpired:
      return "expired";
    case Outcome::kRefused:
      return "refused";
    case Outcome::kAccepted:
      return "accepted";
    case Outcome::kGaveUp:
      return "gave_up";
  }
  return "unknown";
}

namespace {
constexpr size_t kRecentMax = 64;
constexpr sim::Duration kBackoffMax = 5 * sim::kSecond;
}  // namespace

Client::Client(sim::NodeContext& ctx, const WorkloadConfig& config, sim::NodeId wallet,
               ClientObserver* observer)
    : ctx_(ctx),
      config_(config),
      wallet_(wallet),
      observer_(observer),
      rng_(ctx.Stream("workload")) {}

asio::awaitable<void> Client::Boot() {
  StoreWorkload();
  answers_ = std::make_unique<AnswerLog>(ctx_);
  ctx_.Spawn(Arrivals());
  co_return;
}

void Client::StoreWorkload() {
  const WorkloadConfig& c = config_;
  StoreConfig(ctx_.db(), {
                             {"operations", c.operations},
                             {"rate_per_s", c.rate_per_s},
                             {"mix.deposit", c.mix[0]},
                             {"mix.transfer", c.mix[1]},
                             {"mix.two_phase", c.mix[2]},
                             {"mix.misuse", c.mix[3]},
                             {"amount_min", c.amount_min},
                             {"amount_max", c.amount_max},
                             {"deposit_type", int64_t{c.deposit_type}},
                             {"rollback_ratio", c.rollback_ratio},
                             {"abandon_ratio", c.abandon_ratio},
                             {"hold_ttl_ns", c.hold_ttl},
                             {"timeout_ns", c.timeout},
                             {"retry_count_max", int64_t{c.retry_count_max}},
                             {"retry_backoff_ns", c.retry_backoff},
                             {"users", c.users},
                         });
}

asio::awaitable<void> Client::Arrivals() {
  const double mean_gap_ns = 1e9 / config_.rate_per_s;
  for (int64_t seq = 0; seq < config_.operations; ++seq) {
    co_await ctx_.Sleep(static_cast<sim::Duration>(rng_.Exponential(mean_gap_ns)));
    ++issued_;
    ctx_.Spawn(Run(DrawKind(), seq));
  }
}

OpKind Client::DrawKind() {
  double total = 0;
  for (double w : config_.mix) {
    total += w;
  }
  double x = rng_.UniformDouble() * total;
  for (size_t k = 0; k < kOpKinds; ++k) {
    if (x < config_.mix[k]) {
      return static_cast<OpKind>(k);
    }
    x -= config_.mix[k];
  }
  return OpKind::kTransfer;
}

UserId Client::DrawUser() { return rng_.UniformInt(1, config_.users); }

Outcome Client::FromStatus(const WalletReply& r) const {
  switch (r.status) {
    case WalletStatus::kOk:
      return Outcome::kOk;
    case WalletStatus::kHoldExpired:
      return Outcome::kExpired;
    default:
      return Outcome::kDeclined;
  }
}

std::string Client::AttemptKey(std::string_view key, int attempt) const {
  if (attempt > 0 && config_.defect_retry_without_key) {
    return fmt::format("{}~r{}", key, attempt);
  }
  return std::string(key);
}

template <class MakeCall>
asio::awaitable<std::optional<WalletReply>> Client::SendAttempts(std::string_view method,
                                                                 const MakeCall& make_call,
                                                                 AnswerRecord& what, bool keyed) {
  for (int attempt = 0;; ++attempt) {
    const auto call = make_call(attempt);
    ++what.attempts;
    auto r = co_await ctx_.Call<Wallet>(wallet_, method, config_.timeout, call);
    if (r.ok()) {
      const std::string sent_key = keyed ? AttemptKey(what.key, attempt) : what.key;
      answers_->Record(what, Answer{.sent_key = sent_key,
                                    .status = WalletStatusName(r.value.status),
                                    .id = r.value.id,
                                    .amount = r.value.amount});
      co_return r.value;
    }
    if (attempt >= config_.retry_count_max) {
      co_return std::nullopt;
    }
    co_await PauseBeforeRetry(attempt);
  }
}

template <class F>
asio::awaitable<std::optional<WalletReply>> Client::Send(std::string_view method, const F& fn,
                                                         AnswerRecord& what) {
  co_return co_await SendAttempts(
      method, [&fn](int) -> const F& { return fn; }, what, /*keyed=*/false);
}

asio::awaitable<void> Client::PauseBeforeRetry(int attempt) {
  ++retries_;
  // Exponential backoff with full jitter, capped.
  const sim::Duration base = std::min(config_.retry_backoff << std::min(attempt, 20), kBackoffMax);
  co_await ctx_.Sleep(base / 2 + rng_.UniformInt(0, base));
}

template <class Req>
asio::awaitable<std::optional<WalletReply>> Client::SendKeyed(
    std::string_view method, const Req& request, asio::awaitable<WalletReply> (Wallet::*op)(Req),
    AnswerRecord& what) {
  co_return co_await SendAttempts(
      method,
      [this, &request, op](int attempt) {
        Req req = request;
        if (attempt > 0 && config_.defect_retry_without_key) {
          req.key = AttemptKey(request.key, attempt);
          observer_->OnRetryKey(request.key, req.key);
        }
        return [req, op](Wallet& w) { return (w.*op)(req); };
      },
      what, /*keyed=*/true);
}

asio::awaitable<void> Client::Run(OpKind kind, int64_t seq) {
  std::string key = fmt::format("c{}-{}", ctx_.incarnation(), seq);
  Outcome o = Outcome::kGaveUp;
  switch (kind) {
    case OpKind::kDeposit:
      o = co_await RunDeposit(std::move(key));
      break;
    case OpKind::kTransfer:
      o = co_await RunTransfer(std::move(key));
      break;
    case OpKind::kTwoPhase:
      o = co_await RunTwoPhase(std::move(key));
      break;
    case OpKind::kMisuse:
      o = co_await RunMisuse(std::move(key));
      break;
  }
  ++counts_[static_cast<size_t>(kind)][static_cast<size_t>(o)];
  ++finished_;
}

asio::awaitable<Outcome> Client::RunDeposit(std::string key) {
  DepositRequest req{key, DrawUser(), config_.deposit_type,
                     rng_.UniformInt(config_.amount_min, config_.amount_max)};
  AnswerRecord what{.key = key,
                    .op = "deposit",
                    .user = req.user,
                    .amount = req.amount,
                    .params = fmt::format(R"({{"type":{}}})", req.type)};
  auto r = co_await SendKeyed("wallet.deposit", req, &Wallet::Deposit, what);
  if (!r) {
    co_return Outcome::kGaveUp;
  }
  observer_->OnReply(OpKind::kDeposit, key, *r);
  co_return FromStatus(*r);
}

asio::awaitable<Outcome> Client::RunTransfer(std::string key) {
  const UserId src = DrawUser();
  UserId dst = DrawUser();
  if (dst == src) {
    dst = src % config_.users + 1;
  }
  TransferRequest req{key, src, dst, rng_.UniformInt(config_.amount_min, config_.amount_max)};
  if (src == dst) {
    co_return Outcome::kDeclined;  // a population of one user has no one to pay
  }
  AnswerRecord what{.key = key, .op = "transfer", .user = src, .peer = dst, .amount = req.amount};
  auto r = co_await SendKeyed("wallet.transfer", req, &Wallet::Transfer, what);
  if (!r) {
    co_return Outcome::kGaveUp;
  }
  observer_->OnReply(OpKind::kTransfer, key, *r);
  if (r->status == WalletStatus::kOk) {
    Finished f{key, req};
    if (recent_.size() < kRecentMax) {
      recent_.push_back(std::move(f));
    } else {
      recent_[recent_next_++ % kRecentMax] = std::move(f);
    }
  }
  co_return FromStatus(*r);
}

asio::awaitable<Outcome> Client::RunTwoPhase(std::string key) {
  const UserId src = DrawUser();
  UserId dst = DrawUser();
  if (dst == src) {
    dst = src % config_.users + 1;
  }
  if (src == dst) {
    co_return Outcome::kDeclined;
  }
  PrepareRequest req{key, src, dst, rng_.UniformInt(config_.amount_min, config_.amount_max),
                     config_.hold_ttl};
  AnswerRecord what{.key = key,
                    .op = "prepare",
                    .user = src,
                    .peer = dst,
                    .amount = req.amount,
                    .params = fmt::format(R"({{"ttl_ns":{}}})", req.ttl)};
  auto prepared = co_await SendKeyed("wallet.prepare", req, &Wallet::Prepare, what);
  if (!prepared) {
    co_return Outcome::kGaveUp;
  }
  observer_->OnReply(OpKind::kTwoPhase, key, *prepared);
  if (prepared->status != WalletStatus::kOk) {
    co_return Outcome::kDeclined;
  }
  const uint64_t hold = prepared->id;
  // The upstream does its own work between the phases.
  co_await ctx_.Sleep(static_cast<sim::Duration>(rng_.Exponential(100.0 * sim::kMillisecond)));
  const double x = rng_.UniformDouble();
  if (x < config_.abandon_ratio) {
    co_return Outcome::kAbandoned;
  }
  const bool rollback = x < config_.abandon_ratio + config_.rollback_ratio;
  const std::string phase_key = fmt::format("{}/{}", rollback ? "rollback" : "commit", hold);
  AnswerRecord phase{.key = phase_key,
                     .op = rollback ? "rollback" : "commit",
                     .params = fmt::format(R"({{"hold":{}}})", hold)};
  std::optional<WalletReply> r;
  if (rollback) {
    const auto call4 = [hold](Wallet& w) { return w.Rollback(hold); };
    r = co_await Send("wallet.rollback", call4, phase);
  } else {
    const auto call5 = [hold](Wallet& w) { return w.Commit(hold); };
    r = co_await Send("wallet.commit", call5, phase);
  }
  if (!r) {
    co_return Outcome::kGaveUp;  // the hold will expire
  }
  observer_->OnReply(OpKind::kTwoPhase, phase_key, *r);
  if (r->status != WalletStatus::kOk) {
    co_return FromStatus(*r);
  }
  co_return rollback ? Outcome::kRolledBack : Outcome::kOk;
}

asio::awaitable<Outcome> Client::RunMisuse(std::string key) {
  if (recent_.empty()) {
    // Nothing to reuse yet: a plain transfer instead, counted as one.
    co_return co_await RunTransfer(std::move(key));
  }
  const Finished& f =
      recent_[static_cast<size_t>(rng_.UniformInt(0, static_cast<int64_t>(recent_.size()) - 1))];
  TransferRequest req = f.request;
  req.amount += 1;  // same key, different parameters
  const auto call6 = [req](Wallet& w) { return w.Transfer(req); };
  AnswerRecord what{
      .key = req.key, .op = "misuse", .user = req.src, .peer = req.dst, .amount = req.amount};
  auto r = co_await Send("wallet.transfer", call6, what);
  if (!r) {
    co_return Outcome::kGaveUp;
  }
  observer_->OnMisuseReply(req.key, *r);
  co_return r->status == WalletStatus::kIdempotencyMismatch ? Outcome::kRefused
                                                            : Outcome::kAccepted;
}

}  // namespace paylab::system
