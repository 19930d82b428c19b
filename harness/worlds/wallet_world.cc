#include "harness/worlds/worlds.h"

#include <fmt/format.h>

#include "sim/check.h"

namespace paylab::scenarios {

namespace {

std::vector<system::AccountType> ToTypes(const Scenario& s) {
  std::vector<system::AccountType> out;
  for (const AccountTypeSpec& t : s.account_types) {
    out.push_back(system::AccountType{
        .name = t.name,
        .debit_priority = t.debit_priority,
        .allow_negative = t.allow_negative,
        .expires_after = sim::FromSeconds(t.expires_after_days * 86400.0),
        .auto_create = t.auto_create,
        .balance_cap = t.balance_cap,
    });
  }
  return out;
}

system::WorkloadConfig WorkloadConfigOf(const Scenario& s, const RunOptions& o,
                                        const system::AccountTypes& types) {
  const Workload& w = s.workload;
  system::WorkloadConfig c;
  c.operations = w.operations;
  c.rate_per_s = w.rate_per_s;
  c.mix = {w.mix.deposit, w.mix.transfer, w.mix.two_phase, w.mix.misuse};
  c.amount_min = w.amount_min;
  c.amount_max = w.amount_max;
  c.deposit_type = *types.Find(w.deposit_type);
  c.rollback_ratio = w.rollback_ratio;
  c.abandon_ratio = w.abandon_ratio;
  c.hold_ttl = sim::FromSeconds(w.hold_ttl_s);
  c.timeout = sim::FromMillis(w.timeout_ms);
  c.retry_count_max = static_cast<int>(w.retry_count_max);
  c.retry_backoff = sim::FromMillis(w.retry_backoff_ms);
  c.users = s.population.users;
  c.defect_retry_without_key = o.defects.Has(system::Defect::kRetryWithoutIdempotencyKey);
  c.boundary_ratio = w.boundary_ratio;
  c.hold_ttl_max = sim::FromSeconds(s.wallet.hold_ttl_max_s);
  c.deposit_cap = types.Get(c.deposit_type).balance_cap;
  // The opening balance items are made at 0: they expire at their type's
  // expiry, an instant the client can aim at.
  for (const auto& [name, amount] : s.population.initial_balances) {
    const sim::Duration after = types.Get(*types.Find(name)).expires_after;
    if (amount > 0 && after > 0) {
      c.item_expiries.push_back(after);
    }
  }
  return c;
}

}  // namespace

void AppendStatuses(std::span<const system::CheckStatus> statuses,
                    std::vector<reports::CheckResult>& out) {
  for (const system::CheckStatus& c : statuses) {
    out.push_back(reports::CheckResult{c.name, c.evaluations, c.violations});
  }
}

WalletChecks::WalletChecks(sim::Simulator& sim, const Scenario& s,
                           std::function<void(const system::Violation&)> on_violation)
    : types(ToTypes(s)),
      checker(sim, types, on_violation,
              // The payment orchestrator and the migration's services must
              // resolve every hold they try: wallet_no_hold_left is listed
              // from the start, so a run that stops early shows it not
              // evaluated.
              system::WalletCheckerOptions{
                  .no_hold_left = s.payments.enabled || s.migration.enabled,
                  .expiry_grace = sim::FromSeconds(s.wallet.expiry_scan_interval_s)}),
      auditor(sim, models::WalletRulesOf(types, sim::FromSeconds(s.wallet.hold_ttl_max_s)),
              on_violation),
      observers({&checker, &auditor}) {}

void WalletChecks::CheckFinal(sim::Simulator& sim, sim::Database& wallet_db) {
  checker.CheckFinal(wallet_db);
  if (!sim.stopped()) {
    auditor.CheckFinal(wallet_db);
  }
}

void WalletChecks::AppendResults(std::vector<reports::CheckResult>& out) const {
  AppendStatuses(checker.statuses(), out);
  AppendStatuses(auditor.statuses(), out);
}

void WalletChecks::AppendModelFigures(reports::RunResult& r) const {
  const models::WalletModelStats& ws = auditor.model().stats();
  r.models = {
      {"wallet.requests", ws.requests},
      {"wallet.refusals", ws.refusals},
      {"wallet.multi_account_debits", ws.multi_account_debits},
      {"wallet.multi_item_debits", ws.multi_item_debits},
      {"wallet.items_expired", ws.items_expired},
      {"wallet.holds_expired", ws.holds_expired},
      {"wallet.on_time_boundary", ws.on_time_boundary},
      {"wallet.on_amount_boundary", ws.on_amount_boundary},
  };
}

system::WalletConfig WalletConfigOf(const Scenario& s, const RunOptions& o,
                                    const system::AccountTypes& types) {
  using system::Defect;
  system::WalletConfig c;
  c.types = &types;
  c.ledger.hold_ttl_max = sim::FromSeconds(s.wallet.hold_ttl_max_s);
  // Every request the wallet applies goes to its reference model too.
  c.ledger.audit = true;
  c.ledger.defect_credit_without_debit = o.defects.Has(Defect::kCreditWithoutDebit);
  c.ledger.defect_commit_ignores_expiry = o.defects.Has(Defect::kCommitIgnoresHoldExpiry);
  c.ledger.defect_cancel_without_tombstone = o.defects.Has(Defect::kCancelWithoutTombstone);
  c.ledger.defect_no_clock_rollback_guard = o.defects.Has(Defect::kNoClockRollbackGuard);
  c.ledger.defect_debit_ignores_priority = o.defects.Has(Defect::kDebitIgnoresPriority);
  c.ledger.defect_items_latest_first = o.defects.Has(Defect::kItemsConsumedLatestFirst);
  c.ledger.defect_item_spendable_at_expiry = o.defects.Has(Defect::kItemSpendableAtExpiry);
  c.users = s.population.users;
  for (const auto& [name, amount] : s.population.initial_balances) {
    c.initial_balances.push_back(system::InitialBalance{*types.Find(name), amount});
  }
  c.expiry_scan_interval = sim::FromSeconds(s.wallet.expiry_scan_interval_s);
  return c;
}

WalletWorld::WalletWorld(const Scenario& s, const RunOptions& o)
    : World(s, o), wallet_checks_(sim, s, StopOnViolation()) {}

WalletWorld::~WalletWorld() { ShutdownNodes(); }

void WalletWorld::Configure(const Scenario& s, const RunOptions& o) {
  wallet_config_ = WalletConfigOf(s, o, wallet_checks_.types);
  workload_ = WorkloadConfigOf(s, o, wallet_checks_.types);
}

void WalletWorld::AddNodes(const RunOptions& o) {
  const sim::NodeId wallet_id = NodeIdOf("wallet");
  client_ = std::make_unique<ServiceNode<system::Client>>(
      sim, net, "client", [this, wallet_id](sim::NodeContext& ctx) {
        return std::make_unique<system::Client>(ctx, workload_, wallet_id,
                                                &wallet_checks_.checker);
      });
  wallet_ = std::make_unique<ServiceNode<system::Wallet>>(
      sim, net, "wallet", [this](sim::NodeContext& ctx) {
        return std::make_unique<system::Wallet>(ctx, wallet_config_, &wallet_checks_.observers);
      });
  AddNode(client_->node());
  AddNode(wallet_->node());
}

void WalletWorld::StartNodes(const Scenario& s) {
  wallet_->node().Start();
  client_->node().Start();
}

std::string WalletWorld::ClientNotDone(const Scenario* s) {
  system::Client* c = client_->service();
  PAYLAB_CHECK(c != nullptr);  // the client never crashes
  if (c->done()) {
    return "";
  }
  return s == nullptr ? "client"
                      : fmt::format("{} of {} client operations finished", c->finished(),
                                    s->workload.operations);
}

std::string WalletWorld::NotQuietReason(const Scenario* s) { return ClientNotDone(s); }

void WalletWorld::CheckFinal(const Scenario& s) {
  wallet_checks_.CheckFinal(sim, wallet_->node().db());
}

std::vector<reports::CheckResult> WalletWorld::CheckResults() const {
  std::vector<reports::CheckResult> out;
  wallet_checks_.AppendResults(out);
  return out;
}

std::vector<const std::optional<system::Violation>*> WalletWorld::FirstViolations() const {
  return {&wallet_checks_.checker.first_violation(), &wallet_checks_.auditor.first_violation()};
}

void WalletWorld::CollectClientOperations(reports::RunResult& r) {
  system::Client* c = client_->service();
  PAYLAB_CHECK(c != nullptr);  // the client never crashes
  r.operations_issued = c->issued();
  r.operations_finished = c->finished();
  r.retries = c->retries();
  for (size_t k = 0; k < system::kOpKinds; ++k) {
    std::vector<std::pair<std::string, int64_t>> outcomes;
    for (size_t o = 0; o < system::kOutcomes; ++o) {
      outcomes.emplace_back(
          system::OutcomeName(static_cast<system::Outcome>(o)),
          c->count(static_cast<system::OpKind>(k), static_cast<system::Outcome>(o)));
    }
    r.operations.emplace_back(system::OpKindName(static_cast<system::OpKind>(k)),
                              std::move(outcomes));
  }
}

void WalletWorld::AppendClientModelFigures(reports::RunResult& r) {
  system::Client* c = client_->service();
  PAYLAB_CHECK(c != nullptr);
  r.models.emplace_back("workload.aimed_at_time", c->aimed_at_time());
  r.models.emplace_back("workload.aimed_at_amount", c->aimed_at_amount());
  for (size_t k = 0; k < system::kMisuseKinds; ++k) {
    const auto kind = static_cast<system::MisuseKind>(k);
    r.models.emplace_back(fmt::format("workload.misuse.{}", system::MisuseKindName(kind)),
                          c->misuse_sent(kind));
  }
}

void WalletWorld::CollectFigures(const Scenario& s, reports::RunResult& r) {
  CollectClientOperations(r);
  wallet_checks_.AppendModelFigures(r);
  AppendClientModelFigures(r);
}

}  // namespace paylab::scenarios
