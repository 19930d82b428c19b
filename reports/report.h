// Turning a RunResult into what people and machines read: the terminal
// summary and report.json.
//
// report.json has stable keys in a fixed order (documented in
// reports/README.md), and so has run.json, the record the runner leaves
// beside the databases; files are written atomically (a temporary file in
// the same directory, then a rename), so a reader never sees half a report.
#pragma once

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "reports/run_result.h"

namespace paylab::reports {

// "pass", "fail" or "error", as report.json and results files spell it.
std::string_view OutcomeWord(RunOutcome o);

// "ok", "fail" or "not_evaluated", as report.json spells a check's verdict.
std::string_view VerdictWord(Verdict v);

// The command that replays `r` exactly.
std::string ReplayCommand(const RunResult& r);

void PrintSummary(std::FILE* out, const RunResult& r, const std::string& report_path);

nlohmann::ordered_json ReportJson(const RunResult& r);

// run.json: how the run ended and which databases it left. Deterministic:
// the same binary, scenario and seed give the same bytes (no wall time).
nlohmann::ordered_json RunJson(const RunResult& r);

// Writes `content` to `path` atomically. Returns "" or a one-line error.
std::string WriteFileAtomic(const std::filesystem::path& path, const std::string& content);

}  // namespace paylab::reports
