// End-to-end tests of messaging: the shipped messaging scenario, with lost
// and duplicated requests and replies (so lost publish acks and offset
// commits), duplicate deliveries and crashes of the wallet, the broker and
// the mirror, passes every check and shows its figures; it replays to the
// same trace hash; and a consumer without its processed-event record is
// caught applying an event twice.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "reports/report.h"
#include "harness/runner.h"
#include "harness/schema/scenario.h"
#include "load_scenario.h"

namespace paylab {
namespace {

scenarios::Scenario Messaging() { return testing_scenarios::LoadOrFail("scenarios/messaging.json"); }

std::map<std::string, int64_t> AsMap(const std::vector<std::pair<std::string, int64_t>>& v) {
  return {v.begin(), v.end()};
}

TEST(Messaging, ShippedScenarioPassesUnderFaultsAndShowsItsFigures) {
  scenarios::RunOptions o;
  o.seed = 1;
  o.scenario_file = "scenarios/messaging.json";
  const reports::RunResult r = scenarios::RunScenario(Messaging(), o);
  ASSERT_EQ(r.outcome, reports::RunOutcome::kPass)
      << (r.violation ? r.violation->check + ": " + r.violation->detail : r.internal_error);
  const auto m = AsMap(r.messaging);
  for (const char* k :
       {"published", "published_twice", "delivered", "redelivered", "deduplicated", "applied",
        "queue_applied", "poison_injected", "dead_lettered", "redriven", "queue_depth"}) {
    EXPECT_TRUE(m.contains(k)) << k;
  }
  EXPECT_GT(m.at("published"), 8000);
  EXPECT_GT(m.at("published_twice"), 0);  // lost publish acks
  EXPECT_GT(m.at("redelivered"), 0);
  // At least 5% of deliveries are duplicates the consumer had to absorb.
  EXPECT_GE(static_cast<double>(m.at("deduplicated")) / static_cast<double>(m.at("delivered")),
            0.05);
  // Every poison message was dead-lettered, redriven, and dead-lettered again.
  EXPECT_GE(m.at("poison_injected"), 1);
  EXPECT_EQ(m.at("dead_lettered"), 2 * m.at("poison_injected"));
  EXPECT_EQ(m.at("redriven"), m.at("poison_injected"));
  EXPECT_EQ(m.at("queue_depth"), 0);
  const auto faults = AsMap(r.faults);
  EXPECT_GE(faults.at("crash"), 6);
  for (const char* node : {"crash.wallet", "crash.broker", "crash.mirror"}) {
    EXPECT_GE(faults.at(node), 1) << node;
  }
  bool saw_messaging_check = false;
  for (const auto& c : r.checks) {
    EXPECT_EQ(c.violations, 0) << c.name;
    EXPECT_GT(c.evaluations, 0) << c.name;
    saw_messaging_check |= c.name == "mirror_matches_wallet";
  }
  EXPECT_TRUE(saw_messaging_check);
}

TEST(Messaging, IdempotentProducerAppendsEveryEventOnce) {
  scenarios::Scenario s = Messaging();
  s.messaging.idempotent_producer = true;
  s.workload.operations = 3000;
  scenarios::RunOptions o;
  o.seed = 2;
  const reports::RunResult r = scenarios::RunScenario(s, o);
  ASSERT_EQ(r.outcome, reports::RunOutcome::kPass)
      << (r.violation ? r.violation->check + ": " + r.violation->detail : r.internal_error);
  const auto m = AsMap(r.messaging);
  EXPECT_EQ(m.at("published_twice"), 0);
  EXPECT_EQ(m.at("published"), r.movements);
}

TEST(Messaging, SameSeedSameTraceHash) {
  scenarios::Scenario s = Messaging();
  s.workload.operations = 2000;
  s.duration_s = 300;
  scenarios::RunOptions o;
  o.seed = 5;
  const reports::RunResult a = scenarios::RunScenario(s, o);
  const reports::RunResult b = scenarios::RunScenario(s, o);
  o.seed = 6;
  const reports::RunResult c = scenarios::RunScenario(s, o);
  ASSERT_EQ(a.outcome, reports::RunOutcome::kPass) << a.internal_error;
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_NE(a.trace_hash, c.trace_hash);
}

// Seed 1 of the messaging scenario with `defect` on.
reports::RunResult RunWithDefect(system::Defect defect) {
  scenarios::RunOptions o;
  o.seed = 1;
  o.scenario_file = "scenarios/messaging.json";
  o.defects.Add(defect);
  return scenarios::RunScenario(Messaging(), o);
}

TEST(Messaging, ConsumerWithoutProcessedRecordIsCaughtApplyingTwice) {
  const reports::RunResult r = RunWithDefect(system::Defect::kConsumerWithoutDedup);
  ASSERT_EQ(r.outcome, reports::RunOutcome::kCheckFailed) << r.internal_error;
  EXPECT_EQ(r.violation->check, "event_applied_once");
  EXPECT_NE(reports::ReplayCommand(r).find("--defect consumer_without_dedup"), std::string::npos);
}

TEST(Messaging, PublishingOutsideTheOutboxLosesEventsOnACrash) {
  const reports::RunResult r = RunWithDefect(system::Defect::kPublishOutsideOutbox);
  ASSERT_EQ(r.outcome, reports::RunOutcome::kCheckFailed) << r.internal_error;
  EXPECT_EQ(r.violation->check, "no_event_lost") << r.violation->detail;
}

TEST(Messaging, PoisonMessageWithoutADeadLetterQueueIsCaughtAsAStuckQueue) {
  scenarios::Scenario s = Messaging();
  s.messaging.dead_letter_queue = false;
  scenarios::RunOptions o;
  o.seed = 1;
  const reports::RunResult r = scenarios::RunScenario(s, o);
  ASSERT_EQ(r.outcome, reports::RunOutcome::kCheckFailed) << r.internal_error;
  EXPECT_EQ(r.violation->check, "queue_drained") << r.violation->detail;
  EXPECT_NE(r.violation->detail.find("no dead-letter queue"), std::string::npos);
}

}  // namespace
}  // namespace paylab
