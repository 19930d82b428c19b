// The messaging checkers, fed what the consumers see, then checked against
// the three databases (wallet outbox, broker log, mirror) at quiescence.
//
// Checks:
//   event_applied_once   no event has a second effect in one consumer group
//   partition_order      within a partition, each producer's events appear
//                        in the order it published them (first occurrences)
//   no_event_lost        every committed movement is in the broker's log and
//                        was applied by the consumer group
//   no_poison_message    every delivered payload decoded
//   mirror_matches_wallet  the mirrored balances equal the wallet's
// With a queue, no_event_lost and event_applied_once also cover the audit
// worker that reads it. Whether the topic, the queue and its dead-letter
// queue drained is the QueueChecker's to judge (checks/queue_checker.h),
// for every queue of the broker alike.
// Figures: delivered, redelivered (a (partition, offset) delivered again),
// deduplicated (skipped by the processed-event record), applied.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "sim/simulator.h"
#include "sim/storage.h"
#include "system/common/check_board.h"
#include "system/wallet/mirror.h"
#include "checks/wallet_checker.h"

namespace paylab::system {

class MessagingChecker : public ConsumerObserver {
 public:
  MessagingChecker(sim::Simulator& sim, std::function<void(const Violation&)> on_violation);

  void OnDelivered(const Message& m) override;
  void OnApplied(const Message& m, const MovementEvent& e) override;
  void OnDeduplicated(const Message& m) override;
  void OnPoison(const Message& m, std::string_view error) override;
  void OnQueueApplied(const QueueMessage& m, const MovementEvent& e) override;
  void OnQueueDeduplicated(const QueueMessage& m) override;
  void OnQueuePoison(const QueueMessage& m) override;

  // `queue` may be empty (no audit queue).
  void CheckFinal(sim::Database& wallet, sim::Database& broker, sim::Database& mirror,
                  std::string_view topic, std::string_view queue);

  const std::vector<CheckStatus>& statuses() const { return board_.statuses(); }
  const std::optional<Violation>& first_violation() const { return board_.first_violation(); }
  int64_t delivered() const { return delivered_; }
  int64_t redelivered() const { return redelivered_; }
  int64_t deduplicated() const { return deduplicated_; }
  int64_t applied() const { return applied_; }
  int64_t queue_applied() const { return queue_applied_; }
  int64_t queue_deduplicated() const { return queue_deduplicated_; }
  int64_t poison_received() const { return poison_received_; }

 private:
  enum Check : size_t {
    kAppliedOnce,
    kPartitionOrder,
    kNoEventLost,
    kNoPoison,
    kMirrorMatches,
    kCheckCount,
  };
  void Pass(Check c) { board_.Pass(c); }
  void Fail(Check c, std::string detail) { board_.Fail(c, std::move(detail)); }

  // The final checks, one per invariant, in the order CheckFinal runs them.
  void CheckNoEventLost(sim::Database& wallet, sim::Database& broker, sim::Database& mirror,
                        std::string_view topic, std::string_view queue);
  void CheckPartitionOrder(sim::Database& broker, std::string_view topic);
  void CheckMirrorMatches(sim::Database& wallet, sim::Database& mirror);

  CheckBoard board_;
  std::set<std::pair<int32_t, int64_t>> delivered_positions_;
  std::unordered_set<uint64_t> applied_events_;  // membership only
  std::unordered_set<uint64_t> queue_applied_events_;
  int64_t delivered_ = 0;
  int64_t redelivered_ = 0;
  int64_t deduplicated_ = 0;
  int64_t applied_ = 0;
  int64_t queue_applied_ = 0;
  int64_t queue_deduplicated_ = 0;
  int64_t poison_received_ = 0;
};

}  // namespace paylab::system
