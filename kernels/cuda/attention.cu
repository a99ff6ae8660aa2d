// Standard attention and the context-parallel building blocks on CUDA
// (kernels/ops.hpp), all on the flash kernels of flash_attention.cuh: the
// single-rank ops are the block case q0 = k0 = 0, nq = nk = T, causal.
#include "kernels/cuda/flash_attention.cuh"

namespace dt::cuda_ops {

namespace {

using flash::bf16;

// The flash backward reads its per-map output-gradient scale from the device
// (so the differential path passes −λ without visiting the host). One map's
// {1, 0} is stored by a one-thread kernel, not a memcpy, so nothing waits.
__global__ void set_dscale_kernel(flash::DeviceScalars* s, float d0, float d1) {
  s->dscale[0] = d0;
  s->dscale[1] = d1;
}

// {1, 0} for one map; {1, −λ} for two, λ from lam computed on the device.
const float* device_dscale(int maps, const ops::DiffLambda* lam, const char* op) {
  flash::DeviceScalars* s = flash::device_scalars();
  if (maps == 2) {
    DT_CHECK(lam, op, ": the differential maps need λ (lam is null)");
    flash::store_lambda(*lam, s, op);
  } else {
    DT_LAUNCH(set_dscale_kernel, 1, 1, 0, s, 1.f, 0.f);
  }
  return s->dscale;  // a device address; nothing is read on the host
}

bf16* bf16_out(const Tensor& t, const char* op, const char* what) {
  require_dtype(t, DType::BF16, op, what);
  return static_cast<bf16*>(t.ptr);
}

// Merges a block result into the running (out, lse) by log-sum-exp; one warp
// per (b, h, t) of rows t ∈ [q0, q0+nq). out, blk_out (B,T,H,dv); lse, blk_lse (B,H,T).
__global__ void merge_kernel(FBuf out, float* lse, FBuf blk_out, const float* blk_lse, int B, int T, int H, int dv,
                             int q0, int nq) {
  const int64_t row = int64_t(blockIdx.x) * flash::kWarps + threadIdx.x / 32;  // (b·H + h)·nq + (t − q0)
  const int lane = threadIdx.x % 32;
  if (row >= int64_t(B) * H * nq) return;
  const int64_t t = q0 + row % nq, h = row / nq % H, b = row / (int64_t(nq) * H);
  const int64_t li = (b * H + h) * T + t, orow = ((b * T + t) * H + h) * dv;
  const float la = lse[li], lb = blk_lse[li];
  if (lb == -INFINITY) return;  // the block saw no key for this row
  float wa = 0.f, wb = 1.f, lnew = lb;  // an empty running row takes the block's
  if (la != -INFINITY) {
    const float mx = fmaxf(la, lb);
    lnew = mx + logf(expf(la - mx) + expf(lb - mx));
    wa = expf(la - lnew), wb = expf(lb - lnew);
  }
  for (int c = lane; c < dv; c += 32)
    out.st(orow + c, (la == -INFINITY ? 0.f : out.ld(orow + c) * wa) + blk_out.ld(orow + c) * wb);
  __syncwarp();  // every lane has read lse[li]
  if (lane == 0) lse[li] = lnew;
}

}  // namespace

// q (B,T,Hq,d), k (B,T,Hkv,d), v (B,T,Hkv,d); out (B,T,Hq,d) BF16; lse (B,Hq,T) F32
void attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v) {
  const char* op = "attention_forward";
  const int T = int(q.dim(1));
  DT_CHECK(k.dim(1) == T, op, ": q ", q.shape_str(), " k ", k.shape_str());
  const flash::Problem p = flash::problem_of(1, q, k, v, {0, T, 0, T, true}, op);
  bf16_out(out, op, "out");
  require_dtype(lse, DType::F32, op, "lse");
  DT_CHECK(out.numel() == int64_t(p.B) * T * p.heads * p.d && lse.numel() == int64_t(p.B) * p.heads * T, op,
           ": out ", out.shape_str(), " lse ", lse.shape_str());
  flash::ForwardOut o{{fbuf(out, op), {}}, {lse.f32(), nullptr}};
  flash::forward(p, o);
}

// dq, dk, dv overwritten (BF16); dout, out BF16; lse F32
void attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v, Tensor out,
                        Tensor lse) {
  const char* op = "attention_backward";
  const int T = int(q.dim(1));
  DT_CHECK(k.dim(1) == T, op, ": q ", q.shape_str(), " k ", k.shape_str());
  const flash::Problem p = flash::problem_of(1, q, k, v, {0, T, 0, T, true}, op);
  bf16_out(dout, op, "dout");
  bf16_out(out, op, "out");
  require_dtype(lse, DType::F32, op, "lse");
  DT_CHECK(dq.numel() == q.numel() && dk.numel() == k.numel() && dv.numel() == v.numel(), op, ": gradient shapes");
  DT_CHECK(out.numel() == int64_t(p.B) * T * p.heads * p.d && dout.numel() == out.numel() &&
               lse.numel() == int64_t(p.B) * p.heads * T,
           op, ": out ", out.shape_str(), " dout ", dout.shape_str(), " lse ", lse.shape_str());
  flash::BackwardIo io{};
  io.dO = fbuf(dout, op);
  io.O[0] = fbuf(out, op);
  io.lse[0] = lse.f32();
  io.dscale = device_dscale(1, nullptr, op);
  io.dq = bf16_out(dq, op, "dq");
  io.dk = bf16_out(dk, op, "dk");
  io.dv = bf16_out(dv, op, "dv");
  io.accumulate = false;
  flash::backward(p, io);
}

// out[m] (B,Tq,heads,dv) F32 or BF16, block rows overwritten; lse[m] (B,heads,Tq) F32
void attention_block_forward(int maps, const Tensor out[2], const Tensor lse[2], Tensor q, Tensor k, Tensor v,
                             const ops::AttnBlock& blk) {
  const char* op = "attention_block_forward";
  const flash::Problem p = flash::problem_of(maps, q, k, v, blk, op);
  flash::ForwardOut o{};
  for (int m = 0; m < maps; ++m) {
    require_dtype(lse[m], DType::F32, op, "lse");
    DT_CHECK(out[m].numel() == int64_t(p.B) * p.Tq * p.heads * maps * p.d &&
                 lse[m].numel() == int64_t(p.B) * p.heads * p.Tq,
             op, ": out ", out[m].shape_str(), " lse ", lse[m].shape_str());
    o.out[m] = fbuf(out[m], op);
    o.lse[m] = lse[m].f32();
  }
  flash::forward(p, o);
}

// dq, dk, dv (BF16) += this block's part; dO, O[m] (B,Tq,heads,dv) F32 or BF16; lse[m] F32
void attention_block_backward(int maps, Tensor dq, Tensor dk, Tensor dv, Tensor dO, const ops::DiffLambda* lam,
                              const Tensor O[2], const Tensor lse[2], Tensor q, Tensor k, Tensor v,
                              const ops::AttnBlock& blk) {
  const char* op = "attention_block_backward";
  const flash::Problem p = flash::problem_of(maps, q, k, v, blk, op);
  const int64_t out_numel = int64_t(p.B) * p.Tq * p.heads * maps * p.d;
  DT_CHECK(dq.numel() == q.numel() && dk.numel() == k.numel() && dv.numel() == v.numel(), op, ": gradient shapes");
  DT_CHECK(dO.numel() == out_numel, op, ": dO ", dO.shape_str());
  flash::BackwardIo io{};
  io.dO = fbuf(dO, op);
  for (int m = 0; m < maps; ++m) {
    require_dtype(lse[m], DType::F32, op, "lse");
    DT_CHECK(O[m].numel() == out_numel && lse[m].numel() == int64_t(p.B) * p.heads * p.Tq, op, ": O ",
             O[m].shape_str(), " lse ", lse[m].shape_str());
    io.O[m] = fbuf(O[m], op);
    io.lse[m] = lse[m].f32();
  }
  io.dscale = device_dscale(maps, lam, op);
  io.dq = bf16_out(dq, op, "dq");
  io.dk = bf16_out(dk, op, "dk");
  io.dv = bf16_out(dv, op, "dv");
  io.accumulate = true;
  flash::backward(p, io);
}

// out, blk_out (B,T,H,dv) F32 or BF16; lse, blk_lse (B,H,T) F32; rows [q0, q0+nq)
void attention_merge(Tensor out, Tensor lse, Tensor blk_out, Tensor blk_lse, int q0, int nq) {
  const char* op = "attention_merge";
  DT_CHECK(out.ndim == 4, op, ": out ", out.shape_str(), " expected (B,T,H,dv)");
  const int B = int(out.dim(0)), T = int(out.dim(1)), H = int(out.dim(2)), dv = int(out.dim(3));
  require_dtype(lse, DType::F32, op, "lse");
  require_dtype(blk_lse, DType::F32, op, "blk_lse");
  DT_CHECK(blk_out.numel() == out.numel() && lse.numel() == int64_t(B) * H * T && blk_lse.numel() == lse.numel(),
           op, ": out ", out.shape_str(), " lse ", lse.shape_str(), " blk_out ", blk_out.shape_str(), " blk_lse ",
           blk_lse.shape_str());
  DT_CHECK(q0 >= 0 && nq >= 0 && q0 + nq <= T, op, ": rows [", q0, ",", q0 + nq, ") of ", T);
  const int64_t rows = int64_t(B) * H * nq;
  if (rows == 0) return;
  DT_LAUNCH(merge_kernel, blocks_for(rows, flash::kWarps), flash::kThreads, 0, fbuf(out, op), lse.f32(),
            fbuf(blk_out, op), blk_lse.f32(), B, T, H, dv, q0, nq);
}

}  // namespace dt::cuda_ops
