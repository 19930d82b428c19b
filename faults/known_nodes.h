// The nodes of every platform, each at a fixed place: the network numbers a
// platform's nodes in this order (a node the platform does not use is an
// idle placeholder in its place), and scenario files name them as fault
// targets.
#pragma once

#include <array>
#include <string_view>

namespace paylab::faults {

// Add a node here when the system grows one; the loader, its error messages
// and the worlds take the list from this array. `crashable` is false for a
// node whose crash the simulator does not model: the client is the workload
// itself.
struct KnownNode {
  std::string_view name;
  bool crashable;
};
inline constexpr std::array<KnownNode, 12> kKnownNodes = {{
    {"client", false},
    {"wallet", true},
    {"broker", true},
    {"mirror", true},
    {"point", true},
    {"payment", true},
    {"partner", true},
    {"checkout", false},
    {"marketplace", false},
    {"controller", true},
    {"migrator", true},
    // Last, so that the others keep their numbers: the hostile caller of the
    // payments world (/payments/misuse_rate_per_s), itself a workload.
    {"hostile", false},
}};

}  // namespace paylab::faults
