// The GPU MFU denominator (kernels/gemm_peak.hpp): datasheet peaks by device name,
// the DIFFTRON_PEAK_TFLOPS override, and the measured GEMM rate as the labelled
// fallback. Pure functions of strings, so they run on the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "core/device.hpp"
#include "core/error.hpp"
#include "kernels/gemm_peak.hpp"
#include "test_util.hpp"

namespace dt {
namespace {

double peak_of(const char* name) {
  const auto p = datasheet_bf16_peak(name);
  return p ? p->tflops : -1.0;
}

// The names below are what cudaGetDeviceProperties (and nvidia-smi) print for each board.
TEST(DatasheetPeak, HopperSxmAndH200Are989TflopsDense) {
  EXPECT_EQ(peak_of("NVIDIA H100 80GB HBM3"), 989.4);  // H100 SXM5
  EXPECT_EQ(peak_of("NVIDIA H100 SXM5 80GB"), 989.4);
  EXPECT_EQ(peak_of("NVIDIA H200"), 989.4);
  EXPECT_EQ(peak_of("nvidia h200"), 989.4);  // case does not matter
  EXPECT_EQ(datasheet_bf16_peak("NVIDIA H100 80GB HBM3")->model, "H100 SXM");
}

TEST(DatasheetPeak, H100PcieIs756AndA100Is312InEveryFormFactor) {
  EXPECT_EQ(peak_of("NVIDIA H100 PCIe"), 756.0);
  EXPECT_EQ(peak_of("NVIDIA A100-SXM4-80GB"), 312.0);
  EXPECT_EQ(peak_of("NVIDIA A100-SXM4-40GB"), 312.0);
  EXPECT_EQ(peak_of("NVIDIA A100 80GB PCIe"), 312.0);
  EXPECT_EQ(peak_of("NVIDIA A100-PCIE-40GB"), 312.0);
}

// Unknown means "use the measured rate": better than a wrong datasheet figure.
TEST(DatasheetPeak, UnknownBoardsMigSlicesAndLookalikeNamesHaveNoPeak) {
  for (const char* name : {"NVIDIA H100 NVL", "NVIDIA H200 NVL",  // other clocks and power
                            "NVIDIA H100",                         // which board?
                            "NVIDIA H100 80GB HBM3 MIG 3g.40gb",   // a slice of the SMs
                            "NVIDIA GH200 480GB", "NVIDIA RTX A1000", "NVIDIA A100X", "Tesla V100-SXM2-16GB",
                            "NVIDIA L40S", "difftron CUDA emulation", ""})
    EXPECT_FALSE(datasheet_bf16_peak(name).has_value()) << name;
}

double fake_gemm() { return 700.0; }

TEST(GpuPeak, KnownDeviceUsesTheDatasheetAndReportsTheMeasuredGemmBesideIt) {
  const GpuPeak p = resolve_gpu_peak("NVIDIA H200", nullptr, fake_gemm);
  EXPECT_EQ(p.tflops, 989.4);
  EXPECT_EQ(p.measured_gemm_tflops, 700.0);
  EXPECT_NE(p.source.find("datasheet"), std::string::npos) << p.source;
  EXPECT_NE(p.describe().find("measured cuBLASLt bf16 GEMM 700.0 TFLOP/s"), std::string::npos) << p.describe();
}

TEST(GpuPeak, UnknownDeviceUsesTheMeasuredGemmLabelledAsMeasured) {
  const GpuPeak p = resolve_gpu_peak("NVIDIA L40S", nullptr, fake_gemm);
  EXPECT_EQ(p.tflops, 700.0);
  EXPECT_NE(p.source.find("measured"), std::string::npos) << p.source;
  EXPECT_NE(p.source.find("NVIDIA L40S"), std::string::npos) << p.source;
}

TEST(GpuPeak, OverrideWinsAndSkipsTheMeasurement) {
  bool measured = false;
  const GpuPeak p = resolve_gpu_peak("NVIDIA H200", "500", [&] { return measured = true, 1.0; });
  EXPECT_EQ(p.tflops, 500.0);
  EXPECT_EQ(p.source, "DIFFTRON_PEAK_TFLOPS");
  EXPECT_FALSE(measured);
  EXPECT_EQ(p.measured_gemm_tflops, 0.0);
}

TEST(GpuPeak, MalformedOverrideFailsWithOneLineNamingIt) {
  for (const char* bad : {"", "abc", "12x", "0", "-5", "nan", "inf"}) {
    try {
      resolve_gpu_peak("NVIDIA H200", bad, fake_gemm);
      ADD_FAILURE() << "accepted DIFFTRON_PEAK_TFLOPS=" << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("DIFFTRON_PEAK_TFLOPS"), std::string::npos) << e.what();
    }
  }
}

// On a real GPU (skipped elsewhere): the visible device has a name, and its peak
// resolves to a positive figure with the measured GEMM rate beside it.
// (Not gpu_peak(0): another test of this process may have set DIFFTRON_PEAK_TFLOPS.)
TEST(CudaPeak, VisibleGpuHasANameAndAPositivePeak) {
  DT_SKIP_WITHOUT_CUDA_GPU();
  const GpuPeak p =
      resolve_gpu_peak(cuda_device_name(0), nullptr, [] { return measure_cuda_gemm_gflops(0, 1024) / 1e3; });
  EXPECT_FALSE(p.device_name.empty());
  EXPECT_GT(p.tflops, 0);
  EXPECT_TRUE(std::isfinite(p.measured_gemm_tflops) && p.measured_gemm_tflops > 0) << p.describe();
  std::printf("%s: %s\n", p.device_name.c_str(), p.describe().c_str());
}

// Built without CUDA, or with CUDA on a machine without a GPU (cudaGetDeviceProperties fails).
TEST(GpuPeak, WithoutAGpuItFailsWithAClearError) {
  if (cuda_built() && cuda_device_count() > 0) GTEST_SKIP() << "a GPU is visible";
  try {
    gpu_peak(0);
    ADD_FAILURE() << "gpu_peak(0) returned without a GPU";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(cuda_built() ? "CUDA error" : "built without CUDA"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace dt
