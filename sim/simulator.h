// The deterministic kernel: a virtual clock and one event queue driving a
// Boost.Asio io_context.
//
// Contract:
//  - Time moves only when every ready Asio handler has run: Run() polls the
//    io_context until it is idle, then pops the earliest event from the queue
//    (ordered by time, then by the order it was scheduled), sets the clock to
//    its time and fires it. Nothing reads the wall clock.
//  - Events fire from Run() itself, never from inside an Asio handler, so an
//    event may cancel coroutines and observe them unwind at the next poll.
//  - Every awaitable offered here honours Asio per-operation cancellation:
//    `co_await (AsyncSleep(a) || AsyncSleep(b))` resumes at the earlier time.
//  - A Simulator holds all the state of a run. Two Simulators share nothing,
//    so they may run in one process, on separate threads.
//  - Single-threaded: a Simulator must only be used by one thread at a time.
#pragma once

#include <boost/asio.hpp>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/check.h"
#include "sim/random.h"
#include "sim/time.h"
#include "sim/trace.h"

namespace paylab::sim {

namespace asio = boost::asio;

// An entry of the event queue. Subclasses own what they need to fire.
class Event {
 public:
  virtual ~Event() = default;
  virtual void Fire() = 0;
};

class Node;

// Named fault points (FoundationDB's buggify, STYLE.md): service code calls
// NodeContext::FaultPoint("wallet.after_commit") at a dangerous place; the
// hook decides, from the seed and the scenario's plan, whether the node
// crashes right there. No hook: every point is inert.
class FaultPointHook {
 public:
  virtual ~FaultPointHook() = default;
  // `node` reached `point`. True: crash it here (the hook has doomed the
  // node and arranged the crash).
  virtual bool Reached(Node& node, std::string_view point) = 0;
};

class Simulator {
 public:
  explicit Simulator(uint64_t seed);
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  uint64_t seed() const { return seed_; }
  Time Now() const { return now_; }
  asio::io_context& io() { return io_; }
  asio::io_context::executor_type executor() { return io_.get_executor(); }
  Trace& trace() { return trace_; }

  // The run's fault points; nullptr (the default) leaves them inert. The
  // hook must outlive every node's coroutines.
  void set_fault_points(FaultPointHook* hook) { fault_points_ = hook; }
  FaultPointHook* fault_points() const { return fault_points_; }

  // The named random stream of this run (see random.h).
  Rng Stream(std::string_view name) const { return Rng(seed_, name); }

  // Queues `fn` to run at absolute virtual time `t`. REQUIRES: t >= Now().
  template <class F>
  void ScheduleAt(Time t, F&& fn) {
    PAYLAB_CHECK(t >= now_);
    struct FnEvent final : Event {
      explicit FnEvent(F&& f) : fn(std::forward<F>(f)) {}
      void Fire() override { fn(); }
      std::decay_t<F> fn;
    };
    Push(t, new FnEvent(std::forward<F>(fn)));
  }
  template <class F>
  void ScheduleAfter(Duration d, F&& fn) {
    ScheduleAt(now_ + d, std::forward<F>(fn));
  }

  // Takes ownership of `e` and fires it at time t. REQUIRES: t >= Now()
  // (checked; `e` is deleted if the check fails).
  void Push(Time t, Event* e);

  // Completes after `d` of virtual time with an empty error_code, or with
  // operation_aborted if the operation is cancelled first.
  template <class Token = asio::default_completion_token_t<asio::io_context::executor_type>>
  auto AsyncSleep(Duration d, Token&& token = {});

  // Runs until the queue is empty, Stop() is called, or the next event lies
  // after `until`. Returns the number of events fired.
  uint64_t Run(Time until);
  void Stop() { stop_ = true; }
  bool stopped() const { return stop_; }

  // Runs ready Asio handlers without advancing time.
  void Poll();

  uint64_t events_fired() const { return events_fired_; }
  size_t pending_events() const { return heap_.size(); }

 private:
  struct Entry {
    Time time;
    uint64_t seq;
    Event* event;
  };
  struct Later {
    bool operator()(const Entry& x, const Entry& y) const {
      return x.time != y.time ? x.time > y.time : x.seq > y.seq;
    }
  };

  uint64_t seed_;
  Time now_ = 0;
  uint64_t next_seq_ = 0;
  uint64_t events_fired_ = 0;
  bool stop_ = false;
  FaultPointHook* fault_points_ = nullptr;
  std::vector<Entry> heap_;
  Trace trace_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
};

namespace internal {

// The pending state of one AsyncSleep. It sits in the event queue until its
// time even when cancelled earlier (lazy deletion); `done_` makes the second
// of {fire, cancel} a no-op.
template <class Handler>
class SleepEvent final : public Event {
 public:
  SleepEvent(Handler&& h, asio::io_context::executor_type ex) : handler_(std::move(h)), ex_(ex) {
    auto slot = asio::get_associated_cancellation_slot(handler_);
    if (slot.is_connected()) {
      slot.template emplace<CancelHandler>(this);
    }
  }

  void Fire() override { Complete(boost::system::error_code()); }

 private:
  struct CancelHandler {
    SleepEvent* self;
    void operator()(asio::cancellation_type type) {
      if (type != asio::cancellation_type::none) {
        self->Complete(asio::error::operation_aborted);
      }
    }
  };

  void Complete(boost::system::error_code ec) {
    if (done_) {
      return;
    }
    done_ = true;
    auto slot = asio::get_associated_cancellation_slot(handler_);
    if (slot.is_connected() && ec != asio::error::operation_aborted) {
      // Safe here: we are not inside the slot's own handler.
      slot.clear();
    }
    // A handler without an executor of its own runs on the simulator's: the
    // default (system_executor) would need a thread.
    auto ex = asio::get_associated_executor(handler_, ex_);
    asio::post(ex, asio::append(std::move(handler_), ec));
  }

  Handler handler_;
  asio::io_context::executor_type ex_;
  bool done_ = false;
};

}  // namespace internal

template <class Token>
auto Simulator::AsyncSleep(Duration d, Token&& token) {
  PAYLAB_CHECK(d >= 0);
  return asio::async_initiate<Token, void(boost::system::error_code)>(
      [this, d](auto handler) {
        using H = std::decay_t<decltype(handler)>;
        Push(now_ + d, new internal::SleepEvent<H>(std::move(handler), io_.get_executor()));
      },
      token);
}

}  // namespace paylab::sim
