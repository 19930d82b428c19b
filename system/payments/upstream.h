// An upstream service of the payment service (seed 003): the checkout
// (merchant charges) or the marketplace (escrows between buyer and seller,
// and P2P transfers). It keeps its own orders in its own database.
//
// Each order: the upstream writes it (pending), asks the payment service to
// create the payment with the order key as idempotency key, retrying a
// timeout or an answer still in progress with the same key up to
// retry_count_max times, then marks the order failed. An authorised order is
// captured (or, at void_ratio, voided) after a delay; the second phase is
// retried until the payment answers with a final state.
//
// Completion notifications reach it on its own queue. A notification that a
// payment was authorised for an order it does not know, or has marked
// failed, is the timeout-after-success case: the upstream voids that payment
// so the customer's funds are released. A P2P transfer cannot be voided: a
// notification that one the upstream gave up on was captured makes the
// upstream adopt the late success. A notification for an order still
// pending is left on the queue to come back later, when the order's fate is
// known. The upstream node is not crashed by the scenarios.
//
// Its database keeps the orders (`orders`: each order's final state and
// payment), every answer the payment service gave it (`answers`, see
// system/common/answer_log.h: per order key, ops create, capture, void and
// void_orphan; status ok or refused, answer_id the payment ID, `answer`
// the payment's status and whether a request was still in progress) and its
// configuration (`config`, see system/common/config_table.h; `name` is the prefix
// of its order keys).
//
// Misuse (a buggy or hostile upstream): after an order reaches its final
// state, at misuse_ratio, the upstream sends one call out of order,
// repeated or contradicting earlier ones, drawn from the stream "misuse"
// (nothing else reads it): a Create reusing a finished order's key with
// another amount; a Capture of a voided or declined order; a Void of a
// captured one; a Capture or Void of a key no order has
// ("<name>-unknown-<n>"); a repeated Capture of a captured order or Void of
// a voided one; or a probe: a fresh order "<name>-probe-<n>" (kept in
// `orders` like any other, outside the order counters) whose Create is
// chased by a Capture sent before the Create's answer, after which the probe
// asks until its Create has a final answer and captures it (so the early
// Capture, whatever it found, agrees with the probe's fate). Only finished
// orders (captured, voided, declined) and the upstream's own fresh keys are
// touched, so no real order's bookkeeping changes. Each misuse call is sent
// once (no retry) and its answer recorded with op "misuse" (params: the
// kind and the call); the payment service's reference model judges it.
#pragma once

#include <array>
#include <boost/asio.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sim/context.h"
#include "system/common/answer_log.h"
#include "system/payments/payment_service.h"
#include "system/payments/schema.h"
#include "system/points/payment_event.h"
#include "system/messaging/queue_consumer.h"

namespace paylab::system {

namespace asio = boost::asio;

struct UpstreamConfig {
  std::string name;  // the node name, and the prefix of its order keys
  sim::NodeId payment = 0;
  sim::NodeId broker = 0;
  std::string notify_queue;  // "" = no notifications
  int64_t orders = 0;
  double rate_per_s = 1;
  // Weights of the flows this upstream sends, by PaymentFlow - 1.
  std::array<double, 3> mix{1, 0, 0};
  int64_t users = 1;   // payers (and P2P payees) are users 1..users
  int64_t payees = 1;  // merchants or sellers 1..payees
  int64_t amount_min = 100;
  int64_t amount_max = 5000;
  // Escrows: the share that also pays with partner points, and how much.
  double partner_ratio = 0;
  int64_t partner_amount_max = 0;
  double void_ratio = 0.1;
  sim::Duration capture_delay_min = 1 * sim::kSecond;
  sim::Duration capture_delay_max = 30 * sim::kSecond;
  sim::Duration timeout = 2 * sim::kSecond;
  int retry_count_max = 4;
  sim::Duration retry_backoff = 200 * sim::kMillisecond;
  // How long a capture or void is retried before the upstream stops (a
  // bound every loop has; at quiescence an order stuck here is reported).
  sim::Duration second_phase_patience = 6 * 3600 * sim::kSecond;
  sim::Duration poll_interval = 200 * sim::kMillisecond;
  sim::Duration poll_interval_max = 1 * sim::kSecond;  // backoff while the queue is empty
  sim::Duration rpc_timeout = 300 * sim::kMillisecond;
  int64_t receive_max = 20;
  // Share of finished orders followed by one misuse call (see above).
  double misuse_ratio = 0;
  // TEST ONLY: ignore notifications, so orphans are never voided.
  bool defect_never_void_orphans = false;
};

struct UpstreamCounters {
  int64_t issued = 0;
  int64_t finished = 0;
  std::array<int64_t, kOrderStates> states{};  // final order states
  int64_t create_retries = 0;
  int64_t second_phase_retries = 0;
  int64_t notifications = 0;
  int64_t orphans_voided = 0;
  int64_t late_successes = 0;  // P2P transfers given up on, then found captured
  int64_t notifications_deferred = 0;
  int64_t poison = 0;
  int64_t misuse_sent = 0;      // misuse calls sent
  int64_t misuse_answered = 0;  // of which answered (the others timed out)
  int64_t misuse_refused = 0;   // of which refused
  int64_t probes = 0;           // probe orders (a Capture before the Create's answer)
};

class Upstream : public sim::Service {
 public:
  Upstream(sim::NodeContext& ctx, const UpstreamConfig& config, UpstreamCounters* counters);

  asio::awaitable<void> Boot() override;

  // Every order issued has reached a final state and no orphan void is
  // still running.
  bool done() const {
    return counters_.finished == config_.orders && voids_running_ == 0 && misuse_running_ == 0;
  }

 private:
  asio::awaitable<void> Arrivals();
  asio::awaitable<void> RunOrder(int64_t seq);
  // Asks until the payment is final (captured, voided or failed) or the
  // patience runs out. Returns the final status, or created if it ran out.
  // `op` names the request in the answer log (a literal).
  asio::awaitable<PaymentStatus> SecondPhase(std::string key, bool capture, std::string_view op);
  // Records one answer of the payment service to `what`.
  void RecordAnswer(const AnswerRecord& what, const PaymentReply& reply);
  void StoreSettings();
  asio::awaitable<void> VoidOrphan(std::string key);
  // The notification queue's handler: decodes, then OnNotification.
  bool OnMessage(const QueueMessage& m);
  // Returns whether the message is handled (delete it) or must come back.
  bool OnNotification(const PaymentEvent& e);
  void SetState(std::string_view key, OrderState s, uint64_t payment_id);
  std::optional<OrderState> StateOf(std::string_view key);
  PaymentFlow DrawFlow();

  // --- misuse -------------------------------------------------------------
  enum class MisuseCall : uint8_t { kCreate, kCapture, kVoid };
  // Remembers a finished order and, at misuse_ratio, starts one misuse.
  void AfterOrder(const CreatePaymentRequest& req, OrderState state);
  asio::awaitable<void> Misuse();
  // Sends one misuse call once and counts and records its answer.
  asio::awaitable<void> SendMisuse(std::string_view kind, MisuseCall call,
                                   CreatePaymentRequest req);
  asio::awaitable<void> Probe();
  // A finished order in `states`, drawn from the misuse stream; null: none.
  const CreatePaymentRequest* PickFinished(std::initializer_list<OrderState> states);

  struct Finished {
    CreatePaymentRequest req;
    OrderState state = OrderState::kFailed;
  };

  sim::NodeContext& ctx_;
  const UpstreamConfig& config_;
  UpstreamCounters& counters_;
  sim::Rng rng_;
  std::unique_ptr<AnswerLog> answers_;  // made at boot
  int64_t voids_running_ = 0;
  // Misuse: the finished orders it may touch (volatile: the upstream is not
  // crashed), its own stream, its calls and probes still running.
  std::vector<Finished> finished_;
  std::array<std::vector<size_t>, kOrderStates> finished_by_state_;
  sim::Rng misuse_rng_;
  int64_t misuse_running_ = 0;
  int64_t misuse_keys_ = 0;
  QueueConsumerConfig consumer_;
  QueueHandler handler_;
};

}  // namespace paylab::system
