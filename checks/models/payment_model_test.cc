// Tests of the payment service's reference model (checks/models/payment_model.h),
// from seed 004's examples, against the real payment service on the
// hand-built platform of tests/payment_platform.h (wallet, point service,
// partner, broker, payment service, a checkout upstream) with its audit view
// on.
//
// Seed 004, a merchant charge: CreateCharge holds the customer's balance
// (authorized, sales not yet confirmed); CaptureCharge confirms the amount
// and credits the merchant's sales; clearing computes the fee and settles
// the sales. An escrow: CreateEscrow takes the buyer's payment, CaptureEscrow
// pays the seller. Seed 003: each API is idempotent. Each test drives the
// service through such an example, asserts the seed's figures (points first,
// the wallet the rest; the fee once per clearing, rounded down), and checks
// that the model, fed every fact, agrees at every step and at the end. Then
// the model must catch what a wrong service would report: a capture
// crediting the wrong merchant, a fee rounded up (the catalogue's defect),
// a void of a captured payment accepted; each printed with both sides. Last,
// an upstream that misuses the API at every finished order: every answer is
// the one the model predicts, and the real orders end as they would.
#include "checks/models/payment_model.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "checks/models/model_feed.h"

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "checks/models/payment_auditor.h"
#include "sim/context.h"
#include "system/payments/payment_service.h"
#include "tests/payment_platform.h"

namespace paylab::models {
namespace {

namespace asio = boost::asio;
using payment_testing::kMinute;
using payment_testing::kPayment;
using payment_testing::Platform;
using sim::kSecond;
using system::CreatePaymentRequest;
using system::PayJournalRow;
using system::PaymentApplied;
using system::PaymentFactKind;
using system::PaymentReply;
using system::PaymentReplyStatus;
using system::PaymentRow;
using system::PaymentService;

constexpr int64_t kFeeBp = 250;

// Feeds every fact to a model; `tamper` may change a copy of a fact before
// the model sees it (a wrong service, simulated). Stops at the first
// difference, as the auditor does.
class ModelFeed : public system::PaymentObserver,
                  public ModelFeedBase<PaymentModel, PaymentApplied> {
 public:
  ModelFeed() : ModelFeedBase(PaymentModel(PaymentRules{kFeeBp})) {}
  void OnPaymentApplied(const PaymentApplied& a) override {
    Feed(a, static_cast<bool>(tamper), [&] {
      PaymentApplied copy = a;
      PaymentRow row = a.row == nullptr ? PaymentRow{} : *a.row;
      std::vector<PayJournalRow> journal(a.journal.begin(), a.journal.end());
      copy.row = a.row == nullptr ? nullptr : &row;
      tamper(copy, row, journal);
      copy.journal = journal;
      return model.Check(copy);
    });
  }

  std::function<void(PaymentApplied&, PaymentRow&, std::vector<PayJournalRow>&)> tamper;
};

// Sends single calls to the payment service and keeps each one's answer.
class Caller : public sim::Service {
 public:
  explicit Caller(sim::NodeContext& ctx) : ctx_(ctx) {}
  asio::awaitable<void> Boot() override { co_return; }

  void Create(CreatePaymentRequest r) {
    const std::string tag = "create/" + r.order_key;
    ctx_.Spawn(Send(tag, "payment.create", [r](PaymentService& p) { return p.Create(r); }));
  }
  void Capture(std::string key) {
    ctx_.Spawn(Send("capture/" + key, "payment.capture",
                    [key](PaymentService& p) { return p.Capture(key); }));
  }
  void Void(std::string key) {
    ctx_.Spawn(
        Send("void/" + key, "payment.void", [key](PaymentService& p) { return p.Void(key); }));
  }

  std::map<std::string, PaymentReply> replies;

 private:
  template <class F>
  asio::awaitable<void> Send(std::string tag, std::string method, F f) {
    auto r = co_await ctx_.Call<PaymentService>(kPayment, method, 5 * kSecond, f);
    if (r.ok()) {
      replies[tag] = r.value;
    }
  }
  sim::NodeContext& ctx_;
};

CreatePaymentRequest Charge(std::string key, int64_t payer, int64_t merchant, int64_t amount) {
  return CreatePaymentRequest{
      std::move(key), system::PaymentFlow::kCharge, payer, merchant, amount, 0};
}

class PaymentModelTest : public testing::Test {
 protected:
  explicit PaymentModelTest(uint64_t seed = 11) : p_(seed) {
    p_.payment_config.audit = &feed_;
    p_.payment_config.fee_bp = kFeeBp;
    p_.payment_config.clearing_interval = 10 * kSecond;
  }

  // Starts the platform and the caller node.
  void Start() {
    p_.Start();
    p_.Add("caller", [](sim::NodeContext& ctx) { return std::make_unique<Caller>(ctx); });
    p_.nodes.back()->Start();
  }
  Caller& caller() { return *dynamic_cast<Caller*>(p_.nodes.back()->service()); }
  void Wait(sim::Duration d) { p_.sim.Run(p_.sim.Now() + d); }
  const PaymentReply& Reply(const std::string& tag) {
    static const PaymentReply kNone{PaymentReplyStatus::kRefused, 0,
                                    system::PaymentStatus::kCreated, false, "no answer"};
    const auto it = caller().replies.find(tag);
    return it == caller().replies.end() ? kNone : it->second;
  }
  int64_t Sql(const std::string& q) { return p_.node(kPayment).db().QueryInt(q); }
  int64_t Balance(int64_t owner, system::PayAccount a) {
    return Sql(
        fmt::format("SELECT COALESCE(SUM(balance), 0) FROM pay_accounts WHERE owner = {} "
                    "AND account = {}",
                    owner, static_cast<int>(a)));
  }
  // The seed's charge (merchant 3, 1010 and 1234 yen: a fee of 56.1 taken
  // as 56) and a voided one, with the misuses seed 003's idempotency must
  // absorb.
  void RunChargeExample() {
    caller().Create(Charge("c-1", 1, 3, 1010));
    caller().Create(Charge("c-2", 2, 3, 1234));
    caller().Create(Charge("c-3", 4, 3, 700));
    Wait(3 * kSecond);
    caller().Capture("c-1");
    caller().Capture("c-2");
    caller().Void("c-3");
    Wait(3 * kSecond);
    caller().Capture("c-1");                     // again: the same answer
    caller().Void("c-2");                        // a captured payment cannot be voided
    caller().Capture("c-3");                     // nor a voided one captured
    caller().Create(Charge("c-1", 1, 3, 1011));  // the key, another amount
    caller().Capture("nobody");
    Wait(20 * kSecond);
  }

  Platform p_;
  ModelFeed feed_;
};

TEST_F(PaymentModelTest, SeedChargeExampleAgreesStepByStep) {
  Start();
  RunChargeExample();
  EXPECT_EQ(feed_.first_diff, "");
  EXPECT_GT(feed_.checked, 15);
  using system::PaymentStatus;
  EXPECT_EQ(Reply("capture/c-1").payment_status, PaymentStatus::kCaptured);
  EXPECT_EQ(Reply("void/c-2").status, PaymentReplyStatus::kRefused);
  EXPECT_EQ(Reply("capture/c-3").status, PaymentReplyStatus::kRefused);
  EXPECT_EQ(Reply("create/c-1").status, PaymentReplyStatus::kRefused);  // the later answer
  EXPECT_EQ(Reply("capture/nobody").status, PaymentReplyStatus::kRefused);
  // Points first (300 each), the wallet the rest.
  EXPECT_EQ(Sql("SELECT point_amount FROM payments WHERE order_key = 'c-1'"), 300);
  EXPECT_EQ(Sql("SELECT wallet_amount FROM payments WHERE order_key = 'c-1'"), 710);
  // One clearing: 2244 of sales, a fee of 56 (56.1 rounded down).
  using system::PayAccount;
  EXPECT_EQ(Balance(3, PayAccount::kUnsettled), 0);
  EXPECT_EQ(Balance(3, PayAccount::kSettled), 2244 - 56);
  EXPECT_EQ(Balance(0, PayAccount::kFees), 56);
  const PaymentModelStats& st = feed_.model.stats();
  EXPECT_EQ(st.authorized, 3);
  EXPECT_EQ(st.captured, 2);
  EXPECT_EQ(st.voided, 1);
  EXPECT_EQ(st.conflicts, 1);
  EXPECT_EQ(st.unknown_keys, 1);
  EXPECT_EQ(st.fees, 56);
  EXPECT_EQ(st.credits_cleared, 2);
}

TEST_F(PaymentModelTest, SeedEscrowExamplePaysTheSellerAndTheAuditorAgreesAtTheEnd) {
  sim::Simulator& s = p_.sim;
  PaymentAuditor auditor(s, PaymentRules{kFeeBp}, [](const system::Violation&) {});
  p_.payment_config.audit = &auditor;
  Start();
  // The buyer (user 5) pays 1500 for seller 6's item, 200 of it in partner
  // points; the escrow is captured to the seller.
  caller().Create(CreatePaymentRequest{"e-1", system::PaymentFlow::kEscrow, 5, 6, 1500, 200});
  caller().Create(CreatePaymentRequest{"p-1", system::PaymentFlow::kP2p, 7, 8, 400, 0});
  Wait(5 * kSecond);
  caller().Capture("e-1");
  caller().Capture("p-1");  // a P2P transfer is captured when created
  caller().Void("p-1");
  Wait(20 * kSecond);
  EXPECT_EQ(Reply("capture/e-1").payment_status, system::PaymentStatus::kCaptured);
  EXPECT_EQ(Reply("capture/p-1").payment_status, system::PaymentStatus::kCaptured);
  EXPECT_EQ(Reply("void/p-1").status, PaymentReplyStatus::kRefused);
  auditor.CheckFinal(p_.node(kPayment).db());
  ASSERT_EQ(auditor.statuses().size(), 1U);
  EXPECT_EQ(auditor.statuses()[0].violations, 0) << auditor.first_violation()->detail;
  EXPECT_GT(auditor.statuses()[0].evaluations, 8);
  // The escrow's 1300 held by points and wallet, 200 by the partner; the
  // seller paid 1500 out of the wallet's clearing account.
  EXPECT_EQ(Sql("SELECT point_amount + wallet_amount FROM payments WHERE order_key = 'e-1'"), 1300);
}

TEST_F(PaymentModelTest, CatchesACaptureCreditingTheWrongMerchant) {
  feed_.tamper = [](PaymentApplied& a, PaymentRow&, std::vector<PayJournalRow>& journal) {
    if (a.kind != PaymentFactKind::kFinalized) {
      return;
    }
    for (PayJournalRow& j : journal) {
      if (j.account == system::PayAccount::kUnsettled) {
        j.owner += 1;  // merchant 4 instead of 3
      }
    }
  };
  Start();
  RunChargeExample();
  // Whichever capture finalizes first: its credit went to merchant 4, the
  // model says merchant 3.
  const std::string& diff = feed_.first_diff;
  const size_t says = diff.find("the model says");
  ASSERT_NE(says, std::string::npos) << diff;
  EXPECT_NE(diff.find("(4 unsettled sales: +"), std::string::npos) << diff;
  EXPECT_LT(diff.find("(4 unsettled sales: +"), says) << diff;
  EXPECT_NE(diff.find("(3 unsettled sales: +", says), std::string::npos) << diff;
}

TEST_F(PaymentModelTest, CatchesAFeeRoundedUp) {
  p_.payment_config.defect_fee_rounded_up = true;
  Start();
  RunChargeExample();
  // 2244 * 2.5 % = 56.1: the defect takes 57.
  EXPECT_NE(feed_.first_diff.find(
                "the clearing of merchant 3 moved (0 fees: +57), (3 unsettled "
                "sales: -2244), (3 settled sales: +2187) in the merchant ledger, the model "
                "says (0 "
                "fees: +56), (3 unsettled sales: -2244), (3 settled sales: "
                "+2188)"),
            std::string::npos)
      << feed_.first_diff;
}

TEST_F(PaymentModelTest, CatchesAVoidOfACapturedPaymentAccepted) {
  Start();
  caller().Create(Charge("c-1", 1, 3, 1010));
  Wait(3 * kSecond);
  caller().Capture("c-1");
  Wait(3 * kSecond);
  ASSERT_EQ(feed_.first_diff, "");
  // A service that accepts the void starts it on the captured payment.
  PaymentRow row;
  row.id = static_cast<uint64_t>(Sql("SELECT id FROM payments WHERE order_key = 'c-1'"));
  row.order_key = "c-1";
  row.status = system::PaymentStatus::kCaptured;
  row.resource_status = system::ResourceStatus::kWip;
  row.request = system::PaymentRequestKind::kVoid;
  const std::string started =
      feed_.model.Check(PaymentApplied{.kind = PaymentFactKind::kStarted, .row = &row});
  EXPECT_NE(started.find("a void was accepted on payment"), std::string::npos) << started;
  EXPECT_NE(started.find("(charge, captured wait), the model says only an authorized charge or "
                         "escrow at rest starts one"),
            std::string::npos)
      << started;
  // And one that answers the void as if it were accepted.
  PaymentReply accepted;
  accepted.payment_id = row.id;
  accepted.payment_status = system::PaymentStatus::kCaptured;
  const std::string answered = feed_.model.Check(PaymentApplied{.kind = PaymentFactKind::kAnswered,
                                                                .op = system::PaymentOp::kVoid,
                                                                .order_key = "c-1",
                                                                .reply = accepted});
  EXPECT_NE(answered.find(fmt::format("void of order c-1 answered ok: payment {} captured, the "
                                      "model says refused",
                                      row.id)),
            std::string::npos)
      << answered;
}

// An upstream misusing the API after every finished order: out-of-order,
// repeated and contradicting calls; the model predicts every answer, and
// the real orders are not disturbed.
TEST_F(PaymentModelTest, UpstreamMisuseIsAnsweredAsTheModelPredicts) {
  p_.checkout_config.orders = 40;
  p_.checkout_config.rate_per_s = 4;
  p_.checkout_config.void_ratio = 0.3;
  p_.checkout_config.capture_delay_min = kSecond;
  p_.checkout_config.capture_delay_max = 3 * kSecond;
  p_.checkout_config.misuse_ratio = 1;
  PaymentAuditor auditor(p_.sim, PaymentRules{kFeeBp}, [](const system::Violation&) {});
  p_.payment_config.audit = &auditor;
  Start();
  p_.sim.Run(5 * kMinute);
  const system::UpstreamCounters& c = p_.checkout_counters;
  EXPECT_EQ(c.finished, 40);
  EXPECT_GT(c.misuse_sent, 30);
  EXPECT_GT(c.misuse_refused, 10);
  EXPECT_GT(c.probes, 0);
  EXPECT_EQ(c.states[static_cast<size_t>(system::OrderState::kCaptured)] +
                c.states[static_cast<size_t>(system::OrderState::kVoided)] +
                c.states[static_cast<size_t>(system::OrderState::kDeclined)],
            40);
  auditor.CheckFinal(p_.node(kPayment).db());
  EXPECT_EQ(auditor.statuses()[0].violations, 0) << auditor.first_violation()->detail;
  const PaymentModelStats& st = auditor.model().stats();
  EXPECT_GT(st.conflicts, 0);
  EXPECT_GT(st.unknown_keys, 0);
  EXPECT_GT(st.answers, 100);
  // The probes' orders are in the upstream's table with their payments'
  // fates, like any other order.
  EXPECT_EQ(p_.node(payment_testing::kCheckout)
                .db()
                .QueryInt("SELECT COUNT(*) FROM orders WHERE key LIKE 'checkout-probe-%'"),
            c.probes);
}

}  // namespace
}  // namespace paylab::models
