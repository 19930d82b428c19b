// Implementation of the event loop (see simulator.h).
#include "sim/simulator.h"

#include <algorithm>

namespace paylab::sim {

Simulator::Simulator(uint64_t seed)
    : seed_(seed), io_(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE), work_(io_.get_executor()) {
  heap_.reserve(1024);
}

Simulator::~Simulator() {
  // Pending events own completion handlers, which may own coroutine frames
  // bound to io_; destroy them while io_ is still alive.
  for (Entry& e : heap_) {
    delete e.event;
  }
  heap_.clear();
  work_.reset();
}

void Simulator::Push(Time t, Event* e) {
  if (t < now_) [[unlikely]] {
    delete e;
    PAYLAB_CHECK(t >= now_);
  }
  heap_.push_back(Entry{t, next_seq_++, e});
  std::push_heap(heap_.begin(), heap_.end(), Later{});
}

void Simulator::Poll() { io_.poll(); }

uint64_t Simulator::Run(Time until) {
  uint64_t fired = 0;
  stop_ = false;
  for (;;) {
    Poll();
    if (stop_ || heap_.empty()) {
      break;
    }
    if (heap_.front().time > until) {
      now_ = std::max(now_, until);
      break;
    }
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    Entry top = heap_.back();
    heap_.pop_back();
    now_ = top.time;
    // The event is owned here from now on; free it even if Fire() throws.
    std::unique_ptr<Event> owned(top.event);
    owned->Fire();
    ++fired;
    ++events_fired_;
  }
  return fired;
}

}  // namespace paylab::sim
