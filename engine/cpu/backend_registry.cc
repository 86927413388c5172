// The backend registry of engine/backend.h. It lives with the CPU backend so
// that "cpu" is registered by a direct reference (a self-registering static in
// a static library could be dropped by the linker).
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "engine/backend.h"
#include "engine/cpu/cpu_backend.h"

namespace strata::engine {
namespace {

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

}  // namespace

absl::Status RegisterBackend(const std::string& name, BackendFactory factory) {
  Registry& registry = GetRegistry();
  absl::MutexLock lock(&registry.mutex);
  if (!registry.factories.emplace(name, std::move(factory)).second) {
    return absl::AlreadyExistsError(absl::StrCat("backend '", name, "' is already registered"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const std::string& name,
                                                       const LoadedModel& model,
                                                       const BackendOptions& options) {
  BackendFactory factory;
  {
    Registry& registry = GetRegistry();
    absl::MutexLock lock(&registry.mutex);
    auto it = registry.factories.find(name);
    if (it == registry.factories.end()) {
      std::vector<std::string> names;
      for (const auto& [known, unused] : registry.factories) names.push_back(known);
      return absl::NotFoundError(absl::StrCat("unknown backend '", name, "'; known: ",
                                              absl::StrJoin(names, ", ")));
    }
    factory = it->second;
  }
  return factory(model, options);
}

std::vector<std::string> RegisteredBackendNames() {
  Registry& registry = GetRegistry();
  absl::MutexLock lock(&registry.mutex);
  std::vector<std::string> names;
  for (const auto& [name, unused] : registry.factories) names.push_back(name);
  return names;
}

}  // namespace strata::engine
