// Everything the engine thread needs to serve one model, loaded and wired
// together once: tokenizer, backend, and the scheduler's options (including
// the model fingerprint that keys the prefix cache). `strata generate` and
// the daemon both start here.
#ifndef STRATA_SERVER_ENGINE_SETUP_H_
#define STRATA_SERVER_ENGINE_SETUP_H_

#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/backend.h"
#include "engine/model_weights.h"
#include "engine/tokenizer/tokenizer.h"
#include "scheduler/scheduler.h"

namespace strata::server {

struct ServingEngine {
  std::unique_ptr<engine::Tokenizer> tokenizer;
  std::unique_ptr<engine::Backend> backend;
  scheduler::SchedulerOptions scheduler_options;
};

// Loads `model_dir` (config, weights, tokenizer) and creates the named
// backend. Errors are the loaders' and the backend's, which name the file
// and the tensor or key.
absl::StatusOr<ServingEngine> LoadServingEngine(const std::filesystem::path& model_dir,
                                                const std::string& backend_name,
                                                const engine::BackendOptions& options);

// The identity of `model`'s K/V for the prefix cache: config, every tensor
// (name, dtype, shape, sampled bytes), the tokenizer file, KV dtype and
// block size. Reproducible across processes; reads weights, so it takes a
// moment on large models.
absl::StatusOr<cache::ModelFingerprint> FingerprintModel(const engine::LoadedModel& model,
                                                         const std::filesystem::path& model_dir,
                                                         const engine::KvCacheSpec& kv_spec);

}  // namespace strata::server

#endif  // STRATA_SERVER_ENGINE_SETUP_H_
