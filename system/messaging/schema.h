// The messaging layer's stored schema: the tables of the broker's database
// (its log, broker_log.h, and its queues, queue_store.h), the outbox a
// producer keeps in its own database (outbox.h) and the processed-event
// record a consumer keeps in its own (idempotent_consumer.h), and the enums
// whose numeric values their columns store. See system/common/schema.h for
// how checkers write these values into SQL.
#pragma once

#include <cstdint>
#include <string_view>

#include "system/common/schema.h"

namespace paylab::system {

// Where a queue's message is (queue_messages.state). Only live messages can
// be received; the others stay for auditors.
enum class QueueMessageState : uint8_t {
  kLive = 0,
  kDeleted = 1,
  kDeadLettered = 2,  // moved to the dead-letter queue
  kRedriven = 3,      // moved from a dead-letter queue back to its source
};

// The tables of the broker's database.
namespace broker_tables {
// One topic: its partition count and whether its producers are idempotent.
inline constexpr std::string_view kTopics = "topics";
// One message appended to a topic, at its (partition, offset), with the
// producer and sequence number it was published with.
inline constexpr std::string_view kMessages = "messages";
// Per (topic, idempotent producer): the highest sequence number appended
// and where it went.
inline constexpr std::string_view kProducerSeqs = "producer_seqs";
// Per (consumer group, topic, partition): the next offset the group reads.
inline constexpr std::string_view kGroupOffsets = "group_offsets";
// One message a queue has had, by (queue, id): payload, receive count, when
// it is visible and its state (QueueMessageState).
inline constexpr std::string_view kQueueMessages = "queue_messages";
// One queue the broker serves, with its configuration (QueueConfig).
inline constexpr std::string_view kQueues = "queues";
}  // namespace broker_tables

// The table a producer keeps in its own database, beside its state.
namespace outbox_tables {
// One event to publish, written in the transaction of the change it
// reports (sent_at: NULL until the broker acknowledged it).
inline constexpr std::string_view kOutbox = "outbox";
}  // namespace outbox_tables

// The table a consumer keeps in its own database, beside its effects.
namespace consumer_tables {
// One event applied, by its event ID, with when.
inline constexpr std::string_view kProcessedEvents = "processed_events";
}  // namespace consumer_tables

}  // namespace paylab::system
