// Emulated NCCL, part 2 (see nccl_emulation.hpp): the communication calls.
// Each is checked when issued, numbered (collectives per communicator,
// sends and receives per ordered pair of ranks) and queued on its stream as a
// device op, alone or, between ncclGroupStart and the outermost ncclGroupEnd,
// with the other calls of its group on the same communicator and stream.
#include <algorithm>

#include "nccl_emulation.hpp"

namespace emu::nccl {
namespace {

// ---- checks when a call is issued ----

bool reduces(Kind k) { return k == Kind::kAllReduce || k == Kind::kReduce || k == Kind::kReduceScatter; }

const char* api_name(Kind k) {
  switch (k) {
    case Kind::kAllReduce: return "ncclAllReduce";
    case Kind::kReduce: return "ncclReduce";
    case Kind::kReduceScatter: return "ncclReduceScatter";
    case Kind::kAllGather: return "ncclAllGather";
    case Kind::kBroadcast: return "ncclBroadcast";
    case Kind::kSend: return "ncclSend";
    case Kind::kRecv: return "ncclRecv";
  }
  return "?";
}

// The bytes a call reads from `send` and writes to `recv` on this rank (0: not touched).
void extents(const Call& k, int rank, int nranks, size_t* in, size_t* out) {
  const size_t b = k.count * type_size(k.type), n = size_t(nranks);
  switch (k.kind) {
    case Kind::kAllReduce: *in = b, *out = b; break;
    case Kind::kReduce: *in = b, *out = rank == k.peer ? b : 0; break;
    case Kind::kReduceScatter: *in = b * n, *out = b; break;
    case Kind::kAllGather: *in = b, *out = b * n; break;
    case Kind::kBroadcast: *in = rank == k.peer ? b : 0, *out = b; break;
    case Kind::kSend: *in = b, *out = 0; break;
    case Kind::kRecv: *in = 0, *out = b; break;
  }
}

// "" if the call is well formed on this rank, else what is wrong.
std::string check_call(const Call& k, const Comm& c) {
  if (type_size(k.type) == 0)
    return "datatype " + std::to_string(int(k.type)) + " is not emulated (ncclFloat32, ncclBfloat16, ncclInt32, "
           "ncclFloat64 are)";
  if (reduces(k.kind) && k.op != ncclSum && k.op != ncclMax)
    return "reduction op " + std::to_string(int(k.op)) + " is not emulated (ncclSum and ncclMax are)";
  const bool p2p = k.kind == Kind::kSend || k.kind == Kind::kRecv;
  if ((p2p || k.kind == Kind::kReduce || k.kind == Kind::kBroadcast) && (k.peer < 0 || k.peer >= c.nranks))
    return std::string(p2p ? "peer " : "root ") + std::to_string(k.peer) + " is not a rank of the " +
           std::to_string(c.nranks) + "-rank communicator";
  if (k.count > (size_t(1) << 40)) return "count " + std::to_string(k.count) + " is implausibly large";
  size_t in = 0, out = 0;
  extents(k, c.rank, c.nranks, &in, &out);
  if (in && !in_device_allocation(k.send, in))
    return "sendbuff (" + std::to_string(in) + " B) is not inside one device allocation";
  if (out && !in_device_allocation(k.recv, out))
    return "recvbuff (" + std::to_string(out) + " B) is not inside one device allocation";
  if (in && out) {  // overlapping buffers must be NCCL's in-place layout
    const auto* s = static_cast<const unsigned char*>(k.send);
    const auto* r = static_cast<const unsigned char*>(k.recv);
    const size_t b = k.count * type_size(k.type);
    const bool in_place = k.kind == Kind::kAllGather       ? s == r + size_t(c.rank) * b
                          : k.kind == Kind::kReduceScatter ? r == s + size_t(c.rank) * b
                                                           : r == s;
    if (s < r + out && r < s + in && !in_place)
      return "sendbuff and recvbuff overlap without being NCCL's in-place layout";
  }
  return "";
}

// ---- issuing and groups ----

struct Issued {
  std::shared_ptr<Comm> comm;
  cudaStream_t stream;
  Call call;
};

thread_local int group_depth = 0;
thread_local std::vector<Issued> group_calls;
thread_local ncclResult_t group_error = ncclSuccess;

// One device op: the calls of a group on one communicator and stream.
class GroupOp {
 public:
  GroupOp(std::shared_ptr<Comm> comm, std::vector<Call> calls, uint64_t id)
      : comm_(std::move(comm)), calls_(std::move(calls)), id_(id) {}

  std::string name() const {
    std::string s = calls_.size() == 1 ? "" : "NCCL group {";
    for (size_t i = 0; i < calls_.size() && s.size() < 400; ++i) s += (i ? ", " : "") + describe(calls_[i]);
    return s + (calls_.size() == 1 ? "" : "}") + " on communicator " + comm_->name;
  }

  Progress poll() {
    Comm& c = *comm_;
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.aborted) return Progress::kDone;
    if (c.async_error != ncclSuccess) {
      op_fault("emulated NCCL: " + name() + " not run: the communicator failed earlier (the first error above)");
      return Progress::kDone;
    }
    Poll p(c);
    bool all_done = true;
    for (Call& k : calls_) {
      if (k.done) continue;
      if (k.kind == Kind::kSend) poll_send(c, k, p);
      else if (k.kind == Kind::kRecv) poll_recv(c, k, p);
      else poll_collective(c, k, p);
      if (!p.fault.empty()) break;
      all_done = all_done && k.done;
    }
    if (p.progressed) c.state(c.rank).progress.fetch_add(1, std::memory_order_release);
    if (!p.fault.empty()) return fault(p.fault);
    if (all_done) {
      clear_wait(c, id_);
      return Progress::kDone;
    }
    set_wait(c, id_, Wait{blocked_text(p), p.on});
    const std::string stuck = check_stuck(c);
    if (!stuck.empty()) return fault(stuck);
    return Progress::kBlocked;
  }

 private:
  Progress fault(const std::string& message) {
    comm_->fail(ncclInvalidUsage, message);
    op_fault(message);
    return Progress::kDone;
  }

  // "blocked in group {…}, waiting for rank 1 to post its matching recv"
  std::string blocked_text(const Poll& p) const {
    std::string s = calls_.size() == 1 ? "blocked in " + describe(calls_[0]) : "blocked in group {";
    for (size_t i = 0; calls_.size() > 1 && i < calls_.size(); ++i) s += (i ? ", " : "") + describe(calls_[i]);
    if (calls_.size() > 1) s += "}";
    std::vector<std::string> reasons;
    for (const std::string& w : p.waiting)
      if (std::find(reasons.begin(), reasons.end(), w) == reasons.end()) reasons.push_back(w);
    for (size_t i = 0; i < reasons.size(); ++i) s += (i ? " and " : ", ") + reasons[i];
    return s;
  }

  std::shared_ptr<Comm> comm_;
  std::vector<Call> calls_;
  uint64_t id_;
};

void launch(const std::shared_ptr<Comm>& comm, cudaStream_t stream, std::vector<Call> calls) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(comm->mu);
    id = comm->next_op++;
  }
  auto op = std::make_shared<GroupOp>(comm, std::move(calls), id);
  enqueue(stream, op->name(), [op] { return op->poll(); });
}

ncclResult_t issue(ncclComm_t comm, cudaStream_t stream, Call k) {
  const std::string fn = api_name(k.kind);
  if (!comm || !comm->impl) return set_error(ncclInvalidArgument, fn + ": null communicator");
  Comm& c = *comm->impl;
  std::string wrong = check_call(k, c);
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (wrong.empty() && (c.aborted || c.async_error != ncclSuccess))
      wrong = "the communicator failed earlier: " + c.error;
    if (wrong.empty()) {
      const size_t p = size_t(k.peer);
      if (k.kind == Kind::kSend) {
        k.seq = c.issued_sends[p]++;
        k.offset = c.sent_bytes[p];
        c.sent_bytes[p] += k.bytes();
      } else if (k.kind == Kind::kRecv) {
        k.seq = c.issued_recvs[p]++;
        k.offset = c.received_bytes[p];
        c.received_bytes[p] += k.bytes();
      } else {
        k.seq = c.issued_colls++;
      }
    }
  }
  if (!wrong.empty()) {
    const ncclResult_t r = set_error(ncclInvalidArgument, fn + " on communicator " + c.name + ": " + wrong);
    if (group_depth > 0 && group_error == ncclSuccess) group_error = r;
    return r;
  }
  if (group_depth > 0) group_calls.push_back({comm->impl, stream, k});
  else launch(comm->impl, stream, {k});
  return ncclSuccess;
}

Call make(Kind kind, const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t op, int peer) {
  Call k;
  k.kind = kind, k.send = send, k.recv = recv, k.count = count, k.type = type, k.op = op, k.peer = peer;
  return k;
}

}  // namespace

size_t Call::bytes() const { return count * type_size(type); }

}  // namespace emu::nccl

using namespace emu::nccl;

extern "C" {

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                           ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  return issue(comm, stream, make(Kind::kAllReduce, sendbuff, recvbuff, count, datatype, op, 0));
}
ncclResult_t ncclReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                        int root, ncclComm_t comm, cudaStream_t stream) {
  return issue(comm, stream, make(Kind::kReduce, sendbuff, recvbuff, count, datatype, op, root));
}
ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount, ncclDataType_t datatype,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  return issue(comm, stream, make(Kind::kReduceScatter, sendbuff, recvbuff, recvcount, datatype, op, 0));
}
ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream) {
  return issue(comm, stream, make(Kind::kAllGather, sendbuff, recvbuff, sendcount, datatype, ncclSum, 0));
}
ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, cudaStream_t stream) {
  return issue(comm, stream, make(Kind::kBroadcast, sendbuff, recvbuff, count, datatype, ncclSum, root));
}
ncclResult_t ncclSend(const void* sendbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                      cudaStream_t stream) {
  return issue(comm, stream, make(Kind::kSend, sendbuff, nullptr, count, datatype, ncclSum, peer));
}
ncclResult_t ncclRecv(void* recvbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                      cudaStream_t stream) {
  return issue(comm, stream, make(Kind::kRecv, nullptr, recvbuff, count, datatype, ncclSum, peer));
}

ncclResult_t ncclGroupStart() {
  ++group_depth;
  return ncclSuccess;
}

// The outermost end launches the group: one device op per (communicator,
// stream), in the order of each pair's first call. A group in which a call
// failed is dropped whole.
ncclResult_t ncclGroupEnd() {
  if (group_depth == 0) return set_error(ncclInvalidUsage, "ncclGroupEnd without a matching ncclGroupStart");
  if (--group_depth > 0) return ncclSuccess;
  std::vector<Issued> calls = std::move(group_calls);
  group_calls.clear();
  if (group_error != ncclSuccess) {
    const ncclResult_t r = group_error;
    group_error = ncclSuccess;
    return r;  // ncclGetLastError still names the failed call
  }
  std::vector<std::pair<size_t, std::vector<Call>>> parts;  // first call's index, the calls
  for (size_t i = 0; i < calls.size(); ++i) {
    auto it = std::find_if(parts.begin(), parts.end(), [&](const auto& part) {
      const Issued& first = calls[part.first];
      return first.comm == calls[i].comm && first.stream == calls[i].stream;
    });
    if (it == parts.end()) parts.push_back({i, {calls[i].call}});
    else it->second.push_back(calls[i].call);
  }
  for (auto& [first, part] : parts) launch(calls[first].comm, calls[first].stream, std::move(part));
  return ncclSuccess;
}

}  // extern "C"
