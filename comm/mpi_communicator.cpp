#include "comm/mpi_communicator.hpp"

#include <cstring>

#include <cstdlib>

#include "core/error.hpp"
#include "core/watchdog.hpp"

namespace dt {

void mpi_fail(const char* call, const char* file, int line, int rc) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fail(file, ":", line, ": ", call, " failed: ", std::string(msg, len),
       " (check that every rank runs the same config and that mpirun launched them all)");
}

static void check_f32(const Tensor& t, const char* op) {
  if (!t.device.is_cpu()) fail(op, ": MPI communicator needs host tensors (NCCL handles device tensors)");
  DT_CHECK(t.dtype == DType::F32, op, " expects f32");
}

// The MPI type of a reducible host tensor (f32 or f64).
static MPI_Datatype reduce_type(const Tensor& t, const char* op) {
  if (!t.device.is_cpu()) fail(op, ": MPI communicator needs host tensors (NCCL handles device tensors)");
  if (t.dtype == DType::F64) return MPI_DOUBLE;
  DT_CHECK(t.dtype == DType::F32, op, " expects f32 or f64, got ", dtype_name(t.dtype));
  return MPI_FLOAT;
}

// The MPI type of a host tensor that is only moved, not reduced (f32, f64, i32).
static MPI_Datatype move_type(const Tensor& t, const char* op) {
  if (!t.device.is_cpu()) fail(op, ": MPI communicator needs host tensors (NCCL handles device tensors)");
  switch (t.dtype) {
    case DType::F32: return MPI_FLOAT;
    case DType::F64: return MPI_DOUBLE;
    case DType::I32: return MPI_INT32_T;
    case DType::BF16: break;
  }
  fail(op, ": MPI communicator moves f32, f64 or i32 tensors, got ", dtype_name(t.dtype));
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm) : comm_(comm) {
  MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_WORLD && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void MpiCommunicator::all_reduce_sum(Tensor t) {
  const WatchCollective watch("all-reduce", name());
  const MPI_Datatype type = reduce_type(t, "all_reduce_sum");
  if (size_ == 1) return;
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, t.ptr, int(t.numel()), type, MPI_SUM, comm_));
}

void MpiCommunicator::all_reduce_max(Tensor t) {
  const WatchCollective watch("all-reduce (max)", name());
  const MPI_Datatype type = reduce_type(t, "all_reduce_max");
  if (size_ == 1) return;
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, t.ptr, int(t.numel()), type, MPI_MAX, comm_));
}

void MpiCommunicator::reduce_scatter_sum(Tensor out, Tensor in) {
  const WatchCollective watch("reduce-scatter", name());
  check_f32(in, "reduce_scatter_sum");
  DT_CHECK(in.numel() == out.numel() * size_, "reduce_scatter sizes ", in.numel(), " / ", out.numel());
  MPI_CHECK(MPI_Reduce_scatter_block(in.ptr, out.ptr, int(out.numel()), MPI_FLOAT, MPI_SUM, comm_));
}

void MpiCommunicator::all_gather(Tensor out, Tensor in) {
  const WatchCollective watch("all-gather", name());
  check_f32(in, "all_gather");
  DT_CHECK(out.numel() == in.numel() * size_, "all_gather sizes ", out.numel(), " / ", in.numel());
  // In place when `in` is this rank's part of `out`.
  const bool in_place = in.ptr == static_cast<float*>(out.ptr) + rank_ * in.numel();
  MPI_CHECK(MPI_Allgather(in_place ? MPI_IN_PLACE : in.ptr, int(in.numel()), MPI_FLOAT, out.ptr, int(in.numel()),
                          MPI_FLOAT, comm_));
}

void MpiCommunicator::broadcast(Tensor t, int root) {
  const WatchCollective watch("broadcast", name());
  const MPI_Datatype type = move_type(t, "broadcast");
  if (size_ == 1) return;
  MPI_CHECK(MPI_Bcast(t.ptr, int(t.numel()), type, root, comm_));
}

void MpiCommunicator::gather(Tensor out, Tensor in, int root) {
  const WatchCollective watch("gather", name());
  const MPI_Datatype type = move_type(in, "gather");
  const int n = int(in.numel());
  if (rank_ != root) {
    MPI_CHECK(MPI_Gather(in.ptr, n, type, nullptr, n, type, root, comm_));
    return;
  }
  DT_CHECK(out.dtype == in.dtype && out.numel() == in.numel() * size_, "gather sizes ", out.numel(), " / ",
           in.numel());
  move_type(out, "gather");
  // In place when `in` is root's part of `out`.
  const bool in_place = static_cast<char*>(in.ptr) == static_cast<char*>(out.ptr) + size_t(rank_) * in.bytes();
  MPI_CHECK(MPI_Gather(in_place ? MPI_IN_PLACE : in.ptr, n, type, out.ptr, n, type, root, comm_));
}

void MpiCommunicator::send(Tensor t, int peer, int tag) {
  check_f32(t, "send");
  pending_.emplace_back();
  MPI_CHECK(MPI_Isend(t.ptr, int(t.numel()), MPI_FLOAT, peer, tag, comm_, &pending_.back()));
}

void MpiCommunicator::recv(Tensor t, int peer, int tag) {
  const WatchCollective watch("receive", name());
  check_f32(t, "recv");
  MPI_CHECK(MPI_Recv(t.ptr, int(t.numel()), MPI_FLOAT, peer, tag, comm_, MPI_STATUS_IGNORE));
}

void MpiCommunicator::wait_sends() {
  const WatchCollective watch("send", name());
  if (pending_.empty()) return;
  MPI_CHECK(MPI_Waitall(int(pending_.size()), pending_.data(), MPI_STATUSES_IGNORE));
  pending_.clear();
}

void MpiCommunicator::barrier() {
  const WatchCollective watch("barrier", name());
  MPI_CHECK(MPI_Barrier(comm_));
}

// Tags count the messages to (or from) each peer within the exchange, so the
// k-th send to a peer matches its k-th receive from this rank.
void MpiCommunicator::start_exchange(const std::vector<P2P>& ops) {
  DT_CHECK(exchange_.empty(), "start_exchange: the previous exchange was not waited for");
  std::vector<int> sent(size_t(size_), 0), received(size_t(size_), 0);
  for (const P2P& op : ops) {
    check_f32(op.t, op.send ? "exchange send" : "exchange recv");
    exchange_.emplace_back();
    const int n = int(op.t.numel());
    if (op.send)
      MPI_CHECK(MPI_Isend(op.t.ptr, n, MPI_FLOAT, op.peer, sent[size_t(op.peer)]++, comm_, &exchange_.back()));
    else
      MPI_CHECK(MPI_Irecv(op.t.ptr, n, MPI_FLOAT, op.peer, received[size_t(op.peer)]++, comm_, &exchange_.back()));
  }
}

void MpiCommunicator::wait_exchange() {
  const WatchCollective watch("ring exchange", name());
  if (exchange_.empty()) return;
  MPI_CHECK(MPI_Waitall(int(exchange_.size()), exchange_.data(), MPI_STATUSES_IGNORE));
  exchange_.clear();
}

void MpiCommunicator::reduce_async(const std::vector<Reduction>& parts) {
  for (const Reduction& p : parts) {
    const Tensor &out = p.out, &in = p.in;
    check_f32(in, "reduce_async");
    DT_CHECK(out.numel() == in.numel(), "reduce_async sizes ", out.numel(), " / ", in.numel());
    if (size_ == 1) {
      if (out.ptr != in.ptr) std::memcpy(out.ptr, in.ptr, in.bytes());
      continue;
    }
    const int n = int(in.numel());
    const bool in_place = out.ptr == in.ptr;
    async_.emplace_back();
    if (p.root < 0)
      MPI_CHECK(
          MPI_Iallreduce(in_place ? MPI_IN_PLACE : in.ptr, out.ptr, n, MPI_FLOAT, MPI_SUM, comm_, &async_.back()));
    else if (rank_ == p.root)
      MPI_CHECK(MPI_Ireduce(in_place ? MPI_IN_PLACE : in.ptr, out.ptr, n, MPI_FLOAT, MPI_SUM, p.root, comm_,
                            &async_.back()));
    else
      MPI_CHECK(MPI_Ireduce(in.ptr, nullptr, n, MPI_FLOAT, MPI_SUM, p.root, comm_, &async_.back()));
  }
}

void MpiCommunicator::finish_async() {
  const WatchCollective watch("all-reduce of gradient buckets", name());
  if (async_.empty()) return;
  MPI_CHECK(MPI_Waitall(int(async_.size()), async_.data(), MPI_STATUSES_IGNORE));
  async_.clear();
}

double MpiCommunicator::all_reduce_sum(double v) {
  const WatchCollective watch("all-reduce", name());
  if (size_ > 1) MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_SUM, comm_));
  return v;
}

double MpiCommunicator::all_reduce_max(double v) {
  const WatchCollective watch("all-reduce (max)", name());
  if (size_ > 1) MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, comm_));
  return v;
}

void mpi_init_once(int* argc, char*** argv) {
  int inited = 0;
  MPI_Initialized(&inited);
  if (inited) return;
  int provided = 0;
  MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  // Errors come back as codes so MPI_CHECK can report them in one line.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  std::atexit(mpi_finalize);
}

// Between MPI_Init and MPI_Finalize.
static bool mpi_running() {
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  return inited && !finalized;
}

void mpi_finalize() {
  if (mpi_running()) MPI_Finalize();
}

int mpi_world_rank() {
  int rank = 0;
  if (mpi_running()) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int mpi_world_size() {
  int size = 1;
  if (mpi_running()) MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

void mpi_abort_job(int code) {
  if (mpi_running()) {
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size > 1) MPI_Abort(MPI_COMM_WORLD, code);
  }
  std::exit(code);
}

}  // namespace dt
