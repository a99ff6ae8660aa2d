// Emulated NCCL, part 1 (see nccl_emulation.hpp): unique ids, the shared
// segment behind a communicator, collective init, destroy and abort, errors.
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <thread>

#include "nccl_emulation.hpp"

namespace emu::nccl {
namespace {

constexpr uint64_t kMagic = 0x64746e63636c3031;  // "dtnccl01"
constexpr char kIdPrefix[] = "dtnccl-";

std::mutex error_mu;
std::string last_error;

size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

double env_number(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const double d = std::strtod(v, &end);
  if (*end || d <= 0) {
    std::fprintf(stderr, "emulated NCCL: %s=%s is not a positive number; using %g\n", name, v, fallback);
    return fallback;
  }
  return d;
}

// Polls `ready` with backoff (yields, then sleeps up to 1 ms) until it holds or the timeout passes.
template <class F>
bool wait_until(F ready, double seconds) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  for (int i = 0;; ++i) {
    if (ready()) return true;
    if (Clock::now() > deadline) return false;
    if (i < 64) sched_yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(std::min(1000, 20 << std::min(i - 64, 6))));
  }
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

ncclResult_t set_error(ncclResult_t code, const std::string& message) {
  std::lock_guard<std::mutex> lock(error_mu);
  last_error = message;
  return code;
}

size_t type_size(ncclDataType_t t) {
  switch (t) {
    case ncclFloat32: return 4;
    case ncclBfloat16: return 2;
    case ncclInt32: return 4;
    case ncclFloat64: return 8;
    default: return 0;
  }
}

const char* type_name(ncclDataType_t t) {
  switch (t) {
    case ncclFloat32: return "f32";
    case ncclBfloat16: return "bf16";
    case ncclInt32: return "i32";
    case ncclFloat64: return "f64";
    default: return "unsupported type";
  }
}

double timeout_seconds() {
  static const double t = env_number("DIFFTRON_EMU_NCCL_TIMEOUT", 120);
  return t;
}

size_t buffer_bytes_from_env() {
  static const size_t b = size_t(env_number("DIFFTRON_EMU_NCCL_BUFFER", 65536));
  return b;
}

// ---- Comm ----

Comm::Layout Comm::layout(int nranks, size_t buffer_bytes, size_t slot_bytes) {
  const size_t n = size_t(nranks);
  Layout l{};
  size_t off = round_up(sizeof(Header), 64);
  l.states = off;
  off += n * sizeof(RankState);
  l.waits = off;
  off = round_up(off + n * n * sizeof(uint64_t), 64);
  l.channels = off;
  off += n * n * sizeof(Channel);
  l.slots = round_up(off, 4096);
  l.rings = l.slots + n * slot_bytes;
  l.total = round_up(l.rings + n * n * buffer_bytes, 4096);
  return l;
}

Comm::Comm(int rank_, int nranks_, std::string name_, void* base, size_t bytes)
    : rank(rank_), nranks(nranks_), name(std::move(name_)), base_(base), bytes_(bytes) {
  buffer_bytes = header().buffer_bytes;
  slot_bytes = header().slot_bytes;
  layout_ = layout(nranks, buffer_bytes, slot_bytes);
  const size_t n = size_t(nranks);
  issued_sends.assign(n, 0);
  issued_recvs.assign(n, 0);
  sent_bytes.assign(n, 0);
  received_bytes.assign(n, 0);
  published_on.assign(n, 0);
}

// The last reference: the host has destroyed the communicator and its queued operations are done.
Comm::~Comm() {
  uint32_t ok = 0;
  state(rank).failed.compare_exchange_strong(ok, 3, std::memory_order_acq_rel);
  munmap(base_, bytes_);
}

RankState& Comm::state(int r) const {
  return reinterpret_cast<RankState*>(static_cast<char*>(base_) + layout_.states)[r];
}
std::atomic<uint64_t>& Comm::waits(int r, int p) const {
  return reinterpret_cast<std::atomic<uint64_t>*>(static_cast<char*>(base_) + layout_.waits)[r * nranks + p];
}
Channel& Comm::channel(int from, int to) const {
  return reinterpret_cast<Channel*>(static_cast<char*>(base_) + layout_.channels)[from * nranks + to];
}
unsigned char* Comm::slot(int r) const {
  return static_cast<unsigned char*>(base_) + layout_.slots + size_t(r) * slot_bytes;
}
unsigned char* Comm::ring(int from, int to) const {
  return static_cast<unsigned char*>(base_) + layout_.rings + size_t(from * nranks + to) * buffer_bytes;
}

void Comm::fail(ncclResult_t code, const std::string& message) {
  if (async_error != ncclSuccess) return;
  blocked.clear();
  for (int p = 0; p < nranks; ++p) waits(rank, p).store(0, std::memory_order_release);
  async_error = code;
  error = message;
  publish_text(*this, message);
  state(rank).failed.store(1, std::memory_order_release);
  set_error(code, message);
}

}  // namespace emu::nccl

using namespace emu::nccl;

extern "C" {

const char* ncclGetErrorString(ncclResult_t r) {
  switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
  }
}

const char* ncclGetLastError(ncclComm_t) {
  thread_local std::string copy;
  std::lock_guard<std::mutex> lock(error_mu);
  copy = last_error;
  return copy.c_str();
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  if (!id) return set_error(ncclInvalidArgument, "ncclGetUniqueId: null id");
  std::random_device rd;
  std::mt19937_64 g((uint64_t(rd()) << 32) ^ rd() ^ uint64_t(getpid()) ^
                    uint64_t(Clock::now().time_since_epoch().count()));
  std::memset(id->internal, 0, sizeof id->internal);
  std::snprintf(id->internal, sizeof id->internal, "%s%016llx%016llx", kIdPrefix, (unsigned long long)g(),
                (unsigned long long)g());
  return ncclSuccess;
}

// Collective over the nranks processes: rank 0 creates the segment, every
// rank maps it, and the last to attach unlinks its name; all return once it has.
ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
  if (!comm) return set_error(ncclInvalidArgument, "ncclCommInitRank: null comm");
  if (nranks < 1 || rank < 0 || rank >= nranks)
    return set_error(ncclInvalidArgument, "ncclCommInitRank: rank " + std::to_string(rank) + " of " +
                                              std::to_string(nranks) + " ranks");
  id.internal[NCCL_UNIQUE_ID_BYTES - 1] = 0;
  const std::string key = id.internal;
  if (key.rfind(kIdPrefix, 0) != 0)
    return set_error(ncclInvalidArgument, "ncclCommInitRank: the id was not made by ncclGetUniqueId (was it "
                                          "broadcast from rank 0?)");
  const std::string shm = "/" + key, name = key.substr(sizeof kIdPrefix - 1, 8);
  const std::string who = "ncclCommInitRank (rank " + std::to_string(rank) + " of " + std::to_string(nranks) +
                          ", communicator " + name + "): ";
  const double timeout = timeout_seconds();
  const size_t buffer = buffer_bytes_from_env();
  const Comm::Layout layout = Comm::layout(nranks, buffer, kSlotBytes);

  int fd = -1;
  if (rank == 0) {
    fd = shm_open(shm.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) return set_error(ncclSystemError, who + "shm_open(" + shm + "): " + errno_text());
    if (ftruncate(fd, off_t(layout.total)) != 0) {
      const std::string e = errno_text();
      close(fd);
      shm_unlink(shm.c_str());
      return set_error(ncclSystemError, who + "cannot size the " + std::to_string(layout.total) +
                                            "-byte shared segment: " + e);
    }
  } else if (!wait_until([&] { return (fd = shm_open(shm.c_str(), O_RDWR, 0)) >= 0 || errno != ENOENT; },
                         timeout) || fd < 0) {
    return set_error(ncclSystemError, who + "rank 0 did not create the communicator's shared segment " + shm +
                                          " within " + std::to_string(int(timeout)) + " s (" + errno_text() +
                                          "); did every rank call ncclCommInitRank with the same id?");
  }
  struct stat st {};
  const bool sized = wait_until([&] { return fstat(fd, &st) == 0 && st.st_size > 0; }, timeout);
  void* base = sized ? mmap(nullptr, size_t(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
  close(fd);
  if (base == MAP_FAILED) {
    shm_unlink(shm.c_str());
    return set_error(ncclSystemError, who + "cannot map the shared segment " + shm + ": " + errno_text());
  }
  auto* h = static_cast<Header*>(base);
  if (rank == 0) {
    new (h) Header{};
    h->nranks = uint64_t(nranks);
    h->buffer_bytes = buffer;
    h->slot_bytes = kSlotBytes;
    h->total_bytes = layout.total;
    h->magic.store(kMagic, std::memory_order_release);
  } else if (!wait_until([&] { return h->magic.load(std::memory_order_acquire) == kMagic; }, timeout) ||
             h->nranks != uint64_t(nranks) || h->total_bytes != uint64_t(st.st_size)) {
    const std::string e = h->magic.load() != kMagic ? "rank 0 did not initialise the shared segment"
                                                    : "rank 0 created it for " + std::to_string(h->nranks) + " ranks";
    munmap(base, size_t(st.st_size));
    shm_unlink(shm.c_str());
    return set_error(ncclInvalidUsage, who + e);
  }
  auto impl = std::make_shared<Comm>(rank, nranks, name, base, size_t(st.st_size));
  if (h->attached.fetch_add(1, std::memory_order_acq_rel) + 1 == uint64_t(nranks)) {
    shm_unlink(shm.c_str());
    h->unlinked.store(1, std::memory_order_release);
  }
  if (!wait_until([&] { return h->unlinked.load(std::memory_order_acquire) != 0; }, timeout)) {
    shm_unlink(shm.c_str());
    return set_error(ncclSystemError, who + "only " + std::to_string(h->attached.load()) + " of " +
                                          std::to_string(nranks) + " ranks attached within " +
                                          std::to_string(int(timeout)) + " s (DIFFTRON_EMU_NCCL_TIMEOUT)");
  }
  *comm = new ncclComm{std::move(impl)};
  return ncclSuccess;
}

// Operations already queued keep the communicator alive until they finish.
ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (!comm) return set_error(ncclInvalidArgument, "ncclCommDestroy: null communicator");
  delete comm;
  return ncclSuccess;
}

// Queued operations finish without doing anything; peers waiting on this rank fail.
ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (!comm) return ncclSuccess;
  {
    Comm& c = *comm->impl;
    std::lock_guard<std::mutex> lock(c.mu);
    c.aborted = true;
    c.blocked.clear();
    for (int p = 0; p < c.nranks; ++p) c.waits(c.rank, p).store(0, std::memory_order_release);
    c.state(c.rank).failed.store(2, std::memory_order_release);
  }
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* async_error) {
  if (!comm || !async_error) return set_error(ncclInvalidArgument, "ncclCommGetAsyncError: null argument");
  std::lock_guard<std::mutex> lock(comm->impl->mu);
  *async_error = comm->impl->async_error;
  return ncclSuccess;
}

}  // extern "C"
