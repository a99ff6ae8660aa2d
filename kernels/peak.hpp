// The machine's GEMM peak as difftron reports MFU against it. CPU: the
// single-thread OpenBLAS SGEMM rate at n³ times the number of cores used.
// CUDA: the cuBLASLt bf16 GEMM rate of one GPU at n³.
#pragma once

namespace dt {

// GFLOP/s of one thread running an n×n×n SGEMM (best of `reps` after a warm-up).
double measure_sgemm_gflops_one_thread(int n, int reps);

// GFLOP/s of cuBLASLt bf16 n×n×n GEMMs on one GPU (fails without CUDA).
double measure_cuda_gemm_gflops(int device, int n);

}  // namespace dt
