// The interface every execution backend (cpu, cuda) implements, plus a
// registry by name. The scheduler drives a backend only through Execute with
// a StepPlan (engine/step.h), whose block moves carry whole KV blocks between
// the arena and host memory; host staging memory and the host tier's slabs
// come from AllocateHostBuffer, so that a CUDA backend can DMA them.
#ifndef STRATA_ENGINE_BACKEND_H_
#define STRATA_ENGINE_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/kv_cache_spec.h"
#include "engine/model_config.h"
#include "engine/model_weights.h"
#include "engine/step.h"
#include "engine/tensor_view.h"

namespace strata::engine {

// The shape of the paged KV cache (common/kv_cache_spec.h), shared with
// cache/ and storage/.
using strata::BlocksFor;
using strata::KvCacheSpec;

// How a backend arranges the elements of one head's K or V within a block
// (engine/cpu/kv_layout.h). Blocks move between tiers as bytes, so only
// arenas of one layout may share them: the tiers' model fingerprint covers it.
enum class KvLayout {
  kRows,    // token rows of head_dim elements (the CUDA backend; fp32 KV)
  kChunks,  // the CPU backend's bf16 chunks of 16 tokens, as its kernels read them
};

inline const char* KvLayoutName(KvLayout layout) {
  return layout == KvLayout::kRows ? "rows" : "chunks16";
}

struct KvArenaInfo {
  KvCacheSpec spec;
  int64_t num_blocks = 0;
  int64_t bytes_per_block = 0;  // == spec.BytesPerBlock(); a block's image in tier moves
  KvLayout layout = KvLayout::kRows;
};

// How GEMMs are computed. All accumulate in fp32.
enum class Precision {
  // bf16 weights; each fp32 activation is passed as a pair of bf16 (hi, lo =
  // x - hi), so results match fp32 activations to ~1e-5 relative. Decode
  // (bandwidth-bound) costs the same as kBf16; prefill does 2x the GEMM work.
  kBf16Split,
  // bf16 weights and bf16-rounded activations: fastest prefill, logits
  // within a few 1e-2 of an fp32 forward.
  kBf16,
  // fp32 weights and activations: exact for fp32 checkpoints. For small
  // models and tests only (2x weight memory, slower GEMMs).
  kF32,
};

struct BackendOptions {
  int64_t block_size = 16;
  // Arena size: num_kv_blocks when > 0, else kv_bytes / bytes per block, else
  // kv_memory_fraction of the device memory still free once the weights are
  // loaded (host RAM's MemAvailable on the CPU backend), else enough blocks
  // for max_position_embeddings tokens of one sequence.
  int64_t num_kv_blocks = 0;
  int64_t kv_bytes = 0;
  double kv_memory_fraction = 0;  // in [0, 1)
  int threads = 0;                // 0: all hardware threads
  DType kv_dtype = DType::kBF16;  // kBF16 or kF32
  Precision precision = Precision::kBf16Split;
};

// Host memory from the backend (pinned for CUDA, aligned heap for CPU).
// Owns its bytes; freed on destruction. Not thread-safe to write concurrently.
class HostBuffer {
 public:
  virtual ~HostBuffer() = default;
  virtual std::byte* data() = 0;
  virtual size_t size() const = 0;
};

// A backend owns its converted weights and its KV arena. All methods are
// called from one thread (the engine thread) unless stated otherwise.
class Backend {
 public:
  virtual ~Backend() = default;

  // Runs one step: plan.block_moves in order, the forward pass of every
  // sequence, then sampling. Validates the whole plan before touching the
  // arena: INVALID_ARGUMENT for a token id outside the vocabulary, a position
  // at or beyond max_position_embeddings, a block table too short for the
  // span, a block id out of range, or an empty span; the arena is unchanged
  // then. Outputs are in plan order.
  virtual absl::StatusOr<StepResult> Execute(const StepPlan& plan) = 0;

  // Performs block moves in order, outside a step: copies within the arena,
  // demotions to host memory and promotions from it (engine/step.h).
  // INVALID_ARGUMENT if any arena id is out of range or a host span is not
  // exactly one block; nothing is moved then. Completes before returning.
  virtual absl::Status CopyBlocks(absl::Span<const BlockMove> moves) = 0;

  // Waits for all queued work. The CPU backend runs synchronously.
  virtual absl::Status Synchronize() = 0;

  // Host memory for staging KV blocks. RESOURCE_EXHAUSTED on failure.
  // Thread-safe.
  virtual absl::StatusOr<std::unique_ptr<HostBuffer>> AllocateHostBuffer(size_t bytes) = 0;

  virtual KvArenaInfo kv_arena_info() const = 0;
  virtual const ModelConfig& model_config() const = 0;
  virtual std::string name() const = 0;
};

// Builds a backend for `model`. The backend copies or converts everything it
// needs: `model` may be destroyed once the factory returns.
using BackendFactory = std::function<absl::StatusOr<std::unique_ptr<Backend>>(
    const LoadedModel& model, const BackendOptions& options)>;

// Registers `factory` under `name`; ALREADY_EXISTS if taken. "cpu" is built
// in; "cuda" registers itself in binaries built with CUDA that link
// strata_engine (engine/cuda/register_cuda_backend.cc). Thread-safe.
absl::Status RegisterBackend(const std::string& name, BackendFactory factory);

// What a configured backend name (engine.backend) resolves to.
struct BackendChoice {
  std::string name;    // a registered backend: "cpu", "cuda", ...
  std::string reason;  // why "auto" chose it, for the log; empty otherwise
};

// "auto" is "cuda" when a CUDA device is usable (the runtime's
// cudaGetDeviceCount finds one) and the cuda backend is linked in, else
// "cpu", with the reason (e.g. "CUDA unavailable: CUDA driver version is
// insufficient for CUDA runtime version"). "cuda" resolves to itself even
// without a device: creating it then fails (see CreateBackend). Any other
// registered name resolves to itself; NOT_FOUND (listing the names) for an
// unknown one. Thread-safe.
absl::StatusOr<BackendChoice> ResolveBackendName(const std::string& requested);

// Resolves `name` as above ("auto" writes one line to stderr naming its
// choice and why) and returns the factory's result. NOT_FOUND (listing the
// known names) for an unknown name; FAILED_PRECONDITION "CUDA backend
// unavailable: <CUDA runtime error>" for "cuda" without a usable device or
// in a build without CUDA. Thread-safe.
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const std::string& name,
                                                       const LoadedModel& model,
                                                       const BackendOptions& options);

std::vector<std::string> RegisteredBackendNames();

}  // namespace strata::engine

#endif  // STRATA_ENGINE_BACKEND_H_
