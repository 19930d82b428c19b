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

#include "system/migration/controller.h"

namespace paylab::scenarios {

// The simulated nodes a scenario may name (fault targets). Add a node here when the system grows
// one; the loader and its error messages take the list from this array. `crashable` is false for
// a node whose crash the simulator does not model: the client is the workload itself.
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

// Upper bounds on durations, so that every duration converts to the simulator's 64-bit
// nanosecond clock (which spans about 292 years) with room to add several of them together.
inline constexpr double kDurationSecondsMax = 1e9;                        // about 31.7 years
inline constexpr double kDurationMillisMax = kDurationSecondsMax * 1000;  // the same, in ms
inline constexpr double kExpiryDaysMax = 10000;                           // about 27.4 years

// Account type names with this prefix are reserved for the system's own accounts.
inline constexpr std::string_view kReservedTypePrefix = "SYS_";
// The wallet plans a debit or credit across at most this many account types.
inline constexpr size_t kAccountTypesMax = 16;

// Default values live in the member initialisers below and nowhere else; README.md repeats them.

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
  double deposit = 0;
  double transfer = 1;
  double two_phase = 0;
  double misuse = 0;

  bool operator==(const Mix&) const = default;
};

struct Workload {
  int64_t operations = 0;  // >= 1
  double rate_per_s = 0;   // > 0
  Mix mix;
  int64_t amount_min = 1;
  int64_t amount_max = 10000;
  std::string deposit_type;  // filled by the parser: defaults to the highest debit_priority type
  double rollback_ratio = 0.1;
  double abandon_ratio = 0.02;
  double hold_ttl_s = 30;
  double timeout_ms = 200;
  int64_t retry_count_max = 5;
  double retry_backoff_ms = 50;
  double boundary_ratio = 0;  // share of operations aimed at a boundary (an instant, an amount)

  bool operator==(const Workload&) const = default;
};

enum class LatencyDistribution { kConstant, kUniform, kLogNormal };

// "constant", "uniform" or "lognormal", as spelled in scenario files.
std::string_view ToString(LatencyDistribution d);

// Per-message network latency, in milliseconds.
struct LatencySpec {
  LatencyDistribution distribution = LatencyDistribution::kLogNormal;
  double min = 0.2;
  double max = 50;
  double median = 1;  // in [min, max]; also the value of a constant distribution
  double sigma = 0.5;

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

// The named fault points placed in service code (see faults/fault_points.h and
// scenarios/README.md). Add a name here when a service gets a new one.
inline constexpr std::array<std::string_view, 4> kFaultPoints = {
    "wallet.after_commit",     // a wallet RPC committed, its reply not sent
    "relay.after_publish",     // an outbox row published, not yet marked sent
    "payment.between_phases",  // a participant acted, the payment's step not recorded
    "consumer.after_apply",    // a queue message applied, not yet deleted
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
  double expiry_scan_interval_s = 5;
  double hold_ttl_max_s = 3600;

  bool operator==(const WalletOptions&) const = default;
};

// Messaging (issue 3): the wallet publishes every movement through its
// outbox to a broker topic; the mirror node consumes it as a consumer group.
struct MessagingOptions {
  bool enabled = false;
  int64_t partitions = 4;
  bool idempotent_producer = false;
  double relay_interval_ms = 50;
  int64_t relay_batch_max = 100;
  int64_t consumer_members = 2;
  double poll_interval_ms = 50;
  int64_t fetch_max = 100;
  double session_timeout_ms = 3000;
  double rpc_timeout_ms = 200;
  double duplicate_delivery = 0;  // fault: probability a fetch re-delivers earlier messages
  bool audit_queue = true;        // a queue fed by the topic, read by the mirror's audit worker
  double visibility_timeout_ms = 1000;
  int64_t max_receives = 10;
  bool dead_letter_queue = true;
  int64_t poison_messages = 0;  // fault: undecodable messages put into the audit queue
  double redrive_at_s = 0;      // operator action: redrive the dead-letter queue (0 = never)

  bool operator==(const MessagingOptions&) const = default;
};

// Payments (issue 4): the point service, the payment orchestrator, the external partner and
// the two upstreams (checkout: charges; marketplace: escrows and P2P transfers).
struct PaymentsOptions {
  bool enabled =
      false;  // the point, payment, partner, checkout and marketplace nodes; needs messaging
  int64_t merchants = 100;                 // merchants the checkout charges for, ids 1..merchants
  int64_t initial_points = 0;              // points per user at the start (confirmed lots)
  double point_expiry_days = 90;           // how long a lot of points lives
  int64_t charges = 0;                     // checkout orders
  double charge_rate_per_s = 1;            // their Poisson arrival rate
  int64_t escrows = 0;                     // marketplace orders (escrows and P2P transfers)
  double escrow_rate_per_s = 1;            // their Poisson arrival rate
  double p2p_ratio = 0.1;                  // share of marketplace orders that are P2P transfers
  double partner_ratio = 0.2;              // share of escrows that also pay with partner points
  int64_t partner_amount_max = 500;        // the most partner points an escrow takes
  int64_t partner_initial_balance = 5000;  // partner points per user at the start
  double partner_unavailable = 0.05;       // fault: the partner answers unavailable
  double partner_service_ms_min = 20;      // the partner's service time, lower bound
  double partner_service_ms_max = 500;     // and upper bound
  int64_t amount_min = 100;                // order amounts, lower bound
  int64_t amount_max = 5000;               // and upper bound
  double void_ratio = 0.1;                 // share of authorised orders voided instead of captured
  double capture_delay_s_min = 1;          // delay between authorisation and capture
  double capture_delay_s_max = 60;         // and its upper bound
  double upstream_timeout_ms = 2000;       // the upstreams' timeout per payment call
  int64_t upstream_retry_count_max = 4;    // retries of a create before the order is marked failed
  double rpc_timeout_ms = 300;             // the payment service's timeout per participant call
  double partner_timeout_ms = 2000;        // its timeout for the partner
  int64_t worker_attempts_max = 5;         // layer 1: calls per step before the worker gives up
  double queue_backoff_s_min = 60;         // layer 2: the request queue's first backoff
  double queue_backoff_s_max = 3600;       // and its cap
  double batch_interval_s = 3600;          // layer 3: the recovery batch's period (0 = off)
  double recovery_horizon_days = 3;        // how far back the batch looks for WIP payments
  double hold_ttl_s = 86400;        // the participants' holds; at most /wallet/hold_ttl_max_s
  int64_t fee_bp = 250;             // merchant fee in basis points
  double clearing_interval_s = 60;  // the clearing job's period (0 = off)
  int64_t reward_bp = 100;          // points granted per payment, in basis points of its amount
  double assignment_failure = 0;    // fault: a point assignment fails transiently
  double assignment_redrive_at_s =
      0;  // operator: redrive the assignment dead-letter queue (0 = never)
  double misuse_rate_per_s =
      0;  // fault: the hostile caller's misuse sequences per second (0 = off)

  // The upstreams' misuse of the payment API (issue 12): the share of
  // finished orders an upstream follows with one misuse call.
  double misuse_ratio = 0;

  bool operator==(const PaymentsOptions&) const = default;
};

// The migration (issue 6): CASHBACK moves from the wallet to the point
// service while the shopper's traffic runs. With it on, the run builds the
// migration world: the shopper (as the client node, its traffic sized by
// /workload), the wallet, the broker (dual-write), the point service, the
// controller and the migrator.
struct MigrationOptions {
  bool enabled = false;
  std::string strategy = "online";         // full_maintenance, partial_maintenance, online, gradual
  std::string cashback_type = "CASHBACK";  // the account that moves
  std::string money_type = "MONEY";        // where top-ups go
  double start_s = 10;                     // when the migration starts
  double copy_ms_per_user = 1;             // the time moving one user's data takes
  int64_t batch_size = 500;                // full: users moved per batch
  int64_t cohorts = 4;                     // partial: cohorts, equal ranges of users
  double cohort_gap_s = 60;                // partial: from one cohort's window to the next
  double banner_lead_s = 20;               // partial: banner shown this long before a window
  int64_t cohort_attempts_max = 3;         // partial: tries of a cohort before it is skipped
  double drain_timeout_s = 60;             // how long a drain waits for in-flight holds
  double job_rate_per_s = 200;             // online, gradual: users started per second
  bool dual_write = true;                  // online: copies kept by dual-write
  double reconcile_interval_s = 2;         // online: a reconciliation batch this often (0 = off)
  int64_t reconcile_batch = 500;           // users per reconciliation batch
  double rpc_timeout_ms = 200;             // the services' timeout per call to another
  double sample_interval_s = 5;            // the report's time series resolution
  // The shopper's traffic (sized and timed by /workload).
  double pay = 0.6;  // weights of the operation kinds
  double earn = 0.25;
  double topup = 0.1;
  double lookup = 0.05;
  double use_points_ratio = 0.7;    // share of payments that may use points
  double new_api_ratio = 0.5;       // share of payments sent to the point service's new API
  double pair_ratio = 0.05;         // share of payments with a concurrent twin for the same user
  double misuse_ratio = 0;          // share of finished payments followed by one misuse
  int64_t earn_min = 10;            // cashback credited per earn, lower bound
  int64_t earn_max = 300;           // and upper bound
  double commit_delay_s_max = 5;    // a checkout's pause between prepare and commit
  double maintenance_retry_s = 30;  // an earn refused for maintenance is retried after this

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

// The canonical JSON form of `s`: every field present, defaults included, keys sorted.
// REQUIRES: s is valid (for instance, it came from ParseScenario); otherwise the result may not
// parse back.
nlohmann::json ToJson(const Scenario& s);

}  // namespace paylab::scenarios
