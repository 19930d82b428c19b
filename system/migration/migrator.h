// The migrator: the node that runs one migration strategy (seeds 000, 001)
// against the controller, the wallet and the point service.
//
//  full_maintenance     everything stops (the controller's full flag); the
//                       in-flight holds drain; every user is moved in
//                       batches (MoveOut, then Activate); all switch; the
//                       service reopens.
//  partial_maintenance  per cohort, the seven steps of seed 000: banner;
//                       maintenance on for the cohort (no point use);
//                       drain the cohort's in-flight holds; copy (the
//                       point service's provisional lots) and verify them
//                       against the wallet; switch (MoveOut expecting the
//                       verified balances, confirm the copies, status
//                       migrated); maintenance off; banner off. A cohort
//                       whose drain times out or whose verification fails
//                       is rolled back (copies revoked, status legacy) and
//                       tried again one cohort gap later.
//  online               no downtime: a background job moves users one by
//                       one (status migrating for the job's own time only:
//                       MoveOut, Activate, status migrated); the wallet's
//                       compatibility sweep takes care of holds still in
//                       flight.
//  gradual              the migrated-flag approach (seed 001): per user,
//                       point use is locked, the user's own holds drain,
//                       then the user is moved and the flag set.
//
// Moving data costs time: copy_per_user of virtual time per user moved
// (sleep), so a bulk copy of many users keeps its window open longer.
// Progress is durable (the migrator's database) and every step is
// idempotent by key, so a crash resumes where it stopped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/context.h"
#include "system/migration/controller.h"

namespace paylab::system {

struct MigratorConfig {
  MigrationStrategy strategy = MigrationStrategy::kOnline;
  int64_t users = 0;
  sim::Time start = 0;
  sim::NodeId controller = 0;
  sim::NodeId wallet = 0;
  sim::NodeId point = 0;
  sim::Duration rpc_timeout = 500 * sim::kMillisecond;
  sim::Duration copy_per_user = 0;
  // full: users per batch.
  int64_t batch_size = 500;
  // partial.
  int64_t cohorts = 4;
  sim::Duration cohort_gap = 60 * sim::kSecond;
  sim::Duration banner_lead = 20 * sim::kSecond;
  int64_t cohort_attempts_max = 3;
  // Drains (full, partial, gradual's per-user drain).
  sim::Duration drain_timeout = 60 * sim::kSecond;
  sim::Duration drain_poll = 200 * sim::kMillisecond;
  // After the drain, in-flight requests that read the old status finish.
  sim::Duration drain_settle = 1 * sim::kSecond;
  // online, gradual: users started per second.
  double job_rate_per_s = 200;
  // DEFECT no_drain_before_switch: the maintenance strategies switch with
  // holds still in flight.
  bool defect_no_drain = false;
};

// What the migrator did (volatile figures live in the harness's struct).
struct MigratorCounters {
  int64_t users_moved = 0;
  int64_t cohorts_done = 0;
  int64_t cohorts_rolled_back = 0;
  int64_t drain_timeouts = 0;
  sim::Time started_at = -1;
  sim::Time finished_at = -1;
};

// Whether the migrator's database records the migration as finished.
bool MigrationFinished(sim::Database& db);

class Migrator : public sim::Service {
 public:
  Migrator(sim::NodeContext& ctx, const MigratorConfig& config, MigratorCounters* counters);

  asio::awaitable<void> Boot() override;

 private:
  asio::awaitable<void> Run();
  asio::awaitable<void> RunFull();
  asio::awaitable<void> RunPartial();
  asio::awaitable<void> RunPerUser();
  // One cohort attempt; true if it switched.
  asio::awaitable<bool> Cohort(int64_t lo, int64_t hi, int64_t attempt);
  asio::awaitable<void> RollBackCohort(int64_t lo, int64_t hi, int64_t attempt);
  // Waits until no hold of users [lo, hi] is held; false on timeout.
  asio::awaitable<bool> Drain(int64_t lo, int64_t hi, sim::Duration timeout);
  asio::awaitable<std::vector<int64_t>> MoveAndActivate(const std::string& key,
                                                        std::vector<int64_t> users,
                                                        int64_t attempt);
  asio::awaitable<void> SetStatus(int64_t lo, int64_t hi, MigrationState s);
  asio::awaitable<void> Banner(int64_t lo, int64_t hi, bool on);
  asio::awaitable<void> SleepUntil(sim::Time t);
  int64_t NextSeq();
  int64_t Progress(std::string_view name);
  void SetProgress(std::string_view name, int64_t value);

  sim::NodeContext& ctx_;
  const MigratorConfig& config_;
  MigratorCounters& counters_;
  int64_t last_seq_ = 0;
};

}  // namespace paylab::system
