#include "harness/worlds/worlds.h"


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
