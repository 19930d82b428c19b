// Implementation of the answer log (see answer_log.h).
#include "system/common/answer_log.h"

#include <fmt/format.h>

namespace paylab::system {

namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS answers(
  seq INTEGER PRIMARY KEY, key TEXT NOT NULL, sent_key TEXT NOT NULL, op TEXT NOT NULL,
  user_id INTEGER, peer_id INTEGER, amount INTEGER, params TEXT NOT NULL,
  attempt INTEGER NOT NULL, status TEXT NOT NULL, answer_id INTEGER NOT NULL,
  answer_amount INTEGER NOT NULL, answer TEXT NOT NULL, at INTEGER NOT NULL);
)sql";

sim::Database& Prepared(sim::NodeContext& ctx) {
  sim::Database& db = ctx.db();
  db.ExecScript(kSchema);
  return db;
}

void BindOptional(sim::Statement& st, int i, const std::optional<int64_t>& v) {
  if (v) {
    st.Bind(i, *v);
  } else {
    st.BindNull(i);
  }
}

}  // namespace

AnswerLog::AnswerLog(sim::NodeContext& ctx)
    : ctx_(ctx),
      insert_(Prepared(ctx),
              "INSERT INTO answers(key, sent_key, op, user_id, peer_id, amount, params, attempt, "
              "status, answer_id, answer_amount, answer, at) "
              "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)") {}

void AnswerLog::Record(const AnswerRecord& request, const Answer& answer) {
  sim::Database& db = ctx_.db();  // refuses once this incarnation is over
  sim::Transaction txn(db);
  insert_.Bind(1, request.key)
      .Bind(2, answer.sent_key.empty() ? std::string_view(request.key) : answer.sent_key)
      .Bind(3, request.op);
  BindOptional(insert_, 4, request.user);
  BindOptional(insert_, 5, request.peer);
  BindOptional(insert_, 6, request.amount);
  insert_.Bind(7, request.params)
      .Bind(8, int64_t{request.attempts})
      .Bind(9, answer.status)
      .Bind(10, static_cast<int64_t>(answer.id))
      .Bind(11, answer.amount)
      .Bind(12, answer.more)
      .Bind(13, ctx_.Now())
      .Exec();
  txn.Commit();
}

std::string JsonQuote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<int>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace paylab::system
