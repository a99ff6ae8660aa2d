// Emulated NCCL, part 4 (see nccl_emulation.hpp): the collectives. Collective
// number s of a communicator runs once every rank has combined the last chunk
// of collective s − 1. It moves its data in chunks that fit a rank's staging
// slot; for each chunk (a step, numbered over the communicator's life) every
// rank
//   stages: copies its part of the input into its slot, once every rank has
//           combined the previous step (so nobody still reads the slot);
//   checks: once every rank has posted the collective, that all posted the
//           same one (first chunk only);
//   combines: once every rank has staged the step, reads the slots in rank
//           order and writes its output.
// Reductions accumulate in rank order 0, 1, 2, … (bf16 in fp32, rounded once
// at the end), so every rank computes bit-identical results.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstring>

#include "nccl_emulation.hpp"

namespace emu::nccl {
namespace {

constexpr auto kAcquire = std::memory_order_acquire;
constexpr auto kRelease = std::memory_order_release;

const char* kind_name(uint32_t k) {
  switch (Kind(k)) {
    case Kind::kAllReduce: return "ncclAllReduce";
    case Kind::kReduce: return "ncclReduce";
    case Kind::kReduceScatter: return "ncclReduceScatter";
    case Kind::kAllGather: return "ncclAllGather";
    case Kind::kBroadcast: return "ncclBroadcast";
    default: return "a send/recv";
  }
}

// Chunking: `units` elements per rank are processed `chunk` at a time.
struct Geometry {
  size_t esize, units, chunk;
  uint64_t chunks;
};

Geometry geometry(const Comm& c, const Call& k) {
  Geometry g{};
  g.esize = type_size(k.type);
  g.units = k.count;
  const size_t per = k.kind == Kind::kReduceScatter ? size_t(c.nranks) : 1;  // a sub-slot per destination
  g.chunk = c.slot_bytes / (per * g.esize);
  g.chunks = std::max<uint64_t>(1, (g.units + g.chunk - 1) / g.chunk);
  return g;
}

bool all_at_least(const Comm& c, std::atomic<uint64_t> RankState::*counter, uint64_t v) {
  for (int q = 0; q < c.nranks; ++q)
    if ((c.state(q).*counter).load(kAcquire) < v) return false;
  return true;
}

// Reduces n elements at byte offset `at` of every rank's slot, in rank order, into out.
template <class T, class Acc>
void reduce_slots(const Comm& c, ncclRedOp_t op, size_t at, size_t n, T* out) {
  std::vector<Acc> acc(n);
  for (int q = 0; q < c.nranks; ++q) {
    const T* in = reinterpret_cast<const T*>(c.slot(q) + at);
    for (size_t i = 0; i < n; ++i) {
      Acc v;
      if constexpr (std::is_same_v<T, __nv_bfloat16>) v = __bfloat162float(in[i]);
      else v = in[i];
      if (q == 0) acc[i] = v;
      else if (op == ncclMax) acc[i] = v > acc[i] ? v : acc[i];
      else if constexpr (std::is_integral_v<Acc>) acc[i] = Acc(uint32_t(acc[i]) + uint32_t(v));  // wraps, as on a GPU
      else acc[i] = acc[i] + v;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<T, __nv_bfloat16>) out[i] = __float2bfloat16(acc[i]);
    else out[i] = acc[i];
  }
}

void reduce(const Comm& c, const Call& k, size_t at, size_t n, void* out) {
  switch (k.type) {
    case ncclFloat32: reduce_slots<float, float>(c, k.op, at, n, static_cast<float*>(out)); break;
    case ncclBfloat16: reduce_slots<__nv_bfloat16, float>(c, k.op, at, n, static_cast<__nv_bfloat16*>(out)); break;
    case ncclInt32: reduce_slots<int32_t, int32_t>(c, k.op, at, n, static_cast<int32_t*>(out)); break;
    case ncclFloat64: reduce_slots<double, double>(c, k.op, at, n, static_cast<double*>(out)); break;
    default: break;
  }
}

// Copies this rank's part of chunk `i` into its slot.
void stage(Comm& c, const Call& k, const Geometry& g, uint64_t i) {
  const size_t first = size_t(i) * g.chunk, n = std::min(g.chunk, g.units - std::min(g.units, first));
  const auto* send = static_cast<const unsigned char*>(k.send);
  unsigned char* slot = c.slot(c.rank);
  auto copy = [&](size_t src_elem, size_t dst_byte) {
    access(send + src_elem * g.esize, n * g.esize, false);
    std::memcpy(slot + dst_byte, send + src_elem * g.esize, n * g.esize);
  };
  if (n == 0) return;
  switch (k.kind) {
    case Kind::kBroadcast:
      if (c.rank == k.peer) copy(first, 0);
      break;
    case Kind::kReduceScatter:
      for (int d = 0; d < c.nranks; ++d) copy(size_t(d) * g.units + first, size_t(d) * g.chunk * g.esize);
      break;
    default: copy(first, 0);
  }
}

// Writes this rank's output for chunk `i` from the staged slots.
void combine(Comm& c, const Call& k, const Geometry& g, uint64_t i) {
  const size_t first = size_t(i) * g.chunk, n = std::min(g.chunk, g.units - std::min(g.units, first));
  auto* recv = static_cast<unsigned char*>(k.recv);
  if (n == 0) return;
  const size_t bytes = n * g.esize;
  switch (k.kind) {
    case Kind::kAllReduce:
      access(recv + first * g.esize, bytes, true);
      reduce(c, k, 0, n, recv + first * g.esize);
      break;
    case Kind::kReduce:
      if (c.rank != k.peer) break;
      access(recv + first * g.esize, bytes, true);
      reduce(c, k, 0, n, recv + first * g.esize);
      break;
    case Kind::kReduceScatter:
      access(recv + first * g.esize, bytes, true);
      reduce(c, k, size_t(c.rank) * g.chunk * g.esize, n, recv + first * g.esize);
      break;
    case Kind::kAllGather:
      for (int q = 0; q < c.nranks; ++q) {
        unsigned char* dst = recv + (size_t(q) * g.units + first) * g.esize;
        access(dst, bytes, true);
        std::memcpy(dst, c.slot(q), bytes);
      }
      break;
    case Kind::kBroadcast:
      if (c.rank == k.peer && k.send == k.recv) break;
      access(recv + first * g.esize, bytes, true);
      std::memcpy(recv + first * g.esize, c.slot(k.peer), bytes);
      break;
    default: break;
  }
}

bool same(const CollDesc& a, const CollDesc& b) {
  const bool rooted = Kind(a.kind) == Kind::kReduce || Kind(a.kind) == Kind::kBroadcast;
  const bool reducing = rooted ? Kind(a.kind) == Kind::kReduce : Kind(a.kind) != Kind::kAllGather;
  return a.kind == b.kind && a.count == b.count && a.type == b.type && (!reducing || a.op == b.op) &&
         (!rooted || a.root == b.root);
}

std::string ranks_list(const std::vector<int>& r) {
  std::string s = r.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < r.size(); ++i) s += (i ? ", " : "") + std::to_string(r[i]);
  return s;
}

}  // namespace

CollDesc collective_desc(const Call& k) {
  return CollDesc{k.seq, k.count, uint32_t(k.kind), uint32_t(k.type), uint32_t(k.op), k.peer};
}

std::string describe_collective(const CollDesc& d) {
  const Kind kind = Kind(d.kind);
  std::string s = std::string(kind_name(d.kind)) + "(" + std::to_string(d.count) + " × " +
                  type_name(ncclDataType_t(d.type));
  if (kind == Kind::kAllGather || kind == Kind::kReduceScatter) s += " per rank";
  if (kind != Kind::kAllGather && kind != Kind::kBroadcast) s += d.op == ncclMax ? ", max" : ", sum";
  if (kind == Kind::kReduce || kind == Kind::kBroadcast) s += ", root " + std::to_string(d.root);
  return s + ")";
}

std::string describe(const Call& k) {
  std::string s;
  if (k.kind == Kind::kSend || k.kind == Kind::kRecv) {
    s = std::string(k.kind == Kind::kSend ? "send " : "recv ") + std::to_string(k.bytes()) + " B " +
        (k.kind == Kind::kSend ? "to" : "from") + " rank " + std::to_string(k.peer);
    if (k.done) s += " (done)";
    else if (k.moved) s += " (" + std::to_string(k.moved) + " B moved)";
    return s;
  }
  s = describe_collective(collective_desc(k)) + " #" + std::to_string(k.seq);
  if (k.done) s += " (done)";
  else if (k.posted) s += " (chunk " + std::to_string(k.moved + 1) + " of " + std::to_string(k.chunks) + ")";
  return s;
}

void poll_collective(Comm& c, Call& k, Poll& p) {
  const Geometry g = geometry(c, k);
  RankState& me = c.state(c.rank);
  if (!k.posted) {
    if (c.colls_done != k.seq) {
      p.wait("waiting for this rank's earlier collective #" + std::to_string(c.colls_done));
      return;
    }
    // The descriptor and slot are reused: every rank must be past the previous collective.
    if (!all_at_least(c, &RankState::consumed, c.steps_done)) {
      p.wait("waiting for every rank to finish collective #" + std::to_string(k.seq - 1));
      return;
    }
    me.desc = collective_desc(k);
    me.coll_posted.store(k.seq + 1, kRelease);
    k.posted = p.progressed = true;
    k.base_step = c.steps_done;
    k.chunks = g.chunks;
  }
  while (k.moved < k.chunks) {
    const uint64_t step = k.base_step + k.moved + 1;
    if (!k.staged) {
      if (!all_at_least(c, &RankState::consumed, step - 1)) {
        p.wait("waiting for every rank to combine chunk " + std::to_string(k.moved));
        return;
      }
      stage(c, k, g, k.moved);
      me.published.store(step, kRelease);
      k.staged = p.progressed = true;
    }
    if (!k.checked) {
      std::vector<int> missing;
      for (int q = 0; q < c.nranks; ++q)
        if (c.state(q).coll_posted.load(kAcquire) <= k.seq) missing.push_back(q);
      if (!missing.empty()) {
        for (int q : missing) p.on[size_t(q)] = p.seen[size_t(q)] + 1;
        p.wait("waiting for " + ranks_list(missing) + " to post collective #" + std::to_string(k.seq));
        return;
      }
      const CollDesc first = c.state(0).desc;
      for (int q = 1; q < c.nranks; ++q) {
        const CollDesc d = c.state(q).desc;
        if (!same(first, d) || d.seq != first.seq)
          p.fault = "emulated NCCL: mismatched collectives on communicator " + c.name + " (collective #" +
                    std::to_string(k.seq) + "): rank 0 " + describe_collective(first) + " vs rank " +
                    std::to_string(q) + " " + describe_collective(d);
        if (!p.fault.empty()) return;
      }
      k.checked = true;
    }
    if (!all_at_least(c, &RankState::published, step)) {
      p.wait("waiting for every rank to stage chunk " + std::to_string(k.moved + 1));
      return;
    }
    combine(c, k, g, k.moved);
    me.consumed.store(step, kRelease);
    ++k.moved;
    k.staged = false;
    p.progressed = true;
  }
  k.done = true;
  ++c.colls_done;
  c.steps_done = k.base_step + k.chunks;
}

}  // namespace emu::nccl
