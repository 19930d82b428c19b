// Names of the broker's audit view (see broker_audit.h).
#include "system/messaging/broker_observer.h"

namespace paylab::system {

std::string_view BrokerOpName(BrokerOp op) {
  switch (op) {
    case BrokerOp::kOpen:
      return "open";
    case BrokerOp::kPublish:
      return "publish";
    case BrokerOp::kHeartbeat:
      return "heartbeat";
    case BrokerOp::kCommit:
      return "commit";
    case BrokerOp::kFanOut:
      return "fan_out";
    case BrokerOp::kInject:
      return "inject";
    case BrokerOp::kReceive:
      return "receive";
    case BrokerOp::kDelete:
      return "delete";
    case BrokerOp::kRedrive:
      return "redrive";
  }
  return "unknown";
}

std::string_view QueueEventName(QueueEvent e) {
  switch (e) {
    case QueueEvent::kEnqueued:
      return "enqueued";
    case QueueEvent::kReceived:
      return "received";
    case QueueEvent::kDeleted:
      return "deleted";
    case QueueEvent::kDeadLettered:
      return "dead_lettered";
    case QueueEvent::kRedriven:
      return "redriven";
  }
  return "unknown";
}

}  // namespace paylab::system
