// Pieces the benchmark commands share: reading a model config.json for a
// random-weight model, and timing a request's first token through the real
// step loop.
#ifndef STRATA_SERVER_COMMANDS_BENCH_UTIL_H_
#define STRATA_SERVER_COMMANDS_BENCH_UTIL_H_

#include <string>

#include "absl/status/statusor.h"
#include "engine/backend.h"
#include "engine/model_config.h"
#include "scheduler/scheduler.h"

namespace strata::server {

// The config.json at `path`; NOT_FOUND if it cannot be read,
// INVALID_ARGUMENT if it is not JSON or not a usable model config.
absl::StatusOr<engine::ModelConfig> ReadModelConfigFile(const std::string& path);

// Seconds from AddRequest to the request's first token (or, for a request
// that samples nothing, its finished event), stepping `scheduler` on
// `backend` until it has no work. Greedy, one token. The first error of any
// event is returned.
absl::StatusOr<double> TimeToFirstToken(scheduler::Scheduler& scheduler, engine::Backend& backend,
                                        scheduler::Request request);

}  // namespace strata::server

#endif  // STRATA_SERVER_COMMANDS_BENCH_UTIL_H_
