// The queue checks: at quiescence, every queue and topic of the broker is
// drained, and every dead-letter queue holds only what it was built for.
//
// The checker reads the broker's database and the broker's own
// configuration (every queue it serves), so no queue of the platform can go
// unjudged: the runner hands over the configuration it gave the broker, and
// describes every topic (how to tell a good event from poison, and which
// consumer group reads it, if any). A topic or a queue it has no
// description for is a programmer error (an assertion).
//
// Checks, on one CheckBoard:
//   queue_drained            evaluated once per queue fed by a topic: no
//                            message is left that was neither deleted nor
//                            dead-lettered (the detail names the queue, how
//                            many remain and their receive counts); and once
//                            per topic read by a consumer group: the group
//                            committed up to the end of every partition; and
//                            once per topic with no consumer at all: it is
//                            empty. A dead-letter queue is not judged here
//                            (holding messages is its purpose).
//   dead_letters_are_poison  evaluated once per dead-letter queue: every
//                            message it holds is undecodable (poison). A
//                            good event there was given up on by its
//                            consumer and never applied.
//
// Determinism: queues and topics are judged in configuration order; the
// database is read with ORDER BY.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/simulator.h"
#include "sim/storage.h"
#include "system/messaging/broker_log.h"
#include "system/common/check_board.h"
#include "system/messaging/queue_store.h"

namespace paylab::system {

// What the checker needs to know of one topic.
struct WatchedTopic {
  std::string name;
  // True when `payload` is a good event of this topic (it decodes).
  std::function<bool(std::string_view payload)> decodes;
  // The consumer group that reads the topic itself ("" when only queues
  // fed by it read it).
  std::string group;
};

class QueueChecker {
 public:
  QueueChecker(sim::Simulator& sim, std::function<void(const Violation&)> on_violation);

  // REQUIRES: every topic of `topics` and every topic feeding a queue of
  // `queues` is described in `watched`.
  void CheckFinal(sim::Database& broker, const std::vector<TopicConfig>& topics,
                  const std::vector<QueueConfig>& queues, const std::vector<WatchedTopic>& watched);

  const std::vector<CheckStatus>& statuses() const { return board_.statuses(); }
  const std::optional<Violation>& first_violation() const { return board_.first_violation(); }

 private:
  enum Check : size_t { kQueueDrained, kDeadLettersArePoison, kCheckCount };

  void CheckQueues(sim::Database& broker, const std::vector<QueueConfig>& queues);
  void CheckDeadLetters(sim::Database& broker, const std::vector<QueueConfig>& queues,
                        const std::vector<WatchedTopic>& watched);
  void CheckTopic(sim::Database& broker, const TopicConfig& topic, const WatchedTopic& watched,
                  bool feeds_queues);

  CheckBoard board_;
};

// The live messages of `queue` (neither deleted nor moved away), or "" when
// there are none: "N messages (receive counts: 0 x480, 1 x7)". Exposed for
// the runner's wait for the queues to drain.
std::string QueueBacklog(sim::Database& broker, std::string_view queue);

}  // namespace paylab::system
