// Tests for the scenario loader.
//
// They check that scenarios/quickstart.json loads and survives a ToJson() round trip, that every
// kind of mistake in a scenario file is reported with the exact JSON pointer of the culprit and a
// reason a person can act on, and that no input at all (truncated, mutated, deeply nested, not
// UTF-8) makes ParseScenario() throw or crash: a bad file is an expected outcome, reported as a
// value. Run from the repository root, where "scenarios/quickstart.json" resolves.
#include "harness/schema/scenario.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace paylab::scenarios {

// Lets GoogleTest print a Scenario when an expectation fails.
void PrintTo(const Scenario& s, std::ostream* os) { *os << ToJson(s).dump(2); }
void PrintTo(const ScenarioError& e, std::ostream* os) {
  *os << "{pointer: \"" << e.pointer << "\", reason: \"" << e.reason << "\"}";
}

namespace {

using ::nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kQuickstartPath[] = "scenarios/quickstart.json";

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

json QuickstartJson() {
  std::string text = ReadText(kQuickstartPath);
  EXPECT_FALSE(text.empty()) << "cannot read " << kQuickstartPath << "; run from the repo root";
  return json::parse(text);
}

// The smallest valid scenario: only the required fields.
json MinimalJson() {
  return json::parse(R"({
    "name": "minimal",
    "duration_s": 10,
    "account_types": [{"name": "MONEY", "debit_priority": 0}],
    "population": {"users": 1},
    "workload": {"operations": 1, "rate_per_s": 1}
  })");
}

// Parses `text`, expecting an error; returns it (or a sentinel that fails the caller's checks).
ScenarioError ErrorOfText(std::string_view text) {
  std::variant<Scenario, ScenarioError> result = ParseScenario(text);
  if (const ScenarioError* e = std::get_if<ScenarioError>(&result)) {
    return *e;
  }
  ADD_FAILURE() << "expected an error, but this parsed:\n" << text;
  return ScenarioError{"<parsed without error>", ""};
}

ScenarioError ErrorOf(const json& doc) { return ErrorOfText(doc.dump()); }

Scenario ScenarioOfText(std::string_view text) {
  std::variant<Scenario, ScenarioError> result = ParseScenario(text);
  if (const ScenarioError* e = std::get_if<ScenarioError>(&result)) {
    ADD_FAILURE() << "unexpected error: " << FormatError("<text>", *e);
    return Scenario{};
  }
  return std::get<Scenario>(result);
}

Scenario ScenarioOf(const json& doc) { return ScenarioOfText(doc.dump()); }

// Asserts that `doc` is refused at exactly `pointer`, with `reason_part` in the reason.
void ExpectError(const json& doc, std::string_view pointer, std::string_view reason_part) {
  ScenarioError e = ErrorOf(doc);
  EXPECT_EQ(e.pointer, pointer) << "reason: " << e.reason;
  EXPECT_THAT(e.reason, HasSubstr(std::string(reason_part))) << "pointer: " << e.pointer;
}

// ------------------------------------------------------------------------------------------------
// Valid files.

TEST(ScenarioTest, QuickstartLoads) {
  std::variant<Scenario, ScenarioError> result = LoadScenario(kQuickstartPath);
  const Scenario* s = std::get_if<Scenario>(&result);
  ASSERT_NE(s, nullptr) << FormatError(kQuickstartPath, std::get<ScenarioError>(result));

  EXPECT_EQ(s->name, "quickstart");
  EXPECT_FALSE(s->description.empty());
  EXPECT_EQ(s->duration_s, 1200);
  EXPECT_EQ(s->settle_s, 120);

  ASSERT_EQ(s->account_types.size(), 3u);
  EXPECT_EQ(s->account_types[0].name, "CASHBACK");
  EXPECT_EQ(s->account_types[0].debit_priority, 0);
  EXPECT_EQ(s->account_types[0].expires_after_days, 90);
  EXPECT_TRUE(s->account_types[0].auto_create);
  EXPECT_EQ(s->account_types[1].name, "PREPAID");
  EXPECT_EQ(s->account_types[1].balance_cap, 100000);
  EXPECT_EQ(s->account_types[2].name, "MONEY");
  EXPECT_EQ(s->account_types[2].debit_priority, 2);
  EXPECT_FALSE(s->account_types[2].auto_create);
  EXPECT_EQ(s->account_types[2].balance_cap, 1000000);

  EXPECT_EQ(s->population.users, 500);
  EXPECT_EQ(s->population.initial_balances,
            (std::map<std::string, int64_t>{{"CASHBACK", 2000}, {"MONEY", 50000}}));

  // The workload's size, rate and mix get tuned; check only what the rest of the file relies on.
  const Workload& w = s->workload;
  EXPECT_GT(w.operations, 0);
  EXPECT_GT(w.rate_per_s, 0);
  EXPECT_NEAR(w.mix.deposit + w.mix.transfer + w.mix.two_phase + w.mix.misuse, 1.0, 1e-9);
  EXPECT_GT(w.mix.two_phase, 0);
  EXPECT_GT(w.mix.misuse, 0);
  EXPECT_EQ(w.amount_min, 1);
  EXPECT_EQ(w.amount_max, 8000);
  EXPECT_EQ(w.deposit_type, "MONEY");

  const LatencySpec& l = s->network.latency_ms;
  EXPECT_EQ(l.distribution, LatencyDistribution::kLogNormal);
  EXPECT_EQ(l.median, 2);
  EXPECT_EQ(l.min, 0.3);
  EXPECT_EQ(l.max, 80);
  EXPECT_EQ(l.sigma, 0.6);

  const Faults& f = s->faults;
  EXPECT_EQ(f.drop_request, 0.01);
  EXPECT_EQ(f.drop_reply, 0.015);
  EXPECT_EQ(f.duplicate_request, 0.01);
  EXPECT_EQ(f.delay, 0.02);
  EXPECT_EQ(f.delay_ms_max, 300);
  ASSERT_EQ(f.crashes.size(), 1u);
  EXPECT_EQ(
      f.crashes[0],
      (CrashSpec{
          .node = "wallet", .mean_interval_s = 150, .downtime_s_min = 2, .downtime_s_max = 15}));
  ASSERT_EQ(f.partitions.size(), 1u);
  EXPECT_EQ(f.partitions[0].between[0], "client");
  EXPECT_EQ(f.partitions[0].between[1], "wallet");
  EXPECT_EQ(f.partitions[0].from_s, 600);
  EXPECT_EQ(f.partitions[0].to_s, 603);
}

TEST(ScenarioTest, QuickstartRoundTripsThroughToJson) {
  std::variant<Scenario, ScenarioError> loaded = LoadScenario(kQuickstartPath);
  ASSERT_TRUE(std::holds_alternative<Scenario>(loaded));
  const Scenario& s = std::get<Scenario>(loaded);

  json canonical = ToJson(s);
  Scenario again = ScenarioOfText(canonical.dump());
  EXPECT_EQ(again, s);
  // Canonical means a fixed point: the same text every time.
  EXPECT_EQ(ToJson(again).dump(), canonical.dump());
  EXPECT_EQ(ScenarioOfText(canonical.dump(2)), s);
}

TEST(ScenarioTest, DefaultsAreFilledIn) {
  Scenario s = ScenarioOf(MinimalJson());
  EXPECT_EQ(s.description, "");
  EXPECT_EQ(s.settle_s, 60);
  const AccountTypeSpec& t = s.account_types.at(0);
  EXPECT_FALSE(t.allow_negative);
  EXPECT_EQ(t.expires_after_days, 0);
  EXPECT_TRUE(t.auto_create);
  EXPECT_EQ(t.balance_cap, 0);
  EXPECT_TRUE(s.population.initial_balances.empty());
  EXPECT_EQ(s.workload.mix, Mix{});
  EXPECT_EQ(s.workload.mix.transfer, 1);
  EXPECT_EQ(s.workload.amount_min, 1);
  EXPECT_EQ(s.workload.amount_max, 10000);
  EXPECT_EQ(s.workload.deposit_type, "MONEY");
  EXPECT_EQ(s.workload.rollback_ratio, 0.1);
  EXPECT_EQ(s.workload.abandon_ratio, 0.02);
  EXPECT_EQ(s.workload.hold_ttl_s, 30);
  EXPECT_EQ(s.workload.timeout_ms, 200);
  EXPECT_EQ(s.workload.retry_count_max, 5);
  EXPECT_EQ(s.workload.retry_backoff_ms, 50);
  EXPECT_EQ(s.network.latency_ms, LatencySpec{});
  EXPECT_EQ(s.network.latency_ms.distribution, LatencyDistribution::kLogNormal);
  EXPECT_EQ(s.faults, Faults{});
  EXPECT_EQ(s.wallet.expiry_scan_interval_s, 5);
  EXPECT_EQ(s.wallet.hold_ttl_max_s, 3600);

  EXPECT_EQ(ScenarioOfText(ToJson(s).dump()), s);
}

TEST(ScenarioTest, DepositTypeDefaultsToHighestDebitPriority) {
  json doc = MinimalJson();
  doc["account_types"] = json::parse(R"([
    {"name": "LOW", "debit_priority": 3},
    {"name": "HIGH", "debit_priority": 7},
    {"name": "MID", "debit_priority": 5}
  ])");
  Scenario s = ScenarioOf(doc);
  EXPECT_EQ(s.workload.deposit_type, "HIGH");
  // Account types keep file order.
  EXPECT_EQ(s.account_types[0].name, "LOW");
  EXPECT_EQ(s.account_types[2].name, "MID");
}

TEST(ScenarioTest, IntegralNumbersAreAcceptedAsIntegers) {
  json doc = MinimalJson();
  doc["population"]["users"] = 5e2;
  doc["workload"]["amount_max"] = 7.0;
  Scenario s = ScenarioOf(doc);
  EXPECT_EQ(s.population.users, 500);
  EXPECT_EQ(s.workload.amount_max, 7);
}

TEST(ScenarioTest, LatencyDistributionNames) {
  for (LatencyDistribution d : {LatencyDistribution::kConstant, LatencyDistribution::kUniform,
                                LatencyDistribution::kLogNormal}) {
    json doc = MinimalJson();
    doc["network"]["latency_ms"]["distribution"] = std::string(ToString(d));
    EXPECT_EQ(ScenarioOf(doc).network.latency_ms.distribution, d) << ToString(d);
  }
  EXPECT_EQ(ToString(LatencyDistribution::kLogNormal), "lognormal");
}

TEST(ScenarioTest, ExtremeButValidValuesRoundTrip) {
  json doc = MinimalJson();
  doc["duration_s"] = 1e-300;
  doc["workload"]["rate_per_s"] = 0.1;
  doc["workload"]["amount_max"] = std::numeric_limits<int64_t>::max();
  doc["account_types"][0]["balance_cap"] = std::numeric_limits<int64_t>::max();
  doc["description"] = "ウォレット \"quoted\" \\ tab\t";
  doc["population"]["initial_balances"]["MONEY"] = 0;
  Scenario s = ScenarioOf(doc);
  EXPECT_EQ(ScenarioOfText(ToJson(s).dump()), s);
}

// The examples in README.md are complete files: each one must load.
TEST(ScenarioTest, ReadmeExamplesAreValid) {
  const std::string readme = ReadText("scenarios/README.md");
  ASSERT_FALSE(readme.empty());
  constexpr std::string_view kOpen = "```json\n";
  int examples = 0;
  for (size_t at = readme.find(kOpen); at != std::string::npos; at = readme.find(kOpen, at)) {
    at += kOpen.size();
    size_t end = readme.find("```", at);
    ASSERT_NE(end, std::string::npos);
    ScenarioOfText(std::string_view(readme).substr(at, end - at));
    ++examples;
  }
  EXPECT_GE(examples, 2);
}

// ------------------------------------------------------------------------------------------------
// Errors, one test per kind.

TEST(ScenarioErrorTest, MissingFile) {
  std::variant<Scenario, ScenarioError> result = LoadScenario("scenarios/no_such_file.json");
  const ScenarioError* e = std::get_if<ScenarioError>(&result);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->pointer, "");
  EXPECT_THAT(e->reason, HasSubstr("cannot open file"));
  EXPECT_THAT(e->reason, HasSubstr("No such file"));
  EXPECT_EQ(FormatError("scenarios/no_such_file.json", *e),
            "scenarios/no_such_file.json: " + e->reason);
}

TEST(ScenarioErrorTest, DirectoryIsNotAFile) {
  std::variant<Scenario, ScenarioError> result = LoadScenario("scenarios");
  const ScenarioError* e = std::get_if<ScenarioError>(&result);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->pointer, "");
  EXPECT_THAT(e->reason, HasSubstr("directory"));
}

TEST(ScenarioErrorTest, MalformedJsonReportsBytePosition) {
  ScenarioError e = ErrorOfText("{\n  \"name\": \"x\",\n  \"duration_s\": 10,\n}");
  EXPECT_EQ(e.pointer, "");
  EXPECT_THAT(e.reason, StartsWith("malformed JSON at byte "));
  EXPECT_THAT(e.reason, HasSubstr("byte 38 (line 4, column 1)"));

  EXPECT_THAT(ErrorOfText("").reason, HasSubstr("malformed JSON at byte 1"));
  EXPECT_THAT(ErrorOfText("{} {}").reason, HasSubstr("malformed JSON"));
  EXPECT_THAT(ErrorOfText("{\"duration_s\": 1e400}").reason, HasSubstr("number overflow"));
  EXPECT_THAT(ErrorOfText("// comment\n{}").reason, HasSubstr("malformed JSON"));
}

TEST(ScenarioErrorTest, MalformedJsonReasonIsValidUtf8) {
  ScenarioError e = ErrorOfText(std::string("{\"name\": \"\xff\"}"));
  EXPECT_EQ(e.pointer, "");
  EXPECT_THAT(e.reason, HasSubstr("malformed JSON"));
  EXPECT_NO_THROW(json(e.reason).dump());  // dump() throws on invalid UTF-8
}

TEST(ScenarioErrorTest, RootMustBeAnObject) {
  ScenarioError e = ErrorOfText("[1, 2]");
  EXPECT_EQ(e.pointer, "");
  EXPECT_EQ(e.reason, "expected an object, got an array");
}

TEST(ScenarioErrorTest, DuplicateKey) {
  ScenarioError e =
      ErrorOfText(R"({"name": "a", "faults": {"crashes": [{}, {"node": 1, "node": 2}]}})");
  EXPECT_EQ(e.pointer, "/faults/crashes/1/node");
  EXPECT_EQ(e.reason, "duplicate key");
}

TEST(ScenarioErrorTest, UnknownTopLevelField) {
  json doc = QuickstartJson();
  doc["seed"] = 7;
  ExpectError(doc, "/seed", "unknown field");
}

TEST(ScenarioErrorTest, UnknownNestedField) {
  json doc = QuickstartJson();
  doc["faults"]["crashes"][0]["downtime_s"] = 3;
  ExpectError(doc, "/faults/crashes/0/downtime_s", "unknown field");
}

TEST(ScenarioErrorTest, UnknownFieldSuggestsTheNearestName) {
  json doc = QuickstartJson();
  doc["workload"]["rate_per_sec"] = doc["workload"]["rate_per_s"];
  doc["workload"].erase("rate_per_s");
  ExpectError(doc, "/workload/rate_per_sec", "unknown field; did you mean \"rate_per_s\"?");
}

TEST(ScenarioErrorTest, UnknownFieldIsReportedBeforeOtherErrorsInItsObject) {
  json doc = QuickstartJson();
  doc["workload"]["zzz"] = 1;
  doc["workload"]["operations"] = -5;
  ExpectError(doc, "/workload/zzz", "unknown field");
}

TEST(ScenarioErrorTest, RequiredFieldMissing) {
  json doc = QuickstartJson();
  doc["workload"].erase("operations");
  ExpectError(doc, "/workload/operations", "required field missing");

  doc = QuickstartJson();
  doc.erase("population");
  ExpectError(doc, "/population", "required field missing");
}

TEST(ScenarioErrorTest, WrongType) {
  json doc = QuickstartJson();
  doc["duration_s"] = "1200";
  ExpectError(doc, "/duration_s", "expected a number, got a string");

  doc = QuickstartJson();
  doc["account_types"][0]["auto_create"] = 1;
  ExpectError(doc, "/account_types/0/auto_create", "expected a boolean, got a number");

  doc = QuickstartJson();
  doc["faults"]["crashes"] = json::object();
  ExpectError(doc, "/faults/crashes", "expected an array, got an object");

  doc = QuickstartJson();
  doc["network"] = nullptr;
  ExpectError(doc, "/network", "expected an object, got null");
}

TEST(ScenarioErrorTest, IntegerMustBeIntegralAndFitInt64) {
  json doc = QuickstartJson();
  doc["population"]["users"] = 2.5;
  ExpectError(doc, "/population/users", "expected an integer, got 2.5");

  doc["population"]["users"] = std::numeric_limits<uint64_t>::max();
  ExpectError(doc, "/population/users", "within int64");

  doc["population"]["users"] = 1e19;
  ExpectError(doc, "/population/users", "within int64");

  doc["population"]["users"] = "500";
  ExpectError(doc, "/population/users", "expected an integer, got a string");
}

TEST(ScenarioErrorTest, NegativeRate) {
  json doc = QuickstartJson();
  doc["workload"]["rate_per_s"] = -1;
  ExpectError(doc, "/workload/rate_per_s", "must be > 0, got -1");
}

TEST(ScenarioErrorTest, ZeroUsers) {
  json doc = QuickstartJson();
  doc["population"]["users"] = 0;
  ExpectError(doc, "/population/users", "must be >= 1, got 0");
}

TEST(ScenarioErrorTest, ProbabilityAboveOne) {
  json doc = QuickstartJson();
  doc["faults"]["drop_reply"] = 1.5;
  ExpectError(doc, "/faults/drop_reply", "must be in [0, 1], got 1.5");
}

TEST(ScenarioErrorTest, AmountMaxBelowAmountMin) {
  json doc = QuickstartJson();
  doc["workload"]["amount_min"] = 500;
  doc["workload"]["amount_max"] = 100;
  ExpectError(doc, "/workload/amount_max", "must be >= amount_min (500), got 100");

  // The default amount_max (10000) is checked too, and the reason says it was the default.
  doc["workload"]["amount_min"] = 20000;
  doc["workload"].erase("amount_max");
  ExpectError(doc, "/workload/amount_max", "got 10000 (the default)");
}

TEST(ScenarioErrorTest, UnknownTypeInInitialBalances) {
  json doc = QuickstartJson();
  doc["population"]["initial_balances"]["GOLD"] = 5;
  ExpectError(doc, "/population/initial_balances/GOLD", "unknown account type \"GOLD\"");
}

TEST(ScenarioErrorTest, InitialBalanceAboveCap) {
  json doc = QuickstartJson();
  doc["population"]["initial_balances"]["PREPAID"] = 100001;
  ExpectError(doc, "/population/initial_balances/PREPAID", "balance_cap");
}

TEST(ScenarioErrorTest, TotalInitialMoneyMustFitInt64) {
  json doc = QuickstartJson();
  doc["population"]["users"] = int64_t{1} << 50;
  doc["population"]["initial_balances"]["CASHBACK"] = 1 << 20;
  ExpectError(doc, "/population/initial_balances", "overflows int64");
}

TEST(ScenarioErrorTest, UnknownCrashNode) {
  json doc = QuickstartJson();
  doc["faults"]["crashes"][0]["node"] = "database";
  ExpectError(doc, "/faults/crashes/0/node", "unknown node \"database\"");

  doc["faults"]["crashes"][0]["node"] = "client";
  ExpectError(doc, "/faults/crashes/0/node", "cannot crash");
}

TEST(ScenarioErrorTest, PartitionEndsBeforeItStarts) {
  json doc = QuickstartJson();
  doc["faults"]["partitions"][0]["to_s"] = 600;
  ExpectError(doc, "/faults/partitions/0/to_s", "must be > from_s (600), got 600");
}

TEST(ScenarioErrorTest, PartitionNeedsTwoDistinctKnownNodes) {
  json doc = QuickstartJson();
  doc["faults"]["partitions"][0]["between"] = {"client", "wallet", "wallet"};
  ExpectError(doc, "/faults/partitions/0/between", "exactly 2");

  doc["faults"]["partitions"][0]["between"] = {"wallet", "wallet"};
  ExpectError(doc, "/faults/partitions/0/between/1", "partitioned from itself");

  doc["faults"]["partitions"][0]["between"] = {"wallet", "ledger"};
  ExpectError(doc, "/faults/partitions/0/between/1", "unknown node");
}

TEST(ScenarioErrorTest, DuplicateTypeName) {
  json doc = QuickstartJson();
  doc["account_types"][1]["name"] = "CASHBACK";
  ExpectError(doc, "/account_types/1/name", "duplicate account type name \"CASHBACK\"");
}

TEST(ScenarioErrorTest, AccountTypeRules) {
  json doc = QuickstartJson();
  doc["account_types"][2]["debit_priority"] = 0;
  ExpectError(doc, "/account_types/2/debit_priority", "duplicate debit_priority 0");

  doc = QuickstartJson();
  doc["account_types"][0]["name"] = "cashback";
  ExpectError(doc, "/account_types/0/name", "must match [A-Z][A-Z0-9_]*");

  doc["account_types"][0]["name"] = "SYS_FEES";
  ExpectError(doc, "/account_types/0/name", "reserved");

  doc["account_types"] = json::array();
  ExpectError(doc, "/account_types", "must not be empty");

  for (size_t i = 0; i <= kAccountTypesMax; ++i) {
    doc["account_types"].push_back(
        {{"name", "T" + std::to_string(i)}, {"debit_priority", static_cast<int64_t>(i)}});
  }
  ExpectError(doc, "/account_types", "at most 16 account types, got 17");
}

TEST(ScenarioErrorTest, CrossFieldConstraints) {
  json doc = QuickstartJson();
  doc["workload"]["deposit_type"] = "GOLD";
  ExpectError(doc, "/workload/deposit_type", "unknown account type");

  doc = QuickstartJson();
  doc["workload"]["rollback_ratio"] = 0.6;
  doc["workload"]["abandon_ratio"] = 0.5;
  ExpectError(doc, "/workload/abandon_ratio", "rollback_ratio + abandon_ratio must be <= 1");

  doc = QuickstartJson();
  doc["workload"]["mix"] = {{"transfer", 0}};
  ExpectError(doc, "/workload/mix", "sum > 0");

  doc = QuickstartJson();
  doc["workload"]["boundary_ratio"] = 1.5;
  ExpectError(doc, "/workload/boundary_ratio", "");

  doc = QuickstartJson();
  doc["network"]["latency_ms"]["median"] = 100;
  ExpectError(doc, "/network/latency_ms/median", "must be in [min (0.3), max (80)], got 100");

  doc = QuickstartJson();
  doc["faults"]["crashes"][0]["downtime_s_max"] = 1;
  ExpectError(doc, "/faults/crashes/0/downtime_s_max", "must be >= downtime_s_min (2), got 1");
}

TEST(ScenarioErrorTest, OtherRanges) {
  json doc = QuickstartJson();
  doc["name"] = "";
  ExpectError(doc, "/name", "must not be empty");

  doc = QuickstartJson();
  doc["network"]["latency_ms"]["distribution"] = "normal";
  ExpectError(doc, "/network/latency_ms/distribution", "must be one of");

  doc = QuickstartJson();
  doc["duration_s"] = 2e9;
  ExpectError(doc, "/duration_s", "must be <= 1000000000, got 2000000000");

  doc = QuickstartJson();
  doc["workload"]["retry_count_max"] = 101;
  ExpectError(doc, "/workload/retry_count_max", "must be in [0, 100], got 101");

  doc = QuickstartJson();
  doc["account_types"][0]["expires_after_days"] = -1;
  ExpectError(doc, "/account_types/0/expires_after_days", "must be >= 0, got -1");
}

TEST(ScenarioErrorTest, FirstErrorInSchemaOrderWins) {
  json doc = QuickstartJson();
  doc["wallet"]["hold_ttl_max_s"] = 0;  // later in the schema
  doc["workload"]["timeout_ms"] = 0;    // earlier
  doc["population"]["users"] = -3;      // earliest
  ExpectError(doc, "/population/users", "must be >= 1");
}

TEST(ScenarioErrorTest, JsonPointerEscapesKeys) {
  json doc = QuickstartJson();
  doc["a/b~c"] = 1;
  ExpectError(doc, "/a~1b~0c", "unknown field");

  doc = QuickstartJson();
  doc["population"]["initial_balances"]["X/Y~Z"] = 1;
  ExpectError(doc, "/population/initial_balances/X~1Y~0Z", "unknown account type");

  doc = QuickstartJson();
  doc[""] = 1;
  ExpectError(doc, "/", "unknown field");
}

TEST(ScenarioErrorTest, FormatError) {
  EXPECT_EQ(FormatError("s.json", ScenarioError{"/workload/rate_per_s", "must be > 0, got -1"}),
            "s.json: /workload/rate_per_s: must be > 0, got -1");
  EXPECT_EQ(FormatError("s.json", ScenarioError{"", "malformed JSON at byte 1"}),
            "s.json: malformed JSON at byte 1");
  // One line, whatever the key holds.
  EXPECT_EQ(FormatError("s.json", ScenarioError{"/a\nb", "unknown field"}),
            "s.json: /a\\u000Ab: unknown field");
}

// ------------------------------------------------------------------------------------------------
// No input crashes the loader.

TEST(ScenarioRobustnessTest, EveryTruncatedPrefixIsAnError) {
  std::string text = ReadText(kQuickstartPath);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  ASSERT_TRUE(std::holds_alternative<Scenario>(ParseScenario(text)));
  for (size_t length = 0; length < text.size(); ++length) {
    std::string_view prefix(text.data(), length);
    std::variant<Scenario, ScenarioError> result;
    EXPECT_NO_THROW(result = ParseScenario(prefix)) << "length " << length;
    EXPECT_TRUE(std::holds_alternative<ScenarioError>(result)) << "length " << length;
  }
}

TEST(ScenarioRobustnessTest, DeepNestingIsAnErrorNotACrash) {
  constexpr int kDepth = 100000;
  std::string deep = "{\"faults\": " + std::string(kDepth, '[') + std::string(kDepth, ']') + "}";
  ScenarioError e = ErrorOfText(deep);
  EXPECT_EQ(e.pointer, "/name");  // required fields come first
  std::string unclosed(kDepth, '{');
  EXPECT_THAT(ErrorOfText(unclosed).reason, HasSubstr("malformed JSON"));
}

// Byte-level mutations of quickstart.json: whatever comes out, ParseScenario returns a value,
// and whatever it accepts survives a round trip.
TEST(ScenarioRobustnessTest, MutatedTextNeverThrows) {
  const std::string original = ReadText(kQuickstartPath);
  constexpr std::string_view kAlphabet = "{}[]\",:-.0123456789eE+tfn \\/~\xff\x01";
  std::mt19937_64 rng(20261126);
  int accepted = 0;
  for (int round = 0; round < 1000; ++round) {
    std::string text = original;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < edits && !text.empty(); ++i) {
      size_t at = rng() % text.size();
      char c = kAlphabet[rng() % kAlphabet.size()];
      switch (rng() % 3) {
        case 0:
          text[at] = c;
          break;
        case 1:
          text.erase(at, 1 + rng() % 8);
          break;
        default:
          text.insert(at, 1, c);
          break;
      }
    }
    std::variant<Scenario, ScenarioError> result;
    ASSERT_NO_THROW(result = ParseScenario(text)) << text;
    if (const Scenario* s = std::get_if<Scenario>(&result)) {
      ++accepted;
      EXPECT_EQ(ScenarioOfText(ToJson(*s).dump()), *s) << text;
    }
  }
  EXPECT_GT(accepted, 0);  // some mutations land in whitespace or change a number
}

// Value-level mutations: replace one value anywhere in the document with a value of another type
// or range. Every refusal must name a pointer, every acceptance must round-trip.
TEST(ScenarioRobustnessTest, MutatedValuesNeverThrow) {
  const json original = QuickstartJson();
  std::vector<std::string> pointers;
  const json flat = original.flatten();  // a named object: items() of a temporary would dangle
  for (const auto& item : flat.items()) {
    std::string pointer = item.key();
    // Also the containers above each leaf.
    while (!pointer.empty()) {
      pointers.push_back(pointer);
      pointer = pointer.substr(0, pointer.rfind('/'));
    }
  }
  // clang-format off
  const std::vector<json> replacements = {
      nullptr, true, -1, 0, 1, 2.5, 1e300, -1e300, "", "MONEY", "wallet", "x/y~z",
      std::numeric_limits<int64_t>::max(), std::numeric_limits<uint64_t>::max(),
      json::array(), json::object(), json::array({1, 2}), json::parse(R"({"zz": 1})")};
  // clang-format on
  std::mt19937_64 rng(7);
  for (int round = 0; round < 1000; ++round) {
    json doc = original;
    const std::string& pointer = pointers[rng() % pointers.size()];
    doc[json::json_pointer(pointer)] = replacements[rng() % replacements.size()];
    std::variant<Scenario, ScenarioError> result;
    ASSERT_NO_THROW(result = ParseScenario(doc.dump())) << pointer;
    if (const Scenario* s = std::get_if<Scenario>(&result)) {
      EXPECT_EQ(ScenarioOfText(ToJson(*s).dump()), *s) << pointer;
    } else {
      EXPECT_FALSE(std::get<ScenarioError>(result).pointer.empty()) << pointer;
    }
  }
}

// ------------------------------------------------------------------------------------------------
// The payments section.

namespace payments {

json PaymentsJson() {
  json doc = MinimalJson();
  doc["population"]["users"] = 10;
  doc["messaging"] = {{"enabled", true}};
  doc["wallet"] = {{"hold_ttl_max_s", 86400}};
  doc["payments"] = {{"enabled", true}, {"charges", 10}, {"escrows", 10}};
  return doc;
}

TEST(PaymentsScenarioTest, ShippedPaymentsScenarioLoadsAndRoundTrips) {
  auto loaded = LoadScenario("scenarios/payments.json");
  ASSERT_TRUE(std::holds_alternative<Scenario>(loaded))
      << FormatError("scenarios/payments.json", std::get<ScenarioError>(loaded));
  const Scenario& s = std::get<Scenario>(loaded);
  EXPECT_TRUE(s.payments.enabled);
  EXPECT_GE(s.payments.charges + s.payments.escrows, 20000);
  EXPECT_EQ(ScenarioOf(ToJson(s)), s);
}

TEST(PaymentsScenarioTest, DefaultsAreFilledIn) {
  const Scenario s = ScenarioOf(PaymentsJson());
  EXPECT_EQ(s.payments.worker_attempts_max, 5);
  EXPECT_EQ(s.payments.queue_backoff_s_min, 60);
  EXPECT_EQ(s.payments.queue_backoff_s_max, 3600);
  EXPECT_EQ(s.payments.batch_interval_s, 3600);
  EXPECT_EQ(s.payments.recovery_horizon_days, 3);
  EXPECT_EQ(ScenarioOf(MinimalJson()).payments.enabled, false);
}

TEST(PaymentsScenarioTest, BadValuesNameTheField) {
  json doc = PaymentsJson();
  doc["payments"]["void_ratio"] = 1.5;
  ExpectError(doc, "/payments/void_ratio", "");
  doc = PaymentsJson();
  doc["payments"]["amount_min"] = 500;
  doc["payments"]["amount_max"] = 100;
  ExpectError(doc, "/payments/amount_max", "at least amount_min");
  doc = PaymentsJson();
  doc["payments"]["queue_backoff_s_max"] = 1;
  ExpectError(doc, "/payments/queue_backoff_s_max", "at least queue_backoff_s_min");
  doc = PaymentsJson();
  doc["payments"]["worker_attempts_max"] = 0;
  ExpectError(doc, "/payments/worker_attempts_max", "");
  doc = PaymentsJson();
  doc["payments"]["charge_rate_per_s"] = 0;
  ExpectError(doc, "/payments/charge_rate_per_s", "");
  doc = PaymentsJson();
  doc["payments"]["charges_per_s"] = 1;
  ExpectError(doc, "/payments/charges_per_s", "unknown field");
}

// The upstreams' misuse share: a probability, off by default,
// kept by the round trip.
TEST(PaymentsScenarioTest, MisuseRatioIsAProbabilityThatRoundTrips) {
  EXPECT_EQ(ScenarioOf(PaymentsJson()).payments.misuse_ratio, 0);
  json doc = PaymentsJson();
  doc["payments"]["misuse_ratio"] = 0.25;
  const Scenario s = ScenarioOf(doc);
  EXPECT_EQ(s.payments.misuse_ratio, 0.25);
  EXPECT_EQ(ScenarioOfText(ToJson(s).dump()), s);
  for (const double bad : {-0.1, 1.5}) {
    doc["payments"]["misuse_ratio"] = bad;
    ExpectError(doc, "/payments/misuse_ratio", "");
  }
  doc["payments"]["misuse_ratio"] = "often";
  ExpectError(doc, "/payments/misuse_ratio", "");
}

TEST(PaymentsScenarioTest, CrossFieldRulesNameTheField) {
  json doc = PaymentsJson();
  doc["messaging"]["enabled"] = false;
  ExpectError(doc, "/payments/enabled", "need messaging");
  doc = PaymentsJson();
  doc["wallet"]["hold_ttl_max_s"] = 60;
  ExpectError(doc, "/payments/hold_ttl_s", "hold_ttl_max_s");
  doc = PaymentsJson();
  doc["population"]["users"] = 1;
  ExpectError(doc, "/population/users", "at least 2 users");
  // The payment nodes exist only with payments on.
  doc = MinimalJson();
  doc["faults"] = {{"crashes", {{{"node", "payment"}, {"mean_interval_s", 10}}}}};
  ExpectError(doc, "/faults/crashes/0/node", "/payments/enabled");
  // The upstreams are the workload: never crashed.
  doc = PaymentsJson();
  doc["faults"] = {{"crashes", {{{"node", "checkout"}, {"mean_interval_s", 10}}}}};
  ExpectError(doc, "/faults/crashes/0/node", "");
}

// The hostile caller (/payments/misuse_rate_per_s): off by default, read and
// written back, refused below 0, and its node named by a fault only when it
// exists.
TEST(PaymentsScenarioTest, MisuseRateIsReadRoundTripsAndNamesItsErrors) {
  EXPECT_EQ(ScenarioOf(PaymentsJson()).payments.misuse_rate_per_s, 0);
  json doc = PaymentsJson();
  doc["payments"]["misuse_rate_per_s"] = 2.5;
  const Scenario s = ScenarioOf(doc);
  EXPECT_EQ(s.payments.misuse_rate_per_s, 2.5);
  EXPECT_EQ(ToJson(s)["payments"]["misuse_rate_per_s"], 2.5);
  EXPECT_EQ(ScenarioOf(ToJson(s)), s);
  doc["payments"]["misuse_rate_per_s"] = -1;
  ExpectError(doc, "/payments/misuse_rate_per_s", "");
  doc["payments"]["misuse_rate_per_s"] = "fast";
  ExpectError(doc, "/payments/misuse_rate_per_s", "");
  doc["payments"]["misuse_rate_per_s"] = 2e6;
  ExpectError(doc, "/payments/misuse_rate_per_s", "");
  // The hostile node exists only while it misuses.
  doc = PaymentsJson();
  doc["faults"] = {
      {"partitions", {{{"between", {"hostile", "partner"}}, {"from_s", 1}, {"to_s", 2}}}}};
  ExpectError(doc, "/faults/partitions/0/between/0", "/payments/misuse_rate_per_s");
  doc["payments"]["misuse_rate_per_s"] = 1;
  EXPECT_EQ(ScenarioOf(doc).faults.partitions.size(), 1u);
  doc["payments"]["enabled"] = false;
  doc["payments"]["charges"] = 0;
  ExpectError(doc, "/faults/partitions/0/between/0", "/payments/enabled");
  // It is a workload: never crashed.
  doc = PaymentsJson();
  doc["payments"]["misuse_rate_per_s"] = 1;
  doc["faults"] = {{"crashes", {{{"node", "hostile"}, {"mean_interval_s", 10}}}}};
  ExpectError(doc, "/faults/crashes/0/node", "cannot crash");
}

}  // namespace payments

// ------------------------------------------------------------------------------------------------
// Fault plans: fault points and the explicit schedule.

namespace required_checks {

TEST(RequiredChecksTest, DefaultIsEmptyAndAListRoundTrips) {
  EXPECT_TRUE(ScenarioOf(MinimalJson()).checks.required.empty());
  json doc = MinimalJson();
  doc["checks"] = {{"required", {"movement_balanced", "holds_resolved"}}};
  const Scenario s = ScenarioOf(doc);
  EXPECT_EQ(s.checks.required, (std::vector<std::string>{"movement_balanced", "holds_resolved"}));
  EXPECT_EQ(ToJson(s)["checks"]["required"], doc["checks"]["required"]);
  EXPECT_EQ(ScenarioOf(ToJson(s)), s);
  doc["checks"] = json::object();
  EXPECT_TRUE(ScenarioOf(doc).checks.required.empty());
}

TEST(RequiredChecksTest, BadValuesNameTheField) {
  const auto with_checks = [](json checks) {
    json doc = MinimalJson();
    doc["checks"] = std::move(checks);
    return doc;
  };
  ExpectError(with_checks(json::array()), "/checks", "expected an object");
  ExpectError(with_checks({{"requird", json::array()}}), "/checks/requird",
              "did you mean \"required\"");
  ExpectError(with_checks({{"required", "queue_drained"}}), "/checks/required",
              "expected an array");
  ExpectError(with_checks({{"required", {"queue_drained", 3}}}), "/checks/required/1",
              "expected a string");
  ExpectError(with_checks({{"required", {"Queue Drained"}}}), "/checks/required/0",
              "\"Queue Drained\" is not a check name");
  ExpectError(with_checks({{"required", {""}}}), "/checks/required/0", "is not a check name");
  ExpectError(with_checks({{"required", {"queue_drained", "holds_resolved", "queue_drained"}}}),
              "/checks/required/2", "listed twice (also at /checks/required/0)");
}

TEST(RequiredChecksTest, EveryShippedScenarioLoadsAndRoundTrips) {
  for (const char* file :
       {"scenarios/quickstart.json", "scenarios/messaging.json", "scenarios/payments.json",
        "scenarios/chaos_wallet.json", "scenarios/chaos_payments.json",
        "scenarios/chaos_tcc_misuse.json", "scenarios/chaos_migration_online.json",
        "scenarios/chaos_migration_partial.json", "scenarios/migration_full.json",
        "scenarios/migration_partial.json", "scenarios/migration_online.json",
        "scenarios/migration_gradual.json"}) {
    auto loaded = LoadScenario(file);
    ASSERT_TRUE(std::holds_alternative<Scenario>(loaded))
        << FormatError(file, std::get<ScenarioError>(loaded));
    const Scenario& s = std::get<Scenario>(loaded);
    EXPECT_FALSE(s.checks.required.empty()) << file << " requires no check";
    EXPECT_EQ(ScenarioOf(ToJson(s)), s) << file;
  }
}

}  // namespace required_checks

namespace fault_plans {

TEST(FaultPlanTest, ShippedChaosScenariosLoadAndRoundTrip) {
  for (const char* file : {"scenarios/chaos_wallet.json", "scenarios/chaos_payments.json",
                           "scenarios/chaos_tcc_misuse.json"}) {
    auto loaded = LoadScenario(file);
    ASSERT_TRUE(std::holds_alternative<Scenario>(loaded))
        << FormatError(file, std::get<ScenarioError>(loaded));
    const Scenario& s = std::get<Scenario>(loaded);
    EXPECT_FALSE(s.faults.points.empty()) << file;
    EXPECT_EQ(ScenarioOf(ToJson(s)), s) << file;
  }
}

TEST(FaultPlanTest, EveryFieldIsReadWithItsDefaults) {
  json doc = MinimalJson();
  doc["faults"] = {
      {"points", {{{"point", "wallet.after_commit"}, {"probability", 0.1}}}},
      {"schedule",
       {{"crashes", {{{"node", "wallet"}, {"at_s", 3}}}},
        {"clock_steps", {{{"node", "wallet"}, {"at_s", 2}, {"step_ms", -1500}}}},
        {"rpc_faults",
         {{{"method", "wallet.commit"}, {"nth", 3}, {"fault", "drop_reply"}, {"reply", 2}}}}}}};
  const Scenario s = ScenarioOf(doc);
  ASSERT_EQ(s.faults.points.size(), 1u);
  EXPECT_EQ(s.faults.points[0].downtime_s_min, 1);
  EXPECT_EQ(s.faults.points[0].downtime_s_max, 5);
  EXPECT_TRUE(s.faults.points[0].hits.empty());
  ASSERT_EQ(s.faults.schedule.crashes.size(), 1u);
  EXPECT_EQ(s.faults.schedule.crashes[0].downtime_s, 5);
  ASSERT_EQ(s.faults.schedule.clock_steps.size(), 1u);
  EXPECT_EQ(s.faults.schedule.clock_steps[0].step_ms, -1500);
  ASSERT_EQ(s.faults.schedule.rpc_faults.size(), 1u);
  EXPECT_EQ(s.faults.schedule.rpc_faults[0].nth, 3);
  EXPECT_EQ(s.faults.schedule.rpc_faults[0].reply, 2);
  EXPECT_EQ(s.faults.schedule.rpc_faults[0].delay_ms, 100);
  EXPECT_EQ(ScenarioOf(ToJson(s)), s);
}

TEST(FaultPlanTest, BadValuesNameTheField) {
  const auto with_faults = [](json faults) {
    json doc = MinimalJson();
    doc["faults"] = std::move(faults);
    return doc;
  };
  ExpectError(with_faults({{"points", {{{"point", "wallet.after_comit"}, {"probability", 0.1}}}}}),
              "/faults/points/0/point",
              "unknown fault point \"wallet.after_comit\"; known points:");
  ExpectError(with_faults({{"points", {{{"point", "wallet.after_commit"}}}}}), "/faults/points/0",
              "arms nothing");
  ExpectError(with_faults({{"points", {{{"point", "wallet.after_commit"}, {"probability", 2}}}}}),
              "/faults/points/0/probability", "");
  ExpectError(with_faults({{"points", {{{"point", "wallet.after_commit"}, {"hits", {0}}}}}}),
              "/faults/points/0/hits/0", ">= 1");
  ExpectError(with_faults({{"points",
                            {{{"point", "wallet.after_commit"},
                              {"probability", 0.1},
                              {"downtime_s_min", 3},
                              {"downtime_s_max", 1}}}}}),
              "/faults/points/0/downtime_s_max", "downtime_s_min");
  ExpectError(with_faults({{"schedule", {{"crashes", {{{"node", "client"}, {"at_s", 1}}}}}}}),
              "/faults/schedule/crashes/0/node", "cannot crash");
  ExpectError(with_faults({{"schedule", {{"crashes", {{{"node", "wallet"}}}}}}}),
              "/faults/schedule/crashes/0/at_s", "required field missing");
  ExpectError(with_faults({{"schedule", {{"crashes", {{{"node", "broker"}, {"at_s", 1}}}}}}}),
              "/faults/schedule/crashes/0/node", "/messaging/enabled");
  ExpectError(
      with_faults(
          {{"schedule", {{"clock_steps", {{{"node", "wallet"}, {"at_s", 1}, {"step_ms", 0}}}}}}}),
      "/faults/schedule/clock_steps/0/step_ms", "must not be 0");
  ExpectError(
      with_faults(
          {{"schedule",
            {{"rpc_faults", {{{"method", "wallet.commit"}, {"nth", 1}, {"fault", "explode"}}}}}}}),
      "/faults/schedule/rpc_faults/0/fault", "unknown fault \"explode\"");
  ExpectError(
      with_faults(
          {{"schedule",
            {{"rpc_faults", {{{"method", "wallet.commit"}, {"nth", 0}, {"fault", "delay"}}}}}}}),
      "/faults/schedule/rpc_faults/0/nth", "");
  ExpectError(with_faults({{"schedule",
                            {{"rpc_faults", {{{"method", ""}, {"nth", 1}, {"fault", "delay"}}}}}}}),
              "/faults/schedule/rpc_faults/0/method", "must name an RPC method");
  ExpectError(with_faults({{"schedule", {{"crash", {}}}}}), "/faults/schedule/crash",
              "unknown field");
}

}  // namespace fault_plans

}  // namespace
}  // namespace paylab::scenarios

// The field reference in scenarios/README.md against the knob tables
// (knobs.h): every knob has a row in its section's table, with the same
// type, unit and default, and the table has no row the knobs lack. A row
// may document several knobs ("`a`, `b`" with defaults "`1`, `2`").
namespace paylab::scenarios::readme_reference {

struct Row {
  std::string type, unit, default_value;
};

std::string Trim(std::string s) {
  const auto b = s.find_first_not_of(' ');
  const auto e = s.find_last_not_of(' ');
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::vector<std::string> Cells(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  for (size_t i = 1; i < line.size(); ++i) {
    if (line[i] == '|' && line[i - 1] != '\\') {
      cells.push_back(Trim(cell));
      cell.clear();
    } else {
      cell += line[i];
    }
  }
  return cells;
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = s.find("`, `", start);
    if (comma == std::string::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, comma + 1 - start));
    start = comma + 3;
  }
}

std::string Unquote(const std::string& s) {
  return s.size() >= 2 && s.front() == '`' && s.back() == '`' ? s.substr(1, s.size() - 2) : s;
}

// The rows of the first table under "## `heading`" or "### `heading`".
std::map<std::string, Row> RowsUnder(const std::string& readme, const std::string& heading) {
  std::map<std::string, Row> rows;
  std::istringstream lines(readme);
  std::string line;
  bool in_section = false;
  std::vector<std::string> header;
  while (std::getline(lines, line)) {
    if (line.starts_with("#")) {
      if (in_section && !rows.empty()) break;
      in_section = line.ends_with("`" + heading + "`");
      header.clear();
      continue;
    }
    if (!in_section || !line.starts_with("|")) {
      if (in_section && !rows.empty()) break;
      continue;
    }
    const std::vector<std::string> cells = Cells(line);
    if (header.empty()) {
      header = cells;
      continue;
    }
    if (cells.empty() || cells[0].starts_with("---")) continue;
    const auto column = [&](const std::string& name) -> std::string {
      for (size_t i = 0; i < header.size() && i < cells.size(); ++i) {
        if (header[i] == name) return cells[i];
      }
      return "";
    };
    const std::vector<std::string> names = SplitList(cells[0]);
    const std::vector<std::string> defaults = SplitList(column("default"));
    for (size_t i = 0; i < names.size(); ++i) {
      rows[Unquote(names[i])] = Row{column("type"), column("unit"),
                                    defaults.size() == names.size() ? defaults[i] : column("default")};
    }
  }
  return rows;
}

TEST(KnobReference, ReadmeDocumentsEveryKnobAsTheTableDeclaresIt) {
  std::ifstream in(std::string(PAYLAB_SOURCE_DIR) + "/scenarios/README.md");
  std::stringstream text;
  text << in.rdbuf();
  const std::string readme = text.str();
  int compared = 0;
  for (const auto& [heading, knobs] : KnobReference()) {
    const std::map<std::string, Row> rows = RowsUnder(readme, heading);
    EXPECT_EQ(rows.size(), knobs.size()) << "README section `" << heading << "`";
    for (const KnobDoc& k : knobs) {
      const auto it = rows.find(k.name);
      if (it == rows.end()) {
        ADD_FAILURE() << "README section `" << heading << "` has no row for `" << k.name
                      << "`; add: | `" << k.name << "` | " << k.type << " | " << k.unit << " | "
                      << k.default_value << " | ... | " << k.doc << " |";
        continue;
      }
      ++compared;
      if (!k.type.empty()) {
        EXPECT_EQ(it->second.type, k.type) << heading << "." << k.name << ": type";
        EXPECT_EQ(it->second.default_value, k.default_value) << heading << "." << k.name
                                                             << ": default";
      }
      if (!it->second.unit.empty() || !k.unit.empty()) {
        EXPECT_EQ(it->second.unit, k.unit) << heading << "." << k.name << ": unit";
      }
    }
  }
  EXPECT_GT(compared, 100) << "the README's tables were not found";
}

}  // namespace paylab::scenarios::readme_reference
