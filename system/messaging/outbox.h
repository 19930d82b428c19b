// The transactional outbox (seeds 001, 002): a service that changes state
// and emits an event does both in one SQLite transaction, by writing the
// event as a row of its own database; a relay publishes pending rows to the
// broker and marks each sent once the broker acknowledged it.
//
// Contract: Append must be called inside the caller's open transaction, so
// the event commits (or not) with the state change. A crash at any point
// loses no event: an unsent row is published after the restart; a row
// published whose mark was lost is published again (a duplicate, which the
// idempotent producer or the consumer absorbs). Rows are published in id
// order, so one key's events reach their partition in commit order.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sim/storage.h"
#include "sim/time.h"

namespace paylab::system {

struct OutboxRow {
  int64_t id = 0;
  std::string topic;
  std::string key;
  std::string payload;
};

class Outbox {
 public:
  // Creates the outbox table if missing.
  explicit Outbox(sim::Database& db);
  ~Outbox();

  // REQUIRES: a transaction is open on the database.
  void Append(std::string_view topic, std::string_view key, std::string_view payload,
              sim::Time now);
  // The oldest unsent rows, in id order.
  std::vector<OutboxRow> Pending(int64_t limit);
  void MarkSent(int64_t id, sim::Time now);
  int64_t pending_count();

 private:
  struct Stmts;
  sim::Database& db_;
  std::unique_ptr<Stmts> st_;
};

}  // namespace paylab::system
