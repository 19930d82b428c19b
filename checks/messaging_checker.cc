// Implementation of the messaging checkers (see messaging_checker.h).
#include "checks/messaging_checker.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace paylab::system {

namespace {
constexpr const char* kNames[] = {"event_applied_once", "partition_order", "no_event_lost",
                                  "no_poison_message", "mirror_matches_wallet"};

// The movements whose events are in `topic`'s log (poison left out).
std::set<int64_t> MovementsInLog(sim::Database& broker, std::string_view topic) {
  std::set<int64_t> in_log;
  sim::Statement q(broker, "SELECT payload FROM messages WHERE topic = ?");
  q.Bind(1, topic);
  while (q.Step()) {
    std::string error;
    if (auto e = DecodeMovementEvent(q.Text(0), &error)) {
      in_log.insert(static_cast<int64_t>(e->movement_id));
    }
  }
  return in_log;
}

// The movements the mirror applied from the topic (`processed`) and from
// the audit queue (`audited`, event IDs "audit:<movement>").
void ReadProcessed(sim::Database& mirror, std::set<int64_t>* processed,
                   std::set<int64_t>* audited) {
  sim::Statement q(mirror, "SELECT event_id FROM processed_events");
  while (q.Step()) {
    const std::string_view id = q.Text(0);
    if (id.starts_with("audit:")) {
      audited->insert(std::stoll(std::string(id.substr(6))));
    } else {
      processed->insert(std::stoll(std::string(id)));
    }
  }
}
}  // namespace

MessagingChecker::MessagingChecker(sim::Simulator& sim,
                                   std::function<void(const Violation&)> on_violation)
    : board_(sim, kNames, std::move(on_violation)) {
  static_assert(std::size(kNames) == kCheckCount);
}

void MessagingChecker::OnDelivered(const Message& m) {
  ++delivered_;
  if (!delivered_positions_.emplace(m.partition, m.offset).second) {
    ++redelivered_;
  }
}

void MessagingChecker::OnApplied(const Message& m, const MovementEvent& e) {
  ++applied_;
  if (!applied_events_.insert(e.movement_id).second) {
    Fail(kAppliedOnce, fmt::format("movement event {} applied again (partition {} offset {})",
                                   e.movement_id, m.partition, m.offset));
  } else {
    Pass(kAppliedOnce);
  }
}

void MessagingChecker::OnDeduplicated(const Message&) { ++deduplicated_; }

void MessagingChecker::OnPoison(const Message& m, std::string_view error) {
  Fail(kNoPoison, fmt::format("partition {} offset {}: {}", m.partition, m.offset, error));
}

void MessagingChecker::OnQueueApplied(const QueueMessage& m, const MovementEvent& e) {
  ++queue_applied_;
  if (!queue_applied_events_.insert(e.movement_id).second) {
    Fail(kAppliedOnce, fmt::format("movement event {} applied again by the audit worker "
                                   "(queue message {})",
                                   e.movement_id, m.id));
  } else {
    Pass(kAppliedOnce);
  }
}

void MessagingChecker::OnQueueDeduplicated(const QueueMessage&) { ++queue_deduplicated_; }

void MessagingChecker::OnQueuePoison(const QueueMessage&) { ++poison_received_; }

void MessagingChecker::CheckFinal(sim::Database& wallet, sim::Database& broker,
                                  sim::Database& mirror, std::string_view topic,
                                  std::string_view queue) {
  Pass(kNoPoison);
  CheckNoEventLost(wallet, broker, mirror, topic, queue);
  CheckPartitionOrder(broker, topic);
  CheckMirrorMatches(wallet, mirror);
}

// Every committed movement reached the log and was applied. (An outbox row
// never sent shows up here as a movement missing from the log.)
void MessagingChecker::CheckNoEventLost(sim::Database& wallet, sim::Database& broker,
                                        sim::Database& mirror, std::string_view topic,
                                        std::string_view queue) {
  const std::set<int64_t> in_log = MovementsInLog(broker, topic);
  std::set<int64_t> processed, audited;
  ReadProcessed(mirror, &processed, &audited);
  sim::Statement q(wallet, "SELECT id FROM movements ORDER BY seq");
  while (q.Step()) {
    const int64_t id = q.Int(0);
    if (!in_log.contains(id)) {
      Fail(kNoEventLost, fmt::format("movement {} never reached the broker's log", id));
      return;
    }
    if (!processed.contains(id)) {
      Fail(kNoEventLost, fmt::format("movement {} was never applied by the mirror", id));
      return;
    }
    if (!queue.empty() && !audited.contains(id)) {
      Fail(kNoEventLost,
           fmt::format("movement {} was never applied by the audit worker (queue {})", id, queue));
      return;
    }
  }
  Pass(kNoEventLost);
}

// Order within each partition: a producer's new sequence numbers only go
// up. A repeated seq (a re-publish after a lost ack) is a duplicate, not a
// reordering.
void MessagingChecker::CheckPartitionOrder(sim::Database& broker, std::string_view topic) {
  sim::Statement q(broker,
                   "SELECT partition, offset, producer, seq FROM messages WHERE topic = ? "
                   "ORDER BY partition, offset");
  q.Bind(1, topic);
  struct Seen {
    int64_t max = -1;
    std::set<int64_t> seqs;
  };
  std::map<std::pair<int64_t, std::string>, Seen> seen;
  while (q.Step()) {
    Seen& s = seen[{q.Int(0), std::string(q.Text(2))}];
    const int64_t seq = q.Int(3);
    if (s.seqs.insert(seq).second) {
      if (seq < s.max) {
        Fail(kPartitionOrder,
             fmt::format("partition {} offset {}: producer {} seq {} appears after seq {}",
                         q.Int(0), q.Int(1), q.Text(2), seq, s.max));
        return;
      }
      s.max = std::max(s.max, seq);
    }
  }
  Pass(kPartitionOrder);
}

// The mirror equals the wallet, over the union of both sides' accounts (a
// missing row counts as 0).
void MessagingChecker::CheckMirrorMatches(sim::Database& wallet, sim::Database& mirror) {
  std::map<std::pair<int64_t, int64_t>, std::pair<int64_t, int64_t>> both;  // wallet, mirror
  sim::Statement w(wallet, "SELECT user_id, type, balance FROM accounts");
  while (w.Step()) {
    both[{w.Int(0), w.Int(1)}].first = w.Int(2);
  }
  sim::Statement m(mirror, "SELECT user_id, type, balance FROM mirror_balances");
  while (m.Step()) {
    both[{m.Int(0), m.Int(1)}].second = m.Int(2);
  }
  for (const auto& [key, balances] : both) {
    if (balances.first != balances.second) {
      Fail(kMirrorMatches, fmt::format("user {} type {}: wallet {}, mirror {}", key.first,
                                       key.second, balances.first, balances.second));
      return;
    }
  }
  Pass(kMirrorMatches);
}

}  // namespace paylab::system
