// Typed, non-throwing access to tokenizer.json fields. Every error names the
// full key (e.g. "pre_tokenizer.pretokenizers[1].behavior"); the loader adds
// the file name. Pure functions, thread-safe.
#ifndef STRATA_ENGINE_TOKENIZER_JSON_FIELDS_H_
#define STRATA_ENGINE_TOKENIZER_JSON_FIELDS_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace strata::engine {

// Debian's abseil is built with its own string_view, which StrCat needs.
inline absl::string_view AbslView(std::string_view text) { return {text.data(), text.size()}; }

// "parent.name", or "name" at the top level.
std::string JoinKey(std::string_view parent, std::string_view name);
// "parent[index]".
std::string IndexKey(std::string_view parent, size_t index);

// INVALID_ARGUMENT "key 'KEY': MESSAGE".
absl::Status KeyError(std::string_view key, absl::string_view message);
// UNIMPLEMENTED "key 'KEY': unsupported WHAT type 'TYPE'".
absl::Status UnsupportedType(std::string_view key, std::string_view what, std::string_view type);

// The required string `obj[name]`; INVALID_ARGUMENT if `obj` is not an
// object or the field is absent or not a string.
absl::StatusOr<std::string> RequiredString(const nlohmann::json& obj, std::string_view name,
                                           std::string_view parent);
// `obj[name]` if it is a string; `fallback` if absent or null.
absl::StatusOr<std::string> OptionalString(const nlohmann::json& obj, std::string_view name,
                                           std::string_view parent, std::string_view fallback);
// `obj[name]` if it is a bool; `fallback` if absent or null.
absl::StatusOr<bool> OptionalBool(const nlohmann::json& obj, std::string_view name,
                                  std::string_view parent, bool fallback);
// The required array `obj[name]`; borrowed from `obj`.
absl::StatusOr<const nlohmann::json*> RequiredArray(const nlohmann::json& obj,
                                                    std::string_view name, std::string_view parent);
// The "type" field of a component object.
absl::StatusOr<std::string> ComponentType(const nlohmann::json& obj, std::string_view key);

}  // namespace strata::engine

#endif  // STRATA_ENGINE_TOKENIZER_JSON_FIELDS_H_
