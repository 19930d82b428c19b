// Implementation of the shopper (see shopper.h).
#include "workloads/shopper.h"

#include <fmt/format.h>

#include "system/common/config_table.h"
#include "system/migration/point_home.h"
#include "system/migration/cashback_wallet.h"

namespace paylab::system {

std::string_view ShopOpName(ShopOp o) {
  switch (o) {
    case ShopOp::kPay:
      return "pay";
    case ShopOp::kEarn:
      return "earn";
    case ShopOp::kTopUp:
      return "topup";
    case ShopOp::kLookup:
      return "lookup";
  }
  return "unknown";
}

std::string_view ShopMisuseName(ShopMisuse m) {
  switch (m) {
    case ShopMisuse::kReplayPrepare:
      return "replay_prepare";
    case ShopMisuse::kReusedKey:
      return "reused_key";
    case ShopMisuse::kCommitRolledBack:
      return "commit_rolled_back";
    case ShopMisuse::kRollbackCommitted:
      return "rollback_committed";
    case ShopMisuse::kCommitUnknown:
      return "commit_unknown";
  }
  return "unknown";
}

std::string_view ShopOutcomeName(ShopOutcome o) {
  switch (o) {
    case ShopOutcome::kOk:
      return "ok";
    case ShopOutcome::kRolledBack:
      return "rolled_back";
    case ShopOutcome::kDeclined:
      return "declined";
    case ShopOutcome::kRejected:
      return "rejected";
    case ShopOutcome::kExpired:
      return "expired";
    case ShopOutcome::kFailed:
      return "failed";
    case ShopOutcome::kGaveUp:
      return "gave_up";
  }
  return "unknown";
}

Shopper::Shopper(sim::NodeContext& ctx, const ShopperConfig& config, ShopperObserver* observer)
    : ctx_(ctx),
      config_(config),
      observer_(observer),
      rng_(ctx.Stream("shopper")),
      misuse_rng_(ctx.Stream("shopper.misuse")) {}

asio::awaitable<void> Shopper::Boot() {
  StoreWorkload();
  answers_ = std::make_unique<AnswerLog>(ctx_);
  ctx_.Spawn(Arrivals());
  co_return;
}

void Shopper::StoreWorkload() {
  const ShopperConfig& c = config_;
  StoreConfig(ctx_.db(), {
                             {"operations", c.operations},
                             {"rate_per_s", c.rate_per_s},
                             {"users", c.users},
                             {"mix.pay", c.mix[0]},
                             {"mix.earn", c.mix[1]},
                             {"mix.topup", c.mix[2]},
                             {"mix.lookup", c.mix[3]},
                             {"use_points_ratio", c.use_points_ratio},
                             {"new_api_ratio", c.new_api_ratio},
                             {"pair_ratio", c.pair_ratio},
                             {"amount_min", c.amount_min},
                             {"amount_max", c.amount_max},
                             {"earn_min", c.earn_min},
                             {"earn_max", c.earn_max},
                             {"rollback_ratio", c.rollback_ratio},
                             {"hold_ttl_ns", c.hold_ttl},
                             {"timeout_ns", c.timeout},
                             {"retry_count_max", int64_t{c.retry_count_max}},
                             {"retry_backoff_ns", c.retry_backoff},
                             {"maintenance_retry_ns", c.maintenance_retry},
                             {"maintenance_retries_max", int64_t{c.maintenance_retries_max}},
                             {"misuse_ratio", c.misuse_ratio},
                         });
}

void Shopper::Finish(ShopOp op, ShopOutcome o) {
  ++counts_[static_cast<size_t>(op)][static_cast<size_t>(o)];
  ++finished_;
}

asio::awaitable<void> Shopper::Arrivals() {
  const double mean_gap_ns = 1e9 / config_.rate_per_s;
  expected_ = config_.operations;
  double total = 0;
  for (double w : config_.mix) {
    total += w;
  }
  for (int64_t seq = 0; seq < config_.operations; ++seq) {
    co_await ctx_.Sleep(static_cast<sim::Duration>(rng_.Exponential(mean_gap_ns)));
    ++issued_;
    double x = rng_.UniformDouble() * total;
    size_t kind = 0;
    while (kind + 1 < kShopOps && x >= config_.mix[kind]) {
      x -= config_.mix[kind];
      ++kind;
    }
    const int64_t user = rng_.UniformInt(1, config_.users);
    const std::string key = fmt::format("op/{}", seq);
    switch (static_cast<ShopOp>(kind)) {
      case ShopOp::kPay: {
        const bool new_api = rng_.Bernoulli(config_.new_api_ratio);
        const bool use_points = rng_.Bernoulli(config_.use_points_ratio);
        ctx_.Spawn(RunPay(key, user, new_api, use_points));
        if (rng_.Bernoulli(config_.pair_ratio)) {
          // A second checkout for the same user at the same moment.
          ++expected_;
          ctx_.Spawn(RunPay(key + "/pair", user, !new_api, true));
        }
        break;
      }
      case ShopOp::kEarn:
        ctx_.Spawn(RunEarn(key, user));
        break;
      case ShopOp::kTopUp:
        ctx_.Spawn(RunTopUp(key, user));
        break;
      case ShopOp::kLookup:
        ctx_.Spawn(RunLookup(key));
        break;
    }
  }
  arrivals_done_ = true;
}

namespace {

// What an answer says besides its status, ID and amount, as JSON.
std::string AnswerMore(const MigReply& r) {
  if (r.key.empty()) {
    return fmt::format(R"({{"points":{}}})", r.points);
  }
  return fmt::format(R"({{"points":{},"key":{}}})", r.points, JsonQuote(r.key));
}

}  // namespace

template <class Svc, class F>
asio::awaitable<std::optional<MigReply>> Shopper::Attempts(sim::NodeId to, std::string_view method,
                                                           const F& fn, int attempts_max,
                                                           AnswerRecord& what) {
  sim::Duration pause = config_.retry_backoff;
  for (int attempt = 0;; ++attempt) {
    ++what.attempts;
    auto r = co_await ctx_.Call<Svc>(to, method, config_.timeout, fn);
    if (r.ok()) {
      answers_->Record(what, Answer{.status = MigStatusName(r.value.status),
                                    .id = r.value.id,
                                    .amount = r.value.amount,
                                    .more = AnswerMore(r.value)});
    }
    if (r.ok() && r.value.status != MigStatus::kUnavailable) {
      co_return r.value;
    }
    if (attempt >= attempts_max) {
      co_return std::nullopt;
    }
    ++retries_;
    co_await ctx_.Sleep(pause + static_cast<sim::Duration>(rng_.UniformInt(0, pause)));
    pause = std::min<sim::Duration>(pause * 2, 2 * sim::kSecond);
  }
}

asio::awaitable<std::optional<MigReply>> Shopper::SendPrepare(const MigPay& p, bool new_api,
                                                              AnswerRecord& what) {
  if (new_api) {
    auto fn = [p](PointHome& s) { return s.Prepare(p); };
    co_return co_await Attempts<PointHome>(config_.point, "point.Prepare", fn,
                                           config_.retry_count_max, what);
  }
  auto fn = [p](CashbackWallet& s) { return s.Prepare(p); };
  co_return co_await Attempts<CashbackWallet>(config_.wallet, "wallet.Prepare", fn,
                                              config_.retry_count_max, what);
}

asio::awaitable<std::optional<MigReply>> Shopper::SendResolve(const MigResolve& r, bool new_api,
                                                              bool commit, AnswerRecord& what) {
  // A second phase must arrive: it is retried for longer.
  const int attempts = config_.retry_count_max * 4;
  if (new_api) {
    auto fn = [r, commit](PointHome& s) { return commit ? s.Commit(r) : s.Rollback(r); };
    co_return co_await Attempts<PointHome>(
        config_.point, commit ? "point.Commit" : "point.Rollback", fn, attempts, what);
  }
  auto fn = [r, commit](CashbackWallet& s) { return commit ? s.Commit(r) : s.Rollback(r); };
  co_return co_await Attempts<CashbackWallet>(
      config_.wallet, commit ? "wallet.Commit" : "wallet.Rollback", fn, attempts, what);
}

asio::awaitable<void> Shopper::RunPay(std::string key, int64_t user, bool new_api,
                                      bool use_points) {
  int64_t merchant = rng_.UniformInt(1, config_.users - 1);
  if (merchant >= user) {
    ++merchant;
  }
  const MigPay p{key,        user,
                 merchant,   rng_.UniformInt(config_.amount_min, config_.amount_max),
                 use_points, config_.hold_ttl,
                 false};
  const std::string_view api = new_api ? R"("new")" : R"("old")";
  AnswerRecord what{
      .key = key,
      .op = "pay",
      .user = user,
      .peer = merchant,
      .amount = p.amount,
      .params = fmt::format(R"({{"api":{},"use_points":{},"ttl_ns":{}}})", api, use_points, p.ttl)};
  const std::optional<MigReply> prepared = co_await SendPrepare(p, new_api, what);
  if (!prepared) {
    Finish(ShopOp::kPay, ShopOutcome::kGaveUp);
    co_return;
  }
  switch (prepared->status) {
    case MigStatus::kOk:
      break;
    case MigStatus::kDeclined:
      Finish(ShopOp::kPay, ShopOutcome::kDeclined);
      co_return;
    case MigStatus::kMaintenance:
      ++rejections_;
      Finish(ShopOp::kPay, ShopOutcome::kRejected);
      co_return;
    default:
      Finish(ShopOp::kPay, ShopOutcome::kFailed);
      co_return;
  }
  if (recent_.size() < 256) {
    recent_.emplace_back(prepared->id, key);
  } else {
    recent_[recent_next_] = {prepared->id, key};
    recent_next_ = (recent_next_ + 1) % recent_.size();
  }
  co_await ctx_.Sleep(rng_.UniformInt(0, config_.commit_delay_max));
  const bool commit = !rng_.Bernoulli(config_.rollback_ratio);
  const MigResolve resolve{key, false};
  AnswerRecord phase{.key = key,
                     .op = commit ? "pay_commit" : "pay_rollback",
                     .params = fmt::format(R"({{"api":{}}})", api)};
  const std::optional<MigReply> done = co_await SendResolve(resolve, new_api, commit, phase);
  if (!done) {
    Finish(ShopOp::kPay, ShopOutcome::kGaveUp);
  } else if (done->status == MigStatus::kOk) {
    co_await MaybeMisuse(p, new_api, commit, *prepared, *done);
    Finish(ShopOp::kPay, commit ? ShopOutcome::kOk : ShopOutcome::kRolledBack);
  } else if (done->status == MigStatus::kExpired) {
    Finish(ShopOp::kPay, ShopOutcome::kExpired);
  } else {
    Finish(ShopOp::kPay, ShopOutcome::kFailed);
  }
}

asio::awaitable<void> Shopper::MaybeMisuse(const MigPay& p, bool new_api, bool committed,
                                           const MigReply& prepared, const MigReply& resolved) {
  if (config_.misuse_ratio <= 0 || !misuse_rng_.Bernoulli(config_.misuse_ratio)) {
    co_return;
  }
  // The second phase that contradicts the one the shopper sent.
  const ShopMisuse opposite =
      committed ? ShopMisuse::kRollbackCommitted : ShopMisuse::kCommitRolledBack;
  const std::array<ShopMisuse, 4> kinds{ShopMisuse::kReplayPrepare, ShopMisuse::kReusedKey,
                                        opposite, ShopMisuse::kCommitUnknown};
  const ShopMisuse kind = kinds[static_cast<size_t>(misuse_rng_.UniformInt(0, 3))];
  ++misuses_[static_cast<size_t>(kind)];
  ShopMisuseAnswer judged{
      .kind = kind, .key = p.key, .new_api = new_api, .first = resolved, .answer = {}};
  std::string key = p.key;
  MigPay again = p;
  AnswerRecord what{.key = p.key,
                    .op = "misuse",
                    .user = p.user,
                    .peer = p.merchant,
                    .amount = p.amount,
                    .params = fmt::format(R"({{"kind":"{}","api":"{}"}})", ShopMisuseName(kind),
                                          new_api ? "new" : "old")};
  if (kind == ShopMisuse::kCommitUnknown) {
    key += "/ghost";
    what.key = key;
  }
  if (kind == ShopMisuse::kReusedKey) {
    again.amount += 1;
    what.amount = again.amount;
  }
  // Named arguments and one co_await per statement: GCC 12 destroys a
  // temporary in a co_await expression twice.
  const MigResolve resolve{key, false};
  const bool prepare = kind == ShopMisuse::kReplayPrepare || kind == ShopMisuse::kReusedKey;
  const bool commit = kind != ShopMisuse::kRollbackCommitted;
  if (prepare) {
    judged.first = prepared;
  }
  std::optional<MigReply> answer;
  if (prepare) {
    answer = co_await SendPrepare(again, new_api, what);
  } else {
    answer = co_await SendResolve(resolve, new_api, commit, what);
  }
  if (answer && observer_ != nullptr) {
    judged.key = key;
    judged.answer = *answer;
    observer_->OnMisuse(judged);
  }
}

asio::awaitable<void> Shopper::RunEarn(std::string key, int64_t user) {
  const MigCredit c{key, user, rng_.UniformInt(config_.earn_min, config_.earn_max), false};
  // Cashback is credited through the old API (the wallet routes it).
  auto fn = [c](CashbackWallet& s) { return s.Earn(c); };
  // One record for every round: a credit retried after a maintenance
  // window is the same request, its attempts counted on.
  AnswerRecord what{.key = key, .op = "earn", .user = user, .amount = c.amount};
  for (int round = 0;; ++round) {
    const std::optional<MigReply> r = co_await Attempts<CashbackWallet>(
        config_.wallet, "wallet.Earn", fn, config_.retry_count_max, what);
    if (!r) {
      Finish(ShopOp::kEarn, ShopOutcome::kGaveUp);
      co_return;
    }
    if (r->status == MigStatus::kMaintenance) {
      ++rejections_;
      if (round < config_.maintenance_retries_max) {
        co_await ctx_.Sleep(config_.maintenance_retry);
        continue;
      }
      Finish(ShopOp::kEarn, ShopOutcome::kRejected);
      co_return;
    }
    Finish(ShopOp::kEarn, r->status == MigStatus::kOk ? ShopOutcome::kOk : ShopOutcome::kFailed);
    co_return;
  }
}

asio::awaitable<void> Shopper::RunTopUp(std::string key, int64_t user) {
  const MigCredit c{key, user, rng_.UniformInt(config_.amount_min, config_.amount_max), false};
  auto fn = [c](CashbackWallet& s) { return s.TopUp(c); };
  AnswerRecord what{.key = key, .op = "topup", .user = user, .amount = c.amount};
  const std::optional<MigReply> r = co_await Attempts<CashbackWallet>(
      config_.wallet, "wallet.TopUp", fn, config_.retry_count_max, what);
  if (!r) {
    Finish(ShopOp::kTopUp, ShopOutcome::kGaveUp);
  } else if (r->status == MigStatus::kMaintenance) {
    ++rejections_;
    Finish(ShopOp::kTopUp, ShopOutcome::kRejected);
  } else {
    Finish(ShopOp::kTopUp, r->status == MigStatus::kOk ? ShopOutcome::kOk : ShopOutcome::kFailed);
  }
}

asio::awaitable<void> Shopper::RunLookup(std::string key) {
  if (recent_.empty()) {
    Finish(ShopOp::kLookup, ShopOutcome::kOk);
    co_return;
  }
  const auto& picked =
      recent_[static_cast<size_t>(rng_.UniformInt(0, static_cast<int64_t>(recent_.size()) - 1))];
  const uint64_t id = picked.first;
  const std::string payment_key = picked.second;
  auto fn = [id](PointHome& s) { return s.Lookup(id); };
  AnswerRecord what{
      .key = std::move(key),
      .op = "lookup",
      .params = fmt::format(R"({{"id":{},"payment_key":{}}})", id, JsonQuote(payment_key))};
  const std::optional<MigReply> r = co_await Attempts<PointHome>(config_.point, "point.Lookup", fn,
                                                                 config_.retry_count_max, what);
  if (!r) {
    Finish(ShopOp::kLookup, ShopOutcome::kGaveUp);
    co_return;
  }
  if (observer_ != nullptr) {
    observer_->OnLookup(id, payment_key, *r);
  }
  Finish(ShopOp::kLookup, r->status == MigStatus::kOk ? ShopOutcome::kOk : ShopOutcome::kFailed);
}

}  // namespace paylab::system
