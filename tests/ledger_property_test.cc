// Property tests for the wallet ledger (acceptance items a and c).
//
// RapidCheck generates a small population and a sequence of commands:
// deposits, transfers, prepares, commits, rollbacks of earlier holds, time
// passing (with the hold and balance-item expiry jobs run after it), and
// replays of earlier requests. Idempotency keys are drawn from a small set,
// so the same key is reused both with the same parameters (a retry) and
// with different ones (a misuse).
//
// (a) Whatever the sequence, every movement balances, the journal sums to
//     zero, no forbidden balance goes negative, and every balance equals the
//     replay of the journal and the sum of its balance items (the
//     WalletChecker, fed every movement, then CheckFinal on the database).
// (c) A request replayed with the same key and parameters gets the same
//     answer and has exactly one effect; with other parameters it is
//     refused and has none.
//
// CI fixes RC_PARAMS (seed) through CTest; a failure prints the shrunk
// command list and the RC_PARAMS="reproduce=..." string that replays it.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "sim/simulator.h"
#include "sim/storage.h"
#include "system/wallet/ledger.h"
#include "checks/wallet_checker.h"

namespace paylab::system {

struct Cmd {
  enum Kind { kDeposit, kTransfer, kPrepare, kCommit, kRollback, kAdvance, kReplay };
  int kind = 0;
  int a = 0;  // user, or the index of an earlier hold or request
  int b = 0;  // user, or account type
  int64_t amount = 0;
  int key = 0;
  int ttl_s = 0;
};

std::ostream& operator<<(std::ostream& os, const Cmd& c) {
  static const char* names[] = {"Deposit",  "Transfer", "Prepare", "Commit",
                                "Rollback", "Advance",  "Replay"};
  return os << names[c.kind] << "{a=" << c.a << " b=" << c.b << " amount=" << c.amount << " key=k"
            << c.key << " ttl_s=" << c.ttl_s << "}";
}

namespace {

rc::Gen<Cmd> GenCmd() {
  return rc::gen::build<Cmd>(rc::gen::set(&Cmd::kind, rc::gen::inRange(0, 7)),
                             rc::gen::set(&Cmd::a, rc::gen::inRange(0, 8)),
                             rc::gen::set(&Cmd::b, rc::gen::inRange(0, 8)),
                             rc::gen::set(&Cmd::amount, rc::gen::inRange<int64_t>(-5, 3000)),
                             rc::gen::set(&Cmd::key, rc::gen::inRange(0, 24)),
                             rc::gen::set(&Cmd::ttl_s, rc::gen::inRange(1, 120)));
}

std::vector<AccountType> Types() {
  return {
      AccountType{.name = "CASHBACK", .debit_priority = 0, .expires_after = 300 * sim::kSecond},
      AccountType{.name = "PREPAID", .debit_priority = 1, .balance_cap = 5000},
      AccountType{.name = "MONEY", .debit_priority = 2, .auto_create = false},
      AccountType{.name = "CREDIT", .debit_priority = 3, .allow_negative = true},
  };
}

// A request with a key, as sent, so that it can be replayed.
struct Sent {
  int kind;
  std::string key;
  int64_t a, b, amount;
  sim::Duration ttl;
  WalletReply first;
};

struct Harness {
  explicit Harness(int64_t users)
      : sim(1),
        types(Types()),
        checker(sim, types, nullptr),
        ledger(db, types, LedgerOptions{}, &checker) {
    const InitialBalance opening[] = {{1, 500}, {3, 2000}, {4, 100}};
    ledger.Populate(users, opening, 0);
  }

  WalletReply Send(const Sent& s) {
    switch (s.kind) {
      case Cmd::kDeposit:
        return ledger.Deposit(s.key, s.a, static_cast<TypeId>(s.b), s.amount, now);
      case Cmd::kTransfer:
        return ledger.Transfer(s.key, s.a, s.b, s.amount, now);
      default:
        return ledger.Prepare(s.key, s.a, s.b, s.amount, s.ttl, now);
    }
  }

  sim::Simulator sim;
  sim::Database db;
  AccountTypes types;
  WalletChecker checker;
  Ledger ledger;
  sim::Time now = 0;
};

void RunCommands(Harness& h, int64_t users, const std::vector<Cmd>& cmds) {
  std::vector<Sent> sent;
  std::map<std::string, size_t> first_by_key;
  std::vector<uint64_t> holds;
  for (const Cmd& c : cmds) {
    const UserId ua = c.a % users + 1;
    const UserId ub = c.b % users + 1;
    switch (c.kind) {
      case Cmd::kDeposit:
      case Cmd::kTransfer:
      case Cmd::kPrepare: {
        Sent s{c.kind,
               "k" + std::to_string(c.key),
               ua,
               c.kind == Cmd::kDeposit ? c.b % 5 + 1 : ub,  // type 5 does not exist
               c.amount,
               c.ttl_s * sim::kSecond,
               {}};
        s.first = h.Send(s);
        auto it = first_by_key.find(s.key);
        if (it != first_by_key.end()) {
          const Sent& orig = sent[it->second];
          const bool same = orig.kind == s.kind && orig.a == s.a && orig.b == s.b &&
                            orig.amount == s.amount &&
                            (s.kind != Cmd::kPrepare || orig.ttl == s.ttl);
          if (orig.first.status != WalletStatus::kInvalidArgument &&
              s.first.status != WalletStatus::kInvalidArgument) {
            if (same) {
              RC_ASSERT(s.first == orig.first);
            } else {
              RC_ASSERT(s.first.status == WalletStatus::kIdempotencyMismatch);
            }
          }
        } else if (s.first.status != WalletStatus::kInvalidArgument) {
          first_by_key.emplace(s.key, sent.size());
        }
        if (c.kind == Cmd::kPrepare && s.first.status == WalletStatus::kOk) {
          holds.push_back(s.first.id);
        }
        sent.push_back(s);
        break;
      }
      case Cmd::kCommit:
      case Cmd::kRollback: {
        if (holds.empty()) {
          break;
        }
        const uint64_t hold = holds[static_cast<size_t>(c.a) % holds.size()];
        const WalletReply r =
            c.kind == Cmd::kCommit ? h.ledger.Commit(hold, h.now) : h.ledger.Rollback(hold, h.now);
        RC_ASSERT(r.status != WalletStatus::kNoSuchHold);
        break;
      }
      case Cmd::kAdvance:
        h.now += c.ttl_s * sim::kSecond;
        h.ledger.ExpireHolds(h.now, 1000);
        h.ledger.ExpireBalanceItems(h.now, 1000);
        break;
      case Cmd::kReplay: {
        if (sent.empty()) {
          break;
        }
        const Sent& orig = sent[static_cast<size_t>(c.a) % sent.size()];
        auto it = first_by_key.find(orig.key);
        const WalletReply r = h.Send(orig);
        if (it != first_by_key.end() && &sent[it->second] == &orig) {
          RC_ASSERT(r == orig.first);  // (c) the same answer
        }
        break;
      }
    }
  }
  // (c) exactly one effect per key whose first answer was Ok.
  int64_t ok_keys = 0;
  for (const auto& [key, index] : first_by_key) {
    ok_keys += sent[index].first.status == WalletStatus::kOk;
  }
  const int64_t effects = h.db.QueryInt(
      "SELECT COUNT(*) FROM movements WHERE idem_key IS NOT NULL AND kind IN (1, 2, 3)");
  RC_ASSERT(effects == ok_keys);
}

}  // namespace

RC_GTEST_PROP(LedgerProperty, JournalsBalanceAndBalancesEqualTheReplay, ()) {
  const int64_t users = *rc::gen::inRange<int64_t>(2, 6);
  const auto cmds = *rc::gen::container<std::vector<Cmd>>(GenCmd());
  Harness h(users);
  RunCommands(h, users, cmds);
  // Let every hold expire, then check the database against what was seen.
  h.now += 3600 * sim::kSecond;
  h.ledger.ExpireHolds(h.now, 100000);
  h.ledger.ExpireBalanceItems(h.now, 100000);
  h.checker.CheckFinal(h.db);
  const auto& v = h.checker.first_violation();
  if (v) {
    RC_FAIL(v->check + ": " + v->detail);
  }
  RC_ASSERT(h.db.QueryInt("SELECT COALESCE(SUM(delta), 0) FROM journal") == 0);
}

RC_GTEST_PROP(LedgerProperty, ReplayedRequestsHaveExactlyOneEffect, ()) {
  const int64_t users = *rc::gen::inRange<int64_t>(2, 4);
  // Bias towards replays and keyed requests.
  const auto cmds = *rc::gen::container<std::vector<Cmd>>(rc::gen::map(GenCmd(), [](Cmd c) {
    if (c.kind == Cmd::kAdvance || c.kind == Cmd::kRollback) {
      c.kind = Cmd::kReplay;
    }
    return c;
  }));
  Harness h(users);
  RunCommands(h, users, cmds);
  RC_ASSERT(!h.checker.first_violation().has_value());
}

}  // namespace paylab::system
