// The shipped scenario a test runs: loaded, or the test fails naming the
// file's first error (and gets an empty scenario).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "harness/schema/scenario.h"

namespace paylab::testing_scenarios {

inline scenarios::Scenario LoadOrFail(const std::string& file) {
  auto loaded = scenarios::LoadScenario(file);
  if (auto* err = std::get_if<scenarios::ScenarioError>(&loaded)) {
    ADD_FAILURE() << scenarios::FormatError(file, *err);
    return {};
  }
  return std::get<scenarios::Scenario>(loaded);
}

}  // namespace paylab::testing_scenarios
