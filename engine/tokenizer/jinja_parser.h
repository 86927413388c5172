// Parses the Jinja subset that Hugging Face chat templates use into a tree
// that jinja_renderer.h evaluates. The lexer follows transformers' Jinja
// environment: trim_blocks and lstrip_blocks on, `-` whitespace control, one
// trailing newline of the template dropped.
//
// Supported: text, {{ expr }}, {# comments #}; if/elif/else, for (with an
// `if` filter, else, loop.*, break/continue), set (a name, tuple unpacking or
// a namespace attribute); expressions with literals, lists, dicts, tuples,
// attributes, subscripts, slices, calls, filters, `is` tests, `in`, `~`,
// arithmetic, comparisons, and/or/not and `x if c else y`. The filters,
// tests, methods and global functions it knows are listed in jinja_parser.cc;
// any other tag, filter, test, method or function fails at parse time
// (INVALID_ARGUMENT "line N: ..."), so a template this cannot render is
// rejected when the model loads, not on the first request.
//
// Pure functions, thread-safe; a parsed Template is immutable.
#ifndef STRATA_ENGINE_TOKENIZER_JINJA_PARSER_H_
#define STRATA_ENGINE_TOKENIZER_JINJA_PARSER_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/jinja_value.h"

namespace strata::engine::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Type {
    kLiteral,  // literal
    kName,     // name
    kAttr,     // operands[0].name
    kItem,     // operands[0][operands[1]]
    kSlice,    // operands[0][operands[1]:operands[2]:operands[3]] (null: omitted)
    kCall,     // operands[0](operands[1..], kwargs)
    kFilter,   // operands[0] | name(operands[1..], kwargs)
    kTest,     // operands[0] is [not] name(operands[1..])
    kUnary,    // name ("not", "-", "+") operands[0]
    kBinary,   // operands[0] name operands[1]; name is the operator ("and", "in", "not in", ...)
    kCond,     // operands[0] if operands[1] else operands[2] (null: Undefined)
    kList,     // [operands...] (tuples too)
    kDict,     // {operands[0]: operands[1], ...}
  };
  Type type = Type::kLiteral;
  int line = 0;
  Value literal;
  std::string name;
  bool negated = false;  // kTest: `is not`
  std::vector<ExprPtr> operands;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

struct Node {
  enum class Type { kText, kOutput, kIf, kFor, kSet, kBreak, kContinue };
  Type type = Type::kText;
  int line = 0;
  std::string text;                  // kText
  ExprPtr expr;                      // kOutput, kSet value, kFor iterable
  std::vector<std::string> targets;  // kFor loop variables; kSet names, or {namespace, attribute}
  bool set_attribute = false;        // kSet: targets = {namespace, attribute}
  ExprPtr filter;                    // kFor: `for x in xs if filter`
  // kIf: (condition, body) per if/elif; a null condition is the else.
  std::vector<std::pair<ExprPtr, std::vector<Node>>> branches;
  std::vector<Node> body;       // kFor
  std::vector<Node> else_body;  // kFor: when the loop ran zero times
};

struct Template {
  std::vector<Node> nodes;
};

// INVALID_ARGUMENT "line N: ..." for a syntax error or anything outside the
// supported subset.
absl::StatusOr<std::unique_ptr<Template>> Parse(std::string_view source);

}  // namespace strata::engine::jinja

#endif  // STRATA_ENGINE_TOKENIZER_JINJA_PARSER_H_
