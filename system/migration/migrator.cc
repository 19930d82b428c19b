// Implementation of the migrator (see migrator.h).
#include "system/migration/migrator.h"

#include <fmt/format.h>

#include <algorithm>

#include "system/migration/point_home.h"
#include "system/migration/cashback_wallet.h"

namespace paylab::system {

namespace {

constexpr std::string_view kMigratorSchema = R"sql(
CREATE TABLE IF NOT EXISTS progress(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
)sql";

// Calls until an answer arrives (every migration step is idempotent by key).
// `fn` by reference: it outlives the co_await (GCC 12 and by-value lambda
// parameters of coroutines do not mix).
template <class Svc, class F>
asio::awaitable<typename std::invoke_result_t<F, Svc&>::value_type> CallUntil(
    sim::NodeContext& ctx, sim::NodeId to, std::string_view method, sim::Duration timeout,
    const F& fn) {
  sim::Duration pause = 50 * sim::kMillisecond;
  for (;;) {
    auto r = co_await ctx.Call<Svc>(to, method, timeout, fn);
    if (r.ok()) {
      co_return r.value;
    }
    co_await ctx.Sleep(pause);
    pause = std::min<sim::Duration>(pause * 2, 2 * sim::kSecond);
  }
}

}  // namespace

bool MigrationFinished(sim::Database& db) {
  if (db.QueryInt("SELECT COUNT(*) FROM sqlite_master WHERE name = 'progress'") == 0) {
    return false;
  }
  return db.QueryInt("SELECT COUNT(*) FROM progress WHERE name = 'done' AND value = 1") > 0;
}

Migrator::Migrator(sim::NodeContext& ctx, const MigratorConfig& config, MigratorCounters* counters)
    : ctx_(ctx), config_(config), counters_(*counters) {}

asio::awaitable<void> Migrator::Boot() {
  ctx_.db().ExecScript(kMigratorSchema);
  ctx_.Spawn(Run());
  co_return;
}

int64_t Migrator::NextSeq() {
  // Virtual time never runs back, and a restarted migrator starts later: a
  // strictly increasing sequence across incarnations.
  last_seq_ = std::max(last_seq_ + 1, static_cast<int64_t>(ctx_.Now()));
  return last_seq_;
}

int64_t Migrator::Progress(std::string_view name) {
  sim::Statement q(ctx_.db(), "SELECT value FROM progress WHERE name = ?");
  q.Bind(1, name);
  return q.Step() ? q.Int(0) : 0;
}

void Migrator::SetProgress(std::string_view name, int64_t value) {
  sim::Statement q(ctx_.db(),
                   "INSERT INTO progress VALUES(?, ?) ON CONFLICT(name) DO UPDATE SET value = "
                   "excluded.value");
  q.Bind(1, name).Bind(2, value).Exec();
}

asio::awaitable<void> Migrator::SleepUntil(sim::Time t) {
  if (t > ctx_.Now()) {
    co_await ctx_.Sleep(t - ctx_.Now());
  }
}

asio::awaitable<void> Migrator::SetStatus(int64_t lo, int64_t hi, MigrationState s) {
  const StatusChange c{lo, hi, s, 0, NextSeq()};
  auto fn = [c](MigrationController& m) { return m.Set(c); };
  co_await CallUntil<MigrationController>(ctx_, config_.controller, "controller.Set",
                                          config_.rpc_timeout, fn);
}

asio::awaitable<void> Migrator::Banner(int64_t lo, int64_t hi, bool on) {
  const StatusChange c{lo, hi, on ? MigrationState::kMaintenance : MigrationState::kLegacy, 0};
  auto fn = [c](MigrationController& m) { return m.Banner(c); };
  co_await CallUntil<MigrationController>(ctx_, config_.controller, "controller.Banner",
                                          config_.rpc_timeout, fn);
}

asio::awaitable<bool> Migrator::Drain(int64_t lo, int64_t hi, sim::Duration timeout) {
  const sim::Time until = ctx_.Now() + timeout;
  const std::pair<int64_t, int64_t> range{lo, hi};
  auto fn = [range](CashbackWallet& w) { return w.HeldHolds(range); };
  for (;;) {
    const int64_t held = co_await CallUntil<CashbackWallet>(
        ctx_, config_.wallet, "wallet.HeldHolds", config_.rpc_timeout, fn);
    if (held == 0) {
      co_return true;
    }
    if (ctx_.Now() >= until) {
      ++counters_.drain_timeouts;
      co_return false;
    }
    co_await ctx_.Sleep(config_.drain_poll);
  }
}

asio::awaitable<std::vector<int64_t>> Migrator::MoveAndActivate(const std::string& key,
                                                                std::vector<int64_t> users,
                                                                int64_t attempt) {
  const bool holds_guard =
      config_.strategy == MigrationStrategy::kGradual ||
      (config_.strategy == MigrationStrategy::kFullMaintenance && !config_.defect_no_drain);
  const MoveOutRequest req{key, users, {}, holds_guard};
  auto move = [req](CashbackWallet& w) { return w.MoveOut(req); };
  const MoveOutReply moved = co_await CallUntil<CashbackWallet>(
      ctx_, config_.wallet, "wallet.MoveOut", config_.rpc_timeout, move);
  if (moved.status != WalletStatus::kOk) {
    co_return std::vector<int64_t>{};
  }
  if (config_.copy_per_user > 0) {
    co_await ctx_.Sleep(config_.copy_per_user * static_cast<int64_t>(users.size()));
  }
  const ActivateRequest act{key, users, moved.amounts, moved.terms, attempt};
  auto activate = [act](PointHome& p) { return p.Activate(act); };
  co_await CallUntil<PointHome>(ctx_, config_.point, "point.Activate", config_.rpc_timeout,
                                activate);
  counters_.users_moved += static_cast<int64_t>(users.size());
  co_return moved.amounts;
}

asio::awaitable<void> Migrator::Run() {
  co_await SleepUntil(config_.start);
  if (Progress("done") == 1) {
    co_return;
  }
  if (counters_.started_at < 0) {
    counters_.started_at = ctx_.Now();
  }
  ctx_.Trace(sim::TraceKind::kNote, "migration.start", static_cast<int64_t>(config_.strategy));
  switch (config_.strategy) {
    case MigrationStrategy::kFullMaintenance:
      co_await RunFull();
      break;
    case MigrationStrategy::kPartialMaintenance:
      co_await RunPartial();
      break;
    case MigrationStrategy::kOnline:
    case MigrationStrategy::kGradual:
      co_await RunPerUser();
      break;
  }
  SetProgress("done", 1);
  counters_.finished_at = ctx_.Now();
  ctx_.Trace(sim::TraceKind::kNote, "migration.done", counters_.users_moved);
}

asio::awaitable<void> Migrator::RunFull() {
  const int64_t n = config_.users;
  if (Progress("phase") == 0) {
    co_await Banner(1, n, true);
    const std::pair<bool, int64_t> change{true, NextSeq()};
    auto on = [change](MigrationController& m) { return m.SetFull(change); };
    co_await CallUntil<MigrationController>(ctx_, config_.controller, "controller.SetFull",
                                            config_.rpc_timeout, on);
    SetProgress("phase", 1);
  }
  if (Progress("phase") == 1) {
    // Nothing new starts; what is in flight finishes or expires.
    if (!config_.defect_no_drain) {
      while (!co_await Drain(1, n, config_.drain_timeout)) {
      }
      co_await ctx_.Sleep(config_.drain_settle);
    }
    SetProgress("phase", 2);
  }
  if (Progress("phase") == 2) {
    for (int64_t b = Progress("batch"); b * config_.batch_size < n; ++b) {
      const int64_t lo = b * config_.batch_size + 1;
      const int64_t hi = std::min(n, (b + 1) * config_.batch_size);
      std::vector<int64_t> users;
      for (int64_t u = lo; u <= hi; ++u) {
        users.push_back(u);
      }
      const std::string key = fmt::format("full/{}", b);
      while ((co_await MoveAndActivate(key, users, 0)).empty()) {
        // A hold appeared in the window (it cannot, unless a bug let it in):
        // wait for it like the drain does.
        co_await Drain(lo, hi, config_.drain_timeout);
      }
      SetProgress("batch", b + 1);
    }
    SetProgress("phase", 3);
  }
  co_await SetStatus(1, n, MigrationState::kMigrated);
  const std::pair<bool, int64_t> change{false, NextSeq()};
  auto off = [change](MigrationController& m) { return m.SetFull(change); };
  co_await CallUntil<MigrationController>(ctx_, config_.controller, "controller.SetFull",
                                          config_.rpc_timeout, off);
  co_await Banner(1, n, false);
}

asio::awaitable<void> Migrator::RunPartial() {
  const int64_t n = config_.users;
  const int64_t cohorts = std::max<int64_t>(1, std::min(config_.cohorts, n));
  sim::Time next = std::max(ctx_.Now(), config_.start);
  for (int64_t c = Progress("cohort"); c < cohorts; ++c) {
    const int64_t lo = c * n / cohorts + 1;
    const int64_t hi = (c + 1) * n / cohorts;
    bool switched = false;
    for (int64_t a = Progress("attempt"); !switched && a < config_.cohort_attempts_max; ++a) {
      SetProgress("attempt", a);
      // 1. The banner, banner_lead before the window.
      co_await SleepUntil(next - config_.banner_lead);
      co_await Banner(lo, hi, true);
      co_await SleepUntil(next);
      switched = co_await Cohort(lo, hi, a);
      // 7. Banner off (after a rollback too: the window is over).
      co_await Banner(lo, hi, false);
      if (!switched) {
        ++counters_.cohorts_rolled_back;
        ctx_.Trace(sim::TraceKind::kNote, "migration.cohort_rolled_back", c, a);
      }
      next = ctx_.Now() + config_.cohort_gap;
    }
    if (switched) {
      ++counters_.cohorts_done;
    }
    SetProgress("cohort", c + 1);
    SetProgress("attempt", 0);
  }
}

asio::awaitable<bool> Migrator::Cohort(int64_t lo, int64_t hi, int64_t attempt) {
  std::vector<int64_t> users;
  for (int64_t u = lo; u <= hi; ++u) {
    users.push_back(u);
  }
  // 2. Maintenance on for the cohort: no point use from now on.
  co_await SetStatus(lo, hi, MigrationState::kMaintenance);
  // 3. Drain the cohort's in-flight work.
  if (!config_.defect_no_drain) {
    if (!co_await Drain(lo, hi, config_.drain_timeout)) {
      co_await RollBackCohort(lo, hi, attempt);
      co_return false;
    }
    co_await ctx_.Sleep(config_.drain_settle);
  }
  // 4. Copy and verify: the copies hold each user's value with its terms,
  // and the wallet still holds exactly that.
  auto read = [users](CashbackWallet& w) { return w.CashbackTerms(users); };
  const std::vector<std::vector<ValueTerm>> terms = co_await CallUntil<CashbackWallet>(
      ctx_, config_.wallet, "wallet.CashbackTerms", config_.rpc_timeout, read);
  const CopiesRequest copy_req{users, terms, attempt};
  auto copy = [copy_req](PointHome& p) { return p.Copy(copy_req); };
  const std::vector<std::vector<ValueTerm>> copied =
      co_await CallUntil<PointHome>(ctx_, config_.point, "point.Copy", config_.rpc_timeout, copy);
  if (config_.copy_per_user > 0) {
    co_await ctx_.Sleep(config_.copy_per_user * static_cast<int64_t>(users.size()));
  }
  const std::vector<std::vector<ValueTerm>> again = co_await CallUntil<CashbackWallet>(
      ctx_, config_.wallet, "wallet.CashbackTerms", config_.rpc_timeout, read);
  if (copied != again) {
    co_await RollBackCohort(lo, hi, attempt);
    co_return false;
  }
  // 5. Switch: the wallet moves exactly what was verified, or nothing.
  std::vector<int64_t> verified;
  for (const std::vector<ValueTerm>& user_terms : copied) {
    int64_t total = 0;
    for (const ValueTerm& t : user_terms) {
      total += t.amount;
    }
    verified.push_back(total);
  }
  const MoveOutRequest req{fmt::format("cohort/{}/{}", lo, attempt), users, verified,
                           !config_.defect_no_drain};
  auto move = [req](CashbackWallet& w) { return w.MoveOut(req); };
  const MoveOutReply moved = co_await CallUntil<CashbackWallet>(
      ctx_, config_.wallet, "wallet.MoveOut", config_.rpc_timeout, move);
  if (moved.status != WalletStatus::kOk) {
    co_await RollBackCohort(lo, hi, attempt);
    co_return false;
  }
  auto confirm = [copy_req](PointHome& p) { return p.ConfirmCopies(copy_req); };
  co_await CallUntil<PointHome>(ctx_, config_.point, "point.ConfirmCopies", config_.rpc_timeout,
                                confirm);
  counters_.users_moved += static_cast<int64_t>(users.size());
  // 6. Maintenance off: the cohort lives in the point service now.
  co_await SetStatus(lo, hi, MigrationState::kMigrated);
  co_return true;
}

asio::awaitable<void> Migrator::RollBackCohort(int64_t lo, int64_t hi, int64_t attempt) {
  std::vector<int64_t> users;
  for (int64_t u = lo; u <= hi; ++u) {
    users.push_back(u);
  }
  const CopiesRequest req{users, {}, attempt};
  auto revoke = [req](PointHome& p) { return p.RevokeCopies(req); };
  co_await CallUntil<PointHome>(ctx_, config_.point, "point.RevokeCopies", config_.rpc_timeout,
                                revoke);
  co_await SetStatus(lo, hi, MigrationState::kLegacy);
}

asio::awaitable<void> Migrator::RunPerUser() {
  const bool gradual = config_.strategy == MigrationStrategy::kGradual;
  const sim::Duration gap =
      config_.job_rate_per_s > 0 ? sim::FromSeconds(1.0 / config_.job_rate_per_s) : 0;
  for (int64_t u = std::max<int64_t>(1, Progress("next_user")); u <= config_.users; ++u) {
    const sim::Time began = ctx_.Now();
    co_await SetStatus(u, u, MigrationState::kMigrating);
    if (gradual) {
      // The migrated-flag approach locks the user and lets its own holds
      // finish before moving it.
      while (!co_await Drain(u, u, config_.drain_timeout)) {
      }
    }
    const std::string key = fmt::format("user/{}", u);
    const std::vector<int64_t> one{u};
    while ((co_await MoveAndActivate(key, one, 0)).empty()) {
      co_await Drain(u, u, config_.drain_timeout);
    }
    co_await SetStatus(u, u, MigrationState::kMigrated);
    SetProgress("next_user", u + 1);
    const sim::Time due = began + gap;
    co_await SleepUntil(due);
  }
}

}  // namespace paylab::system
