// End-to-end tests of the paylab command and the runner.
//
// They run the real binary the README's quick start runs, on the shipped
// quickstart scenario, and check what its users rely on: the same seed
// gives the same trace hash and another seed a different one; the run
// meets the walking skeleton's bar (10,000 transfers, >= 1% of replies
// lost, several wallet crashes, every check passing); the report, trace
// and databases it writes are usable; bad input gets one clear line and
// exit code 2; a deliberately wrong ledger is caught and the replay command
// printed; two simulations in one process do not disturb each other.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "cli_runner.h"
#include "reports/report.h"
#include "harness/runner.h"
#include "harness/schema/scenario.h"

namespace paylab {
namespace {

namespace fs = std::filesystem;

using namespace testing_cli;  // Paylab, Ran, ReadFile

fs::path TempDir(const std::string& name) { return testing_cli::TempDir("e2e", name); }

nlohmann::json Report(const fs::path& dir) {
  return nlohmann::json::parse(ReadFile(dir / "report.json"));
}

int64_t OutcomeTotal(const nlohmann::json& report, const std::string& kind) {
  int64_t total = 0;
  for (const auto& [name, n] : report["operations"]["by_kind"][kind].items()) {
    total += n.get<int64_t>();
  }
  return total;
}

TEST(EndToEnd, SameSeedSameTraceHashOtherSeedOtherHash) {
  const fs::path d = TempDir("determinism");
  Ran a = Paylab("run scenarios/quickstart.json --seed 7 --out " + (d / "a").string(), d);
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  Ran b = Paylab("run scenarios/quickstart.json --seed 7 --out " + (d / "b").string(), d);
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  Ran c = Paylab("run scenarios/quickstart.json --seed 8 --out " + (d / "c").string(), d);
  ASSERT_EQ(c.exit_code, 0) << c.out << c.err;
  const std::string ha = Report(d / "a")["trace_hash"], hb = Report(d / "b")["trace_hash"],
                    hc = Report(d / "c")["trace_hash"];
  EXPECT_EQ(ha, hb);
  EXPECT_NE(ha, hc);
  EXPECT_NE(a.out.find("trace hash  " + ha), std::string::npos) << a.out;
}

TEST(EndToEnd, QuickstartMeetsTheBarAndWritesUsableFiles) {
  const fs::path d = TempDir("quickstart");
  const fs::path trace = d / "trace.jsonl";
  Ran r = Paylab(
      "run scenarios/quickstart.json --seed 7 --out " + d.string() + " --trace " + trace.string(),
      d);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json rep = Report(d);
  EXPECT_EQ(rep["result"], "pass");
  EXPECT_GE(OutcomeTotal(rep, "transfer"), 10000);
  const double calls = rep["network"]["rpc_calls"].get<double>();
  EXPECT_GE(rep["faults"]["drop_reply"].get<double>() / calls, 0.01);
  EXPECT_GE(rep["faults"]["crash"].get<int64_t>(), 3);
  for (const auto& c : rep["checks"]) {
    EXPECT_EQ(c["status"], "pass") << c["name"];
    EXPECT_GT(c["evaluations"].get<int64_t>(), 0) << c["name"];
  }
  // The trace: one JSON object per event.
  std::ifstream f(trace);
  std::string line;
  int64_t lines = 0;
  while (std::getline(f, line)) {
    nlohmann::json parsed;
    ASSERT_NO_THROW(parsed = nlohmann::json::parse(line)) << line;
    EXPECT_TRUE(parsed.contains("kind")) << line;
    ++lines;
  }
  EXPECT_EQ(lines, rep["trace_events"].get<int64_t>());
  // The wallet database opens in SQLite and its journal sums to zero.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2((d / "wallet.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT COUNT(*), SUM(delta) FROM journal", -1, &st, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_GT(sqlite3_column_int64(st, 0), 10000);
  EXPECT_EQ(sqlite3_column_int64(st, 1), 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

struct BadInput {
  const char* name;
  const char* file_content;  // nullptr: the file does not exist
  const char* args;          // extra arguments, or the whole argument list if no file
  const char* expect;        // a substring of the one-line error
};

// Names the case in test listings (instead of its bytes).
void PrintTo(const BadInput& c, std::ostream* os) { *os << c.name; }

class BadInputTest : public ::testing::TestWithParam<BadInput> {};

TEST_P(BadInputTest, GivesOneClearLineAndExitCode2) {
  const BadInput& c = GetParam();
  const fs::path d = TempDir(std::string("bad_") + c.name);
  std::string args = c.args;
  if (c.file_content != nullptr) {
    // Start from the quickstart and change one thing, so the error is the one named.
    std::ofstream(d / "s.json") << c.file_content;
    args = "run " + (d / "s.json").string() + " " + args;
  }
  Ran r = Paylab(args, d);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("paylab: error: "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("terminate"), std::string::npos) << r.err;
}

std::string Quickstart() { return ReadFile("scenarios/quickstart.json"); }

std::string Edit(const std::string& from, const std::string& to) {
  std::string s = Quickstart();
  const size_t at = s.find(from);
  if (at == std::string::npos) {
    return "{\"edit target not found\": \"" + from + "\"}";
  }
  return s.replace(at, from.size(), to);
}

const std::string kNegativeRate = Edit("\"rate_per_s\": ", "\"rate_per_s\": -");
const std::string kZeroUsersOnly = [] {
  std::string s = Quickstart();
  const size_t at = s.find("\"users\": ");
  const size_t end = s.find_first_of(",\n}", at);
  return s.replace(at, end - at, "\"users\": 0");
}();
const std::string kUnknownField = Edit("\"duration_s\"", "\"duration_secs\": 1, \"duration_s\"");
const std::string kWrongType = [] {
  std::string s = Quickstart();
  const size_t at = s.find("\"duration_s\": ");
  const size_t end = s.find_first_of(",\n}", at);
  return s.replace(at, end - at, "\"duration_s\": \"long\"");
}();

INSTANTIATE_TEST_SUITE_P(
    Cases, BadInputTest,
    ::testing::Values(
        BadInput{"missing_file", nullptr, "run scenarios/does_not_exist.json",
                 "does_not_exist.json"},
        BadInput{"malformed", "{\"name\": \"x\",, }", "", "s.json"},
        BadInput{"unknown_field", kUnknownField.c_str(), "", "/duration_secs"},
        BadInput{"wrong_type", kWrongType.c_str(), "", "/duration_s"},
        BadInput{"negative_rate", kNegativeRate.c_str(), "", "/workload/rate_per_s"},
        BadInput{"zero_users", kZeroUsersOnly.c_str(), "", "/population/users"},
        BadInput{"bad_seed", nullptr, "run scenarios/quickstart.json --seed abc", "--seed"},
        BadInput{"unknown_option", nullptr, "run scenarios/quickstart.json --sed 1", "--sed"},
        BadInput{"no_scenario", nullptr, "run", "scenario"},
        BadInput{"no_subcommand", nullptr, "", "subcommand"},
        BadInput{"unknown_defect", nullptr, "run scenarios/quickstart.json --defect nope",
                 "--defect nope: unknown defect"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(EndToEnd, DeliberatelyWrongLedgerIsCaughtAndTheReplayCommandPrinted) {
  auto loaded = scenarios::LoadScenario("scenarios/quickstart.json");
  ASSERT_TRUE(std::holds_alternative<scenarios::Scenario>(loaded));
  scenarios::RunOptions o;
  o.seed = 7;
  o.scenario_file = "scenarios/quickstart.json";
  o.defects.Add(system::Defect::kCreditWithoutDebit);
  const reports::RunResult r = scenarios::RunScenario(std::get<scenarios::Scenario>(loaded), o);
  ASSERT_EQ(r.outcome, reports::RunOutcome::kCheckFailed) << r.internal_error;
  ASSERT_TRUE(r.violation.has_value());
  EXPECT_EQ(r.violation->check, "movement_balanced");
  EXPECT_NE(r.violation->detail.find("transfer movement"), std::string::npos)
      << r.violation->detail;
  EXPECT_EQ(reports::ReplayCommand(r),
            "paylab run scenarios/quickstart.json --seed 7 --defect credit_without_debit");
}

TEST(EndToEnd, CliPrintsTheFailedCheckAndAReplayCommandThatReplaysIt) {
  const fs::path d = TempDir("defect");
  const std::string args =
      "run scenarios/quickstart.json --seed 3 --defect credit_without_debit --out ";
  Ran a = Paylab(args + (d / "a").string(), d);
  EXPECT_EQ(a.exit_code, 1) << a.out << a.err;
  EXPECT_NE(a.out.find("FAIL: check movement_balanced"), std::string::npos) << a.out;
  const std::string replay =
      "replay      paylab run scenarios/quickstart.json --seed 3 --defect credit_without_debit";
  EXPECT_NE(a.out.find(replay), std::string::npos) << a.out;
  // The replay command reproduces the failure exactly.
  Ran b = Paylab(args + (d / "b").string(), d);
  EXPECT_EQ(b.exit_code, 1);
  EXPECT_EQ(Report(d / "a")["violation"], Report(d / "b")["violation"]);
  EXPECT_EQ(Report(d / "a")["trace_hash"], Report(d / "b")["trace_hash"]);
}

TEST(EndToEnd, TwoSimulationsInOneProcessDoNotShareState) {
  auto loaded = scenarios::LoadScenario("scenarios/quickstart.json");
  ASSERT_TRUE(std::holds_alternative<scenarios::Scenario>(loaded));
  scenarios::Scenario s = std::get<scenarios::Scenario>(loaded);
  s.workload.operations = 2000;
  scenarios::RunOptions o;
  o.seed = 11;
  const uint64_t alone = scenarios::RunScenario(s, o).trace_hash;
  uint64_t h1 = 0, h2 = 0;
  std::thread t1([&] { h1 = scenarios::RunScenario(s, o).trace_hash; });
  std::thread t2([&] { h2 = scenarios::RunScenario(s, o).trace_hash; });
  t1.join();
  t2.join();
  EXPECT_EQ(h1, alone);
  EXPECT_EQ(h2, alone);
}

}  // namespace
}  // namespace paylab
