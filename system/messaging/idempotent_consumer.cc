// Implementation of the processed-event record (see idempotent_consumer.h).
#include "system/messaging/idempotent_consumer.h"

namespace paylab::system {

struct ProcessedEvents::Stmts {
  explicit Stmts(sim::Database& db)
      : seen(db, "SELECT 1 FROM processed_events WHERE event_id = ?"),
        record(db, "INSERT INTO processed_events(event_id, processed_at) VALUES(?, ?)") {}
  sim::Statement seen, record;
};

ProcessedEvents::ProcessedEvents(sim::Database& db) : db_(db) {
  db_.ExecScript(
      "CREATE TABLE IF NOT EXISTS processed_events(event_id TEXT PRIMARY KEY, "
      "processed_at INTEGER NOT NULL) WITHOUT ROWID;");
  st_ = std::make_unique<Stmts>(db_);
}

ProcessedEvents::~ProcessedEvents() = default;

bool ProcessedEvents::Seen(std::string_view event_id) {
  st_->seen.Bind(1, event_id);
  const bool found = st_->seen.Step();
  st_->seen.Reset();
  return found;
}

void ProcessedEvents::Record(std::string_view event_id, sim::Time now) {
  st_->record.Bind(1, event_id).Bind(2, now).Exec();
}

}  // namespace paylab::system
