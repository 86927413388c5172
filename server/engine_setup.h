// Everything the engine thread needs to serve one model, loaded and wired
// together once: tokenizer, backend, the KV cache's lower tiers, and the
// scheduler's options (including the model fingerprint that keys the prefix
// cache in every tier). `strata generate` and
// the daemon both start here.
#ifndef STRATA_SERVER_ENGINE_SETUP_H_
#define STRATA_SERVER_ENGINE_SETUP_H_

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "cache/kv_cache_options.h"
#include "cache/tier_stores.h"
#include "engine/backend.h"
#include "engine/model_weights.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/tokenizer.h"
#include "scheduler/scheduler.h"

namespace strata::server {

// The precision the daemon serves in unless engine.precision says otherwise
// (server/config/daemon_config.h). The engine API's own default stays the
// exact split mode; benchmarks of the serving path use this one.
inline constexpr engine::Precision kDefaultServingPrecision = engine::Precision::kBf16;

// The engine modes by their config names, for engine.precision and
// engine.kv_dtype and the commands' --precision and --kv-dtype; `what`
// names the key or flag in the error (INVALID_ARGUMENT).
absl::StatusOr<engine::Precision> ParsePrecision(std::string_view name, std::string_view what);
absl::StatusOr<engine::DType> ParseKvDtype(std::string_view name, std::string_view what);

// How to serve one model: the backend and its options, and the KV cache's
// tiers. cache.block_size and cache.device_bytes / device_blocks override
// backend_options' block_size, kv_bytes and num_kv_blocks.
struct ServingOptions {
  std::string backend = "cpu";
  engine::BackendOptions backend_options;
  cache::KvCacheOptions cache;
};

// Member order is destruction order in reverse: a scheduler built from
// scheduler_options borrows `tiers` and must be destroyed first; the tiers'
// host memory comes from `backend`, which outlives them.
struct ServingEngine {
  std::unique_ptr<engine::Tokenizer> tokenizer;
  // tokenizer_config.json's chat template; null when the model has none.
  std::unique_ptr<engine::ChatTemplate> chat_template;
  std::unique_ptr<engine::Backend> backend;
  cache::TierStores tiers;  // null stores for tiers that are off
  scheduler::SchedulerOptions scheduler_options;
};

// Loads `model_dir` (config, weights, tokenizer, chat template), creates the
// named backend and opens the cache tiers. Errors are the loaders', the
// backend's (which name the file and the tensor or key), the tiers'
// (OpenTierStores), and a chat template that cannot be rendered
// (INVALID_ARGUMENT "DIR/tokenizer_config.json: chat_template: line N: ...").
absl::StatusOr<ServingEngine> LoadServingEngine(const std::filesystem::path& model_dir,
                                                const ServingOptions& options);

// The same with no cache tiers below the device (the prefix index only).
absl::StatusOr<ServingEngine> LoadServingEngine(const std::filesystem::path& model_dir,
                                                const std::string& backend_name,
                                                const engine::BackendOptions& options);

// Wires a model that is already in memory (random weights for benchmarks,
// or a model loaded by the caller) with `tokenizer` and `fingerprint`, which
// must identify `model`'s K/V for the disk tier to be shared safely. Blocks
// are keyed under it qualified by the backend's KV layout
// (cache::WithKvLayout), which scheduler_options.model_fingerprint holds.
absl::StatusOr<ServingEngine> MakeServingEngine(const engine::LoadedModel& model,
                                                std::unique_ptr<engine::Tokenizer> tokenizer,
                                                const cache::ModelFingerprint& fingerprint,
                                                const ServingOptions& options);

// The identity of `model`'s K/V for the prefix cache: config, every tensor
// (name, dtype, shape, sampled bytes), the tokenizer file, KV dtype and
// block size. Reproducible across processes; reads weights, so it takes a
// moment on large models.
absl::StatusOr<cache::ModelFingerprint> FingerprintModel(const engine::LoadedModel& model,
                                                         const std::filesystem::path& model_dir,
                                                         const engine::KvCacheSpec& kv_spec);

}  // namespace strata::server

#endif  // STRATA_SERVER_ENGINE_SETUP_H_
