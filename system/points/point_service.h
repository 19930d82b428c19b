// The point service: a node that owns the point ledger, serves its TCC debit
// API and balance over RPC, runs the expiry job, and (when configured) the
// point-assignment consumer (seeds 000, 001, 002).
//
// All state that matters is in the node's database; the service keeps only
// prepared statements, the ID generator's lease and a random stream in
// memory, and its Boot() rebuilds them. Handlers are synchronous once they
// run (one SQLite transaction each), so a crash either happened before a
// request was applied or after its transaction committed.
//
// The assigner receives payment events (system/points/payment_event.h) from a
// broker queue fed by the payment topic, applies each with
// PointLedger::ApplyPaymentEvent (idempotent and order-insensitive, so a
// redelivery or an out-of-order event is harmless), then deletes it. A
// message it cannot decode is poison: counted and left undeleted, so it
// comes back until the broker dead-letters it. With the apply_failure_rate
// fault an apply fails transiently before touching the database: the
// message is left undeleted too, and comes back (or is dead-lettered and
// later redriven by the harness). A failure in point assignment never
// reaches the payment: the two only share the queue.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "sim/context.h"
#include "sim/random.h"
#include "system/points/point_ledger.h"
#include "system/messaging/queue_consumer.h"
#include "system/common/tcc.h"

namespace paylab::system {

namespace asio = boost::asio;

struct PointServiceConfig {
  // The ID worker (ledger.id_worker), the largest hold ttl a try may ask
  // (ledger.hold_ttl_max) and the node's clock origin for IDs.
  PointLedgerOptions ledger;
  // Population: users 1..users, each with one confirmed lot of
  // initial_points expiring lot_expiry after boot (<= 0: never).
  int64_t users = 0;
  int64_t initial_points = 0;
  sim::Duration lot_expiry = 90 * sim::kDay;
  // The expiry job: releases expired holds and moves expired lots to
  // BREAKAGE, up to expiry_batch_max of each per scan.
  sim::Duration expiry_scan_interval = 5 * sim::kSecond;
  int64_t expiry_batch_max = 1000;

  // The point-assignment consumer ("" queue: none).
  sim::NodeId broker = 0;
  std::string queue;
  int64_t receive_max = 10;
  sim::Duration poll_interval = 50 * sim::kMillisecond;
  // Empty receives back the polling off, doubling up to this.
  sim::Duration poll_interval_max = 1 * sim::kSecond;
  sim::Duration rpc_timeout = 200 * sim::kMillisecond;
  // reward = payment amount * reward_bp / 10000, rounded down.
  int64_t reward_bp = 100;
  // A grant expires grant_ttl after the event that created it.
  sim::Duration grant_ttl = 90 * sim::kDay;
  // Fault: the probability that an apply fails transiently (drawn from the
  // node's "assigner.faults" stream); the message is not deleted.
  double apply_failure_rate = 0;
};

// Traces a committed point movement (its kind, ID and the points it moved).
void TracePointMovement(sim::NodeContext& ctx, const PointMovementRecord& m);

class PointService : public sim::Service, public PointLedgerObserver {
 public:
  // `observer` (the checker) may be null.
  PointService(sim::NodeContext& ctx, const PointServiceConfig& config,
               PointLedgerObserver* observer);

  asio::awaitable<void> Boot() override;

  asio::awaitable<TccReply> TryDebit(TccTry t);
  asio::awaitable<TccReply> ConfirmDebit(std::string key);
  asio::awaitable<TccReply> CancelDebit(std::string key);
  // Spendable points now.
  asio::awaitable<int64_t> Balance(int64_t user);

  // REQUIRES: booted.
  PointLedger& ledger() { return *ledger_; }
  // Durable counts (grants, conflicts, events applied, poison seen, apply
  // failures). REQUIRES: booted; while the node is down, read them with
  // ReadPointCounters(node.db()).
  PointCounters counters() { return ledger_->Counters(); }

  // Traces every committed movement, then forwards it to the outside
  // observer (the checker).
  void OnPointMovement(const PointMovementRecord& m) override;
  void OnPointApplied(const PointApplied& a) override;

 private:
  asio::awaitable<void> ExpiryLoop();
  // Returns true if the message may be deleted (applied, now or before).
  bool Assign(std::string_view payload);
  PointLedger& Live();

  sim::NodeContext& ctx_;
  const PointServiceConfig& config_;
  PointLedgerObserver* observer_;
  sim::Rng faults_;
  std::unique_ptr<PointLedger> ledger_;
  QueueConsumerConfig consumer_;
  QueueHandler handler_;
};

}  // namespace paylab::system
