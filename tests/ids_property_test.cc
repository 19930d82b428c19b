// Property tests for ID exclusivity across the wallet and the point service (acceptance item b).
//
// RapidCheck generates a wallet generator and a point generator (worker numbers may coincide), a
// lease, a starting time, and a sequence of commands: issue IDs from either system (sometimes
// thousands in one millisecond, to exhaust the sequence), step the shared wall clock forward or
// back by k ms (up to a day), and restart either generator from its last persisted reservation.
// The system must survive every such sequence with no ID ever issued twice, wallet IDs even and
// point IDs odd, and each incarnation's IDs strictly increasing. A failing case shrinks to a
// short command list, and RapidCheck prints the seed that replays it (RC_PARAMS="reproduce=...").
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "system/common/ids.h"

namespace paylab::system {
namespace {

constexpr int64_t kHourMs = 60 * 60 * 1000;
constexpr int64_t kDayMs = 24 * kHourMs;

enum class Kind {
  kNextWallet,
  kNextPoint,
  kStepForward,
  kStepBack,
  kRestartWallet,
  kRestartPoint,
};

struct Command {
  Kind kind = Kind::kNextWallet;
  int count = 1;        // IDs to issue, for kNextWallet and kNextPoint
  int64_t step_ms = 0;  // clock step, for kStepForward and kStepBack
};

void showValue(const Command& c, std::ostream& os) {
  switch (c.kind) {
    case Kind::kNextWallet:
      os << "NextWallet x" << c.count;
      break;
    case Kind::kNextPoint:
      os << "NextPoint x" << c.count;
      break;
    case Kind::kStepForward:
      os << "StepForward " << c.step_ms << "ms";
      break;
    case Kind::kStepBack:
      os << "StepBack " << c.step_ms << "ms";
      break;
    case Kind::kRestartWallet:
      os << "RestartWallet";
      break;
    case Kind::kRestartPoint:
      os << "RestartPoint";
      break;
  }
}

rc::Gen<Command> GenCommand() {
  return rc::gen::build<Command>(
      rc::gen::set(&Command::kind,
                   rc::gen::element(Kind::kNextWallet, Kind::kNextPoint, Kind::kStepForward,
                                    Kind::kStepBack, Kind::kRestartWallet, Kind::kRestartPoint)),
      // Mostly single IDs; now and then a burst longer than one millisecond's 4096 sequences.
      rc::gen::set(&Command::count, rc::gen::weightedOneOf<int>({
                                        {20, rc::gen::just(1)},
                                        {4, rc::gen::inRange(1, 50)},
                                        {1, rc::gen::inRange(1, 9'000)},
                                    })),
      // Steps of a few ms collide with the last timestamp used; hours model an NTP step.
      rc::gen::set(&Command::step_ms, rc::gen::weightedOneOf<int64_t>({
                                          {4, rc::gen::inRange<int64_t>(0, 5)},
                                          {2, rc::gen::inRange<int64_t>(0, 3'000)},
                                          {1, rc::gen::inRange<int64_t>(0, kDayMs)},
                                      })));
}

// Everything RapidCheck decides for one run besides the commands.
struct Setup {
  uint32_t wallet_worker;
  uint32_t point_worker;
  int64_t lease_ms;
  int64_t start_ms;
};

Setup GenSetup() {
  Setup s;
  s.wallet_worker = *rc::gen::inRange<uint32_t>(0, kIdWorkerCount);
  // Half the runs share one worker number, so only the system bit tells the IDs apart.
  s.point_worker = *rc::gen::weightedOneOf<uint32_t>({
      {1, rc::gen::just(s.wallet_worker)},
      {1, rc::gen::inRange<uint32_t>(0, kIdWorkerCount)},
  });
  s.lease_ms = *rc::gen::inRange<int64_t>(1, 20'000);
  s.start_ms = kIdEpochMs + *rc::gen::inRange<int64_t>(0, 365 * kDayMs);
  // Names the generated numbers above in a counterexample.
  RC_LOG() << "wallet_worker=" << s.wallet_worker << " point_worker=" << s.point_worker
           << " lease_ms=" << s.lease_ms << " start_ms=" << s.start_ms << std::endl;
  return s;
}

// One service's generator and the durable store that outlives its incarnations.
struct Service {
  Service(IdSystem system, uint32_t worker, int64_t lease_ms)
      : system(system), worker(worker), lease_ms(lease_ms) {}

  IdSystem system;
  uint32_t worker;
  int64_t lease_ms;
  int64_t durable_reserved_until_ms = 0;  // what a fresh worker's store holds
  std::unique_ptr<IdGenerator> generator;
  int incarnation = 0;

  // Starts a new incarnation; like a crash, the old one's in-memory state is lost.
  void Start() {
    generator.reset();
    generator = std::make_unique<IdGenerator>(
        system, worker, durable_reserved_until_ms,
        [this](int64_t reserved_until_ms) { durable_reserved_until_ms = reserved_until_ms; },
        lease_ms);
    ++incarnation;
  }
};

struct Issued {
  IdSystem system;
  int incarnation;
  size_t command_index;
  uint64_t id;
};

// Runs the commands against two services sharing one wall clock; returns every ID in issue order.
std::vector<Issued> Run(const Setup& setup, const std::vector<Command>& commands) {
  Service wallet(IdSystem::kWallet, setup.wallet_worker, setup.lease_ms);
  Service point(IdSystem::kPoint, setup.point_worker, setup.lease_ms);
  wallet.Start();
  point.Start();
  int64_t now_ms = setup.start_ms;
  std::vector<Issued> issued;
  for (size_t i = 0; i < commands.size(); ++i) {
    const Command& c = commands[i];
    switch (c.kind) {
      case Kind::kNextWallet:
      case Kind::kNextPoint: {
        Service& s = c.kind == Kind::kNextWallet ? wallet : point;
        for (int n = 0; n < c.count; ++n) {
          issued.push_back({s.system, s.incarnation, i, s.generator->Next(now_ms)});
        }
        break;
      }
      case Kind::kStepForward:
        now_ms += c.step_ms;
        break;
      case Kind::kStepBack:
        // A reading before the epoch is a programmer error, not a fault to inject.
        now_ms = std::max(kIdEpochMs, now_ms - c.step_ms);
        break;
      case Kind::kRestartWallet:
        wallet.Start();
        break;
      case Kind::kRestartPoint:
        point.Start();
        break;
    }
  }
  return issued;
}

RC_GTEST_PROP(IdsPropertyTest, WalletAndPointIdsNeverCollide, ()) {
  const Setup setup = GenSetup();
  const auto commands = *rc::gen::container<std::vector<Command>>(GenCommand());
  std::set<uint64_t> seen;
  for (const Issued& x : Run(setup, commands)) {
    const DecodedId d = DecodeId(x.id);
    RC_ASSERT(d.system == x.system);
    RC_ASSERT(x.id % 2 == (x.system == IdSystem::kPoint ? 1u : 0u));
    RC_ASSERT(d.worker ==
              (x.system == IdSystem::kWallet ? setup.wallet_worker : setup.point_worker));
    if (!seen.insert(x.id).second) {
      RC_FAIL("duplicate id " + std::to_string(x.id) + " (timestamp_ms " +
              std::to_string(d.timestamp_ms) + ", worker " + std::to_string(d.worker) +
              ", sequence " + std::to_string(d.sequence) + ", system " +
              std::to_string(static_cast<int>(d.system)) + ") at command " +
              std::to_string(x.command_index));
    }
  }
}

RC_GTEST_PROP(IdsPropertyTest, IdsStrictlyIncreaseWithinOneIncarnation, ()) {
  const Setup setup = GenSetup();
  const auto commands = *rc::gen::container<std::vector<Command>>(GenCommand());
  std::optional<Issued> last_wallet;
  std::optional<Issued> last_point;
  for (const Issued& x : Run(setup, commands)) {
    std::optional<Issued>& last = x.system == IdSystem::kWallet ? last_wallet : last_point;
    if (last.has_value() && last->incarnation == x.incarnation && x.id <= last->id) {
      RC_FAIL("id " + std::to_string(x.id) + " at command " + std::to_string(x.command_index) +
              " does not exceed the previous id " + std::to_string(last->id) +
              " of the same incarnation");
    }
    last = x;
  }
}

}  // namespace
}  // namespace paylab::system
