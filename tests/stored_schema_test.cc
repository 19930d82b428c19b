// The stored schemas (system/*/schema.h) name every table the platform
// keeps. Small runs of the payments, messaging and migration scenarios write
// every node's database; each table in them must be one a schema.h names,
// and each table a schema.h names must be in one of them, so a table added,
// renamed or dropped without its schema fails here.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>

#include "harness/runner.h"
#include "harness/schema/scenario.h"
#include "system/common/schema.h"
#include "system/messaging/schema.h"
#include "system/migration/schema.h"
#include "system/payments/schema.h"
#include "system/points/schema.h"
#include "system/wallet/schema.h"

namespace paylab {
namespace {

namespace fs = std::filesystem;
using namespace paylab::system;

const fs::path kSourceDir = PAYLAB_SOURCE_DIR;

// Every table a schema.h names.
std::set<std::string> NamedTables() {
  const std::string_view named[] = {
      common_tables::kAnswers,
      common_tables::kConfig,
      broker_tables::kTopics,
      broker_tables::kMessages,
      broker_tables::kProducerSeqs,
      broker_tables::kGroupOffsets,
      broker_tables::kQueueMessages,
      broker_tables::kQueues,
      outbox_tables::kOutbox,
      consumer_tables::kProcessedEvents,
      wallet_tables::kMeta,
      wallet_tables::kAccountTypes,
      wallet_tables::kUsers,
      wallet_tables::kAccounts,
      wallet_tables::kBalanceItems,
      wallet_tables::kBalanceItemLog,
      wallet_tables::kMovements,
      wallet_tables::kJournal,
      wallet_tables::kHolds,
      wallet_tables::kMigratedUsers,
      wallet_tables::kMigratedTerms,
      wallet_tables::kMigrationBatches,
      wallet_tables::kMigrationForwards,
      wallet_tables::kMigrationForwardTerms,
      wallet_tables::kIdempotency,
      mirror_tables::kMirrorBalances,
      mirror_tables::kAuditCounts,
      point_tables::kMeta,
      point_tables::kCounters,
      point_tables::kUsers,
      point_tables::kAccounts,
      point_tables::kLots,
      point_tables::kLotLog,
      point_tables::kMovements,
      point_tables::kJournal,
      point_tables::kHolds,
      point_tables::kRefunds,
      point_tables::kTccKeys,
      payment_tables::kMeta,
      payment_tables::kPayments,
      payment_tables::kPayAccounts,
      payment_tables::kPayJournal,
      payment_tables::kPayClearingItems,
      partner_tables::kAccounts,
      partner_tables::kMovements,
      partner_tables::kJournal,
      partner_tables::kHolds,
      upstream_tables::kOrders,
      controller_tables::kStatus,
      controller_tables::kStatusLog,
      controller_tables::kBanners,
      controller_tables::kFlags,
      migrator_tables::kProgress,
      point_home_tables::kPays,
      point_home_tables::kAttempts,
      point_home_tables::kActivated,
      point_home_tables::kActivatedTerms,
      point_home_tables::kCopies,
      point_home_tables::kHomeCounters,
  };
  return std::set<std::string>(std::begin(named), std::end(named));
}

std::string ReadText(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The scenario file with `set` (JSON pointer -> value) applied.
scenarios::Scenario Reduced(const std::string& file, const nlohmann::json& set) {
  auto doc = nlohmann::json::parse(ReadText(kSourceDir / file));
  for (const auto& [pointer, value] : set.items()) {
    doc[nlohmann::json::json_pointer(pointer)] = value;
  }
  auto parsed = scenarios::ParseScenario(doc.dump());
  if (const auto* error = std::get_if<scenarios::ScenarioError>(&parsed)) {
    ADD_FAILURE() << file << ": " << error->pointer << ": " << error->reason;
    return {};
  }
  return std::get<scenarios::Scenario>(std::move(parsed));
}

// The tables of one database file (SQLite's own left out), as "name".
std::set<std::string> TablesIn(const fs::path& file) {
  std::set<std::string> tables;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << file;
    sqlite3_close(db);
    return tables;
  }
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db,
                     "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                     "'sqlite_%' ORDER BY name",
                     -1, &q, nullptr);
  while (sqlite3_step(q) == SQLITE_ROW) {
    tables.emplace(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)));
  }
  sqlite3_finalize(q);
  sqlite3_close(db);
  return tables;
}

TEST(StoredSchema, EveryStoredTableIsNamedByASchemaAndEveryNamedTableIsStored) {
  struct Run {
    const char* file;
    nlohmann::json set;
  };
  const Run runs[] = {
      {"scenarios/payments.json",
       {{"/payments/charges", 120},
        {"/payments/escrows", 100},
        {"/population/users", 60},
        {"/workload/operations", 60}}},
      {"scenarios/messaging.json", {{"/workload/operations", 300}}},
      {"scenarios/migration_online.json",
       {{"/population/users", 300}, {"/workload/operations", 600}}},
  };
  const std::set<std::string> named = NamedTables();
  std::set<std::string> stored;
  const fs::path root = fs::temp_directory_path() / ("paylab_schema_" + std::to_string(::getpid()));
  for (const Run& run : runs) {
    const fs::path dir = root / fs::path(run.file).stem();
    fs::remove_all(dir);
    fs::create_directories(dir);
    scenarios::RunOptions options;
    options.out_dir = dir.string();
    scenarios::RunScenario(Reduced(run.file, run.set), options);
    int files = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.path().extension() != ".db") {
        continue;
      }
      ++files;
      for (const std::string& table : TablesIn(entry.path())) {
        EXPECT_TRUE(named.contains(table))
            << entry.path().filename() << " of " << run.file << " keeps table " << table
            << ", which no schema.h names";
        stored.insert(table);
      }
    }
    EXPECT_GT(files, 0) << run.file << " wrote no database";
  }
  fs::remove_all(root);
  for (const std::string& table : named) {
    EXPECT_TRUE(stored.contains(table))
        << "a schema.h names table " << table << ", which no database of the runs keeps";
  }
}

}  // namespace
}  // namespace paylab
