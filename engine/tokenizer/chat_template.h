// A model's chat template: the Jinja template in tokenizer_config.json
// ("chat_template", a string or a list of named templates, "default" used),
// rendered the way transformers' apply_chat_template renders it: variables
// `messages` (list of {role, content}), `add_generation_prompt`, `tools` and
// `documents` (None), and the special tokens of tokenizer_config.json
// (`bos_token`, `eos_token`, `unk_token`, `pad_token`, ...). The rendered
// text already holds the template's special tokens: encode it without
// add_special_tokens.
//
// Supports what the Llama 3, Qwen 2/2.5/3 and Mistral templates use (see
// jinja_parser.h); a template using anything else fails to load.
// Immutable after Load; Render is thread-safe.
#ifndef STRATA_ENGINE_TOKENIZER_CHAT_TEMPLATE_H_
#define STRATA_ENGINE_TOKENIZER_CHAT_TEMPLATE_H_

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/tokenizer/jinja_parser.h"
#include "engine/tokenizer/jinja_value.h"
#include "nlohmann/json.hpp"

namespace strata::engine {

struct ChatMessage {
  std::string role;
  std::string content;
};

class ChatTemplate {
 public:
  // Reads `dir`/tokenizer_config.json. nullptr when the file or its
  // chat_template is absent (a model without a chat template).
  // INVALID_ARGUMENT "FILE: chat_template: line N: ..." for a template that
  // does not parse or uses what is not supported; INVALID_ARGUMENT for
  // malformed JSON.
  static absl::StatusOr<std::unique_ptr<ChatTemplate>> Load(const std::filesystem::path& dir);

  // A template from its source; `config` supplies the special tokens (a
  // tokenizer_config.json object; may be empty). INVALID_ARGUMENT
  // "chat_template: line N: ..." as above.
  static absl::StatusOr<std::unique_ptr<ChatTemplate>> Create(std::string_view source,
                                                              const nlohmann::json& config);

  // The prompt for `messages`. `extra` adds or overrides variables (e.g.
  // Qwen 3's enable_thinking). INVALID_ARGUMENT with the template's own
  // message when it rejects the conversation (raise_exception, e.g. roles
  // that do not alternate) or "line N: ..." for a type error.
  absl::StatusOr<std::string> Render(absl::Span<const ChatMessage> messages,
                                     bool add_generation_prompt,
                                     const jinja::Dict& extra = {}) const;

 private:
  ChatTemplate(std::unique_ptr<jinja::Template> parsed, jinja::Dict special_tokens)
      : parsed_(std::move(parsed)), special_tokens_(std::move(special_tokens)) {}

  std::unique_ptr<jinja::Template> parsed_;
  jinja::Dict special_tokens_;
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_TOKENIZER_CHAT_TEMPLATE_H_
