// The emulated NCCL (tests/cuda_emulation/nccl_*.cpp) behaves as NCCL does on
// real GPUs, including the failures that only show there:
//
//   mpirun -np N emulated_nccl_semantics <scenario>
//
//   semantics            collectives (sum/max in f32, bf16, f64, i32; reduce-scatter,
//                        all-gather, broadcast, reduce), bit-identical on every rank and
//                        equal to a rank-ordered host reduction; grouped send/recv past the
//                        p2p buffer (all-to-all, the one-group ring), sends within the buffer
//                        completing before their receives, two streams and two communicators.
//                        Prints "N passed, M failed".
//   ring_old_grouping    group {send A, send B to r+1; recv A from r−1}, then group {recv B}:
//                        must be reported as a deadlock within seconds (the job then aborts).
//   size_mismatch        a recv of half the size of its send: reported, naming both.
//   collective_mismatch  rank 0 all-reduces while the others all-gather: reported.
//   slow_peer            one rank sleeps 5 s before posting: not a deadlock, completes.
//   busy_peer            a rank's device is busy for 5 s while its published wait is stale
//                        (the peer has since posted): not a deadlock, completes.
//   stuck_peer           a recv whose send never comes (run with DIFFTRON_EMU_NCCL_TIMEOUT=2):
//                        reported with what it waits for.
//
// Built with the temporary device stub (tests/cuda_emulation/device_stub.cpp). A
// failed CUDA call prints its error and aborts the job, as CUDA_CHECK does. The
// failure scenarios are in emulated_nccl_failures.cpp.
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/mpi/emulated_nccl_test.hpp"

using namespace nccltest;

namespace {

// ---- collectives ----

template <class T>
void all_reduce(ncclDataType_t type, ncclRedOp_t op, size_t count, bool in_place, const char* tname) {
  const uint64_t salt = mix(count * 31 + uint64_t(op) * 7 + uint64_t(type));
  T* in = upload(inputs<T>(uint64_t(g_rank), count, salt));
  T* out = in_place ? in : upload(std::vector<T>(count));
  NCCL_OK(ncclAllReduce(in, out, count, type, op, g_comm, g_stream));
  sync_stream();
  std::vector<T> want(count);
  for (size_t i = 0; i < count; ++i) want[i] = reduce_ranks<T>(i, salt, op);
  expect_bits(download(out, count), want, std::string("all_reduce ") + tname + " " + op_name(op) + " " +
                                              std::to_string(count) + (in_place ? " in place" : ""));
  if constexpr (std::is_same_v<T, bf16>) {  // the test can tell rounding once from rounding per step
    if (g_size >= 3 && op == ncclSum && count >= 1000) {
      size_t differ = 0;
      for (size_t i = 0; i < count; ++i) {
        bf16 step = value<T>(0, i, salt);
        for (int q = 1; q < g_size; ++q) step = __float2bfloat16(__bfloat162float(step) + widen(value<T>(q, i, salt)));
        differ += std::memcmp(&step, &want[i], sizeof(T)) != 0;
      }
      expect(differ > 0, "bf16 inputs where rounding per step would differ");
    }
  }
  CUDA_OK(cudaFree(in));
  if (!in_place) CUDA_OK(cudaFree(out));
}

template <class T> void reduce_scatter(ncclDataType_t type, size_t recvcount, bool in_place, const char* tname) {
  const uint64_t salt = mix(recvcount * 131 + uint64_t(type));
  const size_t n = recvcount * size_t(g_size);
  T* in = upload(inputs<T>(uint64_t(g_rank), n, salt));
  T* out = in_place ? in + size_t(g_rank) * recvcount : upload(std::vector<T>(recvcount));
  NCCL_OK(ncclReduceScatter(in, out, recvcount, type, ncclSum, g_comm, g_stream));
  sync_stream();
  std::vector<T> want(recvcount);
  for (size_t i = 0; i < recvcount; ++i) want[i] = reduce_ranks<T>(size_t(g_rank) * recvcount + i, salt, ncclSum);
  expect_bits(download(out, recvcount), want,
              std::string("reduce_scatter ") + tname + " " + std::to_string(recvcount) + (in_place ? " in place" : ""),
              false);  // each rank holds a different part
  CUDA_OK(cudaFree(in));
  if (!in_place) CUDA_OK(cudaFree(out));
}

template <class T> void all_gather(ncclDataType_t type, size_t sendcount, bool in_place, const char* tname) {
  const uint64_t salt = mix(sendcount * 17 + uint64_t(type));
  const size_t n = sendcount * size_t(g_size);
  std::vector<T> want(n);
  for (int q = 0; q < g_size; ++q)
    for (size_t i = 0; i < sendcount; ++i) want[size_t(q) * sendcount + i] = value<T>(uint64_t(q), i, salt);
  T* out = upload(std::vector<T>(n));
  T* in = in_place ? out + size_t(g_rank) * sendcount : upload(inputs<T>(uint64_t(g_rank), sendcount, salt));
  if (in_place) CUDA_OK(cudaMemcpy(in, want.data() + size_t(g_rank) * sendcount, sendcount * sizeof(T),
                                   cudaMemcpyHostToDevice));
  CUDA_OK(cudaDeviceSynchronize());
  NCCL_OK(ncclAllGather(in, out, sendcount, type, g_comm, g_stream));
  sync_stream();
  expect_bits(download(out, n), want,
              std::string("all_gather ") + tname + " " + std::to_string(sendcount) + (in_place ? " in place" : ""));
  CUDA_OK(cudaFree(out));
  if (!in_place) CUDA_OK(cudaFree(in));
}

template <class T> void broadcast(ncclDataType_t type, size_t count, int root, bool in_place, const char* tname) {
  const uint64_t salt = mix(count * 5 + uint64_t(root));
  T* in = upload(inputs<T>(uint64_t(g_rank), count, salt));
  T* out = in_place ? in : upload(std::vector<T>(count));
  NCCL_OK(ncclBroadcast(in, out, count, type, root, g_comm, g_stream));
  sync_stream();
  expect_bits(download(out, count), inputs<T>(uint64_t(root), count, salt),
              std::string("broadcast ") + tname + " " + std::to_string(count) + " from " + std::to_string(root) +
                  (in_place ? " in place" : ""));
  CUDA_OK(cudaFree(in));
  if (!in_place) CUDA_OK(cudaFree(out));
}

template <class T> void reduce(ncclDataType_t type, size_t count, int root, const char* tname) {
  const uint64_t salt = mix(count * 3 + uint64_t(root) + 99);
  const std::vector<T> sentinel = inputs<T>(777, count, salt);
  T* in = upload(inputs<T>(uint64_t(g_rank), count, salt));
  T* out = upload(sentinel);
  NCCL_OK(ncclReduce(in, out, count, type, ncclSum, root, g_comm, g_stream));
  sync_stream();
  std::vector<T> want = sentinel;  // off the root, recvbuff is not touched
  if (g_rank == root)
    for (size_t i = 0; i < count; ++i) want[i] = reduce_ranks<T>(i, salt, ncclSum);
  expect_bits(download(out, count), want,
              std::string("reduce ") + tname + " " + std::to_string(count) + " to " + std::to_string(root), false);
  CUDA_OK(cudaFree(in));
  CUDA_OK(cudaFree(out));
}

// ---- point to point ----

void all_to_all() {  // one group, every pair both ways and to itself, each message past the buffer
  std::vector<float*> out(static_cast<size_t>(g_size)), in(static_cast<size_t>(g_size));
  NCCL_OK(ncclGroupStart());
  for (int q = 0; q < g_size; ++q) {
    in[size_t(q)] = upload(inputs<float>(pair(g_rank, q), pair_count(g_rank, q), 1));
    out[size_t(q)] = upload(std::vector<float>(pair_count(q, g_rank)));
    NCCL_OK(ncclSend(in[size_t(q)], pair_count(g_rank, q), ncclFloat32, q, g_comm, g_stream));
    NCCL_OK(ncclRecv(out[size_t(q)], pair_count(q, g_rank), ncclFloat32, q, g_comm, g_stream));
  }
  NCCL_OK(ncclGroupEnd());
  sync_stream();
  bool ok = true;
  for (int q = 0; q < g_size; ++q) {
    ok = ok && download(out[size_t(q)], pair_count(q, g_rank)) == inputs<float>(pair(q, g_rank), pair_count(q, g_rank), 1);
    CUDA_OK(cudaFree(in[size_t(q)]));
    CUDA_OK(cudaFree(out[size_t(q)]));
  }
  expect(ok, "grouped send/recv to every rank, both directions, past the buffer");
}

// The context-parallel hop as it must be: one group with all of the hop's sends and receives.
void ring_one_group() {
  const size_t a = 100000, b = 30000;
  float* sa = upload(inputs<float>(pair(g_rank, 0), a, 2));
  float* sb = upload(inputs<float>(pair(g_rank, 1), b, 2));
  float* ra = upload(std::vector<float>(a));
  float* rb = upload(std::vector<float>(b));
  NCCL_OK(ncclGroupStart());
  NCCL_OK(ncclSend(sa, a, ncclFloat32, next(), g_comm, g_stream));
  NCCL_OK(ncclSend(sb, b, ncclFloat32, next(), g_comm, g_stream));
  NCCL_OK(ncclRecv(ra, a, ncclFloat32, prev(), g_comm, g_stream));
  NCCL_OK(ncclRecv(rb, b, ncclFloat32, prev(), g_comm, g_stream));
  NCCL_OK(ncclGroupEnd());
  sync_stream();
  expect(download(ra, a) == inputs<float>(pair(prev(), 0), a, 2) && download(rb, b) == inputs<float>(pair(prev(), 1), b, 2),
         "ring hop in one group, messages past the buffer");
  for (float* p : {sa, sb, ra, rb}) CUDA_OK(cudaFree(p));
}

// Sends that fit the buffer complete before their receives are posted, and arrive in order.
void buffered_sends() {
  const size_t a = 8000, b = 4000;  // 48 KB in all, under 64 KiB
  float* sa = upload(inputs<float>(pair(g_rank, 2), a, 3));
  float* sb = upload(inputs<float>(pair(g_rank, 3), b, 3));
  float* ra = upload(std::vector<float>(a));
  float* rb = upload(std::vector<float>(b));
  NCCL_OK(ncclSend(sa, a, ncclFloat32, next(), g_comm, g_stream));
  NCCL_OK(ncclSend(sb, b, ncclFloat32, next(), g_comm, g_stream));
  NCCL_OK(ncclRecv(ra, a, ncclFloat32, prev(), g_comm, g_stream));
  NCCL_OK(ncclRecv(rb, b, ncclFloat32, prev(), g_comm, g_stream));
  sync_stream();
  expect(download(ra, a) == inputs<float>(pair(prev(), 2), a, 3) && download(rb, b) == inputs<float>(pair(prev(), 3), b, 3),
         "ungrouped sends within the buffer complete before their receives, in order");
  for (float* p : {sa, sb, ra, rb}) CUDA_OK(cudaFree(p));
}

// A collective and send/recv in one group.
void mixed_group() {
  const size_t n = 20000, m = 40000;
  float* x = upload(inputs<float>(uint64_t(g_rank), n, 4));
  float* s = upload(inputs<float>(pair(g_rank, 4), m, 4));
  float* r = upload(std::vector<float>(m));
  NCCL_OK(ncclGroupStart());
  NCCL_OK(ncclAllReduce(x, x, n, ncclFloat32, ncclSum, g_comm, g_stream));
  NCCL_OK(ncclSend(s, m, ncclFloat32, next(), g_comm, g_stream));
  NCCL_OK(ncclRecv(r, m, ncclFloat32, prev(), g_comm, g_stream));
  NCCL_OK(ncclGroupEnd());
  sync_stream();
  std::vector<float> want(n);
  for (size_t i = 0; i < n; ++i) want[i] = reduce_ranks<float>(i, 4, ncclSum);
  expect(download(x, n) == want && download(r, m) == inputs<float>(pair(prev(), 4), m, 4),
         "all-reduce and send/recv in one group");
  for (float* p : {x, s, r}) CUDA_OK(cudaFree(p));
}

// Collectives of one communicator on two streams, and a second communicator
// whose ranks are numbered backwards (its sums run in its own rank order).
void streams_and_communicators() {
  cudaStream_t s2;
  CUDA_OK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
  ncclUniqueId id;
  if (g_rank == 0) NCCL_OK(ncclGetUniqueId(&id));
  MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
  ncclComm_t back;
  NCCL_OK(ncclCommInitRank(&back, g_size, id, g_size - 1 - g_rank));
  const size_t n = 3000;
  float* x = upload(inputs<float>(uint64_t(g_rank), n, 6));
  float* y = upload(inputs<float>(uint64_t(g_rank), n, 7));
  float* z = upload(inputs<float>(uint64_t(g_rank), n, 8));
  NCCL_OK(ncclAllReduce(x, x, n, ncclFloat32, ncclSum, g_comm, g_stream));
  NCCL_OK(ncclAllReduce(y, y, n, ncclFloat32, ncclSum, g_comm, s2));
  NCCL_OK(ncclAllReduce(z, z, n, ncclFloat32, ncclSum, back, s2));
  sync_stream();
  CUDA_OK(cudaStreamSynchronize(s2));
  std::vector<float> wx(n), wy(n), wz(n);
  for (size_t i = 0; i < n; ++i) {
    wx[i] = reduce_ranks<float>(i, 6, ncclSum);
    wy[i] = reduce_ranks<float>(i, 7, ncclSum);
    wz[i] = value<float>(uint64_t(g_size - 1), i, 8);
    for (int j = 1; j < g_size; ++j) wz[i] += value<float>(uint64_t(g_size - 1 - j), i, 8);
  }
  expect_bits(download(x, n), wx, "all_reduce on stream 1");
  expect_bits(download(y, n), wy, "the next all_reduce of the communicator, on stream 2");
  expect_bits(download(z, n), wz, "all_reduce on a second communicator, ranks numbered backwards");
  NCCL_OK(ncclCommDestroy(back));
  CUDA_OK(cudaStreamDestroy(s2));
  for (float* p : {x, y, z}) CUDA_OK(cudaFree(p));
}

// What the emulation does not take is refused when called, with a message.
void refused_calls() {
  float* x = upload(std::vector<float>(16, 1.f));
  std::vector<float> host(16);
  auto refused = [](ncclResult_t got, ncclResult_t want, const char* needle, const std::string& name) {
    const std::string msg = ncclGetLastError(g_comm);
    expect(got == want && msg.find(needle) != std::string::npos, name, "got " + std::to_string(got) + ": " + msg);
  };
  refused(ncclAllReduce(x, x, 16, ncclFloat16, ncclSum, g_comm, g_stream), ncclInvalidArgument, "datatype 6",
          "an unsupported datatype is refused");
  refused(ncclAllReduce(x, x, 16, ncclFloat32, ncclProd, g_comm, g_stream), ncclInvalidArgument, "reduction op 1",
          "an unsupported reduction op is refused");
  refused(ncclAllReduce(host.data(), x, 16, ncclFloat32, ncclSum, g_comm, g_stream), ncclInvalidArgument,
          "sendbuff (64 B) is not inside one device allocation", "host memory is refused");
  refused(ncclSend(x, 16, ncclFloat32, g_size, g_comm, g_stream), ncclInvalidArgument, "peer",
          "a peer outside the communicator is refused");
  refused(ncclAllReduce(x, x + 1, 8, ncclFloat32, ncclSum, g_comm, g_stream), ncclInvalidArgument, "overlap",
          "partly overlapping buffers are refused");
  refused(ncclGroupEnd(), ncclInvalidUsage, "without a matching ncclGroupStart", "a stray ncclGroupEnd is refused");
  // A refused call consumed no sequence number: the next collective still matches.
  NCCL_OK(ncclAllReduce(x, x, 16, ncclFloat32, ncclSum, g_comm, g_stream));
  sync_stream();
  expect(download(x, 16) == std::vector<float>(16, float(g_size)), "collectives match after refused calls");
  CUDA_OK(cudaFree(x));
}

void semantics() {
  refused_calls();
  all_reduce<float>(ncclFloat32, ncclSum, 300000, false, "f32");  // two 1 MiB chunks
  all_reduce<float>(ncclFloat32, ncclSum, 1000, true, "f32");
  all_reduce<float>(ncclFloat32, ncclMax, 300000, false, "f32");
  all_reduce<float>(ncclFloat32, ncclSum, 0, false, "f32");
  all_reduce<bf16>(ncclBfloat16, ncclSum, 600000, false, "bf16");
  all_reduce<bf16>(ncclBfloat16, ncclMax, 1000, true, "bf16");
  all_reduce<double>(ncclFloat64, ncclSum, 150000, false, "f64");
  all_reduce<double>(ncclFloat64, ncclMax, 1, true, "f64");
  all_reduce<int32_t>(ncclInt32, ncclSum, 70000, false, "i32");
  all_reduce<int32_t>(ncclInt32, ncclMax, 70000, true, "i32");
  reduce_scatter<float>(ncclFloat32, 100000, false, "f32");
  reduce_scatter<float>(ncclFloat32, 100000, true, "f32");
  reduce_scatter<bf16>(ncclBfloat16, 50000, false, "bf16");
  all_gather<float>(ncclFloat32, 300000, false, "f32");
  all_gather<float>(ncclFloat32, 1000, true, "f32");
  all_gather<int32_t>(ncclInt32, 7, false, "i32");
  broadcast<float>(ncclFloat32, 300000, g_size - 1, false, "f32");
  broadcast<float>(ncclFloat32, 1000, 0, true, "f32");
  broadcast<double>(ncclFloat64, 3, g_size - 1, true, "f64");
  reduce<float>(ncclFloat32, 300000, 1 % g_size, "f32");
  reduce<bf16>(ncclBfloat16, 5000, 0, "bf16");
  all_to_all();
  ring_one_group();
  buffered_sends();
  mixed_group();
  streams_and_communicators();
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  g_t0 = Clock::now();
  const std::string scenario = argc > 1 ? argv[1] : "semantics";
  ncclUniqueId id;
  if (g_rank == 0) NCCL_OK(ncclGetUniqueId(&id));
  MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
  CUDA_OK(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
  NCCL_OK(ncclCommInitRank(&g_comm, g_size, id, g_rank));
  expect(::access(("/dev/shm/" + std::string(id.internal)).c_str(), F_OK) != 0,
         "the shared segment's name is gone once every rank has attached");

  if (scenario == "semantics") semantics();
  else if (scenario == "ring_old_grouping") ring_old_grouping();
  else if (scenario == "size_mismatch") size_mismatch();
  else if (scenario == "collective_mismatch") collective_mismatch();
  else if (scenario == "slow_peer") slow_peer();
  else if (scenario == "busy_peer") busy_peer();
  else if (scenario == "stuck_peer") stuck_peer();
  else die("scenario", "unknown scenario " + scenario);

  NCCL_OK(ncclCommDestroy(g_comm));
  CUDA_OK(cudaStreamDestroy(g_stream));
  int failed = 0, passed = 0;
  MPI_Allreduce(&g_failed, &failed, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Allreduce(&g_passed, &passed, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (g_rank == 0) std::printf("%s on %d ranks: %d passed, %d failed\n", scenario.c_str(), g_size, passed, failed);
  MPI_Finalize();
  return failed ? 1 : 0;
}
