// The failures the emulated NCCL must report, and the waits it must not
// report (scenarios of emulated_nccl_semantics; see its header).
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "emulated_runtime.hpp"
#include "tests/mpi/emulated_nccl_test.hpp"

namespace nccltest {


void ring_old_grouping() {  // what comm/nccl_communicator.cu's recv() did with two queued sends
  const size_t a = 100000, b = 100000;  // 400 KB each, past the 64 KiB buffer
  float* sa = upload(std::vector<float>(a, 1.f));
  float* sb = upload(std::vector<float>(b, 2.f));
  float* ra = upload(std::vector<float>(a));
  float* rb = upload(std::vector<float>(b));
  g_t0 = Clock::now();
  NCCL_OK(ncclGroupStart());
  NCCL_OK(ncclSend(sa, a, ncclFloat32, next(), g_comm, g_stream));
  NCCL_OK(ncclSend(sb, b, ncclFloat32, next(), g_comm, g_stream));
  NCCL_OK(ncclRecv(ra, a, ncclFloat32, prev(), g_comm, g_stream));
  NCCL_OK(ncclGroupEnd());
  sync_stream();
  NCCL_OK(ncclRecv(rb, b, ncclFloat32, prev(), g_comm, g_stream));
  sync_stream();
  expect(false, "ring_old_grouping", "completed; the deadlock was not reported");
}

void size_mismatch() {
  float* x = upload(std::vector<float>(25000, 1.f));  // 100000 B
  g_t0 = Clock::now();
  if (g_rank == 0) NCCL_OK(ncclSend(x, 25000, ncclFloat32, 1, g_comm, g_stream));
  if (g_rank == 1) NCCL_OK(ncclRecv(x, 12500, ncclFloat32, 0, g_comm, g_stream));
  sync_stream();
  MPI_Barrier(MPI_COMM_WORLD);
  expect(false, "size_mismatch", "not reported");
}

void collective_mismatch() {
  float* x = upload(std::vector<float>(1024 * size_t(g_size), 1.f));
  g_t0 = Clock::now();
  if (g_rank == 0) NCCL_OK(ncclAllReduce(x, x, 1024, ncclFloat32, ncclSum, g_comm, g_stream));
  else NCCL_OK(ncclAllGather(x, x + 512 * size_t(g_rank), 512, ncclFloat32, g_comm, g_stream));
  sync_stream();
  MPI_Barrier(MPI_COMM_WORLD);
  expect(false, "collective_mismatch", "not reported");
}

// The last rank sleeps 5 s, then joins an all-reduce and a send/recv exchange
// with rank 0 that the others posted at once.
void slow_peer() {
  const int last = g_size - 1;
  const size_t m = 50000;  // 200 KB each way, past the buffer
  float* x = upload(std::vector<float>(1000, float(g_rank + 1)));
  float* s = upload(inputs<float>(pair(g_rank, 5), m, 5));
  float* r = upload(std::vector<float>(m));
  const auto t0 = Clock::now();
  if (g_rank == last) std::this_thread::sleep_for(std::chrono::seconds(5));
  NCCL_OK(ncclAllReduce(x, x, 1000, ncclFloat32, ncclSum, g_comm, g_stream));
  if (g_rank == 0 || g_rank == last) {
    const int peer = last - g_rank;
    NCCL_OK(ncclGroupStart());
    NCCL_OK(ncclSend(s, m, ncclFloat32, peer, g_comm, g_stream));
    NCCL_OK(ncclRecv(r, m, ncclFloat32, peer, g_comm, g_stream));
    NCCL_OK(ncclGroupEnd());
    sync_stream();
    expect(download(r, m) == inputs<float>(pair(peer, 5), m, 5), "exchange with a peer that posts 5 s late");
  }
  sync_stream();
  expect(download(x, 1000) == std::vector<float>(1000, float(g_size * (g_size + 1) / 2)),
         "all-reduce with a peer that posts 5 s late");
  if (g_rank == 0)
    std::printf("rank 0 waited %.1f s for the slow peer\n", std::chrono::duration<double>(Clock::now() - t0).count());
  for (float* p : {x, s, r}) CUDA_OK(cudaFree(p));
}

// Rank 1's send blocks until rank 0 posts its recv; meanwhile rank 1's device
// runs a 5 s "kernel" on another stream, so its published wait ("rank 0 must
// post") goes stale while rank 0, having posted, waits for rank 1's next recv.
// Not a deadlock: rank 1 is busy, and continues once the kernel ends.
void busy_peer() {
  const size_t m = 50000;  // 200 KB, past the buffer
  float* s = upload(inputs<float>(pair(g_rank, 9), m, 9));
  float* r = upload(std::vector<float>(m));
  cudaStream_t other;
  CUDA_OK(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking));
  if (g_rank == 1) {
    NCCL_OK(ncclSend(s, m, ncclFloat32, 0, g_comm, g_stream));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the send has posted its wait
    emu::enqueue(other, "a 5 s kernel", [] {
      std::this_thread::sleep_for(std::chrono::seconds(5));
      return emu::Progress::kDone;
    });
    NCCL_OK(ncclRecv(r, m, ncclFloat32, 0, g_comm, g_stream));
  } else if (g_rank == 0) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    NCCL_OK(ncclGroupStart());
    NCCL_OK(ncclRecv(r, m, ncclFloat32, 1, g_comm, g_stream));
    NCCL_OK(ncclSend(s, m, ncclFloat32, 1, g_comm, g_stream));
    NCCL_OK(ncclGroupEnd());
  }
  sync_stream();
  CUDA_OK(cudaStreamSynchronize(other));
  if (g_rank < 2)
    expect(download(r, m) == inputs<float>(pair(1 - g_rank, 9), m, 9), "exchange with a peer whose device is busy");
  CUDA_OK(cudaStreamDestroy(other));
}

void stuck_peer() {
  float* x = upload(std::vector<float>(1000, 1.f));
  g_t0 = Clock::now();
  if (g_rank == 0) {
    NCCL_OK(ncclRecv(x, 1000, ncclFloat32, 1, g_comm, g_stream));
    sync_stream();
  }
  MPI_Barrier(MPI_COMM_WORLD);
  expect(false, "stuck_peer", "not reported");
}

}  // namespace nccltest
