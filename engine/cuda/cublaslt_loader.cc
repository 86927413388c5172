// cuBLASLt, loaded on first use instead of linked. libcublasLt carries ~94 KB
// of static thread-local storage; linked into the binary, it is added to
// every thread's stack, and civetweb's 100 KB worker stacks (the /metrics
// server) can no longer be created at all. Loaded with dlopen its TLS is
// dynamic, allocated only by threads that use it, and a binary built with
// CUDA also starts where no CUDA libraries are installed.
//
// The definitions below are the cuBLASLt entry points the backend calls
// (cublaslt_gemm.cc, device_ceilings.cc), with the header's signatures: each
// forwards to the library's symbol, or answers CUBLAS_STATUS_NOT_INITIALIZED
// when the library or the symbol is missing, which the callers already
// report through CublasStatus (engine/cuda/cuda_status.h).
#include <cublasLt.h>
#include <dlfcn.h>

#include <string>

namespace {

void* Library() {
  static void* handle = [] {
    const std::string name = "libcublasLt.so." + std::to_string(CUBLAS_VER_MAJOR);
    // The loader's search path first (LD_LIBRARY_PATH, ld.so.conf), then the
    // toolkit this binary was built against.
    void* found = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (found == nullptr) {
      found = dlopen((std::string(STRATA_CUDA_LIBRARY_DIR) + "/" + name).c_str(),
                     RTLD_NOW | RTLD_LOCAL);
    }
    return found;
  }();
  return handle;
}

void* Symbol(const char* name) {
  void* library = Library();
  return library == nullptr ? nullptr : dlsym(library, name);
}

}  // namespace

// Each entry point resolves its symbol once (a function-local static is
// thread-safe to initialise) and forwards its arguments unchanged.
#define STRATA_CUBLASLT_FORWARD(name, params, args)                          \
  extern "C" cublasStatus_t CUBLASWINAPI name params {                       \
    static const auto fn = reinterpret_cast<decltype(&name)>(Symbol(#name)); \
    if (fn == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;                 \
    return fn args;                                                          \
  }

STRATA_CUBLASLT_FORWARD(cublasLtCreate, (cublasLtHandle_t * handle), (handle))
STRATA_CUBLASLT_FORWARD(cublasLtDestroy, (cublasLtHandle_t handle), (handle))
STRATA_CUBLASLT_FORWARD(cublasLtMatmul,
                        (cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha,
                         const void* a, cublasLtMatrixLayout_t a_desc, const void* b,
                         cublasLtMatrixLayout_t b_desc, const void* beta, const void* c,
                         cublasLtMatrixLayout_t c_desc, void* d, cublasLtMatrixLayout_t d_desc,
                         const cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspace_bytes,
                         cudaStream_t stream),
                        (handle, desc, alpha, a, a_desc, b, b_desc, beta, c, c_desc, d, d_desc,
                         algo, workspace, workspace_bytes, stream))
STRATA_CUBLASLT_FORWARD(cublasLtMatmulAlgoGetHeuristic,
                        (cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                         cublasLtMatrixLayout_t a_desc, cublasLtMatrixLayout_t b_desc,
                         cublasLtMatrixLayout_t c_desc, cublasLtMatrixLayout_t d_desc,
                         cublasLtMatmulPreference_t preference, int requested,
                         cublasLtMatmulHeuristicResult_t results[], int* returned),
                        (handle, desc, a_desc, b_desc, c_desc, d_desc, preference, requested,
                         results, returned))
STRATA_CUBLASLT_FORWARD(cublasLtMatmulDescCreate,
                        (cublasLtMatmulDesc_t * desc, cublasComputeType_t compute,
                         cudaDataType_t scale),
                        (desc, compute, scale))
STRATA_CUBLASLT_FORWARD(cublasLtMatmulDescDestroy, (cublasLtMatmulDesc_t desc), (desc))
STRATA_CUBLASLT_FORWARD(cublasLtMatmulDescSetAttribute,
                        (cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                         const void* buf, size_t size),
                        (desc, attr, buf, size))
STRATA_CUBLASLT_FORWARD(cublasLtMatmulPreferenceCreate, (cublasLtMatmulPreference_t * pref), (pref))
STRATA_CUBLASLT_FORWARD(cublasLtMatmulPreferenceDestroy, (cublasLtMatmulPreference_t pref), (pref))
STRATA_CUBLASLT_FORWARD(cublasLtMatmulPreferenceSetAttribute,
                        (cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr,
                         const void* buf, size_t size),
                        (pref, attr, buf, size))
STRATA_CUBLASLT_FORWARD(cublasLtMatrixLayoutCreate,
                        (cublasLtMatrixLayout_t * layout, cudaDataType type, uint64_t rows,
                         uint64_t cols, int64_t ld),
                        (layout, type, rows, cols, ld))
STRATA_CUBLASLT_FORWARD(cublasLtMatrixLayoutDestroy, (cublasLtMatrixLayout_t layout), (layout))
