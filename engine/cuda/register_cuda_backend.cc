// Registers the CUDA backend as "cuda" at static initialisation. This
// object file is linked whole into binaries that link strata_engine
// (engine/CMakeLists.txt), so the registration cannot be dropped by the
// linker; other binaries pull it in by calling CudaBackendRegistered().
#include "engine/backend.h"
#include "engine/cuda/cuda_backend.h"

namespace strata::engine::cuda {
namespace {

const bool kRegistered = [] {
  // ALREADY_EXISTS only if this object were linked twice; nothing to do then.
  (void)RegisterBackend("cuda", &CreateCudaBackend);
  return true;
}();

}  // namespace

bool CudaBackendRegistered() { return kRegistered; }

}  // namespace strata::engine::cuda
