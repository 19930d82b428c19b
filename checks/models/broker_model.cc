// Implementation of the broker's reference model (see broker_model.h).
#include "checks/models/broker_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "sim/check.h"

namespace paylab::models {

using system::BrokerApplied;
using system::BrokerRequest;

uint64_t Fnv1a64(std::string_view s) {
  constexpr uint64_t kOffsetBasis = 14695981039346656037ull;
  constexpr uint64_t kPrime = 1099511628211ull;
  uint64_t h = kOffsetBasis;
  for (const char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= kPrime;
  }
  return h;
}

namespace {

std::string Seconds(sim::Time t) { return fmt::format("{:.6f} s", sim::ToSeconds(t)); }

std::string RequestText(const BrokerRequest& r) {
  const std::string at = fmt::format(" at t={}", Seconds(r.now));
  switch (r.op) {
    case BrokerOp::kOpen:
      return "open (a boot)" + at;
    case BrokerOp::kPublish:
      return fmt::format("publish to {} of key '{}' (producer '{}', seq {}){}", r.topic, r.key,
                         r.producer, r.seq, at);
    case BrokerOp::kHeartbeat:
      return fmt::format("heartbeat of {} in group {} for {}{}", r.member, r.group, r.topic, at);
    case BrokerOp::kCommit:
      return fmt::format("commit by {} of group {}: {} partition {} up to offset {}{}", r.member,
                         r.group, r.topic, r.partition, r.next_offset, at);
    case BrokerOp::kFanOut:
      return fmt::format("fan-out of a message of {}{}", r.topic, at);
    case BrokerOp::kInject:
      return fmt::format("inject into {}{}", r.queue, at);
    case BrokerOp::kReceive:
      return fmt::format("receive from {} (max {}){}", r.queue, r.max, at);
    case BrokerOp::kDelete:
      return fmt::format("delete of {} #{} with receipt {}", r.queue, r.id, r.receipt);
    case BrokerOp::kRedrive:
      return fmt::format("redrive of {}{}", r.queue, at);
  }
  return "?";
}

std::string PublishText(BrokerStatus s, int32_t partition, int64_t offset, bool duplicate) {
  if (s != BrokerStatus::kOk) {
    return std::string(system::BrokerStatusName(s));
  }
  return fmt::format("ok ({}partition {}, offset {})", duplicate ? "duplicate of " : "", partition,
                     offset);
}

std::string AssignmentText(BrokerStatus s, int64_t generation,
                           const std::vector<int32_t>& partitions) {
  if (s != BrokerStatus::kOk) {
    return std::string(system::BrokerStatusName(s));
  }
  return fmt::format("ok (generation {}, partitions [{}])", generation,
                     fmt::join(partitions, ", "));
}

std::string HandedText(const std::vector<BrokerModel::Handed>& handed, int64_t dead_lettered) {
  std::string out = "ok: handed out [";
  for (size_t i = 0; i < handed.size(); ++i) {
    out += fmt::format("{}#{} receipt {}", i == 0 ? "" : ", ", handed[i].id, handed[i].receipt);
  }
  return out + fmt::format("], dead-lettered {}", dead_lettered);
}

std::string ChangeText(const BrokerModel::Change& c) {
  switch (c.event) {
    case QueueEvent::kEnqueued:
      return fmt::format("enqueued {} #{} visible from {} (payload {:016x})", c.queue, c.id,
                         Seconds(c.visible_at), c.payload_hash);
    case QueueEvent::kReceived:
      return fmt::format("received {} #{} (receipt {}) hidden until {}", c.queue, c.id,
                         c.receive_count, Seconds(c.visible_at));
    default:
      return fmt::format("{} {} #{}", system::QueueEventName(c.event), c.queue, c.id);
  }
}

std::string ChangesText(const std::vector<BrokerModel::Change>& changes, size_t from) {
  std::string out;
  for (size_t i = from; i < changes.size(); ++i) {
    out += fmt::format("{}{}", i == from ? " " : "; ", ChangeText(changes[i]));
  }
  return out.empty() ? " none" : out;
}

std::string GroupText(const std::optional<BrokerModel::Group>& g) {
  if (!g) {
    return "no group touched";
  }
  return fmt::format("left [{}]{}, generation {} -> {}, members [{}]", fmt::join(g->left, ", "),
                     g->joined ? ", the caller joined" : "", g->generation_before, g->generation,
                     fmt::join(g->members, ", "));
}

std::string AppendedText(const std::optional<BrokerModel::Appended>& a) {
  if (!a) {
    return "nothing appended";
  }
  return fmt::format("appended at partition {}, offset {}, key '{}' (payload {:016x})",
                     a->partition, a->offset, a->key, a->payload_hash);
}

std::string CommittedText(const std::optional<BrokerModel::Committed>& c) {
  if (!c) {
    return "no committed offset moved";
  }
  return fmt::format("committed offset {} -> {}", c->from, c->to);
}

}  // namespace

BrokerModel::BrokerModel(BrokerRules rules) : rules_(std::move(rules)) {
  for (const system::TopicConfig& t : rules_.topics) {
    PAYLAB_CHECK(t.partitions >= 1);
    topics_.push_back(
        Topic{t, std::vector<std::vector<LogMessage>>(static_cast<size_t>(t.partitions))});
  }
  for (const system::QueueConfig& q : rules_.queues) {
    queues_.push_back(Queue{.config = q});
  }
  for (const system::QueueConfig& q : rules_.queues) {
    if (!q.dead_letter.empty()) {
      Queue* dlq = FindQueue(q.dead_letter);
      PAYLAB_CHECK(dlq != nullptr);
      dlq->source = q.name;
    }
  }
}

BrokerModel::Topic* BrokerModel::FindTopic(std::string_view name) {
  for (Topic& t : topics_) {
    if (t.config.name == name) {
      return &t;
    }
  }
  return nullptr;
}

BrokerModel::Queue* BrokerModel::FindQueue(std::string_view name) {
  for (Queue& q : queues_) {
    if (q.config.name == name) {
      return &q;
    }
  }
  return nullptr;
}

std::string BrokerModel::Check(const BrokerApplied& fact) {
  ++stats_.requests;
  const BrokerRequest& r = fact.request;
  if (std::string order = CheckFanOutOrder(fact); !order.empty()) {
    return fmt::format("{}: {}", RequestText(r), order);
  }
  CollectNewIds(fact);
  Prediction p;
  switch (r.op) {
    case BrokerOp::kOpen:
      PredictOpen();
      break;
    case BrokerOp::kPublish:
      PredictPublish(r, p);
      break;
    case BrokerOp::kHeartbeat:
      PredictHeartbeat(r, p);
      break;
    case BrokerOp::kCommit:
      PredictCommit(r, p);
      break;
    case BrokerOp::kFanOut:
      PredictFanOut(r, p);
      break;
    case BrokerOp::kInject:
      PredictInject(r, p);
      break;
    case BrokerOp::kReceive:
      PredictReceive(r, p);
      break;
    case BrokerOp::kDelete:
      PredictDelete(r, p);
      break;
    case BrokerOp::kRedrive:
      PredictRedrive(r, p);
      break;
  }
  std::string diff = p.broken.empty() ? Compare(fact, p) : p.broken;
  return diff.empty() ? "" : fmt::format("{}: {}", RequestText(r), diff);
}

std::string BrokerModel::CheckFanOutOrder(const BrokerApplied& fact) {
  if (!rules_.fan_out_follows_append) {
    return "";
  }
  const BrokerRequest& r = fact.request;
  if (!pending_fan_out_) {
    return r.op == BrokerOp::kFanOut ? "expected no fan-out: no message was appended before it"
                                     : "";
  }
  const PendingFanOut f = *pending_fan_out_;
  pending_fan_out_.reset();
  const bool same =
      r.op == BrokerOp::kFanOut && r.topic == f.topic && Fnv1a64(r.payload) == f.payload_hash;
  if (same) {
    return "";  // formatted only on a difference: this runs for every append
  }
  const std::string expected =
      fmt::format("expected the fan-out of the message appended to {} (partition {}, offset {})",
                  f.topic, f.partition, f.offset);
  if (r.op != BrokerOp::kFanOut) {
    return fmt::format("{} as the broker's next call; the broker made this {} call first", expected,
                       system::BrokerOpName(r.op));
  }
  return fmt::format("{}; the broker fanned out another message (payload {:016x})", expected,
                     Fnv1a64(r.payload));
}

void BrokerModel::CollectNewIds(const BrokerApplied& fact) {
  new_ids_.clear();
  new_ids_used_.clear();
  for (const system::QueueChange& c : fact.queue) {
    if (c.event == QueueEvent::kEnqueued) {
      auto it = new_ids_.find(c.queue);
      if (it == new_ids_.end()) {
        it = new_ids_.emplace(std::string(c.queue), std::vector<int64_t>{}).first;
      }
      it->second.push_back(c.id);
    }
  }
}

// --- topics ------------------------------------------------------------------

void BrokerModel::PredictOpen() {
  ++stats_.boots;
  groups_.clear();  // membership lives in the coordinator's memory
}

void BrokerModel::PredictPublish(const BrokerRequest& r, Prediction& p) {
  Topic* t = FindTopic(r.topic);
  if (t == nullptr) {
    p.status = BrokerStatus::kNoSuchTopic;
    ++stats_.refusals;
    return;
  }
  const bool idempotent = t->config.idempotent_producer;
  if (idempotent && (r.producer.empty() || r.seq < 0)) {
    p.status = BrokerStatus::kInvalidArgument;
    ++stats_.refusals;
    return;
  }
  const auto producer = std::make_pair(std::string(r.topic), std::string(r.producer));
  if (idempotent) {
    const auto it = producers_.find(producer);
    if (it != producers_.end() && r.seq <= it->second.seq) {
      p.duplicate = true;
      p.partition = it->second.partition;
      p.offset = it->second.offset;
      ++stats_.duplicates_suppressed;
      return;
    }
  }
  p.partition = static_cast<int32_t>(Fnv1a64(r.key) % static_cast<uint64_t>(t->config.partitions));
  std::vector<LogMessage>& log = t->partitions[static_cast<size_t>(p.partition)];
  p.offset = static_cast<int64_t>(log.size());
  const uint64_t payload_hash = Fnv1a64(r.payload);
  log.push_back(LogMessage{std::string(r.key), payload_hash, std::string(r.producer), r.seq});
  if (idempotent) {
    producers_[producer] = LastAppend{r.seq, p.partition, p.offset};
  }
  p.appended = Appended{p.partition, p.offset, std::string(r.key), payload_hash};
  ++stats_.published;
  if (rules_.fan_out_follows_append) {
    pending_fan_out_ = PendingFanOut{std::string(r.topic), payload_hash, p.partition, p.offset};
  }
}

void BrokerModel::ExpireMembers(GroupState& g, sim::Time now, sim::Duration timeout,
                                Prediction& p) {
  bool left = false;
  for (auto it = g.members.begin(); it != g.members.end();) {
    if (now - it->second > timeout) {
      p.group->left.push_back(it->first);
      it = g.members.erase(it);
      ++stats_.members_expired;
      left = true;
    } else {
      ++it;
    }
  }
  if (left) {
    ++g.generation;
    ++stats_.rebalances;
  }
}

void BrokerModel::NoteGroup(const GroupState& g, Prediction& p) {
  p.group->generation = g.generation;
  for (const auto& [name, last] : g.members) {
    p.group->members.push_back(name);
  }
}

std::vector<int32_t> BrokerModel::Owned(const GroupState& g, std::string_view member,
                                        int32_t partitions) {
  std::vector<int32_t> owned;
  int32_t index = 0;
  for (const auto& [name, last] : g.members) {
    if (name == member) {
      const auto n = static_cast<int32_t>(g.members.size());
      for (int32_t p = 0; p < partitions; ++p) {
        if (p % n == index) {
          owned.push_back(p);
        }
      }
      return owned;
    }
    ++index;
  }
  return owned;  // not a member: nothing
}

void BrokerModel::PredictHeartbeat(const BrokerRequest& r, Prediction& p) {
  if (r.group.empty() || r.member.empty() || r.session_timeout <= 0) {
    p.status = BrokerStatus::kInvalidArgument;
    ++stats_.refusals;
    return;
  }
  const Topic* t = FindTopic(r.topic);
  if (t == nullptr) {
    p.status = BrokerStatus::kNoSuchTopic;
    ++stats_.refusals;
    return;
  }
  GroupState& g = groups_[std::string(r.group)];
  p.group = Group{.generation_before = g.generation};
  ExpireMembers(g, r.now, r.session_timeout, p);
  const auto [it, joined] = g.members.insert_or_assign(std::string(r.member), r.now);
  if (joined) {
    ++g.generation;
    ++stats_.rebalances;
    p.group->joined = true;
  }
  NoteGroup(g, p);
  p.generation = g.generation;
  p.partitions = Owned(g, r.member, t->config.partitions);
}

void BrokerModel::PredictCommit(const BrokerRequest& r, Prediction& p) {
  const Topic* t = FindTopic(r.topic);
  const bool named = !r.group.empty() && !r.member.empty() && r.session_timeout > 0;
  if (named && t == nullptr) {
    p.status = BrokerStatus::kNoSuchTopic;
    ++stats_.refusals;
    return;
  }
  if (!named || r.partition < 0 || r.partition >= t->config.partitions || r.next_offset < 0 ||
      r.next_offset >
          static_cast<int64_t>(t->partitions[static_cast<size_t>(r.partition)].size())) {
    p.status = BrokerStatus::kInvalidArgument;
    ++stats_.refusals;
    return;
  }
  const OffsetKey key{std::string(r.group), std::string(r.topic), r.partition};
  const auto committed = committed_.find(key);
  const int64_t existing = committed == committed_.end() ? 0 : committed->second;
  p.committed_offset = existing;
  const auto git = groups_.find(std::get<0>(key));
  if (git == groups_.end()) {
    p.status = BrokerStatus::kNotOwner;
    ++stats_.commits_refused;
    return;
  }
  GroupState& g = git->second;
  p.group = Group{.generation_before = g.generation};
  ExpireMembers(g, r.now, r.session_timeout, p);
  NoteGroup(g, p);
  const std::vector<int32_t> owned = Owned(g, r.member, t->config.partitions);
  if (std::find(owned.begin(), owned.end(), r.partition) == owned.end()) {
    p.status = BrokerStatus::kNotOwner;
    ++stats_.commits_refused;
    return;
  }
  ++stats_.commits;
  if (r.next_offset < existing) {
    ++stats_.commits_behind;
  }
  if (r.next_offset > existing) {
    committed_[key] = r.next_offset;
    p.committed_offset = r.next_offset;
    p.committed = Committed{existing, r.next_offset};
  }
}

// --- queues ------------------------------------------------------------------

void BrokerModel::LookAt(Queue& q, sim::Time now) {
  if (now < q.looked_at) {
    // Time went back: hide again what is not visible yet at `now`.
    for (auto it = q.visible.begin(); it != q.visible.end();) {
      const sim::Time at = q.messages.at(*it).visible_at;
      if (at > now) {
        q.hidden.emplace(at, *it);
        it = q.visible.erase(it);
      } else {
        ++it;
      }
    }
  }
  while (!q.hidden.empty() && q.hidden.begin()->first <= now) {
    q.visible.insert(q.hidden.begin()->second);
    q.hidden.erase(q.hidden.begin());
  }
  q.looked_at = now;
}

void BrokerModel::Unlist(Queue& q, int64_t id) {
  if (q.visible.erase(id) == 0) {
    PAYLAB_CHECK(q.hidden.erase({q.messages.at(id).visible_at, id}) == 1);
  }
}

void BrokerModel::Enqueue(Queue& q, uint64_t payload_hash, sim::Time now, Prediction& p) {
  const auto ids = new_ids_.find(q.config.name);
  size_t& used = new_ids_used_[q.config.name];
  if (ids == new_ids_.end() || used >= ids->second.size()) {
    // The facts name no new message here: the comparison shows it.
    p.changes.push_back(Change{QueueEvent::kEnqueued, q.config.name, 0, 0, now, payload_hash});
    return;
  }
  const int64_t id = ids->second[used++];
  if (id <= q.last_id && p.broken.empty()) {
    p.broken = fmt::format(
        "the broker gave a new message of {} the ID {}, not above the queue's last ID {}",
        q.config.name, id, q.last_id);
    return;
  }
  q.messages.emplace(id, QueueMessage{MessageState::kLive, 0, now, payload_hash});
  q.last_id = id;
  ++queue_messages_;
  if (now <= q.looked_at) {
    q.visible.insert(id);
  } else {
    q.hidden.emplace(now, id);
  }
  p.changes.push_back(Change{QueueEvent::kEnqueued, q.config.name, id, 0, now, payload_hash});
}

void BrokerModel::PredictFanOut(const BrokerRequest& r, Prediction& p) {
  const uint64_t payload_hash = Fnv1a64(r.payload);
  for (Queue& q : queues_) {
    if (!q.config.topic.empty() && q.config.topic == r.topic) {
      Enqueue(q, payload_hash, r.now, p);
    }
  }
}

void BrokerModel::PredictInject(const BrokerRequest& r, Prediction& p) {
  Queue* q = FindQueue(r.queue);
  if (q == nullptr) {
    p.queue_status = QueueStatus::kNoSuchQueue;
    ++stats_.refusals;
    return;
  }
  Enqueue(*q, Fnv1a64(r.payload), r.now, p);
}

void BrokerModel::PredictReceive(const BrokerRequest& r, Prediction& p) {
  Queue* q = FindQueue(r.queue);
  if (q == nullptr || r.max < 1) {
    p.queue_status = q == nullptr ? QueueStatus::kNoSuchQueue : QueueStatus::kInvalidArgument;
    ++stats_.refusals;
    return;
  }
  LookAt(*q, r.now);
  std::vector<int64_t> due;
  for (auto it = q->visible.begin(); it != q->visible.end() && std::ssize(due) < r.max; ++it) {
    due.push_back(*it);
  }
  const system::QueueConfig& c = q->config;
  for (const int64_t id : due) {
    QueueMessage& m = q->messages.at(id);
    const int64_t count = m.receive_count + 1;
    q->visible.erase(id);
    if (c.max_receives > 0 && count > c.max_receives && !c.dead_letter.empty()) {
      // Moved instead of handed out: not a receive, its count stays.
      m.state = MessageState::kDeadLettered;
      p.changes.push_back(Change{.event = QueueEvent::kDeadLettered, .queue = c.name, .id = id});
      Enqueue(*FindQueue(c.dead_letter), m.payload_hash, r.now, p);
      ++p.dead_lettered;
      ++stats_.dead_lettered;
      continue;
    }
    if (m.receive_count > 0) {
      ++stats_.redeliveries;
      stats_.on_visibility_boundary += m.visible_at == r.now ? 1 : 0;
    }
    m.receive_count = count;
    m.visible_at = r.now + c.visibility_timeout;
    q->hidden.emplace(m.visible_at, id);
    p.changes.push_back(Change{QueueEvent::kReceived, c.name, id, count, m.visible_at, 0});
    p.handed.push_back(Handed{id, count, m.payload_hash});
    ++stats_.receives;
  }
}

void BrokerModel::PredictDelete(const BrokerRequest& r, Prediction& p) {
  Queue* q = FindQueue(r.queue);
  if (q == nullptr) {
    p.queue_status = QueueStatus::kNoSuchQueue;
    ++stats_.refusals;
    return;
  }
  const auto it = q->messages.find(r.id);
  if (it == q->messages.end()) {
    p.queue_status = QueueStatus::kInvalidArgument;
    ++stats_.refusals;
    return;
  }
  QueueMessage& m = it->second;
  if (m.state == MessageState::kDeleted) {
    return;  // deleting twice is fine
  }
  if (m.state != MessageState::kLive || r.receipt < 1 || r.receipt != m.receive_count) {
    p.queue_status = QueueStatus::kStaleReceipt;
    ++stats_.stale_receipts;
    return;
  }
  Unlist(*q, r.id);
  m.state = MessageState::kDeleted;
  p.changes.push_back(Change{.event = QueueEvent::kDeleted, .queue = q->config.name, .id = r.id});
  ++stats_.deleted;
}

void BrokerModel::PredictRedrive(const BrokerRequest& r, Prediction& p) {
  Queue* dlq = FindQueue(r.queue);
  if (dlq == nullptr || dlq->source.empty()) {
    return;  // nothing dead-letters into it: nothing to move
  }
  Queue* source = FindQueue(dlq->source);
  std::vector<int64_t> ids(dlq->visible.begin(), dlq->visible.end());
  for (const auto& [at, id] : dlq->hidden) {
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  for (const int64_t id : ids) {
    QueueMessage& m = dlq->messages.at(id);
    Unlist(*dlq, id);
    m.state = MessageState::kRedriven;
    p.changes.push_back(
        Change{.event = QueueEvent::kRedriven, .queue = dlq->config.name, .id = id});
    Enqueue(*source, m.payload_hash, r.now, p);
    ++p.redriven;
    ++stats_.redriven;
  }
}

// --- the comparison ------------------------------------------------------------

std::string BrokerModel::Compare(const BrokerApplied& fact, const Prediction& p) const {
  std::string diff = CompareAnswer(fact, p);
  if (diff.empty()) {
    diff = CompareLogFacts(fact, p);
  }
  if (diff.empty()) {
    diff = CompareQueueFacts(fact, p);
  }
  return diff;
}

std::string BrokerModel::CompareAnswer(const BrokerApplied& fact, const Prediction& p) const {
  const auto differ = [](const std::string& want, const std::string& got) {
    return want == got ? std::string()
                       : fmt::format("expected answer {}, the broker answered {}", want, got);
  };
  switch (fact.request.op) {
    case BrokerOp::kOpen:
      return "";
    case BrokerOp::kPublish:
      PAYLAB_CHECK(fact.publish != nullptr);
      if (fact.publish->status == p.status && fact.publish->duplicate == p.duplicate &&
          (p.status != BrokerStatus::kOk ||
           (fact.publish->partition == p.partition && fact.publish->offset == p.offset))) {
        return "";  // the texts below are built only on a difference
      }
      return differ(PublishText(p.status, p.partition, p.offset, p.duplicate),
                    PublishText(fact.publish->status, fact.publish->partition, fact.publish->offset,
                                fact.publish->duplicate));
    case BrokerOp::kHeartbeat:
      PAYLAB_CHECK(fact.assignment != nullptr);
      if (fact.assignment->status == p.status &&
          (p.status != BrokerStatus::kOk || (fact.assignment->generation == p.generation &&
                                             fact.assignment->partitions == p.partitions))) {
        return "";
      }
      return differ(AssignmentText(p.status, p.generation, p.partitions),
                    AssignmentText(fact.assignment->status, fact.assignment->generation,
                                   fact.assignment->partitions));
    case BrokerOp::kCommit:
      PAYLAB_CHECK(fact.commit != nullptr);
      if (fact.commit->status == p.status && fact.commit->committed == p.committed_offset) {
        return "";
      }
      return differ(
          fmt::format("{} (committed {})", system::BrokerStatusName(p.status), p.committed_offset),
          fmt::format("{} (committed {})", system::BrokerStatusName(fact.commit->status),
                      fact.commit->committed));
    case BrokerOp::kFanOut:
      return "";
    case BrokerOp::kInject:
      PAYLAB_CHECK(fact.inject != nullptr);
      return differ(std::string(system::QueueStatusName(p.queue_status)),
                    std::string(system::QueueStatusName(*fact.inject)));
    case BrokerOp::kReceive: {
      PAYLAB_CHECK(fact.receive != nullptr);
      if (p.queue_status != QueueStatus::kOk || fact.receive->status != QueueStatus::kOk) {
        return differ(std::string(system::QueueStatusName(p.queue_status)),
                      std::string(system::QueueStatusName(fact.receive->status)));
      }
      std::vector<Handed> got;
      for (const system::QueueMessage& m : fact.receive->messages) {
        got.push_back(Handed{m.id, m.receipt, Fnv1a64(m.payload)});
      }
      if (got != p.handed || fact.receive->dead_lettered != p.dead_lettered) {
        return fmt::format("expected answer {}, the broker answered {}{}",
                           HandedText(p.handed, p.dead_lettered),
                           HandedText(got, fact.receive->dead_lettered),
                           got.size() == p.handed.size() ? " (or other payloads)" : "");
      }
      return "";
    }
    case BrokerOp::kDelete:
      PAYLAB_CHECK(fact.deleted != nullptr);
      return differ(std::string(system::QueueStatusName(p.queue_status)),
                    std::string(system::QueueStatusName(fact.deleted->status)));
    case BrokerOp::kRedrive:
      return differ(fmt::format("{} moved back", p.redriven),
                    fmt::format("{} moved back", fact.redriven));
  }
  return "";
}

std::string BrokerModel::CompareLogFacts(const BrokerApplied& fact, const Prediction& p) const {
  const BrokerRequest& r = fact.request;
  PAYLAB_CHECK(fact.appended.size() <= 1);
  std::optional<Appended> appended;
  for (const system::AppendedMessage& a : fact.appended) {
    const bool same_call = a.topic == r.topic && a.producer == r.producer && a.seq == r.seq;
    appended =
        Appended{a.partition, a.offset, std::string(a.key), same_call ? Fnv1a64(a.payload) : 0};
  }
  if (appended != p.appended) {
    return fmt::format("expected {}; the broker {}", AppendedText(p.appended),
                       AppendedText(appended));
  }
  PAYLAB_CHECK(fact.committed.size() <= 1);
  std::optional<Committed> committed;
  for (const system::OffsetCommitted& c : fact.committed) {
    const bool same_call = c.group == r.group && c.topic == r.topic && c.partition == r.partition;
    committed = same_call ? Committed{c.from, c.to} : Committed{-1, -1};
  }
  if (committed != p.committed) {
    return fmt::format("expected {}; the broker {}", CommittedText(p.committed),
                       CommittedText(committed));
  }
  std::optional<Group> group;
  if (fact.group != nullptr) {
    group = Group{std::vector<std::string>(fact.group->left.begin(), fact.group->left.end()),
                  fact.group->joined, fact.group->generation_before, fact.group->generation,
                  std::vector<std::string>(fact.group->members.begin(), fact.group->members.end())};
  }
  if (group != p.group) {
    return fmt::format("expected the group's membership: {}; the broker's: {}", GroupText(p.group),
                       GroupText(group));
  }
  return "";
}

std::string BrokerModel::CompareQueueFacts(const BrokerApplied& fact, const Prediction& p) const {
  std::vector<Change> got;
  for (const system::QueueChange& c : fact.queue) {
    const bool enqueued = c.event == QueueEvent::kEnqueued;
    got.push_back(Change{c.event, c.queue, c.id, c.receive_count, c.visible_at,
                         enqueued ? Fnv1a64(c.payload) : 0});
  }
  std::vector<Change> want = p.changes;
  if (fact.request.op == BrokerOp::kFanOut) {
    // The contract does not order the queues a message is copied into.
    const auto by_queue = [](const Change& a, const Change& b) { return a.queue < b.queue; };
    std::stable_sort(got.begin(), got.end(), by_queue);
    std::stable_sort(want.begin(), want.end(), by_queue);
  }
  if (got == want) {
    return "";
  }
  size_t first = 0;
  while (first < got.size() && first < want.size() && got[first] == want[first]) {
    ++first;
  }
  return fmt::format("expected {} queue change(s), from change {} on:{}; the broker made {}:{}",
                     want.size(), first + 1, ChangesText(want, first), got.size(),
                     ChangesText(got, first));
}

// --- the state, for the final comparison -----------------------------------------

const std::vector<BrokerModel::LogMessage>* BrokerModel::Partition(std::string_view topic,
                                                                   int32_t partition) const {
  for (const Topic& t : topics_) {
    if (t.config.name == topic && partition >= 0 && partition < t.config.partitions) {
      return &t.partitions[static_cast<size_t>(partition)];
    }
  }
  return nullptr;
}

const BrokerModel::QueueMessage* BrokerModel::QueueMessageOf(std::string_view queue,
                                                             int64_t id) const {
  for (const Queue& q : queues_) {
    if (q.config.name == queue) {
      const auto it = q.messages.find(id);
      return it == q.messages.end() ? nullptr : &it->second;
    }
  }
  return nullptr;
}

}  // namespace paylab::models
