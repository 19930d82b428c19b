// Implementation of the upstream services (see upstream.h).
#include "system/payments/upstream.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "system/messaging/broker.h"
#include "system/common/config_table.h"

namespace paylab::system {

std::string_view OrderStateName(OrderState s) {
  switch (s) {
    case OrderState::kPending:
      return "pending";
    case OrderState::kAuthorized:
      return "authorized";
    case OrderState::kCaptured:
      return "captured";
    case OrderState::kVoided:
      return "voided";
    case OrderState::kDeclined:
      return "declined";
    case OrderState::kFailed:
      return "failed";
  }
  return "?";
}

namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS orders(
  key TEXT PRIMARY KEY,
  flow INTEGER NOT NULL,
  payer INTEGER NOT NULL,
  payee INTEGER NOT NULL,
  amount INTEGER NOT NULL,
  partner_amount INTEGER NOT NULL,
  state INTEGER NOT NULL,
  payment_id INTEGER NOT NULL,
  orphan_voided INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL) WITHOUT ROWID;
)sql";

}  // namespace

Upstream::Upstream(sim::NodeContext& ctx, const UpstreamConfig& config, UpstreamCounters* counters)
    : ctx_(ctx),
      config_(config),
      counters_(*counters),
      rng_(ctx.Stream("orders")),
      misuse_rng_(ctx.Stream("misuse")) {}

asio::awaitable<void> Upstream::Boot() {
  ctx_.db().ExecScript(kSchema);
  StoreSettings();
  answers_ = std::make_unique<AnswerLog>(ctx_);
  ctx_.Spawn(Arrivals());
  if (!config_.notify_queue.empty() && !config_.defect_never_void_orphans) {
    consumer_ =
        QueueConsumerConfig{config_.broker,        config_.notify_queue,      config_.receive_max,
                            config_.poll_interval, config_.poll_interval_max, config_.rpc_timeout};
    handler_ = [this](const QueueMessage& m) { return OnMessage(m); };
    ctx_.Spawn(ConsumeQueue(ctx_, consumer_, handler_));
  }
  co_return;
}

void Upstream::StoreSettings() {
  const UpstreamConfig& c = config_;
  StoreConfig(ctx_.db(), {
                             {"name", c.name},
                             {"notify_queue", c.notify_queue},
                             {"orders", c.orders},
                             {"rate_per_s", c.rate_per_s},
                             {"mix.charge", c.mix[0]},
                             {"mix.escrow", c.mix[1]},
                             {"mix.p2p", c.mix[2]},
                             {"users", c.users},
                             {"payees", c.payees},
                             {"amount_min", c.amount_min},
                             {"amount_max", c.amount_max},
                             {"partner_ratio", c.partner_ratio},
                             {"partner_amount_max", c.partner_amount_max},
                             {"void_ratio", c.void_ratio},
                             {"timeout_ns", c.timeout},
                             {"retry_count_max", int64_t{c.retry_count_max}},
                             {"retry_backoff_ns", c.retry_backoff},
                             {"second_phase_patience_ns", c.second_phase_patience},
                             {"misuse_ratio", c.misuse_ratio},
                         });
}

void Upstream::RecordAnswer(const AnswerRecord& what, const PaymentReply& reply) {
  const bool ok = reply.status == PaymentReplyStatus::kOk;
  std::string more = ok ? fmt::format(R"({{"payment_status":"{}","in_progress":{}}})",
                                      PaymentStatusName(reply.payment_status), reply.in_progress)
                        : fmt::format(R"({{"reason":{}}})", JsonQuote(reply.reason));
  answers_->Record(
      what,
      Answer{.status = ok ? "ok" : "refused", .id = reply.payment_id, .more = std::move(more)});
}

PaymentFlow Upstream::DrawFlow() {
  const double total = config_.mix[0] + config_.mix[1] + config_.mix[2];
  double x = rng_.UniformDouble() * total;
  for (size_t i = 0; i < 3; ++i) {
    if (x < config_.mix[i] || i == 2) {
      return static_cast<PaymentFlow>(i + 1);
    }
    x -= config_.mix[i];
  }
  return PaymentFlow::kCharge;
}

asio::awaitable<void> Upstream::Arrivals() {
  for (int64_t seq = 0; seq < config_.orders; ++seq) {
    co_await ctx_.Sleep(
        static_cast<sim::Duration>(rng_.Exponential(1.0 / config_.rate_per_s) * sim::kSecond));
    ++counters_.issued;
    ctx_.Spawn(RunOrder(seq));
  }
}

void Upstream::SetState(std::string_view key, OrderState s, uint64_t payment_id) {
  sim::Statement st(ctx_.db(),
                    "UPDATE orders SET state = ?, payment_id = CASE WHEN ? = 0 THEN payment_id "
                    "ELSE ? END, updated_at = ? WHERE key = ?");
  st.Bind(1, static_cast<int64_t>(s))
      .Bind(2, static_cast<int64_t>(payment_id))
      .Bind(3, static_cast<int64_t>(payment_id))
      .Bind(4, ctx_.Now())
      .Bind(5, key)
      .Exec();
}

std::optional<OrderState> Upstream::StateOf(std::string_view key) {
  sim::Statement st(ctx_.db(), "SELECT state FROM orders WHERE key = ?");
  st.Bind(1, key);
  if (!st.Step()) {
    return std::nullopt;
  }
  return static_cast<OrderState>(st.Int(0));
}

asio::awaitable<void> Upstream::RunOrder(int64_t seq) {
  CreatePaymentRequest req;
  req.order_key = fmt::format("{}-{}", config_.name, seq);
  req.flow = DrawFlow();
  req.payer = rng_.UniformInt(1, config_.users);
  req.amount = rng_.UniformInt(config_.amount_min, config_.amount_max);
  if (req.flow == PaymentFlow::kP2p) {
    req.payee = rng_.UniformInt(1, config_.users - 1);
    req.payee += req.payee >= req.payer ? 1 : 0;
  } else {
    req.payee = rng_.UniformInt(1, config_.payees);
  }
  if (req.flow == PaymentFlow::kEscrow && config_.partner_amount_max > 0 &&
      rng_.Bernoulli(config_.partner_ratio)) {
    req.partner_amount = std::min(req.amount, rng_.UniformInt(1, config_.partner_amount_max));
  }
  const bool void_it = rng_.Bernoulli(config_.void_ratio);
  const sim::Duration delay = rng_.UniformInt(config_.capture_delay_min, config_.capture_delay_max);
  {
    sim::Statement st(ctx_.db(),
                      "INSERT INTO orders(key, flow, payer, payee, amount, partner_amount, state, "
                      "payment_id, updated_at) VALUES(?, ?, ?, ?, ?, ?, 0, 0, ?)");
    st.Bind(1, req.order_key)
        .Bind(2, static_cast<int64_t>(req.flow))
        .Bind(3, req.payer)
        .Bind(4, req.payee)
        .Bind(5, req.amount)
        .Bind(6, req.partner_amount)
        .Bind(7, ctx_.Now())
        .Exec();
  }
  const auto create = [req](PaymentService& p) { return p.Create(req); };
  AnswerRecord what{.key = req.order_key,
                    .op = "create",
                    .user = req.payer,
                    .peer = req.payee,
                    .amount = req.amount,
                    .params = fmt::format(R"({{"flow":"{}","partner_amount":{}}})",
                                          PaymentFlowName(req.flow), req.partner_amount)};
  OrderState state = OrderState::kFailed;
  uint64_t payment_id = 0;
  for (int attempt = 0; attempt <= config_.retry_count_max; ++attempt) {
    if (attempt > 0) {
      ++counters_.create_retries;
      co_await ctx_.Sleep(config_.retry_backoff << (attempt - 1));
    }
    ++what.attempts;
    auto r = co_await ctx_.Call<PaymentService>(config_.payment, "payment.create", config_.timeout,
                                                create);
    if (r.ok()) {
      RecordAnswer(what, r.value);
    }
    if (!r.ok() || (r.value.status == PaymentReplyStatus::kOk && r.value.in_progress)) {
      continue;
    }
    if (r.value.status == PaymentReplyStatus::kRefused) {
      break;  // failed: the request was wrong
    }
    payment_id = r.value.payment_id;
    switch (r.value.payment_status) {
      case PaymentStatus::kAuthorized:
        state = OrderState::kAuthorized;
        break;
      case PaymentStatus::kCaptured:
        state = OrderState::kCaptured;
        break;
      case PaymentStatus::kFailed:
        state = OrderState::kDeclined;
        break;
      default:
        state = OrderState::kFailed;  // never answered for a create: treat as lost
        break;
    }
    break;
  }
  SetState(req.order_key, state, payment_id);
  if (state == OrderState::kAuthorized) {
    co_await ctx_.Sleep(delay);
    const PaymentStatus final_status =
        co_await SecondPhase(req.order_key, !void_it, void_it ? "void" : "capture");
    state = final_status == PaymentStatus::kCaptured ? OrderState::kCaptured
            : final_status == PaymentStatus::kVoided ? OrderState::kVoided
                                                     : OrderState::kAuthorized;
    SetState(req.order_key, state, 0);
  }
  ++counters_.states[static_cast<size_t>(state)];
  AfterOrder(req, state);
  ++counters_.finished;
}

void Upstream::AfterOrder(const CreatePaymentRequest& req, OrderState state) {
  if (config_.misuse_ratio <= 0) {
    return;  // no draw at all: a run without misuse is the run it always was
  }
  if (state == OrderState::kCaptured || state == OrderState::kVoided ||
      state == OrderState::kDeclined) {
    // Final on both sides: a misuse may touch it without changing it.
    finished_by_state_[static_cast<size_t>(state)].push_back(finished_.size());
    finished_.push_back(Finished{req, state});
  }
  if (misuse_rng_.Bernoulli(config_.misuse_ratio)) {
    // Counted before the order is, so done() never sees a gap.
    ++misuse_running_;
    ctx_.Spawn(Misuse());
  }
}

const CreatePaymentRequest* Upstream::PickFinished(std::initializer_list<OrderState> states) {
  size_t n = 0;
  for (OrderState st : states) {
    n += finished_by_state_[static_cast<size_t>(st)].size();
  }
  if (n == 0) {
    return nullptr;
  }
  auto i = static_cast<size_t>(misuse_rng_.UniformInt(0, static_cast<int64_t>(n) - 1));
  for (OrderState st : states) {
    const std::vector<size_t>& v = finished_by_state_[static_cast<size_t>(st)];
    if (i < v.size()) {
      return &finished_[v[i]].req;
    }
    i -= v.size();
  }
  return nullptr;
}

asio::awaitable<void> Upstream::Misuse() {
  struct Done {
    int64_t& n;
    ~Done() { --n; }
  } done{misuse_running_};
  // The kinds, in the order drawn; one without a finished order to touch
  // falls back to a key no order has.
  constexpr int64_t kKinds = 7;
  const int64_t kind = misuse_rng_.UniformInt(0, kKinds - 1);
  const CreatePaymentRequest* f = nullptr;
  switch (kind) {
    case 0:
      f = PickFinished({OrderState::kCaptured, OrderState::kVoided, OrderState::kDeclined});
      if (f != nullptr) {
        CreatePaymentRequest other = *f;
        other.amount += 1;  // the same key, another amount
        co_await SendMisuse("reuse_key", MisuseCall::kCreate, std::move(other));
        co_return;
      }
      break;
    case 1:
      f = PickFinished({OrderState::kVoided, OrderState::kDeclined});
      if (f != nullptr) {
        co_await SendMisuse("capture_not_authorized", MisuseCall::kCapture, *f);
        co_return;
      }
      break;
    case 2:
      f = PickFinished({OrderState::kCaptured});
      if (f != nullptr) {
        co_await SendMisuse("void_captured", MisuseCall::kVoid, *f);
        co_return;
      }
      break;
    case 3:
      f = PickFinished({OrderState::kCaptured});
      if (f != nullptr) {
        co_await SendMisuse("repeat_capture", MisuseCall::kCapture, *f);
        co_return;
      }
      break;
    case 4:
      f = PickFinished({OrderState::kVoided});
      if (f != nullptr) {
        co_await SendMisuse("repeat_void", MisuseCall::kVoid, *f);
        co_return;
      }
      break;
    case 5:
      co_await Probe();
      co_return;
    default:
      break;
  }
  CreatePaymentRequest unknown;
  unknown.order_key = fmt::format("{}-unknown-{}", config_.name, misuse_keys_++);
  const bool capture = misuse_rng_.Bernoulli(0.5);
  co_await SendMisuse(capture ? "capture_unknown" : "void_unknown",
                      capture ? MisuseCall::kCapture : MisuseCall::kVoid, std::move(unknown));
}

asio::awaitable<void> Upstream::SendMisuse(std::string_view kind, MisuseCall call,
                                           CreatePaymentRequest req) {
  ++misuse_running_;
  struct Done {
    int64_t& n;
    ~Done() { --n; }
  } done{misuse_running_};
  const std::string key = req.order_key;
  const auto fn = [req, call](PaymentService& p) {
    return call == MisuseCall::kCreate    ? p.Create(req)
           : call == MisuseCall::kCapture ? p.Capture(req.order_key)
                                          : p.Void(req.order_key);
  };
  const std::string_view method = call == MisuseCall::kCreate    ? "payment.create"
                                  : call == MisuseCall::kCapture ? "payment.capture"
                                                                 : "payment.void";
  ++counters_.misuse_sent;
  auto r = co_await ctx_.Call<PaymentService>(config_.payment, method, config_.timeout, fn);
  if (!r.ok()) {
    co_return;
  }
  ++counters_.misuse_answered;
  counters_.misuse_refused += r.value.status == PaymentReplyStatus::kRefused ? 1 : 0;
  const std::string_view call_name = call == MisuseCall::kCreate    ? "create"
                                     : call == MisuseCall::kCapture ? "capture"
                                                                    : "void";
  AnswerRecord what{.key = key,
                    .op = "misuse",
                    .user = req.payer == 0 ? std::nullopt : std::optional<int64_t>(req.payer),
                    .peer = req.payee == 0 ? std::nullopt : std::optional<int64_t>(req.payee),
                    .amount = req.amount == 0 ? std::nullopt : std::optional<int64_t>(req.amount),
                    .params = fmt::format(R"({{"kind":"{}","call":"{}"}})", kind, call_name),
                    .attempts = 1};
  RecordAnswer(what, r.value);
}

asio::awaitable<void> Upstream::Probe() {
  ++counters_.probes;
  CreatePaymentRequest req;
  req.order_key = fmt::format("{}-probe-{}", config_.name, misuse_keys_++);
  req.flow = config_.mix[0] > 0 ? PaymentFlow::kCharge : PaymentFlow::kEscrow;
  req.payer = misuse_rng_.UniformInt(1, config_.users);
  req.payee = misuse_rng_.UniformInt(1, config_.payees);
  req.amount = misuse_rng_.UniformInt(config_.amount_min, config_.amount_max);
  {
    sim::Statement st(ctx_.db(),
                      "INSERT INTO orders(key, flow, payer, payee, amount, partner_amount, state, "
                      "payment_id, updated_at) VALUES(?, ?, ?, ?, ?, 0, 0, 0, ?)");
    st.Bind(1, req.order_key)
        .Bind(2, static_cast<int64_t>(req.flow))
        .Bind(3, req.payer)
        .Bind(4, req.payee)
        .Bind(5, req.amount)
        .Bind(6, ctx_.Now())
        .Exec();
  }
  // The Capture goes out with the Create, before any answer can come back.
  ctx_.Spawn(SendMisuse("capture_before_create", MisuseCall::kCapture, req));
  const auto create = [req](PaymentService& p) { return p.Create(req); };
  AnswerRecord what{
      .key = req.order_key,
      .op = "create",
      .user = req.payer,
      .peer = req.payee,
      .amount = req.amount,
      .params = fmt::format(R"({{"flow":"{}","partner_amount":0}})", PaymentFlowName(req.flow))};
  // Unlike an order, the probe never gives its Create up while the patience
  // lasts: its early Capture may have captured the payment meanwhile.
  OrderState state = OrderState::kFailed;
  uint64_t payment_id = 0;
  const sim::Time give_up = ctx_.Now() + config_.second_phase_patience;
  sim::Duration backoff = config_.retry_backoff;
  for (int attempt = 0; ctx_.Now() < give_up; ++attempt) {
    if (attempt > 0) {
      co_await ctx_.Sleep(backoff);
      backoff = std::min<sim::Duration>(backoff * 2, 60 * sim::kSecond);
    }
    ++what.attempts;
    auto r = co_await ctx_.Call<PaymentService>(config_.payment, "payment.create", config_.timeout,
                                                create);
    if (r.ok()) {
      RecordAnswer(what, r.value);
    }
    if (!r.ok() || (r.value.status == PaymentReplyStatus::kOk && r.value.in_progress)) {
      continue;
    }
    payment_id = r.value.payment_id;
    state = r.value.status == PaymentReplyStatus::kRefused         ? OrderState::kFailed
            : r.value.payment_status == PaymentStatus::kAuthorized ? OrderState::kAuthorized
            : r.value.payment_status == PaymentStatus::kCaptured   ? OrderState::kCaptured
            : r.value.payment_status == PaymentStatus::kFailed     ? OrderState::kDeclined
                                                                   : OrderState::kFailed;
    break;
  }
  SetState(req.order_key, state, payment_id);
  if (state == OrderState::kAuthorized || state == OrderState::kCaptured) {
    const PaymentStatus final_status = co_await SecondPhase(req.order_key, true, "capture");
    state =
        final_status == PaymentStatus::kCaptured ? OrderState::kCaptured : OrderState::kAuthorized;
    SetState(req.order_key, state, 0);
  }
}

asio::awaitable<PaymentStatus> Upstream::SecondPhase(std::string key, bool capture,
                                                     std::string_view op) {
  const auto fn = [key, capture](PaymentService& p) {
    return capture ? p.Capture(key) : p.Void(key);
  };
  AnswerRecord what{.key = key, .op = op};
  const sim::Time give_up = ctx_.Now() + config_.second_phase_patience;
  sim::Duration backoff = config_.retry_backoff;
  for (int attempt = 0; ctx_.Now() < give_up; ++attempt) {
    if (attempt > 0) {
      ++counters_.second_phase_retries;
      co_await ctx_.Sleep(backoff);
      backoff = std::min<sim::Duration>(backoff * 2, 60 * sim::kSecond);
    }
    ++what.attempts;
    auto r = co_await ctx_.Call<PaymentService>(
        config_.payment, capture ? "payment.capture" : "payment.void", config_.timeout, fn);
    if (r.ok()) {
      RecordAnswer(what, r.value);
    }
    if (!r.ok() || r.value.status != PaymentReplyStatus::kOk || r.value.in_progress) {
      continue;
    }
    if (r.value.payment_status == PaymentStatus::kCaptured ||
        r.value.payment_status == PaymentStatus::kVoided ||
        r.value.payment_status == PaymentStatus::kFailed) {
      co_return r.value.payment_status;
    }
  }
  co_return PaymentStatus::kCreated;
}

asio::awaitable<void> Upstream::VoidOrphan(std::string key) {
  ++voids_running_;
  struct Done {
    int64_t& n;
    ~Done() { --n; }
  } done{voids_running_};
  const PaymentStatus s = co_await SecondPhase(key, /*capture=*/false, "void_orphan");
  if (s == PaymentStatus::kVoided) {
    ++counters_.orphans_voided;
    sim::Statement st(ctx_.db(), "UPDATE orders SET orphan_voided = 1 WHERE key = ?");
    st.Bind(1, key).Exec();
  }
}

bool Upstream::OnNotification(const PaymentEvent& e) {
  const std::string prefix = config_.name + "-";
  if (e.order_key.compare(0, prefix.size(), prefix) != 0) {
    return true;  // another upstream's payment
  }
  ++counters_.notifications;
  if (e.status != PaymentStatus::kAuthorized && e.status != PaymentStatus::kCaptured) {
    return true;
  }
  const std::optional<OrderState> state = StateOf(e.order_key);
  if (state == OrderState::kPending) {
    ++counters_.notifications_deferred;
    return false;  // its fate is not known yet: look again later
  }
  const bool given_up = !state || state == OrderState::kFailed || state == OrderState::kDeclined;
  if (!given_up) {
    return true;
  }
  if (e.status == PaymentStatus::kAuthorized) {
    ctx_.Spawn(VoidOrphan(e.order_key));
  } else if (state == OrderState::kFailed) {
    // A P2P transfer is captured when created and cannot be voided: the
    // money has moved, so the upstream adopts the late success.
    SetState(e.order_key, OrderState::kCaptured, e.payment_id);
    --counters_.states[static_cast<size_t>(OrderState::kFailed)];
    ++counters_.states[static_cast<size_t>(OrderState::kCaptured)];
    ++counters_.late_successes;
  }
  return true;
}

bool Upstream::OnMessage(const QueueMessage& m) {
  std::string error;
  const std::optional<PaymentEvent> e = DecodePaymentEvent(m.payload, &error);
  if (!e) {
    ++counters_.poison;
    return false;  // left undeleted: it is dead-lettered after max receives
  }
  return OnNotification(*e);
}

}  // namespace paylab::system
