// The machine's fp32 GEMM peak as difftron reports MFU against it: the
// single-thread OpenBLAS SGEMM rate at n³ times the number of cores used.
#pragma once

namespace dt {

// GFLOP/s of one thread running an n×n×n SGEMM (best of `reps` after a warm-up).
double measure_sgemm_gflops_one_thread(int n, int reps);

}  // namespace dt
