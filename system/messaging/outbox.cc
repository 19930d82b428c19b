// Implementation of the transactional outbox (see outbox.h).
#include "system/messaging/outbox.h"

#include "sim/check.h"

namespace paylab::system {

struct Outbox::Stmts {
  explicit Stmts(sim::Database& db)
      : append(db, "INSERT INTO outbox(topic, key, payload, created_at) VALUES(?, ?, ?, ?)"),
        pending(db,
                "SELECT id, topic, key, payload FROM outbox WHERE sent_at IS NULL "
                "ORDER BY id LIMIT ?"),
        mark(db, "UPDATE outbox SET sent_at = ? WHERE id = ? AND sent_at IS NULL"),
        count(db, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL") {}
  sim::Statement append, pending, mark, count;
};

Outbox::Outbox(sim::Database& db) : db_(db) {
  db_.ExecScript(
      "CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, "
      "topic TEXT NOT NULL, key TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT "
      "NULL, sent_at INTEGER);"
      "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(id) WHERE sent_at IS NULL;");
  st_ = std::make_unique<Stmts>(db_);
}

Outbox::~Outbox() = default;

void Outbox::Append(std::string_view topic, std::string_view key, std::string_view payload,
                    sim::Time now) {
  // The whole point of the outbox: the row commits with the state change.
  PAYLAB_CHECK(db_.InTransaction());
  st_->append.Bind(1, topic).Bind(2, key).Bind(3, payload).Bind(4, now).Exec();
}

std::vector<OutboxRow> Outbox::Pending(int64_t limit) {
  std::vector<OutboxRow> rows;
  st_->pending.Bind(1, limit);
  while (st_->pending.Step()) {
    rows.push_back(OutboxRow{st_->pending.Int(0), std::string(st_->pending.Text(1)),
                             std::string(st_->pending.Text(2)), std::string(st_->pending.Text(3))});
  }
  st_->pending.Reset();
  return rows;
}

void Outbox::MarkSent(int64_t id, sim::Time now) { st_->mark.Bind(1, now).Bind(2, id).Exec(); }

int64_t Outbox::pending_count() {
  st_->count.Step();
  const int64_t n = st_->count.Int(0);
  st_->count.Reset();
  return n;
}

}  // namespace paylab::system
