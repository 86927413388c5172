#include "server/daemon/daemon.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/backend.h"
#include "server/commands/command_registry.h"
#include "server/daemon/daemon_options.h"
#include "server/daemon/random_model.h"
#include "server/logging/log.h"

namespace strata::server {
namespace {

using logging::Level;

absl::StatusOr<ServingEngine> LoadEngine(const DaemonConfig& config, const ModelSource& source,
                                         const ServingOptions& options) {
  if (!source.random_weights_config.empty()) {
    return LoadRandomServingEngine(source.random_weights_config, source.random_seed, options);
  }
  const std::filesystem::path model_dir =
      config.model.path.empty() ? DefaultModelDir() : std::filesystem::path(config.model.path);
  return LoadServingEngine(model_dir, options);
}

// engine.backend "auto" prefers CUDA when it is built, and falls back to the
// CPU when no device is usable; an explicit backend never falls back.
absl::StatusOr<ServingEngine> LoadEngineWithFallback(const DaemonConfig& config,
                                                     const ModelSource& source,
                                                     ServingOptions& options) {
  absl::StatusOr<ServingEngine> serving = LoadEngine(config, source, options);
  if (serving.ok() || config.engine.backend != "auto" || options.backend == "cpu") return serving;
  logging::Event(Level::kWarning, "backend_fallback")
      .With("backend", options.backend)
      .With("error", std::string(serving.status().message()))
      .With("using", "cpu");
  options.backend = "cpu";
  return LoadEngine(config, source, options);
}

std::string ModelName(const DaemonConfig& config, const ModelSource& source) {
  if (!source.random_weights_config.empty()) {
    return absl::StrCat("random:", source.random_weights_config.stem().string());
  }
  const std::filesystem::path dir =
      config.model.path.empty() ? DefaultModelDir() : std::filesystem::path(config.model.path);
  std::filesystem::path name = dir.filename();
  if (name.empty()) name = dir.parent_path().filename();  // "models/foo/"
  return name.string();
}

}  // namespace

std::string BoundAddress(const std::string& listen, int port) {
  const size_t colon = listen.rfind(':');
  const std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const DaemonConfig& config,
                                                      const ModelSource& source) {
  absl::StatusOr<ServingOptions> options =
      ServingOptionsFromConfig(config, engine::RegisteredBackendNames());
  if (!options.ok()) return options.status();
  std::unique_ptr<Daemon> daemon(new Daemon());
  absl::StatusOr<ServingEngine> serving = LoadEngineWithFallback(config, source, *options);
  if (!serving.ok()) return serving.status();
  daemon->serving_ = *std::move(serving);
  ServingEngine& s = daemon->serving_;

  // Throw on a repeated name: registering a family twice is a bug here.
  daemon->registry_ =
      std::make_shared<prometheus::Registry>(prometheus::Registry::InsertBehavior::Throw);
  absl::StatusOr<metrics::StrataMetrics> metrics =
      metrics::StrataMetrics::Register(daemon->registry_.get());
  if (!metrics.ok()) return metrics.status();
  daemon->metrics_ = *metrics;
  daemon->observer_ = std::make_unique<EngineMetricsObserver>(&daemon->metrics_, s.tiers.host.get(),
                                                              s.tiers.disk.get());

  absl::StatusOr<scheduler::EngineServiceOptions> service_options =
      EngineServiceOptionsFromConfig(config, s.scheduler_options);
  if (!service_options.ok()) return service_options.status();
  daemon->engine_ = std::make_unique<scheduler::EngineService>(*service_options, *s.tokenizer,
                                                               *s.backend, daemon->observer_.get());

  const scheduler::SchedulerOptions& so = service_options->scheduler;
  daemon->served_ = ServedModel{
      .name = ModelName(config, source),
      .config = &s.backend->model_config(),
      .tokenizer = s.tokenizer.get(),
      .chat_template = s.chat_template.get(),
      .backend = s.backend->name(),
      .fingerprint_hex = so.model_fingerprint.ToHex(),
      .kv_block_size = so.block_size,
      .kv_device_blocks = so.num_blocks,
      .max_prompt_tokens = service_options->max_prompt_tokens > 0
                               ? service_options->max_prompt_tokens
                               : so.max_model_len - 1,
      .default_max_tokens = static_cast<int32_t>(config.scheduler.default_max_tokens),
  };
  absl::StatusOr<BlendDefaults> blend =
      BlendDefaultsFromConfig(config.scheduler, *daemon->served_.config);
  if (!blend.ok()) return blend.status();
  daemon->served_.blend = *std::move(blend);
  if (absl::Status started = daemon->StartServers(config); !started.ok()) {
    daemon->Stop(std::chrono::milliseconds(0));
    return started;
  }
  logging::Event(Level::kInfo, "listening")
      .With("grpc", daemon->grpc_address_)
      .With("metrics", daemon->metrics_address_)
      .With("openai", daemon->openai_address_)
      .With("model", daemon->served_.name)
      .With("backend", daemon->served_.backend)
      .With("kv_blocks", so.num_blocks)
      .With("tls", !config.tls.cert_file.empty())
      .With("auth", !config.auth.tokens.empty());
  return daemon;
}

absl::Status Daemon::StartServers(const DaemonConfig& config) {
  if (!config.metrics.listen.empty()) {
    http_ = std::make_unique<metrics::MetricsHttpServer>(registry_);
    if (absl::Status started = http_->Start(config.metrics.listen); !started.ok()) {
      return absl::Status(started.code(), absl::StrCat("metrics.listen: ", started.message()));
    }
    metrics_address_ = BoundAddress(config.metrics.listen, http_->port());
  }
  grpc_ = std::make_unique<GrpcServer>(GrpcOptionsFromConfig(config), engine_.get(), served_);
  if (absl::Status started = grpc_->Start(); !started.ok()) {
    // UNAVAILABLE is a port that cannot be bound; the rest name their own
    // option (a malformed address, an unreadable TLS file).
    const char* context =
        started.code() == absl::StatusCode::kUnavailable ? "server.listen: " : "gRPC server: ";
    return absl::Status(started.code(), absl::StrCat(context, started.message()));
  }
  grpc_address_ = BoundAddress(config.server.listen, grpc_->port());
  if (!config.openai.listen.empty()) {
    openai_ = std::make_unique<OpenAiServer>(
        OpenAiServerOptions{.listen = config.openai.listen,
                            .threads = config.openai.threads,
                            .max_body_bytes = config.server.max_message_bytes,
                            .auth_tokens = config.auth.tokens,
                            .shared_prefix = config.auth.shared_prefix},
        engine_.get(), served_);
    if (absl::Status started = openai_->Start(); !started.ok()) {
      return absl::Status(started.code(), absl::StrCat("openai.listen: ", started.message()));
    }
    openai_address_ = BoundAddress(config.openai.listen, openai_->port());
  }
  return absl::OkStatus();
}

bool Daemon::Drain(std::chrono::milliseconds timeout, const std::function<bool()>& interrupted) {
  if (grpc_) grpc_->BeginDrain();
  if (openai_) openai_->BeginDrain();
  engine_->BeginDrain();
  logging::Event(Level::kInfo, "draining")
      .With("in_flight", engine_->num_in_flight())
      .With("timeout_ms", static_cast<int64_t>(timeout.count()));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (engine_->WaitIdle(
            std::clamp(left, std::chrono::milliseconds(0), std::chrono::milliseconds(100)))) {
      return true;
    }
    if (left <= std::chrono::milliseconds(0)) break;
    if (interrupted && interrupted()) {
      logging::Event(Level::kWarning, "drain_interrupted")
          .With("in_flight", engine_->num_in_flight());
      return false;
    }
  }
  logging::Event(Level::kWarning, "drain_timeout").With("in_flight", engine_->num_in_flight());
  return false;
}

void Daemon::Stop(std::chrono::milliseconds grace) {
  if (stopped_) return;
  stopped_ = true;
  if (grpc_) grpc_->Shutdown(grace);
  grpc_.reset();
  if (openai_) openai_->Shutdown(grace);
  openai_.reset();
  engine_.reset();  // aborts what is still running, stops the engine thread
  if (http_) http_->Stop();
  // The host tier's evictions feed the disk tier: close it first, then let
  // the disk tier write everything queued before it closes its database.
  serving_.tiers.host.reset();
  if (serving_.tiers.disk) {
    serving_.tiers.disk->Flush();
    const uint64_t blocks = serving_.tiers.disk->Stats().blocks;
    serving_.tiers.disk.reset();
    logging::Event(Level::kInfo, "disk_tier_closed").With("blocks", static_cast<int64_t>(blocks));
  }
}

Daemon::~Daemon() { Stop(std::chrono::milliseconds(0)); }

}  // namespace strata::server
