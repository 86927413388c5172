// The daemon's YAML config: ParseConfig on arbitrary text, then one
// `--set` override taken from the input's first line. Whatever is accepted
// must dump (DumpConfig) to YAML that parses back to the same dump.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/config/daemon_config.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = strata::server::ParseConfig(text, "fuzz.yaml");
  if (!config.ok()) {
    // Also an override: "key=value" from the first line.
    strata::server::DaemonConfig defaults;
    const std::string_view line = text.substr(0, text.find('\n'));
    if (!strata::server::ApplyOverride(defaults, line).ok()) return 0;
    config = defaults;
    if (!strata::server::ValidateDaemonConfig(*config).ok()) return 0;
  }
  const std::string dump = strata::server::DumpConfig(*config);
  auto again = strata::server::ParseConfig(dump, "dumped.yaml");
  if (!again.ok()) {
    strata::fuzz::Fail(std::string("DumpConfig output does not parse: ") +
                       std::string(again.status().message()));
  }
  if (strata::server::DumpConfig(*again) != dump) {
    strata::fuzz::Fail("DumpConfig -> ParseConfig changed the config");
  }
  return 0;
}
