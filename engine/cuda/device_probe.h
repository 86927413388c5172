// Whether this process can use a CUDA device, asked of the CUDA runtime
// (cudaGetDeviceCount). Linking the runtime never stops a binary from
// starting: on a machine without a driver or GPU the first call fails with
// an error such as "CUDA driver version is insufficient for CUDA runtime
// version", which is what `engine.backend: auto` logs when it falls back to
// the CPU and what `cuda` reports when it cannot start.
#ifndef STRATA_ENGINE_CUDA_DEVICE_PROBE_H_
#define STRATA_ENGINE_CUDA_DEVICE_PROBE_H_

#include <string>

namespace strata::engine::cuda {

struct CudaProbe {
  int device_count = 0;
  // Why no device is usable (the runtime's cudaGetErrorString), or empty.
  std::string error;

  bool available() const { return device_count > 0; }
};

// Asks the runtime once per process and caches the answer (devices do not
// come and go under a running process). Thread-safe.
const CudaProbe& ProbeCudaDevices();

}  // namespace strata::engine::cuda

#endif  // STRATA_ENGINE_CUDA_DEVICE_PROBE_H_
