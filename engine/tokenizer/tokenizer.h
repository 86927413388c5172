// A Hugging Face tokenizer read from tokenizer.json (+ tokenizer_config.json):
// byte-level BPE (Llama 3, Qwen 2/3) and SentencePiece-style BPE with byte
// fallback (Mistral, Llama 2). Output matches the `tokenizers` library.
#ifndef STRATA_ENGINE_TOKENIZER_TOKENIZER_H_
#define STRATA_ENGINE_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace strata::engine {

using TokenId = int32_t;

class Tokenizer {
 public:
  // Reads `dir`/tokenizer.json and, if present, `dir`/tokenizer_config.json.
  // Errors name the file and the key: NOT_FOUND, INVALID_ARGUMENT (malformed
  // JSON or value), UNIMPLEMENTED (a model/normalizer/pre-tokenizer/decoder
  // type this implementation does not support).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(
      const std::filesystem::path& dir);

  virtual ~Tokenizer() = default;

  // Text to ids. With `add_special_tokens`, the post-processor's template
  // (BOS/EOS) is applied. Added/special tokens in the text are always matched.
  // INVALID_ARGUMENT if `text` is not valid UTF-8. Thread-safe.
  virtual absl::StatusOr<std::vector<TokenId>> Encode(
      std::string_view text, bool add_special_tokens) const = 0;

  // Ids to text through the decoder pipeline. INVALID_ARGUMENT for an id
  // outside the vocabulary. May return broken UTF-8 at the end when the ids
  // stop mid-character (byte tokens); see IncrementalDetokenizer. Thread-safe.
  virtual absl::StatusOr<std::string> Decode(absl::Span<const TokenId> ids,
                                             bool skip_special_tokens) const = 0;

  virtual int64_t vocab_size() const = 0;  // including added tokens
  virtual std::optional<TokenId> TokenToId(std::string_view token) const = 0;
  virtual std::optional<std::string> IdToToken(TokenId id) const = 0;
  virtual bool IsSpecial(TokenId id) const = 0;
  virtual std::optional<TokenId> bos_id() const = 0;
  virtual std::optional<TokenId> eos_id() const = 0;
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_TOKENIZER_TOKENIZER_H_
