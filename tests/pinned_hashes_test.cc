// Pinned trace hashes: every shipped scenario, three seeds, must give the
// trace hash committed in tests/pinned_trace_hashes.json.
//
// The hash covers every event of a run, so any change of behaviour (an
// extra RPC, a reordered event, a different random draw) changes it. A
// change that means to keep behaviour (a move of files, a new type, a split
// function) must leave every hash as it is; a change that means to alter
// behaviour re-records them and says why in its commit.
//
// The big scenarios run at a reduced size (the entry's "set": JSON pointer
// -> value, applied to the file before it is read) so the suite stays in
// CI's budget; the reduction is part of the pinned input.
//
// Recording: PAYLAB_PIN_RECORD=1 build/tests/pinned_hashes_test rewrites the
// file's hashes and outcomes from this build instead of comparing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <variant>

#include "reports/report.h"
#include "reports/run_result.h"
#include "harness/runner.h"
#include "harness/schema/scenario.h"
#include "system/common/defects.h"

namespace paylab {
namespace {

namespace fs = std::filesystem;

// Absolute, so the list of cases is readable when CTest discovers them.
const fs::path kSourceDir = PAYLAB_SOURCE_DIR;
const fs::path kPinFile = kSourceDir / "tests/pinned_trace_hashes.json";

std::string ReadText(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

nlohmann::json PinnedRuns() { return nlohmann::json::parse(ReadText(kPinFile)); }

scenarios::Scenario ReducedScenario(const nlohmann::json& entry) {
  auto doc = nlohmann::json::parse(ReadText(kSourceDir / entry["scenario"].get<std::string>()));
  if (entry.contains("set")) {
    for (const auto& [pointer, value] : entry["set"].items()) {
      doc[nlohmann::json::json_pointer(pointer)] = value;
    }
  }
  auto parsed = scenarios::ParseScenario(doc.dump());
  if (const auto* error = std::get_if<scenarios::ScenarioError>(&parsed)) {
    ADD_FAILURE() << entry["scenario"] << ": " << error->pointer << ": " << error->reason;
    return {};
  }
  return std::get<scenarios::Scenario>(std::move(parsed));
}

struct Pinned {
  std::string hash;
  std::string outcome;
};

Pinned RunOnce(const nlohmann::json& entry, uint64_t seed) {
  scenarios::RunOptions options;
  options.seed = seed;
  options.scenario_file = entry["scenario"].get<std::string>();
  options.swarm = entry.value("swarm", false);
  if (entry.contains("defects")) {
    for (const auto& name : entry["defects"]) {
      const auto defect = system::FindDefect(name.get<std::string>());
      EXPECT_TRUE(defect.has_value()) << "unknown defect " << name;
      if (defect) options.defects.Add(*defect);
    }
  }
  const auto result = scenarios::RunScenario(ReducedScenario(entry), options);
  return {fmt::format("{:016x}", result.trace_hash),
          std::string(reports::OutcomeWord(result.outcome))};
}

// The sanitizer build checks seed 1 only (CI's time budget): the same
// code, the same hashes; the normal build checks all three.
#ifdef PAYLAB_SANITIZED
constexpr uint64_t kSeeds = 1;
#else
constexpr uint64_t kSeeds = 3;
#endif

bool Recording() {
  const char* v = std::getenv("PAYLAB_PIN_RECORD");
  return v != nullptr && std::string(v) == "1";
}

TEST(PinnedHashes, EveryShippedScenarioIsPinned) {
  std::set<std::string> pinned;
  const auto doc = PinnedRuns();
  for (const auto& entry : doc["runs"]) pinned.insert(entry["scenario"].get<std::string>());
  for (const auto& file : fs::directory_iterator(kSourceDir / "scenarios")) {
    if (file.path().extension() != ".json") continue;
    const std::string name = (fs::path("scenarios") / file.path().filename()).string();
    EXPECT_TRUE(pinned.count(name)) << name << " has no entry in " << kPinFile
                                    << "; add one and record it (PAYLAB_PIN_RECORD=1)";
  }
}

class PinnedScenario : public testing::TestWithParam<std::string> {};

TEST_P(PinnedScenario, GivesThePinnedTraceHashForEachSeed) {
  auto doc = PinnedRuns();
  for (auto& entry : doc["runs"]) {
    if (entry["name"] != GetParam()) continue;
    for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
      const Pinned got = RunOnce(entry, seed);
      const std::string key = std::to_string(seed);
      if (Recording()) {
        entry["seeds"][key] = {{"trace_hash", got.hash}, {"outcome", got.outcome}};
        continue;
      }
      ASSERT_TRUE(entry["seeds"].contains(key)) << GetParam() << " seed " << seed << " not recorded";
      EXPECT_EQ(got.hash, entry["seeds"][key]["trace_hash"])
          << GetParam() << " seed " << seed << " (reduced: " << (entry.contains("set") ? entry["set"].dump() : std::string("{}"))
          << "): behaviour changed";
      EXPECT_EQ(got.outcome, entry["seeds"][key]["outcome"]) << GetParam() << " seed " << seed;
    }
  }
  if (Recording()) {
    // One scenario per test: write back only this entry's figures, so tests
    // run in parallel by CTest do not lose each other's records.
    const std::string tmp = kPinFile.string() + "." + GetParam() + ".tmp";
    auto current = PinnedRuns();
    for (auto& entry : current["runs"]) {
      if (entry["name"] != GetParam()) continue;
      for (const auto& e : doc["runs"]) if (e["name"] == GetParam()) entry["seeds"] = e["seeds"];
    }
    std::ofstream(tmp) << current.dump(2) << "\n";
    fs::rename(tmp, kPinFile);
  }
}

std::vector<std::string> PinnedScenarioFiles() {
  std::vector<std::string> files;
  const auto doc = PinnedRuns();
  for (const auto& entry : doc["runs"]) files.push_back(entry["name"].get<std::string>());
  return files;
}

INSTANTIATE_TEST_SUITE_P(Shipped, PinnedScenario, testing::ValuesIn(PinnedScenarioFiles()),
                         [](const testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace paylab
