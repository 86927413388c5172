// The pre-tokenizer of tokenizer.json ("pre_tokenizer" key): splits
// normalized text into the pieces BPE runs on. Supports Split (regex or
// string pattern, every behavior, invert), ByteLevel (optional GPT-2 regex
// split and prefix space, then the byte -> unicode mapping) and Sequence,
// with the semantics of the Hugging Face tokenizers library.
#ifndef STRATA_ENGINE_TOKENIZER_PRE_TOKENIZER_H_
#define STRATA_ENGINE_TOKENIZER_PRE_TOKENIZER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace strata::engine {

class PreTokenizer {
 public:
  // `json` is the pre-tokenizer object found at `key` (for error messages).
  // Returns nullptr for JSON null (the whole text is one piece).
  // UNIMPLEMENTED names an unsupported type; INVALID_ARGUMENT a bad field.
  static absl::StatusOr<std::unique_ptr<PreTokenizer>> FromJson(const nlohmann::json& json,
                                                                std::string_view key);

  virtual ~PreTokenizer() = default;

  // Replaces every piece of `pieces` (valid UTF-8) by its sub-pieces, in
  // order; empty pieces are dropped. Fails only if a regex fails (INTERNAL).
  // Thread-safe.
  virtual absl::Status PreTokenize(std::vector<std::string>& pieces) const = 0;
};

// How Split treats the matches of its pattern (the library's
// SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

}  // namespace strata::engine

#endif  // STRATA_ENGINE_TOKENIZER_PRE_TOKENIZER_H_
