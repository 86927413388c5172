#include "engine/tokenizer/json_fields.h"

#include "absl/strings/str_cat.h"

namespace strata::engine {
namespace {

const nlohmann::json* Find(const nlohmann::json& obj, std::string_view name) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(std::string(name));
  return it == obj.end() ? nullptr : &*it;
}

absl::Status CheckObject(const nlohmann::json& obj, std::string_view parent) {
  if (obj.is_object()) return absl::OkStatus();
  return KeyError(parent.empty() ? "<root>" : parent,
                  absl::StrCat("expected an object, got ", obj.type_name()));
}

}  // namespace

std::string JoinKey(std::string_view parent, std::string_view name) {
  if (parent.empty()) return std::string(name);
  return absl::StrCat(AbslView(parent), ".", AbslView(name));
}

std::string IndexKey(std::string_view parent, size_t index) {
  return absl::StrCat(AbslView(parent), "[", index, "]");
}

absl::Status KeyError(std::string_view key, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("key '", AbslView(key), "': ", message));
}

absl::Status UnsupportedType(std::string_view key, std::string_view what, std::string_view type) {
  return absl::UnimplementedError(absl::StrCat("key '", AbslView(key), "': unsupported ",
                                               AbslView(what), " type '", AbslView(type), "'"));
}

absl::StatusOr<std::string> RequiredString(const nlohmann::json& obj, std::string_view name,
                                           std::string_view parent) {
  if (auto status = CheckObject(obj, parent); !status.ok()) return status;
  const nlohmann::json* value = Find(obj, name);
  if (value == nullptr) return KeyError(JoinKey(parent, name), "missing");
  if (!value->is_string()) {
    return KeyError(JoinKey(parent, name),
                    absl::StrCat("expected a string, got ", value->type_name()));
  }
  return value->get<std::string>();
}

absl::StatusOr<std::string> OptionalString(const nlohmann::json& obj, std::string_view name,
                                           std::string_view parent, std::string_view fallback) {
  if (auto status = CheckObject(obj, parent); !status.ok()) return status;
  const nlohmann::json* value = Find(obj, name);
  if (value == nullptr || value->is_null()) return std::string(fallback);
  if (!value->is_string()) {
    return KeyError(JoinKey(parent, name),
                    absl::StrCat("expected a string, got ", value->type_name()));
  }
  return value->get<std::string>();
}

absl::StatusOr<bool> OptionalBool(const nlohmann::json& obj, std::string_view name,
                                  std::string_view parent, bool fallback) {
  if (auto status = CheckObject(obj, parent); !status.ok()) return status;
  const nlohmann::json* value = Find(obj, name);
  if (value == nullptr || value->is_null()) return fallback;
  if (!value->is_boolean()) {
    return KeyError(JoinKey(parent, name),
                    absl::StrCat("expected a boolean, got ", value->type_name()));
  }
  return value->get<bool>();
}

absl::StatusOr<const nlohmann::json*> RequiredArray(const nlohmann::json& obj,
                                                    std::string_view name,
                                                    std::string_view parent) {
  if (auto status = CheckObject(obj, parent); !status.ok()) return status;
  const nlohmann::json* value = Find(obj, name);
  if (value == nullptr) return KeyError(JoinKey(parent, name), "missing");
  if (!value->is_array()) {
    return KeyError(JoinKey(parent, name),
                    absl::StrCat("expected an array, got ", value->type_name()));
  }
  return value;
}

absl::StatusOr<std::string> ComponentType(const nlohmann::json& obj, std::string_view key) {
  return RequiredString(obj, "type", key);
}

}  // namespace strata::engine
