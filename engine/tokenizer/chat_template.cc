#include "engine/tokenizer/chat_template.h"

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/tokenizer/jinja_renderer.h"

namespace strata::engine {
namespace {

constexpr const char* kSpecialTokenKeys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                             "pad_token", "cls_token", "mask_token"};

// A special token is a string or an AddedToken object {"content": ...}.
jinja::Value SpecialToken(const nlohmann::json& value) {
  if (value.is_string()) return jinja::Value::String(value.get<std::string>());
  if (value.is_object() && value.contains("content") && value["content"].is_string()) {
    return jinja::Value::String(value["content"].get<std::string>());
  }
  return jinja::Value::None();
}

// The template source: a string, or the "default" entry of a list of
// {name, template}; nullopt when there is none.
absl::StatusOr<std::optional<std::string>> TemplateSource(const nlohmann::json& config) {
  if (!config.is_object() || !config.contains("chat_template")) return std::nullopt;
  const nlohmann::json& value = config["chat_template"];
  if (value.is_null()) return std::nullopt;
  if (value.is_string()) return value.get<std::string>();
  if (value.is_array()) {
    for (const nlohmann::json& entry : value) {
      if (entry.is_object() && entry.contains("name") && entry["name"] == "default" &&
          entry.contains("template") && entry["template"].is_string()) {
        return entry["template"].get<std::string>();
      }
    }
    return absl::InvalidArgumentError("chat_template: a list without a \"default\" template");
  }
  return absl::InvalidArgumentError("chat_template: expected a string or a list");
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChatTemplate>> ChatTemplate::Load(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / "tokenizer_config.json";
  std::ifstream file(path, std::ios::binary);
  if (!file) return nullptr;
  std::ostringstream bytes;
  bytes << file.rdbuf();
  nlohmann::json config = nlohmann::json::parse(bytes.str(), nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": malformed JSON"));
  }
  absl::StatusOr<std::optional<std::string>> source = TemplateSource(config);
  if (!source.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": ", source.status().message()));
  }
  if (!source->has_value()) return nullptr;
  absl::StatusOr<std::unique_ptr<ChatTemplate>> created = Create(**source, config);
  if (!created.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), ": ", created.status().message()));
  }
  return created;
}

absl::StatusOr<std::unique_ptr<ChatTemplate>> ChatTemplate::Create(std::string_view source,
                                                                   const nlohmann::json& config) {
  absl::StatusOr<std::unique_ptr<jinja::Template>> parsed = jinja::Parse(source);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("chat_template: ", parsed.status().message()));
  }
  jinja::Dict special_tokens;
  for (const char* key : kSpecialTokenKeys) {
    if (config.is_object() && config.contains(key)) {
      special_tokens.emplace_back(key, SpecialToken(config[key]));
    }
  }
  jinja::List additional;
  if (config.is_object() && config.contains("additional_special_tokens") &&
      config["additional_special_tokens"].is_array()) {
    for (const nlohmann::json& token : config["additional_special_tokens"]) {
      additional.push_back(SpecialToken(token));
    }
  }
  special_tokens.emplace_back("additional_special_tokens",
                              jinja::Value::MakeList(std::move(additional)));
  return std::unique_ptr<ChatTemplate>(
      new ChatTemplate(*std::move(parsed), std::move(special_tokens)));
}

absl::StatusOr<std::string> ChatTemplate::Render(absl::Span<const ChatMessage> messages,
                                                 bool add_generation_prompt,
                                                 const jinja::Dict& extra) const {
  jinja::List list;
  for (const ChatMessage& message : messages) {
    list.push_back(jinja::Value::MakeDict({{"role", jinja::Value::String(message.role)},
                                           {"content", jinja::Value::String(message.content)}}));
  }
  // The variables apply_chat_template passes; later entries win.
  jinja::Dict globals = special_tokens_;
  globals.emplace_back("messages", jinja::Value::MakeList(std::move(list)));
  globals.emplace_back("add_generation_prompt", jinja::Value::Bool(add_generation_prompt));
  globals.emplace_back("tools", jinja::Value::None());
  globals.emplace_back("documents", jinja::Value::None());
  globals.insert(globals.end(), extra.begin(), extra.end());
  return jinja::Render(*parsed_, globals);
}

}  // namespace strata::engine
