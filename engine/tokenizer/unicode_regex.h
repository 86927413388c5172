// A compiled PCRE2 pattern in UTF + Unicode-property mode, used where
// tokenizer.json gives a regex (Split pre-tokenizer, ByteLevel's GPT-2 split,
// Replace normalizer). PCRE2 with PCRE2_UCP gives \p{L}, \p{N}, Unicode \s and
// look-ahead, which the Hugging Face (Oniguruma) patterns rely on.
#ifndef STRATA_ENGINE_TOKENIZER_UNICODE_REGEX_H_
#define STRATA_ENGINE_TOKENIZER_UNICODE_REGEX_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace strata::engine {

// Byte offsets [begin, end) of one match in the searched text.
struct RegexMatch {
  size_t begin = 0;
  size_t end = 0;
};

class UnicodeRegex {
 public:
  // Compiles `pattern`; with `literal` the pattern is matched as plain text.
  // INVALID_ARGUMENT (with PCRE2's message and offset) if it does not compile.
  static absl::StatusOr<std::unique_ptr<UnicodeRegex>> Compile(std::string_view pattern,
                                                               bool literal);

  ~UnicodeRegex();
  UnicodeRegex(const UnicodeRegex&) = delete;
  UnicodeRegex& operator=(const UnicodeRegex&) = delete;

  // Appends every non-overlapping match in `text` (valid UTF-8, unchecked) to
  // `matches`, left to right; after an empty match the search moves on one
  // code point, as Rust's find_iter does. INTERNAL if PCRE2 gives up (match
  // or heap limit). Thread-safe: match state is per call.
  absl::Status FindAll(std::string_view text, std::vector<RegexMatch>& matches) const;

  const std::string& pattern() const { return pattern_; }

 private:
  UnicodeRegex(std::string pattern, void* code, bool jit)
      : pattern_(std::move(pattern)), code_(code), jit_(jit) {}

  std::string pattern_;
  void* code_;  // pcre2_code_8*, owned; void* keeps pcre2.h out of the header
  bool jit_;
};

// A tokenizer.json pattern object at `key`: {"String": s} (literal) or
// {"Regex": r}. INVALID_ARGUMENT naming `key` otherwise.
absl::StatusOr<std::unique_ptr<UnicodeRegex>> PatternFromJson(const nlohmann::json& json,
                                                              std::string_view key);

}  // namespace strata::engine

#endif  // STRATA_ENGINE_TOKENIZER_UNICODE_REGEX_H_
