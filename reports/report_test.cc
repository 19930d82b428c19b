// Tests of the report writers: report.json and run.json have their
// documented keys in a fixed order, a failed run carries its check and
// replay command, run.json says how a run ended and holds no wall time, a
// check that was never evaluated is reported as such and never as ok (and a
// required one as a failure), the replay command quotes what a shell would
// split, and files are replaced atomically.
#include "reports/report.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace paylab::reports {
namespace {

RunResult Sample() {
  RunResult r;
  r.scenario_name = "quickstart";
  r.scenario_file = "scenarios/quickstart.json";
  r.seed = 7;
  r.trace_hash = 0xabc;
  r.operations = {{"transfer", {{"ok", 3}, {"gave_up", 1}}}};
  r.faults = {{"drop_reply", 2}, {"crash", 1}};
  r.checks = {{"movement_balanced", 10, 0}, {"journal_zero", 10, 0}};
  return r;
}

TEST(ReportTest, KeysAreStableAndOrdered) {
  const auto j = ReportJson(Sample());
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) {
    keys.push_back(k);
  }
  const std::vector<std::string> want = {
      "report_version", "scenario",     "seed",          "defects",        "swarm",
      "swarm_faults",   "result",       "violation",     "internal_error", "replay",
      "trace_hash",     "trace_events", "kernel_events", "virtual_time_s", "wall_time_s",
      "operations",     "faults",       "network",       "messaging",      "payments",
      "models",         "checks",       "artifacts"};
  EXPECT_EQ(keys, want);
  EXPECT_EQ(j["result"], "pass");
  EXPECT_EQ(j["trace_hash"], "0000000000000abc");
  EXPECT_EQ(j["operations"]["by_kind"]["transfer"]["gave_up"], 1);
  EXPECT_EQ(j["checks"][0]["status"], "pass");
  EXPECT_EQ(j["checks"][0]["verdict"], "ok");
  EXPECT_EQ(j["checks"][0]["required"], false);
}

std::string Summary(const RunResult& r) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* mem = open_memstream(&buf, &len);
  PrintSummary(mem, r, "");
  std::fclose(mem);
  std::string text(buf, len);
  free(buf);
  return text;
}

TEST(ReportTest, ACheckNeverEvaluatedIsNotEvaluatedNeverOk) {
  RunResult r = Sample();
  r.checks.push_back({"queue_drained", 0, 0, false});
  const auto j = ReportJson(r);
  EXPECT_EQ(j["result"], "pass");  // not evaluated does not fail a run by itself
  EXPECT_EQ(j["checks"][2]["verdict"], "not_evaluated");
  EXPECT_EQ(j["checks"][2]["evaluations"], 0);
  const std::string text = Summary(r);
  EXPECT_NE(text.find("checks      2 passed, 0 failed, 1 not evaluated\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("    queue_drained                  not evaluated\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("    movement_balanced              ok   (10 evaluations)\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("queue_drained                  ok"), std::string::npos) << text;
}

TEST(ReportTest, ARequiredCheckNeverEvaluatedIsAFailure) {
  // As the runner leaves it (harness/runner.h): the run failed on it.
  RunResult r = Sample();
  r.checks.push_back({"queue_drained", 0, 1, true});
  r.outcome = RunOutcome::kCheckFailed;
  r.violation = ViolationInfo{"queue_drained", "required check queue_drained was not evaluated", 9};
  const auto j = ReportJson(r);
  EXPECT_EQ(j["result"], "fail");
  EXPECT_EQ(j["checks"][2]["verdict"], "fail");
  EXPECT_EQ(j["checks"][2]["required"], true);
  const std::string text = Summary(r);
  EXPECT_NE(text.find("checks      2 passed, 1 failed, 0 not evaluated\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("    queue_drained                  FAIL (required, 0 evaluations)\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("required check queue_drained was not evaluated"), std::string::npos) << text;
}

TEST(ReportTest, FailedRunCarriesTheCheckAndTheReplayCommand) {
  RunResult r = Sample();
  r.outcome = RunOutcome::kCheckFailed;
  r.violation =
      ViolationInfo{"journal_zero", "after transfer movement 12 the journal sums to 5", 1.5};
  r.checks[1].violations = 1;
  const auto j = ReportJson(r);
  EXPECT_EQ(j["result"], "fail");
  EXPECT_EQ(j["violation"]["check"], "journal_zero");
  EXPECT_EQ(j["replay"], "paylab run scenarios/quickstart.json --seed 7");
  EXPECT_EQ(j["checks"][1]["status"], "fail");
  char* buf = nullptr;
  size_t len = 0;
  FILE* mem = open_memstream(&buf, &len);
  PrintSummary(mem, r, "");
  std::fclose(mem);
  const std::string text(buf, len);
  free(buf);
  EXPECT_NE(text.find("FAIL: check journal_zero"), std::string::npos) << text;
  EXPECT_NE(text.find("replay      paylab run scenarios/quickstart.json --seed 7"),
            std::string::npos)
      << text;
}

TEST(ReportTest, RunJsonSaysHowTheRunEndedAndWhatItLeft) {
  RunResult r = Sample();
  r.virtual_time_s = 1320;
  r.wall_time_s = 1.25;
  r.databases = {"client.db", "wallet.db"};
  auto j = RunJson(r);
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) {
    keys.push_back(k);
  }
  const std::vector<std::string> want = {
      "run_version", "scenario",      "seed",         "defects", "swarm",      "strategy", "replay",
      "outcome",     "stopped_early", "stopped_at_s", "cause",   "trace_hash", "databases"};
  EXPECT_EQ(keys, want);
  EXPECT_EQ(j["outcome"], "pass");
  EXPECT_TRUE(j["cause"].is_null());
  EXPECT_EQ(j["databases"], nlohmann::ordered_json::array({"client.db", "wallet.db"}));
  RunResult later = r;
  later.wall_time_s = 9;
  EXPECT_EQ(RunJson(later), j) << "run.json holds no wall time";
  r.outcome = RunOutcome::kCheckFailed;
  r.stopped_early = true;
  r.virtual_time_s = 1.5;
  r.violation = ViolationInfo{"journal_zero", "the journal sums to 5", 1.5};
  j = RunJson(r);
  EXPECT_EQ(j["outcome"], "check_failed");
  EXPECT_EQ(j["stopped_early"], true);
  EXPECT_EQ(j["cause"]["kind"], "check");
  EXPECT_EQ(j["cause"]["check"], "journal_zero");
  EXPECT_EQ(j["cause"]["at_s"], 1.5);
  r.outcome = RunOutcome::kInternalError;
  r.internal_error = "check failed: x at y.cc:1";
  j = RunJson(r);
  EXPECT_EQ(j["outcome"], "internal_error");
  EXPECT_EQ(j["cause"]["kind"], "internal_error");
  EXPECT_EQ(j["cause"]["detail"], "check failed: x at y.cc:1");
}

TEST(ReportTest, ReplayCommandQuotesForTheShellAndNamesDefects) {
  RunResult r = Sample();
  r.scenario_file = "my scenarios/it's.json";
  EXPECT_EQ(ReplayCommand(r), "paylab run 'my scenarios/it'\\''s.json' --seed 7");
  r.defects = {"credit_without_debit"};
  EXPECT_EQ(ReplayCommand(r),
            "paylab run 'my scenarios/it'\\''s.json' --seed 7 --defect credit_without_debit");
}

TEST(ReportTest, WriteFileAtomicReplacesWholeFiles) {
  const auto path = std::filesystem::temp_directory_path() / "paylab_report_test.json";
  ASSERT_EQ(WriteFileAtomic(path, "first"), "");
  ASSERT_EQ(WriteFileAtomic(path, "second"), "");
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), "second");
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".tmp"));
  EXPECT_NE(WriteFileAtomic("/nonexistent-dir/x.json", "x"), "");
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace paylab::reports
