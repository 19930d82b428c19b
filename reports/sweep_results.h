// The results of a sweep: one JSON line per seed (results.jsonl), and the
// JUnit XML that CI reads.
//
// A line records the seed, its outcome, the failed check with its detail
// and time, the trace hash, key figures and the replay command, and also
// what the sweep ran (scenario, defects, swarm), so that a results file
// says what it holds, resuming refuses a file of another sweep, and merge
// refuses to mix sweeps. Lines are appended one at a time, flushed and
// synced, so a killed sweep loses at most the seeds in flight; a torn last
// line is dropped on reading.
//
// JUnit: one <testcase> per seed, sorted by seed; a failing seed's
// <failure message> carries the check and the replay command.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "reports/run_result.h"

namespace paylab::reports {

// What a sweep runs, the same on every line of one results file.
struct SweepIdentity {
  std::string scenario_name;
  std::string scenario_file;
  std::vector<std::string> defects;
  bool swarm = false;

  bool operator==(const SweepIdentity&) const = default;
};

struct SeedRecord {
  SweepIdentity sweep;
  uint64_t seed = 0;
  std::string result;  // "pass", "fail" or "error"
  std::string check;   // the failed check ("" when it passed)
  std::string detail;  // what broke it, or the internal error
  double at_s = 0;
  std::string trace_hash;
  double virtual_time_s = 0;
  double wall_time_s = 0;
  uint64_t kernel_events = 0;
  int64_t operations_finished = 0;
  int64_t rpc_calls = 0;
  int64_t crashes = 0;
  std::string replay;
  std::string swarm_faults;  // swarm: the faults the seed drew, as JSON text ("" otherwise)

  bool passed() const { return result == "pass"; }
};

SeedRecord RecordOf(const RunResult& r);
std::string ToJsonLine(const SeedRecord& r);  // no trailing newline

// Reads a results file. A line that is not a complete record (the torn
// tail of a killed sweep) is counted in *dropped and skipped. A missing
// file is an empty result. Returns "" or a one-line error (unreadable file).
std::string ReadResults(const std::filesystem::path& path, std::vector<SeedRecord>* out,
                        int64_t* dropped);

// Appends lines durably (flush + fsync per line).
class ResultsAppender {
 public:
  ResultsAppender() = default;
  ~ResultsAppender();
  ResultsAppender(const ResultsAppender&) = delete;
  ResultsAppender& operator=(const ResultsAppender&) = delete;
  // Returns "" or a one-line error.
  std::string Open(const std::filesystem::path& path);
  std::string Append(const SeedRecord& r);

 private:
  std::FILE* f_ = nullptr;
  std::string path_;
};

// The JUnit XML for `records` (sorted by seed inside).
std::string JUnitXml(const std::string& suite, std::vector<SeedRecord> records);

// Escapes text for XML attributes and content.
std::string XmlEscape(std::string_view s);

}  // namespace paylab::reports
