// The 1F1B schedule on its own: order, completeness, slot reuse, and a
// simulation of all stages with blocking receives and buffered sends that
// finds any deadlock.
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <set>

#include "trainer/pipeline_schedule.hpp"

namespace dt {
namespace {

TEST(OneFOneB, OrderForFourStagesFourMicroBatches) {
  // Written out by hand from the 1F1B definition (warm-up P−s−1 forwards).
  EXPECT_EQ(to_string(one_f_one_b(0, 4, 4)), "F0 F1 F2 F3 B0 B1 B2 B3");
  EXPECT_EQ(to_string(one_f_one_b(1, 4, 4)), "F0 F1 F2 B0 F3 B1 B2 B3");
  EXPECT_EQ(to_string(one_f_one_b(2, 4, 4)), "F0 F1 B0 F2 B1 F3 B2 B3");
  EXPECT_EQ(to_string(one_f_one_b(3, 4, 4)), "F0 B0 F1 B1 F2 B2 F3 B3");
  EXPECT_EQ(to_string(one_f_one_b(0, 2, 1)), "F0 B0");
}

TEST(OneFOneB, EveryMicroBatchForwardThenBackwardExactlyOnce) {
  for (int P : {1, 2, 3, 4})
    for (int M = 1; M <= 8; ++M)
      for (int s = 0; s < P; ++s) {
        std::map<int, int> f, b;
        int pos = 0;
        std::map<int, std::set<int>> live_slots;  // slot -> micro-batches holding it
        std::map<int, int> slot_owner;
        for (const PipeStep& st : one_f_one_b(s, P, M)) {
          if (st.kind == PipeStep::Forward) {
            f[st.micro] = ++pos;
            // The slot must be free: its previous micro-batch has finished its backward.
            EXPECT_EQ(slot_owner.count(st.slot), 0u) << "P" << P << " M" << M << " s" << s << " slot reused early";
            slot_owner[st.slot] = st.micro;
            EXPECT_LT(st.slot, pipeline_slots(s, P, M));
          } else {
            b[st.micro] = ++pos;
            EXPECT_EQ(slot_owner[st.slot], st.micro);
            slot_owner.erase(st.slot);
          }
        }
        ASSERT_EQ(int(f.size()), M);
        ASSERT_EQ(int(b.size()), M);
        for (int m = 0; m < M; ++m) EXPECT_LT(f[m], b[m]);
      }
}

// Runs every stage's schedule with blocking receives and buffered sends, one
// stage at a time while any can progress. Deadlock = no stage can move.
bool simulate(int P, int M) {
  std::vector<std::vector<PipeStep>> sched(P);
  for (int s = 0; s < P; ++s) sched[s] = one_f_one_b(s, P, M);
  std::vector<size_t> pc(P, 0);
  // Messages in flight: act[s] into stage s (FIFO), grad[s] into stage s.
  std::vector<std::deque<int>> act(P), grad(P);
  bool moved = true;
  while (moved) {
    moved = false;
    for (int s = 0; s < P; ++s) {
      if (pc[s] == sched[s].size()) continue;
      const PipeStep& st = sched[s][pc[s]];
      if (st.kind == PipeStep::Forward) {
        if (s > 0) {
          if (act[s].empty() || act[s].front() != st.micro) continue;
          act[s].pop_front();
        }
        if (s < P - 1) act[s + 1].push_back(st.micro);
      } else {
        if (s < P - 1) {
          if (grad[s].empty() || grad[s].front() != st.micro) continue;
          grad[s].pop_front();
        }
        if (s > 0) grad[s - 1].push_back(st.micro);
      }
      ++pc[s];
      moved = true;
    }
  }
  for (int s = 0; s < P; ++s)
    if (pc[s] != sched[s].size()) return false;
  return true;
}

TEST(OneFOneB, NoDeadlockForTwoAndFourStagesOneToEightMicroBatches) {
  for (int P : {2, 4})
    for (int M = 1; M <= 8; ++M) EXPECT_TRUE(simulate(P, M)) << "P=" << P << " M=" << M;
}

}  // namespace
}  // namespace dt
