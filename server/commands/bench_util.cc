#include "server/commands/bench_util.h"

#include <chrono>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "scheduler/engine_loop.h"

namespace strata::server {

absl::StatusOr<engine::ModelConfig> ReadModelConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config ", path));
  nlohmann::json json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": not JSON"));
  return engine::ParseModelConfig(json, path);
}

absl::StatusOr<double> TimeToFirstToken(scheduler::Scheduler& scheduler, engine::Backend& backend,
                                        scheduler::Request request) {
  using Clock = std::chrono::steady_clock;
  request.sampling.temperature = 0;
  request.sampling.max_tokens = 1;
  const Clock::time_point start = Clock::now();
  if (absl::Status added = scheduler.AddRequest(std::move(request)); !added.ok()) return added;
  double ttft = -1;
  while (scheduler.HasWork()) {
    for (const scheduler::TokenEvent& event : scheduler::RunStep(scheduler, backend)) {
      if (!event.error.ok()) return event.error;
      if ((event.token_id || event.finished) && ttft < 0) {
        ttft = std::chrono::duration<double>(Clock::now() - start).count();
      }
    }
  }
  return ttft;
}

}  // namespace strata::server
