// Helpers shared by tests: scratch directories, error messages, real-text shards,
// and device tensors for the CUDA op tests.
#pragma once
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/device.hpp"
#include "core/error.hpp"
#include "core/tensor.hpp"
#include "data/dataset_manifest.hpp"
#include "data/shard_writer.hpp"
#include "data/tokenizer.hpp"
#include "kernels/ops.hpp"
#include "tests/unit/reference_ops.hpp"

namespace dt_test {

// A fresh directory under ::testing::TempDir(), removed at the end of the test.
struct ScratchDir {
  std::string path;
  ScratchDir() {
    std::string tmpl = ::testing::TempDir() + "/dt_test_XXXXXX";
    path = mkdtemp(tmpl.data());
  }
  ~ScratchDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

// The message of the dt::Error f throws, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const dt::Error& e) {
    return e.what();
  }
  return "(no error)";
}

// One byte-tokenized shard of the Debian licence texts (real English prose,
// present on every Debian machine) at dir/shard_00000.h5, with the dataset
// manifest that makes dir a complete dataset. Returns the unigram
// entropy (nats) of the tokens written: the loss of a model that ignores context.
inline double write_licence_shard(const std::string& dir) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  auto tok = dt::make_tokenizer("byte");
  dt::ShardWriter w(dir + "/shard_00000.h5", tok->name(), tok->vocab_size(), tok->eos_id());
  std::vector<double> counts(size_t(tok->vocab_size()), 0.0);
  double total = 0;
  for (const auto& e : fs::directory_iterator("/usr/share/common-licenses")) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    const std::vector<int32_t> ids = tok->encode(ss.str());
    w.add_document(ids);
    for (int32_t id : ids) counts[size_t(id)] += 1;
    counts[size_t(tok->eos_id())] += 1;
    total += double(ids.size() + 1);
  }
  w.close();
  dt::write_dataset_manifest(dir);
  double entropy = 0;
  for (double c : counts)
    if (c > 0) entropy -= c / total * std::log(c / total);
  return entropy;
}

// ---- CUDA op tests (tests/unit/test_cuda_*.cpp) ------------------------------------
// Every CUDA op is checked against the CPU backend (DESIGN §3) on the same inputs:
// values are drawn in fp32 and rounded to bf16 on the host wherever the CUDA op
// reads bf16, and the CPU reference runs on those rounded values, so a comparison
// sees only the CUDA op's own error.

// Skips the calling test unless this build has CUDA and sees a GPU (DESIGN §3:
// any cudaGetDeviceCount failure counts as no GPU).
#define DT_SKIP_WITHOUT_CUDA_GPU()                                                                    \
  do {                                                                                                \
    if (!::dt::cuda_built())                                                                          \
      GTEST_SKIP() << "no CUDA GPU visible: built without CUDA (DIFFTRON_CUDA=OFF or no nvcc found)"; \
    if (::dt::cuda_device_count() == 0)                                                               \
      GTEST_SKIP() << "no CUDA GPU visible: cudaGetDeviceCount failed or returned 0";                 \
  } while (0)

// bf16 bits of x rounded to nearest even (overflow goes to ±inf, NaN stays NaN).
inline uint16_t bf16_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
inline float bf16_to_float(uint16_t b) {
  const uint32_t u = uint32_t(b) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}
// x as the CUDA op will read it from a tensor of dtype t.
inline std::vector<float> rounded_to(std::vector<float> x, dt::DType t) {
  if (t == dt::DType::BF16)
    for (float& e : x) e = bf16_to_float(bf16_bits(e));
  return x;
}
// n values ~ N(mean, sd²) as a tensor of dtype t holds them.
inline std::vector<float> rand_as(dt::DType t, int64_t n, std::mt19937& rng, double sd = 1.0, double mean = 0.0) {
  return rounded_to(dt::reftest::randn(size_t(n), rng, sd, mean), t);
}

// Any tensor's values as fp32 on the host (f32 and bf16 exactly; i32 converted).
inline std::vector<float> to_host(const dt::Tensor& t) {
  const int64_t n = t.numel();
  std::vector<float> out(size_t(n), 0.f);
  if (t.dtype == dt::DType::F32) {
    dt::ops::copy(dt::Tensor(out.data(), dt::DType::F32, {n}), t);
  } else if (t.dtype == dt::DType::BF16) {
    std::vector<uint16_t> bits(static_cast<size_t>(n));
    dt::ops::copy(dt::Tensor(bits.data(), dt::DType::BF16, {n}), t);
    std::transform(bits.begin(), bits.end(), out.begin(), bf16_to_float);
  } else {
    std::vector<int32_t> ints(static_cast<size_t>(n));
    dt::ops::copy(dt::Tensor(ints.data(), dt::DType::I32, {n}), t);
    std::copy(ints.begin(), ints.end(), out.begin());
  }
  return out;
}

// A tensor on CUDA device 0 owning its memory; converts to dt::Tensor for the ops.
class GpuTensor {
 public:
  GpuTensor(dt::DType dtype, std::initializer_list<int64_t> dims) : t_(nullptr, dtype, dims, dt::Device::cuda(0)) {
    t_.ptr = dt::device_alloc(t_.device, t_.bytes());
  }
  // Allocated and filled with x (converted to the dtype on the host: bf16 rounds to
  // nearest even, so values already passed through rounded_to arrive exactly).
  GpuTensor(dt::DType dtype, std::initializer_list<int64_t> dims, const std::vector<float>& x)
      : GpuTensor(dtype, dims) {
    upload(x);
  }
  ~GpuTensor() { dt::device_free(t_.device, t_.ptr); }
  GpuTensor(const GpuTensor&) = delete;
  GpuTensor& operator=(const GpuTensor&) = delete;

  operator dt::Tensor() const { return t_; }
  const dt::Tensor& tensor() const { return t_; }

  void upload(const std::vector<float>& x) {
    DT_CHECK(int64_t(x.size()) == t_.numel(), "upload of ", x.size(), " values into ", t_.shape_str());
    const int64_t n = t_.numel();
    if (t_.dtype == dt::DType::BF16) {
      std::vector<uint16_t> bits(x.size());
      std::transform(x.begin(), x.end(), bits.begin(), bf16_bits);
      dt::ops::copy(t_, dt::Tensor(bits.data(), dt::DType::BF16, {n}));
    } else {
      DT_CHECK(t_.dtype == dt::DType::F32, "upload a float vector into an i32 tensor with upload_i32");
      dt::ops::copy(t_, dt::Tensor(const_cast<float*>(x.data()), dt::DType::F32, {n}));
    }
  }
  void upload_i32(const std::vector<int32_t>& x) {
    DT_CHECK(t_.dtype == dt::DType::I32 && int64_t(x.size()) == t_.numel());
    dt::ops::copy(t_, dt::Tensor(const_cast<int32_t*>(x.data()), dt::DType::I32, {t_.numel()}));
  }
  // Every byte 0xFF: a NaN both as f32 and as bf16, so an output element the kernel
  // forgets to write fails any comparison.
  void poison() {
    std::vector<unsigned char> bytes(t_.bytes(), 0xFF);
    dt::device_copy(t_.ptr, t_.device, bytes.data(), dt::Device::cpu(), bytes.size());
  }
  std::vector<float> download() const { return to_host(t_); }

 private:
  dt::Tensor t_;
};

inline double max_abs(const std::vector<float>& x) {
  double m = 0;
  for (float e : x) m = std::max(m, double(std::fabs(e)));
  return m;
}

// Every |got[i] − want[i]| <= atol + rtol·|want[i]| (equal infinities pass, NaN
// fails); the message names the worst element relative to its bound.
inline ::testing::AssertionResult near_all(const std::vector<float>& got, const std::vector<float>& want, double atol,
                                           double rtol, const std::string& what) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << what << ": " << got.size() << " values, expected " << want.size();
  double worst = 1.0;  // largest error / bound above 1; NaN and infinite errors count as infinite
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] == want[i]) continue;
    const double err = std::fabs(double(got[i]) - double(want[i]));
    const double bound = atol + rtol * std::fabs(double(want[i]));
    const double ratio = std::isfinite(err) && bound > 0 ? err / bound : HUGE_VAL;
    if (ratio > worst) worst = ratio, at = i;
  }
  if (worst <= 1.0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": element " << at << " got " << got[at] << ", want " << want[at]
                                       << ", error " << std::fabs(double(got[at]) - double(want[at])) << " > atol "
                                       << atol << " + rtol " << rtol << "·|want|";
}

// A tolerance as (atol relative to the reference's largest |value|, rtol).
struct Tol {
  double atol, rtol;
};
// An elementwise op or a short fp32 reduction, stored in dtype t. bf16: one rounding
// to nearest even, relative error <= 2^-8 ≈ 3.9e-3; rtol 2e-2 allows a few ulps,
// and atol 1e-3 of the scale covers results that cancel to near zero. f32: a few
// fp32 roundoffs (6e-8 each) and a different summation order: 1e-5.
inline Tol elementwise(dt::DType t) { return t == dt::DType::BF16 ? Tol{1e-3, 2e-2} : Tol{1e-5, 1e-5}; }
inline ::testing::AssertionResult close_to(const std::vector<float>& got, const std::vector<float>& want, Tol tol,
                                           const std::string& what) {
  return near_all(got, want, tol.atol * max_abs(want), tol.rtol, what);
}

// A CPU f32 tensor over a host vector: the CPU side of a CUDA comparison.
inline dt::Tensor host(std::vector<float>& x, std::initializer_list<int64_t> dims) {
  return dt::cpu_f32(x.data(), dims);
}

// The four λ vectors of a differential layer (d each, ~N(0, sd²): DESIGN §2's init
// is sd 0.1) on the host and on the GPU, and the ops' views of both.
struct LambdaVectors {
  int64_t d;
  std::vector<float> v[4];
  GpuTensor g[4];
  float lambda_init;
  LambdaVectors(int64_t d_, float lambda_init_, std::mt19937& rng, double sd = 0.1)
      : d(d_),
        v{dt::reftest::randn(size_t(d_), rng, sd), dt::reftest::randn(size_t(d_), rng, sd),
          dt::reftest::randn(size_t(d_), rng, sd), dt::reftest::randn(size_t(d_), rng, sd)},
        g{{dt::DType::F32, {d_}, v[0]}, {dt::DType::F32, {d_}, v[1]}, {dt::DType::F32, {d_}, v[2]},
          {dt::DType::F32, {d_}, v[3]}},
        lambda_init(lambda_init_) {}
  dt::ops::DiffLambda cpu() { return {host(v[0], {d}), host(v[1], {d}), host(v[2], {d}), host(v[3], {d}), lambda_init}; }
  dt::ops::DiffLambda gpu() const { return {g[0], g[1], g[2], g[3], lambda_init}; }
};

// ---- tolerances of the CUDA attention kernels (test_cuda_attention.cpp,
// test_cuda_context_parallel.cpp) against the CPU on the same bf16-rounded inputs.
// Forward out (bf16): a flash kernel rounds its probabilities to bf16 for the P·V
// product and rounds the output once, both 2^-8 ≈ 3.9e-3 relative; P's rounding
// errors are independent per key, so the error stays a few 2^-8 of the output scale:
// atol 1e-2 of max|out|, rtol 2e-2. lse (f32): scores from exact bf16 products summed
// in fp32 over d terms, then an fp32 log-sum-exp: 1e-4·(1 + max|lse|).
constexpr Tol kAttnOut{1e-2, 2e-2};
constexpr double kAttnLse = 1e-4;

// Backward (bf16 dq, dk, dv): sums over up to T rows of products whose factors P and
// dS = P∘(dP − D) are rounded to bf16 for the tensor cores. Random-sign rounding
// errors grow like √T, as the sums themselves do, so the relative error stays a few
// 2^-8: atol 1e-2 of each gradient's scale (of its increment for "+=" outputs, whose
// values before the op are `before`), rtol 2e-2, and a floor of 1e-4 for T = 1,
// where dq and dk are zero up to roundoff.
inline ::testing::AssertionResult attn_grad_close(const std::vector<float>& got, const std::vector<float>& want,
                                                  const std::vector<float>& before, const std::string& what) {
  double scale = 0;
  for (size_t i = 0; i < want.size(); ++i)
    scale = std::max(scale, std::fabs(double(want[i]) - (before.empty() ? 0.0 : double(before[i]))));
  return near_all(got, want, 1e-2 * scale + 1e-4, 2e-2, what);
}

// Equal bit for bit (NaN payloads included): the determinism tests' criterion.
inline ::testing::AssertionResult bit_identical(const std::vector<float>& a, const std::vector<float>& b,
                                                const std::string& what) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << what << ": sizes differ";
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0)
      return ::testing::AssertionFailure() << what << ": element " << i << " is " << a[i] << " in one run and "
                                           << b[i] << " in the other";
  return ::testing::AssertionSuccess();
}

// ‖got − want‖ / ‖want‖ (Euclidean norms over the whole tensor).
inline double rel_l2(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double e = double(got[i]) - double(want[i]);
    num += e * e;
    den += double(want[i]) * double(want[i]);
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

}  // namespace dt_test
