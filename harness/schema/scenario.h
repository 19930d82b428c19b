// Scenario files: the description of one paylab run, and their loader.
//
// A scenario is a JSON document that fixes everything about a run except the seed: account types,
// population, workload, network, faults and wallet options. scenarios/README.md documents the
// format field by field. ParseScenario() turns the text into a Scenario with every default filled
// in, or returns the first problem it finds as a ScenarioError that names the offending field by
// JSON pointer. It never throws and never crashes, whatever the input: a bad scenario file is an
// expected outcome, not a programmer error. ToJson() is the inverse: the canonical form of a
// scenario, every field present, keys in a stable order, so that
// ParseScenario(ToJson(s).dump()) == s for every scenario the parser accepts.
//
// Determinism: the loader holds no state, reads no clock and draws no random number; the same
// text always gives the same result, on any thread.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "faults/fault_points.h"
#include "faults/known_nodes.h"
#include "harness/schema/knobs.h"
#include "sim/time.h"
#include "system/migration/controller.h"
#include "system/payments/payment_service.h"

namespace paylab::scenarios {

using faults::kFaultPoints;
using faults::KnownNode;
using faults::kKnownNodes;


// Upper bounds on durations, so that every duration converts to the simulator's 64-bit
// nanosecond clock (which spans about 292 years) with room to add several of them together.
inline constexpr double kDurationSecondsMax = 1e9;                        // about 31.7 years
inline constexpr double kDurationMillisMax = kDurationSecondsMax * 1000;  // the same, in ms
inline constexpr double kExpiryDaysMax = 10000;                           // about 27.4 years

// Account type names with this prefix are reserved for the system's own accounts.
inline constexpr std::string_view kReservedTypePrefix = "SYS_";
// The wallet plans a debit or credit across at most this many account types.
inline constexpr size_t kAccountTypesMax = 16;

// A section's knobs are declared once, in knobs.h (type, name, default, range, unit, doc); the
// structs below expand them. README.md repeats them, and a test holds the two together.

// One configured account type of the wallet ledger.
struct AccountTypeSpec {
  std::string name;            // [A-Z][A-Z0-9_]*, unique, not starting with "SYS_"
  int64_t debit_priority = 0;  // unique; lower debits first, credits fill in reverse order
  bool allow_negative = false;
  double expires_after_days = 0;  // 0 = credits never expire
  bool auto_create = true;        // false: opened when the user is created
  int64_t balance_cap = 0;        // smallest currency units; 0 = no cap

  bool operator==(const AccountTypeSpec&) const = default;
};

struct Population {
  int64_t users = 0;                                // >= 1
  std::map<std::string, int64_t> initial_balances;  // account type name -> amount per user

  bool operator==(const Population&) const = default;
};

// Relative weights of the operation kinds the client sends; they need not sum to 1.
struct Mix {
  PAYLAB_MIX_KNOBS(PAYLAB_DECLARE_KNOB, PAYLAB_SKIP_FIELD)

  bool operator==(const Mix&) const = default;
};

struct Workload {
  // Fields the loader reads with its own code (knobs.h, FIELD).
  Mix mix;
  std::string deposit_type;  // filled by the loader: defaults to the highest debit_priority type
  PAYLAB_WORKLOAD_KNOBS(PAYLAB_DECLARE_KNOB, PAYLAB_SKIP_FIELD)

  bool operator==(const Workload&) const = default;
};

enum class LatencyDistribution { kConstant, kUniform, kLogNormal };

// "constant", "uniform" or "lognormal", as spelled in scenario files.
std::string_view ToString(LatencyDistribution d);

// Per-message network latency, in milliseconds.
struct LatencySpec {
  LatencyDistribution distribution = LatencyDistribution::kLogNormal;
  PAYLAB_LATENCY_KNOBS(PAYLAB_DECLARE_KNOB, PAYLAB_SKIP_FIELD)

  bool operator==(const LatencySpec&) const = default;
};

struct Network {
  LatencySpec latency_ms;

  bool operator==(const Network&) const = default;
};

// A node that crashes again and again during the safety phase.
struct CrashSpec {
  std::string node;  // a crashable name from kKnownNodes
  double mean_interval_s = 0;
  double downtime_s_min = 1;
  double downtime_s_max = 10;

  bool operator==(const CrashSpec&) const = default;
};

// Two nodes that cannot reach each other in the window [from_s, to_s) of virtual time.
struct PartitionSpec {
  std::array<std::string, 2> between;  // two distinct names from kKnownNodes
  double from_s = 0;
  double to_s = 0;

  bool operator==(const PartitionSpec&) const = default;
};


// A fault point armed: the node that reaches it crashes there.
struct FaultPointSpec {
  std::string point;          // a name from kFaultPoints
  double probability = 0;     // per time the point is reached
  std::vector<int64_t> hits;  // also on these hits (1-based, counted over the run)
  double downtime_s_min = 1;
  double downtime_s_max = 5;

  bool operator==(const FaultPointSpec&) const = default;
};

// One crash at a set virtual time.
struct ScheduledCrashSpec {
  std::string node;  // crashable
  double at_s = 0;
  double downtime_s = 5;

  bool operator==(const ScheduledCrashSpec&) const = default;
};

// One node's wall clock steps by step_ms (negative: back) at a set time.
struct ClockStepSpec {
  std::string node;  // crashable (a service node)
  double at_s = 0;
  double step_ms = 0;  // != 0

  bool operator==(const ClockStepSpec&) const = default;
};

// The Nth call (1-based, over the run) of an RPC method suffers a fault.
struct RpcFaultSpec {
  std::string method;  // as traced, e.g. "wallet.commit"
  int64_t nth = 1;
  std::string fault;      // drop_request, drop_reply, duplicate_request or delay
  double delay_ms = 100;  // delay only
  int64_t reply = 1;      // drop_reply: which reply of a duplicated call (1 = the first)

  bool operator==(const RpcFaultSpec&) const = default;
};

// Faults at set times or set calls. A shrunk scenario holds its faults here.
struct FaultSchedule {
  std::vector<ScheduledCrashSpec> crashes;
  std::vector<ClockStepSpec> clock_steps;
  std::vector<RpcFaultSpec> rpc_faults;

  bool operator==(const FaultSchedule&) const = default;
};

// Faults of the safety phase; all of them heal when it ends. Probabilities are per message.
struct Faults {
  double drop_request = 0;
  double drop_reply = 0;
  double duplicate_request = 0;
  double delay = 0;
  double delay_ms_max = 100;
  std::vector<CrashSpec> crashes;
  std::vector<PartitionSpec> partitions;
  std::vector<FaultPointSpec> points;
  FaultSchedule schedule;

  bool operator==(const Faults&) const = default;
};

struct WalletOptions {
  PAYLAB_WALLET_KNOBS(PAYLAB_DECLARE_KNOB, PAYLAB_SKIP_FIELD)

  bool operator==(const WalletOptions&) const = default;
};

// Messaging: the wallet publishes every movement through its
// outbox to a broker topic; the mirror node consumes it as a consumer group.
struct MessagingOptions {
  PAYLAB_MESSAGING_KNOBS(PAYLAB_DECLARE_KNOB, PAYLAB_SKIP_FIELD)

  bool operator==(const MessagingOptions&) const = default;
};

// Payments: the point service, the payment orchestrator, the external partner and
// the two upstreams (checkout: charges; marketplace: escrows and P2P transfers).
struct PaymentsOptions {
  PAYLAB_PAYMENTS_KNOBS(PAYLAB_DECLARE_KNOB, PAYLAB_SKIP_FIELD)

  bool operator==(const PaymentsOptions&) const = default;
};

// The migration: CASHBACK moves from the wallet to the point
// service while the shopper's traffic runs. With it on, the run builds the
// migration world: the shopper (as the client node, its traffic sized by
// /workload), the wallet, the broker (dual-write), the point service, the
// controller and the migrator.
struct MigrationOptions {
  PAYLAB_MIGRATION_KNOBS(PAYLAB_DECLARE_KNOB, PAYLAB_SKIP_FIELD)

  bool operator==(const MigrationOptions&) const = default;
};

// What the run must show of its checks (scenarios/README.md "checks").
struct ChecksOptions {
  // Checks the run must evaluate at least once: one with no evaluation at
  // the end of an otherwise passing run fails it. Names are check names
  // ([a-z][a-z0-9_]*, each once); whether the run has such a check is known
  // only to the runner (harness/runner.h, RequiredCheckError).
  std::vector<std::string> required;

  bool operator==(const ChecksOptions&) const = default;
};

struct Scenario {
  std::string name;  // non-empty
  std::string description;
  double duration_s = 0;                       // safety phase (faults on), virtual seconds; > 0
  double settle_s = 60;                        // liveness phase (faults healed), virtual seconds
  std::vector<AccountTypeSpec> account_types;  // file order; non-empty
  Population population;
  Workload workload;
  Network network;
  Faults faults;
  WalletOptions wallet;
  MessagingOptions messaging;
  PaymentsOptions payments;
  MigrationOptions migration;
  ChecksOptions checks;

  bool operator==(const Scenario&) const = default;
};

// What is wrong with a scenario, and where.
// The migration strategy named `name` (as in /migration/strategy), if any.
std::optional<system::MigrationStrategy> ParseStrategy(std::string_view name);
// The strategies' names, comma-separated, for messages.
std::string StrategyNames();

struct ScenarioError {
  std::string pointer;  // JSON pointer (RFC 6901) to the offending value; "" = the whole document
  std::string reason;   // one line, no trailing period

  bool operator==(const ScenarioError&) const = default;
};

// Parses and validates a scenario document. Returns the scenario with every default filled in,
// or the first error found. Values are checked in the order README.md lists them; within an
// object, unknown fields are reported before anything else. Never throws.
std::variant<Scenario, ScenarioError> ParseScenario(std::string_view json_text);

// Reads `path` and parses it. A missing, unreadable or oversized file is an error with pointer "".
// Never throws.
std::variant<Scenario, ScenarioError> LoadScenario(const std::filesystem::path& path);

// One line for a human: "<file>: <pointer>: <reason>", or "<file>: <reason>" when the pointer is
// empty (the error concerns the whole file).
std::string FormatError(const std::filesystem::path& file, const ScenarioError& e);

// One knob as the field reference documents it (scenarios/README.md).
struct KnobDoc {
  std::string name;
  std::string type;           // "integer", "number", "bool", "string"; "" for a custom field
  std::string unit;           // "" when none
  std::string default_value;  // as README writes it: `60`, `"online"`, `true`; "required"; ""
                              // for a custom field (its default is described in prose)
  std::string doc;
};

// Every section the knob tables declare (knobs.h), by the README heading
// that documents it ("workload", "workload.mix", "network.latency_ms",
// "wallet", "messaging", "payments", "migration"), with its knobs in order.
std::vector<std::pair<std::string, std::vector<KnobDoc>>> KnobReference();

// The canonical JSON form of `s`: every field present, defaults included, keys sorted.
// REQUIRES: s is valid (for instance, it came from ParseScenario); otherwise the result may not
// parse back.
nlohmann::json ToJson(const Scenario& s);

}  // namespace paylab::scenarios
