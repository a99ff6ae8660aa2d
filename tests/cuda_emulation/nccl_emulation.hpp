// Emulated NCCL: the subset of NCCL's C API (declared by the toolkit's nccl.h)
// that comm/nccl_communicator.cu calls, for ranks that are processes of one
// mpirun job on one machine, so the real communicator runs in the CUDA host
// emulation unchanged. Internal header of nccl_comm.cpp (shared segment, init,
// errors), nccl_api.cpp (the calls, groups, device ops), nccl_collectives.cpp,
// nccl_p2p.cpp and nccl_waits.cpp (what a rank waits for; deadlock reports).
//
// What it models.
// - A communicator is a POSIX shared-memory segment named from the
//   ncclUniqueId. ncclCommInitRank is collective: it returns once every rank
//   has attached (or fails after DIFFTRON_EMU_NCCL_TIMEOUT s, default 120), and
//   the name is unlinked as soon as all have, so nothing is left behind.
// - Every operation is stream-ordered: emu::enqueue queues it and the device
//   thread runs it later, polling it while it waits for a peer (it never
//   blocks). The calls between ncclGroupStart and the outermost ncclGroupEnd
//   become one device op per (communicator, stream), done when all its calls are.
// - Collectives match by issue order on the communicator; every rank checks
//   that all posted the same kind, count, datatype, op and root. Data passes
//   through one staging slot per rank (kSlotBytes) in chunks, and every rank
//   reduces the slots in rank order 0, 1, 2, … (bf16 in fp32, rounded once),
//   so all ranks get bit-identical results.
// - Send and recv match in issue order per ordered pair of ranks. Each pair
//   has a byte ring of DIFFTRON_EMU_NCCL_BUFFER bytes (default 65536): sends
//   run at most that far ahead of their receives, so a larger send completes
//   only while the matching recv executes. Sizes of matched messages must agree.
// - Each rank publishes, per communicator, what it is blocked in, its progress
//   counter, and which peers must post an operation before it can go on. A
//   cycle of such waits with no progress on its ranks for kDeadlockSeconds is a
//   deadlock, reported with the ranks and operations; a rank that sees no
//   progress on any rank for DIFFTRON_EMU_NCCL_TIMEOUT s reports what it waits
//   for. A failed or aborted rank makes its peers' waiting operations fail.
//   A cycle is taken as final even where a rank could break it with an
//   operation on another stream of the same communicator: NCCL does not
//   promise that two of its operations progress concurrently.
// - Calls are checked when issued: datatypes and ops outside the subset, bad
//   ranks, buffers outside device allocations, overlapping buffers that are not
//   NCCL's in-place layout (ncclInvalidArgument, message in ncclGetLastError).
//
// What it does not model: several devices per process or several nodes;
// NCCL's algorithms (ring/tree summation order, protocols, channels; here the
// sum is in rank order); reduction ops other than sum and max, datatypes other
// than f32, bf16, i32 and f64; ncclCommInitRankConfig, ncclCommSplit,
// non-blocking communicators, buffer registration; timing. A cycle of waits
// that spans two communicators is caught only by the timeout. ncclCommDestroy
// does not wait: operations already queued keep the communicator alive.
//
// From the emulator (emulated_runtime.hpp) it uses enqueue, access, op_fault
// and in_device_allocation. The device thread must poll a kBlocked op again
// while other streams proceed, backing off (yield, then short sleeps) while
// nothing completes.
#pragma once
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "emulated_runtime.hpp"

namespace emu::nccl {

using Clock = std::chrono::steady_clock;

constexpr size_t kTextBytes = 3072;             // a rank's published wait or failure description
constexpr size_t kMetaSlots = 256;              // sends a channel holds posted but not yet matched
constexpr size_t kSlotBytes = size_t(1) << 20;  // each rank's collective staging slot
constexpr double kDeadlockSeconds = 3.0;        // a quiet cycle of waits this long is a deadlock

enum class Kind : uint32_t { kAllReduce, kReduce, kReduceScatter, kAllGather, kBroadcast, kSend, kRecv };

// ---- the shared segment: Header, RankState[n], waits[n·n] (edges), Channel[n·n], slots, rings ----

// What every rank must agree on for collective number `seq`.
struct CollDesc {
  uint64_t seq, count;
  uint32_t kind, type, op;
  int32_t root;
};

struct Header {
  std::atomic<uint64_t> magic;  // set last by rank 0, once the rest is written
  uint64_t nranks, buffer_bytes, slot_bytes, total_bytes;
  std::atomic<uint64_t> attached;
  std::atomic<uint64_t> unlinked;  // set by the last rank to attach once the name is gone
};

// One rank's published state; only that rank writes it.
struct alignas(64) RankState {
  std::atomic<uint64_t> progress;      // bumped by every post, chunk, byte transfer and completion
  std::atomic<uint64_t> coll_posted;   // collectives posted (1 + the sequence number of the last)
  std::atomic<uint64_t> published;     // collective chunks staged in this rank's slot, ever
  std::atomic<uint64_t> consumed;      // collective chunks this rank has combined, ever
  std::atomic<uint32_t> failed;        // 1: an operation failed; 2: ncclCommAbort; 3: destroyed
  std::atomic<uint64_t> text_version;  // seqlock over text: odd while it is written
  char text[kTextBytes];               // "blocked in …, waiting for …", the failure, or ""
  CollDesc desc;                       // the collective posted last (valid once coll_posted says so)
};

// One ordered pair of ranks (sender → receiver): a byte ring of buffer_bytes
// carrying the messages back to back, and the sizes of posted sends.
struct alignas(64) Channel {
  std::atomic<uint64_t> send_posted;   // sends posted by the sender
  std::atomic<uint64_t> recv_posted;   // receives posted by the receiver
  std::atomic<uint64_t> recv_matched;  // receives that have checked their send's size
  std::atomic<uint64_t> written;       // bytes the sender has put into the ring, ever
  std::atomic<uint64_t> read;          // bytes the receiver has taken out, ever
  uint64_t send_bytes[kMetaSlots];     // size of send k at [k % kMetaSlots]
};

static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<uint32_t>::is_always_lock_free,
              "atomics in shared memory must be lock-free");

// ---- one call, as issued, and its progress ----

struct Call {
  Kind kind = Kind::kSend;
  const void* send = nullptr;
  void* recv = nullptr;
  size_t count = 0;  // elements; per rank for all-gather (sendcount) and reduce-scatter (recvcount)
  ncclDataType_t type = ncclFloat32;
  ncclRedOp_t op = ncclSum;
  int peer = 0;         // the root of a rooted collective, the peer of a send or recv
  uint64_t seq = 0;     // collective number on the communicator, or message number on the channel
  uint64_t offset = 0;  // send/recv: where the message starts in its channel's byte stream

  // Progress, advanced on the device thread.
  bool posted = false, matched = false, staged = false, checked = false, done = false;
  uint64_t moved = 0;      // send/recv: bytes moved; collective: chunks combined
  uint64_t base_step = 0;  // collective: chunks combined on the communicator before this one
  uint64_t chunks = 0;

  size_t bytes() const;  // send/recv message size
};

class Comm;

// What one poll of a device op found. An edge of the wait graph ("rank p must
// post an operation before this can continue") carries p's progress counter as
// read before the poll looked at anything, plus one: once p's counter has moved
// on, the edge may be stale, and nobody counts it until it is published again.
struct Poll {
  explicit Poll(const Comm& c);
  bool progressed = false;
  std::string fault;                 // non-empty: the operation fails with this message
  std::vector<std::string> waiting;  // "waiting for rank 1 to post its matching recv"
  std::vector<uint64_t> seen, on;    // per rank: progress counter before the poll; the edge (0: none)
  void wait(std::string why) { waiting.push_back(std::move(why)); }
  void wait_on(int peer, std::string why) {
    on[size_t(peer)] = seen[size_t(peer)] + 1;
    wait(std::move(why));
  }
};

// A blocked device op's share of what its rank publishes.
struct Wait {
  std::string text;
  std::vector<uint64_t> on;
};

// When each rank's progress counter last changed, as this rank has seen it.
struct Watch {
  bool active = false;
  std::vector<uint64_t> seen;
  std::vector<Clock::time_point> changed;
};

// One rank's handle on a communicator; device ops hold it by shared_ptr.
class Comm {
 public:
  Comm(int rank, int nranks, std::string name, void* base, size_t bytes);
  ~Comm();
  Comm(const Comm&) = delete;
  Comm& operator=(const Comm&) = delete;

  const int rank, nranks;
  const std::string name;  // short id for messages
  size_t buffer_bytes = 0, slot_bytes = 0;

  Header& header() const { return *static_cast<Header*>(base_); }
  RankState& state(int r) const;
  std::atomic<uint64_t>& waits(int r, int p) const;  // rank r waits for rank p to post: an edge (see Poll)
  Channel& channel(int from, int to) const;
  unsigned char* slot(int r) const;
  unsigned char* ring(int from, int to) const;

  // The layout of a segment for n ranks; `total` is its size in bytes.
  struct Layout {
    size_t states, waits, channels, slots, rings, total;
  };
  static Layout layout(int nranks, size_t buffer_bytes, size_t slot_bytes);

  // Records a failure of this rank's operations and publishes it to the peers.
  void fail(ncclResult_t code, const std::string& message);

  std::mutex mu;  // guards everything below

  // Host side: numbering as calls are issued.
  uint64_t issued_colls = 0;
  std::vector<uint64_t> issued_sends, issued_recvs;  // per peer
  std::vector<uint64_t> sent_bytes, received_bytes;  // per peer: byte-stream offsets
  uint64_t next_op = 0;

  // Device side.
  uint64_t colls_done = 0, steps_done = 0;
  std::map<uint64_t, Wait> blocked;  // by device op
  std::string published_text;
  std::vector<uint64_t> published_on;
  Watch watch;

  ncclResult_t async_error = ncclSuccess;
  std::string error;
  bool aborted = false;

 private:
  void* base_;
  size_t bytes_;
  Layout layout_;
};

// ---- shared helpers (nccl_comm.cpp) ----

// Records `message` for ncclGetLastError and returns `code`.
ncclResult_t set_error(ncclResult_t code, const std::string& message);
size_t type_size(ncclDataType_t t);  // 0 for types the emulation does not take
const char* type_name(ncclDataType_t t);
double timeout_seconds();            // DIFFTRON_EMU_NCCL_TIMEOUT
size_t buffer_bytes_from_env();      // DIFFTRON_EMU_NCCL_BUFFER

// ---- progress (nccl_collectives.cpp, nccl_p2p.cpp) ----

void poll_collective(Comm& c, Call& k, Poll& p);
void poll_send(Comm& c, Call& k, Poll& p);
void poll_recv(Comm& c, Call& k, Poll& p);
std::string describe(const Call& k);                // "send 131072 B to rank 1 (65536 B moved)"
std::string describe_collective(const CollDesc& d);  // "ncclAllReduce(1024 × f32, sum)"
CollDesc collective_desc(const Call& k);

// ---- waits, deadlocks, timeouts (nccl_waits.cpp) ----

void set_wait(Comm& c, uint64_t op, Wait w);
void clear_wait(Comm& c, uint64_t op);
void publish_text(Comm& c, const std::string& text);
std::string read_text(const Comm& c, int r);
// Why this rank's blocked operations must fail now (a peer failed, a deadlock,
// the timeout), or "" if they may keep waiting.
std::string check_stuck(Comm& c);

}  // namespace emu::nccl

// nccl.h's opaque communicator.
struct ncclComm {
  std::shared_ptr<emu::nccl::Comm> impl;
};
