// The DIFF Transformer / baseline Transformer of DESIGN §2 with explicit
// forward and backward. One instance holds one rank's part of the model: a
// tensor-parallel shard (heads, kv heads, FFN rows and vocabulary rows split
// Megatron-style) of a pipeline stage (a contiguous range of layers, the
// embedding on the first stage, final norm and head on the last). With the
// default ModelParallel it is the whole model on one process.
//
// Parameters, gradients and activations live in arenas sized at construction;
// a step allocates nothing. On the CPU everything is f32. On a CUDA device
// (DESIGN §3) parameters and gradients stay f32 (the optimizer's master
// copy), activations are bf16, and the matrices are read by the GEMMs from a
// bf16 compute copy that sync_compute_weights() refreshes after each update.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "core/arena.hpp"
#include "kernels/ops.hpp"
#include "core/config.hpp"
#include "model/layer.hpp"
#include "model/registry.hpp"

namespace dt {

struct ModelParallel {
  Placement place;
  Communicator* tp_comm = nullptr;  // required when place.tp > 1
  // Context parallelism: this rank holds 2 of the 2·cp equal chunks of every
  // sequence (cp_chunk below).
  int cp_rank = 0, cp = 1;
  Communicator* cp_comm = nullptr;  // required when cp > 1
  int pad_multiple = 1;             // parameter/gradient arenas hold a multiple of this many floats (ZeRO-1 shards)
};

// Context parallelism splits every sequence into 2·cp equal chunks; cp rank r
// holds chunks r and 2·cp−1−r (an early and a late one, load-balanced under the
// causal mask) as its local rows [0, C) (half 0) and [C, 2C) (half 1).
inline int cp_chunk(int cp_rank, int cp, int half) { return half == 0 ? cp_rank : 2 * cp - 1 - cp_rank; }

struct Weights {
  Tensor embed;                       // (Vl,D), first stage
  std::vector<LayerWeights> layers;   // this stage's layers
  Tensor final_norm;                  // (D), last stage
  Tensor lm_head;                     // (Vl,D), last stage; the embedding when tied
};

// Per micro-batch in flight on this stage.
struct SlotActs {
  std::vector<LayerActs> layers;
  Tensor out;                    // (N,D) the stage output (next stage's input, or the final residual)
  Tensor tokens, targets;        // (N) i32
  Tensor lnf, rstdf, logits;     // last stage: (N,D), (N), (N,Vl) logits, then dlogits
  Tensor losses, rowmax, sumexp, target_logit;  // (N)
};

class Transformer {
 public:
  Transformer(const ModelConfig& cfg, int micro_batch, int seq_len, const ModelParallel& par = {},
              int act_slots = 1, Device dev = Device::cpu());

  // Seeded initialisation (DESIGN §2): global element i of parameter `name` is
  // normal_at(seed, hash(name), i) · std, so every layout gets the same weights.
  void init_weights(uint64_t seed);

  // Whole model on one stage: loss sum over the B·T targets; with grad_scale ≠ 0
  // also the backward, accumulating grad_scale · d(loss sum)/d params.
  double forward_backward(const int32_t* tokens, const int32_t* targets, float grad_scale);
  double forward(const int32_t* tokens, const int32_t* targets) { return forward_backward(tokens, targets, 0.f); }

  // Pipeline stage API. The first stage embeds `tokens`; other stages read
  // input_act(slot), received from the previous stage. The last stage computes
  // the loss sum and, with grad_scale ≠ 0, dlogits. The loss sum is returned,
  // or, given loss_sum (f64 (1) on the model's device), added to it without
  // waiting for the device (the training step reads it once per step).
  // tokens and targets are host arrays, copied to the device asynchronously:
  // from pinned memory (host_pinned_alloc) they must stay unchanged until the
  // device has run the step. backward_stage starts from the dlogits on the last
  // stage, else from grad_in().
  double forward_stage(int slot, const int32_t* tokens, const int32_t* targets, float grad_scale,
                       Tensor loss_sum = {});
  void backward_stage(int slot);
  Tensor input_act(int slot) const;
  Tensor output_act(int slot) const { return slots_[slot].out; }
  Tensor grad_in() const { return dout_; }  // gradient of output_act, received from the next stage
  Tensor grad_out() const { return dx_; }   // gradient of input_act after backward_stage

  // λ vectors and g_sub see only local heads: sum their gradients over tp.
  // Call once per optimizer step, after every micro-batch's backward.
  void reduce_tp_replicated_grads();

  const ModelConfig& config() const { return cfg_; }
  const ModelParallel& parallel() const { return par_; }
  // The parameters this rank holds (global shapes), and their local slices and views.
  const std::vector<ParamSpec>& registry() const { return local_specs_; }
  const std::vector<TpSlice>& slices() const { return slices_; }
  const std::vector<Tensor>& params() const { return params_; }
  const std::vector<Tensor>& grads() const { return grads_; }
  Tensor param(const std::string& name) const;
  Tensor grad(const std::string& name) const;
  Arena& param_arena() { return param_arena_; }
  Arena& grad_arena() { return grad_arena_; }
  // The whole arenas as flat f32 tensors (gaps between parameters stay zero).
  Tensor flat_params() {
    return Tensor(param_arena_.base(), DType::F32, {int64_t(param_arena_.capacity() / 4)}, param_arena_.device());
  }
  Tensor flat_grads() {
    return Tensor(grad_arena_.base(), DType::F32, {int64_t(grad_arena_.capacity() / 4)}, grad_arena_.device());
  }
  void zero_grads() { grad_arena_.zero(); }
  const Weights& weights() const { return w_; }
  // Refreshes the compute copy of the weights from the f32 parameters (a no-op
  // on the CPU, where they are the same tensors). Call after every change to
  // params(): optimizer step, checkpoint load.
  void sync_compute_weights();
  DType activation_dtype() const { return act_; }
  Device device() const { return param_arena_.device(); }
  // Offset (in floats of flat_params/flat_grads) where layer l's parameters
  // begin; layers are laid out in order after the embedding.
  int64_t layer_param_offset(int layer) const;
  // λ vectors and g_sub of one layer summed over tp (the per-layer form of
  // reduce_tp_replicated_grads, for a reduction overlapped with the backward).
  void reduce_tp_replicated_grads(int layer);
  // Called by backward_stage after each layer's gradients are complete
  // (with the layer index, last layer first) and after the embedding's (with
  // −1); set it for the last backward of a step to overlap the gradient
  // reduction with the rest of the backward, clear it with {}.
  void set_grads_ready_hook(std::function<void(int)> hook) { grads_ready_ = std::move(hook); }
  Tensor logits(int slot = 0) const { return slots_[slot].logits; }  // (N,Vl); dlogits after a backward
  Tensor losses(int slot = 0) const { return slots_[slot].losses; }  // (N) per-token loss of the last forward
  float lambda(int layer) const;  // current λ of a diff layer this stage holds (global index)
  // The same λ into out (f32 (1) on the model's device), without a host wait.
  void lambda_into(int layer, Tensor out) const;
  int micro_batch() const { return B_; }
  int seq_len() const { return T_; }  // local: the global sequence length / cp
  int first_layer() const { return l0_; }
  int last_layer() const { return l1_; }
  bool has_embed() const { return par_.place.pp_stage == 0; }
  bool has_head() const { return par_.place.pp_stage == par_.place.pp - 1; }
  size_t activation_bytes() const { return act_arena_.capacity(); }

 private:
  void build_params(Arena& a, std::vector<Tensor>& views, Weights& w);
  void build_acts(Arena& a);
  // What layer l's forward (model/layer.hpp) needs besides weights and buffers.
  LayerCtx layer_ctx(int l) const;
  void attention_backward(SlotActs& S, int l, Tensor d_att);
  // Context-parallel attention backward: K/V blocks and their gradients travel
  // around the cp ring (model/context_parallel_attention.cpp).
  void cp_attention_backward(LayerActs& A, int l, Tensor d_att);
  // Rebuilds what model.recompute dropped for layer l, before its backward.
  void recompute_layer(SlotActs& S, int l);
  double loss_forward(SlotActs& S, float grad_scale, Tensor loss_sum);

  void build_compute_weights(Arena& a);

  ModelConfig cfg_;
  ModelParallel par_;
  TensorParallel tp_;
  AttnGeometry geom_;
  DType act_ = DType::F32;  // activations: f32 on the CPU, bf16 on CUDA
  int B_, T_, nslots_, l0_, l1_;
  int64_t Fl_, Vl_, v0_;
  std::vector<ParamSpec> local_specs_;
  std::vector<TpSlice> slices_;
  Arena param_arena_, grad_arena_, act_arena_, compute_arena_;
  std::vector<Tensor> params_, grads_;
  Weights w_, g_;
  Weights cw_;  // what the forward and backward read: w_ on the CPU, bf16 matrices on CUDA
  std::vector<std::pair<Tensor, Tensor>> compute_copies_;  // CUDA: (bf16 copy in cw_, f32 master) per matrix
  std::function<void(int)> grads_ready_;
  std::vector<SlotActs> slots_;
  LayerActs work_;  // buffers the backward recomputes into (model.recompute)
  Tensor rope_;
  CpRing ring_;  // context-parallel ring buffers (cp > 1)
  // Backward scratch, shared by all layers and slots.
  Tensor dx_, dout_, dln_, dtmp_, dact_, dh1_, dh3_, dq_, dk_, dv_;
  Tensor d_o_, dlam_;  // diff_v2: d loss/d(attention output) (B,T,2Hl,d) and /dλ (N,Hl)
};

}  // namespace dt
