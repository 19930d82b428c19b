// Implementation of the stored configuration (see config_table.h).
#include "system/common/config_table.h"

namespace paylab::system {

void StoreConfig(sim::Database& db, std::initializer_list<ConfigEntry> entries) {
  db.ExecScript("CREATE TABLE IF NOT EXISTS config(key TEXT PRIMARY KEY, value) WITHOUT ROWID;");
  sim::Transaction txn(db);
  sim::Statement put(db, "INSERT OR REPLACE INTO config(key, value) VALUES(?, ?)");
  for (const ConfigEntry& e : entries) {
    put.Bind(1, e.key);
    if (const auto* i = std::get_if<int64_t>(&e.value)) {
      put.Bind(2, *i);
    } else if (const auto* d = std::get_if<double>(&e.value)) {
      put.BindDouble(2, *d);
    } else {
      put.Bind(2, std::get<std::string>(e.value));
    }
    put.Exec();
  }
  txn.Commit();
}

}  // namespace paylab::system
