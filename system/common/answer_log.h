// The answers a workload node received, kept in its own database so that an
// auditor holding only the exported databases can compare the answer given
// to a retry with the first one (idempotency_same_answer), see which key a
// retry carried (idempotency_one_effect), and what a lookup returned
// (id_lookup_exact), with SQL alone.
//
// The upstream client (client.db), the migration's shopper (client.db) and
// the payment service's upstreams (checkout.db, marketplace.db) each record
// every answer they receive, one row per answer, as it arrives:
//
//   answers(
//     seq INTEGER PRIMARY KEY,  -- the order answers arrived in
//     key TEXT,          -- the request: its idempotency key, or the name
//                        --   the node gives a second phase or a lookup
//                        --   ("commit/<hold>", "rollback/<hold>",
//                        --   "lookup/<payment id>"; the upstreams' capture
//                        --   and void carry the order key)
//     sent_key TEXT,     -- the key the answered attempt carried: `key`,
//                        --   unless a defect renamed a retry
//     op TEXT,           -- the operation (deposit, transfer, prepare,
//                        --   commit, rollback, misuse; pay, pay_commit,
//                        --   pay_rollback, earn, topup, lookup; create,
//                        --   capture, void, void_orphan)
//     user_id INTEGER,   -- who pays or is credited (NULL: none)
//     peer_id INTEGER,   -- who receives (NULL: none)
//     amount INTEGER,    -- the amount asked for (NULL: none)
//     params TEXT,       -- other parameters, a JSON object ("{}": none)
//     attempt INTEGER,   -- 1 for the first attempt of the request, 2 for
//                        --   the first retry, ...
//     status TEXT,       -- the answer's status, by name
//     answer_id INTEGER, -- the ID answered (movement, hold, payment; 0: none)
//     answer_amount INTEGER,  -- the amount answered (0: none)
//     answer TEXT,       -- the rest of the answer, a JSON object
//     at INTEGER)        -- virtual time of arrival, ns
//
// An attempt that timed out has no row: the node received nothing. Each
// row is written in its own transaction, with one prepared statement.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sim/context.h"

namespace paylab::system {

// What a request asked, and (filled in per answer) how it was answered.
// Every member has a default, so records name only what they set.
struct AnswerRecord {
  std::string key{};
  std::string_view op{};
  std::optional<int64_t> user{};
  std::optional<int64_t> peer{};
  std::optional<int64_t> amount{};
  std::string params = "{}";
  // Attempts sent so far for this request (the sender counts them).
  int attempts = 0;
};

struct Answer {
  std::string_view sent_key{};  // "" = the record's key
  std::string_view status{};
  uint64_t id = 0;
  int64_t amount = 0;
  std::string more = "{}";
};

class AnswerLog {
 public:
  // Creates the table if needed and prepares the insert. The log belongs to
  // one incarnation of the node (as its context does).
  explicit AnswerLog(sim::NodeContext& ctx);

  // Writes one row: `request` answered `answer` on attempt
  // request.attempts, now.
  void Record(const AnswerRecord& request, const Answer& answer);

 private:
  sim::NodeContext& ctx_;
  sim::Statement insert_;
};

// `text` as a JSON string literal (quotes and escapes), for params and answers.
std::string JsonQuote(std::string_view text);

}  // namespace paylab::system
