// The payments platform: the messaging platform, plus the point service, the
// payment orchestrator (TCC over points, wallet and the partner, three
// recovery layers), the external partner, the two upstreams (checkout:
// charges; marketplace: escrows and P2P transfers) and, when
// /payments/misuse_rate_per_s > 0, the hostile TCC caller.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checks/models/partner_auditor.h"
#include "checks/models/payment_auditor.h"
#include "checks/partner_checker.h"
#include "checks/payment_checker.h"
#include "harness/worlds/messaging_world.h"
#include "harness/worlds/point_checks.h"
#include "system/payments/partner.h"
#include "system/payments/payment_service.h"
#include "system/payments/upstream.h"
#include "system/points/point_service.h"
#include "workloads/hostile.h"

namespace paylab::scenarios {

class PaymentsWorld : public MessagingWorld {
 public:
  PaymentsWorld(const Scenario& s, const RunOptions& o);
  ~PaymentsWorld() override;

  void Configure(const Scenario& s, const RunOptions& o) override;
  void AddNodes(const RunOptions& o) override;
  void ScheduleOperatorActions(const Scenario& s, sim::Time safety_end) override;
  void StartNodes(const Scenario& s) override;
  std::string NotQuietReason(const Scenario* s) override;
  std::string Backlog() override;
  sim::Duration LivenessBound(const Scenario& s) const override;
  void CheckFinal(const Scenario& s) override;
  std::vector<reports::CheckResult> CheckResults() const override;
  std::vector<const std::optional<system::Violation>*> FirstViolations() const override;
  void CollectFigures(const Scenario& s, reports::RunResult& r) override;

 private:
  // The payment topic and the queues of its consumers.
  void ConfigureTopic(const Scenario& s);
  void ConfigurePoints(const Scenario& s, const RunOptions& o);
  void ConfigurePartner(const Scenario& s, const RunOptions& o);
  void ConfigureHostile(const Scenario& s);
  void ConfigurePaymentService(const Scenario& s, const RunOptions& o);
  void ConfigureUpstreams(const Scenario& s, const RunOptions& o);
  // Why an upstream, the payment service or the hostile caller is not done.
  std::string PaymentsNotQuiet(const Scenario* s);
  void CollectPaymentFigures(reports::RunResult& r);
  void CollectUpstreamFigures(reports::RunResult& r);

  PointChecks point_checks_;
  system::PartnerChecker partner_checker_;
  std::optional<models::PartnerAuditor> partner_auditor_;
  system::PaymentChecker payment_checker_;
  std::optional<models::PaymentAuditor> payment_auditor_;
  system::PointServiceConfig point_config_;
  system::PartnerConfig partner_config_;
  system::PartnerCounters partner_counters_;
  system::PaymentConfig payment_config_;
  system::PaymentCounters payment_counters_;
  system::UpstreamConfig checkout_config_;
  system::UpstreamConfig marketplace_config_;
  system::UpstreamCounters checkout_counters_;
  system::UpstreamCounters marketplace_counters_;
  std::string assignment_queue_;
  std::string assignment_dlq_;
  int64_t assignment_redriven_ = 0;
  int64_t assignment_poison_ = 0;
  system::HostileConfig hostile_config_;
  system::HostileCounters hostile_counters_;
  // The hostile caller's check (misuse_refused_or_replayed), only when it runs.
  std::optional<system::CheckBoard> misuse_board_;
  std::unique_ptr<ServiceNode<system::PointService>> point_;
  std::unique_ptr<ServiceNode<system::PaymentService>> payment_;
  std::unique_ptr<ServiceNode<system::Partner>> partner_;
  std::unique_ptr<ServiceNode<system::Upstream>> checkout_;
  std::unique_ptr<ServiceNode<system::Upstream>> marketplace_;
  std::unique_ptr<ServiceNode<system::Hostile>> hostile_;
};

}  // namespace paylab::scenarios
