// Tokenizer::Load on an arbitrary tokenizer.json. A tokenizer it accepts must
// encode and decode without crashing, with every id inside its vocabulary.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  strata::fuzz::WriteScratch("tokenizer.json", data, size);
  auto tokenizer = strata::engine::Tokenizer::Load(strata::fuzz::ScratchDir());
  if (!tokenizer.ok()) return 0;
  const strata::engine::Tokenizer& t = **tokenizer;
  for (bool special : {false, true}) {
    auto ids = t.Encode("Hello world, 123 \xE2\x98\x83 <s>\n\ttabs", special);
    if (!ids.ok()) continue;
    for (strata::engine::TokenId id : *ids) {
      if (id < 0 || id >= t.vocab_size()) strata::fuzz::Fail("Encode gave an id outside the vocab");
    }
    (void)t.Decode(*ids, /*skip_special_tokens=*/special);
  }
  const int64_t probe = t.vocab_size() < 64 ? t.vocab_size() : 64;
  for (strata::engine::TokenId id = 0; id < probe; ++id) {
    (void)t.IdToToken(id);
    (void)t.IsSpecial(id);
    const std::vector<strata::engine::TokenId> one = {id};
    (void)t.Decode(one, false);
  }
  return 0;
}
