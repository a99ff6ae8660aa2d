// The process grid of DESIGN §4: rank = tp + TP·(cp + CP·(dp + DP·pp)), tensor
// parallel fastest so tp peers share a node. The only place that does rank
// arithmetic; everything else asks it for peers and groups.
#pragma once
#include <memory>

#include <mpi.h>

#include "comm/communicator.hpp"

namespace dt {

struct GridShape {
  int tp = 1, cp = 1, dp = 1, pp = 1;
  int world() const { return tp * cp * dp * pp; }
};

struct GridCoord {
  int tp = 0, cp = 0, dp = 0, pp = 0;
};

// Pure rank arithmetic, testable without MPI.
int grid_rank(const GridShape& s, const GridCoord& c);
GridCoord grid_coord(const GridShape& s, int rank);

class ProcessGrid {
 public:
  // `base` (MPI_COMM_WORLD, or MPI_COMM_SELF for a single-process reference)
  // split into groups; dp = size(base) / (tp·cp·pp). With cuda_device ≥ 0 the
  // groups that move tensors (tp, cp, dp, pp, dp_cp) are NCCL communicators on
  // that GPU; world and model_parallel, which reduce host scalars, stay MPI.
  ProcessGrid(int tp, int cp, int pp, MPI_Comm base = MPI_COMM_WORLD, int cuda_device = -1);
  const GridShape& shape() const { return shape_; }
  const GridCoord& coord() const { return coord_; }
  int rank() const { return rank_; }

  Communicator& world() { return *world_; }
  Communicator& tp() { return *tp_; }
  Communicator& cp() { return *cp_; }
  Communicator& dp() { return *dp_; }
  Communicator& pp() { return *pp_; }
  // Same tp/cp/pp position, all dp and cp ranks: weight gradients are reduced here.
  Communicator& dp_cp() { return *dp_cp_; }
  // Every rank of one model replica (same dp): tp × cp × pp.
  Communicator& model_parallel() { return *mp_; }

  bool first_stage() const { return coord_.pp == 0; }
  bool last_stage() const { return coord_.pp == shape_.pp - 1; }

 private:
  GridShape shape_;
  GridCoord coord_;
  int rank_ = 0;
  std::unique_ptr<Communicator> world_, tp_, cp_, dp_, pp_, dp_cp_, mp_;
};

}  // namespace dt
