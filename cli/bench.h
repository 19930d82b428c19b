// `paylab bench`: the figures the walking skeleton promises, measured on
// this machine and printed (never asserted in tests):
//  - kernel events per second (raw events through the event queue, and
//    coroutine sleeps through Boost.Asio);
//  - simulated transfers per second: the whole platform (client, network,
//    wallet, checkers) on a fault-free scenario;
//  - the same SQL work done directly: the ledger called in a loop on SQLite,
//    with no simulator;
//  - the ratio between the two;
//  - messages per second through the broker (publish, then fetch and commit
//    in batches) over the simulated network, against the same BrokerLog
//    calls made directly, and their ratio;
//  - charges per second end to end (create and capture through the payment
//    service, TCC over the point service and the wallet) against the same
//    ledger calls and payment-row SQL made directly, and their ratio.
#pragma once

#include <cstdint>

namespace paylab::cli {

struct BenchArgs {
  int64_t transfers = 20000;
  int64_t events = 2'000'000;
  int64_t messages = 20000;
  int64_t charges = 5000;
};

int RunBench(const BenchArgs& args);

}  // namespace paylab::cli
