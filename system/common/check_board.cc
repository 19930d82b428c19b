// Implementation of the check board (see check_board.h).
#include "system/common/check_board.h"

namespace paylab::system {

CheckBoard::CheckBoard(sim::Simulator& sim, std::span<const char* const> names,
                       std::function<void(const Violation&)> on_violation)
    : sim_(sim), on_violation_(std::move(on_violation)) {
  for (const char* name : names) {
    statuses_.push_back(CheckStatus{name, 0, 0});
  }
}

void CheckBoard::Fail(size_t check, std::string detail) {
  CheckStatus& s = statuses_.at(check);
  ++s.evaluations;
  ++s.violations;
  sim_.trace().Record(sim::TraceEvent{sim_.Now(), sim::TraceKind::kCheck, sim::kNoNode,
                                      sim::kNoNode, s.name, 1, 0});
  if (!first_) {
    first_ = Violation{s.name, std::move(detail), sim_.Now()};
    if (on_violation_) {
      on_violation_(*first_);
    }
  }
}

}  // namespace paylab::system
