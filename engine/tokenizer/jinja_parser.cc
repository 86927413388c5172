#include "engine/tokenizer/jinja_parser.h"

#include <array>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/tokenizer/jinja_lexer.h"

namespace strata::engine::jinja {
namespace {

// What the renderer implements; anything else is rejected here.
constexpr std::array<std::string_view, 29> kFilters = {
    "abs",    "capitalize", "count",   "d",       "default", "first",  "float",      "indent",
    "int",    "items",      "join",    "last",    "length",  "list",   "lower",      "map",
    "reject", "rejectattr", "replace", "reverse", "safe",    "select", "selectattr", "string",
    "title",  "tojson",     "trim",    "unique",  "upper"};
constexpr std::array<std::string_view, 20> kTests = {
    "boolean", "defined", "divisibleby", "eq",       "equalto", "even",     "false",
    "float",   "in",      "integer",     "iterable", "mapping", "ne",       "none",
    "number",  "odd",     "sequence",    "string",   "true",    "undefined"};
constexpr std::array<std::string_view, 4> kFunctions = {"namespace", "raise_exception", "range",
                                                        "strftime_now"};
constexpr std::array<std::string_view, 18> kMethods = {
    "capitalize", "endswith", "get",     "items",  "join",  "keys",
    "lower",      "lstrip",   "replace", "rstrip", "split", "startswith",
    "strip",      "title",    "upper",   "values", "count", "find"};

template <size_t N>
bool Known(const std::array<std::string_view, N>& names, std::string_view name) {
  for (std::string_view known : names) {
    if (known == name) return true;
  }
  return false;
}

absl::Status ParseError(int line, std::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", std::string(message)));
}

ExprPtr MakeExpr(Expr::Type type, int line, std::string name = "") {
  auto expr = std::make_unique<Expr>();
  expr->type = type;
  expr->line = line;
  expr->name = std::move(name);
  return expr;
}

ExprPtr MakeBinary(std::string op, ExprPtr left, ExprPtr right, int line) {
  ExprPtr expr = MakeExpr(Expr::Type::kBinary, line, std::move(op));
  expr->operands.push_back(std::move(left));
  expr->operands.push_back(std::move(right));
  return expr;
}

// Recursive descent over one tag's tokens, with Jinja 2's precedence.
class ExprParser {
 public:
  ExprParser(const std::vector<Token>& tokens, int line) : tokens_(tokens), line_(line) {}

  bool AtEnd() const { return pos_ >= tokens_.size(); }
  bool PeekName(std::string_view name) const {
    return !AtEnd() && tokens_[pos_].type == Token::Type::kName && tokens_[pos_].text == name;
  }
  bool PeekOp(std::string_view op) const {
    return !AtEnd() && tokens_[pos_].type == Token::Type::kOperator && tokens_[pos_].text == op;
  }
  bool TakeName(std::string_view name) { return PeekName(name) ? (++pos_, true) : false; }
  bool TakeOp(std::string_view op) { return PeekOp(op) ? (++pos_, true) : false; }

  absl::Status ExpectOp(std::string_view op) {
    if (TakeOp(op)) return absl::OkStatus();
    return Error(absl::StrCat("expected '", std::string(op), "'"));
  }
  absl::StatusOr<std::string> ExpectName() {
    if (AtEnd() || tokens_[pos_].type != Token::Type::kName) return Error("expected a name");
    return tokens_[pos_++].text;
  }
  absl::Status ExpectEnd() {
    return AtEnd() ? absl::OkStatus() : Error("unexpected token at the end of the tag");
  }
  absl::Status Error(std::string_view message) const {
    const std::string where = AtEnd() ? "end of tag" : "'" + tokens_[pos_].text + "'";
    return ParseError(line_, absl::StrCat(std::string(message), " (at ", where, ")"));
  }

  // expression := or ('if' or ('else' expression)?)?
  absl::StatusOr<ExprPtr> Expression() {
    absl::StatusOr<ExprPtr> value = Or();
    if (!value.ok() || !TakeName("if")) return value;
    ExprPtr cond = MakeExpr(Expr::Type::kCond, line_);
    absl::StatusOr<ExprPtr> test = Or();
    if (!test.ok()) return test;
    ExprPtr otherwise;
    if (TakeName("else")) {
      absl::StatusOr<ExprPtr> e = Expression();
      if (!e.ok()) return e;
      otherwise = *std::move(e);
    }
    cond->operands.push_back(*std::move(value));
    cond->operands.push_back(*std::move(test));
    cond->operands.push_back(std::move(otherwise));
    return cond;
  }

  // A comma-separated list without brackets is a tuple (for `set a, b = ...`).
  absl::StatusOr<ExprPtr> TupleOrExpression() {
    absl::StatusOr<ExprPtr> first = Expression();
    if (!first.ok() || !PeekOp(",")) return first;
    ExprPtr tuple = MakeExpr(Expr::Type::kList, line_);
    tuple->operands.push_back(*std::move(first));
    while (TakeOp(",")) {
      if (AtEnd()) break;
      absl::StatusOr<ExprPtr> item = Expression();
      if (!item.ok()) return item;
      tuple->operands.push_back(*std::move(item));
    }
    return tuple;
  }

 private:
  absl::StatusOr<ExprPtr> Or() {
    absl::StatusOr<ExprPtr> left = And();
    while (left.ok() && TakeName("or")) {
      absl::StatusOr<ExprPtr> right = And();
      if (!right.ok()) return right;
      left = MakeBinary("or", *std::move(left), *std::move(right), line_);
    }
    return left;
  }
  absl::StatusOr<ExprPtr> And() {
    absl::StatusOr<ExprPtr> left = Not();
    while (left.ok() && TakeName("and")) {
      absl::StatusOr<ExprPtr> right = Not();
      if (!right.ok()) return right;
      left = MakeBinary("and", *std::move(left), *std::move(right), line_);
    }
    return left;
  }
  absl::StatusOr<ExprPtr> Not() {
    if (!TakeName("not")) return Compare();
    absl::StatusOr<ExprPtr> operand = Not();
    if (!operand.ok()) return operand;
    ExprPtr expr = MakeExpr(Expr::Type::kUnary, line_, "not");
    expr->operands.push_back(*std::move(operand));
    return expr;
  }
  absl::StatusOr<ExprPtr> Compare() {
    absl::StatusOr<ExprPtr> left = Math1();
    while (left.ok()) {
      std::string op;
      for (std::string_view candidate : {"==", "!=", "<", "<=", ">", ">="}) {
        if (TakeOp(candidate)) op = std::string(candidate);
      }
      if (op.empty() && TakeName("in")) op = "in";
      if (op.empty() && PeekName("not") && pos_ + 1 < tokens_.size() &&
          tokens_[pos_ + 1].text == "in") {
        pos_ += 2;
        op = "not in";
      }
      if (op.empty()) break;
      absl::StatusOr<ExprPtr> right = Math1();
      if (!right.ok()) return right;
      left = MakeBinary(op, *std::move(left), *std::move(right), line_);
    }
    return left;
  }
  absl::StatusOr<ExprPtr> Math1() {
    absl::StatusOr<ExprPtr> left = Concat();
    while (left.ok() && (PeekOp("+") || PeekOp("-"))) {
      std::string op = tokens_[pos_++].text;
      absl::StatusOr<ExprPtr> right = Concat();
      if (!right.ok()) return right;
      left = MakeBinary(op, *std::move(left), *std::move(right), line_);
    }
    return left;
  }
  absl::StatusOr<ExprPtr> Concat() {
    absl::StatusOr<ExprPtr> left = Math2();
    while (left.ok() && TakeOp("~")) {
      absl::StatusOr<ExprPtr> right = Math2();
      if (!right.ok()) return right;
      left = MakeBinary("~", *std::move(left), *std::move(right), line_);
    }
    return left;
  }
  absl::StatusOr<ExprPtr> Math2() {
    absl::StatusOr<ExprPtr> left = Pow();
    while (left.ok() && (PeekOp("*") || PeekOp("/") || PeekOp("//") || PeekOp("%"))) {
      std::string op = tokens_[pos_++].text;
      absl::StatusOr<ExprPtr> right = Pow();
      if (!right.ok()) return right;
      left = MakeBinary(op, *std::move(left), *std::move(right), line_);
    }
    return left;
  }
  absl::StatusOr<ExprPtr> Pow() {
    absl::StatusOr<ExprPtr> left = Unary(true);
    while (left.ok() && TakeOp("**")) {
      absl::StatusOr<ExprPtr> right = Unary(true);
      if (!right.ok()) return right;
      left = MakeBinary("**", *std::move(left), *std::move(right), line_);
    }
    return left;
  }
  // Unary minus binds looser than filters on its operand: -x|abs is abs(-x).
  absl::StatusOr<ExprPtr> Unary(bool with_filter) {
    absl::StatusOr<ExprPtr> node;
    if (PeekOp("-") || PeekOp("+")) {
      ExprPtr expr = MakeExpr(Expr::Type::kUnary, line_, tokens_[pos_++].text);
      absl::StatusOr<ExprPtr> operand = Unary(false);
      if (!operand.ok()) return operand;
      expr->operands.push_back(*std::move(operand));
      node = std::move(expr);
    } else {
      node = Primary();
    }
    if (node.ok()) node = Postfix(*std::move(node));
    if (node.ok() && with_filter) node = FilterOrTest(*std::move(node));
    return node;
  }

  absl::StatusOr<ExprPtr> Primary();
  absl::StatusOr<ExprPtr> Postfix(ExprPtr node);
  absl::StatusOr<ExprPtr> Subscript(ExprPtr node);
  absl::StatusOr<ExprPtr> FilterOrTest(ExprPtr node);
  absl::Status CallArguments(Expr& call);

  const std::vector<Token>& tokens_;
  size_t pos_ = 0;
  int line_;
};

absl::StatusOr<ExprPtr> ExprParser::Primary() {
  if (AtEnd()) return Error("expected an expression");
  const Token& token = tokens_[pos_++];
  switch (token.type) {
    case Token::Type::kString: {
      ExprPtr expr = MakeExpr(Expr::Type::kLiteral, line_);
      std::string text = token.text;
      // Adjacent string literals concatenate, as in Python.
      while (!AtEnd() && tokens_[pos_].type == Token::Type::kString) text += tokens_[pos_++].text;
      expr->literal = Value::String(std::move(text));
      return expr;
    }
    case Token::Type::kInt:
    case Token::Type::kFloat: {
      ExprPtr expr = MakeExpr(Expr::Type::kLiteral, line_);
      expr->literal = token.type == Token::Type::kInt
                          ? Value::Int(std::strtoll(token.text.c_str(), nullptr, 10))
                          : Value::Float(std::strtod(token.text.c_str(), nullptr));
      return expr;
    }
    case Token::Type::kName: {
      ExprPtr expr = MakeExpr(Expr::Type::kLiteral, line_);
      const std::string& name = token.text;
      if (name == "true" || name == "True")
        expr->literal = Value::Bool(true);
      else if (name == "false" || name == "False")
        expr->literal = Value::Bool(false);
      else if (name == "none" || name == "None")
        expr->literal = Value::None();
      else
        expr = MakeExpr(Expr::Type::kName, line_, name);
      return expr;
    }
    case Token::Type::kOperator:
      break;
  }
  if (token.text == "(") {
    absl::StatusOr<ExprPtr> inner = TupleOrExpression();
    if (!inner.ok()) return inner;
    if (absl::Status s = ExpectOp(")"); !s.ok()) return s;
    return inner;
  }
  if (token.text == "[" || token.text == "{") {
    const bool is_list = token.text == "[";
    ExprPtr expr = MakeExpr(is_list ? Expr::Type::kList : Expr::Type::kDict, line_);
    const std::string close = is_list ? "]" : "}";
    while (!TakeOp(close)) {
      if (!expr->operands.empty()) {
        if (absl::Status s = ExpectOp(","); !s.ok()) return s;
        if (TakeOp(close)) break;
      }
      absl::StatusOr<ExprPtr> item = Expression();
      if (!item.ok()) return item;
      expr->operands.push_back(*std::move(item));
      if (!is_list) {
        if (absl::Status s = ExpectOp(":"); !s.ok()) return s;
        absl::StatusOr<ExprPtr> value = Expression();
        if (!value.ok()) return value;
        expr->operands.push_back(*std::move(value));
      }
    }
    return expr;
  }
  --pos_;
  return Error("expected an expression");
}

absl::StatusOr<ExprPtr> ExprParser::Postfix(ExprPtr node) {
  while (true) {
    if (TakeOp(".")) {
      absl::StatusOr<std::string> name = ExpectName();
      if (!name.ok()) return name.status();
      ExprPtr attr = MakeExpr(Expr::Type::kAttr, line_, *name);
      attr->operands.push_back(std::move(node));
      node = std::move(attr);
    } else if (TakeOp("[")) {
      absl::StatusOr<ExprPtr> sub = Subscript(std::move(node));
      if (!sub.ok()) return sub;
      node = *std::move(sub);
    } else if (PeekOp("(")) {
      // Calls: a method of a value, or a global function; both are checked
      // against what the renderer implements.
      if (node->type == Expr::Type::kAttr && !Known(kMethods, node->name)) {
        return ParseError(line_, absl::StrCat("unsupported method '", node->name, "'"));
      }
      if (node->type == Expr::Type::kName && !Known(kFunctions, node->name)) {
        return ParseError(line_, absl::StrCat("unsupported function '", node->name, "'"));
      }
      if (node->type != Expr::Type::kAttr && node->type != Expr::Type::kName) {
        return Error("only functions and methods can be called");
      }
      ++pos_;
      ExprPtr call = MakeExpr(Expr::Type::kCall, line_);
      call->operands.push_back(std::move(node));
      if (absl::Status s = CallArguments(*call); !s.ok()) return s;
      node = std::move(call);
    } else {
      return node;
    }
  }
}

// After '[': an index or a slice, up to ']'.
absl::StatusOr<ExprPtr> ExprParser::Subscript(ExprPtr node) {
  std::array<ExprPtr, 3> parts;
  int part = 0;
  bool is_slice = false;
  while (!TakeOp("]")) {
    if (TakeOp(":")) {
      if (++part > 2) return Error("too many ':' in a slice");
      is_slice = true;
      continue;
    }
    if (parts[part] != nullptr) return Error("expected ']'");
    absl::StatusOr<ExprPtr> e = Expression();
    if (!e.ok()) return e;
    parts[part] = *std::move(e);
  }
  ExprPtr expr = MakeExpr(is_slice ? Expr::Type::kSlice : Expr::Type::kItem, line_);
  expr->operands.push_back(std::move(node));
  if (!is_slice) {
    if (parts[0] == nullptr) return Error("empty subscript");
    expr->operands.push_back(std::move(parts[0]));
  } else {
    for (ExprPtr& p : parts) expr->operands.push_back(std::move(p));
  }
  return expr;
}

// After '(': positional and keyword arguments up to ')'.
absl::Status ExprParser::CallArguments(Expr& call) {
  bool first = true;
  while (!TakeOp(")")) {
    if (!first) {
      if (absl::Status s = ExpectOp(","); !s.ok()) return s;
      if (TakeOp(")")) break;
    }
    first = false;
    if (!AtEnd() && tokens_[pos_].type == Token::Type::kName && pos_ + 1 < tokens_.size() &&
        tokens_[pos_ + 1].text == "=" && tokens_[pos_ + 1].type == Token::Type::kOperator) {
      std::string key = tokens_[pos_].text;
      pos_ += 2;
      absl::StatusOr<ExprPtr> value = Expression();
      if (!value.ok()) return value.status();
      call.kwargs.emplace_back(std::move(key), *std::move(value));
      continue;
    }
    absl::StatusOr<ExprPtr> arg = Expression();
    if (!arg.ok()) return arg.status();
    call.operands.push_back(*std::move(arg));
  }
  return absl::OkStatus();
}

absl::StatusOr<ExprPtr> ExprParser::FilterOrTest(ExprPtr node) {
  while (true) {
    if (TakeOp("|")) {
      absl::StatusOr<std::string> name = ExpectName();
      if (!name.ok()) return name.status();
      if (!Known(kFilters, *name)) {
        return ParseError(line_, absl::StrCat("unsupported filter '", *name, "'"));
      }
      ExprPtr filter = MakeExpr(Expr::Type::kFilter, line_, *name);
      filter->operands.push_back(std::move(node));
      if (TakeOp("(")) {
        if (absl::Status s = CallArguments(*filter); !s.ok()) return s;
      }
      node = std::move(filter);
    } else if (TakeName("is")) {
      const bool negated = TakeName("not");
      std::string name;
      if (TakeName("none")) {
        name = "none";  // `none` is a literal elsewhere
      } else if (TakeOp("==")) {
        name = "eq";
      } else {
        absl::StatusOr<std::string> n = ExpectName();
        if (!n.ok()) return n.status();
        name = *n;
      }
      if (!Known(kTests, name)) {
        return ParseError(line_, absl::StrCat("unsupported test '", name, "'"));
      }
      ExprPtr test = MakeExpr(Expr::Type::kTest, line_, name);
      test->negated = negated;
      test->operands.push_back(std::move(node));
      if (TakeOp("(")) {
        if (absl::Status s = CallArguments(*test); !s.ok()) return s;
      } else if (!AtEnd() && tokens_[pos_].type != Token::Type::kOperator &&
                 !(PeekName("and") || PeekName("or") || PeekName("if") || PeekName("else") ||
                   PeekName("is") || PeekName("in") || PeekName("not"))) {
        // `x is divisibleby 3`: one argument without parentheses.
        absl::StatusOr<ExprPtr> arg = Unary(false);
        if (!arg.ok()) return arg;
        test->operands.push_back(*std::move(arg));
      }
      node = std::move(test);
    } else {
      return node;
    }
  }
}

// Statement parsing over the lexed segments.
class StatementParser {
 public:
  explicit StatementParser(std::vector<Segment> segments) : segments_(std::move(segments)) {}

  // Parses nodes until a statement whose keyword is in `stops` (returned in
  // `stop`, its parser positioned after the keyword) or the end.
  absl::Status Body(std::initializer_list<std::string_view> stops, std::vector<Node>& nodes,
                    std::string* stop, std::unique_ptr<ExprParser>* stop_parser);

 private:
  absl::Status Statement(ExprParser& parser, const std::string& keyword, int line,
                         std::vector<Node>& nodes);
  absl::Status If(ExprParser& parser, int line, std::vector<Node>& nodes);
  absl::Status For(ExprParser& parser, int line, std::vector<Node>& nodes);
  absl::Status Set(ExprParser& parser, int line, std::vector<Node>& nodes);

  std::vector<Segment> segments_;
  size_t pos_ = 0;
  int loop_depth_ = 0;
};

absl::Status StatementParser::Body(std::initializer_list<std::string_view> stops,
                                   std::vector<Node>& nodes, std::string* stop,
                                   std::unique_ptr<ExprParser>* stop_parser) {
  while (pos_ < segments_.size()) {
    Segment& segment = segments_[pos_++];
    Node node;
    node.line = segment.line;
    if (segment.type == Segment::Type::kText) {
      node.type = Node::Type::kText;
      node.text = std::move(segment.text);
      nodes.push_back(std::move(node));
      continue;
    }
    auto parser = std::make_unique<ExprParser>(segment.tokens, segment.line);
    if (segment.type == Segment::Type::kOutput) {
      absl::StatusOr<ExprPtr> expr = parser->Expression();
      if (!expr.ok()) return expr.status();
      if (absl::Status s = parser->ExpectEnd(); !s.ok()) return s;
      node.type = Node::Type::kOutput;
      node.expr = *std::move(expr);
      nodes.push_back(std::move(node));
      continue;
    }
    absl::StatusOr<std::string> keyword = parser->ExpectName();
    if (!keyword.ok()) return keyword.status();
    for (std::string_view s : stops) {
      if (*keyword == s) {
        *stop = *keyword;
        *stop_parser = std::move(parser);
        return absl::OkStatus();
      }
    }
    if (absl::Status s = Statement(*parser, *keyword, segment.line, nodes); !s.ok()) return s;
  }
  if (stops.size() != 0) {
    return ParseError(segments_.empty() ? 1 : segments_.back().line,
                      absl::StrCat("missing '{% ", std::string(*(stops.end() - 1)), " %}'"));
  }
  return absl::OkStatus();
}

absl::Status StatementParser::Statement(ExprParser& parser, const std::string& keyword, int line,
                                        std::vector<Node>& nodes) {
  if (keyword == "if") return If(parser, line, nodes);
  if (keyword == "for") return For(parser, line, nodes);
  if (keyword == "set") return Set(parser, line, nodes);
  if (keyword == "break" || keyword == "continue") {
    if (loop_depth_ == 0) return ParseError(line, absl::StrCat("'", keyword, "' outside a loop"));
    if (absl::Status s = parser.ExpectEnd(); !s.ok()) return s;
    Node node;
    node.type = keyword == "break" ? Node::Type::kBreak : Node::Type::kContinue;
    node.line = line;
    nodes.push_back(std::move(node));
    return absl::OkStatus();
  }
  return ParseError(line, absl::StrCat("unsupported tag '", keyword, "'"));
}

absl::Status StatementParser::If(ExprParser& parser, int line, std::vector<Node>& nodes) {
  Node node;
  node.type = Node::Type::kIf;
  node.line = line;
  ExprParser* current = &parser;
  std::unique_ptr<ExprParser> owned;  // the parser of the latest elif/else/endif tag
  bool is_else = false;
  while (true) {
    ExprPtr condition;
    if (!is_else) {
      absl::StatusOr<ExprPtr> c = current->Expression();
      if (!c.ok()) return c.status();
      condition = *std::move(c);
    }
    if (absl::Status s = current->ExpectEnd(); !s.ok()) return s;
    std::vector<Node> body;
    std::string stop;
    std::unique_ptr<ExprParser> next;
    absl::Status s = is_else ? Body({"endif"}, body, &stop, &next)
                             : Body({"elif", "else", "endif"}, body, &stop, &next);
    if (!s.ok()) return s;
    node.branches.emplace_back(std::move(condition), std::move(body));
    owned = std::move(next);
    current = owned.get();
    if (stop == "endif") break;
    is_else = stop == "else";
  }
  if (absl::Status s = current->ExpectEnd(); !s.ok()) return s;
  nodes.push_back(std::move(node));
  return absl::OkStatus();
}

absl::Status StatementParser::For(ExprParser& parser, int line, std::vector<Node>& nodes) {
  Node node;
  node.type = Node::Type::kFor;
  node.line = line;
  do {
    absl::StatusOr<std::string> target = parser.ExpectName();
    if (!target.ok()) return target.status();
    node.targets.push_back(*target);
  } while (parser.TakeOp(","));
  if (!parser.TakeName("in")) return parser.Error("expected 'in'");
  // The iterable stops before a trailing `if`, which filters the items.
  absl::StatusOr<ExprPtr> iterable = parser.TupleOrExpression();
  if (!iterable.ok()) return iterable.status();
  node.expr = *std::move(iterable);
  if (node.expr->type == Expr::Type::kCond && node.expr->operands[2] == nullptr) {
    node.filter = std::move(node.expr->operands[1]);
    node.expr = std::move(node.expr->operands[0]);
  }
  if (parser.TakeName("recursive")) return parser.Error("recursive loops are not supported");
  if (absl::Status s = parser.ExpectEnd(); !s.ok()) return s;
  ++loop_depth_;
  std::string stop;
  std::unique_ptr<ExprParser> end;
  absl::Status s = Body({"else", "endfor"}, node.body, &stop, &end);
  --loop_depth_;
  if (!s.ok()) return s;
  if (stop == "else") {
    if (absl::Status e = end->ExpectEnd(); !e.ok()) return e;
    if (absl::Status b = Body({"endfor"}, node.else_body, &stop, &end); !b.ok()) return b;
  }
  if (absl::Status e = end->ExpectEnd(); !e.ok()) return e;
  nodes.push_back(std::move(node));
  return absl::OkStatus();
}

absl::Status StatementParser::Set(ExprParser& parser, int line, std::vector<Node>& nodes) {
  Node node;
  node.type = Node::Type::kSet;
  node.line = line;
  absl::StatusOr<std::string> name = parser.ExpectName();
  if (!name.ok()) return name.status();
  node.targets.push_back(*name);
  if (parser.TakeOp(".")) {
    absl::StatusOr<std::string> attribute = parser.ExpectName();
    if (!attribute.ok()) return attribute.status();
    node.targets.push_back(*attribute);
    node.set_attribute = true;
  } else {
    while (parser.TakeOp(",")) {
      absl::StatusOr<std::string> more = parser.ExpectName();
      if (!more.ok()) return more.status();
      node.targets.push_back(*more);
    }
  }
  if (!parser.TakeOp("=")) {
    return ParseError(line, "block assignments ({% set x %}...{% endset %}) are not supported");
  }
  absl::StatusOr<ExprPtr> value = parser.TupleOrExpression();
  if (!value.ok()) return value.status();
  if (absl::Status s = parser.ExpectEnd(); !s.ok()) return s;
  node.expr = *std::move(value);
  nodes.push_back(std::move(node));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Template>> Parse(std::string_view source) {
  absl::StatusOr<std::vector<Segment>> segments = Lex(source);
  if (!segments.ok()) return segments.status();
  StatementParser parser(*std::move(segments));
  auto parsed = std::make_unique<Template>();
  std::string stop;
  std::unique_ptr<ExprParser> stop_parser;
  if (absl::Status s = parser.Body({}, parsed->nodes, &stop, &stop_parser); !s.ok()) return s;
  return parsed;
}

}  // namespace strata::engine::jinja
