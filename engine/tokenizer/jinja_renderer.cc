#include "engine/tokenizer/jinja_renderer.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <ctime>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/tokenizer/jinja_builtins.h"

namespace strata::engine::jinja {
namespace {

using Kind = Value::Kind;

absl::Status TypeError(int line, std::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", std::string(message)));
}

// Python's floor division and modulo on integers.
int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

class Renderer final : public Evaluator {
 public:
  explicit Renderer(const Dict& globals) {
    scopes_.emplace_back();
    for (const auto& [name, value] : globals) scopes_.back()[name] = value;
  }

  absl::Status Run(const std::vector<Node>& nodes, std::string& out) {
    absl::StatusOr<Flow> flow = Exec(nodes, out);
    return flow.status();
  }

  absl::StatusOr<Value> Eval(const Expr& expr) override;

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  absl::StatusOr<Flow> Exec(const std::vector<Node>& nodes, std::string& out);
  absl::StatusOr<Flow> ExecFor(const Node& node, std::string& out);
  absl::Status ExecSet(const Node& node);
  absl::StatusOr<Value> EvalBinary(const Expr& expr);
  absl::StatusOr<Value> EvalArithmetic(const std::string& op, const Value& a, const Value& b,
                                       int line);
  absl::StatusOr<Value> EvalItem(const Value& object, const Value& key, int line);
  absl::StatusOr<Value> EvalSlice(const Expr& expr);
  absl::StatusOr<Value> EvalContainer(const Expr& expr);
  absl::StatusOr<Value> EvalCall(const Expr& expr);

  Value Lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto found = it->find(name);
      if (found != it->end()) return found->second;
    }
    return Value();
  }

  std::vector<absl::flat_hash_map<std::string, Value>> scopes_;
};

absl::StatusOr<Renderer::Flow> Renderer::Exec(const std::vector<Node>& nodes, std::string& out) {
  for (const Node& node : nodes) {
    switch (node.type) {
      case Node::Type::kText:
        out += node.text;
        break;
      case Node::Type::kOutput: {
        absl::StatusOr<Value> value = Eval(*node.expr);
        if (!value.ok()) return value.status();
        out += value->ToString();
        break;
      }
      case Node::Type::kIf:
        for (const auto& [condition, body] : node.branches) {
          bool taken = condition == nullptr;
          if (!taken) {
            absl::StatusOr<Value> test = Eval(*condition);
            if (!test.ok()) return test.status();
            taken = test->Truthy();
          }
          if (!taken) continue;
          absl::StatusOr<Flow> flow = Exec(body, out);
          if (!flow.ok() || *flow != Flow::kNormal) return flow;
          break;
        }
        break;
      case Node::Type::kFor: {
        absl::StatusOr<Flow> flow = ExecFor(node, out);
        if (!flow.ok()) return flow;
        break;
      }
      case Node::Type::kSet:
        if (absl::Status s = ExecSet(node); !s.ok()) return s;
        break;
      case Node::Type::kBreak:
        return Flow::kBreak;
      case Node::Type::kContinue:
        return Flow::kContinue;
    }
  }
  return Flow::kNormal;
}

// Binds `targets` to `item`, unpacking it when there are several.
absl::Status Bind(const std::vector<std::string>& targets, const Value& item, int line,
                  absl::flat_hash_map<std::string, Value>& scope) {
  if (targets.size() == 1) {
    scope[targets[0]] = item;
    return absl::OkStatus();
  }
  if (item.kind() != Kind::kList || item.list().size() != targets.size()) {
    return TypeError(line, absl::StrCat("cannot unpack ", std::string(item.TypeName()), " into ",
                                        targets.size(), " names"));
  }
  for (size_t i = 0; i < targets.size(); ++i) scope[targets[i]] = item.list()[i];
  return absl::OkStatus();
}

absl::StatusOr<Renderer::Flow> Renderer::ExecFor(const Node& node, std::string& out) {
  absl::StatusOr<Value> iterable = Eval(*node.expr);
  if (!iterable.ok()) return iterable.status();
  absl::StatusOr<List> all = Iterate(*iterable, node.line);
  if (!all.ok()) return all.status();
  List items;
  for (Value& item : *all) {
    if (node.filter != nullptr) {
      scopes_.emplace_back();
      absl::Status bound = Bind(node.targets, item, node.line, scopes_.back());
      absl::StatusOr<Value> keep = bound.ok() ? Eval(*node.filter) : bound;
      scopes_.pop_back();
      if (!keep.ok()) return keep.status();
      if (!keep->Truthy()) continue;
    }
    items.push_back(std::move(item));
  }
  if (items.empty()) return Exec(node.else_body, out);
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    scopes_.emplace_back();
    if (absl::Status s = Bind(node.targets, items[i], node.line, scopes_.back()); !s.ok()) {
      return s;
    }
    scopes_.back()["loop"] = Value::MakeDict({
        {"index0", Value::Int(i)},
        {"index", Value::Int(i + 1)},
        {"revindex0", Value::Int(n - 1 - i)},
        {"revindex", Value::Int(n - i)},
        {"first", Value::Bool(i == 0)},
        {"last", Value::Bool(i == n - 1)},
        {"length", Value::Int(n)},
        {"previtem", i > 0 ? items[i - 1] : Value()},
        {"nextitem", i + 1 < n ? items[i + 1] : Value()},
    });
    absl::StatusOr<Flow> flow = Exec(node.body, out);
    scopes_.pop_back();
    if (!flow.ok()) return flow;
    if (*flow == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

absl::Status Renderer::ExecSet(const Node& node) {
  absl::StatusOr<Value> value = Eval(*node.expr);
  if (!value.ok()) return value.status();
  if (node.set_attribute) {
    Value target = Lookup(node.targets[0]);
    if (target.kind() != Kind::kNamespace) {
      return TypeError(node.line,
                       absl::StrCat("cannot set an attribute of ", std::string(target.TypeName()),
                                    " '", node.targets[0], "': only a namespace()"));
    }
    target.SetAttribute(node.targets[1], *std::move(value));
    return absl::OkStatus();
  }
  return Bind(node.targets, *value, node.line, scopes_.back());
}

absl::StatusOr<Value> Renderer::Eval(const Expr& expr) {
  switch (expr.type) {
    case Expr::Type::kLiteral:
      return expr.literal;
    case Expr::Type::kName:
      return Lookup(expr.name);
    case Expr::Type::kAttr: {
      absl::StatusOr<Value> object = Eval(*expr.operands[0]);
      if (!object.ok()) return object;
      if (object->is_undefined()) {
        return TypeError(expr.line,
                         absl::StrCat("undefined value has no attribute '", expr.name, "'"));
      }
      return object->Get(expr.name).value_or(Value());
    }
    case Expr::Type::kItem: {
      absl::StatusOr<Value> object = Eval(*expr.operands[0]);
      if (!object.ok()) return object;
      absl::StatusOr<Value> key = Eval(*expr.operands[1]);
      if (!key.ok()) return key;
      return EvalItem(*object, *key, expr.line);
    }
    case Expr::Type::kSlice:
      return EvalSlice(expr);
    case Expr::Type::kCall:
      return EvalCall(expr);
    case Expr::Type::kFilter:
      return ApplyFilter(expr, *this);
    case Expr::Type::kTest:
      return ApplyTest(expr, *this);
    case Expr::Type::kUnary: {
      absl::StatusOr<Value> operand = Eval(*expr.operands[0]);
      if (!operand.ok()) return operand;
      if (expr.name == "not") return Value::Bool(!operand->Truthy());
      if (!operand->is_number()) {
        return TypeError(expr.line, absl::StrCat("bad operand type for unary ", expr.name, ": ",
                                                 std::string(operand->TypeName())));
      }
      if (expr.name == "+") return *operand;
      return operand->kind() == Kind::kInt ? Value::Int(-operand->integer())
                                           : Value::Float(-operand->number());
    }
    case Expr::Type::kBinary:
      return EvalBinary(expr);
    case Expr::Type::kCond: {
      absl::StatusOr<Value> test = Eval(*expr.operands[1]);
      if (!test.ok()) return test;
      if (test->Truthy()) return Eval(*expr.operands[0]);
      return expr.operands[2] == nullptr ? Value() : Eval(*expr.operands[2]);
    }
    case Expr::Type::kList:
    case Expr::Type::kDict:
      return EvalContainer(expr);
  }
  return TypeError(expr.line, "unknown expression");
}

absl::StatusOr<Value> Renderer::EvalSlice(const Expr& expr) {
  absl::StatusOr<Value> object = Eval(*expr.operands[0]);
  if (!object.ok()) return object;
  std::array<std::optional<int64_t>, 3> bounds;
  for (int i = 0; i < 3; ++i) {
    if (expr.operands[i + 1] == nullptr) continue;
    absl::StatusOr<Value> bound = Eval(*expr.operands[i + 1]);
    if (!bound.ok()) return bound;
    if (bound->is_none()) continue;
    if (bound->kind() != Kind::kInt) return TypeError(expr.line, "slice indices must be integers");
    bounds[i] = bound->integer();
  }
  return Slice(*object, bounds[0], bounds[1], bounds[2], expr.line);
}

// A list (or tuple) or dict literal.
absl::StatusOr<Value> Renderer::EvalContainer(const Expr& expr) {
  if (expr.type == Expr::Type::kList) {
    List items;
    for (const ExprPtr& operand : expr.operands) {
      absl::StatusOr<Value> item = Eval(*operand);
      if (!item.ok()) return item;
      items.push_back(*std::move(item));
    }
    return Value::MakeList(std::move(items));
  }
  Dict items;
  for (size_t i = 0; i + 1 < expr.operands.size(); i += 2) {
    absl::StatusOr<Value> key = Eval(*expr.operands[i]);
    if (!key.ok()) return key;
    if (!key->is_string()) return TypeError(expr.line, "dict keys must be strings");
    absl::StatusOr<Value> value = Eval(*expr.operands[i + 1]);
    if (!value.ok()) return value;
    items.emplace_back(key->str(), *std::move(value));
  }
  return Value::MakeDict(std::move(items));
}

absl::StatusOr<Value> Renderer::EvalItem(const Value& object, const Value& key, int line) {
  if (object.is_undefined()) return TypeError(line, "undefined value is not subscriptable");
  if (object.is_mapping()) {
    if (!key.is_string()) return Value();
    return object.Get(key.str()).value_or(Value());
  }
  if (object.kind() == Kind::kList || object.is_string()) {
    if (key.kind() != Kind::kInt) {
      return TypeError(line,
                       absl::StrCat(std::string(object.TypeName()), " indices must be integers"));
    }
    if (object.is_string()) {
      std::vector<std::string> chars = CodePoints(object.str());
      int64_t i =
          key.integer() < 0 ? key.integer() + static_cast<int64_t>(chars.size()) : key.integer();
      if (i < 0 || i >= static_cast<int64_t>(chars.size())) return Value();
      return Value::String(chars[i]);
    }
    const int64_t size = static_cast<int64_t>(object.list().size());
    int64_t i = key.integer() < 0 ? key.integer() + size : key.integer();
    // Jinja answers Undefined for an index out of range.
    if (i < 0 || i >= size) return Value();
    return object.list()[i];
  }
  return TypeError(
      line, absl::StrCat("'", std::string(object.TypeName()), "' object is not subscriptable"));
}

absl::StatusOr<Value> Renderer::EvalBinary(const Expr& expr) {
  const std::string& op = expr.name;
  absl::StatusOr<Value> left = Eval(*expr.operands[0]);
  if (!left.ok()) return left;
  // and/or return an operand, as in Python, and short-circuit.
  if (op == "and") return left->Truthy() ? Eval(*expr.operands[1]) : left;
  if (op == "or") return left->Truthy() ? left : Eval(*expr.operands[1]);
  absl::StatusOr<Value> right = Eval(*expr.operands[1]);
  if (!right.ok()) return right;
  const Value& a = *left;
  const Value& b = *right;
  if (op == "==") return Value::Bool(a.Equals(b));
  if (op == "!=") return Value::Bool(!a.Equals(b));
  if (op == "in" || op == "not in") {
    absl::StatusOr<bool> found = Contains(b, a, expr.line);
    if (!found.ok()) return found.status();
    return Value::Bool(op == "in" ? *found : !*found);
  }
  if (op == "~") return Value::String(a.ToString() + b.ToString());
  if (op == "<" || op == "<=" || op == ">" || op == ">=") {
    int cmp = 0;
    if (a.is_number() && b.is_number()) {
      cmp = a.number() < b.number() ? -1 : a.number() > b.number() ? 1 : 0;
    } else if (a.is_string() && b.is_string()) {
      cmp = a.str().compare(b.str());
    } else {
      return TypeError(expr.line,
                       absl::StrCat("'", op, "' not supported between ", std::string(a.TypeName()),
                                    " and ", std::string(b.TypeName())));
    }
    if (op == "<") return Value::Bool(cmp < 0);
    if (op == "<=") return Value::Bool(cmp <= 0);
    if (op == ">") return Value::Bool(cmp > 0);
    return Value::Bool(cmp >= 0);
  }
  return EvalArithmetic(op, a, b, expr.line);
}

absl::StatusOr<Value> Renderer::EvalArithmetic(const std::string& op, const Value& a,
                                               const Value& b, int line) {
  if (op == "+" && a.is_string() && b.is_string()) return Value::String(a.str() + b.str());
  if (op == "+" && a.kind() == Kind::kList && b.kind() == Kind::kList) {
    List joined = a.list();
    joined.insert(joined.end(), b.list().begin(), b.list().end());
    return Value::MakeList(std::move(joined));
  }
  if (op == "*" && a.is_string() && b.kind() == Kind::kInt) {
    std::string repeated;
    for (int64_t i = 0; i < b.integer(); ++i) repeated += a.str();
    return Value::String(std::move(repeated));
  }
  const bool numbers =
      (a.is_number() || a.kind() == Kind::kBool) && (b.is_number() || b.kind() == Kind::kBool);
  if (!numbers) {
    return TypeError(
        line, absl::StrCat("unsupported operand types for ", op, ": ", std::string(a.TypeName()),
                           " and ", std::string(b.TypeName())));
  }
  const bool ints = a.kind() != Kind::kFloat && b.kind() != Kind::kFloat;
  const int64_t ia = a.kind() == Kind::kBool ? a.boolean() : a.integer();
  const int64_t ib = b.kind() == Kind::kBool ? b.boolean() : b.integer();
  const double da = a.kind() == Kind::kBool ? ia : a.number();
  const double db = b.kind() == Kind::kBool ? ib : b.number();
  if ((op == "/" || op == "//" || op == "%") && db == 0) {
    return TypeError(line, "division by zero");
  }
  if (op == "+") return ints ? Value::Int(ia + ib) : Value::Float(da + db);
  if (op == "-") return ints ? Value::Int(ia - ib) : Value::Float(da - db);
  if (op == "*") return ints ? Value::Int(ia * ib) : Value::Float(da * db);
  if (op == "/") return Value::Float(da / db);
  if (op == "//") return ints ? Value::Int(FloorDiv(ia, ib)) : Value::Float(std::floor(da / db));
  if (op == "%") {
    if (ints) return Value::Int(ia - FloorDiv(ia, ib) * ib);
    return Value::Float(da - std::floor(da / db) * db);
  }
  if (op == "**") {
    if (ints && ib >= 0) {
      int64_t result = 1;
      for (int64_t i = 0; i < ib; ++i) result *= ia;
      return Value::Int(result);
    }
    return Value::Float(std::pow(da, db));
  }
  return TypeError(line, absl::StrCat("unknown operator '", op, "'"));
}

absl::StatusOr<Value> Renderer::EvalCall(const Expr& expr) {
  std::vector<Value> args;
  for (size_t i = 1; i < expr.operands.size(); ++i) {
    absl::StatusOr<Value> arg = Eval(*expr.operands[i]);
    if (!arg.ok()) return arg;
    args.push_back(*std::move(arg));
  }
  Dict kwargs;
  for (const auto& [name, value_expr] : expr.kwargs) {
    absl::StatusOr<Value> value = Eval(*value_expr);
    if (!value.ok()) return value;
    kwargs.emplace_back(name, *std::move(value));
  }
  const Expr& callee = *expr.operands[0];
  if (callee.type == Expr::Type::kName) {
    return CallFunction(callee.name, args, kwargs, expr.line);
  }
  absl::StatusOr<Value> object = Eval(*callee.operands[0]);
  if (!object.ok()) return object;
  return CallMethod(*object, callee.name, args, expr.line);
}

}  // namespace

absl::StatusOr<std::string> Render(const Template& tmpl, const Dict& globals) {
  Renderer renderer(globals);
  std::string out;
  if (absl::Status s = renderer.Run(tmpl.nodes, out); !s.ok()) return s;
  return out;
}

}  // namespace strata::engine::jinja
