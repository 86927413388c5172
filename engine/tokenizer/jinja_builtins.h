// The filters, tests, global functions and methods of str and dict that chat
// templates call, with Jinja 2 / Python semantics. jinja_parser.cc lists the
// same names, so a template that calls anything else fails when parsed.
// Pure functions, thread-safe. Errors: INVALID_ARGUMENT "line N: ...";
// raise_exception returns its message as it is.
#ifndef STRATA_ENGINE_TOKENIZER_JINJA_BUILTINS_H_
#define STRATA_ENGINE_TOKENIZER_JINJA_BUILTINS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/jinja_parser.h"
#include "engine/tokenizer/jinja_value.h"

namespace strata::engine::jinja {

// What filters need from the renderer: evaluating their operands.
class Evaluator {
 public:
  virtual ~Evaluator() = default;
  virtual absl::StatusOr<Value> Eval(const Expr& expr) = 0;
};

// The items a for loop visits: a list's items, a dict's keys, a string's
// characters; nothing for Undefined.
absl::StatusOr<List> Iterate(const Value& value, int line);
// value[start:stop:step] of a list or string.
absl::StatusOr<Value> Slice(const Value& value, std::optional<int64_t> start,
                            std::optional<int64_t> stop, std::optional<int64_t> step, int line);
// The UTF-8 characters of `text` (Python indexes strings by code point).
std::vector<std::string> CodePoints(const std::string& text);
// `needle in haystack`.
absl::StatusOr<bool> Contains(const Value& haystack, const Value& needle, int line);

// expr is a kFilter / kTest node.
absl::StatusOr<Value> ApplyFilter(const Expr& expr, Evaluator& evaluator);
absl::StatusOr<Value> ApplyTest(const Expr& expr, Evaluator& evaluator);

absl::StatusOr<Value> CallFunction(const std::string& name, const std::vector<Value>& args,
                                   const Dict& kwargs, int line);
absl::StatusOr<Value> CallMethod(const Value& object, const std::string& name,
                                 const std::vector<Value>& args, int line);

}  // namespace strata::engine::jinja

#endif  // STRATA_ENGINE_TOKENIZER_JINJA_BUILTINS_H_
