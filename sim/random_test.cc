// Tests of the deterministic random streams: same seed and name give the
// same numbers, different names give independent streams, and the
// distributions stay within their bounds.
#include "sim/random.h"

#include <gtest/gtest.h>

#include <set>

namespace paylab::sim {
namespace {

TEST(RngTest, SameSeedAndNameGiveTheSameSequence) {
  Rng a(42, "net"), b(42, "net");
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(a.NextU64(), b.NextU64());
  }
}

TEST(RngTest, DifferentNamesOrSeedsDiffer) {
  Rng a(42, "net"), b(42, "client"), c(43, "net");
  int same_ab = 0, same_ac = 0;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.NextU64();
    same_ab += x == b.NextU64();
    same_ac += x == c.NextU64();
  }
  EXPECT_EQ(same_ab, 0);
  EXPECT_EQ(same_ac, 0);
}

TEST(RngTest, UniformIntCoversTheRangeInclusively) {
  Rng r(1, "u");
  std::set<int64_t> seen;
  for (int i = 0; i < 10000; ++i) {
    const int64_t v = r.UniformInt(-3, 3);
    ASSERT_GE(v, -3);
    ASSERT_LE(v, 3);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 7u);
  EXPECT_EQ(r.UniformInt(5, 5), 5);
}

TEST(RngTest, BernoulliExtremesAndMean) {
  Rng r(2, "b");
  int hits = 0;
  for (int i = 0; i < 100000; ++i) {
    ASSERT_FALSE(r.Bernoulli(0));
    ASSERT_TRUE(r.Bernoulli(1));
    hits += r.Bernoulli(0.25);
  }
  EXPECT_NEAR(hits / 100000.0, 0.25, 0.01);
}

TEST(RngTest, ExponentialAndLogNormalAreSane) {
  Rng r(3, "e");
  double sum = 0;
  int below_median = 0;
  for (int i = 0; i < 100000; ++i) {
    const double e = r.Exponential(2.0);
    ASSERT_GE(e, 0);
    sum += e;
    below_median += r.LogNormal(10.0, 0.7) < 10.0;
  }
  EXPECT_NEAR(sum / 100000.0, 2.0, 0.05);
  EXPECT_NEAR(below_median / 100000.0, 0.5, 0.01);
}

}  // namespace
}  // namespace paylab::sim
