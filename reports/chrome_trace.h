// Exporting a run's trace in the Chrome trace event format, which Perfetto
// (ui.perfetto.dev) and chrome://tracing open.
//
// The input is the trace as `paylab run --trace FILE` writes it: one JSON
// object per line, {"t_ns", "kind", "node", "peer", "name", "a", "b"}.
// The output is one JSON object {"traceEvents": [...], ...}:
//  - one process per node (pid 1.., named after the node, in the order the
//    nodes first appear) and one for the checkers;
//  - each RPC as an async span on the caller's process, from the send to
//    the reply or the timeout (or the caller's crash), named by method,
//    with the callee and the outcome in its args; and, on the callee's
//    process, a span from the delivery to the reply it sent;
//  - commits (journal movements, broker appends), faults (lost requests and
//    replies, duplicates, delays, partitions, clock steps, fault points),
//    crashes, restarts, notes and check failures as instant events;
//  - the time a node is down as a span named "down".
// Timestamps are microseconds of virtual time. Reports read events only:
// this knows nothing of the simulator beyond the line format.
#pragma once

#include <filesystem>
#include <string>

namespace paylab::reports {

struct ChromeTraceSummary {
  int64_t events_in = 0;   // trace lines read
  int64_t events_out = 0;  // trace events written
  int64_t rpc_spans = 0;
  int64_t instants = 0;
};

// Converts `jsonl` into `out` (written atomically). `title` names the run
// in the file's metadata. Returns "" or a one-line error (unreadable input,
// a line that is not a trace event, an unwritable output).
std::string ExportChromeTrace(const std::filesystem::path& jsonl, const std::filesystem::path& out,
                              const std::string& title, ChromeTraceSummary* summary);

}  // namespace paylab::reports
