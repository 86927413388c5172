// The device's measured ceilings, for `strata bench engine --backend cuda`
// (decode is held to HBM bandwidth, prefill to the bf16 matmul rate, tier
// restores to host -> device bandwidth). Each figure is the median of
// several timed repetitions (device events) after a warm-up, on random data.
// Plain C++ interface; needs a CUDA device (FAILED_PRECONDITION otherwise).
// Not thread-safe with other work on the device: run it alone.
#ifndef STRATA_ENGINE_CUDA_DEVICE_CEILINGS_H_
#define STRATA_ENGINE_CUDA_DEVICE_CEILINGS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace strata::engine::cuda {

struct DeviceCeilings {
  std::string device_name;
  int sm_count = 0;
  int64_t memory_bytes = 0;
  // Device-to-device copy of 1 GiB, counting bytes read plus bytes written.
  double hbm_bytes_per_second = 0;
  // cuBLASLt bf16 x bf16 -> bf16 (fp32 accumulation) at 8192^3.
  double bf16_matmul_flops = 0;
  // The same at the shape the caller names (the model's largest prefill GEMM).
  double bf16_model_gemm_flops = 0;
  // cudaMemcpyAsync of 256 MiB from and to pinned host memory.
  double h2d_bytes_per_second = 0;
  double d2h_bytes_per_second = 0;
};

// m, n, k: the model GEMM to time besides the square one.
absl::StatusOr<DeviceCeilings> MeasureDeviceCeilings(int64_t m, int64_t n, int64_t k);

}  // namespace strata::engine::cuda

#endif  // STRATA_ENGINE_CUDA_DEVICE_CEILINGS_H_
