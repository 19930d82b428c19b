// Tests of the payment service's recovery and of the two TCC hazards, on a
// small platform built by hand (wallet, broker, point service, payment
// service, partner, checkout) so that each test can place its own fault:
//  - each recovery layer resolves what the others cannot: a transient error
//    (the worker), a ten-minute outage of the wallet (the request queue), a
//    crash of the payment service that loses its in-memory queue (the
//    recovery batch);
//  - the timeout-after-success case: the upstream gave up on a create that
//    in fact succeeded, and voids the orphan when its notification arrives,
//    so the customer's funds are released;
//  - a Cancel that overtakes its Try at the partner: an empty rollback, then
//    the late Try refused, and no hold left.
#include "system/payments/payment_service.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/payment_platform.h"

namespace paylab {
namespace {

using namespace paylab::payment_testing;

constexpr int kPayments = 20;

// Layer 1. Lost replies for the first ten seconds: the worker's retries
// (milliseconds apart) finish every payment within the first minute, before
// the request queue's first backoff could have; without them (one attempt
// per step) the same faults send payments to the queue.
TEST(PaymentRecovery, WorkerResolvesATransientError) {
  for (int attempts : {5, 1}) {
    Platform p(3);
    p.payment_config.worker_attempts_max = attempts;
    p.payment_config.batch_interval = 0;
    p.Start();
    p.net.SetFaults(sim::NetworkFaults{.drop_reply = 0.3});
    p.sim.ScheduleAt(10 * kSecond, [&p] { p.net.SetFaults(sim::NetworkFaults{}); });
    for (int i = 0; i < kPayments; ++i) {
      p.Charge(i);
    }
    p.sim.Run(50 * kSecond);
    if (attempts == 5) {
      EXPECT_GT(p.counters.worker_retries, 0);
      EXPECT_EQ(p.counters.queued, 0);
      EXPECT_EQ(p.Authorized(), kPayments);
      EXPECT_EQ(p.Wip(), 0);
    } else {
      EXPECT_GT(p.counters.queued, 0);
      EXPECT_GT(p.Wip(), 0) << "without worker retries some payments wait for the queue";
      p.sim.Run(10 * kMinute);
      EXPECT_EQ(p.Wip(), 0);  // and the queue finishes them, minutes later
    }
  }
}

// Layer 2. The wallet is down for ten minutes: the worker gives up after
// seconds, the request queue retries at 1, 2, 4, 8... minutes and finishes
// every payment once the wallet is back. The batch is off.
TEST(PaymentRecovery, RequestQueueOutlastsATenMinuteWalletOutage) {
  Platform p(4);
  p.payment_config.batch_interval = 0;
  p.Start();
  p.sim.ScheduleAt(1 * kSecond, [&p] { p.node(kWallet).Crash(); });
  p.sim.ScheduleAt(1 * kSecond + 10 * kMinute, [&p] { p.node(kWallet).Restart(); });
  p.sim.ScheduleAt(2 * kSecond, [&p] {
    for (int i = 0; i < kPayments; ++i) {
      p.Charge(i);
    }
  });
  p.sim.Run(9 * kMinute);
  EXPECT_EQ(p.Wip(), kPayments) << "the worker alone cannot outlast the outage";
  EXPECT_GT(p.counters.queued, kPayments);
  p.sim.Run(40 * kMinute);
  EXPECT_EQ(p.Wip(), 0);
  EXPECT_EQ(p.Authorized(), kPayments);
  EXPECT_GT(p.counters.queue_resumed, kPayments);
  EXPECT_EQ(p.counters.batch_requeued, 0);
}

// Layer 3. The same outage, and the payment service crashes in the middle
// of it, losing its in-memory request queue: nothing resumes the payments
// until the hourly recovery batch re-queues them. Without the batch they
// stay WIP for good.
TEST(PaymentRecovery, RecoveryBatchResumesWhatACrashLostFromTheQueue) {
  for (bool batch : {true, false}) {
    Platform p(5);
    p.payment_config.batch_interval = batch ? 60 * kMinute : 0;
    p.Start();
    p.sim.ScheduleAt(1 * kSecond, [&p] { p.node(kWallet).Crash(); });
    p.sim.ScheduleAt(1 * kSecond + 10 * kMinute, [&p] { p.node(kWallet).Restart(); });
    p.sim.ScheduleAt(2 * kSecond, [&p] {
      for (int i = 0; i < kPayments; ++i) {
        p.Charge(i);
      }
    });
    p.sim.ScheduleAt(5 * kMinute, [&p] { p.node(kPayment).Crash(); });
    p.sim.ScheduleAt(5 * kMinute + 10 * kSecond, [&p] { p.node(kPayment).Restart(); });
    p.sim.Run(50 * kMinute);
    EXPECT_EQ(p.Wip(), kPayments) << "the queue was lost with the crash";
    p.sim.Run(3 * 60 * kMinute);
    if (batch) {
      EXPECT_EQ(p.Wip(), 0);
      EXPECT_EQ(p.Authorized(), kPayments);
      EXPECT_GE(p.counters.batch_requeued, kPayments);
    } else {
      EXPECT_EQ(p.Wip(), kPayments);
    }
  }
}

// The timeout-after-success case (seed 003). The checkout's timeout is
// shorter than a create takes, and it does not retry: it marks every order
// failed, while the payment service authorises them all. The completion
// notifications tell the checkout, which voids each orphan; the customers'
// funds come back and no hold is left.
TEST(PaymentEdgeCases, UpstreamVoidsTheOrphanOfATimedOutCreate) {
  sim::LatencyModel slow;
  slow.distribution = sim::LatencyDistribution::kConstant;
  slow.median = 20 * kMillisecond;
  Platform p(6, slow);
  p.checkout_config.orders = 10;
  p.checkout_config.rate_per_s = 1;
  p.checkout_config.timeout = 50 * kMillisecond;
  p.checkout_config.retry_count_max = 0;
  p.Start();
  p.sim.Run(1 * kMillisecond);  // the wallet boots and populates
  const int64_t money_before =
      p.node(kWallet).db().QueryInt("SELECT SUM(balance) FROM accounts WHERE user_id > 0");
  p.sim.Run(5 * kMinute);
  auto* checkout = dynamic_cast<system::Upstream*>(p.node(kCheckout).service());
  ASSERT_TRUE(checkout->done());
  EXPECT_EQ(p.checkout_counters.states[static_cast<size_t>(system::OrderState::kFailed)], 10);
  EXPECT_EQ(p.checkout_counters.orphans_voided, 10);
  EXPECT_EQ(p.Count("status = 3"), 10) << "every orphan voided";
  EXPECT_EQ(p.node(kWallet).db().QueryInt("SELECT COUNT(*) FROM holds WHERE state = 1"), 0);
  EXPECT_EQ(p.node(kWallet).db().QueryInt("SELECT SUM(balance) FROM accounts WHERE user_id > 0"),
            money_before);
}

// A Cancel overtaking its Try (seed 003's hazard). The partner is slow:
// an escrow's Try takes longer than the payment service waits, so the
// escrow, which prefers rollback, cancels at once. The Cancel is served
// before the Try it cancels: an empty rollback, remembered, so the late
// Try is refused and leaves no hold.
TEST(PaymentEdgeCases, CancelOvertakingItsTryLeavesNoHold) {
  Platform p(7);
  p.partner_config.service_time_min = 10 * kMillisecond;
  p.partner_config.service_time_max = 5 * kSecond;
  p.payment_config.partner_timeout = 1 * kSecond;
  p.payment_config.worker_attempts_max = 1;
  p.Start();
  for (int i = 0; i < kPayments; ++i) {
    system::CreatePaymentRequest r;
    r.order_key = fmt::format("e-{}", i);
    r.flow = system::PaymentFlow::kEscrow;
    r.payer = 1 + i % Platform::kUsers;
    r.payee = 2 + i % (Platform::kUsers - 1);
    r.amount = 1000;
    r.partner_amount = 200;
    p.driver().Submit(kPayment, r);
  }
  // Long enough for the request queue to retry the slow partner's Cancels.
  p.sim.Run(4 * 60 * kMinute);
  sim::Database& partner = p.node(kPartner).db();
  // Every escrow that timed out at the partner was rolled back; some of
  // those Cancels overtook their Tries.
  const int64_t overtaken = p.partner_counters.late_tries_refused;
  EXPECT_GT(overtaken, 0);
  {
    sim::Statement s(p.node(kPayment).db(),
                     "SELECT id, status, resource_status, request, phase, rollback_phase, reason "
                     "FROM payments WHERE resource_status = 0");
    while (s.Step()) {
      ADD_FAILURE() << "WIP payment " << s.Int(0) << " status " << s.Int(1) << " request "
                    << s.Int(3) << " phase " << s.Int(4) << " rollback " << s.Int(5) << " "
                    << s.Text(6);
    }
  }
  // The failed escrows hold nothing at the partner; the authorised ones do.
  const int64_t failed = p.Count("status = 4");
  EXPECT_GT(failed, 0);
  EXPECT_EQ(partner.QueryInt("SELECT COUNT(*) FROM holds WHERE state = 1"), p.Count("status = 1"));
}

}  // namespace
}  // namespace paylab
