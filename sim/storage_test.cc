// Tests of the SQLite wrapper: statements, scoped transactions that roll
// back unless committed, and a backup that the sqlite3 library reopens.
#include "sim/storage.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "sim/check.h"

namespace paylab::sim {
namespace {

TEST(StorageTest, TransactionCommitsOrRollsBack) {
  Database db;
  db.ExecScript("CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT);");
  {
    Transaction txn(db);
    Statement(db, "INSERT INTO t VALUES(?, ?)").Bind(1, int64_t{1}).Bind(2, "one").Exec();
    txn.Commit();
  }
  {
    Transaction txn(db);
    Statement(db, "INSERT INTO t VALUES(?, ?)").Bind(1, int64_t{2}).Bind(2, "two").Exec();
    // Destroyed without Commit: rolled back.
  }
  EXPECT_EQ(db.QueryInt("SELECT COUNT(*) FROM t"), 1);
  EXPECT_EQ(db.commits(), 1u);
  Statement q(db, "SELECT v FROM t WHERE k = ?");
  q.Bind(1, int64_t{1});
  ASSERT_TRUE(q.Step());
  EXPECT_EQ(q.Text(0), "one");
  EXPECT_FALSE(q.Step());
}

TEST(StorageTest, SqlErrorsAreCheckFailuresNamingTheStatement) {
  Database db;
  try {
    Statement(db, "SELECT * FROM missing_table");
    FAIL() << "expected a CheckFailure";
  } catch (const CheckFailure& e) {
    EXPECT_NE(std::string(e.what()).find("missing_table"), std::string::npos);
  }
}

TEST(StorageTest, BackupWritesAFileSqliteOpens) {
  Database db;
  db.ExecScript("CREATE TABLE t(v INTEGER); INSERT INTO t VALUES (7), (8);");
  const auto path = std::filesystem::temp_directory_path() / "paylab_storage_test.db";
  ASSERT_EQ(db.Backup(path.string()), "");
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "SELECT SUM(v) FROM t", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(st, 0), 15);
  sqlite3_finalize(st);
  sqlite3_close(raw);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace paylab::sim
