// Implementation of the SQLite wrapper (see storage.h).
#include "sim/storage.h"

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <utility>

#include "sim/check.h"

namespace paylab::sim {

namespace {
[[noreturn]] void SqlFail(sqlite3* db, int rc, std::string_view what) {
  throw CheckFailure(fmt::format("sqlite error {} ({}) in: {}", rc,
                                 db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc), what));
}
}  // namespace

Statement::Statement(Database& db, std::string_view sql) : db_(db.handle()) {
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
  if (rc != SQLITE_OK) {
    SqlFail(db_, rc, sql);
  }
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement::Statement(Statement&& o) noexcept
    : db_(std::exchange(o.db_, nullptr)), stmt_(std::exchange(o.stmt_, nullptr)) {}

Statement& Statement::operator=(Statement&& o) noexcept {
  if (this != &o) {
    sqlite3_finalize(stmt_);
    db_ = std::exchange(o.db_, nullptr);
    stmt_ = std::exchange(o.stmt_, nullptr);
  }
  return *this;
}

void Statement::Fail(int rc) const {
  SqlFail(db_, rc, stmt_ != nullptr ? sqlite3_sql(stmt_) : "(no statement)");
}

Statement& Statement::Bind(int i, int64_t v) {
  int rc = sqlite3_bind_int64(stmt_, i, v);
  if (rc != SQLITE_OK) {
    Fail(rc);
  }
  return *this;
}

Statement& Statement::Bind(int i, std::string_view v) {
  int rc = sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) {
    Fail(rc);
  }
  return *this;
}

Statement& Statement::BindDouble(int i, double v) {
  int rc = sqlite3_bind_double(stmt_, i, v);
  if (rc != SQLITE_OK) {
    Fail(rc);
  }
  return *this;
}

Statement& Statement::BindNull(int i) {
  int rc = sqlite3_bind_null(stmt_, i);
  if (rc != SQLITE_OK) {
    Fail(rc);
  }
  return *this;
}

bool Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  sqlite3_reset(stmt_);
  Fail(rc);
}

void Statement::Exec() {
  while (Step()) {
  }
  Reset();
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Statement::Int(int col) const { return sqlite3_column_int64(stmt_, col); }

std::string_view Statement::Text(int col) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  if (p == nullptr) {
    return {};
  }
  return std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

double Statement::Double(int col) const { return sqlite3_column_double(stmt_, col); }

bool Statement::IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

namespace {

// SQLite's process-wide settings, made once before the first connection.
// Memory statistics are off: with them on, every allocation of every
// connection takes one global mutex, and simulations running side by side
// on a sweep's threads queue on it (a 2-job sweep ran slower than 1 job).
// This changes no behaviour of any connection, only their contention.
void ConfigureSqliteOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Fails only if SQLite was initialised already (by another part of the
    // process); then the defaults stay, which is correct, only slower.
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  });
}

}  // namespace

Database::Database() {
  ConfigureSqliteOnce();
  int rc = sqlite3_open_v2(
      ":memory:", &db_,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_MEMORY,
      nullptr);
  if (rc != SQLITE_OK) {
    SqlFail(db_, rc, "open :memory:");
  }
  ExecScript("PRAGMA foreign_keys = ON;");
  begin_ = Statement(*this, "BEGIN");
  commit_ = Statement(*this, "COMMIT");
  rollback_ = Statement(*this, "ROLLBACK");
}

Database::~Database() {
  begin_ = Statement();
  commit_ = Statement();
  rollback_ = Statement();
  sqlite3_close_v2(db_);
}

void Database::ExecScript(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err != nullptr ? err : "";
    sqlite3_free(err);
    throw CheckFailure(fmt::format("sqlite error {} ({}) in: {}", rc, msg, sql));
  }
}

int64_t Database::QueryInt(std::string_view sql) {
  Statement st(*this, sql);
  int64_t v = 0;
  if (st.Step()) {
    v = st.Int(0);
  }
  return v;
}

void Database::Begin() { begin_.Exec(); }

void Database::Commit() {
  commit_.Exec();
  ++commits_;
}

void Database::Rollback() { rollback_.Exec(); }

bool Database::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

std::string Database::Backup(const std::string& path) {
  // Write beside the target and rename, so a reader never sees half a file.
  const std::string tmp = path + ".tmp";
  std::error_code ec;
  std::filesystem::remove(tmp, ec);
  sqlite3* out = nullptr;
  int rc = sqlite3_open(tmp.c_str(), &out);
  if (rc != SQLITE_OK) {
    std::string msg = fmt::format("cannot create {}: {}", tmp, sqlite3_errmsg(out));
    sqlite3_close(out);
    return msg;
  }
  sqlite3_backup* b = sqlite3_backup_init(out, "main", db_, "main");
  if (b == nullptr) {
    std::string msg = fmt::format("cannot back up to {}: {}", tmp, sqlite3_errmsg(out));
    sqlite3_close(out);
    return msg;
  }
  sqlite3_backup_step(b, -1);
  rc = sqlite3_backup_finish(b);
  sqlite3_close(out);
  if (rc != SQLITE_OK) {
    return fmt::format("backup to {} failed: {}", tmp, sqlite3_errstr(rc));
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    return fmt::format("cannot rename {} to {}: {}", tmp, path, ec.message());
  }
  return "";
}

}  // namespace paylab::sim
