// Implementation of the queues (see queue_store.h).
#include "system/messaging/queue_store.h"

#include "sim/check.h"

namespace paylab::system {

std::string_view QueueStatusName(QueueStatus s) {
  switch (s) {
    case QueueStatus::kOk:
      return "ok";
    case QueueStatus::kNoSuchQueue:
      return "no_such_queue";
    case QueueStatus::kInvalidArgument:
      return "invalid_argument";
    case QueueStatus::kStaleReceipt:
      return "stale_receipt";
  }
  return "unknown";
}

namespace {
// Message states, as stored.
constexpr int64_t kLive = Stored(QueueMessageState::kLive);
constexpr int64_t kDeleted = Stored(QueueMessageState::kDeleted);
constexpr int64_t kDeadLettered = Stored(QueueMessageState::kDeadLettered);
constexpr int64_t kRedriven = Stored(QueueMessageState::kRedriven);
}  // namespace

struct QueueStore::Stmts {
  explicit Stmts(sim::Database& db)
      : next_id(db, "SELECT COALESCE(MAX(id), 0) + 1 FROM queue_messages WHERE queue = ?"),
        insert(db,
               "INSERT INTO queue_messages(queue, id, payload, receive_count, visible_at, state, "
               "enqueued_at) VALUES(?, ?, ?, 0, ?, 0, ?)"),
        visible(db,
                // The live messages only: without statistics the planner
                // would walk every message the queue ever had.
                "SELECT id, payload, receive_count FROM queue_messages "
                "INDEXED BY queue_messages_live WHERE queue = ? AND "
                "state = 0 AND visible_at <= ? ORDER BY id LIMIT ?"),
        hide(db,
             "UPDATE queue_messages SET receive_count = ?, visible_at = ? WHERE queue = ? AND "
             "id = ?"),
        set_state(db, "UPDATE queue_messages SET state = ? WHERE queue = ? AND id = ?"),
        get(db, "SELECT receive_count, state FROM queue_messages WHERE queue = ? AND id = ?"),
        live(db,
             "SELECT id, payload FROM queue_messages INDEXED BY queue_messages_live "
             "WHERE queue = ? AND state = 0 ORDER BY id"),
        count_state(db, "SELECT COUNT(*) FROM queue_messages WHERE queue = ? AND state = ?"),
        count_all(db, "SELECT COUNT(*) FROM queue_messages WHERE queue = ?") {}
  sim::Statement next_id, insert, visible, hide, set_state, get, live, count_state, count_all;
};

QueueStore::QueueStore(sim::Database& db, std::vector<QueueConfig> queues,
                       QueueStoreOptions options)
    : db_(db), queues_(std::move(queues)), options_(options) {
  for (const QueueConfig& q : queues_) {
    PAYLAB_CHECK(!q.name.empty());
    PAYLAB_CHECK(q.visibility_timeout > 0);
    PAYLAB_CHECK(q.dead_letter.empty() || Find(q.dead_letter) != nullptr);
  }
  // A dead-letter queue serves one source queue, so Redrive knows where
  // its messages go back to.
  for (size_t i = 0; i < queues_.size(); ++i) {
    for (size_t j = i + 1; j < queues_.size(); ++j) {
      PAYLAB_CHECK(queues_[i].dead_letter.empty() ||
                   queues_[i].dead_letter != queues_[j].dead_letter);
    }
  }
  db_.ExecScript(
      "CREATE TABLE IF NOT EXISTS queue_messages(queue TEXT NOT NULL, id INTEGER NOT NULL, "
      "payload TEXT NOT NULL, receive_count INTEGER NOT NULL, visible_at INTEGER NOT NULL, "
      "state INTEGER NOT NULL, enqueued_at INTEGER NOT NULL, PRIMARY KEY(queue, id)) "
      "WITHOUT ROWID;"
      "CREATE INDEX IF NOT EXISTS queue_messages_live ON queue_messages(queue, id) "
      "WHERE state = 0;"
      "CREATE TABLE IF NOT EXISTS queues(name TEXT PRIMARY KEY, topic TEXT NOT NULL, "
      "visibility_timeout_ns INTEGER NOT NULL, max_receives INTEGER NOT NULL, "
      "dead_letter TEXT NOT NULL) WITHOUT ROWID;");
  st_ = std::make_unique<Stmts>(db_);
  sim::Transaction txn(db_);
  sim::Statement put(db_, "INSERT OR REPLACE INTO queues VALUES(?, ?, ?, ?, ?)");
  for (const QueueConfig& q : queues_) {
    put.Bind(1, q.name)
        .Bind(2, q.topic)
        .Bind(3, q.visibility_timeout)
        .Bind(4, q.max_receives)
        .Bind(5, q.dead_letter)
        .Exec();
  }
  txn.Commit();
}

QueueStore::~QueueStore() = default;

const QueueConfig* QueueStore::Find(std::string_view name) const {
  for (const QueueConfig& q : queues_) {
    if (q.name == name) {
      return &q;
    }
  }
  return nullptr;
}

int64_t QueueStore::Append(std::string_view queue, std::string_view payload, sim::Time now) {
  st_->next_id.Bind(1, queue);
  st_->next_id.Step();
  const int64_t id = st_->next_id.Int(0);
  st_->next_id.Reset();
  st_->insert.Bind(1, queue).Bind(2, id).Bind(3, payload).Bind(4, now).Bind(5, now).Exec();
  Note(QueueChange{.event = QueueEvent::kEnqueued,
                   .queue = queue,
                   .id = id,
                   .visible_at = now,
                   .payload = payload});
  return id;
}

void QueueStore::Note(QueueChange c) {
  if (options_.audit != nullptr) {
    call_changes_.push_back(c);
  }
}

void QueueStore::BeginAudit() {
  call_changes_.clear();
  call_payloads_.clear();
}

// --- the public operations: each call reported to the audit ----------------

void QueueStore::FanOut(std::string_view topic, std::string_view payload, sim::Time now) {
  if (options_.audit == nullptr) {
    DoFanOut(topic, payload, now);
    return;
  }
  BeginAudit();
  DoFanOut(topic, payload, now);
  const BrokerRequest request{
      .op = BrokerOp::kFanOut, .topic = topic, .payload = payload, .now = now};
  options_.audit->OnBrokerApplied(BrokerApplied{.request = request, .queue = call_changes_});
}

QueueStatus QueueStore::Inject(std::string_view queue, std::string_view payload, sim::Time now) {
  if (options_.audit == nullptr) {
    return DoInject(queue, payload, now);
  }
  BeginAudit();
  const QueueStatus status = DoInject(queue, payload, now);
  const BrokerRequest request{
      .op = BrokerOp::kInject, .payload = payload, .queue = queue, .now = now};
  options_.audit->OnBrokerApplied(
      BrokerApplied{.request = request, .inject = &status, .queue = call_changes_});
  return status;
}

ReceiveReply QueueStore::Receive(std::string_view queue, int64_t max, sim::Time now) {
  if (options_.audit == nullptr) {
    return DoReceive(queue, max, now);
  }
  BeginAudit();
  const ReceiveReply reply = DoReceive(queue, max, now);
  const BrokerRequest request{.op = BrokerOp::kReceive, .queue = queue, .max = max, .now = now};
  options_.audit->OnBrokerApplied(
      BrokerApplied{.request = request, .receive = &reply, .queue = call_changes_});
  return reply;
}

DeleteReply QueueStore::Delete(std::string_view queue, int64_t id, int64_t receipt) {
  if (options_.audit == nullptr) {
    return DoDelete(queue, id, receipt);
  }
  BeginAudit();
  const DeleteReply reply = DoDelete(queue, id, receipt);
  const BrokerRequest request{
      .op = BrokerOp::kDelete, .queue = queue, .id = id, .receipt = receipt};
  options_.audit->OnBrokerApplied(
      BrokerApplied{.request = request, .deleted = &reply, .queue = call_changes_});
  return reply;
}

int64_t QueueStore::Redrive(std::string_view dlq, sim::Time now) {
  if (options_.audit == nullptr) {
    return DoRedrive(dlq, now);
  }
  BeginAudit();
  const int64_t n = DoRedrive(dlq, now);
  const BrokerRequest request{.op = BrokerOp::kRedrive, .queue = dlq, .now = now};
  options_.audit->OnBrokerApplied(
      BrokerApplied{.request = request, .redriven = n, .queue = call_changes_});
  return n;
}

// --- the operations themselves ------------------------------------------------

void QueueStore::DoFanOut(std::string_view topic, std::string_view payload, sim::Time now) {
  sim::Transaction txn(db_);
  for (const QueueConfig& q : queues_) {
    if (!q.topic.empty() && q.topic == topic) {
      Append(q.name, payload, now);
    }
  }
  txn.Commit();
}

QueueStatus QueueStore::DoInject(std::string_view queue, std::string_view payload, sim::Time now) {
  if (Find(queue) == nullptr) {
    return QueueStatus::kNoSuchQueue;
  }
  sim::Transaction txn(db_);
  Append(queue, payload, now);
  txn.Commit();
  return QueueStatus::kOk;
}

ReceiveReply QueueStore::DoReceive(std::string_view queue, int64_t max, sim::Time now) {
  ReceiveReply r;
  const QueueConfig* q = Find(queue);
  if (q == nullptr) {
    r.status = QueueStatus::kNoSuchQueue;
    r.reason = "no such queue";
    return r;
  }
  if (max < 1) {
    r.status = QueueStatus::kInvalidArgument;
    r.reason = "max must be >= 1";
    return r;
  }
  struct Candidate {
    int64_t id;
    std::string payload;
    int64_t receives;
  };
  std::vector<Candidate> due;
  st_->visible.Bind(1, queue).Bind(2, now).Bind(3, max);
  while (st_->visible.Step()) {
    due.push_back(
        Candidate{st_->visible.Int(0), std::string(st_->visible.Text(1)), st_->visible.Int(2) + 1});
  }
  st_->visible.Reset();
  // The defect dead-letters on the max_receives-th receive, one early.
  const int64_t receives_max =
      options_.defect_dead_letter_early ? q->max_receives - 1 : q->max_receives;
  sim::Transaction txn(db_);
  for (Candidate& c : due) {
    if (q->max_receives > 0 && c.receives > receives_max && !q->dead_letter.empty()) {
      st_->set_state.Bind(1, kDeadLettered).Bind(2, queue).Bind(3, c.id).Exec();
      Note(QueueChange{.event = QueueEvent::kDeadLettered, .queue = queue, .id = c.id});
      const std::string& payload =
          options_.audit == nullptr ? c.payload : call_payloads_.emplace_back(c.payload);
      Append(q->dead_letter, payload, now);
      ++r.dead_lettered;
      continue;
    }
    const sim::Time deadline = now + q->visibility_timeout;
    st_->hide.Bind(1, c.receives).Bind(2, deadline).Bind(3, queue).Bind(4, c.id).Exec();
    Note(QueueChange{.event = QueueEvent::kReceived,
                     .queue = queue,
                     .id = c.id,
                     .receive_count = c.receives,
                     .visible_at = deadline});
    r.messages.push_back(QueueMessage{c.id, std::move(c.payload), c.receives});
  }
  txn.Commit();
  return r;
}

DeleteReply QueueStore::DoDelete(std::string_view queue, int64_t id, int64_t receipt) {
  if (Find(queue) == nullptr) {
    return DeleteReply{QueueStatus::kNoSuchQueue, "no such queue"};
  }
  st_->get.Bind(1, queue).Bind(2, id);
  if (!st_->get.Step()) {
    st_->get.Reset();
    return DeleteReply{QueueStatus::kInvalidArgument, "no such message"};
  }
  const int64_t receives = st_->get.Int(0);
  const int64_t state = st_->get.Int(1);
  st_->get.Reset();
  if (state == kDeleted) {
    return DeleteReply{QueueStatus::kOk, ""};  // deleting twice is fine
  }
  if (state != kLive || receipt < 1 || receives != receipt) {
    return DeleteReply{QueueStatus::kStaleReceipt,
                       "the message was received again or moved since this receipt"};
  }
  st_->set_state.Bind(1, kDeleted).Bind(2, queue).Bind(3, id).Exec();
  Note(QueueChange{.event = QueueEvent::kDeleted, .queue = queue, .id = id});
  return DeleteReply{QueueStatus::kOk, ""};
}

int64_t QueueStore::DoRedrive(std::string_view dlq, sim::Time now) {
  const QueueConfig* source = nullptr;
  for (const QueueConfig& q : queues_) {
    if (q.dead_letter == dlq) {
      source = &q;
    }
  }
  if (source == nullptr) {
    return 0;
  }
  std::vector<std::pair<int64_t, std::string>> moving;
  st_->live.Bind(1, dlq);
  while (st_->live.Step()) {
    moving.emplace_back(st_->live.Int(0), std::string(st_->live.Text(1)));
  }
  st_->live.Reset();
  sim::Transaction txn(db_);
  for (const auto& [id, payload] : moving) {
    st_->set_state.Bind(1, kRedriven).Bind(2, dlq).Bind(3, id).Exec();
    Note(QueueChange{.event = QueueEvent::kRedriven, .queue = dlq, .id = id});
    Append(source->name, options_.audit == nullptr ? payload : call_payloads_.emplace_back(payload),
           now);
  }
  txn.Commit();
  return static_cast<int64_t>(moving.size());
}

int64_t QueueStore::Depth(std::string_view queue) {
  st_->count_state.Bind(1, queue).Bind(2, kLive);
  st_->count_state.Step();
  const int64_t n = st_->count_state.Int(0);
  st_->count_state.Reset();
  return n;
}

int64_t QueueStore::DeadLettered(std::string_view dlq) {
  st_->count_all.Bind(1, dlq);
  st_->count_all.Step();
  const int64_t n = st_->count_all.Int(0);
  st_->count_all.Reset();
  return n;
}

int64_t QueueStore::Redriven(std::string_view dlq) {
  st_->count_state.Bind(1, dlq).Bind(2, kRedriven);
  st_->count_state.Step();
  const int64_t n = st_->count_state.Int(0);
  st_->count_state.Reset();
  return n;
}

}  // namespace paylab::system
