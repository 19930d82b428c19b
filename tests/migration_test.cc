// The migration: the four strategies on 10,000 users, determinism,
// the loader's migration section, and `paylab compare` end to end, its page
// opened in headless Chromium.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "reports/report.h"
#include "harness/runner.h"
#include "harness/schema/scenario.h"
#include "load_scenario.h"
#include "system/common/defects.h"

namespace paylab {
namespace {

using testing_cli::Paylab;
using testing_cli::ReadFile;
using testing_cli::TempDir;

scenarios::Scenario Load(const std::string& file) { return testing_scenarios::LoadOrFail(file); }

double Figure(const reports::RunResult& r, std::string_view key) {
  for (const auto& [k, v] : r.migration) {
    if (k == key) {
      return v;
    }
  }
  ADD_FAILURE() << "no migration figure " << key;
  return -1;
}

void ExpectPassed(const reports::RunResult& r, const std::string& file) {
  EXPECT_EQ(r.outcome, reports::RunOutcome::kPass)
      << file << ": " << (r.violation ? r.violation->check + ": " + r.violation->detail : "")
      << r.internal_error << "\n  replay: " << reports::ReplayCommand(r);
  for (const auto& c : r.checks) {
    EXPECT_EQ(c.violations, 0) << file << ": " << c.name;
  }
}

// Every strategy's shipped scenario: 10,000 users, live traffic, faults on.
// Under the sanitizers (CI's budget) the small chaos scenarios stand in.
class StrategyScenario : public testing::TestWithParam<std::string> {};

TEST_P(StrategyScenario, MovesEveryUserWithEveryCheckPassing) {
#ifdef PAYLAB_SANITIZED
  const std::string file = "scenarios/chaos_migration_online.json";
  scenarios::RunOptions o;
  const std::string p = GetParam();
  o.strategy = p == "full" || p == "partial" ? p + "_maintenance" : p;
#else
  const std::string file = "scenarios/migration_" + GetParam() + ".json";
  scenarios::RunOptions o;
#endif
  const scenarios::Scenario s = Load(file);
  o.seed = 1;
  o.scenario_file = file;
  const reports::RunResult r = scenarios::RunScenario(s, o);
  ExpectPassed(r, file);
#ifndef PAYLAB_SANITIZED
  EXPECT_GE(s.population.users, 10000);
  EXPECT_GT(s.faults.crashes.size(), 0u);
  // The traffic outlasts the migration's start: users are served while moving.
  EXPECT_GT(static_cast<double>(s.workload.operations) / s.workload.rate_per_s,
            s.migration.start_s + 30);
#endif
  EXPECT_EQ(Figure(r, "users"), static_cast<double>(s.population.users));
  EXPECT_EQ(Figure(r, "money_errors"), 0);
  EXPECT_GT(Figure(r, "time_to_complete_s"), 0);
  EXPECT_GT(r.faults.size(), 0u);
  int64_t crashes = 0;
  for (const auto& [name, n] : r.faults) {
    crashes += name == "crash" ? n : 0;
  }
  EXPECT_GT(crashes, 0);
  // The series ends with every user migrated.
  ASSERT_FALSE(r.migration_series.empty());
  EXPECT_EQ(r.migration_series.back().migrated, s.population.users);
}

INSTANTIATE_TEST_SUITE_P(Strategies, StrategyScenario,
                         testing::Values("full", "partial", "online", "gradual"),
                         [](const testing::TestParamInfo<std::string>& p) { return p.param; });

TEST(Migration, SameSeedSameTraceHash) {
  const std::string file = "scenarios/chaos_migration_online.json";
  const scenarios::Scenario s = Load(file);
  scenarios::RunOptions o;
  o.seed = 7;
  const auto a = scenarios::RunScenario(s, o);
  const auto b = scenarios::RunScenario(s, o);
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.migration, b.migration);
  o.seed = 8;
  EXPECT_NE(scenarios::RunScenario(s, o).trace_hash, a.trace_hash);
}

TEST(Migration, StrategiesRankAsTheWriteUpsArgue) {
  // Full maintenance stops everyone for the whole copy; partial stops a
  // cohort at a time; the gradual flag locks a user while its holds drain;
  // online locks a user only for the job's own time.
  const std::string file = "scenarios/chaos_migration_online.json";
  const scenarios::Scenario s = Load(file);
  std::vector<double> unavailable;
  for (const char* st : {"full_maintenance", "partial_maintenance", "gradual", "online"}) {
    scenarios::RunOptions o;
    o.seed = 3;
    o.strategy = st;
    const auto r = scenarios::RunScenario(s, o);
    ExpectPassed(r, file + " --strategy " + st);
    unavailable.push_back(Figure(r, "unavailable_user_s"));
  }
  EXPECT_GT(unavailable[0], unavailable[1]);
  EXPECT_GT(unavailable[1], unavailable[2]);
  EXPECT_GT(unavailable[2], unavailable[3]);
}

int64_t Evaluations(const reports::RunResult& r, std::string_view check) {
  for (const auto& c : r.checks) {
    if (c.name == check) {
      return c.evaluations;
    }
  }
  ADD_FAILURE() << "no check " << check;
  return -1;
}

// Seed 000: the moved data must be identical, expiry included. The issue's
// own example: partial maintenance with CASHBACK given a 90-day expiry. The
// point service must issue every migrated user's value with the expiries of
// the wallet's balance items; a point service that drops them (the
// migration_drops_expiry defect, the old behaviour) fails
// migration_terms_kept at the first cohort's switch, both sides printed.
TEST(MigrationTerms, ALostExpiryIsCaughtAtTheSwitch) {
  for (const std::string strategy : {"partial_maintenance", "online"}) {
    scenarios::Scenario s = Load("scenarios/chaos_migration_partial.json");
    for (auto& t : s.account_types) {
      if (t.name == "CASHBACK") {
        t.expires_after_days = 90;
      }
    }
    scenarios::RunOptions o;
    o.seed = 1;
    o.strategy = strategy;
    const reports::RunResult kept = scenarios::RunScenario(s, o);
    ExpectPassed(kept, strategy);
    EXPECT_GT(Evaluations(kept, "migration_terms_kept"), 100) << strategy;

    o.defects = system::DefectSet::Of(system::Defect::kMigrationDropsExpiry);
    const reports::RunResult lost = scenarios::RunScenario(s, o);
    ASSERT_TRUE(lost.violation.has_value()) << strategy;
    EXPECT_EQ(lost.violation->check, "migration_terms_kept") << strategy;
    EXPECT_NE(lost.violation->detail.find("expiring never"), std::string::npos)
        << lost.violation->detail;
    EXPECT_NE(lost.violation->detail.find("expiring at 7776000.000000 s"), std::string::npos)
        << lost.violation->detail;
  }
}

// A payment whose hold expired after its Prepare answered ok, then rolled
// back: a replayed Prepare answers the first answer (ok) through the new API
// as through the old one (the point service answered expired). Holds of one
// second, commits up to four seconds late, and every payment misused make
// seed 5 reach it; shopper_misuse_refused judged it.
TEST(MigrationMisuse, AReplayedPrepareOfAnExpiredPaymentAnswersTheFirstAnswer) {
  scenarios::Scenario s = Load("scenarios/chaos_migration_online.json");
  s.migration.misuse_ratio = 1.0;
  s.migration.commit_delay_s_max = 4;
  s.workload.hold_ttl_s = 1;
  s.wallet.expiry_scan_interval_s = 0.5;
  scenarios::RunOptions o;
  o.seed = 5;
  const reports::RunResult r = scenarios::RunScenario(s, o);
  ExpectPassed(r, "seed 5");
  EXPECT_GT(Evaluations(r, "shopper_misuse_refused"), 100);
}

// A Commit that reached the wallet (its hold committed) whose answer was
// lost leaves the payment prepared at the point service; when its expiry
// sweep then asks the wallet to roll the hold back, the wallet refuses: the
// payment is committed, and its points stay spent (the sweep refunded them,
// and payment_money_exact saw the wallet hold committed beside the refund).
// One-second holds and commits up to four seconds late make seed 10 reach it.
TEST(MigrationPayments, AnExpiredPaymentWhoseWalletHoldCommittedStaysCommitted) {
  scenarios::Scenario s = Load("scenarios/chaos_migration_online.json");
  s.migration.misuse_ratio = 0;
  s.migration.commit_delay_s_max = 4;
  s.workload.hold_ttl_s = 1;
  s.wallet.expiry_scan_interval_s = 0.5;
  scenarios::RunOptions o;
  o.seed = 10;
  const reports::RunResult r = scenarios::RunScenario(s, o);
  ExpectPassed(r, "seed 10");
  EXPECT_GT(Evaluations(r, "payment_money_exact"), 0);
}

TEST(MigrationScenario, BadMigrationFieldsAreNamed) {
  const std::string base = ReadFile("scenarios/chaos_migration_online.json");
  auto with = [&](const std::string& from, const std::string& to) {
    std::string text = base;
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    return scenarios::ParseScenario(text);
  };
  auto error_of = [](const auto& parsed) {
    const auto* e = std::get_if<scenarios::ScenarioError>(&parsed);
    return e == nullptr ? std::string("(accepted)") : e->pointer + ": " + e->reason;
  };
  EXPECT_NE(error_of(with("\"strategy\": \"online\"", "\"strategy\": \"big_bang\""))
                .find("/migration/strategy: unknown strategy \"big_bang\""),
            std::string::npos);
  EXPECT_NE(error_of(with("\"start_s\": 3", "\"cashback_type\": \"POINTS\", \"start_s\": 3"))
                .find("/migration/cashback_type: no account type is named \"POINTS\""),
            std::string::npos);
  EXPECT_NE(error_of(with("\"node\": \"migrator\"", "\"node\": \"payment\""))
                .find("is not part of the migration world"),
            std::string::npos);
  EXPECT_NE(error_of(with("\"job_rate_per_s\": 5", "\"job_rate_per_s\": 0")).find("job_rate_per_s"),
            std::string::npos);
}

std::string Chromium() {
  for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (std::filesystem::exists(c)) {
      return c;
    }
  }
  return "";
}

// Loads `page` in headless Chromium; returns the rendered DOM and collects
// the console's messages (script errors among them) into `console`.
std::string RenderedDom(const std::filesystem::path& page, const std::filesystem::path& dir,
                        std::string* console) {
  const std::string chromium = Chromium();
  const auto dom = dir / "dom.html";
  const auto log = dir / "chromium.log";
  const std::string cmd =
      chromium +
      " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
      " --disable-background-networking --disable-component-update --disable-sync"
      " --enable-logging=stderr --v=0 --user-data-dir=" +
      (dir / "profile").string() + " --dump-dom file://" +
      std::filesystem::absolute(page).string() + " >" + dom.string() + " 2>" + log.string();
  const int status = std::system(cmd.c_str());
  EXPECT_EQ(status, 0) << cmd;
  console->clear();
  std::istringstream lines(ReadFile(log));
  for (std::string line; std::getline(lines, line);) {
    if (line.find("CONSOLE") != std::string::npos) {
      *console += line + "\n";
    }
  }
  return ReadFile(dom);
}

size_t Count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

TEST(CompareCli, WritesJsonAndAPageChromiumRendersWithoutScriptErrors) {
  ASSERT_NE(Chromium(), "") << "chromium is missing: tools/install-deps installs it";
  const auto dir = TempDir("compare", "page");
  const std::string args =
      "compare scenarios/chaos_migration_online.json --seeds 1..2 --jobs 2 --out " +
      (dir / "cmp").string();
  const auto ran = Paylab(args, dir);
  ASSERT_EQ(ran.exit_code, 0) << ran.out << ran.err;
  EXPECT_NE(ran.out.find("result      PASS"), std::string::npos) << ran.out;

  const auto j = nlohmann::json::parse(ReadFile(dir / "cmp" / "compare.json"));
  ASSERT_EQ(j["strategies"].size(), 4u);
  EXPECT_EQ(j["runs"], 8);
  for (const auto& st : j["strategies"]) {
    EXPECT_EQ(st["passed"], 2) << st["name"];
    EXPECT_EQ(st["figures"]["money_errors"]["max"], 0) << st["name"];
    EXPECT_EQ(st["series"].empty(), false) << st["name"];
  }
  EXPECT_EQ(j["least_unavailable_first"].front(), "online");
  EXPECT_EQ(j["least_unavailable_first"].back(), "full_maintenance");

  // The page, as a browser renders it.
  std::string console;
  const std::string dom = RenderedDom(dir / "cmp" / "compare.html", dir, &console);
  EXPECT_EQ(console, "") << "the page logged to the console (a script error?)";
  for (const char* id :
       {"id=\"summary\"", "id=\"figures\"", "id=\"failures\"", "id=\"chart-unavailability\"",
        "id=\"chart-migrated\"", "id=\"chart-rejected\"", "id=\"guide\""}) {
    EXPECT_EQ(Count(dom, id), 1u) << id;
  }
  for (const char* st : {"full_maintenance", "partial_maintenance", "online", "gradual"}) {
    const std::string attr = std::string("data-strategy=\"") + st + "\"";
    // A column in the table, a bar, and a line in each time chart.
    EXPECT_EQ(Count(dom, attr), 4u) << st;
  }
  EXPECT_EQ(Count(dom, "<tr data-figure="), 14u);
  // The page's script ran: it shaded the best cell of every row.
  EXPECT_GE(Count(dom, "class=\"best\""), 13u);

  // Interrupted and started again: every run is reused.
  const auto again = Paylab(args, dir);
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("0 made now, 8 reused"), std::string::npos) << again.out;
}

TEST(CompareCli, TheConsoleCheckSeesAScriptError) {
  // The check above is not vacuous: a page whose script throws is caught.
  ASSERT_NE(Chromium(), "") << "chromium is missing: tools/install-deps installs it";
  const auto dir = TempDir("compare", "broken");
  {
    std::ofstream f(dir / "broken.html");
    f << "<!DOCTYPE html><html><body><p id=\"x\">x</p><script>undefinedFunction();</script>"
         "</body></html>\n";
  }
  std::string console;
  RenderedDom(dir / "broken.html", dir, &console);
  EXPECT_NE(console.find("undefinedFunction"), std::string::npos) << console;
}

TEST(CompareCli, BadInputIsNamed) {
  const auto dir = TempDir("compare", "bad");
  auto r =
      Paylab("compare scenarios/chaos_migration_online.json --strategies online,big_bang --out " +
                 (dir / "o").string(),
             dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown strategy \"big_bang\""), std::string::npos) << r.err;
  r = Paylab("compare scenarios/chaos_migration_online.json --strategies online,online", dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("online is listed twice"), std::string::npos) << r.err;
  r = Paylab("compare scenarios/chaos_wallet.json --out " + (dir / "o").string(), dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("/migration/enabled is false"), std::string::npos) << r.err;
  r = Paylab("compare scenarios/chaos_migration_online.json --seeds 5..1", dir);
  EXPECT_EQ(r.exit_code, 2);
  r = Paylab("run scenarios/chaos_migration_online.json --strategy big_bang", dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--strategy big_bang: unknown strategy"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace paylab
