// The decoder pipeline of tokenizer.json ("decoder" key): turns vocabulary
// pieces back into text. Supports ByteLevel, Replace, ByteFallback, Fuse,
// Strip, Metaspace and Sequence, as the Hugging Face tokenizers library does.
#ifndef STRATA_ENGINE_TOKENIZER_DECODER_H_
#define STRATA_ENGINE_TOKENIZER_DECODER_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
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
  // output may end in an incomplete UTF-8 sequence (where the reference
  // library would put U+FFFD), so that streaming can wait for the rest; bytes
  // that can never form valid UTF-8 become U+FFFD, as in the reference
  // library. Thread-safe.
  virtual std::string Decode(std::vector<std::string> tokens) const = 0;
};

// UTF-8 helpers shared by the decode side. Pure and thread-safe.

// Rust's String::from_utf8_lossy, which the reference library uses: each
// maximal ill-formed subsequence becomes one U+FFFD. With
// `keep_incomplete_tail`, a trailing proper prefix of a valid sequence (a
// character cut off mid-way) is copied through unchanged instead.
std::string Utf8Lossy(std::string_view bytes, bool keep_incomplete_tail);

// The number of bytes at the end of `text` that form a proper prefix of a
// valid UTF-8 sequence (a character that more bytes could still complete);
// 0 if `text` ends on a character boundary or in an invalid sequence.
size_t IncompleteUtf8TailLength(std::string_view text);

}  // namespace strata::engine

#endif  // STRATA_ENGINE_TOKENIZER_DECODER_H_
