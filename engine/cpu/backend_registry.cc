// The backend registry of engine/backend.h. It lives with the CPU backend so
// that "cpu" is registered by a direct reference (a self-registering static in
// a static library could be dropped by the linker). "cuda" registers itself
// (engine/cuda/register_cuda_backend.cc); whether a device is usable is asked
// of the CUDA runtime here (engine/cuda/device_probe.h), so that "auto" and a
// failing "cuda" give the same reason in every binary built with CUDA.
#include <iostream>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "engine/backend.h"
#include "engine/cpu/cpu_backend.h"
#if defined(STRATA_HAVE_CUDA)
#include "engine/cuda/device_probe.h"
#endif

namespace strata::engine {
namespace {

constexpr char kAuto[] = "auto";
constexpr char kCuda[] = "cuda";

struct Registry {
  absl::Mutex mutex;
  std::map<std::string, BackendFactory> factories ABSL_GUARDED_BY(mutex);
};

Registry& GetRegistry() {
  static Registry* registry = [] {
    auto* r = new Registry();
    absl::MutexLock lock(&r->mutex);
    r->factories.emplace("cpu", &cpu::CreateCpuBackend);
    return r;
  }();
  return *registry;
}

// Empty when a CUDA device is usable; otherwise why not.
std::string CudaUnavailableReason() {
#if defined(STRATA_HAVE_CUDA)
  const cuda::CudaProbe& probe = cuda::ProbeCudaDevices();
  return probe.available() ? std::string() : probe.error;
#else
  return "strata was built without CUDA (STRATA_CUDA=OFF)";
#endif
}

absl::StatusOr<BackendFactory> FindFactory(const std::string& name) {
  Registry& registry = GetRegistry();
  absl::MutexLock lock(&registry.mutex);
  auto it = registry.factories.find(name);
  if (it != registry.factories.end()) return it->second;
  if (name == kCuda) {
    // Known but absent: explain instead of "unknown backend".
    const std::string reason = CudaUnavailableReason();
    return absl::FailedPreconditionError(
        absl::StrCat("CUDA backend unavailable: ",
                     reason.empty() ? "the cuda backend is not linked into this binary" : reason));
  }
  std::vector<std::string> names;
  for (const auto& [known, unused] : registry.factories) names.push_back(known);
  return absl::NotFoundError(absl::StrCat("unknown backend '", name,
                                          "'; known: ", absl::StrJoin(names, ", "), ", or auto"));
}

bool IsRegistered(const std::string& name) {
  Registry& registry = GetRegistry();
  absl::MutexLock lock(&registry.mutex);
  return registry.factories.contains(name);
}

}  // namespace

absl::Status RegisterBackend(const std::string& name, BackendFactory factory) {
  if (name == kAuto) return absl::InvalidArgumentError("'auto' is not a backend name");
  Registry& registry = GetRegistry();
  absl::MutexLock lock(&registry.mutex);
  if (!registry.factories.emplace(name, std::move(factory)).second) {
    return absl::AlreadyExistsError(absl::StrCat("backend '", name, "' is already registered"));
  }
  return absl::OkStatus();
}

absl::StatusOr<BackendChoice> ResolveBackendName(const std::string& requested) {
  if (requested != kAuto) {
    if (requested == kCuda || IsRegistered(requested)) return BackendChoice{requested, ""};
    absl::StatusOr<BackendFactory> missing = FindFactory(requested);
    return missing.status();
  }
  const std::string unavailable = CudaUnavailableReason();
  if (!unavailable.empty()) {
    return BackendChoice{"cpu", absl::StrCat("CUDA unavailable: ", unavailable)};
  }
  if (!IsRegistered(kCuda)) {
    return BackendChoice{"cpu", "a CUDA device is present but the cuda backend is not linked in"};
  }
  return BackendChoice{kCuda, "a CUDA device is usable"};
}

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const std::string& name,
                                                       const LoadedModel& model,
                                                       const BackendOptions& options) {
  absl::StatusOr<BackendChoice> choice = ResolveBackendName(name);
  if (!choice.ok()) return choice.status();
  if (name == kAuto) {
    std::cerr << "strata: engine.backend auto -> " << choice->name << " (" << choice->reason
              << ")\n";
  }
  absl::StatusOr<BackendFactory> factory = FindFactory(choice->name);
  if (!factory.ok()) return factory.status();
  return (*factory)(model, options);
}

std::vector<std::string> RegisteredBackendNames() {
  Registry& registry = GetRegistry();
  absl::MutexLock lock(&registry.mutex);
  std::vector<std::string> names;
  for (const auto& [name, unused] : registry.factories) names.push_back(name);
  return names;
}

}  // namespace strata::engine
