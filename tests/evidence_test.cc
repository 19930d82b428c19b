// Evidence an outsider can audit: tests that someone holding only the
// databases a run exported (and its run.json) re-derives the money checks
// with SQL alone, and that a run which failed, or broke inside paylab,
// still leaves its databases with a record saying where it stopped.
//
//  - a wallet run: client.db holds every answer the client received, and
//    idempotency_same_answer (and idempotency_mismatch_refused) come out of
//    it as the checker saw them, every answer agreeing with the one the
//    wallet stored for its key in wallet.db;
//  - a run with a planted ledger bug: `paylab run` exits 1, and the output
//    directory holds the databases cut at the failure and a run.json
//    naming the check, the instant and the early stop; the unbalanced
//    movement is in wallet.db;
//  - a run that hits an internal error (a test-only option throws what a
//    failed assertion throws) still writes its databases, committed state
//    only, and a run.json saying internal_error;
//  - a payments run: each clearing's fee is re-derived from payment.db
//    (the fee rate it stores, the sales credits each clearing covered,
//    rounded down once per clearing as the merchant ledger does), every
//    captured charge is traced to its clearing or to the unsettled sales,
//    and each point grant to the reward rate point.db stores.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "reports/report.h"
#include "harness/runner.h"
#include "harness/schema/scenario.h"
#include "load_scenario.h"

namespace paylab {
namespace {

namespace fs = std::filesystem;

using namespace testing_cli;  // Paylab, Ran, ReadFile

fs::path TempDir(const std::string& name) { return testing_cli::TempDir("evidence", name); }

// A read-only connection to an exported database; queries are plain SQL.
class Sql {
 public:
  explicit Sql(const fs::path& path) {
    ok_ = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK;
  }
  ~Sql() { sqlite3_close(db_); }
  Sql(const Sql&) = delete;
  Sql& operator=(const Sql&) = delete;
  bool ok() const { return ok_; }

  // Runs statements that return nothing (ATTACH).
  void Exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << (err == nullptr ? "" : err);
    }
    sqlite3_free(err);
  }

  // Every row of a query, each column as text ("" for NULL).
  std::vector<std::vector<std::string>> Rows(const std::string& sql) {
    std::vector<std::vector<std::string>> rows;
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
      return rows;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, c));
        row.emplace_back(text == nullptr ? "" : text);
      }
      rows.push_back(std::move(row));
    }
    sqlite3_finalize(st);
    return rows;
  }

  // The first column of the first row, as an integer (0 if none).
  int64_t Int(const std::string& sql) {
    const auto rows = Rows(sql);
    return rows.empty() || rows[0].empty() || rows[0][0].empty() ? 0 : std::stoll(rows[0][0]);
  }

 private:
  sqlite3* db_ = nullptr;
  bool ok_ = false;
};

scenarios::Scenario Load(const std::string& file) { return testing_scenarios::LoadOrFail(file); }

const reports::CheckResult* FindCheck(const reports::RunResult& r, const std::string& name) {
  for (const reports::CheckResult& c : r.checks) {
    if (c.name == name) {
      return &c;
    }
  }
  return nullptr;
}

nlohmann::json RunRecord(const fs::path& dir) {
  return nlohmann::json::parse(ReadFile(dir / "run.json"));
}

TEST(Evidence, ClientDbReDerivesIdempotencySameAnswer) {
  const fs::path d = TempDir("wallet");
  scenarios::RunOptions o;
  o.seed = 7;
  o.scenario_file = "scenarios/quickstart.json";
  o.out_dir = d.string();
  const reports::RunResult r = scenarios::RunScenario(Load(o.scenario_file), o);
  ASSERT_EQ(r.outcome, reports::RunOutcome::kPass) << r.internal_error;
  Sql client(d / "client.db");
  ASSERT_TRUE(client.ok());
  // The answers the checker compared are the rows of client.db: one per
  // answer, reused keys apart (a key reused with other parameters is
  // answered by the refusal, judged by idempotency_mismatch_refused).
  const std::string reused = "op = 'misuse' AND json_extract(params, '$.kind') = 'reused_key'";
  const reports::CheckResult* same = FindCheck(r, "idempotency_same_answer");
  ASSERT_NE(same, nullptr);
  EXPECT_EQ(client.Int("SELECT COUNT(*) FROM answers WHERE NOT (" + reused + ")"),
            same->evaluations);
  EXPECT_GT(client.Int("SELECT COUNT(*) FROM answers WHERE attempt > 1"), 0)
      << "the run's lost replies should make some answers come to a retry";
  // idempotency_same_answer, re-derived: every key answered one way.
  EXPECT_EQ(client.Int("SELECT COUNT(*) FROM (SELECT key FROM answers WHERE NOT (" + reused +
                       ") GROUP BY key HAVING COUNT(DISTINCT status || '/' || answer_id || '/' || "
                       "answer_amount) > 1)"),
            0);
  EXPECT_EQ(same->violations, 0);
  // idempotency_mismatch_refused, re-derived: every misuse was refused.
  const reports::CheckResult* refused = FindCheck(r, "idempotency_mismatch_refused");
  ASSERT_NE(refused, nullptr);
  EXPECT_EQ(client.Int("SELECT COUNT(*) FROM answers WHERE " + reused), refused->evaluations);
  EXPECT_EQ(client.Int("SELECT COUNT(*) FROM answers WHERE " + reused +
                       " AND status <> 'idempotency_mismatch'"),
            0);
  // And each keyed answer, retries' included, is the answer the wallet
  // stored for that key when it first acted (status 0 is ok).
  client.Exec("ATTACH DATABASE '" + (d / "wallet.db").string() + "' AS wallet");
  const std::string keyed =
      "FROM answers a LEFT JOIN wallet.idempotency i ON i.key = a.sent_key "
      "WHERE a.op IN ('deposit', 'transfer', 'prepare')";
  EXPECT_GT(client.Int("SELECT COUNT(*) " + keyed), 1000);
  EXPECT_EQ(client.Int("SELECT COUNT(*) " + keyed +
                       " AND (i.key IS NULL OR i.result_id <> a.answer_id OR "
                       "i.amount <> a.answer_amount OR (i.status = 0) <> (a.status = 'ok'))"),
            0);
  // The workload it ran is stored beside the answers.
  EXPECT_EQ(client.Int("SELECT value FROM config WHERE key = 'operations'"), 16000);
}

TEST(Evidence, FailedRunLeavesItsDatabasesAndSaysWhereItStopped) {
  const fs::path d = TempDir("failed");
  const fs::path out = d / "out";
  Ran run = Paylab(
      "run scenarios/quickstart.json --seed 7 --defect credit_without_debit --out " + out.string(),
      d);
  ASSERT_EQ(run.exit_code, 1) << run.out << run.err;
  const nlohmann::json rec = RunRecord(out);
  EXPECT_EQ(rec["outcome"], "check_failed");
  EXPECT_EQ(rec["stopped_early"], true);
  EXPECT_EQ(rec["seed"], 7);
  EXPECT_EQ(rec["defects"], nlohmann::json::array({"credit_without_debit"}));
  ASSERT_TRUE(rec["cause"].is_object()) << rec.dump(2);
  EXPECT_EQ(rec["cause"]["kind"], "check");
  EXPECT_EQ(rec["cause"]["check"], "movement_balanced");
  EXPECT_EQ(rec["cause"]["at_s"], rec["stopped_at_s"]);
  EXPECT_GT(rec["stopped_at_s"].get<double>(), 0);
  EXPECT_LT(rec["stopped_at_s"].get<double>(), 1200) << "the safety phase lasts 1200 s";
  const nlohmann::json report = nlohmann::json::parse(ReadFile(out / "report.json"));
  EXPECT_EQ(rec["trace_hash"], report["trace_hash"]);
  EXPECT_EQ(rec["cause"]["at_s"], report["violation"]["at_s"]);
  for (const char* db : {"client.db", "wallet.db"}) {
    EXPECT_NE(std::find(rec["databases"].begin(), rec["databases"].end(), db),
              rec["databases"].end())
        << db;
    EXPECT_TRUE(fs::exists(out / db)) << db;
  }
  // The failure is in the database, as the check saw it: the movement the
  // detail names does not balance, and nothing happened after the stop.
  Sql wallet(out / "wallet.db");
  ASSERT_TRUE(wallet.ok());
  const auto unbalanced = wallet.Rows(
      "SELECT movement_id FROM journal GROUP BY movement_id HAVING SUM(delta) <> 0 "
      "ORDER BY movement_id");
  ASSERT_FALSE(unbalanced.empty());
  const std::string detail = rec["cause"]["detail"];
  EXPECT_NE(detail.find(unbalanced[0][0]), std::string::npos) << detail;
  const double stopped_ns = rec["stopped_at_s"].get<double>() * 1e9;
  EXPECT_LE(static_cast<double>(wallet.Int("SELECT MAX(at) FROM movements")), stopped_ns + 1);
}

TEST(Evidence, InternalErrorStillWritesItsDatabasesAndSaysSo) {
  const fs::path d = TempDir("internal");
  scenarios::RunOptions o;
  o.seed = 3;
  o.scenario_file = "scenarios/quickstart.json";
  o.out_dir = d.string();
  o.fail_internally_at_s = 30;
  const reports::RunResult r = scenarios::RunScenario(Load(o.scenario_file), o);
  ASSERT_EQ(r.outcome, reports::RunOutcome::kInternalError);
  EXPECT_NE(r.internal_error.find("internal error injected at t=30.000 s"), std::string::npos)
      << r.internal_error;
  const nlohmann::json rec = RunRecord(d);
  EXPECT_EQ(rec["outcome"], "internal_error");
  EXPECT_EQ(rec["stopped_early"], true);
  EXPECT_EQ(rec["stopped_at_s"], 30.0);
  EXPECT_EQ(rec["cause"]["kind"], "internal_error");
  EXPECT_EQ(rec["cause"]["detail"], r.internal_error);
  EXPECT_EQ(rec["trace_hash"], fmt::format("{:016x}", r.trace_hash));
  EXPECT_NE(r.trace_hash, 0u);
  EXPECT_EQ(rec["databases"], nlohmann::json::array({"client.db", "wallet.db"}));
  // Committed state only, as a crash leaves it: the journal balances, and
  // the run had done work up to the error and none after.
  Sql wallet(d / "wallet.db");
  ASSERT_TRUE(wallet.ok());
  EXPECT_EQ(wallet.Int("SELECT COALESCE(SUM(delta), 0) FROM journal"), 0);
  EXPECT_GT(wallet.Int("SELECT COUNT(*) FROM movements"), 100);
  EXPECT_LE(wallet.Int("SELECT MAX(at) FROM movements"), int64_t{30'000'000'000});
  Sql client(d / "client.db");
  ASSERT_TRUE(client.ok());
  EXPECT_GT(client.Int("SELECT COUNT(*) FROM answers"), 100);
}

TEST(Evidence, PaymentDbReDerivesEveryClearingsFee) {
  const fs::path d = TempDir("payments");
  scenarios::Scenario s = Load("scenarios/payments.json");
  // A twentieth of the orders, as the replay test runs: clearings still
  // settle hundreds of charges.
  s.payments.charges /= 20;
  s.payments.escrows /= 20;
  s.duration_s /= 20;
  s.workload.operations /= 20;
  s.payments.assignment_redrive_at_s /= 20;
  scenarios::RunOptions o;
  o.seed = 2;
  o.out_dir = d.string();
  const reports::RunResult r = scenarios::RunScenario(s, o);
  ASSERT_EQ(r.outcome, reports::RunOutcome::kPass)
      << (r.violation ? r.violation->detail : r.internal_error);
  Sql pay(d / "payment.db");
  ASSERT_TRUE(pay.ok());
  EXPECT_EQ(pay.Int("SELECT value FROM config WHERE key = 'fee_bp'"), s.payments.fee_bp);
  // Every row of a capture belongs to its payment; clearing rows to none.
  EXPECT_EQ(pay.Int("SELECT COUNT(*) FROM pay_journal WHERE payment_id IS NULL AND "
                    "movement NOT IN (SELECT clearing FROM pay_clearing_items)"),
            0);
  EXPECT_EQ(pay.Int("SELECT COUNT(*) FROM pay_journal WHERE payment_id IS NOT NULL AND "
                    "payment_id NOT IN (SELECT id FROM payments WHERE status = 2)"),
            0);
  // Each clearing, re-derived from the credits it covered: the unsettled
  // sales it took, the settled sales it gave, and the fee, rounded down
  // once on the clearing's sum (a zero change has no journal row).
  const std::string per_clearing =
      "SELECT c.clearing AS clearing, SUM(j.delta) AS sales, "
      "SUM(j.delta) * (SELECT value FROM config WHERE key = 'fee_bp') / 10000 AS fee "
      "FROM pay_clearing_items c JOIN pay_journal j ON j.seq = c.credit_seq "
      "GROUP BY c.clearing";
  const auto row = [](int account) {
    return "COALESCE((SELECT delta FROM pay_journal WHERE movement = x.clearing AND account = " +
           std::to_string(account) + "), 0)";
  };
  EXPECT_GT(pay.Int("SELECT COUNT(*) FROM (" + per_clearing + ")"), 10);
  EXPECT_EQ(pay.Int("SELECT COUNT(*) FROM (" + per_clearing + ") x WHERE " + row(6) +
                    " <> x.fee OR " + row(4) + " <> -x.sales OR " + row(5) + " <> x.sales - x.fee"),
            0);
  EXPECT_EQ(pay.Int("SELECT SUM(fee) FROM (" + per_clearing + ")"),
            pay.Int("SELECT balance FROM pay_accounts WHERE owner = 0 AND account = 6"));
  EXPECT_GT(pay.Int("SELECT balance FROM pay_accounts WHERE owner = 0 AND account = 6"), 0);
  // Every captured charge has one sales credit, and it is either covered by
  // one clearing or still in its merchant's unsettled sales.
  EXPECT_EQ(pay.Int("SELECT COUNT(*) FROM payments p WHERE p.status = 2 AND p.flow = 1 AND "
                    "(SELECT COUNT(*) FROM pay_journal j WHERE j.payment_id = p.id AND "
                    "j.account = 4 AND j.delta = p.amount AND j.owner = p.payee) <> 1"),
            0);
  EXPECT_EQ(pay.Int("SELECT COUNT(*) FROM pay_clearing_items c JOIN payments p ON "
                    "p.id = c.payment_id WHERE p.status <> 2 OR p.flow <> 1"),
            0);
  EXPECT_EQ(pay.Int("SELECT COALESCE(SUM(j.delta), 0) FROM pay_journal j WHERE j.account = 4 AND "
                    "j.delta > 0 AND j.seq NOT IN (SELECT credit_seq FROM pay_clearing_items)"),
            pay.Int("SELECT COALESCE(SUM(balance), 0) FROM pay_accounts WHERE account = 4"));
  // The reward behind each point grant, from the rate point.db stores.
  pay.Exec("ATTACH DATABASE '" + (d / "point.db").string() + "' AS point");
  EXPECT_EQ(pay.Int("SELECT value FROM point.config WHERE key = 'reward_bp'"),
            s.payments.reward_bp);
  const std::string grants =
      "FROM point.point_lots l JOIN payments p ON l.grant_key = 'grant/' || p.id";
  EXPECT_GT(pay.Int("SELECT COUNT(*) " + grants), 100);
  EXPECT_EQ(pay.Int("SELECT COUNT(*) " + grants +
                    " WHERE l.amount <> p.amount * (SELECT value FROM point.config WHERE key = "
                    "'reward_bp') / 10000"),
            0);
}

}  // namespace
}  // namespace paylab
