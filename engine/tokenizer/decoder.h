// The decoder pipeline of tokenizer.json ("decoder" key): turns vocabulary
// pieces back into text. Supports ByteLevel, Replace, ByteFallback, Fuse,
// Strip, Metaspace and Sequence, as the Hugging Face tokenizers library does.
#ifndef STRATA_ENGINE_TOKENIZER_DECODER_H_
#define STRATA_ENGINE_TOKENIZER_DECODER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace strata::engine {

class Decoder {
 public:
  // `json` is the value of the "decoder" key; null means plain concatenation.
  // UNIMPLEMENTED names an unsupported decoder type; INVALID_ARGUMENT a bad field.
  static absl::StatusOr<std::unique_ptr<Decoder>> FromJson(const nlohmann::json& json);

  virtual ~Decoder() = default;

  // Runs the decode chain over `tokens` and concatenates the result. The
  // output may end in an incomplete UTF-8 sequence; bytes that can never form
  // valid UTF-8 become U+FFFD, as in the reference library. Thread-safe.
  virtual std::string Decode(std::vector<std::string> tokens) const = 0;
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_TOKENIZER_DECODER_H_
