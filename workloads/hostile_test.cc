// Tests of the hostile caller's judgement (workloads/hostile.h): the rule for
// one answer (a refusal, an exact replay, or anything), and the check
// misuse_refused_or_replayed over a simulated run against the external
// partner: clean when the partner keeps the contract, failing with both
// sides printed when it answers a key by the key alone (the planted defect
// partner_key_ignores_params). The wallet and point service are a node
// that never starts, so the calls to them are lost and judge nothing.
#include "workloads/hostile.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "sim/network.h"
#include "sim/node.h"
#include "sim/simulator.h"
#include "system/payments/partner.h"

namespace paylab::system {
namespace {

using sim::kSecond;

TEST(HostileJudgeTest, ARefusalIsAnythingButOkAndUnavailable) {
  const Expectation refusal{MustHear::kRefusal, {}};
  for (TccStatus s :
       {TccStatus::kInvalid, TccStatus::kCancelled, TccStatus::kExpired, TccStatus::kDeclined}) {
    EXPECT_EQ(JudgeMisuseAnswer(refusal, TccReply{s, 0, 0}), "") << TccStatusName(s);
  }
  const std::string d = JudgeMisuseAnswer(refusal, TccReply{TccStatus::kOk, 7, 30});
  EXPECT_EQ(d, "expected a refusal, heard ok (id 7, amount 30)");
  EXPECT_EQ(JudgeMisuseAnswer(Expectation{}, TccReply{TccStatus::kOk, 7, 30}), "");
}

TEST(HostileJudgeTest, AReplayIsTheFirstAnswerExactly) {
  const Expectation replay{MustHear::kReplay, TccReply{TccStatus::kOk, 7, 30}};
  EXPECT_EQ(JudgeMisuseAnswer(replay, TccReply{TccStatus::kOk, 7, 30}), "");
  EXPECT_EQ(JudgeMisuseAnswer(replay, TccReply{TccStatus::kOk, 8, 30}),
            "expected the first answer again, ok (id 7, amount 30), heard ok (id 8, amount 30)");
  EXPECT_EQ(
      JudgeMisuseAnswer(replay, TccReply{TccStatus::kInvalid, 0, 0}),
      "expected the first answer again, ok (id 7, amount 30), heard invalid (id 0, amount 0)");
}

class Dead : public sim::Service {
 public:
  asio::awaitable<void> Boot() override { co_return; }
};

// The hostile caller (node 0) against a partner (node 1); node 2 stands for
// the wallet and the point service and never starts.
struct World {
  explicit World(bool defect)
      : sim(11),
        net(sim,
            sim::LatencyModel{sim::LatencyDistribution::kConstant, 0, 0, sim::kMillisecond, 0}),
        board(sim, kHostileCheckNames, nullptr) {
    partner_config.users = 3;
    partner_config.initial_balance = 1000;
    partner_config.service_time_min = 0;
    partner_config.service_time_max = 0;
    partner_config.expiry_scan_interval = kSecond;
    partner_config.defect_key_ignores_params = defect;
    hostile_config.rate_per_s = 20;
    hostile_config.until = 10 * kSecond;
    hostile_config.wallet = 2;
    hostile_config.point = 2;
    hostile_config.partner = 1;
    hostile_config.users = 3;
    hostile_config.wallet_ttl_max = 60 * kSecond;
    hostile_config.point_ttl_max = 60 * kSecond;
    hostile_config.partner_ttl_max = partner_config.hold_ttl_max;
    net.AddNode(&hostile);
    net.AddNode(&partner);
    net.AddNode(&dead);
    partner.Start();
    hostile.Start();
    sim.Run(20 * kSecond);
  }
  ~World() {
    hostile.Shutdown();
    partner.Shutdown();
  }

  sim::Simulator sim;
  sim::Network net;
  CheckBoard board;
  PartnerConfig partner_config;
  HostileConfig hostile_config;
  HostileCounters counters;
  sim::Node hostile{sim, net, 0, "hostile", [this](sim::NodeContext& ctx) {
                      return std::make_unique<Hostile>(ctx, hostile_config, &counters, &board);
                    }};
  sim::Node partner{sim, net, 1, "partner", [this](sim::NodeContext& ctx) {
                      return std::make_unique<Partner>(ctx, partner_config);
                    }};
  sim::Node dead{sim, net, 2, "dead", [](sim::NodeContext&) { return std::make_unique<Dead>(); }};
};

TEST(HostileTest, APartnerThatKeepsTheContractPassesEveryJudgedAnswer) {
  World w(false);
  EXPECT_EQ(w.counters.running, 0);
  EXPECT_GT(w.counters.refusals_checked, 0);
  EXPECT_GT(w.counters.replays_checked, 0);
  EXPECT_EQ(w.counters.wrong, 0);
  EXPECT_FALSE(w.board.first_violation().has_value()) << w.board.first_violation()->detail;
  EXPECT_EQ(w.board.statuses().at(0).evaluations,
            w.counters.refusals_checked + w.counters.replays_checked);
}

TEST(HostileTest, CatchesAPartnerThatAnswersAKeyByTheKeyAlone) {
  World w(true);
  EXPECT_GT(w.counters.wrong, 0);
  ASSERT_TRUE(w.board.first_violation().has_value());
  const std::string& d = w.board.first_violation()->detail;
  EXPECT_NE(d.find("partner.try key hostile/"), std::string::npos) << d;
  EXPECT_NE(d.find("try_twice_different"), std::string::npos) << d;
  EXPECT_NE(d.find("expected a refusal, heard ok (id "), std::string::npos) << d;
}

}  // namespace
}  // namespace paylab::system
