#include "engine/tokenizer/jinja_value.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace strata::engine::jinja {

Value Value::None() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}
Value Value::Bool(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.b_ = b;
  return v;
}
Value Value::Int(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.i_ = i;
  return v;
}
Value Value::Float(double d) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.d_ = d;
  return v;
}
Value Value::String(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.s_ = std::make_shared<const std::string>(std::move(s));
  return v;
}
Value Value::MakeList(List items) {
  Value v;
  v.kind_ = Kind::kList;
  v.list_ = std::make_shared<const List>(std::move(items));
  return v;
}
Value Value::MakeDict(Dict items) {
  Value v;
  v.kind_ = Kind::kDict;
  v.dict_ = std::make_shared<Dict>(std::move(items));
  return v;
}
Value Value::MakeNamespace(Dict items) {
  Value v = MakeDict(std::move(items));
  v.kind_ = Kind::kNamespace;
  return v;
}

Value Value::FromJson(const nlohmann::ordered_json& json) {
  switch (json.type()) {
    case nlohmann::ordered_json::value_t::null:
      return None();
    case nlohmann::ordered_json::value_t::boolean:
      return Bool(json.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
    case nlohmann::ordered_json::value_t::number_unsigned:
      return Int(json.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_float:
      return Float(json.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return String(json.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      List items;
      for (const nlohmann::ordered_json& item : json) items.push_back(FromJson(item));
      return MakeList(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict items;
      for (const auto& [key, item] : json.items()) items.emplace_back(key, FromJson(item));
      return MakeDict(std::move(items));
    }
    default:
      return Value();
  }
}

std::optional<Value> Value::Get(std::string_view key) const {
  if (!is_mapping()) return std::nullopt;
  for (const auto& [name, value] : *dict_) {
    if (name == key) return value;
  }
  return std::nullopt;
}

void Value::SetAttribute(const std::string& key, Value value) {
  for (auto& [name, old] : *dict_) {
    if (name == key) {
      old = std::move(value);
      return;
    }
  }
  dict_->emplace_back(key, std::move(value));
}

bool Value::Truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return b_;
    case Kind::kInt:
      return i_ != 0;
    case Kind::kFloat:
      return d_ != 0.0;
    case Kind::kString:
      return !s_->empty();
    case Kind::kList:
      return !list_->empty();
    case Kind::kDict:
      return !dict_->empty();
    case Kind::kNamespace:
      return true;
  }
  return false;
}

namespace {

// Python's repr(float): the shortest string that reads back, with ".0" on
// integral values.
std::string FloatRepr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), d);
  std::string out(buffer, end);
  if (out.find_first_of(".en") == std::string::npos) out += ".0";
  return out;
}

std::string StringRepr(const std::string& s) {
  const char quote =
      (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : s) {
    if (c == '\\' || c == quote) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

void AppendJsonString(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char hex[8];
          std::snprintf(hex, sizeof(hex), "\\u%04x", c);
          out += hex;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

}  // namespace

std::string Value::ToString() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "";
    case Kind::kString:
      return *s_;
    default:
      return Repr();
  }
}

std::string Value::Repr() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "";
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return b_ ? "True" : "False";
    case Kind::kInt:
      return absl::StrCat(i_);
    case Kind::kFloat:
      return FloatRepr(d_);
    case Kind::kString:
      return StringRepr(*s_);
    case Kind::kList: {
      std::string out = "[";
      for (size_t i = 0; i < list_->size(); ++i) {
        if (i > 0) out += ", ";
        out += (*list_)[i].Repr();
      }
      return out + "]";
    }
    case Kind::kDict: {
      std::string out = "{";
      for (size_t i = 0; i < dict_->size(); ++i) {
        if (i > 0) out += ", ";
        out += StringRepr((*dict_)[i].first) + ": " + (*dict_)[i].second.Repr();
      }
      return out + "}";
    }
    case Kind::kNamespace:
      return "<Namespace>";
  }
  return "";
}

absl::StatusOr<std::string> Value::ToJson(std::optional<int> indent) const {
  std::string out;
  if (absl::Status status = AppendJson(indent, 0, out); !status.ok()) return status;
  return out;
}

absl::Status Value::AppendJson(std::optional<int> indent, int depth, std::string& out) const {
  // json.dumps separators: ", " and ": " without indent, "," + newline with it.
  auto newline = [&](int level) {
    if (!indent.has_value()) return;
    out += '\n';
    out.append(static_cast<size_t>(*indent) * level, ' ');
  };
  const char* item_separator = indent.has_value() ? "," : ", ";
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNamespace:
      return absl::InvalidArgumentError(
          absl::StrCat("tojson: cannot serialize ", std::string(TypeName())));
    case Kind::kNone:
      out += "null";
      return absl::OkStatus();
    case Kind::kBool:
      out += b_ ? "true" : "false";
      return absl::OkStatus();
    case Kind::kInt:
    case Kind::kFloat:
      out += kind_ == Kind::kInt ? absl::StrCat(i_)
             : std::isnan(d_)    ? "NaN"
             : std::isinf(d_)    ? (d_ > 0 ? "Infinity" : "-Infinity")
                                 : FloatRepr(d_);
      return absl::OkStatus();
    case Kind::kString:
      AppendJsonString(*s_, out);
      return absl::OkStatus();
    case Kind::kList: {
      if (list_->empty()) {
        out += "[]";
        return absl::OkStatus();
      }
      out += '[';
      for (size_t i = 0; i < list_->size(); ++i) {
        if (i > 0) out += item_separator;
        newline(depth + 1);
        if (absl::Status s = (*list_)[i].AppendJson(indent, depth + 1, out); !s.ok()) return s;
      }
      newline(depth);
      out += ']';
      return absl::OkStatus();
    }
    case Kind::kDict: {
      if (dict_->empty()) {
        out += "{}";
        return absl::OkStatus();
      }
      out += '{';
      for (size_t i = 0; i < dict_->size(); ++i) {
        if (i > 0) out += item_separator;
        newline(depth + 1);
        AppendJsonString((*dict_)[i].first, out);
        out += ": ";
        if (absl::Status s = (*dict_)[i].second.AppendJson(indent, depth + 1, out); !s.ok()) {
          return s;
        }
      }
      newline(depth);
      out += '}';
      return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

bool Value::Equals(const Value& other) const {
  if (is_number() && other.is_number()) {
    if (kind_ == Kind::kInt && other.kind_ == Kind::kInt) return i_ == other.i_;
    return number() == other.number();
  }
  // Python: True == 1; keep it simple and compare bools with bools only.
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return true;
    case Kind::kBool:
      return b_ == other.b_;
    case Kind::kString:
      return *s_ == *other.s_;
    case Kind::kList:
      if (list_->size() != other.list_->size()) return false;
      for (size_t i = 0; i < list_->size(); ++i) {
        if (!(*list_)[i].Equals((*other.list_)[i])) return false;
      }
      return true;
    case Kind::kDict:
      if (dict_->size() != other.dict_->size()) return false;
      for (const auto& [key, value] : *dict_) {
        std::optional<Value> theirs = other.Get(key);
        if (!theirs.has_value() || !value.Equals(*theirs)) return false;
      }
      return true;
    case Kind::kNamespace:
      return dict_ == other.dict_;
    default:
      return false;
  }
}

std::string_view Value::TypeName() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kNamespace:
      return "Namespace";
  }
  return "?";
}

}  // namespace strata::engine::jinja
