// Tests of the stored configuration: entries keep their types (an integer,
// a real, a text), and a second boot rewrites the same keys in place.
#include "system/common/config_table.h"

#include <gtest/gtest.h>

namespace paylab::system {
namespace {

TEST(ConfigTable, StoresEachEntryWithItsTypeAndRewritesOnReboot) {
  sim::Database db;
  StoreConfig(db, {{"fee_bp", int64_t{250}}, {"void_ratio", 0.1}, {"name", std::string("a")}});
  StoreConfig(db, {{"fee_bp", int64_t{300}}});
  EXPECT_EQ(db.QueryInt("SELECT COUNT(*) FROM config"), 3);
  EXPECT_EQ(db.QueryInt("SELECT value FROM config WHERE key = 'fee_bp'"), 300);
  sim::Statement q(db, "SELECT typeof(value), value FROM config ORDER BY key");
  ASSERT_TRUE(q.Step());  // fee_bp
  EXPECT_EQ(q.Text(0), "integer");
  ASSERT_TRUE(q.Step());  // name
  EXPECT_EQ(q.Text(0), "text");
  EXPECT_EQ(q.Text(1), "a");
  ASSERT_TRUE(q.Step());  // void_ratio
  EXPECT_EQ(q.Text(0), "real");
  EXPECT_DOUBLE_EQ(q.Double(1), 0.1);
}

}  // namespace
}  // namespace paylab::system
