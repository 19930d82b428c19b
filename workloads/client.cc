// Implementation of the upstream client (see client.h).
#include "workloads/client.h"

#include <fmt/format.h>

#include <algorithm>

#include "system/common/config_table.h"

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

std::string_view MisuseKindName(MisuseKind k) {
  switch (k) {
    case MisuseKind::kReusedKey:
      return "reused_key";
    case MisuseKind::kReplay:
      return "replay";
    case MisuseKind::kCommitRolledBack:
      return "commit_rolled_back";
    case MisuseKind::kRollbackCommitted:
      return "rollback_committed";
    case MisuseKind::kUnknownHold:
      return "unknown_hold";
    case MisuseKind::kTtlTooLong:
      return "ttl_too_long";
    case MisuseKind::kToSelf:
      return "to_self";
    case MisuseKind::kUnknownUser:
      return "unknown_user";
  }
  return "unknown";
}

namespace {
constexpr size_t kRecentMax = 64;
// How far ahead a time boundary may be for an operation to wait for it.
constexpr sim::Duration kAimHorizon = 60 * sim::kSecond;
constexpr sim::Duration kBackoffMax = 5 * sim::kSecond;
}  // namespace

Client::Client(sim::NodeContext& ctx, const WorkloadConfig& config, sim::NodeId wallet,
               ClientObserver* observer)
    : ctx_(ctx),
      config_(config),
      wallet_(wallet),
      observer_(observer),
      rng_(ctx.Stream("workload")),
      aim_rng_(ctx.Stream("workload.boundary")) {}

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
                                                                 AnswerRecord& what, bool keyed,
                                                                 sim::Time arrive_at) {
  for (int attempt = 0;; ++attempt) {
    const auto call = make_call(attempt);
    ++what.attempts;
    sim::RpcResult<WalletReply> r;
    if (attempt == 0 && arrive_at >= ctx_.Now()) {
      // Aimed: the request lands on its boundary; retries are ordinary.
      r = co_await ctx_.CallAt<Wallet>(wallet_, method, arrive_at - ctx_.Now() + config_.timeout,
                                       arrive_at, call);
    } else {
      r = co_await ctx_.Call<Wallet>(wallet_, method, config_.timeout, call);
    }
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
                                                         AnswerRecord& what, sim::Time arrive_at) {
  co_return co_await SendAttempts(
      method, [&fn](int) -> const F& { return fn; }, what, /*keyed=*/false, arrive_at);
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
    AnswerRecord& what, sim::Time arrive_at) {
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
      what, /*keyed=*/true, arrive_at);
}

// --- boundaries --------------------------------------------------------------

bool Client::DrawAimed() {
  return config_.boundary_ratio > 0 && aim_rng_.Bernoulli(config_.boundary_ratio);
}

std::optional<sim::Time> Client::NextItemExpiry() const {
  std::optional<sim::Time> next;
  for (sim::Time t : config_.item_expiries) {
    if (t - 1 > ctx_.Now() && t - ctx_.Now() <= kAimHorizon && (!next || t < *next)) {
      next = t;
    }
  }
  return next;
}

asio::awaitable<Client::Aim> Client::AimAt(std::optional<std::pair<UserId, TypeId>> cap_account,
                                           UserId user) {
  Aim aim;
  const std::optional<sim::Time> expiry = NextItemExpiry();
  const bool at_time = aim_rng_.Bernoulli(0.5);
  const int64_t tick = aim_rng_.UniformInt(-1, 1);
  if (at_time && expiry) {
    aim.arrive_at = *expiry + tick;
    ++aimed_at_time_;
    co_return aim;
  }
  // The amount: the user's whole balance (a debit), or an account's room
  // under its cap (a deposit), and one tick more half of the time.
  std::optional<int64_t> base;
  if (cap_account) {
    const auto read = [a = *cap_account](Wallet& w) { return w.AccountBalance(a); };
    auto r = co_await ctx_.Call<Wallet>(wallet_, "wallet.balance", config_.timeout, read);
    base = r.ok() ? std::optional<int64_t>(config_.deposit_cap - r.value) : std::nullopt;
  } else {
    const auto read = [user](Wallet& w) { return w.TotalBalance(user); };
    auto r = co_await ctx_.Call<Wallet>(wallet_, "wallet.balance", config_.timeout, read);
    base = r.ok() ? std::optional<int64_t>(r.value) : std::nullopt;
  }
  if (base && *base + std::max<int64_t>(tick, 0) > 0) {
    aim.amount = *base + std::max<int64_t>(tick, 0);
    ++aimed_at_amount_;
  }
  co_return aim;
}

asio::awaitable<sim::Time> Client::AimAtHoldExpiry(uint64_t hold) {
  const int64_t tick = aim_rng_.UniformInt(-1, 1);
  const auto read = [hold](Wallet& w) { return w.HoldExpiry(hold); };
  auto r = co_await ctx_.Call<Wallet>(wallet_, "wallet.hold_expiry", config_.timeout, read);
  if (!r.ok() || r.value + tick <= ctx_.Now()) {
    co_return -1;
  }
  ++aimed_at_time_;
  co_return r.value + tick;
}

void Client::Remember(const Finished& f) {
  if (recent_.size() < kRecentMax) {
    recent_.push_back(f);
  } else {
    recent_[recent_next_++ % kRecentMax] = f;
  }
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
  Aim aim;
  if (DrawAimed()) {
    aim = co_await AimAt(config_.deposit_cap > 0
                             ? std::optional<std::pair<UserId, TypeId>>({req.user, req.type})
                             : std::nullopt,
                         req.user);
    req.amount = aim.amount > 0 ? aim.amount : req.amount;
  }
  AnswerRecord what{.key = key,
                    .op = "deposit",
                    .user = req.user,
                    .amount = req.amount,
                    .params = fmt::format(R"({{"type":{}}})", req.type)};
  auto r = co_await SendKeyed("wallet.deposit", req, &Wallet::Deposit, what, aim.arrive_at);
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
  Aim aim;
  if (DrawAimed()) {
    aim = co_await AimAt(std::nullopt, src);
    req.amount = aim.amount > 0 ? aim.amount : req.amount;
  }
  AnswerRecord what{.key = key, .op = "transfer", .user = src, .peer = dst, .amount = req.amount};
  auto r = co_await SendKeyed("wallet.transfer", req, &Wallet::Transfer, what, aim.arrive_at);
  if (!r) {
    co_return Outcome::kGaveUp;
  }
  observer_->OnReply(OpKind::kTransfer, key, *r);
  if (r->status == WalletStatus::kOk) {
    Remember(Finished{key, req, *r});
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
  Aim aim;
  if (DrawAimed()) {
    aim = co_await AimAt(std::nullopt, src);
    req.amount = aim.amount > 0 ? aim.amount : req.amount;
  }
  AnswerRecord what{.key = key,
                    .op = "prepare",
                    .user = src,
                    .peer = dst,
                    .amount = req.amount,
                    .params = fmt::format(R"({{"ttl_ns":{}}})", req.ttl)};
  auto prepared = co_await SendKeyed("wallet.prepare", req, &Wallet::Prepare, what, aim.arrive_at);
  if (!prepared) {
    co_return Outcome::kGaveUp;
  }
  observer_->OnReply(OpKind::kTwoPhase, key, *prepared);
  if (prepared->status != WalletStatus::kOk) {
    co_return Outcome::kDeclined;
  }
  const uint64_t hold = prepared->id;
  // The upstream does its own work between the phases, or aims the second
  // phase at the hold's expiry instant.
  const auto work = static_cast<sim::Duration>(rng_.Exponential(100.0 * sim::kMillisecond));
  const sim::Time arrive_at = DrawAimed() ? co_await AimAtHoldExpiry(hold) : -1;
  if (arrive_at < 0) {
    co_await ctx_.Sleep(work);
  }
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
    r = co_await Send("wallet.rollback", call4, phase, arrive_at);
  } else {
    const auto call5 = [hold](Wallet& w) { return w.Commit(hold); };
    r = co_await Send("wallet.commit", call5, phase, arrive_at);
  }
  if (!r) {
    co_return Outcome::kGaveUp;  // the hold will expire
  }
  observer_->OnReply(OpKind::kTwoPhase, phase_key, *r);
  if (r->status != WalletStatus::kOk) {
    co_return FromStatus(*r);
  }
  Resolved done{hold, !rollback};
  if (resolved_.size() < kRecentMax) {
    resolved_.push_back(done);
  } else {
    resolved_[resolved_next_++ % kRecentMax] = done;
  }
  co_return rollback ? Outcome::kRolledBack : Outcome::kOk;
}

asio::awaitable<Outcome> Client::RunMisuse(std::string key) {
  const auto kind = static_cast<MisuseKind>(rng_.UniformInt(0, kMisuseKinds - 1));
  co_return co_await RunMisuseOf(kind, std::move(key));
}

// Each misuse is a request the wallet's state or contract forbids, or one
// it must answer from its record; the wallet's reference model predicts
// every answer (wallet_model_agrees), the idempotency checks judge keys.
asio::awaitable<Outcome> Client::RunMisuseOf(MisuseKind kind, std::string key) {
  if ((kind == MisuseKind::kReusedKey || kind == MisuseKind::kReplay) && recent_.empty()) {
    kind = MisuseKind::kToSelf;  // nothing finished to reuse yet
  }
  if ((kind == MisuseKind::kCommitRolledBack || kind == MisuseKind::kRollbackCommitted) &&
      resolved_.empty()) {
    kind = MisuseKind::kUnknownHold;
  }
  ++misuse_sent_[static_cast<size_t>(kind)];
  if (kind == MisuseKind::kCommitRolledBack || kind == MisuseKind::kRollbackCommitted ||
      kind == MisuseKind::kUnknownHold) {
    co_return co_await MisuseResolved(kind, std::move(key));
  }
  std::optional<WalletReply> r;
  AnswerRecord what{.key = key,
                    .op = "misuse",
                    .params = fmt::format(R"({{"kind":"{}"}})", MisuseKindName(kind))};
  std::optional<WalletReply> first;
  if (kind == MisuseKind::kReusedKey || kind == MisuseKind::kReplay) {
    const Finished& f =
        recent_[static_cast<size_t>(rng_.UniformInt(0, static_cast<int64_t>(recent_.size()) - 1))];
    TransferRequest req = f.request;
    // The same key with other parameters, or exactly the same request.
    req.amount += kind == MisuseKind::kReusedKey ? 1 : 0;
    first = f.reply;
    what.key = req.key;
    what.user = req.src;
    what.peer = req.dst;
    what.amount = req.amount;
    const auto call = [req](Wallet& w) { return w.Transfer(req); };
    r = co_await Send("wallet.transfer", call, what);
  } else if (kind == MisuseKind::kTtlTooLong) {
    const PrepareRequest req{key, 1, 1 % config_.users + 1, config_.amount_min,
                             config_.hold_ttl_max + 1};
    const auto call = [req](Wallet& w) { return w.Prepare(req); };
    r = co_await Send("wallet.prepare", call, what);
  } else if (kind == MisuseKind::kToSelf) {
    const UserId u = DrawUser();
    const TransferRequest req{key, u, u, config_.amount_min};
    const auto call = [req](Wallet& w) { return w.Transfer(req); };
    r = co_await Send("wallet.transfer", call, what);
  } else {
    const DepositRequest req{key, config_.users + 1, config_.deposit_type, config_.amount_min};
    const auto call = [req](Wallet& w) { return w.Deposit(req); };
    r = co_await Send("wallet.deposit", call, what);
  }
  if (!r) {
    co_return Outcome::kGaveUp;
  }
  if (kind == MisuseKind::kReusedKey) {
    observer_->OnMisuseReply(what.key, *r);
    co_return r->status == WalletStatus::kIdempotencyMismatch ? Outcome::kRefused
                                                              : Outcome::kAccepted;
  }
  observer_->OnReply(kind == MisuseKind::kReplay ? OpKind::kTransfer : OpKind::kMisuse, what.key,
                     *r);
  if (kind == MisuseKind::kReplay) {
    // Answered from the record: the first answer again is what is required.
    co_return *r == *first ? Outcome::kRefused : Outcome::kAccepted;
  }
  co_return r->status == WalletStatus::kOk ? Outcome::kAccepted : Outcome::kRefused;
}

asio::awaitable<Outcome> Client::MisuseResolved(MisuseKind kind, std::string key) {
  uint64_t hold = 2;  // even, as wallet IDs are, and never issued: unknown
  if (kind != MisuseKind::kUnknownHold) {
    // A hold this client resolved the other way.
    std::vector<uint64_t> candidates;
    for (const Resolved& r : resolved_) {
      if (r.committed == (kind == MisuseKind::kRollbackCommitted)) {
        candidates.push_back(r.hold);
      }
    }
    if (candidates.empty()) {
      kind = MisuseKind::kUnknownHold;
    } else {
      hold = candidates[static_cast<size_t>(
          rng_.UniformInt(0, static_cast<int64_t>(candidates.size()) - 1))];
    }
  }
  const bool rollback = kind == MisuseKind::kRollbackCommitted;
  const std::string phase_key = fmt::format("{}/{}", rollback ? "rollback" : "commit", hold);
  AnswerRecord what{
      .key = phase_key,
      .op = "misuse",
      .params = fmt::format(R"({{"kind":"{}","hold":{}}})", MisuseKindName(kind), hold)};
  std::optional<WalletReply> r;
  if (rollback) {
    const auto call = [hold](Wallet& w) { return w.Rollback(hold); };
    r = co_await Send("wallet.rollback", call, what);
  } else {
    const auto call = [hold](Wallet& w) { return w.Commit(hold); };
    r = co_await Send("wallet.commit", call, what);
  }
  if (!r) {
    co_return Outcome::kGaveUp;
  }
  observer_->OnReply(OpKind::kMisuse, phase_key, *r);
  co_return r->status == WalletStatus::kOk ? Outcome::kAccepted : Outcome::kRefused;
}

}  // namespace paylab::system
