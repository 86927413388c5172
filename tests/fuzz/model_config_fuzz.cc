// ParseModelConfig on arbitrary JSON (config.json). A config it accepts must
// hold what the engine relies on (positive shapes, heads that divide), and
// its derived sizes must compute without overflow (UBSan aborts on one).
#include <cstddef>
#include <cstdint>

#include "engine/model_config.h"
#include "nlohmann/json.hpp"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json json =
      nlohmann::json::parse(data, data + size, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  auto parsed = strata::engine::ParseModelConfig(json, "config.json");
  if (!parsed.ok()) return 0;
  const strata::engine::ModelConfig& c = *parsed;
  if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.intermediate_size <= 0 || c.num_layers <= 0 ||
      c.num_heads <= 0 || c.num_kv_heads <= 0 || c.head_dim <= 0 ||
      c.max_position_embeddings <= 0) {
    strata::fuzz::Fail("an accepted config has a non-positive shape");
  }
  if (c.num_heads % c.num_kv_heads != 0) strata::fuzz::Fail("kv heads do not divide heads");
  volatile int64_t sink = c.NumParameters() + c.KvBytesPerToken(2);
  (void)sink;
  (void)strata::engine::ModelConfigToJson(c).dump();
  return 0;
}
