// The values a chat template computes with: Jinja's view of Python's None,
// bool, int, float, str, list and dict (string keys, insertion order), plus
// Undefined (a missing variable or key) and namespace() objects, the one
// mutable kind. Lists and dicts are shared immutable snapshots, so copying a
// Value is cheap. Printing, truthiness, equality and tojson follow Python and
// Jinja 2 as Hugging Face's apply_chat_template runs them.
//
// Not thread-safe to mutate a namespace from two threads; a rendering owns
// every namespace it creates, so concurrent renderings never share one.
#ifndef STRATA_ENGINE_TOKENIZER_JINJA_VALUE_H_
#define STRATA_ENGINE_TOKENIZER_JINJA_VALUE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace strata::engine::jinja {

class Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace };

  Value() = default;  // Undefined
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double d);
  static Value String(std::string s);
  static Value MakeList(List items);
  static Value MakeDict(Dict items);
  static Value MakeNamespace(Dict items);
  // JSON null/bool/number/string/array/object to the matching value (an
  // ordered_json keeps the objects' key order, which tojson prints).
  static Value FromJson(const nlohmann::ordered_json& json);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat; }
  bool is_mapping() const { return kind_ == Kind::kDict || kind_ == Kind::kNamespace; }

  bool boolean() const { return b_; }
  int64_t integer() const { return i_; }
  double number() const { return kind_ == Kind::kInt ? static_cast<double>(i_) : d_; }
  const std::string& str() const { return *s_; }
  const List& list() const { return *list_; }
  const Dict& dict() const { return *dict_; }

  // The value of `key` in a dict or namespace; nullopt when absent.
  std::optional<Value> Get(std::string_view key) const;
  // Sets `key` of a namespace (the only mutable kind).
  void SetAttribute(const std::string& key, Value value);

  // Python truthiness (Undefined is false).
  bool Truthy() const;
  // What `{{ value }}` prints: str() in Python ("True", "None", "['a', 1]");
  // Undefined prints nothing.
  std::string ToString() const;
  // Python repr() (strings quoted), as inside a printed list.
  std::string Repr() const;
  // json.dumps(value, ensure_ascii=False, indent=indent) as transformers'
  // tojson filter writes it; INVALID_ARGUMENT for Undefined or a namespace.
  absl::StatusOr<std::string> ToJson(std::optional<int> indent) const;
  // Python ==.
  bool Equals(const Value& other) const;
  // The type name in error messages ("str", "list", "undefined", ...).
  std::string_view TypeName() const;

 private:
  absl::Status AppendJson(std::optional<int> indent, int depth, std::string& out) const;

  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  int64_t i_ = 0;
  double d_ = 0;
  std::shared_ptr<const std::string> s_;
  std::shared_ptr<const List> list_;
  std::shared_ptr<Dict> dict_;  // mutable only for namespaces
};

}  // namespace strata::engine::jinja

#endif  // STRATA_ENGINE_TOKENIZER_JINJA_VALUE_H_
