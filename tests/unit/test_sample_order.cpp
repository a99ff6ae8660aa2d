// The sample order: a seeded bijection per epoch, a pure function of
// (seed, epoch, index).
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "data/sample_order.hpp"

TEST(LoaderOrder, IsABijectionOnEachEpoch) {
  for (uint64_t n : {1, 2, 3, 5, 7, 64, 100, 1000, 4097}) {
    for (uint64_t epoch : {0, 1, 9}) {
      std::vector<bool> seen(n, false);
      for (uint64_t i = 0; i < n; ++i) {
        uint64_t p = dt::sample_position(i, n, 1234, epoch);
        ASSERT_LT(p, n);
        ASSERT_FALSE(seen[p]) << "n=" << n << " epoch=" << epoch << " position " << p << " drawn twice";
        seen[p] = true;
      }
    }
  }
}

TEST(LoaderOrder, IsAPureFunctionOfSeedEpochAndIndex) {
  const uint64_t n = 1000;
  auto order = [&](uint64_t seed, uint64_t epoch) {
    std::vector<uint64_t> v(n);
    for (uint64_t i = 0; i < n; ++i) v[i] = dt::sample_position(i, n, seed, epoch);
    return v;
  };
  EXPECT_EQ(order(42, 0), order(42, 0));
  EXPECT_NE(order(42, 0), order(42, 1));
  EXPECT_NE(order(42, 0), order(43, 0));
  // Shuffled, not the identity: far fewer fixed points than positions.
  std::vector<uint64_t> v = order(42, 0);
  int fixed = 0;
  for (uint64_t i = 0; i < n; ++i) fixed += v[i] == i;
  EXPECT_LT(fixed, 20);
}

