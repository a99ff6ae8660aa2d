// The MFU denominator of one GPU: NVIDIA's datasheet dense bf16 peak by device
// name, DIFFTRON_PEAK_TFLOPS, or the measured cuBLASLt GEMM rate (kernels/gemm_peak.hpp).
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/device.hpp"
#include "core/error.hpp"
#include "kernels/gemm_peak.hpp"

namespace dt {

namespace {

// "NVIDIA A100-SXM4-80GB" -> {"NVIDIA", "A100", "SXM4", "80GB"}: whole tokens,
// so "A1000" or "GH200" never match "A100" or "H200".
std::vector<std::string> name_tokens(std::string_view name) {
  std::vector<std::string> tokens(1);
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c))) tokens.back() += char(std::toupper(static_cast<unsigned char>(c)));
    else if (!tokens.back().empty()) tokens.emplace_back();
  }
  if (tokens.back().empty()) tokens.pop_back();
  return tokens;
}

bool has_token(const std::vector<std::string>& tokens, std::string_view t, bool prefix = false) {
  for (const std::string& s : tokens)
    if (prefix ? s.starts_with(t) : s == t) return true;
  return false;
}

std::string tflops_text(double t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", t);
  return buf;
}

}  // namespace

// Dense bf16 tensor-core peaks (TFLOP/s, fp32 accumulate) from NVIDIA's H100
// whitepaper / datasheets: H100 SXM5 989.4 (1978.9 with 2:4 sparsity), H100
// PCIe 756, H200 (SXM) the H100 SXM's compute, A100 312 (SXM4 and PCIe, 40 and
// 80 GB alike). NVL boards (H100 NVL, H200 NVL) run at other clocks and power
// and are left out, as is a bare "H100" that names no board; they and every
// other device fall back to the measured GEMM rate.
std::optional<DatasheetPeak> datasheet_bf16_peak(std::string_view device_name) {
  const std::vector<std::string> t = name_tokens(device_name);
  if (has_token(t, "MIG")) return std::nullopt;  // a MIG slice has a fraction of the SMs
  if (has_token(t, "NVL")) return std::nullopt;
  if (has_token(t, "H200")) return DatasheetPeak{989.4, "H200"};
  if (has_token(t, "H100")) {
    if (has_token(t, "PCIE")) return DatasheetPeak{756.0, "H100 PCIe"};
    if (has_token(t, "SXM", true) || has_token(t, "HBM3")) return DatasheetPeak{989.4, "H100 SXM"};
    return std::nullopt;
  }
  if (has_token(t, "A100")) return DatasheetPeak{312.0, "A100"};
  return std::nullopt;
}

GpuPeak resolve_gpu_peak(const std::string& device_name, const char* override_env,
                         const std::function<double()>& measure_gemm_tflops) {
  GpuPeak p;
  p.device_name = device_name;
  if (override_env) {
    char* end = nullptr;
    const double v = std::strtod(override_env, &end);
    if (end == override_env || *end != '\0' || !std::isfinite(v) || v <= 0)
      fail("DIFFTRON_PEAK_TFLOPS=", override_env, ": expected a positive number of TFLOP/s per GPU");
    p.tflops = v;
    p.source = "DIFFTRON_PEAK_TFLOPS";
    return p;
  }
  p.measured_gemm_tflops = measure_gemm_tflops();
  if (const auto d = datasheet_bf16_peak(device_name)) {
    p.tflops = d->tflops;
    p.source = "datasheet dense bf16, " + std::string(d->model);
  } else {
    p.tflops = p.measured_gemm_tflops;
    p.source = "measured cuBLASLt bf16 GEMM; '" + device_name + "' is not in the datasheet table";
  }
  return p;
}

std::string GpuPeak::describe() const {
  std::string s = tflops_text(tflops) + " TFLOP/s per GPU (" + source + ")";
  if (measured_gemm_tflops > 0) s += "; measured cuBLASLt bf16 GEMM " + tflops_text(measured_gemm_tflops) + " TFLOP/s";
  return s;
}

GpuPeak gpu_peak(int device, int gemm_n) {
  return resolve_gpu_peak(cuda_device_name(device), std::getenv("DIFFTRON_PEAK_TFLOPS"),
                          [&] { return measure_cuda_gemm_gflops(device, gemm_n) / 1e3; });
}

}  // namespace dt
