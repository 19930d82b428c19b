#include "harness/worlds/make_world.h"

#include "harness/worlds/messaging_world.h"
#include "harness/worlds/migration_world.h"
#include "harness/worlds/payments_world.h"
#include "harness/worlds/wallet_world.h"

namespace paylab::scenarios {

std::unique_ptr<World> MakeWorld(const Scenario& s, const RunOptions& o) {
  std::unique_ptr<World> w;
  if (s.migration.enabled) {
    w = std::make_unique<MigrationWorld>(s, o);
  } else if (s.payments.enabled) {
    w = std::make_unique<PaymentsWorld>(s, o);
  } else if (s.messaging.enabled) {
    w = std::make_unique<MessagingWorld>(s, o);
  } else {
    w = std::make_unique<WalletWorld>(s, o);
  }
  w->Configure(s, o);
  w->AddNodes(o);
  w->ArmFaults(s, o);
  return w;
}

}  // namespace paylab::scenarios
