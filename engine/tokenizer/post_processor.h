// The post-processor of tokenizer.json ("post_processor" key): adds the
// special tokens of the single-sequence template when add_special_tokens is
// set. Supports TemplateProcessing, BertProcessing, RobertaProcessing,
// ByteLevel (offsets only, so a no-op on ids) and Sequence.
#ifndef STRATA_ENGINE_TOKENIZER_POST_PROCESSOR_H_
#define STRATA_ENGINE_TOKENIZER_POST_PROCESSOR_H_

#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace strata::engine {

class PostProcessor {
 public:
  // `json` is the post-processor object found at `key`; null means none
  // (returns nullptr). UNIMPLEMENTED names an unsupported type;
  // INVALID_ARGUMENT a malformed template or special-token entry.
  static absl::StatusOr<std::unique_ptr<PostProcessor>> FromJson(const nlohmann::json& json,
                                                                 std::string_view key);

  virtual ~PostProcessor() = default;

  // Rewrites the ids of one encoded sequence; without `add_special_tokens`
  // they are left as they are. Thread-safe.
  virtual void Process(std::vector<TokenId>& ids, bool add_special_tokens) const = 0;
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_TOKENIZER_POST_PROCESSOR_H_
