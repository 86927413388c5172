// Encoding and decoding arbitrary text with real tokenizers: the embedded
// model's (SentencePiece-style BPE with byte fallback) and, when the test
// data has been fetched, Qwen3's and Llama 3's (byte-level BPE, regex
// pre-tokenizer). The first input byte picks the tokenizer and the special
// tokens flag. Valid UTF-8 must encode; every id must be in the vocabulary,
// and the ids must decode.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>
#include <vector>

#include "engine/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

std::vector<std::unique_ptr<strata::engine::Tokenizer>>& Tokenizers() {
  static auto* const tokenizers = [] {
    auto* loaded = new std::vector<std::unique_ptr<strata::engine::Tokenizer>>();
    const std::filesystem::path root(STRATA_SOURCE_DIR);
    for (const std::filesystem::path& dir :
         {root / "models/aidreams260K", root / "build/testdata/tokenizers/qwen3",
          root / "build/testdata/tokenizers/llama3"}) {
      if (!std::filesystem::exists(dir / "tokenizer.json")) continue;
      auto tokenizer = strata::engine::Tokenizer::Load(dir);
      if (!tokenizer.ok()) strata::fuzz::Fail("a test tokenizer does not load");
      loaded->push_back(*std::move(tokenizer));
    }
    return loaded;
  }();
  return *tokenizers;
}

bool IsUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto lead = static_cast<unsigned char>(s[i]);
    size_t length = lead < 0x80         ? 1
                    : (lead >> 5) == 6  ? 2
                    : (lead >> 4) == 14 ? 3
                    : (lead >> 3) == 30 ? 4
                                        : 0;
    if (length == 0 || i + length > s.size()) return false;
    uint32_t cp = length == 1 ? lead : lead & (0x7F >> length);
    for (size_t k = 1; k < length; ++k) {
      const auto byte = static_cast<unsigned char>(s[i + k]);
      if ((byte & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (byte & 0x3F);
    }
    static constexpr uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kSmallest[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += length;
  }
  return true;
}

}  // namespace

// Loading the byte-level tokenizers takes seconds under ASan: done once
// here, outside the per-input timeout.
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  Tokenizers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto& tokenizers = Tokenizers();
  const strata::engine::Tokenizer& t = *tokenizers[data[0] % tokenizers.size()];
  const bool special = (data[0] / tokenizers.size()) % 2 == 1;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  auto ids = t.Encode(text, special);
  if (!ids.ok()) {
    if (IsUtf8(text)) strata::fuzz::Fail("valid UTF-8 failed to encode");
    return 0;
  }
  for (strata::engine::TokenId id : *ids) {
    if (id < 0 || id >= t.vocab_size()) strata::fuzz::Fail("Encode gave an id outside the vocab");
  }
  if (!t.Decode(*ids, /*skip_special_tokens=*/false).ok()) strata::fuzz::Fail("Decode failed");
  return 0;
}
