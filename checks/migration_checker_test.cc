// Unit tests for shopper_misuse_refused (checks/migration_checker.h): the answers a
// misuse of the migration's APIs may get. A replayed Prepare must answer
// what it answered; the other misuses must be refused; an unserved request
// proves nothing. Each wrong answer fails with the expected and the actual
// answer side by side.
#include "checks/migration_checker.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sim/simulator.h"

namespace paylab::system {
namespace {

MigReply Reply(MigStatus s, uint64_t id = 0, int64_t amount = 0) {
  MigReply r;
  r.status = s;
  r.id = id;
  r.amount = amount;
  return r;
}

struct Judged {
  sim::Simulator sim{1};
  std::vector<std::string> violations;
  MigrationChecker checker{sim, [this](const Violation& v) { violations.push_back(v.detail); }};

  const CheckStatus& Misuse() const {
    for (const CheckStatus& c : checker.statuses()) {
      if (c.name == "shopper_misuse_refused") {
        return c;
      }
    }
    ADD_FAILURE() << "no check misuse_refused";
    return checker.statuses().front();
  }
};

ShopMisuseAnswer Misuse(ShopMisuse kind, MigReply first, MigReply answer) {
  return ShopMisuseAnswer{
      .kind = kind, .key = "op/7", .new_api = true, .first = first, .answer = answer};
}

TEST(ShopperMisuseRefused, AReplayAnsweringWhatItAnsweredAndRefusalsPass) {
  Judged j;
  const MigReply prepared = Reply(MigStatus::kOk, 41, 500);
  j.checker.OnMisuse(Misuse(ShopMisuse::kReplayPrepare, prepared, prepared));
  j.checker.OnMisuse(Misuse(ShopMisuse::kReusedKey, prepared, Reply(MigStatus::kInvalid, 41, 500)));
  j.checker.OnMisuse(
      Misuse(ShopMisuse::kCommitRolledBack, Reply(MigStatus::kOk), Reply(MigStatus::kInvalid)));
  j.checker.OnMisuse(
      Misuse(ShopMisuse::kRollbackCommitted, Reply(MigStatus::kOk), Reply(MigStatus::kInvalid)));
  j.checker.OnMisuse(
      Misuse(ShopMisuse::kCommitUnknown, Reply(MigStatus::kOk), Reply(MigStatus::kUnknown)));
  EXPECT_TRUE(j.violations.empty());
  EXPECT_EQ(j.Misuse().evaluations, 5);
}

TEST(ShopperMisuseRefused, AnUnservedRequestIsNotEvaluated) {
  Judged j;
  j.checker.OnMisuse(Misuse(ShopMisuse::kRollbackCommitted, Reply(MigStatus::kOk),
                            Reply(MigStatus::kUnavailable)));
  j.checker.OnMisuse(Misuse(ShopMisuse::kReplayPrepare, Reply(MigStatus::kOk, 41, 500),
                            Reply(MigStatus::kMaintenance)));
  EXPECT_TRUE(j.violations.empty());
  EXPECT_EQ(j.Misuse().evaluations, 0);
}

TEST(ShopperMisuseRefused, AReplayAnsweredOtherwiseFailsWithBothAnswers) {
  Judged j;
  j.checker.OnMisuse(Misuse(ShopMisuse::kReplayPrepare, Reply(MigStatus::kOk, 41, 500),
                            Reply(MigStatus::kInvalid, 41, 500)));
  ASSERT_EQ(j.violations.size(), 1u);
  EXPECT_NE(j.violations[0].find("expected the first answer, ok (id 41, amount 500)"),
            std::string::npos)
      << j.violations[0];
  EXPECT_NE(j.violations[0].find("answered invalid (id 41, amount 500)"), std::string::npos)
      << j.violations[0];
}

TEST(ShopperMisuseRefused, AnAcceptedContradictionFails) {
  for (ShopMisuse kind : {ShopMisuse::kReusedKey, ShopMisuse::kCommitRolledBack,
                          ShopMisuse::kRollbackCommitted, ShopMisuse::kCommitUnknown}) {
    Judged j;
    j.checker.OnMisuse(Misuse(kind, Reply(MigStatus::kOk, 41, 500), Reply(MigStatus::kOk)));
    ASSERT_EQ(j.violations.size(), 1u) << ShopMisuseName(kind);
    EXPECT_NE(j.violations[0].find(std::string(ShopMisuseName(kind)) +
                                   " with key op/7 through "
                                   "the new API: expected a refusal, answered ok"),
              std::string::npos)
        << j.violations[0];
  }
}

}  // namespace
}  // namespace paylab::system
