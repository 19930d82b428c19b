// Implementation of the broker's auditor (see broker_auditor.h).
#include "checks/models/broker_auditor.h"

#include <fmt/format.h>

#include <utility>

#include "sim/check.h"
#include "system/messaging/schema.h"

namespace paylab::models {

namespace {

// The number the queue store keeps for a message the model says is in
// state `s`: the model names the contract's states, the store numbers them.
int64_t StoredState(BrokerModel::MessageState s) {
  switch (s) {
    case BrokerModel::MessageState::kLive:
      return system::Stored(system::QueueMessageState::kLive);
    case BrokerModel::MessageState::kDeleted:
      return system::Stored(system::QueueMessageState::kDeleted);
    case BrokerModel::MessageState::kDeadLettered:
      return system::Stored(system::QueueMessageState::kDeadLettered);
    case BrokerModel::MessageState::kRedriven:
      return system::Stored(system::QueueMessageState::kRedriven);
  }
  PAYLAB_CHECK(false && "a message state the queue store has no number for");
  return -1;
}

}  // namespace

BrokerAuditor::BrokerAuditor(sim::Simulator& sim, BrokerRules rules,
                             std::function<void(const system::Violation&)> on_violation)
    : check_(sim, "broker_model_agrees", std::move(on_violation)), model_(std::move(rules)) {}

void BrokerAuditor::OnBrokerApplied(const system::BrokerApplied& a) {
  if (!check_.failed()) {
    check_.Judge(model_.Check(a));
  }
}

std::string BrokerAuditor::CompareMessages(sim::Database& db) const {
  int64_t seen = 0;
  sim::Statement q(db,
                   "SELECT topic, partition, offset, key, payload, producer, seq FROM messages "
                   "ORDER BY topic, partition, offset");
  while (q.Step()) {
    ++seen;
    const std::string topic(q.Text(0));
    const auto partition = static_cast<int32_t>(q.Int(1));
    const int64_t offset = q.Int(2);
    const auto* log = model_.Partition(topic, partition);
    if (log == nullptr || offset < 0 || offset >= static_cast<int64_t>(log->size())) {
      return fmt::format(
          "{} partition {} has offset {} in the database, the model has {} message(s)", topic,
          partition, offset, log == nullptr ? 0 : log->size());
    }
    const BrokerModel::LogMessage& m = (*log)[static_cast<size_t>(offset)];
    if (m.key != q.Text(3) || m.payload_hash != Fnv1a64(q.Text(4)) || m.producer != q.Text(5) ||
        m.seq != q.Int(6)) {
      return fmt::format(
          "{} partition {} offset {} holds key '{}' (payload {:016x}, producer '{}', seq {}) in "
          "the database, the model says key '{}' (payload {:016x}, producer '{}', seq {})",
          topic, partition, offset, q.Text(3), Fnv1a64(q.Text(4)), q.Text(5), q.Int(6), m.key,
          m.payload_hash, m.producer, m.seq);
    }
  }
  if (seen != model_.message_count()) {
    return fmt::format("the database has {} messages in its topics, the model {}", seen,
                       model_.message_count());
  }
  return "";
}

std::string BrokerAuditor::CompareProducers(sim::Database& db) const {
  size_t seen = 0;
  sim::Statement q(db,
                   "SELECT topic, producer, last_seq, partition, offset FROM producer_seqs "
                   "ORDER BY topic, producer");
  while (q.Step()) {
    ++seen;
    const auto it = model_.producers().find({std::string(q.Text(0)), std::string(q.Text(1))});
    if (it == model_.producers().end() || it->second.seq != q.Int(2) ||
        it->second.partition != q.Int(3) || it->second.offset != q.Int(4)) {
      return fmt::format(
          "producer '{}' of {} last appended seq {} at partition {}, offset {} in the database; "
          "the model says {}",
          q.Text(1), q.Text(0), q.Int(2), q.Int(3), q.Int(4),
          it == model_.producers().end()
              ? std::string("it never appended")
              : fmt::format("seq {} at partition {}, offset {}", it->second.seq,
                            it->second.partition, it->second.offset));
    }
  }
  if (seen != model_.producers().size()) {
    return fmt::format("the database knows {} idempotent producers, the model {}", seen,
                       model_.producers().size());
  }
  return "";
}

std::string BrokerAuditor::CompareOffsets(sim::Database& db) const {
  size_t seen = 0;
  sim::Statement q(db,
                   "SELECT grp, topic, partition, committed FROM group_offsets "
                   "ORDER BY grp, topic, partition");
  while (q.Step()) {
    ++seen;
    const BrokerModel::OffsetKey key{std::string(q.Text(0)), std::string(q.Text(1)),
                                     static_cast<int32_t>(q.Int(2))};
    const auto it = model_.committed().find(key);
    if (it == model_.committed().end() || it->second != q.Int(3)) {
      return fmt::format(
          "group {} committed {} partition {} up to {} in the database, the model says {}",
          q.Text(0), q.Text(1), q.Int(2), q.Int(3),
          it == model_.committed().end() ? std::string("never committed")
                                         : std::to_string(it->second));
    }
  }
  if (seen != model_.committed().size()) {
    return fmt::format("the database has {} committed offsets, the model {}", seen,
                       model_.committed().size());
  }
  return "";
}

std::string BrokerAuditor::CompareQueues(sim::Database& db) const {
  int64_t seen = 0;
  sim::Statement q(db,
                   "SELECT queue, id, payload, receive_count, visible_at, state FROM "
                   "queue_messages ORDER BY queue, id");
  while (q.Step()) {
    ++seen;
    const BrokerModel::QueueMessage* m = model_.QueueMessageOf(q.Text(0), q.Int(1));
    if (m == nullptr) {
      return fmt::format("{} #{} is in the database, not in the model", q.Text(0), q.Int(1));
    }
    if (StoredState(m->state) != q.Int(5) || m->receive_count != q.Int(3) ||
        m->visible_at != q.Int(4) || m->payload_hash != Fnv1a64(q.Text(2))) {
      return fmt::format(
          "{} #{} is in state {}, received {} time(s), visible from {} ns (payload {:016x}) in "
          "the database; the model says state {}, received {} time(s), visible from {} ns "
          "(payload {:016x})",
          q.Text(0), q.Int(1), q.Int(5), q.Int(3), q.Int(4), Fnv1a64(q.Text(2)),
          StoredState(m->state), m->receive_count, m->visible_at, m->payload_hash);
    }
  }
  if (seen != model_.queue_message_count()) {
    return fmt::format("the database has {} queue messages, the model {}", seen,
                       model_.queue_message_count());
  }
  return "";
}

void BrokerAuditor::CheckFinal(sim::Database& db) {
  check_.JudgeFinal({[&] { return CompareMessages(db); }, [&] { return CompareProducers(db); },
                     [&] { return CompareOffsets(db); }, [&] { return CompareQueues(db); }});
}

}  // namespace paylab::models
