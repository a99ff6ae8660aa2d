#include "comm/process_grid.hpp"

#include "comm/mpi_communicator.hpp"
#include "comm/nccl_communicator.hpp"
#include "core/error.hpp"

namespace dt {

int grid_rank(const GridShape& s, const GridCoord& c) {
  return c.tp + s.tp * (c.cp + s.cp * (c.dp + s.dp * c.pp));
}

GridCoord grid_coord(const GridShape& s, int rank) {
  GridCoord c;
  c.tp = rank % s.tp;
  rank /= s.tp;
  c.cp = rank % s.cp;
  rank /= s.cp;
  c.dp = rank % s.dp;
  c.pp = rank / s.dp;
  return c;
}

// Ranks with equal color form a group, ordered by key; on a GPU, an NCCL
// communicator over that group.
static std::unique_ptr<Communicator> split(MPI_Comm base, int color, int key, int cuda_device = -1) {
  MPI_Comm c;
  MPI_CHECK(MPI_Comm_split(base, color, key, &c));
  if (cuda_device >= 0) return make_nccl_communicator(c, cuda_device);
  return std::make_unique<MpiCommunicator>(c);
}

ProcessGrid::ProcessGrid(int tp, int cp, int pp, MPI_Comm base, int cuda_device) {
  int world = 1;
  MPI_CHECK(MPI_Comm_size(base, &world));
  MPI_CHECK(MPI_Comm_rank(base, &rank_));
  const int model = tp * cp * pp;
  if (world % model != 0)
    fail("world size ", world, " is not divisible by tp·cp·pp = ", tp, "·", cp, "·", pp, " = ", model,
         "; launch a multiple of ", model, " ranks");
  shape_ = {tp, cp, world / model, pp};
  coord_ = grid_coord(shape_, rank_);
  const GridCoord& c = coord_;
  const GridShape& s = shape_;
  MPI_Comm dup;
  MPI_CHECK(MPI_Comm_dup(base, &dup));
  world_ = std::make_unique<MpiCommunicator>(dup);
  const int dev = cuda_device;
  tp_ = split(base, c.cp + s.cp * (c.dp + s.dp * c.pp), c.tp, dev);
  cp_ = split(base, c.tp + s.tp * (c.dp + s.dp * c.pp), c.cp, dev);
  dp_ = split(base, c.tp + s.tp * (c.cp + s.cp * c.pp), c.dp, dev);
  pp_ = split(base, c.tp + s.tp * (c.cp + s.cp * c.dp), c.pp, dev);
  dp_cp_ = split(base, c.tp + s.tp * c.pp, c.cp + s.cp * c.dp, dev);
  mp_ = split(base, c.dp, c.tp + s.tp * (c.cp + s.cp * c.pp));
  tp_->set_name("tp"), cp_->set_name("cp"), dp_->set_name("dp"), pp_->set_name("pp");
  dp_cp_->set_name("dp×cp"), mp_->set_name("model-parallel");
}

}  // namespace dt
