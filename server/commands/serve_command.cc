// `strata serve`: the daemon. Loads the YAML config (plus --set overrides),
// serves the model over gRPC with /metrics beside it, and on SIGTERM or
// SIGINT drains: requests in flight finish, new ones get UNAVAILABLE, then
// the process exits 0. A second signal during the drain cancels what is left.
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/commands/args.h"
#include "server/commands/command_registry.h"
#include "server/config/daemon_config.h"
#include "server/daemon/daemon.h"
#include "server/daemon/shutdown_signals.h"
#include "server/logging/log.h"

namespace strata::server {
namespace {

constexpr char kName[] = "serve";

// --set may repeat, which ParseArgs refuses for a key: take them out first.
struct SplitArgs {
  std::vector<std::string> rest;
  std::vector<std::string> overrides;
};

absl::StatusOr<SplitArgs> SplitOverrides(const std::vector<std::string>& args) {
  SplitArgs split;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--set") {
      if (i + 1 >= args.size()) return absl::InvalidArgumentError("--set needs key=value");
      split.overrides.push_back(args[++i]);
    } else if (args[i].rfind("--set=", 0) == 0) {
      split.overrides.push_back(args[i].substr(6));
    } else {
      split.rest.push_back(args[i]);
    }
  }
  return split;
}

// Without --config: the defaults, then the overrides.
absl::StatusOr<DaemonConfig> LoadDaemonConfig(const std::optional<std::string>& path,
                                              const std::vector<std::string>& overrides) {
  if (path) return LoadConfigWithOverrides(*path, overrides);
  DaemonConfig config;
  for (const std::string& assignment : overrides) {
    if (absl::Status applied = ApplyOverride(config, assignment); !applied.ok()) return applied;
  }
  if (absl::Status valid = ValidateDaemonConfig(config); !valid.ok()) return valid;
  return config;
}

absl::Status ConfigureLogging(const LoggingSection& section) {
  absl::StatusOr<logging::Level> level = logging::ParseLevel(section.level);
  if (!level.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("logging.level: ", level.status().message()));
  }
  absl::StatusOr<logging::Format> format = logging::ParseFormat(section.format);
  if (!format.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("logging.format: ", format.status().message()));
  }
  logging::Configure(*level, *format);
  return absl::OkStatus();
}

int Serve(const DaemonConfig& config, const ModelSource& source) {
  const auto started_at = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(config, source);
  if (!daemon.ok()) {
    std::cerr << "strata serve: " << daemon.status().message() << "\n";
    return kExitFailure;
  }
  logging::Event(logging::Level::kInfo, "ready")
      .With("startup_s",
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at).count());
  const int signal = WaitForShutdownSignal();
  logging::Event(logging::Level::kInfo, "shutdown_signal").With("signal", signal);
  const auto drain_timeout = std::chrono::milliseconds(config.server.drain_timeout_ms);
  const bool drained = (*daemon)->Drain(drain_timeout, [] {
    return WaitForShutdownSignalFor(std::chrono::milliseconds(0)).has_value();
  });
  // Drained: every request has finished and only the last responses may
  // still be on their way out; a second covers that. (gRPC's shutdown also
  // waits, up to the grace, for idle client connections to notice its
  // GOAWAY, so a longer grace would only slow the exit.) Not drained: cancel
  // what is left at once.
  (*daemon)->Stop(drained ? std::chrono::milliseconds(1000) : std::chrono::milliseconds(0));
  logging::Event(logging::Level::kInfo, "stopped").With("drained", drained);
  return kExitOk;
}

int RunServe(const std::vector<std::string>& raw_args) {
  // Before any thread exists, so that every thread inherits the mask and
  // only sigwait in this thread sees the signals.
  BlockShutdownSignals();
  absl::StatusOr<SplitArgs> split = SplitOverrides(raw_args);
  if (!split.ok()) return UsageError(kName, std::string(split.status().message()));
  ArgSpec spec{.value_options = {"config", "model-config", "seed"},
               .flag_options = {"random-weights", "print-config"}};
  absl::StatusOr<ParsedArgs> args = ParseArgs(split->rest, spec);
  if (!args.ok()) return UsageError(kName, std::string(args.status().message()));
  ModelSource source;
  if (args->Has("random-weights")) {
    absl::StatusOr<std::string> model_config = args->Require("model-config");
    if (!model_config.ok()) {
      return UsageError(kName, "--random-weights needs --model-config FILE.json");
    }
    source.random_weights_config = *model_config;
    absl::StatusOr<int64_t> seed = args->GetInt("seed", 1234);
    if (!seed.ok() || *seed < 0) return UsageError(kName, "--seed: a non-negative integer");
    source.random_seed = static_cast<uint64_t>(*seed);
  } else if (args->Has("model-config") || args->Has("seed")) {
    return UsageError(kName, "--model-config and --seed go with --random-weights");
  }

  absl::StatusOr<DaemonConfig> config = LoadDaemonConfig(args->Get("config"), split->overrides);
  if (!config.ok()) {
    std::cerr << "strata serve: " << config.status().message() << "\n";
    return kExitFailure;
  }
  if (args->Has("print-config")) {
    std::cout << DumpConfig(*config);
    return kExitOk;
  }
  if (absl::Status logging_ok = ConfigureLogging(config->logging); !logging_ok.ok()) {
    std::cerr << "strata serve: " << logging_ok.message() << "\n";
    return kExitFailure;
  }
  return Serve(*config, source);
}

const CommandRegistrar kRegistrar({
    .name = kName,
    .usage = "[--config FILE.yaml] [--set key=value ...] [--print-config] "
             "[--random-weights --model-config FILE.json [--seed S]]",
    .run = RunServe,
});

}  // namespace
}  // namespace strata::server
