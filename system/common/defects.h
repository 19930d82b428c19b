// The defect catalogue: realistic bugs, planted on purpose, that the checks
// must catch.
//
// A testbed is only as good as the bugs it finds. Each entry here is a bug
// drawn from the write-ups the system models (DESIGN.md, shared/seeds/): a
// retry without its idempotency key, a publish outside the outbox, an ID
// generator without its system bit, and so on. A defect is off unless a run
// switches it on (`paylab run --defect NAME`, `paylab sweep --defect NAME`);
// the chaos suite (tests/chaos_test.cc) switches each one on in turn and
// shows that a sweep of a shipped chaos scenario catches it, with the check
// named here failing.
//
// Each component reads only the defects that live in it (one flag in its
// config, as fault injectors override only what they disturb), so a defect
// costs nothing when it is off.
//
// Determinism: a table of constants; DefectSet is a plain bit set.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace paylab::system {

enum class Defect : uint8_t {
  kCreditWithoutDebit,
  kConsumerWithoutDedup,
  kPublishOutsideOutbox,
  kRetryWithoutIdempotencyKey,
  kCommitIgnoresHoldExpiry,
  kIdWithoutSystemBit,
  kNoClockRollbackGuard,
  kCancelWithoutTombstone,
  kRecoveryBatchSkipsOldWip,
  kUpstreamNeverVoidsOrphans,
  kNoAttemptTracking,
  kNoDrainBeforeSwitch,
  kDualWriteWithoutReconciliation,
  kStaleMinNoRecheck,
  kMigrationDropsExpiry,
  kDebitIgnoresPriority,
  kItemsConsumedLatestFirst,
  kItemSpendableAtExpiry,
  kFeeRoundedUp,
  kRollbackOfCommittedAnswersOk,
  kDeadLetterOneReceiveEarly,
  kPartnerKeyIgnoresParams,
  kCount,
};

// What a defect needs of a scenario to be reachable at all.
enum class DefectNeeds : uint8_t {
  kWallet,     // every scenario has the wallet
  kMessaging,  // /messaging/enabled
  kPayments,   // /payments/enabled
  kMigration,  // /migration/enabled
};

struct DefectInfo {
  Defect defect;
  std::string_view name;     // as spelled after --defect
  std::string_view summary;  // one line: what the bug does
  DefectNeeds needs;
  std::string_view caught_by;  // the check the chaos suite expects to fail
  std::string_view scenario;   // the shipped chaos scenario that catches it
};

// Every defect, in enum order.
std::span<const DefectInfo> DefectCatalogue();
const DefectInfo& InfoOf(Defect d);
std::optional<Defect> FindDefect(std::string_view name);
std::string_view DefectNeedsName(DefectNeeds n);

class DefectSet {
 public:
  DefectSet() = default;
  static DefectSet Of(Defect d) {
    DefectSet s;
    s.Add(d);
    return s;
  }
  void Add(Defect d) { bits_ |= Bit(d); }
  bool Has(Defect d) const { return (bits_ & Bit(d)) != 0; }
  bool empty() const { return bits_ == 0; }
  bool operator==(const DefectSet&) const = default;

 private:
  static uint32_t Bit(Defect d) { return uint32_t{1} << static_cast<uint32_t>(d); }
  uint32_t bits_ = 0;
};
static_assert(static_cast<int>(Defect::kCount) <= 32, "DefectSet holds 32 defects");

}  // namespace paylab::system
