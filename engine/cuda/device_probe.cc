#include "engine/cuda/device_probe.h"

#include <cuda_runtime_api.h>

namespace strata::engine::cuda {

const CudaProbe& ProbeCudaDevices() {
  static const CudaProbe* probe = [] {
    auto* p = new CudaProbe();
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
      p->error = cudaGetErrorString(status);
      // Clear the runtime's last error so later calls do not report it.
      (void)cudaGetLastError();
    } else if (count <= 0) {
      p->error = "no CUDA-capable device is detected";
    } else {
      p->device_count = count;
    }
    return p;
  }();
  return *probe;
}

}  // namespace strata::engine::cuda
