// The normalizer of tokenizer.json ("normalizer" key): rewrites the text
// before pre-tokenization. Supports NFC, NFD, NFKC, NFKD (utf8proc), Prepend,
// Replace (string or regex pattern), Strip and Sequence, with the semantics of
// the Hugging Face tokenizers library.
#ifndef STRATA_ENGINE_TOKENIZER_NORMALIZER_H_
#define STRATA_ENGINE_TOKENIZER_NORMALIZER_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace strata::engine {

class Normalizer {
 public:
  // `json` is the normalizer object found at `key` (for error messages).
  // Returns nullptr for JSON null (no normalization). UNIMPLEMENTED names an
  // unsupported type; INVALID_ARGUMENT a malformed field.
  static absl::StatusOr<std::unique_ptr<Normalizer>> FromJson(const nlohmann::json& json,
                                                              std::string_view key);

  virtual ~Normalizer() = default;

  // Normalizes `text` (valid UTF-8) in place; the result is valid UTF-8.
  // Fails only if a regex or utf8proc fails (INTERNAL). Thread-safe.
  virtual absl::Status Normalize(std::string& text) const = 0;
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_TOKENIZER_NORMALIZER_H_
