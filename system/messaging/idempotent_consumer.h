// The idempotent consumer (seeds 001, 002): a consumer writes its effect and
// a processed-event record in one SQLite transaction, so a redelivered
// event (at-least-once delivery, a crash before the offset commit, a
// duplicate publish) has no second effect.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "sim/storage.h"
#include "sim/time.h"

namespace paylab::system {

class ProcessedEvents {
 public:
  // Creates the processed_events table if missing.
  explicit ProcessedEvents(sim::Database& db);
  ~ProcessedEvents();

  bool Seen(std::string_view event_id);

  // Runs `effect` and records `event_id`, in one transaction, unless the
  // event was recorded before. Returns true if the effect ran. With
  // `skip_record` (TEST ONLY: the consumer-without-deduplication defect)
  // the check and the record are skipped and every delivery has an effect.
  template <class F>
  bool ApplyOnce(std::string_view event_id, sim::Time now, F&& effect, bool skip_record = false) {
    sim::Transaction txn(db_);
    if (!skip_record && Seen(event_id)) {
      return false;
    }
    effect();
    if (!skip_record) {
      Record(event_id, now);
    }
    txn.Commit();
    return true;
  }

 private:
  void Record(std::string_view event_id, sim::Time now);
  struct Stmts;
  sim::Database& db_;
  std::unique_ptr<Stmts> st_;
};

}  // namespace paylab::system
