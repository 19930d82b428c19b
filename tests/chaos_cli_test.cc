// End-to-end tests of the chaos tooling through the real binary:
//  - `paylab sweep` killed part-way (SIGKILL, mid-write) and started again
//    finishes without re-running a finished seed or losing one;
//  - its JUnit file lists one test case per seed, failing seeds with their
//    replay command; shards merged (`paylab merge`) give the whole sweep;
//  - `paylab replay --trace-out` writes a timeline in the Chrome trace
//    event format whose structure Perfetto expects, and --expect-hash
//    tells a faithful replay from a diverged one;
//  - `paylab defects` lists the catalogue; bad arguments get a clear first
//    line and exit code 2.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_runner.h"

extern char** environ;

namespace paylab {
namespace {

namespace fs = std::filesystem;

using namespace testing_cli;  // Paylab, Ran, ReadFile

fs::path TempDir(const std::string& name) { return testing_cli::TempDir("sweep", name); }

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) {
    lines.push_back(line);
  }
  return lines;
}

// seed -> how many complete records the results file holds for it.
std::map<uint64_t, int> SeedsIn(const fs::path& results) {
  std::map<uint64_t, int> seeds;
  for (const std::string& line : Lines(ReadFile(results))) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("seed")) {
      ++seeds[j["seed"].get<uint64_t>()];
    }
  }
  return seeds;
}

TEST(SweepCli, KilledSweepResumesWithoutRerunningOrLosingSeeds) {
  const fs::path dir = TempDir("resume");
  const fs::path results = dir / "results.jsonl";
  const uint64_t kSeeds = 40;
  // Start a one-job sweep and kill it hard once some seeds are recorded.
  const std::string seeds = "1.." + std::to_string(kSeeds);
  std::vector<std::string> args = {PAYLAB_BIN_PATH,
                                   "sweep",
                                   "scenarios/chaos_wallet.json",
                                   "--seeds",
                                   seeds,
                                   "--jobs",
                                   "1",
                                   "--results",
                                   results.string()};
  std::vector<char*> argv;
  for (std::string& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, PAYLAB_BIN_PATH, &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  // Poll the file (not the clock) for progress; bounded.
  for (int i = 0; i < 6000 && SeedsIn(results).size() < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  waitpid(pid, &status, 0);
  const std::map<uint64_t, int> before = SeedsIn(results);
  ASSERT_GE(before.size(), 10u);
  ASSERT_LT(before.size(), kSeeds) << "the sweep finished before it could be killed";
  // A kill in the middle of a write leaves half a line: simulate the worst.
  { std::ofstream(results, std::ios::app) << "{\"seed\": 999, \"result\": \"pa"; }
  const std::string first_lines = ReadFile(results);

  const Ran again = Paylab("sweep scenarios/chaos_wallet.json --seeds " + seeds +
                               " --jobs 2 --results " + results.string(),
                           dir);
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("dropped 1 torn line"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find(std::to_string(before.size()) + " seeds were done already, " +
                           std::to_string(kSeeds - before.size()) + " run now"),
            std::string::npos)
      << again.out;
  const std::map<uint64_t, int> after = SeedsIn(results);
  ASSERT_EQ(after.size(), kSeeds);
  for (uint64_t s = 1; s <= kSeeds; ++s) {
    EXPECT_EQ(after.count(s) ? after.at(s) : 0, 1) << "seed " << s;
  }
  // The records written before the kill are kept as they were.
  const std::string now = ReadFile(results);
  const std::string kept = first_lines.substr(0, first_lines.rfind('\n') + 1);
  EXPECT_EQ(now.compare(0, kept.size(), kept), 0);
  // A third run finds nothing to do.
  const Ran third = Paylab(
      "sweep scenarios/chaos_wallet.json --seeds " + seeds + " --results " + results.string(), dir);
  EXPECT_EQ(third.exit_code, 0);
  EXPECT_NE(third.out.find(std::to_string(kSeeds) + " seeds were done already, 0 run now"),
            std::string::npos)
      << third.out;
}

TEST(SweepCli, JUnitListsEverySeedAndFailingSeedsCarryTheirReplayCommand) {
  const fs::path dir = TempDir("junit");
  const Ran r = Paylab(
      "sweep scenarios/chaos_payments.json --seeds 1..12 --defect cancel_without_tombstone "
      "--junit " +
          (dir / "sweep.xml").string() + " --results " + (dir / "r.jsonl").string(),
      dir);
  const std::string xml = ReadFile(dir / "sweep.xml");
  // (No std::regex: GCC 12 warns inside it under the sanitizers.)
  const std::string tag = "<testcase classname=\"chaos_payments\" name=\"seed ";
  std::vector<uint64_t> seeds;
  for (size_t at = xml.find(tag); at != std::string::npos; at = xml.find(tag, at + 1)) {
    seeds.push_back(std::stoull(xml.substr(at + tag.size())));
  }
  ASSERT_EQ(seeds.size(), 12u) << xml;
  for (uint64_t s = 1; s <= 12; ++s) {
    EXPECT_EQ(seeds[s - 1], s);
  }
  EXPECT_NE(xml.find("<testsuite name=\"chaos_payments\" tests=\"12\""), std::string::npos);
  // The same sweep with a defect the first seed already shows.
  const Ran f = Paylab(
      "sweep scenarios/chaos_wallet.json --seeds 1..5 --defect "
      "retry_without_idempotency_key --junit " +
          (dir / "fail.xml").string(),
      dir);
  EXPECT_EQ(f.exit_code, 1);
  const std::string fx = ReadFile(dir / "fail.xml");
  int failures = 0;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    const std::string start = "<failure message=\"check idempotency_one_effect violated at t=";
    const std::string end = " s; replay: paylab run scenarios/chaos_wallet.json --seed " +
                            std::to_string(seed) + " --defect retry_without_idempotency_key\"";
    for (size_t at = fx.find(start); at != std::string::npos; at = fx.find(start, at + 1)) {
      const size_t close = fx.find('"', at + start.size());
      if (close != std::string::npos && fx.compare(close - end.size() + 1, end.size(), end) == 0) {
        ++failures;
      }
    }
  }
  EXPECT_EQ(failures, 5) << fx;
  EXPECT_NE(fx.find("failures=\"5\""), std::string::npos);
  // The terminal gets each failing seed's replay command too.
  EXPECT_NE(f.out.find("replay: paylab run scenarios/chaos_wallet.json --seed 3 --defect "
                       "retry_without_idempotency_key"),
            std::string::npos)
      << f.out;
  (void)r;
}

TEST(SweepCli, ShardsMergeIntoTheWholeSweep) {
  const fs::path dir = TempDir("shards");
  for (int k = 1; k <= 3; ++k) {
    const Ran r =
        Paylab("sweep scenarios/chaos_wallet.json --seeds 10..24 --shard " + std::to_string(k) +
                   "/3 --results " + (dir / ("shard" + std::to_string(k) + ".jsonl")).string(),
               dir);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(SeedsIn(dir / ("shard" + std::to_string(k) + ".jsonl")).size(), 5u);
  }
  const Ran whole = Paylab("sweep scenarios/chaos_wallet.json --seeds 10..24 --results " +
                               (dir / "whole.jsonl").string(),
                           dir);
  ASSERT_EQ(whole.exit_code, 0);
  const Ran m =
      Paylab("merge " + (dir / "shard1.jsonl").string() + " " + (dir / "shard2.jsonl").string() +
                 " " + (dir / "shard3.jsonl").string() + " --results " +
                 (dir / "merged.jsonl").string() + " --junit " + (dir / "merged.xml").string(),
             dir);
  ASSERT_EQ(m.exit_code, 0) << m.out << m.err;
  // Same seeds, same trace hashes, whichever machine (shard) ran them.
  std::map<uint64_t, std::string> merged, single;
  for (const std::string& line : Lines(ReadFile(dir / "merged.jsonl"))) {
    const auto j = nlohmann::json::parse(line);
    merged[j["seed"].get<uint64_t>()] = j["trace_hash"].get<std::string>();
  }
  for (const std::string& line : Lines(ReadFile(dir / "whole.jsonl"))) {
    const auto j = nlohmann::json::parse(line);
    single[j["seed"].get<uint64_t>()] = j["trace_hash"].get<std::string>();
  }
  EXPECT_EQ(merged.size(), 15u);
  EXPECT_EQ(merged, single);
  // A results file of another sweep is refused, by sweep and by merge.
  const Ran other = Paylab("sweep scenarios/chaos_wallet.json --seeds 10..24 --swarm --results " +
                               (dir / "whole.jsonl").string(),
                           dir);
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.err.find("of another sweep (scenario chaos_wallet, defects [], swarm off)"),
            std::string::npos)
      << other.err;
}

struct BadSweep {
  const char* name;
  const char* args;
  const char* message;
};

class SweepBadInput : public testing::TestWithParam<BadSweep> {};

TEST_P(SweepBadInput, GivesOneClearLineAndExitCode2) {
  const fs::path dir = TempDir(std::string("bad_") + GetParam().name);
  const Ran r = Paylab(GetParam().args, dir);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  // The first line says what is wrong (an unknown defect's error goes on to
  // list the known ones).
  ASSERT_FALSE(r.err.empty());
  EXPECT_NE(Lines(r.err)[0].find(GetParam().message), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SweepBadInput,
    testing::Values(
        BadSweep{"seeds_reversed", "sweep scenarios/chaos_wallet.json --seeds 9..3",
                 "--seeds 9..3: the first seed (9) is after the last (3)"},
        BadSweep{"seeds_garbage", "sweep scenarios/chaos_wallet.json --seeds x..3",
                 "--seeds x..3: expected A..B"},
        BadSweep{"shard_zero", "sweep scenarios/chaos_wallet.json --seeds 1..3 --shard 0/2",
                 "--shard 0/2: expected K/N with 1 <= K <= N"},
        BadSweep{"defect_unknown", "sweep scenarios/chaos_wallet.json --seeds 1..3 --defect nope",
                 "--defect nope: unknown defect"},
        BadSweep{"defect_unreachable",
                 "sweep scenarios/chaos_wallet.json --seeds 1..3 --defect id_without_system_bit",
                 "has payments off (/payments/enabled)"},
        BadSweep{"merge_missing", "merge no_such_file.jsonl",
                 "no_such_file.jsonl: no such results file"}),
    [](const testing::TestParamInfo<BadSweep>& p) { return std::string(p.param.name); });

TEST(ReplayCli, TimelineIsAChromeTraceWithATrackPerNodeRpcSpansAndInstants) {
  const fs::path dir = TempDir("replay");
  const fs::path timeline = dir / "timeline.json";
  const Ran r = Paylab(
      "replay scenarios/chaos_payments.json --seed 66 --defect "
      "cancel_without_tombstone --out " +
          (dir / "run").string() + " --trace-out " + timeline.string(),
      dir);
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;  // the defect is caught
  EXPECT_NE(r.out.find("timeline    " + timeline.string()), std::string::npos) << r.out;
  const auto doc = nlohmann::json::parse(ReadFile(timeline), nullptr, false);
  ASSERT_TRUE(doc.is_object());
  ASSERT_TRUE(doc["traceEvents"].is_array());
  // Perfetto's JSON importer stops at an unknown top-level key and accepts
  // only "ms" or "ns" as the display unit (its json_trace_tokenizer.cc).
  for (const auto& [key, value] : doc.items()) {
    EXPECT_TRUE(key == "traceEvents" || key == "displayTimeUnit" || key == "otherData") << key;
  }
  EXPECT_EQ(doc["displayTimeUnit"], "ms");
  std::map<int, std::string> process;
  std::map<std::string, std::pair<double, std::string>> open;  // "cat/id" -> begin ts, name
  std::map<std::string, int> instants;
  int spans = 0;
  int downs = 0;
  for (const auto& e : doc["traceEvents"]) {
    ASSERT_TRUE(e.is_object());
    ASSERT_TRUE(e["ph"].is_string()) << e;
    ASSERT_TRUE(e["pid"].is_number_integer()) << e;
    ASSERT_TRUE(e["tid"].is_number_integer()) << e;
    ASSERT_TRUE(e["name"].is_string()) << e;
    const std::string ph = e["ph"];
    if (ph == "M") {
      if (e["name"] == "process_name") {
        process[e["pid"].get<int>()] = e["args"]["name"].get<std::string>();
      }
      continue;
    }
    ASSERT_TRUE(e["ts"].is_number()) << e;
    ASSERT_TRUE(process.contains(e["pid"].get<int>())) << "an event before its process: " << e;
    const double ts = e["ts"].get<double>();
    if (ph == "b" || ph == "e") {
      ASSERT_TRUE(e["cat"].is_string() && e["id"].is_string()) << e;
      const std::string key = e["cat"].get<std::string>() + "/" + e["id"].get<std::string>();
      // Perfetto pairs b with e by (name, pid, cat, id).
      const std::string pkey = key + "@" + std::to_string(e["pid"].get<int>());
      if (ph == "b") {
        EXPECT_FALSE(open.contains(pkey)) << "span opened twice: " << pkey;
        open[pkey] = {ts, e["name"].get<std::string>()};
        spans += e["cat"] == "rpc" ? 1 : 0;
      } else {
        ASSERT_TRUE(open.contains(pkey)) << "span ended without a begin: " << pkey;
        EXPECT_GE(ts, open[pkey].first);
        EXPECT_EQ(e["name"], open[pkey].second) << pkey;
        open.erase(pkey);
      }
    } else if (ph == "X") {
      ASSERT_TRUE(e["dur"].is_number()) << e;
      EXPECT_GE(e["dur"].get<double>(), 0);
      downs += e["name"] == "down" ? 1 : 0;
    } else {
      ASSERT_EQ(ph, "i") << e;
      EXPECT_EQ(e["s"], "t");
      const std::string name = e["name"];
      ++instants[name.substr(0, name.find(':'))];
      instants[name] += 0;
    }
  }
  EXPECT_TRUE(open.empty()) << open.size() << " spans left open";
  // One track (process) per node, and one for the checkers.
  std::set<std::string> names;
  for (const auto& [pid, name] : process) {
    names.insert(name);
  }
  for (const char* node : {"checkers", "client", "wallet", "broker", "point", "payment", "partner",
                           "checkout", "marketplace"}) {
    EXPECT_TRUE(names.contains(node)) << node;
  }
  EXPECT_GT(spans, 1000);
  EXPECT_GT(downs, 0);
  EXPECT_GT(instants["crash"], 0);
  EXPECT_GT(instants["restart"], 0);
  EXPECT_GT(instants["fault"], 0);
  EXPECT_GT(instants["check failed"], 0);
  EXPECT_GT(instants["transfer"] + instants["prepare"] + instants["commit"], 0);
  EXPECT_GT(instants["broker.append"], 0);  // publishes
}

TEST(ReplayCli, ExpectHashTellsAFaithfulReplayFromADivergedOne) {
  const fs::path dir = TempDir("expect");
  const Ran first = Paylab("run scenarios/chaos_wallet.json --seed 4 --out " + dir.string(), dir);
  ASSERT_EQ(first.exit_code, 0) << first.out;
  const auto report = nlohmann::json::parse(ReadFile(dir / "report.json"));
  const std::string hash = report["trace_hash"];
  const Ran same = Paylab("replay scenarios/chaos_wallet.json --seed 4 --expect-hash " + hash +
                              " --out " + dir.string(),
                          dir);
  EXPECT_EQ(same.exit_code, 0) << same.out;
  EXPECT_NE(same.out.find("the trace hash matches " + hash), std::string::npos);
  const Ran other = Paylab("replay scenarios/chaos_wallet.json --seed 5 --expect-hash " + hash +
                               " --out " + dir.string(),
                           dir);
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.out.find("DIVERGED"), std::string::npos);
}

TEST(DefectsCli, ListsEveryDefectWithTheCheckThatCatchesIt) {
  const fs::path dir = TempDir("defects");
  const Ran r = Paylab("defects", dir);
  EXPECT_EQ(r.exit_code, 0);
  for (const char* name :
       {"credit_without_debit", "consumer_without_dedup", "publish_outside_outbox",
        "retry_without_idempotency_key", "commit_ignores_hold_expiry", "id_without_system_bit",
        "no_clock_rollback_guard", "cancel_without_tombstone", "recovery_batch_skips_old_wip",
        "upstream_never_voids_orphans"}) {
    EXPECT_NE(r.out.find(name), std::string::npos) << name;
  }
}

// The case a new user met: upstreams that never read their notification
// queues. The run reaches its final checks (nothing else notices in this
// seed's swarm draw), and queue_drained fails naming both notification
// queues, how many messages they still hold and that nothing received them.
TEST(QueueChecksCli, UnreadNotificationQueuesFailQueueDrained) {
  const fs::path dir = TempDir("unread_queues");
  const std::string run = "run scenarios/chaos_payments.json --seed 1 --swarm --out ";
  const Ran bad =
      Paylab(run + (dir / "bad").string() + " --defect upstream_never_voids_orphans", dir);
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_NE(bad.out.find("FAIL: check queue_drained"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("queue payment.events.checkout still holds"), std::string::npos)
      << bad.out;
  EXPECT_NE(bad.out.find("also not drained: payment.events.marketplace"), std::string::npos)
      << bad.out;
  EXPECT_NE(bad.out.find("(receive counts: 0 x"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("    queue_drained                  FAIL"), std::string::npos) << bad.out;
  const auto report = nlohmann::json::parse(ReadFile(dir / "bad" / "report.json"));
  EXPECT_EQ(report["violation"]["check"], "queue_drained");
  bool saw = false;
  for (const auto& c : report["checks"]) {
    if (c["name"] == "queue_drained") {
      saw = true;
      EXPECT_EQ(c["verdict"], "fail");
      EXPECT_EQ(c["violations"], 2);  // both notification queues
    }
  }
  EXPECT_TRUE(saw);

  // The same run without the defect drains every queue and passes; the
  // check nothing in this world exercises says so instead of "ok".
  const Ran good = Paylab(run + (dir / "good").string(), dir);
  EXPECT_EQ(good.exit_code, 0) << good.out << good.err;
  EXPECT_NE(good.out.find("    queue_drained                  ok   (required, 4 evaluations)"),
            std::string::npos)
      << good.out;
  EXPECT_NE(good.out.find("    idempotency_mismatch_refused   not evaluated\n"), std::string::npos)
      << good.out;
  EXPECT_NE(good.out.find(" passed, 0 failed, 1 not evaluated\n"), std::string::npos) << good.out;
}

TEST(QueueChecksCli, ARequiredCheckTheRunDoesNotHaveIsBadInput) {
  const fs::path dir = TempDir("required_unknown");
  std::string text = ReadFile("scenarios/chaos_wallet.json");
  const std::string from = "\"required\": [";
  const size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, from.size(), from + "\"grants_settled\", ");
  std::ofstream(dir / "s.json") << text;
  const std::string file = (dir / "s.json").string();
  for (const std::string& cmd :
       {"run " + file + " --out " + (dir / "o").string(), "sweep " + file + " --seeds 1..2"}) {
    const Ran r = Paylab(cmd, dir);
    EXPECT_EQ(r.exit_code, 2) << cmd << r.out << r.err;
    EXPECT_NE(r.err.find("/checks/required/0: this run has no check \"grants_settled\""),
              std::string::npos)
        << cmd << r.err;
  }
}

}  // namespace
}  // namespace paylab
