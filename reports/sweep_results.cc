// Implementation of sweep results (see sweep_results.h).
#include "reports/sweep_results.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "reports/report.h"

namespace paylab::reports {

namespace {

int64_t FaultCount(const RunResult& r, std::string_view name) {
  for (const auto& [n, v] : r.faults) {
    if (n == name) {
      return v;
    }
  }
  return 0;
}

}  // namespace

SeedRecord RecordOf(const RunResult& r) {
  SeedRecord s;
  s.sweep = SweepIdentity{r.scenario_name, r.scenario_file, r.defects, r.swarm};
  s.seed = r.seed;
  s.result = std::string(OutcomeWord(r.outcome));
  if (r.violation) {
    s.check = r.violation->check;
    s.detail = r.violation->detail;
    s.at_s = r.violation->at_s;
  } else if (r.outcome == RunOutcome::kInternalError) {
    s.check = "internal_error";
    s.detail = r.internal_error;
    s.at_s = r.virtual_time_s;
  }
  s.trace_hash = fmt::format("{:016x}", r.trace_hash);
  s.virtual_time_s = r.virtual_time_s;
  s.wall_time_s = r.wall_time_s;
  s.kernel_events = r.kernel_events;
  s.operations_finished = r.operations_finished;
  s.rpc_calls = r.rpc_calls;
  s.crashes = FaultCount(r, "crash");
  s.replay = ReplayCommand(r);
  s.swarm_faults = r.swarm_faults;
  return s;
}

std::string ToJsonLine(const SeedRecord& r) {
  nlohmann::ordered_json j;
  j["seed"] = r.seed;
  j["result"] = r.result;
  j["check"] = r.check.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.check);
  j["detail"] =
      r.detail.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.detail);
  j["at_s"] = r.at_s;
  j["trace_hash"] = r.trace_hash;
  j["virtual_time_s"] = r.virtual_time_s;
  j["wall_time_s"] = r.wall_time_s;
  j["kernel_events"] = r.kernel_events;
  j["operations_finished"] = r.operations_finished;
  j["rpc_calls"] = r.rpc_calls;
  j["crashes"] = r.crashes;
  j["replay"] = r.replay;
  j["scenario"] = {{"name", r.sweep.scenario_name}, {"file", r.sweep.scenario_file}};
  j["defects"] = r.sweep.defects;
  j["swarm"] = r.sweep.swarm;
  j["swarm_faults"] = r.swarm_faults.empty()
                          ? nlohmann::ordered_json(nullptr)
                          : nlohmann::ordered_json::parse(r.swarm_faults, nullptr, false);
  // Invalid UTF-8 in a detail must not make the line unwritable.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

namespace {

bool ParseLine(const std::string& line, SeedRecord* out) {
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    return false;
  }
  try {
    SeedRecord r;
    r.seed = j.at("seed").get<uint64_t>();
    r.result = j.at("result").get<std::string>();
    if (r.result != "pass" && r.result != "fail" && r.result != "error") {
      return false;
    }
    r.check = j.at("check").is_null() ? "" : j.at("check").get<std::string>();
    r.detail = j.at("detail").is_null() ? "" : j.at("detail").get<std::string>();
    r.at_s = j.at("at_s").get<double>();
    r.trace_hash = j.at("trace_hash").get<std::string>();
    r.virtual_time_s = j.at("virtual_time_s").get<double>();
    r.wall_time_s = j.at("wall_time_s").get<double>();
    r.kernel_events = j.at("kernel_events").get<uint64_t>();
    r.operations_finished = j.at("operations_finished").get<int64_t>();
    r.rpc_calls = j.at("rpc_calls").get<int64_t>();
    r.crashes = j.at("crashes").get<int64_t>();
    r.replay = j.at("replay").get<std::string>();
    r.sweep.scenario_name = j.at("scenario").at("name").get<std::string>();
    r.sweep.scenario_file = j.at("scenario").at("file").get<std::string>();
    r.sweep.defects = j.at("defects").get<std::vector<std::string>>();
    r.sweep.swarm = j.at("swarm").get<bool>();
    if (j.contains("swarm_faults") && j["swarm_faults"].is_object()) {
      r.swarm_faults = j["swarm_faults"].dump();
    }
    *out = std::move(r);
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

}  // namespace

std::string ReadResults(const std::filesystem::path& path, std::vector<SeedRecord>* out,
                        int64_t* dropped) {
  *dropped = 0;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return "";
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    return fmt::format("cannot read {}: {}", path.string(), std::strerror(errno));
  }
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) {
      continue;
    }
    SeedRecord r;
    if (ParseLine(line, &r)) {
      out->push_back(std::move(r));
    } else {
      ++*dropped;
    }
  }
  return "";
}

ResultsAppender::~ResultsAppender() {
  if (f_ != nullptr) {
    std::fclose(f_);
  }
}

std::string ResultsAppender::Open(const std::filesystem::path& path) {
  path_ = path.string();
  f_ = std::fopen(path_.c_str(), "ab");
  if (f_ == nullptr) {
    return fmt::format("cannot append to {}: {}", path_, std::strerror(errno));
  }
  return "";
}

std::string ResultsAppender::Append(const SeedRecord& r) {
  const std::string line = ToJsonLine(r) + "\n";
  if (std::fwrite(line.data(), 1, line.size(), f_) != line.size() || std::fflush(f_) != 0 ||
      ::fsync(::fileno(f_)) != 0) {
    return fmt::format("cannot append to {}: {}", path_, std::strerror(errno));
  }
  return "";
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '\n':
        out += "&#10;";
        break;
      default:
        // Control characters are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\r') {
          out += ' ';
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string JUnitXml(const std::string& suite, std::vector<SeedRecord> records) {
  std::sort(records.begin(), records.end(),
            [](const SeedRecord& a, const SeedRecord& b) { return a.seed < b.seed; });
  int64_t failures = 0;
  int64_t errors = 0;
  double time = 0;
  for (const SeedRecord& r : records) {
    failures += r.result == "fail" ? 1 : 0;
    errors += r.result == "error" ? 1 : 0;
    time += r.wall_time_s;
  }
  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x += fmt::format(
      "<testsuites name=\"paylab sweep\" tests=\"{}\" failures=\"{}\" errors=\"{}\" "
      "time=\"{:.3f}\">\n",
      records.size(), failures, errors, time);
  x += fmt::format(
      "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3f}\">\n",
      XmlEscape(suite), records.size(), failures, errors, time);
  for (const SeedRecord& r : records) {
    x += fmt::format("    <testcase classname=\"{}\" name=\"seed {}\" time=\"{:.3f}\"",
                     XmlEscape(suite), r.seed, r.wall_time_s);
    if (r.passed()) {
      x += "/>\n";
      continue;
    }
    const std::string tag = r.result == "fail" ? "failure" : "error";
    const std::string message =
        r.result == "fail"
            ? fmt::format("check {} violated at t={:.6f} s; replay: {}", r.check, r.at_s, r.replay)
            : fmt::format("internal error; replay: {}", r.replay);
    x += fmt::format(">\n      <{} message=\"{}\" type=\"{}\">{}\n{}</{}>\n    </testcase>\n", tag,
                     XmlEscape(message), XmlEscape(r.check), XmlEscape(r.detail),
                     XmlEscape(r.replay), tag);
  }
  x += "  </testsuite>\n</testsuites>\n";
  return x;
}

}  // namespace paylab::reports
