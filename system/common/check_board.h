// The board every checker keeps its results on: per check, how often it was
// evaluated and violated; the first violation (check, detail, virtual time),
// handed to a callback (the runner stops the run there); and a trace event
// for each violation, so a failure is part of the run's fingerprint.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sim/simulator.h"

namespace paylab::system {

struct Violation {
  std::string check;
  std::string detail;  // the event that broke it
  sim::Time at = 0;
};

struct CheckStatus {
  std::string name;
  int64_t evaluations = 0;
  int64_t violations = 0;
};

class CheckBoard {
 public:
  CheckBoard(sim::Simulator& sim, std::span<const char* const> names,
             std::function<void(const Violation&)> on_violation);

  void Pass(size_t check) { ++statuses_.at(check).evaluations; }
  void Fail(size_t check, std::string detail);

  const std::vector<CheckStatus>& statuses() const { return statuses_; }
  const std::optional<Violation>& first_violation() const { return first_; }

 private:
  sim::Simulator& sim_;
  std::function<void(const Violation&)> on_violation_;
  std::vector<CheckStatus> statuses_;
  std::optional<Violation> first_;
};

}  // namespace paylab::system
