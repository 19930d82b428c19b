// Implementation of the broker node (see broker.h).
#include "system/messaging/broker.h"

#include <algorithm>

#include "sim/check.h"

namespace paylab::system {

Broker::Broker(sim::NodeContext& ctx, const BrokerConfig& config)
    : ctx_(ctx), config_(config), faults_(ctx.Stream("faults.duplicate_delivery")) {}

asio::awaitable<void> Broker::Boot() {
  // Auditing needs an observer to report to.
  PAYLAB_CHECK(!config_.audit || config_.observer != nullptr);
  BrokerObserver* audit = config_.audit ? config_.observer : nullptr;
  log_ = std::make_unique<BrokerLog>(ctx_.db(), config_.topics, audit, ctx_.Now());
  queues_ = std::make_unique<QueueStore>(
      ctx_.db(), config_.queues,
      QueueStoreOptions{.audit = audit,
                        .defect_dead_letter_early = config_.defect_dead_letter_early});
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
    if (!reply.duplicate) {
      // Fan-out to subscribed queues. No co_await separates the append from
      // this, so no crash can fall between them.
      queues_->FanOut(r.topic, r.payload, ctx_.Now());
    }
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
  BrokerLog& log = *log_;
  Live();
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

asio::awaitable<ReceiveReply> Broker::Receive(ReceiveRequest r) {
  Live();
  ReceiveReply reply = queues_->Receive(r.queue, r.max, ctx_.Now());
  if (reply.dead_lettered > 0) {
    ctx_.Trace(sim::TraceKind::kCommit, "broker.dead_letter", reply.dead_lettered);
  }
  co_return reply;
}

asio::awaitable<DeleteReply> Broker::Delete(DeleteRequest r) {
  Live();
  co_return queues_->Delete(r.queue, r.id, r.receipt);
}

void Broker::InjectPoison(std::string_view queue) {
  Live();
  ctx_.Trace(sim::TraceKind::kFault, "poison_message");
  queues_->Inject(queue, "poison: not a movement event", ctx_.Now());
}

int64_t Broker::Redrive(std::string_view dlq) {
  Live();
  const int64_t n = queues_->Redrive(dlq, ctx_.Now());
  ctx_.Trace(sim::TraceKind::kNote, "broker.redrive", n);
  return n;
}

}  // namespace paylab::system
