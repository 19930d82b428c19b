// The broker node: serves the BrokerLog over RPC (publish, fetch, heartbeat,
// commit) and the queues fed by its topics (receive, delete). Its log,
// committed offsets and queues are in its database and survive crashes;
// group membership is in memory and is rebuilt by heartbeats. Every message
// the log appends is fanned out to the queues its topic feeds in the same
// step (no crash falls between them). With audit on, each boot and every
// mutating call is reported to the observer.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sim/context.h"
#include "system/messaging/broker_log.h"
#include "system/messaging/queue_store.h"

namespace paylab::system {

namespace asio = boost::asio;

struct BrokerConfig {
  std::vector<TopicConfig> topics;
  // Queues fed by the topics (fan-out), and their dead-letter queues.
  std::vector<QueueConfig> queues;
  sim::Duration session_timeout = 3 * sim::kSecond;
  // Fault: the probability that a fetch also re-delivers up to
  // redelivery_max messages before the requested offset (at-least-once
  // delivery as a consumer sees it after a rewind).
  double duplicate_delivery = 0;
  int64_t redelivery_max = 5;
  // Report every mutating call of the log and the queues, and each boot,
  // to `observer` (system/messaging/broker_observer.h): what a reference model checks.
  bool audit = false;
  BrokerObserver* observer = nullptr;
  // DEFECT dead_letter_one_receive_early (see QueueStoreOptions).
  bool defect_dead_letter_early = false;
};

struct PublishRequest {
  std::string topic, key, payload, producer;
  int64_t seq = 0;
};
struct FetchRequest {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t max = 0;
};
struct HeartbeatRequest {
  std::string group, member, topic;
};
struct CommitRequest {
  std::string group, member, topic;
  int32_t partition = 0;
  int64_t next_offset = 0;
};
struct ReceiveRequest {
  std::string queue;
  int64_t max = 0;
};
struct DeleteRequest {
  std::string queue;
  int64_t id = 0;
  int64_t receipt = 0;
};
struct CommittedRequest {
  std::string group, topic;
  int32_t partition = 0;
};

class Broker : public sim::Service {
 public:
  Broker(sim::NodeContext& ctx, const BrokerConfig& config);

  asio::awaitable<void> Boot() override;

  asio::awaitable<PublishReply> Publish(PublishRequest r);
  asio::awaitable<FetchReply> Fetch(FetchRequest r);
  asio::awaitable<Assignment> Heartbeat(HeartbeatRequest r);
  asio::awaitable<CommitReply> Commit(CommitRequest r);
  // The group's committed offset (status kOk), or a refusal naming what is
  // wrong with the request.
  asio::awaitable<CommitReply> Committed(CommittedRequest r);
  asio::awaitable<ReceiveReply> Receive(ReceiveRequest r);
  asio::awaitable<DeleteReply> Delete(DeleteRequest r);

  // Fault injection and operator actions, called by the harness (not RPC).
  // REQUIRES: booted.
  void InjectPoison(std::string_view queue);
  int64_t Redrive(std::string_view dlq);
  QueueStore& queues() { return *queues_; }

  // REQUIRES: booted.
  BrokerLog& log() { return *log_; }

 private:
  BrokerLog& Live();

  sim::NodeContext& ctx_;
  const BrokerConfig& config_;
  sim::Rng faults_;
  std::unique_ptr<BrokerLog> log_;
  std::unique_ptr<QueueStore> queues_;
};

}  // namespace paylab::system
