// The trace: every externally visible event of a run, and its fingerprint.
//
// Each event (an RPC sent, delivered, answered or lost, a crash, a restart,
// a database commit, a fault, a check) is folded into a running 64-bit hash
// as it happens. Same binary + scenario + seed gives the same hash; that hash
// is the determinism fingerprint printed by every run.
//
// Recording is cheap when no sink is attached: fields are hashed in place,
// nothing is formatted or allocated. With a sink (paylab run --trace FILE)
// each event is also written as one JSON line.
//
// Names passed to Record must outlive the call only (they are hashed and,
// with a sink, written at once).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "sim/time.h"

namespace paylab::sim {

using NodeId = uint32_t;
inline constexpr NodeId kNoNode = 0xffffffff;

enum class TraceKind : uint8_t {
  kRpcSend,
  kRpcDeliver,
  kRpcReply,
  kRpcReplyDeliver,
  kRpcTimeout,
  kRpcDrop,
  kCrash,
  kRestart,
  kCommit,
  kFault,
  kCheck,
  kNote,
};

std::string_view TraceKindName(TraceKind kind);

struct TraceEvent {
  Time time = 0;
  TraceKind kind = TraceKind::kNote;
  NodeId node = kNoNode;
  NodeId peer = kNoNode;
  std::string_view name;
  int64_t a = 0;
  int64_t b = 0;
};

class Trace {
 public:
  Trace();
  ~Trace();
  Trace(const Trace&) = delete;
  Trace& operator=(const Trace&) = delete;

  // Names nodes for the sink output; ids index this table.
  void SetNodeNames(std::vector<std::string> names);

  // Writes every further event to `path` as JSON lines. Returns false (and
  // leaves tracing to the hash only) if the file cannot be opened.
  bool OpenSink(const std::string& path);
  void CloseSink();

  void Record(const TraceEvent& e);

  uint64_t hash() const { return hash_; }
  uint64_t count() const { return count_; }

 private:
  void Mix(uint64_t v);
  void WriteLine(const TraceEvent& e);

  uint64_t hash_;
  uint64_t count_ = 0;
  std::vector<std::string> node_names_;
  std::FILE* sink_ = nullptr;
};

// Formats a trace hash the way every report prints it (16 hex digits).
std::string FormatHash(uint64_t hash);

}  // namespace paylab::sim
