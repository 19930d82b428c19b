// Migration of CASHBACK out of the wallet into the point service (seeds 000,
// 001): the vocabulary the migrating services share, and the migration
// controller, the node that holds every user's migration status.
//
// Statuses. A user is LEGACY (the wallet's CASHBACK is the source of truth),
// in MAINTENANCE (a maintenance window covers the user: no point use, no
// cashback credit; everything else works), MIGRATING (an online job is moving
// the user right now: no point use), or MIGRATED (the point service is the
// source of truth). Besides, a FULL maintenance flag stops everything for
// everyone. The migrator writes statuses; the wallet and the point service
// read them on every request that could use points. Routing between the two
// systems does not trust this status alone: each system also keeps, in the
// transaction that moved the data, whether it still owns the user
// (Ledger::MigratedAmount on the wallet, the activation row on the point
// service), so a request racing the switch lands on the owner.
//
// Every status change is logged (durably, with its time): the report's
// unavailability figures are computed from that log.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sim/context.h"
#include "system/migration/schema.h"
#include "system/wallet/account_types.h"

namespace paylab::system {

namespace asio = boost::asio;

// Whether point use (and cashback credit) is refused in this state.
inline bool BlocksPoints(MigrationState s) {
  return s == MigrationState::kMaintenance || s == MigrationState::kMigrating;
}

enum class MigrationStrategy : uint8_t {
  kFullMaintenance = 0,
  kPartialMaintenance = 1,
  kOnline = 2,
  kGradual = 3,
};
inline constexpr size_t kMigrationStrategies = 4;
std::string_view MigrationStrategyName(MigrationStrategy s);

// What the migrating APIs answer (old API on the wallet, new API on the
// point service).
enum class MigStatus : uint8_t {
  kOk,
  kDeclined,     // funds or points do not cover the request
  kMaintenance,  // refused: a maintenance window covers the user (or everyone)
  kUnavailable,  // could not be served now (a dependency timed out, the user is in transit)
  kMoved,        // a forwarded request reached the side that no longer owns the user
  kExpired,      // the payment's hold expired before the commit
  kUnknown,      // no such payment
  kInvalid,      // a bad request (key reused with other parameters, bad arguments)
};
std::string_view MigStatusName(MigStatus s);

struct MigReply {
  MigStatus status = MigStatus::kOk;
  uint64_t id = 0;     // the payment's ID: even from the wallet, odd from the point service
  int64_t amount = 0;  // the amount paid or credited
  int64_t points = 0;  // of which from points (the point service's cross-system debit)
  std::string key;     // Lookup: the key of the payment with that ID
};

// A two-phase payment from a user to a merchant (a wallet user).
struct MigPay {
  std::string key;
  int64_t user = 0;
  int64_t merchant = 0;
  int64_t amount = 0;
  bool use_points = true;
  sim::Duration ttl = 0;
  // Sent by the other system on the user's behalf: never forwarded again.
  bool forwarded = false;
};

struct MigCredit {
  std::string key;
  int64_t user = 0;
  int64_t amount = 0;
  bool forwarded = false;
  std::vector<ValueTerm> terms = {};  // ForwardIn: the value with its expiries
};

// The second phase, by the payment's key.
struct MigResolve {
  std::string key;
  bool forwarded = false;
};

struct StatusReply {
  MigrationState state = MigrationState::kLegacy;
  bool full_maintenance = false;
};

// One entry of the status log: users [lo, hi] entered `state` at `at`
// (full maintenance: lo = hi = 0, state kMaintenance on, kLegacy off).
struct StatusChange {
  int64_t lo = 0;
  int64_t hi = 0;
  MigrationState state = MigrationState::kLegacy;
  sim::Time at = 0;
  // Orders the changes (the migrator's time when it decided the change; a
  // retry keeps it): a user takes a change only if it is newer than the one
  // it has, so a delayed duplicate never undoes a later change.
  int64_t seq = 0;
};

struct ControllerConfig {
  int64_t users = 0;
};

class MigrationController : public sim::Service {
 public:
  MigrationController(sim::NodeContext& ctx, const ControllerConfig& config);

  asio::awaitable<void> Boot() override;

  asio::awaitable<StatusReply> Get(int64_t user);
  // Sets users [lo, hi] to `state` (idempotent; ordered by change.seq) and
  // logs the change.
  asio::awaitable<bool> Set(StatusChange change);
  // Full maintenance on or off, ordered by the second member as Set is.
  asio::awaitable<bool> SetFull(std::pair<bool, int64_t> change);
  // A banner shown to users [lo, hi] (on) or removed (off): logged only.
  asio::awaitable<bool> Banner(StatusChange change);

 private:
  sim::NodeContext& ctx_;
  const ControllerConfig& config_;
  sim::Statement get_;
  sim::Statement full_;
};

// Whether the controller lets a request for `user` in now: kOk,
// kMaintenance (full maintenance; or, for a request that uses points or
// credits cashback, the user's maintenance window or online move), or
// kUnavailable (the controller did not answer).
asio::awaitable<MigStatus> AdmitRequest(sim::NodeContext& ctx, sim::NodeId controller,
                                        sim::Duration timeout, int64_t user, bool point_use);

// The status log and the banners of a controller database (read by the
// harness, also while the node is down).
std::vector<StatusChange> ReadStatusLog(sim::Database& db);
int64_t CountUsersIn(sim::Database& db, MigrationState state);

}  // namespace paylab::system
