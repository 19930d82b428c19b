// What the model tests feed a model with: every applied request, in order.
// A test may change a copy of a report first (a wrong ledger, simulated);
// like the auditors, the feed stops at the first difference.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

namespace paylab::models {

template <typename Model, typename Applied>
class ModelFeedBase {
 public:
  explicit ModelFeedBase(Model m) : model(std::move(m)) {}

  // Checks `a`, or, when `tampering`, what `check_copy` makes of a copy.
  template <typename CheckCopy>
  void Feed(const Applied& a, bool tampering, CheckCopy check_copy) {
    if (!first_diff.empty()) {
      return;
    }
    ++checked;
    first_diff = tampering ? check_copy() : model.Check(a);
  }

  Model model;
  int64_t checked = 0;
  std::string first_diff;
};

}  // namespace paylab::models
