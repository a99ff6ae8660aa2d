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

// Calls f(blk) for every visible (query chunk, key chunk) pair between this
// rank's queries and the block of `owner`.
template <class F>
void for_visible_blocks(int rank, int owner, int cp, int C, F&& f) {
  for (int qa = 0; qa < 2; ++qa)
    for (int kb = 0; kb < 2; ++kb) {
      const int qc = cp_chunk(rank, cp, qa), kc = cp_chunk(owner, cp, kb);
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

// The maps' outputs merged over every rank's keys; the caller combines them.
void cp_attention_forward(const LayerCtx& c, LayerActs& A) {
  const CpRing& R = *c.ring;
  const int maps = c.g.maps, cp = R.size, r = R.rank, C = int(c.T / 2);
  const int64_t B = c.B, T = c.T, dvw = c.g.dv;
  Communicator& ring = *R.comm;
  Tensor out[2], lse[2];
  attention_map_outputs(c, A, out, lse);
  for (int m = 0; m < maps; ++m) fill(lse[m], -std::numeric_limits<float>::infinity());
  Tensor k = A.k, v = A.v;
  for (int s = 0; s < cp; ++s) {
    const int owner = (r - s + cp) % cp;
    const int slot = s % 2;
    const bool pass = s + 1 < cp;
    if (pass) ring_hop_start(ring, {k, v}, {R.k[slot], R.v[slot]});  // pass the block on while attending to it
    for_visible_blocks(r, owner, cp, C, [&](const AttnBlock& blk) {
      attention_block_forward(maps, R.blk_out, R.blk_lse, A.q, k, v.view({B, T, c.g.kv, dvw}), blk);
      for (int m = 0; m < maps; ++m) attention_merge(out[m], lse[m], R.blk_out[m], R.blk_lse[m], blk.q0, blk.nq);
    });
    if (pass) {
      ring_hop_finish(ring, {R.k[slot], R.v[slot]});
      k = R.k[slot];
      v = R.v[slot];
    }
  }
}

void Transformer::cp_attention_backward(LayerActs& A, int l, Tensor d_att) {
  const LayerWeights& W = cw_.layers[l - l0_];
  LayerWeights& G = g_.layers[l - l0_];
  const bool diff = cfg_.attention == AttentionKind::Diff;
  const AttnGeometry& g = geom_;
  const int maps = g.maps, cp = par_.cp, r = par_.cp_rank, C = T_ / 2;
  const int64_t B = B_, T = T_;
  Communicator& ring = *par_.cp_comm;
  Tensor O[2], lse[2];
  attention_map_outputs(layer_ctx(l), A, O, lse);
  // Gradient of the merged attention output(s). λ stays on the op's device: the
  // combine backward adds the λ-vector gradients itself, and the block backward
  // scales map 2's gradient by −λ.
  // diff_v2: the combine's backward gives the gradient of the 2Hl heads' output and dλ.
  Tensor dO = d_att.view({B, T, g.out_heads, g.out_cols() / g.out_heads});
  const DiffLambda lam{W.lq1, W.lk1, W.lq2, W.lk2, float(ModelConfig::lambda_init(l))};
  if (diff) {
    diff_combine_backward(ring_.dpre, G.subln, {G.lq1, G.lk1, G.lq2, G.lk2}, dO, A.diff.o1, A.diff.o2, A.diff.rstd,
                          lam, W.subln);
    dO = ring_.dpre;
  } else if (cfg_.attention == AttentionKind::DiffV2) {
    diff_v2_combine_backward(ring_.dpre, dlam_, d_att, A.o, A.lam);
    dO = ring_.dpre;
  }
  fill_zero(dq_);
  Tensor k = A.k, v = A.v, dk = ring_.dk[1], dv = ring_.dv[1];
  fill_zero(dk);
  fill_zero(dv);
  for (int s = 0; s < cp; ++s) {
    const int owner = (r - s + cp) % cp;
    for_visible_blocks(r, owner, cp, C, [&](const AttnBlock& blk) {
      attention_block_backward(maps, dq_, dk, dv.view({B, T, g.kv, g.dv}), dO, &lam, O, lse, A.q, k,
                               v.view({B, T, g.kv, g.dv}), blk);
    });
    // Every block moves on with its gradient; after cp hops each is home.
    const int slot = s % 2;
    ring_hop_start(ring, {k, v, dk, dv}, {ring_.k[slot], ring_.v[slot], ring_.dk[slot], ring_.dv[slot]});
    ring_hop_finish(ring, {ring_.k[slot], ring_.v[slot], ring_.dk[slot], ring_.dv[slot]});
    k = ring_.k[slot], v = ring_.v[slot], dk = ring_.dk[slot], dv = ring_.dv[slot];
  }
  copy(dk_, dk);
  copy(dv_, dv);
}

}  // namespace dt
