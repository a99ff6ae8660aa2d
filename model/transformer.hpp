// The DIFF Transformer / baseline Transformer of DESIGN §2 on one process, with
// explicit forward and backward. Parameters, gradients and activations live in
// three arenas sized at construction; a step allocates nothing.
#pragma once
#include <string>
#include <vector>

#include "core/arena.hpp"
#include "kernels/ops.hpp"
#include "model/config.hpp"
#include "model/registry.hpp"

namespace dt {

struct LayerWeights {
  Tensor attn_norm, wq, wk, wv, wo;   // (D) (D,D) (2KVd,D) (2KVd,D) (D,D)
  Tensor lq1, lk1, lq2, lk2, subln;   // (d) ×4, (2d); diff attention only
  Tensor mlp_norm, w1, w2, w3;        // (D) (Fh,D) (D,Fh) (Fh,D)
};

struct Weights {
  Tensor embed;                       // (V,D)
  std::vector<LayerWeights> layers;
  Tensor final_norm;                  // (D)
  Tensor lm_head;                     // (V,D); the embedding when tied
};

// Saved forward state of one layer for micro-batch B, sequence T (N = B·T).
struct LayerActs {
  Tensor x;            // (N,D) layer input (residual stream)
  Tensor ln1, rstd1;   // (N,D), (N)
  Tensor q, k, v;      // (B,T,2H,d), (B,T,2KV,d), v (N,2KVd), after RoPE
  Tensor att;          // (N,D) attention output before Wo
  ops::DiffAttnCache diff;  // diff attention
  Tensor lse;          // (B,2H,T) standard attention
  Tensor xm;           // (N,D) residual after attention
  Tensor ln2, rstd2;   // (N,D), (N)
  Tensor h1, h3, act;  // (N,Fh)
};

class Transformer {
 public:
  Transformer(const ModelConfig& cfg, int micro_batch, int seq_len, Device dev = Device::cpu());

  // Seeded initialisation (DESIGN §2): element i of parameter `name` is drawn
  // from normal_at(seed, hash(name), i), so any layout gets the same weights.
  void init_weights(uint64_t seed);

  // Loss (mean cross-entropy over the B·T targets) for tokens (B,T) and targets (B,T).
  // With grad_scale ≠ 0 also runs the backward and accumulates into the gradients
  // grad_scale · d(sum of losses)/d params. Returns the sum of losses.
  double forward_backward(const int32_t* tokens, const int32_t* targets, float grad_scale);
  double forward(const int32_t* tokens, const int32_t* targets) { return forward_backward(tokens, targets, 0.f); }

  const ModelConfig& config() const { return cfg_; }
  const std::vector<ParamSpec>& registry() const { return registry_; }
  // Views into the arenas, in registry order.
  const std::vector<Tensor>& params() const { return params_; }
  const std::vector<Tensor>& grads() const { return grads_; }
  Tensor param(const std::string& name) const;
  Tensor grad(const std::string& name) const;
  Arena& param_arena() { return param_arena_; }
  Arena& grad_arena() { return grad_arena_; }
  void zero_grads() { grad_arena_.zero(); }
  const Weights& weights() const { return w_; }
  Tensor logits() const { return logits_; }  // (N,V); holds dlogits after a backward
  float lambda(int layer) const;              // current λ of a diff layer
  int micro_batch() const { return B_; }
  int seq_len() const { return T_; }
  size_t activation_bytes() const { return act_arena_.capacity(); }

 private:
  void build_params(Arena& a, std::vector<Tensor>& views, Weights& w);
  void build_acts(Arena& a);
  void attention_forward(int l);
  void attention_backward(int l, Tensor d_att);
  void backward(const int32_t* tokens);

  ModelConfig cfg_;
  int B_, T_;
  std::vector<ParamSpec> registry_;
  Arena param_arena_, grad_arena_, act_arena_;
  std::vector<Tensor> params_, grads_;
  Weights w_, g_;
  std::vector<LayerActs> acts_;
  Tensor x_final_, lnf_, rstdf_, logits_, losses_, tokens_, targets_, rope_;
  // Backward scratch, shared by all layers.
  Tensor dx_, dln_, dtmp_, dact_, dh1_, dh3_, dq_, dk_, dv_;
};

}  // namespace dt
