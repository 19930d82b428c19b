// Tests of the movement event encoding: round trips, and every malformed
// payload (a poison message) refused with a reason instead of a crash.
#include "system/wallet/movement_event.h"

#include <gtest/gtest.h>

namespace paylab::system {
namespace {

TEST(MovementEventTest, RoundTrips) {
  const JournalEntry entries[] = {{0, 100, -500}, {7, 1, 200}, {7, 3, 300}};
  const std::string s = EncodeMovementEvent(42, MovementKind::kTransfer, entries);
  EXPECT_EQ(s, "42|2|0:100:-500,7:1:200,7:3:300");
  std::string error;
  const auto e = DecodeMovementEvent(s, &error);
  ASSERT_TRUE(e.has_value()) << error;
  EXPECT_EQ(e->movement_id, 42u);
  EXPECT_EQ(e->kind, MovementKind::kTransfer);
  ASSERT_EQ(e->entries.size(), 3u);
  EXPECT_EQ(e->entries[2].delta, 300);
}

TEST(MovementEventTest, MalformedPayloadsAreRefusedWithAReason) {
  for (const char* bad : {"", "x", "42", "42|", "42|2", "42|2|", "42|99|1:1:1", "42|2|1:1",
                          "42|2|1:1:1,", "42|2|1:1:x", "-1|2|1:1:1", "42|2|1:1:1;"}) {
    std::string error;
    EXPECT_FALSE(DecodeMovementEvent(bad, &error).has_value()) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

}  // namespace
}  // namespace paylab::system
