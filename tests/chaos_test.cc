// The chaos suite: sweeps of the shipped chaos scenarios over many seeds.
//
// It proves two things about the checks. First, that the shipped system is
// clean: plain and swarm sweeps of scenarios/chaos_wallet.json and
// scenarios/chaos_payments.json, and plain sweeps of the two migration chaos
// scenarios (online, partial maintenance), 570 seeds in all, pass every
// check. The deep tier (tools/sweep-deep) runs 1,000 seeds of each, plain
// and swarm, outside CI's budget. Second, that the checks catch real bugs: for every defect in the
// catalogue (system/common/defects.h), a sweep of at most 200 seeds of the
// defect's chaos scenario fails, and some failing seed fails the very check
// the catalogue names. Each test prints the seed of the first failure and
// the command that replays it.
//
// Third, that a failure shrinks: a defect run's faults, turned into an
// explicit schedule and cut down, keep at most a quarter of the original
// faults (or fewer than five) and still fail the same check.
//
// Under the sanitizers the clean sweeps run fewer seeds (CI's budget); the
// defect sweeps run the same seeds, stopping at the first failure.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "harness/runner.h"
#include "harness/schema/scenario.h"
#include "load_scenario.h"
#include "harness/shrink.h"
#include "harness/swarm.h"
#include "harness/sweep.h"
#include "system/common/defects.h"

namespace paylab {
namespace system {
// Test names and failure messages show the defect's name, not its bytes.
void PrintTo(const DefectInfo& d, std::ostream* os) { *os << d.name; }
}  // namespace system

namespace {

#ifdef PAYLAB_SANITIZED
constexpr uint64_t kCleanScale = 10;  // a tenth of the seeds
#else
constexpr uint64_t kCleanScale = 1;
#endif

scenarios::Scenario Load(const std::string& file) { return testing_scenarios::LoadOrFail(file); }

scenarios::SweepOutcome Sweep(const std::string& file, uint64_t first, uint64_t last,
                              system::DefectSet defects, bool swarm, int64_t max_failures) {
  scenarios::SweepOptions o;
  o.scenario_file = file;
  o.first = first;
  o.last = last;
  o.jobs = 2;
  o.defects = defects;
  o.swarm = swarm;
  o.max_failures = max_failures;
  return scenarios::RunSweep(Load(file), o, nullptr);
}

void ExpectClean(const std::string& file, uint64_t seeds, bool swarm) {
  const auto out = Sweep(file, 1, seeds / kCleanScale, {}, swarm, 0);
  ASSERT_EQ(out.error, "");
  EXPECT_EQ(out.records.size(), seeds / kCleanScale);
  for (const auto& r : out.records) {
    EXPECT_TRUE(r.passed()) << "seed " << r.seed << " failed " << r.check << ": " << r.detail
                            << "\n  replay: " << r.replay;
  }
}

TEST(ChaosClean, WalletSweepPassesEveryCheck) {
  ExpectClean("scenarios/chaos_wallet.json", 150, false);
}

TEST(ChaosClean, PaymentsSweepPassesEveryCheck) {
  ExpectClean("scenarios/chaos_payments.json", 100, false);
}

TEST(ChaosClean, WalletSwarmSweepPassesEveryCheck) {
  ExpectClean("scenarios/chaos_wallet.json", 100, true);
}

TEST(ChaosClean, PaymentsSwarmSweepPassesEveryCheck) {
  ExpectClean("scenarios/chaos_payments.json", 60, true);
}

TEST(ChaosClean, OnlineMigrationSweepPassesEveryCheck) {
  ExpectClean("scenarios/chaos_migration_online.json", 80, false);
}

TEST(ChaosClean, PartialMaintenanceMigrationSweepPassesEveryCheck) {
  ExpectClean("scenarios/chaos_migration_partial.json", 80, false);
}

// The upstreams' misuse share is drawn too: off for some seeds, a
// share up to the scenario's for others, from its own stream (the faults
// drawn are the ones a scenario without misuse draws), and recorded with
// the faults so the run says what it had.
TEST(Swarm, DrawsTheMisuseRatioWithoutMovingTheFaults) {
  const scenarios::Scenario s = Load("scenarios/chaos_payments.json");
  ASSERT_GT(s.payments.misuse_ratio, 0);
  scenarios::Scenario quiet = s;
  quiet.payments.misuse_ratio = 0;
  int on = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    const scenarios::Scenario w = scenarios::Swarm(s, seed);
    EXPECT_EQ(w.faults, scenarios::Swarm(quiet, seed).faults) << seed;
    EXPECT_EQ(w.payments.misuse_ratio, scenarios::Swarm(s, seed).payments.misuse_ratio);
    EXPECT_GE(w.payments.misuse_ratio, 0);
    EXPECT_LE(w.payments.misuse_ratio, s.payments.misuse_ratio);
    on += w.payments.misuse_ratio > 0 ? 1 : 0;
  }
  EXPECT_GT(on, 5);
  EXPECT_LT(on, 35);
  // Recorded with the faults, by its JSON pointer (report.json's
  // swarm_faults is SwarmDraw of the drawn scenario).
  const scenarios::Scenario drawn = scenarios::Swarm(s, 3);
  EXPECT_EQ(scenarios::SwarmDraw(drawn)["/payments/misuse_ratio"].get<double>(),
            drawn.payments.misuse_ratio);
}

// Swarm mode scales the hostile caller's misuse rate like a kept fault rate
// (never off: its check is required), records it with the run's faults (by
// its JSON pointer), and draws it last. Draws only: no run.
TEST(Swarm, ScalesTheMisuseRateLastAndRecordsIt) {
  const scenarios::Scenario s = Load("scenarios/chaos_tcc_misuse.json");
  const double rate = s.payments.misuse_rate_per_s;
  ASSERT_GT(rate, 0);
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    const scenarios::Scenario w = scenarios::Swarm(s, seed);
    EXPECT_LE(w.payments.misuse_rate_per_s, rate);
    EXPECT_GE(w.payments.misuse_rate_per_s, rate / 4);
    EXPECT_EQ(scenarios::SwarmDraw(w)["/payments/misuse_rate_per_s"], w.payments.misuse_rate_per_s);
    // Every fault drawn before it is what it is without the hostile caller.
    scenarios::Scenario without = s;
    without.payments.misuse_rate_per_s = 0;
    EXPECT_EQ(scenarios::Swarm(without, seed).faults, w.faults) << seed;
  }
}

class DefectSweep : public testing::TestWithParam<system::DefectInfo> {};

TEST_P(DefectSweep, IsFoundWithin200SeedsByTheCheckItNames) {
  const system::DefectInfo& d = GetParam();
  const std::string file(d.scenario);
  // Stop at the first failure: the seeds before it were all dispatched
  // first and finish too, so the lowest failing seed is the first one.
  const auto out = Sweep(file, 1, 200, system::DefectSet::Of(d.defect), false, 1);
  ASSERT_EQ(out.error, "");
  const auto failing = std::find_if(out.records.begin(), out.records.end(),
                                    [](const auto& r) { return !r.passed(); });
  ASSERT_NE(failing, out.records.end()) << d.name << " was not found by 200 seeds of " << file;
  std::cout << "[ defect   ] " << d.name << ": first failing seed " << failing->seed << " ("
            << failing->check << ")\n  replay: " << failing->replay << "\n";
  bool named_check = false;
  for (const auto& r : out.records) {
    named_check = named_check || r.check == d.caught_by;
  }
  if (!named_check) {
    // The first failure may be another symptom (an assertion, another
    // check): sweep on until the named check fails too.
    const auto more = Sweep(file, 1, 200, system::DefectSet::Of(d.defect), false, 0);
    for (const auto& r : more.records) {
      named_check = named_check || r.check == d.caught_by;
    }
  }
  EXPECT_TRUE(named_check) << d.name << ": no seed of 1..200 failed " << d.caught_by;
}

INSTANTIATE_TEST_SUITE_P(Catalogue, DefectSweep,
                         testing::ValuesIn(system::DefectCatalogue().begin(),
                                           system::DefectCatalogue().end()),
                         [](const testing::TestParamInfo<system::DefectInfo>& p) {
                           return std::string(p.param.name);
                         });

TEST(Swarm, SameSeedSameFaultsAndHashOtherSeedOtherFaults) {
  const scenarios::Scenario s = Load("scenarios/chaos_wallet.json");
  scenarios::RunOptions o;
  o.scenario_file = "scenarios/chaos_wallet.json";
  o.swarm = true;
  o.seed = 5;
  const auto a = scenarios::RunScenario(s, o);
  const auto b = scenarios::RunScenario(s, o);
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.swarm_faults, b.swarm_faults);
  EXPECT_NE(a.swarm_faults, "");
  o.seed = 6;
  const auto c = scenarios::RunScenario(s, o);
  EXPECT_NE(a.swarm_faults, c.swarm_faults);
  // Over 40 seeds every fault type is sometimes on and sometimes off.
  int drop_reply_on = 0;
  int wallet_crashes_on = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    const scenarios::Scenario w = scenarios::Swarm(s, seed);
    drop_reply_on += w.faults.drop_reply > 0 ? 1 : 0;
    wallet_crashes_on += std::count_if(w.faults.crashes.begin(), w.faults.crashes.end(),
                                       [](const auto& c) { return c.node == "wallet"; });
    EXPECT_LE(w.faults.drop_reply, s.faults.drop_reply);
  }
  // A swarm sweep records each seed's draw with its result.
  const auto swept = Sweep("scenarios/chaos_wallet.json", 5, 6, {}, true, 0);
  ASSERT_EQ(swept.records.size(), 2u);
  EXPECT_EQ(swept.records[0].swarm_faults, a.swarm_faults);
  EXPECT_EQ(swept.records[0].trace_hash, fmt::format("{:016x}", a.trace_hash));
  EXPECT_EQ(swept.records[1].swarm_faults, c.swarm_faults);
  EXPECT_GT(drop_reply_on, 5);
  EXPECT_LT(drop_reply_on, 35);
  EXPECT_GT(wallet_crashes_on, 5);
  EXPECT_LT(wallet_crashes_on, 35);
}

struct ShrinkCase {
  const char* file;
  uint64_t seed;
  system::Defect defect;
};

class ShrinkDefectRun : public testing::TestWithParam<ShrinkCase> {};

TEST_P(ShrinkDefectRun, KeepsAQuarterOfTheFaultsOrFewerThanFiveAndFailsTheSameCheck) {
  const ShrinkCase& c = GetParam();
  const scenarios::Scenario s = Load(c.file);
  scenarios::ShrinkOptions o;
  o.run.seed = c.seed;
  o.run.scenario_file = c.file;
  o.run.defects = system::DefectSet::Of(c.defect);
  const scenarios::ShrinkOutcome out = scenarios::Shrink(s, o);
  ASSERT_EQ(out.error, "");
  std::cout << "[ shrink   ] " << system::InfoOf(c.defect).name << " seed " << c.seed << ": "
            << out.check << ", faults " << out.faults_before << " -> " << out.faults_after
            << ", operations " << out.operations_before << " -> " << out.operations_after << " in "
            << out.runs << " runs\n";
  EXPECT_TRUE(out.schedule_reproduces) << "the explicit schedule is not the same run";
  EXPECT_TRUE(out.faults_after * 4 <= out.faults_before || out.faults_after < 5)
      << out.faults_after << " of " << out.faults_before << " faults kept";
  EXPECT_LT(out.faults_after, out.faults_before);
  // What is written loads again and fails the same check, deterministically.
  auto reparsed = scenarios::ParseScenario(scenarios::ToJson(out.minimal).dump());
  ASSERT_TRUE(std::holds_alternative<scenarios::Scenario>(reparsed));
  scenarios::RunOptions ro = o.run;
  for (int i = 0; i < 2; ++i) {
    const auto r = scenarios::RunScenario(std::get<scenarios::Scenario>(reparsed), ro);
    ASSERT_TRUE(r.violation.has_value());
    EXPECT_EQ(r.violation->check, out.check);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Catalogue, ShrinkDefectRun,
    testing::Values(
        ShrinkCase{"scenarios/chaos_wallet.json", 3, system::Defect::kPublishOutsideOutbox},
        ShrinkCase{"scenarios/chaos_wallet.json", 3, system::Defect::kNoClockRollbackGuard},
        ShrinkCase{"scenarios/chaos_wallet.json", 3, system::Defect::kRetryWithoutIdempotencyKey}
#ifndef PAYLAB_SANITIZED
        ,
        ShrinkCase{"scenarios/chaos_payments.json", 1, system::Defect::kUpstreamNeverVoidsOrphans}
#endif
        ),
    [](const testing::TestParamInfo<ShrinkCase>& p) {
      return std::string(system::InfoOf(p.param.defect).name);
    });

}  // namespace
}  // namespace paylab
