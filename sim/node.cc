// Implementation of simulated processes (see node.h).
#include "sim/node.h"

#include "sim/context.h"
#include "sim/network.h"

namespace paylab::sim {

Node::Node(Simulator& sim, Network& net, NodeId id, std::string name, Factory factory)
    : sim_(sim), net_(net), id_(id), name_(std::move(name)), factory_(std::move(factory)) {}

Node::~Node() { Shutdown(); }

Service* Node::service() {
  if (!up_) {
    return nullptr;
  }
  return incarnations_.at(incarnation_).service.get();
}

void Node::Start() {
  PAYLAB_CHECK(!started_);
  started_ = true;
  Boot();
}

void Node::Boot() {
  ++incarnation_;
  up_ = true;
  Incarnation& inc = incarnations_[incarnation_];
  inc.ctx = std::make_unique<NodeContext>(*this, incarnation_);
  inc.service = factory_(*inc.ctx);
  PAYLAB_CHECK(inc.service != nullptr);
  Spawn(inc.service->Boot());
}

void Node::CancelTasks() {
  // Snapshot the ids first: emitting may complete tasks synchronously in
  // the future (it posts), but never erases from the map here.
  for (auto& [task, t] : tasks_) {
    // A task whose coroutine has finished (its erase is still queued) must
    // not be signalled: Asio's co_spawn forwards the signal through a
    // posted handler, which would run after the erase freed the signal.
    if (t.incarnation == incarnation_ && !t.finished) {
      t.signal->emit(asio::cancellation_type::terminal);
    }
  }
  if (db_.InTransaction()) {
    db_.Rollback();
  }
}

void Node::StepClock(int64_t step_ms) {
  clock_offset_ms_ += step_ms;
  sim_.trace().Record(TraceEvent{sim_.Now(), TraceKind::kFault, id_, kNoNode, "clock_step", step_ms,
                                 clock_offset_ms_});
}

void Node::Crash() {
  PAYLAB_CHECK(up_);
  up_ = false;
  doomed_ = false;
  ++crashes_;
  sim_.trace().Record(TraceEvent{sim_.Now(), TraceKind::kCrash, id_, kNoNode, name_,
                                 static_cast<int64_t>(incarnation_), 0});
  CancelTasks();
  // Drop the volatile state now if nothing references it any more; else the
  // last task to unwind does (OnTaskDone).
  auto it = incarnations_.find(incarnation_);
  if (it != incarnations_.end() && it->second.tasks == 0) {
    incarnations_.erase(it);
  }
}

void Node::Restart() {
  PAYLAB_CHECK(!up_);
  PAYLAB_CHECK(started_);
  Boot();
  sim_.trace().Record(TraceEvent{sim_.Now(), TraceKind::kRestart, id_, kNoNode, name_,
                                 static_cast<int64_t>(incarnation_), 0});
}

void Node::Shutdown() {
  doomed_ = false;
  if (up_) {
    up_ = false;
    CancelTasks();
  }
  // Let cancelled coroutines unwind while everything they reference lives.
  while (!tasks_.empty()) {
    const size_t before = tasks_.size();
    sim_.Poll();
    if (tasks_.size() == before) {
      break;  // A task that does not unwind: leave it to the simulator's teardown.
    }
  }
}

void Node::Spawn(asio::awaitable<void> coro) {
  PAYLAB_CHECK(up_);
  const uint64_t task = next_task_++;
  Task& t = tasks_[task];
  t.incarnation = incarnation_;
  t.signal = std::make_unique<asio::cancellation_signal>();
  ++incarnations_.at(incarnation_).tasks;
  asio::co_spawn(sim_.executor(), std::move(coro),
                 asio::bind_cancellation_slot(t.signal->slot(), [this, task, inc = incarnation_](
                                                                    std::exception_ptr e) {
                   // Erase later: this handler is still bound to the
                   // task's cancellation slot while it runs.
                   tasks_.at(task).finished = true;
                   asio::post(sim_.executor(), [this, task, inc, e] { OnTaskDone(task, inc, e); });
                 }));
}

void Node::OnTaskDone(uint64_t task, uint64_t incarnation, std::exception_ptr e) {
  tasks_.erase(task);
  auto it = incarnations_.find(incarnation);
  PAYLAB_CHECK(it != incarnations_.end());
  PAYLAB_CHECK(it->second.tasks > 0);
  --it->second.tasks;
  if (it->second.tasks == 0 && (incarnation != incarnation_ || !up_)) {
    incarnations_.erase(it);
  }
  if (e) {
    try {
      std::rethrow_exception(e);
    } catch (const NodeCrashed&) {
      // The normal end of a coroutine of a crashed incarnation.
    } catch (const boost::system::system_error& err) {
      if (err.code() != asio::error::operation_aborted) {
        throw;
      }
    }
  }
}

}  // namespace paylab::sim
