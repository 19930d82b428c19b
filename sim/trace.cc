// Implementation of the trace and its running hash (see trace.h).
#include "sim/trace.h"

#include <fmt/format.h>

#include "sim/random.h"

namespace paylab::sim {

std::string_view TraceKindName(TraceKind kind) {
  switch (kind) {
    case TraceKind::kRpcSend:
      return "rpc.send";
    case TraceKind::kRpcDeliver:
      return "rpc.deliver";
    case TraceKind::kRpcReply:
      return "rpc.reply";
    case TraceKind::kRpcReplyDeliver:
      return "rpc.reply_deliver";
    case TraceKind::kRpcTimeout:
      return "rpc.timeout";
    case TraceKind::kRpcDrop:
      return "rpc.drop";
    case TraceKind::kCrash:
      return "crash";
    case TraceKind::kRestart:
      return "restart";
    case TraceKind::kCommit:
      return "commit";
    case TraceKind::kFault:
      return "fault";
    case TraceKind::kCheck:
      return "check";
    case TraceKind::kNote:
      return "note";
  }
  return "unknown";
}

Trace::Trace() : hash_(0x9ae16a3b2f90404full) {}

Trace::~Trace() { CloseSink(); }

void Trace::SetNodeNames(std::vector<std::string> names) { node_names_ = std::move(names); }

bool Trace::OpenSink(const std::string& path) {
  CloseSink();
  sink_ = std::fopen(path.c_str(), "w");
  return sink_ != nullptr;
}

void Trace::CloseSink() {
  if (sink_ != nullptr) {
    std::fclose(sink_);
    sink_ = nullptr;
  }
}

void Trace::Mix(uint64_t v) {
  // A multiply-xorshift step (as in wyhash/murmur finalisers): cheap, and
  // every input bit reaches every output bit.
  hash_ ^= v + 0x9e3779b97f4a7c15ull + (hash_ << 6) + (hash_ >> 2);
  hash_ *= 0xff51afd7ed558ccdull;
  hash_ ^= hash_ >> 33;
}

void Trace::Record(const TraceEvent& e) {
  ++count_;
  Mix(static_cast<uint64_t>(e.time));
  Mix((static_cast<uint64_t>(e.kind) << 48) ^ (static_cast<uint64_t>(e.node) << 24) ^ e.peer);
  Mix(HashName(e.name));
  Mix(static_cast<uint64_t>(e.a));
  Mix(static_cast<uint64_t>(e.b));
  if (sink_ != nullptr) [[unlikely]] {
    WriteLine(e);
  }
}

void Trace::WriteLine(const TraceEvent& e) {
  auto node_name = [this](NodeId id) -> std::string_view {
    if (id == kNoNode) {
      return "";
    }
    if (id < node_names_.size()) {
      return node_names_[id];
    }
    return "?";
  };
  // Names are identifiers chosen by the code (method and check names), so
  // they need no JSON escaping beyond what fmt's debug format gives.
  fmt::print(sink_,
             "{{\"t_ns\":{},\"kind\":\"{}\",\"node\":\"{}\",\"peer\":\"{}\",\"name\":{:?},\"a\":{},"
             "\"b\":{}}}\n",
             e.time, TraceKindName(e.kind), node_name(e.node), node_name(e.peer), e.name, e.a, e.b);
}

std::string FormatHash(uint64_t hash) { return fmt::format("{:016x}", hash); }

}  // namespace paylab::sim
