// The machine's GEMM peak as difftron reports MFU against it. CPU: the
// single-thread OpenBLAS SGEMM rate at n³ times the number of cores used.
// CUDA: the device's datasheet dense bf16 tensor-core peak where the device is
// in the table below, else the measured cuBLASLt bf16 GEMM rate (labelled as
// such); DIFFTRON_PEAK_TFLOPS overrides both.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace dt {

// GFLOP/s of one thread running an n×n×n SGEMM (best of `reps` after a warm-up).
double measure_sgemm_gflops_one_thread(int n, int reps);

// GFLOP/s of cuBLASLt bf16 n×n×n GEMMs on one GPU (fails without CUDA).
double measure_cuda_gemm_gflops(int device, int n);

// A dense (no 2:4 sparsity) bf16 tensor-core peak from NVIDIA's datasheets.
struct DatasheetPeak {
  double tflops;
  std::string_view model;  // "H100 SXM", "H100 PCIe", "H200", "A100"
};

// The datasheet peak of a GPU named as cudaGetDeviceProperties names it
// ("NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", "NVIDIA H200",
// "NVIDIA A100-SXM4-80GB", ...); nullopt for a device not in the table, a MIG
// slice, or a name that does not say which board it is. A pure function.
std::optional<DatasheetPeak> datasheet_bf16_peak(std::string_view device_name);

// One GPU's MFU denominator and where it came from.
struct GpuPeak {
  std::string device_name;
  double tflops = 0;                // the MFU denominator, per GPU
  std::string source;               // "datasheet dense bf16 (H100 SXM)", "DIFFTRON_PEAK_TFLOPS", "measured ..."
  double measured_gemm_tflops = 0;  // cuBLASLt bf16 GEMM at n³; 0 when not measured (the override is set)
  std::string describe() const;     // one line for logs: "989.4 TFLOP/s (datasheet ...); measured GEMM 712.3 TFLOP/s"
};

// Resolves the denominator in this order: DIFFTRON_PEAK_TFLOPS (TFLOP/s per GPU;
// the GEMM is then not measured), the datasheet table, the measured GEMM rate.
// Fails without CUDA or without the device.
GpuPeak gpu_peak(int device, int gemm_n = 8192);

// gpu_peak without the GPU, for tests: `override_env` is DIFFTRON_PEAK_TFLOPS's
// value (or null) and `measure_gemm_tflops` is called only when no override is set.
GpuPeak resolve_gpu_peak(const std::string& device_name, const char* override_env,
                         const std::function<double()>& measure_gemm_tflops);

}  // namespace dt
