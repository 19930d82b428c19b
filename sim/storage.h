// A node's durable store: one SQLite database, and a thin RAII wrapper.
//
// Contract:
//  - The database belongs to the node, not to the service running on it: it
//    survives the service's crash. Only committed transactions survive; a
//    crash rolls back whatever was open (see Node::Crash).
//  - Transactions are synchronous: no co_await inside one. A transaction is
//    therefore atomic with respect to crashes, which happen between events.
//  - The database lives in memory for speed (the simulated disk never lies
//    here; fault injection happens at the node and network level). Backup()
//    copies it to a real file the sqlite3 shell opens.
//  - SQL errors are programmer errors in this codebase (the schema is ours):
//    they throw CheckFailure with the statement and SQLite's message.
//    Expected outcomes (a row not found, a constraint the caller tests for)
//    are values: Step() returns false at the end of rows.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace paylab::sim {

class Database;

// A prepared statement. Bind indexes are 1-based, column indexes 0-based.
class Statement {
 public:
  Statement() = default;
  Statement(Database& db, std::string_view sql);
  ~Statement();
  Statement(Statement&& o) noexcept;
  Statement& operator=(Statement&& o) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& Bind(int i, int64_t v);
  Statement& Bind(int i, std::string_view v);
  // Named apart from Bind: an int argument would find Bind(int64_t) and
  // Bind(double) equally good.
  Statement& BindDouble(int i, double v);
  Statement& BindNull(int i);
  // Advances to the next row; false when done. Resets nothing.
  bool Step();
  // Runs a statement that returns no rows, then resets it.
  void Exec();
  void Reset();

  int64_t Int(int col) const;
  std::string_view Text(int col) const;
  double Double(int col) const;
  bool IsNull(int col) const;

 private:
  [[noreturn]] void Fail(int rc) const;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

class Database {
 public:
  // Opens a fresh in-memory database.
  Database();
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  sqlite3* handle() { return db_; }
  // Runs one or more statements with no results (schema, pragmas).
  void ExecScript(std::string_view sql);
  // Runs a query returning a single integer (NULL reads as 0).
  int64_t QueryInt(std::string_view sql);

  void Begin();
  void Commit();
  void Rollback();
  bool InTransaction() const;
  // Number of transactions committed since the database was opened.
  uint64_t commits() const { return commits_; }

  // Writes a consistent copy to `path` (replacing it). Returns "" or an error.
  std::string Backup(const std::string& path);

 private:
  sqlite3* db_ = nullptr;
  uint64_t commits_ = 0;
  Statement begin_, commit_, rollback_;
};

// Scoped transaction: commits on Commit(), rolls back if destroyed without.
class Transaction {
 public:
  explicit Transaction(Database& db) : db_(db) { db_.Begin(); }
  ~Transaction() {
    if (!done_) {
      db_.Rollback();
    }
  }
  void Commit() {
    db_.Commit();
    done_ = true;
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

 private:
  Database& db_;
  bool done_ = false;
};

}  // namespace paylab::sim
