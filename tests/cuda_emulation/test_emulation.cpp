// The emulator's own guarantees (device.hpp, memory.hpp): work runs after the
// call that queued it, only the orderings CUDA documents hold, and an access
// that nothing orders against another stream's (or the host's) is reported
// as a race naming the buffer and both operations. Kernels are real difftron
// kernels (ops::fill), whose loads and stores reach the detector through the
// instrumentation of kernels/cuda/*.cu; copies and memsets declare theirs.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <string>

#include "emulated_runtime.hpp"
#include "core/error.hpp"
#include "kernels/ops.hpp"

namespace emu_probe {
void copy16(const void* src, void* dst);  // probe_kernels.cpp: one 16-byte load and store
}

namespace {

using namespace dt;

struct DeviceBuffer {
  explicit DeviceBuffer(int64_t n) : n(n) {
    EXPECT_EQ(cudaMalloc(&p, size_t(n) * sizeof(float)), cudaSuccess);
  }
  ~DeviceBuffer() { cudaFree(p); }
  Tensor t() const { return Tensor(p, DType::F32, {n}, Device::cuda(0)); }
  void* p = nullptr;
  int64_t n;
};

struct PinnedBuffer {
  explicit PinnedBuffer(size_t bytes) { EXPECT_EQ(cudaMallocHost(&p, bytes), cudaSuccess); }
  ~PinnedBuffer() { cudaFreeHost(p); }
  void* p = nullptr;
};

// The sticky error an expected failure left (it may surface in any later
// call, the launch check of the failing op's own launch included), cleared
// for the next test.
std::string failure(const std::function<void()>& work = [] {}) {
  std::string what;
  try {
    work();
  } catch (const Error& e) {
    what = e.what();
  }
  cudaDeviceSynchronize();
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) what = cudaGetErrorString(e);
  emu::reset_after_failure();
  return what;
}

// A gate op on a stream: the stream's later work waits until it opens.
struct Gate {
  explicit Gate(cudaStream_t s) {
    emu::enqueue(s, "test gate", [this] { return open.load() ? emu::Progress::kDone : emu::Progress::kBlocked; });
  }
  std::atomic<bool> open{false};
};

TEST(CudaEmulation, KernelsRunAfterTheLaunchReturnsNotDuringIt) {
  DeviceBuffer buf(64);
  ops::fill(buf.t(), 1.f);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  Gate gate(nullptr);
  ops::fill(buf.t(), 2.f);                 // queued behind the closed gate
  const float seen = static_cast<float*>(buf.p)[0];  // a peek the real API would not allow
  EXPECT_EQ(seen, 1.f) << "the kernel ran inside the launch call";
  gate.open = true;
  float out = 0;
  ASSERT_EQ(cudaMemcpy(&out, buf.p, sizeof out, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(out, 2.f);
}

TEST(CudaEmulation, UnorderedReadOnAnotherStreamIsReportedAsARace) {
  DeviceBuffer a(256), b(256);
  cudaStream_t s;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  ops::fill(a.t(), 3.f);  // the legacy default stream writes a
  const std::string what =
      failure([&] { cudaMemcpyAsync(b.p, a.p, 256 * sizeof(float), cudaMemcpyDeviceToDevice, s); });
  EXPECT_NE(what.find("race on allocation"), std::string::npos) << what;
  EXPECT_NE(what.find("kernel fill_kernel"), std::string::npos) << what;
  EXPECT_NE(what.find("cudaMemcpyAsync"), std::string::npos) << what;
  cudaStreamDestroy(s);
}

// The legacy default stream fills a with 3; a non-blocking stream s, made to
// wait for that by an event, copies a into b.
struct OrderedCopy {
  OrderedCopy() {
    EXPECT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
    EXPECT_EQ(cudaEventCreate(&e), cudaSuccess);
    ops::fill(a.t(), 3.f);
    EXPECT_EQ(cudaEventRecord(e, nullptr), cudaSuccess);
    EXPECT_EQ(cudaStreamWaitEvent(s, e, 0), cudaSuccess);
    EXPECT_EQ(cudaMemcpyAsync(b.p, a.p, 1024, cudaMemcpyDeviceToDevice, s), cudaSuccess);
  }
  ~OrderedCopy() {
    cudaEventDestroy(e);
    cudaStreamDestroy(s);
  }
  DeviceBuffer a{256}, b{256};
  cudaStream_t s;
  cudaEvent_t e;
};

TEST(CudaEmulation, AnEventWaitOrdersTheRead) {
  OrderedCopy c;
  EXPECT_EQ(failure(), "");
  float out = 0;
  ASSERT_EQ(cudaStreamSynchronize(c.s), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(&out, static_cast<float*>(c.b.p) + 255, sizeof out, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(out, 3.f);
}

TEST(CudaEmulation, TheLegacyStreamOrdersBlockingStreamsButNotNonBlockingOnes) {
  DeviceBuffer a(256), b(256);
  cudaStream_t blocking;
  ASSERT_EQ(cudaStreamCreate(&blocking), cudaSuccess);
  ops::fill(a.t(), 3.f);
  ASSERT_EQ(cudaMemcpyAsync(b.p, a.p, 1024, cudaMemcpyDeviceToDevice, blocking), cudaSuccess);
  ops::fill(a.t(), 4.f);  // after the copy read a: the legacy stream waits for blocking streams
  EXPECT_EQ(failure(), "");
  cudaStreamDestroy(blocking);
}

TEST(CudaEmulation, OverwritingWhatAnotherStreamStillReadsIsReported) {
  OrderedCopy c;  // s reads a, and the legacy stream overwrites it without waiting for s
  const std::string what = failure([&] { ops::fill(c.a.t(), 4.f); });
  EXPECT_NE(what.find("reads it and kernel fill_kernel"), std::string::npos) << what;
}

TEST(CudaEmulation, TheHostReadingPinnedMemoryBeforeSynchronisingIsARace) {
  DeviceBuffer a(256);
  PinnedBuffer h(1024);
  ops::fill(a.t(), 5.f);
  ASSERT_EQ(cudaMemcpyAsync(h.p, a.p, 1024, cudaMemcpyDeviceToHost, nullptr), cudaSuccess);
  emu::host_access(h.p, 1024, false);
  EXPECT_NE(failure().find("the host (a read)"), std::string::npos);

  ASSERT_EQ(cudaMemcpyAsync(h.p, a.p, 1024, cudaMemcpyDeviceToHost, nullptr), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(nullptr), cudaSuccess);
  emu::host_access(h.p, 1024, false);
  EXPECT_EQ(failure(), "");
  EXPECT_EQ(static_cast<float*>(h.p)[255], 5.f);
}

TEST(CudaEmulation, AKernelWritingPastItsAllocationFails) {
  DeviceBuffer a(100);
  const std::string what = failure([&] { ops::fill(Tensor(a.p, DType::F32, {120}, Device::cuda(0)), 1.f); });
  EXPECT_NE(what.find("outside every live allocation"), std::string::npos) << what;
}

// A GPU faults on a 16-byte load whose address is not a multiple of 16; x86
// does not, so the emulation checks the address itself. Offsets 8 (one f32
// pair, two bf16 pairs past a boundary) and 0, in device memory.
TEST(CudaEmulation, AMisalignedVectorLoadFaultsAndAnAlignedOnePasses) {
  DeviceBuffer a(64), b(64);
  ASSERT_EQ(cudaMemset(a.p, 0, 64 * sizeof(float)), cudaSuccess);
  const auto* src = static_cast<const unsigned char*>(a.p);
  const std::string what = failure([&] { emu_probe::copy16(src + 8, b.p); });
  EXPECT_NE(what.find("reads 16 bytes at allocation"), std::string::npos) << what;
  EXPECT_NE(what.find("bytes [8, 24)"), std::string::npos) << what;
  EXPECT_NE(what.find("misaligned address"), std::string::npos) << what;
  EXPECT_EQ(failure([&] { emu_probe::copy16(src + 16, b.p); }), "");
  const std::string store = failure([&] { emu_probe::copy16(src, static_cast<unsigned char*>(b.p) + 4); });
  EXPECT_NE(store.find("writes 16 bytes"), std::string::npos) << store;
  EXPECT_NE(store.find("misaligned address"), std::string::npos) << store;
}

// A view of device memory tagged as a CPU tensor would make a GPU fault in the
// CPU op (the optimizer and the checkpoint code did this with the flat arenas);
// the emulation, whose device memory the host could read, fails it instead.
TEST(CudaEmulation, ACpuOpGivenDeviceMemoryFails) {
  DeviceBuffer a(64);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const Tensor mislabelled(a.p, DType::F32, {64});  // device memory, CPU tag
  EXPECT_THROW(ops::scale(mislabelled, 2.f), Error);
  EXPECT_THROW(ops::sum_squares(mislabelled), Error);
}

TEST(CudaEmulation, HostSynchronisationsAreCountedWhereTheHostBlocks) {
  DeviceBuffer a(256), b(256);
  PinnedBuffer h(1024);
  float pageable[256];
  const uint64_t before = emu::host_sync_count();
  ops::fill(a.t(), 1.f);
  ASSERT_EQ(cudaMemcpyAsync(b.p, a.p, 1024, cudaMemcpyDeviceToDevice, nullptr), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(h.p, a.p, 1024, cudaMemcpyDeviceToHost, nullptr), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(a.p, h.p, 1024, cudaMemcpyHostToDevice, nullptr), cudaSuccess);
  EXPECT_EQ(emu::host_sync_count(), before) << "device work and pinned async copies need no host wait";
  ASSERT_EQ(cudaMemcpy(pageable, a.p, 1024, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(emu::host_sync_count(), before + 1) << "a copy into pageable memory waits for the device";
  ASSERT_EQ(cudaMemcpyAsync(a.p, pageable, 1024, cudaMemcpyHostToDevice, nullptr), cudaSuccess);
  EXPECT_EQ(emu::host_sync_count(), before + 2) << "staging pageable memory waits for the stream";
  ASSERT_EQ(cudaStreamSynchronize(nullptr), cudaSuccess);
  EXPECT_EQ(emu::host_sync_count(), before + 3);
}

}  // namespace

