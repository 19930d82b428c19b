// The world a scenario builds: the migration platform when /migration is
// on, else the payments platform when /payments is on, else the messaging
// platform when /messaging is on, else the wallet platform.
#pragma once

#include <memory>

#include "harness/world.h"

namespace paylab::scenarios {

// Configured, its nodes made and its faults armed; not started.
std::unique_ptr<World> MakeWorld(const Scenario& s, const RunOptions& o);

}  // namespace paylab::scenarios
