// Context-parallel attention (DESIGN §4). Each rank holds chunks r and
// 2·cp−1−r of every sequence (rows [0, C) and [C, 2C) locally). The K/V of
// each rank's two chunks travel around the cp ring; at every hop a rank
// attends its query chunks to the visible chunks of the block it holds (a
// later chunk never, the same chunk causally, an earlier chunk fully) and
// merges both softmax states by log-sum-exp. The backward sends the blocks
// around once more, each carrying the gradient of its K/V, which after cp
// hops is back with its owner holding every rank's contribution.
#include <cmath>
#include <cstring>
#include <limits>

#include "core/emulation_hooks.hpp"
#include "model/transformer.hpp"

namespace dt {

using namespace ops;

namespace {

// Chunk index (of 2·cp) of local row block `half` (0 or 1) on rank r.
int chunk_of(int r, int cp, int half) { return half == 0 ? r : 2 * cp - 1 - r; }

// Calls f(blk) for every visible (query chunk, key chunk) pair between this
// rank's queries and the block of `owner`.
template <class F>
void for_visible_blocks(int rank, int owner, int cp, int C, F&& f) {
  for (int qa = 0; qa < 2; ++qa)
    for (int kb = 0; kb < 2; ++kb) {
      const int qc = chunk_of(rank, cp, qa), kc = chunk_of(owner, cp, kb);
      if (kc > qc) continue;  // a later chunk is masked entirely
      f(AttnBlock{qa * C, C, kb * C, C, kc == qc});
    }
}

// One ring hop: `out` to rank r+1 while `in` arrives from rank r−1, every
// send and receive in one exchange (one NCCL group: a hop whose blocks exceed
// NCCL's buffering cannot deadlock). The received blocks are ready for work
// queued after ring_hop_finish.
void ring_hop_start(Communicator& ring, const std::vector<Tensor>& out, const std::vector<Tensor>& in) {
  const int cp = ring.size(), r = ring.rank();
  if (DT_MUTATION("old_ring_grouping")) {  // the pre-fix grouping, for the emulator's deadlock test
    for (size_t i = 0; i < out.size(); ++i) ring.send(out[i], (r + 1) % cp, int(i));
    return;
  }
  std::vector<Communicator::P2P> ops;
  for (const Tensor& t : out) ops.push_back({t, (r + 1) % cp, true});
  for (const Tensor& t : in) ops.push_back({t, (r - 1 + cp) % cp, false});
  ring.start_exchange(ops);
}

void ring_hop_finish(Communicator& ring, const std::vector<Tensor>& in) {
  const int cp = ring.size(), r = ring.rank();
  if (DT_MUTATION("old_ring_grouping")) {
    for (size_t i = 0; i < in.size(); ++i) ring.recv(in[i], (r - 1 + cp) % cp, int(i));
    ring.wait_sends();
    return;
  }
  ring.wait_exchange();
}

}  // namespace

void Transformer::cp_attention_forward(LayerActs& A, int l) {
  const LayerWeights& W = cw_.layers[l - l0_];
  const bool diff = cfg_.attention == AttentionKind::Diff;
  const int maps = diff ? 2 : 1, cp = par_.cp, r = par_.cp_rank, C = T_ / 2;
  const int64_t B = B_, T = T_, d = cfg_.head_dim(), heads = diff ? Hl_ : 2 * Hl_, dvw = diff ? 2 * d : d;
  Communicator& ring = *par_.cp_comm;
  const Tensor out[2] = {diff ? A.diff.o1 : A.att.view({B, T, heads, dvw}), A.diff.o2};
  const Tensor lse[2] = {diff ? A.diff.lse1 : A.lse, A.diff.lse2};
  for (int m = 0; m < maps; ++m) fill(lse[m], -std::numeric_limits<float>::infinity());
  Tensor k = A.k, v = A.v;
  for (int s = 0; s < cp; ++s) {
    const int owner = (r - s + cp) % cp;
    const int slot = s % 2;
    const bool pass = s + 1 < cp;
    if (pass) ring_hop_start(ring, {k, v}, {ring_k_[slot], ring_v_[slot]});  // pass the block on while attending to it
    for_visible_blocks(r, owner, cp, C, [&](const AttnBlock& blk) {
      attention_block_forward(maps, blk_out_, blk_lse_, A.q, k, v.view({B, T, 2 * KVl_ / maps, dvw}), blk);
      for (int m = 0; m < maps; ++m) attention_merge(out[m], lse[m], blk_out_[m], blk_lse_[m], blk.q0, blk.nq);
    });
    if (pass) {
      ring_hop_finish(ring, {ring_k_[slot], ring_v_[slot]});
      k = ring_k_[slot];
      v = ring_v_[slot];
    }
  }
  if (diff)
    diff_combine_forward(A.att.view({B, T, Hl_, dvw}), A.diff.rstd, A.diff.o1, A.diff.o2,
                         {W.lq1, W.lk1, W.lq2, W.lk2, float(ModelConfig::lambda_init(l))}, W.subln,
                         float(cfg_.norm_eps));
}

void Transformer::cp_attention_backward(LayerActs& A, int l, Tensor d_att) {
  const LayerWeights& W = cw_.layers[l - l0_];
  LayerWeights& G = g_.layers[l - l0_];
  const bool diff = cfg_.attention == AttentionKind::Diff;
  const int maps = diff ? 2 : 1, cp = par_.cp, r = par_.cp_rank, C = T_ / 2;
  const int64_t B = B_, T = T_, d = cfg_.head_dim(), heads = diff ? Hl_ : 2 * Hl_, dvw = diff ? 2 * d : d;
  Communicator& ring = *par_.cp_comm;
  const Tensor O[2] = {diff ? A.diff.o1 : A.att.view({B, T, heads, dvw}), A.diff.o2};
  const Tensor lse[2] = {diff ? A.diff.lse1 : A.lse, A.diff.lse2};
  // Gradient of the merged attention output(s). λ stays on the op's device: the
  // combine backward adds the λ-vector gradients itself, and the block backward
  // scales map 2's gradient by −λ.
  Tensor dO = d_att.view({B, T, heads, dvw});
  const DiffLambda lam{W.lq1, W.lk1, W.lq2, W.lk2, float(ModelConfig::lambda_init(l))};
  if (diff) {
    diff_combine_backward(cp_dpre_, G.subln, {G.lq1, G.lk1, G.lq2, G.lk2}, dO, A.diff.o1, A.diff.o2, A.diff.rstd,
                          lam, W.subln);
    dO = cp_dpre_;
  }
  fill_zero(dq_);
  Tensor k = A.k, v = A.v, dk = ring_dk_[1], dv = ring_dv_[1];
  fill_zero(dk);
  fill_zero(dv);
  for (int s = 0; s < cp; ++s) {
    const int owner = (r - s + cp) % cp;
    for_visible_blocks(r, owner, cp, C, [&](const AttnBlock& blk) {
      attention_block_backward(maps, dq_, dk, dv.view({B, T, 2 * KVl_ / maps, dvw}), dO, &lam, O, lse, A.q, k,
                               v.view({B, T, 2 * KVl_ / maps, dvw}), blk);
    });
    // Every block moves on with its gradient; after cp hops each is home.
    const int slot = s % 2;
    ring_hop_start(ring, {k, v, dk, dv}, {ring_k_[slot], ring_v_[slot], ring_dk_[slot], ring_dv_[slot]});
    ring_hop_finish(ring, {ring_k_[slot], ring_v_[slot], ring_dk_[slot], ring_dv_[slot]});
    k = ring_k_[slot], v = ring_v_[slot], dk = ring_dk_[slot], dv = ring_dv_[slot];
  }
  copy(dk_, dk);
  copy(dv_, dv);
}

}  // namespace dt
