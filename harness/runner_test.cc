// Tests of the runner's verdicts on required checks (/checks/required):
// a required check the run never evaluated fails a run that otherwise
// passed, with a violation naming it; a check nobody requires may stay
// unevaluated without failing anything; and a required check the run does
// not have at all is refused before the run (bad input, naming the field)
// and, asked of the runner anyway, is an internal error.
//
// The scenario is a tiny wallet: a few transfers, no faults, no broker.
#include "harness/runner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <variant>

#include "harness/schema/scenario.h"

namespace paylab::scenarios {
namespace {

Scenario Tiny(const std::string& mix) {
  const std::string text = R"({
    "name": "tiny",
    "duration_s": 5,
    "settle_s": 5,
    "account_types": [{"name": "MONEY", "debit_priority": 0}],
    "population": {"users": 4, "initial_balances": {"MONEY": 1000}},
    "workload": {"operations": 20, "rate_per_s": 10, "amount_max": 100, "mix": )" +
                           mix + R"(}
  })";
  auto parsed = ParseScenario(text);
  EXPECT_TRUE(std::holds_alternative<Scenario>(parsed))
      << std::get<ScenarioError>(parsed).pointer << ": " << std::get<ScenarioError>(parsed).reason;
  return std::get<Scenario>(parsed);
}

const reports::CheckResult* Find(const reports::RunResult& r, const std::string& name) {
  const auto it = std::find_if(r.checks.begin(), r.checks.end(),
                               [&name](const reports::CheckResult& c) { return c.name == name; });
  return it == r.checks.end() ? nullptr : &*it;
}

TEST(RequiredChecks, AnUnevaluatedCheckNobodyRequiresDoesNotFailTheRun) {
  const reports::RunResult r = RunScenario(Tiny(R"({"transfer": 1})"), RunOptions{});
  ASSERT_EQ(r.outcome, reports::RunOutcome::kPass) << r.internal_error;
  const reports::CheckResult* c = Find(r, "idempotency_mismatch_refused");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->evaluations, 0);
  EXPECT_FALSE(c->required);
  EXPECT_EQ(reports::VerdictOf(*c), reports::Verdict::kNotEvaluated);
}

TEST(RequiredChecks, ARequiredCheckNeverEvaluatedFailsTheRunNamingIt) {
  Scenario s = Tiny(R"({"transfer": 1})");
  s.checks.required = {"movement_balanced", "idempotency_mismatch_refused"};
  const reports::RunResult r = RunScenario(s, RunOptions{});
  ASSERT_EQ(r.outcome, reports::RunOutcome::kCheckFailed) << r.internal_error;
  ASSERT_TRUE(r.violation.has_value());
  EXPECT_EQ(r.violation->check, "idempotency_mismatch_refused");
  EXPECT_EQ(r.violation->detail, "required check idempotency_mismatch_refused was not evaluated");
  const reports::CheckResult* c = Find(r, "idempotency_mismatch_refused");
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->required);
  EXPECT_EQ(c->violations, 1);
  EXPECT_EQ(reports::VerdictOf(*c), reports::Verdict::kFail);
  const reports::CheckResult* balanced = Find(r, "movement_balanced");
  ASSERT_NE(balanced, nullptr);
  EXPECT_TRUE(balanced->required);
  EXPECT_EQ(reports::VerdictOf(*balanced), reports::Verdict::kOk);
}

TEST(RequiredChecks, ARequiredCheckTheRunEvaluatesPasses) {
  Scenario s = Tiny(R"({"transfer": 1, "misuse": 1})");
  s.checks.required = {"idempotency_mismatch_refused", "workload_completes"};
  const reports::RunResult r = RunScenario(s, RunOptions{});
  ASSERT_EQ(r.outcome, reports::RunOutcome::kPass)
      << r.internal_error << (r.violation ? r.violation->detail : "");
  EXPECT_GT(Find(r, "idempotency_mismatch_refused")->evaluations, 0);
}

TEST(RequiredChecks, ACheckTheRunDoesNotHaveIsRefusedNamingTheField) {
  Scenario s = Tiny(R"({"transfer": 1})");
  s.checks.required = {"movement_balanced", "queue_drained"};
  const std::optional<ScenarioError> e = RequiredCheckError(s);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->pointer, "/checks/required/1");
  EXPECT_NE(e->reason.find("this run has no check \"queue_drained\""), std::string::npos)
      << e->reason;
  EXPECT_NE(e->reason.find("movement_balanced"), std::string::npos) << e->reason;
  // The runner, asked anyway, reports an internal error and does not run.
  const reports::RunResult r = RunScenario(s, RunOptions{});
  EXPECT_EQ(r.outcome, reports::RunOutcome::kInternalError);
  EXPECT_NE(r.internal_error.find("/checks/required/1: this run has no check \"queue_drained\""),
            std::string::npos)
      << r.internal_error;
  EXPECT_EQ(r.kernel_events, 0u);
  s.checks.required = {"movement_balanced", "workload_completes"};
  EXPECT_FALSE(RequiredCheckError(s).has_value());
}

}  // namespace
}  // namespace paylab::scenarios
