// Implementation of the Chrome trace export (see chrome_trace.h).
#include "reports/chrome_trace.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

namespace paylab::reports {

namespace {

constexpr int kCheckersPid = 1;

class Writer {
 public:
  explicit Writer(std::FILE* f) : f_(f) {}

  void Event(const nlohmann::json& e) {
    std::fputs(first_ ? "\n" : ",\n", f_);
    first_ = false;
    const std::string s = e.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::fwrite(s.data(), 1, s.size(), f_);
    ++written_;
  }
  int64_t written() const { return written_; }

 private:
  std::FILE* f_;
  bool first_ = true;
  int64_t written_ = 0;
};

double Us(int64_t t_ns) { return static_cast<double>(t_ns) / 1000.0; }

// One trace line's fields; a node, peer or name that is not a string reads
// as "", an `a` or `b` that is not an integer as 0.
struct TraceLine {
  int64_t t_ns = 0;
  std::string kind;
  std::string node;
  std::string peer;
  std::string name;
  int64_t a = 0;
  int64_t b = 0;
};

// The line's event, or nothing when the line is not a trace event.
std::optional<TraceLine> ParseTraceLine(const std::string& line) {
  const nlohmann::json e = nlohmann::json::parse(line, nullptr, false);
  if (!e.is_object() || !e.contains("t_ns") || !e.contains("kind") || !e.contains("node") ||
      !e.contains("peer") || !e.contains("name") || !e.contains("a") || !e.contains("b") ||
      !e["t_ns"].is_number_integer() || !e["kind"].is_string()) {
    return std::nullopt;
  }
  TraceLine l;
  l.t_ns = e["t_ns"].get<int64_t>();
  l.kind = e["kind"].get<std::string>();
  l.node = e["node"].is_string() ? e["node"].get<std::string>() : "";
  l.peer = e["peer"].is_string() ? e["peer"].get<std::string>() : "";
  l.name = e["name"].is_string() ? e["name"].get<std::string>() : "";
  l.a = e["a"].is_number_integer() ? e["a"].get<int64_t>() : 0;
  l.b = e["b"].is_number_integer() ? e["b"].get<int64_t>() : 0;
  return l;
}

// Turns trace lines, in order, into Chrome trace events: it numbers the
// processes as nodes first appear and keeps the spans still open (calls
// awaiting their reply, deliveries being served, nodes that are down) until
// the line that ends them.
class TimelineBuilder {
 public:
  TimelineBuilder(Writer* w, ChromeTraceSummary* summary) : w_(*w), summary_(*summary) {
    w_.Event({{"ph", "M"},
              {"pid", kCheckersPid},
              {"tid", 0},
              {"name", "process_name"},
              {"args", {{"name", "checkers"}}}});
  }

  void Add(const TraceLine& e) {
    ++summary_.events_in;
    last_ns_ = std::max(last_ns_, e.t_ns);
    if (!e.node.empty()) {
      Pid(e.node);
    }
    if (e.kind == "rpc.send") {
      BeginCall(e);
    } else if (e.kind == "rpc.reply_deliver") {
      EndCall(e.a, e.t_ns, "ok");
    } else if (e.kind == "rpc.timeout") {
      EndCall(e.a, e.t_ns, "timeout");
    } else if (e.kind == "rpc.deliver") {
      BeginServe(e);
    } else if (e.kind == "rpc.reply") {
      EndOldestServe(e.a, e.t_ns);
    } else if (e.kind == "crash") {
      Crash(e);
    } else if (e.kind == "restart") {
      Restart(e);
    } else {
      AddInstant(e);
    }
  }

  // Closes whatever the run left open (it ended, or stopped at a failure).
  void CloseOpenSpans() {
    while (!calls_.empty()) {
      EndCall(calls_.begin()->first, last_ns_, "run ended");
    }
    while (!serve_node_.empty()) {
      EndServe(serve_node_.begin()->first, last_ns_, "run ended");
    }
    for (const auto& [node, since] : down_since_) {
      Down(node, since, last_ns_);
    }
  }

 private:
  struct OpenCall {
    std::string caller, callee, method;
  };

  // The node's process; the first time a node is named, its process and
  // thread are declared.
  int Pid(const std::string& node) {
    if (node.empty()) {
      return kCheckersPid;
    }
    auto [it, inserted] = pid_of_.emplace(node, static_cast<int>(pid_of_.size()) + 2);
    if (inserted) {
      DeclareProcess(it->second, node);
    }
    return it->second;
  }

  void DeclareProcess(int pid, const std::string& node) {
    w_.Event({{"ph", "M"},
              {"pid", pid},
              {"tid", 0},
              {"name", "process_name"},
              {"args", {{"name", node}}}});
    w_.Event({{"ph", "M"},
              {"pid", pid},
              {"tid", 0},
              {"name", "process_sort_index"},
              {"args", {{"sort_index", pid}}}});
    w_.Event({{"ph", "M"},
              {"pid", pid},
              {"tid", 1},
              {"name", "thread_name"},
              {"args", {{"name", node + " events"}}}});
  }

  void BeginCall(const TraceLine& e) {
    calls_[e.a] = OpenCall{e.node, e.peer, e.name};
    w_.Event({{"ph", "b"},
              {"cat", "rpc"},
              {"id", fmt::format("c{}", e.a)},
              {"name", e.name},
              {"pid", Pid(e.node)},
              {"tid", 1},
              {"ts", Us(e.t_ns)},
              {"args", {{"call", e.a}, {"callee", e.peer}}}});
    ++summary_.rpc_spans;
  }

  void EndCall(int64_t id, int64_t t, const std::string& outcome) {
    auto it = calls_.find(id);
    if (it == calls_.end()) {
      return;
    }
    w_.Event({{"ph", "e"},
              {"cat", "rpc"},
              {"id", fmt::format("c{}", id)},
              {"name", it->second.method},
              {"pid", Pid(it->second.caller)},
              {"tid", 1},
              {"ts", Us(t)},
              {"args", {{"outcome", outcome}}}});
    calls_.erase(it);
  }

  // A delivery opens a span of its own: a duplicated request is served twice.
  void BeginServe(const TraceLine& e) {
    const std::string span = fmt::format("s{}.{}", e.a, ++delivers_[e.a]);
    serving_[e.a].push_back(span);
    serve_node_[span] = e.node;
    w_.Event({{"ph", "b"},
              {"cat", "serve"},
              {"id", span},
              {"name", "serve"},
              {"pid", Pid(e.node)},
              {"tid", 1},
              {"ts", Us(e.t_ns)},
              {"args", {{"call", e.a}, {"caller", e.peer}, {"method", e.name}}}});
  }

  // A reply ends the call's oldest delivery still being served.
  void EndOldestServe(int64_t call, int64_t t) {
    auto it = serving_.find(call);
    if (it == serving_.end() || it->second.empty()) {
      return;
    }
    EndServe(it->second.front(), t, "replied");
    it->second.pop_front();
    if (it->second.empty()) {
      serving_.erase(it);
    }
  }

  void EndServe(const std::string& span, int64_t t, const std::string& outcome) {
    auto node = serve_node_.find(span);
    if (node == serve_node_.end()) {
      return;
    }
    w_.Event({{"ph", "e"},
              {"cat", "serve"},
              {"id", span},
              {"name", "serve"},
              {"pid", Pid(node->second)},
              {"tid", 1},
              {"ts", Us(t)},
              {"args", {{"outcome", outcome}}}});
    serve_node_.erase(node);
  }

  void Crash(const TraceLine& e) {
    Instant(e.node, "crash", e.t_ns, {{"incarnation", e.a}});
    down_since_[e.node] = e.t_ns;
    // The node's open work ends with it.
    for (auto it = calls_.begin(); it != calls_.end();) {
      auto next = std::next(it);
      if (it->second.caller == e.node) {
        EndCall(it->first, e.t_ns, "caller crashed");
      }
      it = next;
    }
    std::vector<std::string> spans;
    for (const auto& [span, n] : serve_node_) {
      if (n == e.node) {
        spans.push_back(span);
      }
    }
    for (const std::string& span : spans) {
      EndServe(span, e.t_ns, "callee crashed");
    }
  }

  void Restart(const TraceLine& e) {
    Instant(e.node, "restart", e.t_ns, {{"incarnation", e.a}});
    auto it = down_since_.find(e.node);
    if (it != down_since_.end()) {
      Down(e.node, it->second, e.t_ns);
      down_since_.erase(it);
    }
  }

  void Down(const std::string& node, int64_t since, int64_t until) {
    w_.Event({{"ph", "X"},
              {"name", "down"},
              {"cat", "crash"},
              {"pid", Pid(node)},
              {"tid", 1},
              {"ts", Us(since)},
              {"dur", Us(until - since)}});
  }

  // Lines that are a moment, not a span: lost messages, commits, faults,
  // check failures and whatever else a node notes.
  void AddInstant(const TraceLine& e) {
    if (e.kind == "rpc.drop") {
      Instant(e.node, "lost: " + e.name, e.t_ns,
              {{"call", e.a},
               {"peer", e.peer},
               {"reason", e.b == 1 ? "partition" : "node down"}});
    } else if (e.kind == "commit") {
      Instant(e.node, e.name, e.t_ns, {{"id", e.a}, {"amount", e.b}});
    } else if (e.kind == "fault") {
      Instant(e.node.empty() ? e.peer : e.node, "fault: " + e.name, e.t_ns,
              {{"peer", e.peer}, {"a", e.a}, {"b", e.b}});
    } else if (e.kind == "check") {
      Instant("", "check failed: " + e.name, e.t_ns, {{"check", e.name}});
    } else {
      Instant(e.node, e.name, e.t_ns, {{"a", e.a}, {"b", e.b}});
    }
  }

  void Instant(const std::string& node, const std::string& name, int64_t t, nlohmann::json args) {
    w_.Event({{"ph", "i"},
              {"s", "t"},
              {"name", name},
              {"pid", Pid(node)},
              {"tid", 1},
              {"ts", Us(t)},
              {"args", std::move(args)}});
    ++summary_.instants;
  }

  Writer& w_;
  ChromeTraceSummary& summary_;
  std::map<std::string, int> pid_of_;                    // node name -> pid
  std::map<int64_t, OpenCall> calls_;                    // call id -> the caller's open span
  std::map<int64_t, std::deque<std::string>> serving_;  // call id -> span ids open at the callee
  std::map<std::string, std::string> serve_node_;       // server span id -> callee
  std::map<int64_t, int> delivers_;                     // call id -> deliveries so far
  std::map<std::string, int64_t> down_since_;           // node -> crash time
  int64_t last_ns_ = 0;
};

// Feeds every line of `in` to `timeline`. Returns "" or the error naming
// the first line that is not a trace event (the lines before it are kept).
std::string AddLines(std::istream& in, const std::filesystem::path& jsonl,
                     TimelineBuilder* timeline) {
  std::string line;
  for (int64_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.empty()) {
      continue;
    }
    const std::optional<TraceLine> e = ParseTraceLine(line);
    if (!e) {
      return fmt::format("{}:{}: not a trace event line", jsonl.string(), line_no);
    }
    timeline->Add(*e);
  }
  return "";
}

// Closes the written temporary file and, unless conversion failed, puts it
// in place of `out`; a failed conversion leaves no file behind.
std::string FinishFile(std::FILE* f, const std::filesystem::path& tmp,
                       const std::filesystem::path& out, const std::string& conversion_error) {
  const bool ok = std::fflush(f) == 0 && std::ferror(f) == 0;
  std::fclose(f);
  if (!conversion_error.empty()) {
    std::filesystem::remove(tmp);
    return conversion_error;
  }
  if (!ok) {
    return fmt::format("cannot write {}: {}", tmp.string(), std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, out, ec);
  if (ec) {
    return fmt::format("cannot rename {} to {}: {}", tmp.string(), out.string(), ec.message());
  }
  return "";
}

}  // namespace

std::string ExportChromeTrace(const std::filesystem::path& jsonl, const std::filesystem::path& out,
                              const std::string& title, ChromeTraceSummary* summary) {
  *summary = {};
  std::ifstream in(jsonl);
  if (!in) {
    return fmt::format("cannot read {}: {}", jsonl.string(), std::strerror(errno));
  }
  std::filesystem::path tmp = out;
  tmp += ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    return fmt::format("cannot write {}: {}", tmp.string(), std::strerror(errno));
  }
  std::fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[", f);
  Writer w(f);
  TimelineBuilder timeline(&w, summary);
  const std::string error = AddLines(in, jsonl, &timeline);
  timeline.CloseOpenSpans();
  summary->events_out = w.written();
  const std::string tail = fmt::format(
      "\n],\"otherData\":{}}}\n",
      nlohmann::json{{"title", title}, {"source", "paylab"}, {"time", "virtual"}}.dump());
  std::fputs(tail.c_str(), f);
  return FinishFile(f, tmp, out, error);
}

}  // namespace paylab::reports
