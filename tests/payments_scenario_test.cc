// End-to-end tests of payments: the shipped payments scenario — charges,
// escrows and P2P transfers funded by points, the wallet and the partner,
// with lost replies, duplicate requests and deliveries, and crashes of the
// payment, wallet, point and broker nodes — passes every check and shows its
// figures; a smaller run replays to the same trace hash; and the payment
// checks are listed and evaluated. A hostile caller misuses every TCC API
// (scenarios/chaos_tcc_misuse.json, one seed), and every answer keeps the
// contract.
//
// Under the sanitizers (PAYLAB_SANITIZED) the shipped scenario runs with a
// tenth of its orders, to keep CI within its budget; the normal build runs it
// whole.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <variant>

#include "reports/report.h"
#include "harness/runner.h"
#include "harness/schema/scenario.h"
#include "load_scenario.h"

namespace paylab {
namespace {

scenarios::Scenario Payments() { return testing_scenarios::LoadOrFail("scenarios/payments.json"); }

// A part of the orders and of the safety phase: the same mix and faults.
scenarios::Scenario Smaller(scenarios::Scenario s, int divide) {
  s.payments.charges /= divide;
  s.payments.escrows /= divide;
  s.duration_s /= divide;
  s.workload.operations /= divide;
  s.payments.assignment_redrive_at_s /= divide;
  return s;
}

std::map<std::string, int64_t> AsMap(const std::vector<std::pair<std::string, int64_t>>& v) {
  return {v.begin(), v.end()};
}

std::string Why(const reports::RunResult& r) {
  return r.violation ? r.violation->check + ": " + r.violation->detail : r.internal_error;
}

// One integer a query reads from an exported database file (-1: no answer).
int64_t CountIn(const std::filesystem::path& file, const char* sql) {
  sqlite3* db = nullptr;
  int64_t n = -1;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* q = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &q, nullptr) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW) {
      n = sqlite3_column_int64(q, 0);
    }
    sqlite3_finalize(q);
  }
  sqlite3_close(db);
  return n;
}

#ifdef PAYLAB_SANITIZED
constexpr int kDivide = 10;
constexpr int kDivideReplay = 40;
#else
constexpr int kDivide = 1;
constexpr int kDivideReplay = 20;
#endif

// /payments/topic_partitions reaches the broker: the payment events land in
// exactly that many partitions, and the run still passes.
TEST(Payments, TopicPartitionsSetThePaymentTopicsPartitions) {
  scenarios::Scenario s = Smaller(Payments(), 40);
  s.payments.topic_partitions = 2;
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("paylab_topic_partitions_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  scenarios::RunOptions o;
  o.seed = 5;
  o.out_dir = dir.string();
  const reports::RunResult r = scenarios::RunScenario(s, o);
  EXPECT_EQ(r.outcome, reports::RunOutcome::kPass) << Why(r);
  EXPECT_EQ(CountIn(dir / "broker.db",
                    "SELECT COUNT(DISTINCT partition) FROM messages WHERE topic = 'payment.events'"),
            2);
  EXPECT_EQ(CountIn(dir / "broker.db",
                    "SELECT COUNT(*) FROM messages WHERE topic = 'payment.events' AND partition >= 2"),
            0);
  std::filesystem::remove_all(dir);
}

TEST(Payments, ShippedScenarioPassesUnderFaultsAndShowsItsFigures) {
  scenarios::RunOptions o;
  o.seed = 1;
  o.scenario_file = "scenarios/payments.json";
  const reports::RunResult r = scenarios::RunScenario(Smaller(Payments(), kDivide), o);
  ASSERT_EQ(r.outcome, reports::RunOutcome::kPass) << Why(r);
  const auto p = AsMap(r.payments);
  const auto count = [&](const char* flow) {
    int64_t n = 0;
    for (const char* status : {"authorized", "captured", "voided", "failed"}) {
      n += p.at(std::string(flow) + "." + status);
    }
    return n;
  };
  // At least 20,000 charges and escrows (a tenth under the sanitizers),
  // most of them funded by points and the wallet together.
  // (The smaller run draws its P2P share at random: allow a tenth less.)
  EXPECT_GE(count("charge") + count("escrow"), kDivide == 1 ? 20000 : 20000 / kDivide * 9 / 10);
  EXPECT_GE(p.at("funded_by_points_and_wallet"), 10000 / kDivide);
  EXPECT_GT(p.at("funded_by_partner"), 0);
  EXPECT_GT(p.at("charge.captured"), 0);
  EXPECT_GT(p.at("escrow.captured"), 0);
  EXPECT_GT(p.at("p2p.captured"), 0);
  EXPECT_GT(p.at("charge.voided") + p.at("escrow.voided"), 0);
  // Every recovery layer had work to do, and orphans were voided.
  EXPECT_GT(p.at("worker_retries"), 0);
  if (kDivide == 1) {
    EXPECT_GT(p.at("queued"), 0);  // a short run may see no outage long enough
  }
  EXPECT_GT(p.at("checkout.orphans_voided") + p.at("marketplace.orphans_voided"), 0);
  EXPECT_EQ(p.at("checkout.orders_pending") + p.at("marketplace.orders_pending"), 0);
  EXPECT_EQ(p.at("checkout.orders_authorized") + p.at("marketplace.orders_authorized"), 0);
  // Point assignment: grants settled, poison dead-lettered and redriven.
  EXPECT_GT(p.at("points.grants_confirmed"), 0);
  EXPECT_GT(p.at("points.grants_revoked"), 0);
  EXPECT_GT(p.at("points.apply_failures"), 0);
  EXPECT_GT(p.at("points.redriven"), 0);
  // Faults: at least 2% of replies dropped while faults are on, duplicate
  // deliveries, and crashes of the payment, wallet, point and broker nodes.
  const auto f = AsMap(r.faults);
  EXPECT_GE(static_cast<double>(f.at("drop_reply_safety")) /
                static_cast<double>(f.at("rpc_calls_safety")),
            0.02);
  EXPECT_GT(f.at("duplicate_request"), 0);
  EXPECT_GT(AsMap(r.messaging).at("redelivered"), 0);
  for (const char* node : {"crash.payment", "crash.wallet", "crash.point", "crash.broker"}) {
    // A short run's safety phase may end before a node's first crash.
    EXPECT_GE(f.at(node), kDivide == 1 ? 1 : 0) << node;
  }
  EXPECT_GE(f.at("crash"), 1);
  std::map<std::string, int64_t> evaluated;
  for (const auto& c : r.checks) {
    EXPECT_EQ(c.violations, 0) << c.name;
    evaluated[c.name] = c.evaluations;
  }
  for (const char* check :
       {"payment_journal_balanced", "payment_funded_exactly", "payment_not_stuck",
        "captured_equals_sales_credit", "clearing_pairs_net_zero", "upstream_agrees",
        "grants_settled", "queue_drained", "dead_letters_are_poison", "ids_exclusive",
        "point_journal_balanced", "point_not_spent_after_expiry", "point_no_hold_left",
        "partner_no_hold_left", "wallet_no_hold_left"}) {
    ASSERT_TRUE(evaluated.contains(check)) << check;
    EXPECT_GT(evaluated.at(check), 0) << check;
  }
}

// The hostile caller (workloads/hostile.h) of scenarios/chaos_tcc_misuse.json
// misuses the TCC API of the wallet, the point service and the partner in
// every way it knows, each way against each participant; the participants'
// reference models predict every answer, the caller finds every answer the
// contract decides a refusal or an exact replay (the run passes, each check
// having judged), and it records every answer it heard in hostile.db.
TEST(Payments, HostileMisuseOfEveryTccApiIsRefusedOrReplayed) {
  auto loaded = scenarios::LoadScenario("scenarios/chaos_tcc_misuse.json");
  ASSERT_TRUE(std::holds_alternative<scenarios::Scenario>(loaded));
  const scenarios::Scenario s = std::get<scenarios::Scenario>(loaded);
  ASSERT_GT(s.payments.misuse_rate_per_s, 0);
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("paylab_misuse_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  scenarios::RunOptions o;
  o.seed = 1;
  o.out_dir = dir.string();
  const reports::RunResult r = scenarios::RunScenario(s, o);
  ASSERT_EQ(r.outcome, reports::RunOutcome::kPass) << Why(r);
  const auto p = AsMap(r.payments);
  for (const char* kind :
       {"confirm_before_try", "cancel_then_try", "try_twice_same", "try_twice_different",
        "confirm_after_cancel", "cancel_after_confirm", "double_confirm", "confirm_after_expiry",
        "range", "unknown_user", "bad_amount", "ttl_too_long"}) {
    // Sequence n misuses participant n % 3: three of a kind meet all three.
    EXPECT_GE(p.at(std::string("misuse.") + kind), 3) << kind;
  }
  for (const char* to :
       {"misuse.calls_to_wallet", "misuse.calls_to_point", "misuse.calls_to_partner"}) {
    EXPECT_GT(p.at(to), 0) << to;
  }
  EXPECT_GT(p.at("misuse.refused"), 0);
  EXPECT_GT(p.at("misuse.accepted"), 0);
  EXPECT_EQ(p.at("misuse.calls"), p.at("misuse.accepted") + p.at("misuse.refused") +
                                      p.at("misuse.unavailable") + p.at("misuse.lost"));
  EXPECT_GT(p.at("misuse.refusals_checked"), 0);
  EXPECT_GT(p.at("misuse.replays_checked"), 0);
  EXPECT_EQ(p.at("misuse.wrong"), 0);
  std::map<std::string, int64_t> evaluated;
  for (const auto& c : r.checks) {
    evaluated[c.name] = c.evaluations;
  }
  for (const char* check : {"wallet_model_agrees", "point_model_agrees", "partner_model_agrees",
                            "misuse_refused_or_replayed", "clearing_pairs_net_zero"}) {
    EXPECT_GT(evaluated[check], 0) << check;
  }
  EXPECT_EQ(evaluated["misuse_refused_or_replayed"],
            p.at("misuse.refusals_checked") + p.at("misuse.replays_checked"));
  const auto m = AsMap(r.models);
  EXPECT_GT(m.at("partner.requests"), 0);
  EXPECT_GT(m.at("partner.refusals"), 0);
  // Every answer heard is in hostile.db; the partner kept the hostile keys.
  EXPECT_EQ(CountIn(dir / "hostile.db", "SELECT COUNT(*) FROM answers"),
            p.at("misuse.calls") - p.at("misuse.lost"));
  EXPECT_GT(CountIn(dir / "partner.db", "SELECT COUNT(*) FROM holds WHERE key LIKE 'hostile/%'"),
            0);
  std::filesystem::remove_all(dir);
}

TEST(Payments, SameSeedSameTraceHash) {
  const scenarios::Scenario s = Smaller(Payments(), kDivideReplay);
  scenarios::RunOptions o;
  o.seed = 9;
  const reports::RunResult a = scenarios::RunScenario(s, o);
  const reports::RunResult b = scenarios::RunScenario(s, o);
  ASSERT_EQ(a.outcome, reports::RunOutcome::kPass) << Why(a);
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.trace_events, b.trace_events);
  o.seed = 10;
  const reports::RunResult c = scenarios::RunScenario(s, o);
  ASSERT_EQ(c.outcome, reports::RunOutcome::kPass) << Why(c);
  EXPECT_NE(a.trace_hash, c.trace_hash);
}

}  // namespace
}  // namespace paylab
