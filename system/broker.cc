// Implementation of the broker node (see broker.h).
#include "system/broker.h"

#include <algorithm>

namespace paylab::system {

Broker::Broker(sim::NodeContext& ctx, const BrokerConfig& config)
    : ctx_(ctx), config_(config), faults_(ctx.Stream("faults.duplicate_delivery")) {}

asio::awaitable<void> Broker::Boot() {
  log_ = std::make_unique<BrokerLog>(ctx_.db(), config_.topics);
  ctx_.Trace(sim::TraceKind::kNote, "broker.boot");
  co_return;
}

BrokerLog& Broker::Live() {
  ctx_.db();  // refuses once this incarnation has crashed
  return *log_;
}

asio::awaitable<PublishReply> Broker::Publish(PublishRequest r) {
  PublishReply reply = Live().Publish(r.topic, r.key, r.payload, r.producer, r.seq, ctx_.Now());
  if (reply.status == BrokerStatus::kOk) {
    ctx_.Trace(sim::TraceKind::kCommit, reply.duplicate ? "broker.dedup" : "broker.append",
               reply.partition, reply.offset);
  }
  co_return reply;
}

asio::awaitable<FetchReply> Broker::Fetch(FetchRequest r) {
  if (r.offset > 0 && r.max > 0 && faults_.Bernoulli(config_.duplicate_delivery)) {
    const int64_t back = faults_.UniformInt(1, std::min(r.offset, config_.redelivery_max));
    ctx_.Trace(sim::TraceKind::kFault, "duplicate_delivery", r.partition, back);
    co_return Live().Fetch(r.topic, r.partition, r.offset - back, r.max + back);
  }
  co_return Live().Fetch(r.topic, r.partition, r.offset, r.max);
}

asio::awaitable<Assignment> Broker::Heartbeat(HeartbeatRequest r) {
  co_return Live().Heartbeat(r.group, r.member, r.topic, ctx_.Now(), config_.session_timeout);
}

asio::awaitable<CommitReply> Broker::Commit(CommitRequest r) {
  co_return Live().Commit(r.group, r.member, r.topic, r.partition, r.next_offset, ctx_.Now(),
                          config_.session_timeout);
}

asio::awaitable<CommitReply> Broker::Committed(CommittedRequest r) {
  BrokerLog& log = Live();
  // BrokerLog::Committed takes these as preconditions; an RPC is untrusted.
  for (const TopicConfig& t : log.topics()) {
    if (t.name == r.topic) {
      if (r.partition < 0 || r.partition >= t.partitions) {
        co_return CommitReply{BrokerStatus::kInvalidArgument, 0, "partition out of range"};
      }
      if (r.group.empty()) {
        co_return CommitReply{BrokerStatus::kInvalidArgument, 0, "empty group name"};
      }
      co_return CommitReply{BrokerStatus::kOk, log.Committed(r.group, r.topic, r.partition), ""};
    }
  }
  co_return CommitReply{BrokerStatus::kNoSuchTopic, 0, "no such topic"};
}

}  // namespace paylab::system
