// Implementation of the Chrome trace export (see chrome_trace.h).
#include "reports/chrome_trace.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
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
  w.Event({{"ph", "M"},
           {"pid", kCheckersPid},
           {"tid", 0},
           {"name", "process_name"},
           {"args", {{"name", "checkers"}}}});

  std::map<std::string, int> pid_of;  // node name -> pid
  auto pid = [&](const std::string& node) {
    if (node.empty()) {
      return kCheckersPid;
    }
    auto [it, inserted] = pid_of.emplace(node, static_cast<int>(pid_of.size()) + 2);
    if (inserted) {
      w.Event({{"ph", "M"},
               {"pid", it->second},
               {"tid", 0},
               {"name", "process_name"},
               {"args", {{"name", node}}}});
      w.Event({{"ph", "M"},
               {"pid", it->second},
               {"tid", 0},
               {"name", "process_sort_index"},
               {"args", {{"sort_index", it->second}}}});
      w.Event({{"ph", "M"},
               {"pid", it->second},
               {"tid", 1},
               {"name", "thread_name"},
               {"args", {{"name", node + " events"}}}});
    }
    return it->second;
  };

  struct OpenCall {
    std::string caller, callee, method;
  };
  std::map<int64_t, OpenCall> calls;                   // call id -> the caller's open span
  std::map<int64_t, std::deque<std::string>> serving;  // call id -> span ids open at the callee
  std::map<std::string, std::string> serve_node;       // server span id -> callee
  std::map<int64_t, int> delivers;                     // call id -> deliveries so far
  std::map<std::string, int64_t> down_since;           // node -> crash time
  int64_t last_ns = 0;
  int64_t line_no = 0;

  auto end_call = [&](int64_t id, int64_t t, const std::string& outcome) {
    auto it = calls.find(id);
    if (it == calls.end()) {
      return;
    }
    w.Event({{"ph", "e"},
             {"cat", "rpc"},
             {"id", fmt::format("c{}", id)},
             {"name", it->second.method},
             {"pid", pid(it->second.caller)},
             {"tid", 1},
             {"ts", Us(t)},
             {"args", {{"outcome", outcome}}}});
    calls.erase(it);
  };
  auto end_serve = [&](const std::string& span, int64_t t, const std::string& outcome) {
    auto node = serve_node.find(span);
    if (node == serve_node.end()) {
      return;
    }
    w.Event({{"ph", "e"},
             {"cat", "serve"},
             {"id", span},
             {"name", "serve"},
             {"pid", pid(node->second)},
             {"tid", 1},
             {"ts", Us(t)},
             {"args", {{"outcome", outcome}}}});
    serve_node.erase(node);
  };
  auto instant = [&](const std::string& node, const std::string& name, int64_t t,
                     nlohmann::json args) {
    w.Event({{"ph", "i"},
             {"s", "t"},
             {"name", name},
             {"pid", pid(node)},
             {"tid", 1},
             {"ts", Us(t)},
             {"args", std::move(args)}});
    ++summary->instants;
  };

  std::string line;
  std::string error;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) {
      continue;
    }
    const nlohmann::json e = nlohmann::json::parse(line, nullptr, false);
    if (!e.is_object() || !e.contains("t_ns") || !e.contains("kind") || !e.contains("node") ||
        !e.contains("peer") || !e.contains("name") || !e.contains("a") || !e.contains("b") ||
        !e["t_ns"].is_number_integer() || !e["kind"].is_string()) {
      error = fmt::format("{}:{}: not a trace event line", jsonl.string(), line_no);
      break;
    }
    ++summary->events_in;
    const int64_t t = e["t_ns"].get<int64_t>();
    last_ns = std::max(last_ns, t);
    const std::string kind = e["kind"].get<std::string>();
    const std::string node = e["node"].is_string() ? e["node"].get<std::string>() : "";
    const std::string peer = e["peer"].is_string() ? e["peer"].get<std::string>() : "";
    const std::string name = e["name"].is_string() ? e["name"].get<std::string>() : "";
    const int64_t a = e["a"].is_number_integer() ? e["a"].get<int64_t>() : 0;
    const int64_t b = e["b"].is_number_integer() ? e["b"].get<int64_t>() : 0;
    if (!node.empty()) {
      pid(node);
    }
    if (kind == "rpc.send") {
      calls[a] = OpenCall{node, peer, name};
      w.Event({{"ph", "b"},
               {"cat", "rpc"},
               {"id", fmt::format("c{}", a)},
               {"name", name},
               {"pid", pid(node)},
               {"tid", 1},
               {"ts", Us(t)},
               {"args", {{"call", a}, {"callee", peer}}}});
      ++summary->rpc_spans;
    } else if (kind == "rpc.reply_deliver") {
      end_call(a, t, "ok");
    } else if (kind == "rpc.timeout") {
      end_call(a, t, "timeout");
    } else if (kind == "rpc.deliver") {
      const std::string span = fmt::format("s{}.{}", a, ++delivers[a]);
      serving[a].push_back(span);
      serve_node[span] = node;
      w.Event({{"ph", "b"},
               {"cat", "serve"},
               {"id", span},
               {"name", "serve"},
               {"pid", pid(node)},
               {"tid", 1},
               {"ts", Us(t)},
               {"args", {{"call", a}, {"caller", peer}, {"method", name}}}});
    } else if (kind == "rpc.reply") {
      auto it = serving.find(a);
      if (it != serving.end() && !it->second.empty()) {
        end_serve(it->second.front(), t, "replied");
        it->second.pop_front();
        if (it->second.empty()) {
          serving.erase(it);
        }
      }
    } else if (kind == "rpc.drop") {
      instant(node, "lost: " + name, t,
              {{"call", a}, {"peer", peer}, {"reason", b == 1 ? "partition" : "node down"}});
    } else if (kind == "crash") {
      instant(node, "crash", t, {{"incarnation", a}});
      down_since[node] = t;
      // The node's open work ends with it.
      for (auto it = calls.begin(); it != calls.end();) {
        auto next = std::next(it);
        if (it->second.caller == node) {
          end_call(it->first, t, "caller crashed");
        }
        it = next;
      }
      std::vector<std::string> spans;
      for (const auto& [span, n] : serve_node) {
        if (n == node) {
          spans.push_back(span);
        }
      }
      for (const std::string& span : spans) {
        end_serve(span, t, "callee crashed");
      }
    } else if (kind == "restart") {
      instant(node, "restart", t, {{"incarnation", a}});
      auto it = down_since.find(node);
      if (it != down_since.end()) {
        w.Event({{"ph", "X"},
                 {"name", "down"},
                 {"cat", "crash"},
                 {"pid", pid(node)},
                 {"tid", 1},
                 {"ts", Us(it->second)},
                 {"dur", Us(t - it->second)}});
        down_since.erase(it);
      }
    } else if (kind == "commit") {
      instant(node, name, t, {{"id", a}, {"amount", b}});
    } else if (kind == "fault") {
      instant(node.empty() ? peer : node, "fault: " + name, t,
              {{"peer", peer}, {"a", a}, {"b", b}});
    } else if (kind == "check") {
      instant("", "check failed: " + name, t, {{"check", name}});
    } else {
      instant(node, name, t, {{"a", a}, {"b", b}});
    }
  }
  // Close whatever the run left open (it ended, or stopped at a failure).
  while (!calls.empty()) {
    end_call(calls.begin()->first, last_ns, "run ended");
  }
  while (!serve_node.empty()) {
    end_serve(serve_node.begin()->first, last_ns, "run ended");
  }
  for (const auto& [node, since] : down_since) {
    w.Event({{"ph", "X"},
             {"name", "down"},
             {"cat", "crash"},
             {"pid", pid(node)},
             {"tid", 1},
             {"ts", Us(since)},
             {"dur", Us(last_ns - since)}});
  }
  summary->events_out = w.written();
  const std::string tail = fmt::format(
      "\n],\"otherData\":{}}}\n",
      nlohmann::json{{"title", title}, {"source", "paylab"}, {"time", "virtual"}}.dump());
  std::fputs(tail.c_str(), f);
  const bool ok = std::fflush(f) == 0 && std::ferror(f) == 0;
  std::fclose(f);
  if (!error.empty()) {
    std::filesystem::remove(tmp);
    return error;
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

}  // namespace paylab::reports
