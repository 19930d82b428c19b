// An IdGenerator whose lease lives in a database's key-value meta table, so a
// restarted service never hands out an ID twice (see ids.h). The wallet's
// ledger, the point ledger and the payment service each keep theirs this way.
#pragma once

#include <memory>
#include <string_view>

#include "sim/storage.h"
#include "system/common/ids.h"

namespace paylab::system {

inline constexpr std::string_view kIdLeaseKey = "id_reserved_until_ms";

// `get` is "SELECT value FROM <meta> WHERE key = ?" and `put` an upsert of
// (key, value) into the same table. REQUIRES: both statements outlive the
// generator; callers run Next() inside the transaction that uses the ID,
// so a new lease commits with it.
inline std::unique_ptr<IdGenerator> OpenLeasedIdGenerator(IdSystem system, uint32_t worker,
                                                          sim::Statement& get,
                                                          sim::Statement& put) {
  int64_t reserved = 0;
  get.Bind(1, kIdLeaseKey);
  if (get.Step()) {
    reserved = get.Int(0);
  }
  get.Reset();
  return std::make_unique<IdGenerator>(system, worker, reserved, [&put](int64_t until) {
    put.Bind(1, kIdLeaseKey).Bind(2, until).Exec();
  });
}

}  // namespace paylab::system
