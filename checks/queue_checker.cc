// Implementation of the queue checks (see queue_checker.h).
#include "checks/queue_checker.h"

#include <fmt/format.h>

#include "sim/check.h"
#include "system/messaging/schema.h"

namespace paylab::system {

namespace {

constexpr const char* kNames[] = {"queue_drained", "dead_letters_are_poison"};

// How many receive counts the backlog lists before it says "...": enough to
// tell a queue nobody reads (all 0) from a message received forever.
constexpr int kReceiveCountsShown = 5;

const WatchedTopic& Describe(const std::vector<WatchedTopic>& watched, std::string_view topic) {
  for (const WatchedTopic& w : watched) {
    if (w.name == topic) {
      return w;
    }
  }
  PAYLAB_CHECK(false && "a topic of the broker has no description for the queue checker");
  return watched.front();
}

const QueueConfig* SourceOf(const std::vector<QueueConfig>& queues, std::string_view dlq) {
  for (const QueueConfig& q : queues) {
    if (q.dead_letter == dlq) {
      return &q;
    }
  }
  return nullptr;
}

int64_t MaxReceives(sim::Database& broker, std::string_view queue) {
  sim::Statement q(broker, fmt::format("SELECT COALESCE(MAX(receive_count), 0) FROM queue_messages "
                                       "WHERE queue = ? AND state = {}",
                                       Stored(QueueMessageState::kLive)));
  q.Bind(1, queue);
  return q.Step() ? q.Int(0) : 0;
}

}  // namespace

std::string QueueBacklog(sim::Database& broker, std::string_view queue) {
  sim::Statement q(broker, fmt::format("SELECT receive_count, COUNT(*) FROM queue_messages WHERE "
                                       "queue = ? AND state = {} GROUP BY receive_count ORDER BY "
                                       "receive_count",
                                       Stored(QueueMessageState::kLive)));
  q.Bind(1, queue);
  int64_t total = 0;
  int shown = 0;
  std::string counts;
  while (q.Step()) {
    total += q.Int(1);
    if (shown < kReceiveCountsShown) {
      counts += fmt::format("{}{} x{}", shown == 0 ? "" : ", ", q.Int(0), q.Int(1));
    } else if (shown == kReceiveCountsShown) {
      counts += ", ...";
    }
    ++shown;
  }
  if (total == 0) {
    return "";
  }
  return fmt::format("{} message{} (receive counts: {})", total, total == 1 ? "" : "s", counts);
}

QueueChecker::QueueChecker(sim::Simulator& sim, std::function<void(const Violation&)> on_violation)
    : board_(sim, kNames, std::move(on_violation)) {
  static_assert(std::size(kNames) == kCheckCount);
}

void QueueChecker::CheckFinal(sim::Database& broker, const std::vector<TopicConfig>& topics,
                              const std::vector<QueueConfig>& queues,
                              const std::vector<WatchedTopic>& watched) {
  for (const TopicConfig& t : topics) {
    bool feeds_queues = false;
    for (const QueueConfig& q : queues) {
      feeds_queues = feeds_queues || q.topic == t.name;
    }
    CheckTopic(broker, t, Describe(watched, t.name), feeds_queues);
  }
  CheckQueues(broker, queues);
  CheckDeadLetters(broker, queues, watched);
}

void QueueChecker::CheckQueues(sim::Database& broker, const std::vector<QueueConfig>& queues) {
  // Every queue is looked at before any is judged, so the first failure can
  // also name the other queues left undrained.
  std::vector<std::pair<const QueueConfig*, std::string>> left;
  std::vector<const QueueConfig*> drained;
  for (const QueueConfig& q : queues) {
    if (q.topic.empty()) {
      continue;  // a dead-letter queue: judged by dead_letters_are_poison
    }
    std::string backlog = QueueBacklog(broker, q.name);
    if (backlog.empty()) {
      board_.Pass(kQueueDrained);
    } else {
      left.emplace_back(&q, std::move(backlog));
    }
  }
  for (size_t i = 0; i < left.size(); ++i) {
    const QueueConfig& q = *left[i].first;
    // Without a dead-letter queue a message received again and again stays
    // forever: say so when that is what happened.
    const bool received = MaxReceives(broker, q.name) > 0;
    std::string detail = fmt::format(
        "queue {} still holds {}, neither deleted nor dead-lettered{}", q.name, left[i].second,
        received && q.dead_letter.empty() ? " (no dead-letter queue)" : "");
    if (i == 0 && left.size() > 1) {
      std::string others;
      for (size_t k = 1; k < left.size(); ++k) {
        others += fmt::format("{}{}: {}", k == 1 ? "" : "; ", left[k].first->name, left[k].second);
      }
      detail += fmt::format("; also not drained: {}", others);
    }
    board_.Fail(kQueueDrained, std::move(detail));
  }
}

void QueueChecker::CheckDeadLetters(sim::Database& broker, const std::vector<QueueConfig>& queues,
                                    const std::vector<WatchedTopic>& watched) {
  for (const QueueConfig& dlq : queues) {
    const QueueConfig* source = SourceOf(queues, dlq.name);
    if (source == nullptr) {
      continue;  // not a dead-letter queue
    }
    const WatchedTopic& topic = Describe(watched, source->topic);
    sim::Statement q(broker, fmt::format("SELECT id, payload FROM queue_messages WHERE queue = ? "
                                         "AND state = {} ORDER BY id",
                                         Stored(QueueMessageState::kLive)));
    q.Bind(1, dlq.name);
    std::optional<std::string> good;
    while (!good && q.Step()) {
      if (topic.decodes(q.Text(1))) {
        good = fmt::format(
            "dead-letter queue {} (of {}) holds message {}, a good event never "
            "applied: {}",
            dlq.name, source->name, q.Int(0), q.Text(1));
      }
    }
    if (good) {
      board_.Fail(kDeadLettersArePoison, std::move(*good));
    } else {
      board_.Pass(kDeadLettersArePoison);
    }
  }
}

void QueueChecker::CheckTopic(sim::Database& broker, const TopicConfig& topic,
                              const WatchedTopic& watched, bool feeds_queues) {
  if (watched.group.empty()) {
    if (feeds_queues) {
      return;  // read only through its queues, which are judged one by one
    }
    sim::Statement q(broker, "SELECT COUNT(*) FROM messages WHERE topic = ?");
    q.Bind(1, topic.name);
    const int64_t n = q.Step() ? q.Int(0) : 0;
    if (n > 0) {
      board_.Fail(kQueueDrained,
                  fmt::format("topic {} holds {} messages and nothing reads it", topic.name, n));
    } else {
      board_.Pass(kQueueDrained);
    }
    return;
  }
  // The group's committed offset is the next offset it will read.
  sim::Statement q(broker,
                   "SELECT m.partition, m.end, COALESCE(g.committed, 0) FROM (SELECT partition, "
                   "MAX(offset) + 1 AS end FROM messages WHERE topic = ? GROUP BY partition) m "
                   "LEFT JOIN group_offsets g ON g.topic = ? AND g.partition = m.partition AND "
                   "g.grp = ? WHERE COALESCE(g.committed, 0) < m.end ORDER BY m.partition");
  q.Bind(1, topic.name).Bind(2, topic.name).Bind(3, watched.group);
  if (q.Step()) {
    board_.Fail(
        kQueueDrained,
        fmt::format("topic {}: group {} committed up to offset {} of partition {}, whose "
                    "log ends at {} ({} messages never consumed)",
                    topic.name, watched.group, q.Int(2), q.Int(0), q.Int(1), q.Int(1) - q.Int(2)));
  } else {
    board_.Pass(kQueueDrained);
  }
}

}  // namespace paylab::system
