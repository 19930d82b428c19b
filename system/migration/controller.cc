// Implementation of the migration vocabulary and controller (see migration.h).
#include "system/migration/controller.h"

#include <sqlite3.h>

namespace paylab::system {

std::string_view MigrationStateName(MigrationState s) {
  switch (s) {
    case MigrationState::kLegacy:
      return "legacy";
    case MigrationState::kMaintenance:
      return "maintenance";
    case MigrationState::kMigrating:
      return "migrating";
    case MigrationState::kMigrated:
      return "migrated";
  }
  return "unknown";
}

std::string_view MigrationStrategyName(MigrationStrategy s) {
  switch (s) {
    case MigrationStrategy::kFullMaintenance:
      return "full_maintenance";
    case MigrationStrategy::kPartialMaintenance:
      return "partial_maintenance";
    case MigrationStrategy::kOnline:
      return "online";
    case MigrationStrategy::kGradual:
      return "gradual";
  }
  return "unknown";
}

std::string_view MigStatusName(MigStatus s) {
  switch (s) {
    case MigStatus::kOk:
      return "ok";
    case MigStatus::kDeclined:
      return "declined";
    case MigStatus::kMaintenance:
      return "maintenance";
    case MigStatus::kUnavailable:
      return "unavailable";
    case MigStatus::kMoved:
      return "moved";
    case MigStatus::kExpired:
      return "expired";
    case MigStatus::kUnknown:
      return "unknown";
    case MigStatus::kInvalid:
      return "invalid";
  }
  return "unknown";
}

namespace {

constexpr std::string_view kControllerSchema = R"sql(
CREATE TABLE IF NOT EXISTS status(
  user_id INTEGER PRIMARY KEY, state INTEGER NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS status_log(
  seq INTEGER PRIMARY KEY, lo INTEGER NOT NULL, hi INTEGER NOT NULL, state INTEGER NOT NULL,
  at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS banners(
  seq INTEGER PRIMARY KEY, lo INTEGER NOT NULL, hi INTEGER NOT NULL, shown INTEGER NOT NULL,
  at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS flags(
  name TEXT PRIMARY KEY, value INTEGER NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID;
)sql";

}  // namespace

MigrationController::MigrationController(sim::NodeContext& ctx, const ControllerConfig& config)
    : ctx_(ctx), config_(config) {}

asio::awaitable<void> MigrationController::Boot() {
  sim::Database& db = ctx_.db();
  db.ExecScript(kControllerSchema);
  if (db.QueryInt("SELECT COUNT(*) FROM status") == 0) {
    sim::Transaction txn(db);
    sim::Statement put(db, "INSERT INTO status VALUES(?, 0, -1)");
    for (int64_t u = 1; u <= config_.users; ++u) {
      put.Bind(1, u).Exec();
    }
    db.ExecScript("INSERT INTO flags VALUES('full', 0, -1)");
    txn.Commit();
  }
  get_ = sim::Statement(db, "SELECT state FROM status WHERE user_id = ?");
  full_ = sim::Statement(db, "SELECT value FROM flags WHERE name = 'full'");
  co_return;
}

asio::awaitable<StatusReply> MigrationController::Get(int64_t user) {
  ctx_.db();
  StatusReply r;
  get_.Bind(1, user);
  if (get_.Step()) {
    r.state = static_cast<MigrationState>(get_.Int(0));
  }
  get_.Reset();
  full_.Step();
  r.full_maintenance = full_.Int(0) != 0;
  full_.Reset();
  co_return r;
}

asio::awaitable<bool> MigrationController::Set(StatusChange c) {
  sim::Database& db = ctx_.db();
  sim::Transaction txn(db);
  // A change older than the one a user has (a delayed duplicate of an
  // earlier request) must not undo it.
  sim::Statement up(
      db, "UPDATE status SET state = ?, seq = ? WHERE user_id BETWEEN ? AND ? AND seq < ?");
  up.Bind(1, static_cast<int64_t>(c.state))
      .Bind(2, c.seq)
      .Bind(3, c.lo)
      .Bind(4, c.hi)
      .Bind(5, c.seq);
  up.Exec();
  if (sqlite3_changes(db.handle()) == 0) {
    txn.Commit();
    co_return true;
  }
  sim::Statement log(db, "INSERT INTO status_log(lo, hi, state, at) VALUES(?, ?, ?, ?)");
  log.Bind(1, c.lo).Bind(2, c.hi).Bind(3, static_cast<int64_t>(c.state)).Bind(4, ctx_.Now()).Exec();
  txn.Commit();
  ctx_.Trace(sim::TraceKind::kNote, "controller.set", c.lo, static_cast<int64_t>(c.state));
  co_return true;
}

asio::awaitable<bool> MigrationController::SetFull(std::pair<bool, int64_t> change) {
  const bool on = change.first;
  sim::Database& db = ctx_.db();
  sim::Transaction txn(db);
  sim::Statement up(db, "UPDATE flags SET value = ?, seq = ? WHERE name = 'full' AND seq < ?");
  up.Bind(1, on ? 1 : 0).Bind(2, change.second).Bind(3, change.second).Exec();
  if (sqlite3_changes(db.handle()) == 0) {
    txn.Commit();
    co_return true;
  }
  sim::Statement log(db, "INSERT INTO status_log(lo, hi, state, at) VALUES(0, 0, ?, ?)");
  log.Bind(1, static_cast<int64_t>(on ? MigrationState::kMaintenance : MigrationState::kLegacy))
      .Bind(2, ctx_.Now())
      .Exec();
  txn.Commit();
  ctx_.Trace(sim::TraceKind::kNote, "controller.full", on ? 1 : 0);
  co_return true;
}

asio::awaitable<bool> MigrationController::Banner(StatusChange c) {
  sim::Database& db = ctx_.db();
  sim::Statement log(db, "INSERT INTO banners(lo, hi, shown, at) VALUES(?, ?, ?, ?)");
  log.Bind(1, c.lo)
      .Bind(2, c.hi)
      .Bind(3, c.state == MigrationState::kMaintenance ? 1 : 0)
      .Bind(4, ctx_.Now())
      .Exec();
  co_return true;
}

asio::awaitable<MigStatus> AdmitRequest(sim::NodeContext& ctx, sim::NodeId controller,
                                        sim::Duration timeout, int64_t user, bool point_use) {
  auto fn = [user](MigrationController& c) { return c.Get(user); };
  auto r = co_await ctx.Call<MigrationController>(controller, "controller.Get", timeout, fn);
  if (!r.ok()) {
    co_return MigStatus::kUnavailable;
  }
  if (r.value.full_maintenance || (point_use && BlocksPoints(r.value.state))) {
    co_return MigStatus::kMaintenance;
  }
  co_return MigStatus::kOk;
}

std::vector<StatusChange> ReadStatusLog(sim::Database& db) {
  std::vector<StatusChange> out;
  if (db.QueryInt("SELECT COUNT(*) FROM sqlite_master WHERE name = 'status_log'") == 0) {
    return out;
  }
  sim::Statement q(db, "SELECT lo, hi, state, at FROM status_log ORDER BY seq");
  while (q.Step()) {
    out.push_back(
        StatusChange{q.Int(0), q.Int(1), static_cast<MigrationState>(q.Int(2)), q.Int(3)});
  }
  return out;
}

int64_t CountUsersIn(sim::Database& db, MigrationState state) {
  if (db.QueryInt("SELECT COUNT(*) FROM sqlite_master WHERE name = 'status'") == 0) {
    return 0;
  }
  return db.QueryInt("SELECT COUNT(*) FROM status WHERE state = " +
                     std::to_string(static_cast<int>(state)));
}

}  // namespace paylab::system
