#include "engine/tokenizer/jinja_builtins.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace strata::engine::jinja {
namespace {

using Kind = Value::Kind;

constexpr std::string_view kWhitespace = " \t\n\r\v\f";

absl::Status Error(int line, std::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", std::string(message)));
}

absl::Status WrongArgs(int line, std::string_view name) {
  return Error(line, absl::StrCat("wrong arguments to '", std::string(name), "'"));
}

const Value* Kwarg(const Dict& kwargs, std::string_view name) {
  for (const auto& [key, value] : kwargs) {
    if (key == name) return &value;
  }
  return nullptr;
}

// The argument at `index`, or keyword `name`, or nullptr.
const Value* Arg(const std::vector<Value>& args, const Dict& kwargs, size_t index,
                 std::string_view name) {
  if (index < args.size()) return &args[index];
  return Kwarg(kwargs, name);
}

std::string Strip(std::string_view text, std::string_view chars, bool left, bool right) {
  size_t begin = 0;
  size_t end = text.size();
  if (left) {
    while (begin < end && chars.find(text[begin]) != std::string_view::npos) ++begin;
  }
  if (right) {
    while (end > begin && chars.find(text[end - 1]) != std::string_view::npos) --end;
  }
  return std::string(text.substr(begin, end - begin));
}

std::string MapChars(std::string text, bool upper) {
  for (char& c : text) {
    c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c))
                                : std::tolower(static_cast<unsigned char>(c)));
  }
  return text;
}

std::string Capitalize(const std::string& text) {
  std::string out = MapChars(text, false);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

std::string Title(const std::string& text) {
  std::string out = text;
  bool start = true;
  for (char& c : out) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (std::isalpha(u)) {
      c = static_cast<char>(start ? std::toupper(u) : std::tolower(u));
      start = false;
    } else {
      start = true;
    }
  }
  return out;
}

std::string Replace(const std::string& text, const std::string& from, const std::string& to,
                    int64_t count) {
  if (from.empty()) return text;
  std::string out;
  size_t pos = 0;
  for (int64_t n = 0; count < 0 || n < count; ++n) {
    size_t found = text.find(from, pos);
    if (found == std::string::npos) break;
    out.append(text, pos, found - pos);
    out += to;
    pos = found + from.size();
  }
  out.append(text, pos);
  return out;
}

// Python's str.split(sep=None, maxsplit=-1).
List Split(const std::string& text, const Value* sep, int64_t max_split) {
  List parts;
  if (sep == nullptr || sep->is_none()) {
    size_t i = 0;
    while (true) {
      while (i < text.size() && kWhitespace.find(text[i]) != std::string_view::npos) ++i;
      if (i >= text.size()) break;
      if (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split) {
        parts.push_back(Value::String(Strip(text.substr(i), kWhitespace, false, true)));
        break;
      }
      size_t end = i;
      while (end < text.size() && kWhitespace.find(text[end]) == std::string_view::npos) ++end;
      parts.push_back(Value::String(text.substr(i, end - i)));
      i = end;
    }
    return parts;
  }
  const std::string& separator = sep->str();
  size_t pos = 0;
  while (max_split < 0 || static_cast<int64_t>(parts.size()) < max_split) {
    size_t found = text.find(separator, pos);
    if (found == std::string::npos) break;
    parts.push_back(Value::String(text.substr(pos, found - pos)));
    pos = found + separator.size();
  }
  parts.push_back(Value::String(text.substr(pos)));
  return parts;
}

int64_t Length(const Value& value) {
  switch (value.kind()) {
    case Kind::kString:
      return static_cast<int64_t>(CodePoints(value.str()).size());
    case Kind::kList:
      return static_cast<int64_t>(value.list().size());
    case Kind::kDict:
    case Kind::kNamespace:
      return static_cast<int64_t>(value.dict().size());
    default:
      return 0;
  }
}

absl::StatusOr<Value> Join(const Value& items, const std::string& separator, const Value* attribute,
                           int line) {
  absl::StatusOr<List> list = Iterate(items, line);
  if (!list.ok()) return list.status();
  std::string out;
  for (size_t i = 0; i < list->size(); ++i) {
    if (i > 0) out += separator;
    const Value& item = (*list)[i];
    out += attribute != nullptr ? item.Get(attribute->ToString()).value_or(Value()).ToString()
                                : item.ToString();
  }
  return Value::String(std::move(out));
}

absl::StatusOr<bool> RunTest(const std::string& name, const Value& value,
                             const std::vector<Value>& args, int line) {
  if (name == "defined") return !value.is_undefined();
  if (name == "undefined") return value.is_undefined();
  if (name == "none") return value.is_none();
  if (name == "string") return value.is_string();
  if (name == "number") return value.is_number() || value.kind() == Kind::kBool;
  if (name == "integer") return value.kind() == Kind::kInt;
  if (name == "float") return value.kind() == Kind::kFloat;
  if (name == "boolean") return value.kind() == Kind::kBool;
  if (name == "true") return value.kind() == Kind::kBool && value.boolean();
  if (name == "false") return value.kind() == Kind::kBool && !value.boolean();
  if (name == "mapping") return value.kind() == Kind::kDict;
  if (name == "iterable" || name == "sequence") {
    return value.is_string() || value.kind() == Kind::kList || value.kind() == Kind::kDict ||
           (name == "iterable" && value.is_undefined());
  }
  if (name == "odd" || name == "even") {
    if (value.kind() != Kind::kInt) return Error(line, absl::StrCat("'", name, "' needs an int"));
    return (value.integer() % 2 != 0) == (name == "odd");
  }
  if (args.size() != 1) return WrongArgs(line, name);
  if (name == "eq" || name == "equalto") return value.Equals(args[0]);
  if (name == "ne") return !value.Equals(args[0]);
  if (name == "in") return Contains(args[0], value, line);
  if (name == "divisibleby") {
    if (value.kind() != Kind::kInt || args[0].kind() != Kind::kInt || args[0].integer() == 0) {
      return WrongArgs(line, name);
    }
    return value.integer() % args[0].integer() == 0;
  }
  return Error(line, absl::StrCat("unsupported test '", name, "'"));
}

// select/reject/selectattr/rejectattr.
absl::StatusOr<Value> SelectFilter(const std::string& name, const Value& input,
                                   const std::vector<Value>& args, int line) {
  const bool by_attribute = name.ends_with("attr");
  const bool keep_matches = name.starts_with("select");
  absl::StatusOr<List> items = Iterate(input, line);
  if (!items.ok()) return items.status();
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.empty() || !args[0].is_string()) return WrongArgs(line, name);
    attribute = args[0].str();
    next = 1;
  }
  std::optional<std::string> test;
  if (next < args.size()) test = args[next++].ToString();
  std::vector<Value> test_args(args.begin() + static_cast<std::ptrdiff_t>(next), args.end());
  List kept;
  for (const Value& item : *items) {
    const Value subject = by_attribute ? item.Get(attribute).value_or(Value()) : item;
    bool match = subject.Truthy();
    if (test.has_value()) {
      absl::StatusOr<bool> result = RunTest(*test, subject, test_args, line);
      if (!result.ok()) return result.status();
      match = *result;
    }
    if (match == keep_matches) kept.push_back(item);
  }
  return Value::MakeList(std::move(kept));
}

absl::StatusOr<Value> RunFilter(const std::string& name, const Value& input,
                                const std::vector<Value>& args, const Dict& kwargs, int line);

absl::StatusOr<Value> MapFilter(const Value& input, const std::vector<Value>& args,
                                const Dict& kwargs, int line) {
  absl::StatusOr<List> items = Iterate(input, line);
  if (!items.ok()) return items.status();
  List mapped;
  const Value* attribute = Kwarg(kwargs, "attribute");
  for (const Value& item : *items) {
    if (attribute != nullptr) {
      std::optional<Value> got = item.Get(attribute->ToString());
      const Value* fallback = Kwarg(kwargs, "default");
      mapped.push_back(got.has_value() ? *got : fallback != nullptr ? *fallback : Value());
      continue;
    }
    if (args.empty() || !args[0].is_string()) return WrongArgs(line, "map");
    std::vector<Value> rest(args.begin() + 1, args.end());
    absl::StatusOr<Value> result = RunFilter(args[0].str(), item, rest, {}, line);
    if (!result.ok()) return result;
    mapped.push_back(*std::move(result));
  }
  return Value::MakeList(std::move(mapped));
}

absl::StatusOr<Value> Indent(const Value& input, const std::vector<Value>& args,
                             const Dict& kwargs) {
  const Value* width = Arg(args, kwargs, 0, "width");
  const Value* first = Arg(args, kwargs, 1, "first");
  const Value* blank = Arg(args, kwargs, 2, "blank");
  const std::string pad = width == nullptr     ? std::string(4, ' ')
                          : width->is_string() ? width->str()
                                               : std::string(width->integer(), ' ');
  const std::string text = input.ToString();
  std::string out;
  size_t pos = 0;
  bool first_line = true;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    const bool indent = first_line ? (first != nullptr && first->Truthy())
                                   : (!line.empty() || (blank != nullptr && blank->Truthy()));
    if (indent) out += pad;
    out += line;
    if (end == text.size()) break;
    out += '\n';
    pos = end + 1;
    first_line = false;
  }
  return Value::String(std::move(out));
}

absl::StatusOr<Value> RunFilter(const std::string& name, const Value& input,
                                const std::vector<Value>& args, const Dict& kwargs, int line) {
  if (name == "trim") {
    const Value* chars = Arg(args, kwargs, 0, "chars");
    return Value::String(
        Strip(input.ToString(), chars ? chars->ToString() : kWhitespace, true, true));
  }
  if (name == "length" || name == "count") return Value::Int(Length(input));
  if (name == "tojson") {
    const Value* indent = Arg(args, kwargs, 0, "indent");
    std::optional<int> spaces;
    if (indent != nullptr && indent->kind() == Kind::kInt)
      spaces = static_cast<int>(indent->integer());
    absl::StatusOr<std::string> json = input.ToJson(spaces);
    if (!json.ok()) return Error(line, std::string(json.status().message()));
    return Value::String(*std::move(json));
  }
  if (name == "upper" || name == "lower")
    return Value::String(MapChars(input.ToString(), name == "upper"));
  if (name == "capitalize") return Value::String(Capitalize(input.ToString()));
  if (name == "title") return Value::String(Title(input.ToString()));
  if (name == "string") return Value::String(input.ToString());
  if (name == "safe") return input;
  if (name == "int" || name == "float") {
    double number = input.is_number()             ? input.number()
                    : input.kind() == Kind::kBool ? input.boolean()
                                                  : 0;
    if (input.is_string()) number = std::strtod(input.str().c_str(), nullptr);
    return name == "int" ? Value::Int(static_cast<int64_t>(number)) : Value::Float(number);
  }
  if (name == "abs") {
    if (input.kind() == Kind::kInt)
      return Value::Int(input.integer() < 0 ? -input.integer() : input.integer());
    if (input.kind() == Kind::kFloat) return Value::Float(std::fabs(input.number()));
    return Error(line, "abs needs a number");
  }
  if (name == "default" || name == "d") {
    const Value* fallback = Arg(args, kwargs, 0, "default_value");
    const Value* boolean = Arg(args, kwargs, 1, "boolean");
    const bool use_fallback =
        input.is_undefined() || (boolean != nullptr && boolean->Truthy() && !input.Truthy());
    if (!use_fallback) return input;
    return fallback != nullptr ? *fallback : Value::String("");
  }
  if (name == "join") {
    const Value* separator = Arg(args, kwargs, 0, "d");
    return Join(input, separator ? separator->ToString() : "", Arg(args, kwargs, 1, "attribute"),
                line);
  }
  if (name == "first" || name == "last" || name == "list" || name == "reverse" ||
      name == "unique") {
    absl::StatusOr<List> items = Iterate(input, line);
    if (!items.ok()) return items.status();
    if (name == "first") return items->empty() ? Value() : items->front();
    if (name == "last") return items->empty() ? Value() : items->back();
    if (name == "reverse") {
      std::reverse(items->begin(), items->end());
      if (input.is_string()) return Join(Value::MakeList(*std::move(items)), "", nullptr, line);
    }
    if (name == "unique") {
      List unique;
      for (const Value& item : *items) {
        if (std::none_of(unique.begin(), unique.end(),
                         [&](const Value& u) { return u.Equals(item); })) {
          unique.push_back(item);
        }
      }
      return Value::MakeList(std::move(unique));
    }
    return Value::MakeList(*std::move(items));
  }
  if (name == "items") {
    if (!input.is_mapping()) return Error(line, "items needs a mapping");
    return CallMethod(input, "items", {}, line);
  }
  if (name == "replace") {
    if (args.size() < 2) return WrongArgs(line, name);
    return Value::String(Replace(input.ToString(), args[0].ToString(), args[1].ToString(),
                                 args.size() > 2 ? args[2].integer() : -1));
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    return SelectFilter(name, input, args, line);
  }
  if (name == "map") return MapFilter(input, args, kwargs, line);
  if (name == "indent") return Indent(input, args, kwargs);
  return Error(line, absl::StrCat("unsupported filter '", name, "'"));
}

absl::Status EvalArguments(const Expr& expr, Evaluator& evaluator, std::vector<Value>& args,
                           Dict& kwargs) {
  for (size_t i = 1; i < expr.operands.size(); ++i) {
    absl::StatusOr<Value> arg = evaluator.Eval(*expr.operands[i]);
    if (!arg.ok()) return arg.status();
    args.push_back(*std::move(arg));
  }
  for (const auto& [key, value_expr] : expr.kwargs) {
    absl::StatusOr<Value> value = evaluator.Eval(*value_expr);
    if (!value.ok()) return value.status();
    kwargs.emplace_back(key, *std::move(value));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> CodePoints(const std::string& text) {
  std::vector<std::string> chars;
  for (size_t i = 0; i < text.size();) {
    size_t length = 1;
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0xF0)
      length = 4;
    else if (c >= 0xE0)
      length = 3;
    else if (c >= 0xC0)
      length = 2;
    chars.push_back(text.substr(i, length));
    i += length;
  }
  return chars;
}

absl::StatusOr<List> Iterate(const Value& value, int line) {
  switch (value.kind()) {
    case Kind::kUndefined:
      return List();
    case Kind::kList:
      return value.list();
    case Kind::kDict: {
      List keys;
      for (const auto& [key, item] : value.dict()) keys.push_back(Value::String(key));
      return keys;
    }
    case Kind::kString: {
      List chars;
      for (std::string& c : CodePoints(value.str())) chars.push_back(Value::String(std::move(c)));
      return chars;
    }
    default:
      return Error(line,
                   absl::StrCat("'", std::string(value.TypeName()), "' object is not iterable"));
  }
}

absl::StatusOr<Value> Slice(const Value& value, std::optional<int64_t> start,
                            std::optional<int64_t> stop, std::optional<int64_t> step, int line) {
  if (value.kind() != Kind::kList && !value.is_string()) {
    return Error(line, absl::StrCat("cannot slice ", std::string(value.TypeName())));
  }
  const int64_t s = step.value_or(1);
  if (s == 0) return Error(line, "slice step cannot be zero");
  absl::StatusOr<List> items = Iterate(value, line);
  if (!items.ok()) return items.status();
  const int64_t n = static_cast<int64_t>(items->size());
  // Python's slice.indices().
  auto clamp = [&](std::optional<int64_t> bound, int64_t fallback) {
    if (!bound.has_value()) return fallback;
    int64_t b = *bound < 0 ? *bound + n : *bound;
    if (s > 0) return std::clamp<int64_t>(b, 0, n);
    return std::clamp<int64_t>(b, -1, n - 1);
  };
  const int64_t begin = clamp(start, s > 0 ? 0 : n - 1);
  const int64_t end = clamp(stop, s > 0 ? n : -1);
  List out;
  for (int64_t i = begin; s > 0 ? i < end : i > end; i += s) out.push_back((*items)[i]);
  if (value.is_string()) return Join(Value::MakeList(std::move(out)), "", nullptr, line);
  return Value::MakeList(std::move(out));
}

absl::StatusOr<bool> Contains(const Value& haystack, const Value& needle, int line) {
  if (haystack.is_string()) {
    if (!needle.is_string()) return Error(line, "'in <string>' requires a string on the left");
    return haystack.str().find(needle.str()) != std::string::npos;
  }
  if (haystack.is_mapping()) return needle.is_string() && haystack.Get(needle.str()).has_value();
  if (haystack.kind() == Kind::kList) {
    return std::any_of(haystack.list().begin(), haystack.list().end(),
                       [&](const Value& item) { return item.Equals(needle); });
  }
  if (haystack.is_undefined()) return false;
  return Error(line, absl::StrCat("argument of type '", std::string(haystack.TypeName()),
                                  "' is not iterable"));
}

absl::StatusOr<Value> ApplyFilter(const Expr& expr, Evaluator& evaluator) {
  absl::StatusOr<Value> input = evaluator.Eval(*expr.operands[0]);
  if (!input.ok()) return input;
  std::vector<Value> args;
  Dict kwargs;
  if (absl::Status s = EvalArguments(expr, evaluator, args, kwargs); !s.ok()) return s;
  return RunFilter(expr.name, *input, args, kwargs, expr.line);
}

absl::StatusOr<Value> ApplyTest(const Expr& expr, Evaluator& evaluator) {
  absl::StatusOr<Value> input = evaluator.Eval(*expr.operands[0]);
  if (!input.ok()) return input;
  std::vector<Value> args;
  Dict kwargs;
  if (absl::Status s = EvalArguments(expr, evaluator, args, kwargs); !s.ok()) return s;
  absl::StatusOr<bool> result = RunTest(expr.name, *input, args, expr.line);
  if (!result.ok()) return result.status();
  return Value::Bool(*result != expr.negated);
}

absl::StatusOr<Value> CallFunction(const std::string& name, const std::vector<Value>& args,
                                   const Dict& kwargs, int line) {
  if (name == "raise_exception") {
    // The template's own message, e.g. "Conversation roles must alternate".
    return absl::InvalidArgumentError(args.empty() ? "raise_exception" : args[0].ToString());
  }
  if (name == "namespace") {
    Dict items;
    if (!args.empty() && args[0].kind() == Kind::kDict) items = args[0].dict();
    items.insert(items.end(), kwargs.begin(), kwargs.end());
    return Value::MakeNamespace(std::move(items));
  }
  if (name == "range") {
    for (const Value& arg : args) {
      if (arg.kind() != Kind::kInt) return WrongArgs(line, name);
    }
    if (args.empty() || args.size() > 3) return WrongArgs(line, name);
    const int64_t start = args.size() == 1 ? 0 : args[0].integer();
    const int64_t stop = args.size() == 1 ? args[0].integer() : args[1].integer();
    const int64_t step = args.size() == 3 ? args[2].integer() : 1;
    if (step == 0) return Error(line, "range() step must not be zero");
    List items;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
      items.push_back(Value::Int(i));
    return Value::MakeList(std::move(items));
  }
  if (name == "strftime_now") {
    if (args.size() != 1 || !args[0].is_string()) return WrongArgs(line, name);
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buffer[256];
    const size_t n = std::strftime(buffer, sizeof(buffer), args[0].str().c_str(), &local);
    return Value::String(std::string(buffer, n));
  }
  return Error(line, absl::StrCat("unsupported function '", name, "'"));
}

absl::StatusOr<Value> CallMethod(const Value& object, const std::string& name,
                                 const std::vector<Value>& args, int line) {
  if (object.is_mapping()) {
    if (name == "get") {
      if (args.empty() || !args[0].is_string()) return WrongArgs(line, name);
      return object.Get(args[0].str()).value_or(args.size() > 1 ? args[1] : Value::None());
    }
    List items;
    for (const auto& [key, value] : object.dict()) {
      if (name == "keys")
        items.push_back(Value::String(key));
      else if (name == "values")
        items.push_back(value);
      else if (name == "items")
        items.push_back(Value::MakeList({Value::String(key), value}));
      else
        return Error(line, absl::StrCat("dict has no method '", name, "'"));
    }
    return Value::MakeList(std::move(items));
  }
  if (!object.is_string()) {
    return Error(line, absl::StrCat("'", std::string(object.TypeName()), "' object has no method '",
                                    name, "'"));
  }
  const std::string& text = object.str();
  for (const Value& arg : args) {
    if (!arg.is_string() && !arg.is_none() && arg.kind() != Kind::kInt &&
        arg.kind() != Kind::kList) {
      return WrongArgs(line, name);
    }
  }
  auto string_arg = [&](size_t i) -> std::optional<std::string> {
    if (i >= args.size() || !args[i].is_string()) return std::nullopt;
    return args[i].str();
  };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const std::string chars = string_arg(0).value_or(std::string(kWhitespace));
    return Value::String(Strip(text, chars, name != "rstrip", name != "lstrip"));
  }
  if (name == "startswith" || name == "endswith") {
    if (args.empty()) return WrongArgs(line, name);
    List options = args[0].kind() == Kind::kList ? args[0].list() : List{args[0]};
    for (const Value& option : options) {
      if (!option.is_string()) return WrongArgs(line, name);
      if (name == "startswith" ? text.starts_with(option.str()) : text.ends_with(option.str())) {
        return Value::Bool(true);
      }
    }
    return Value::Bool(false);
  }
  if (name == "split") {
    const int64_t max_split =
        args.size() > 1 && args[1].kind() == Kind::kInt ? args[1].integer() : -1;
    if (!args.empty() && args[0].is_string() && args[0].str().empty()) {
      return Error(line, "split: empty separator");
    }
    return Value::MakeList(Split(text, args.empty() ? nullptr : &args[0], max_split));
  }
  if (name == "upper" || name == "lower") return Value::String(MapChars(text, name == "upper"));
  if (name == "title") return Value::String(Title(text));
  if (name == "capitalize") return Value::String(Capitalize(text));
  if (name == "replace") {
    if (!string_arg(0) || !string_arg(1)) return WrongArgs(line, name);
    return Value::String(
        Replace(text, args[0].str(), args[1].str(), args.size() > 2 ? args[2].integer() : -1));
  }
  if (name == "join") {
    if (args.size() != 1) return WrongArgs(line, name);
    return Join(args[0], text, nullptr, line);
  }
  if (name == "count" || name == "find") {
    if (!string_arg(0)) return WrongArgs(line, name);
    const std::string& needle = args[0].str();
    if (name == "find") {
      const size_t at = text.find(needle);
      if (at == std::string::npos) return Value::Int(-1);
      return Value::Int(static_cast<int64_t>(CodePoints(text.substr(0, at)).size()));
    }
    if (needle.empty()) return Value::Int(static_cast<int64_t>(CodePoints(text).size()) + 1);
    int64_t count = 0;
    for (size_t at = text.find(needle); at != std::string::npos;
         at = text.find(needle, at + needle.size()))
      ++count;
    return Value::Int(count);
  }
  return Error(line, absl::StrCat("str has no method '", name, "'"));
}

}  // namespace strata::engine::jinja
