// The verdict of one reference model: the check `<name>` a model's auditor
// reports (wallet_model_agrees, point_model_agrees, ...).
//
// Contract: every comparison of a prediction with a fact is one evaluation;
// an empty difference passes it, any other text fails the check with that
// text as the detail (both sides, as the model wrote them). The first
// difference ends the judging: the model applies its own prediction, so
// after a difference it no longer follows the service and every later
// comparison would repeat the first one. The final comparisons against a
// service's database run in order and stop at the first difference, which
// is reported "at the end: ...".
#pragma once

#include <array>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sim/check.h"
#include "sim/simulator.h"
#include "system/common/check_board.h"

namespace paylab::models {

class ModelCheck {
 public:
  ModelCheck(sim::Simulator& sim, const char* name,
             std::function<void(const system::Violation&)> on_violation)
      : names_{name}, board_(sim, names_, std::move(on_violation)) {}

  // True once a difference was reported: nothing more is judged.
  bool failed() const { return failed_; }

  // Judges one comparison made live (a request the service applied).
  void Judge(std::string difference) {
    PAYLAB_CHECK(!failed_);
    if (difference.empty()) {
      board_.Pass(0);
      return;
    }
    failed_ = true;
    board_.Fail(0, std::move(difference));
  }

  // Judges the final comparisons, each returning "" or a difference, in
  // order up to the first difference. Nothing is judged after a failure.
  void JudgeFinal(std::initializer_list<std::function<std::string()>> comparisons) {
    if (failed_) {
      return;
    }
    for (const auto& compare : comparisons) {
      std::string difference = compare();
      if (!difference.empty()) {
        Judge("at the end: " + difference);
        return;
      }
    }
    Judge("");
  }

  const std::vector<system::CheckStatus>& statuses() const { return board_.statuses(); }
  const std::optional<system::Violation>& first_violation() const {
    return board_.first_violation();
  }

 private:
  std::array<const char*, 1> names_;
  system::CheckBoard board_;
  bool failed_ = false;
};

}  // namespace paylab::models
