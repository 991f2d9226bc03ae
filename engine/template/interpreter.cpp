// Tree-walking renderer for parsed templates, with jinja2's scoping: a for loop's body gets
// a fresh scope each iteration (so `set` inside a loop is not seen after it, which is why
// templates use namespace()), `if` bodies share their parent's scope, macros see the scope
// they were defined in.
#include "engine/template/interpreter.h"

#include <cstring>

#include "engine/template/builtins.h"
#include "engine/template/operators.h"

namespace strata::tmpl {
namespace {

constexpr int kMaxCallDepth = 200;
// Frames of eval() and exec(Stmt) at once, whatever mix of macro calls and nested expressions
// makes them: bounds the native stack (each macro level may nest a deep expression).
constexpr int kMaxNesting = 400;
constexpr size_t kMaxOutputBytes = size_t{64} << 20;
constexpr int64_t kMaxRange = 100000;  // jinja2.sandbox.MAX_RANGE

Result<Value> builtin_range(Interpreter&, CallArgs& args) {
  if (!args.keyword.empty()) return invalid_argument("range() takes no keyword arguments");
  const auto& p = args.positional;
  if (p.empty() || p.size() > 3) return invalid_argument("range expected 1 to 3 arguments");
  for (const Value& v : p) {
    if (!v.is_integral()) {
      return invalid_argument(std::string("'") + type_name(v) + "' object cannot be interpreted as an integer");
    }
  }
  const int64_t start = p.size() == 1 ? 0 : p[0].as_int();
  const int64_t stop = p.size() == 1 ? p[0].as_int() : p[1].as_int();
  const int64_t step = p.size() == 3 ? p[2].as_int() : 1;
  if (step == 0) return invalid_argument("range() arg 3 must not be zero");
  std::vector<Value> items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (static_cast<int64_t>(items.size()) >= kMaxRange) {
      return invalid_argument("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    }
    items.push_back(Value::integer(i));
  }
  return Value::list(std::move(items));
}

// dict(mapping_or_pairs?, **kwargs), and namespace(...) which takes the same arguments.
Result<Dict> dict_from_args(const CallArgs& args, std::string_view function) {
  Dict dict;
  if (args.positional.size() > 1) {
    return invalid_argument(std::string(function) + " expected at most 1 positional argument");
  }
  if (!args.positional.empty()) {
    const Value& source = args.positional[0];
    if (source.is_dict()) {
      dict = source.as_dict();
    } else if (source.is_namespace()) {
      dict = source.as_namespace().attributes;
    } else if (source.is_list()) {
      for (const Value& pair : source.as_list().items) {
        if (!pair.is_list() || pair.as_list().items.size() != 2) {
          return invalid_argument(std::string(function) + ": sequence elements must be pairs");
        }
        dict.set(pair.as_list().items[0], pair.as_list().items[1]);
      }
    } else if (!source.is_undefined()) {
      return invalid_argument(std::string("'") + type_name(source) + "' object is not iterable");
    }
  }
  for (const auto& [key, value] : args.keyword) dict.set(Value::string(key), value);
  return dict;
}

Result<Value> builtin_dict(Interpreter&, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Dict dict, dict_from_args(args, "dict"));
  return Value::dict(std::move(dict));
}

Result<Value> builtin_namespace(Interpreter& interp, CallArgs& args) {
  auto ns = std::make_shared<Namespace>();
  STRATA_ASSIGN_OR_RETURN(ns->attributes, dict_from_args(args, "namespace"));
  interp.track(ns);
  return Value::namespace_object(std::move(ns));
}

Result<Value> builtin_raise_exception(Interpreter& interp, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(auto bound, bind_args(args, "raise_exception", {"message"}));
  return interp.raise(bound[0] ? to_str(*bound[0]) : std::string());
}

// transformers: datetime.now().strftime(format).
Result<Value> builtin_strftime_now(Interpreter& interp, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(auto bound, bind_args(args, "strftime_now", {"format"}));
  if (!bound[0] || !bound[0]->is_string()) return invalid_argument("strftime_now: format must be a string");
  const std::string& format = bound[0]->as_string();
  if (format.empty()) return Value::string("");
  const std::tm now = interp.now();
  std::string buffer(format.size() * 4 + 64, '\0');
  for (int attempt = 0; attempt < 6; ++attempt) {
    const size_t n = std::strftime(buffer.data(), buffer.size(), format.c_str(), &now);
    if (n > 0) {
      buffer.resize(n);
      return Value::string(std::move(buffer));
    }
    buffer.resize(buffer.size() * 4);
  }
  return Value::string("");  // a format that expands to nothing
}

Value make_loop_object(size_t index, const std::vector<Value>& items) {
  const int64_t i = static_cast<int64_t>(index);
  const int64_t n = static_cast<int64_t>(items.size());
  Dict loop;
  loop.entries.reserve(12);
  loop.entries.emplace_back(Value::string("index"), Value::integer(i + 1));
  loop.entries.emplace_back(Value::string("index0"), Value::integer(i));
  loop.entries.emplace_back(Value::string("revindex"), Value::integer(n - i));
  loop.entries.emplace_back(Value::string("revindex0"), Value::integer(n - i - 1));
  loop.entries.emplace_back(Value::string("first"), Value::boolean(i == 0));
  loop.entries.emplace_back(Value::string("last"), Value::boolean(i == n - 1));
  loop.entries.emplace_back(Value::string("length"), Value::integer(n));
  loop.entries.emplace_back(Value::string("depth"), Value::integer(1));
  loop.entries.emplace_back(Value::string("depth0"), Value::integer(0));
  loop.entries.emplace_back(Value::string("previtem"),
                            i > 0 ? items[index - 1] : Value::undefined("there is no previous item"));
  loop.entries.emplace_back(Value::string("nextitem"),
                            i + 1 < n ? items[index + 1] : Value::undefined("there is no next item"));
  loop.entries.emplace_back(Value::string("cycle"),
                            Value::callable("cycle", [index](Interpreter&, CallArgs& args) -> Result<Value> {
                              if (args.positional.empty()) return invalid_argument("no items for cycling given");
                              return args.positional[index % args.positional.size()];
                            }));
  return Value::dict(std::move(loop));
}

}  // namespace

const Value* Scope::find(std::string_view name) const {
  for (const Scope* s = this; s != nullptr; s = s->parent.get()) {
    for (const auto& [key, value] : s->variables) {
      if (key == name) return &value;
    }
  }
  return nullptr;
}

void Scope::set(std::string_view name, Value value) {
  for (auto& [key, existing] : variables) {
    if (key == name) {
      existing = std::move(value);
      return;
    }
  }
  variables.emplace_back(std::string(name), std::move(value));
}

Interpreter::Interpreter(const Program& program, std::function<std::tm()> now)
    : program_(program), now_(std::move(now)) {}

void Interpreter::install_globals(Scope& scope) {
  scope.set("range", Value::callable("range", builtin_range));
  scope.set("dict", Value::callable("dict", builtin_dict));
  scope.set("namespace", Value::callable("namespace", builtin_namespace));
  scope.set("raise_exception", Value::callable("raise_exception", builtin_raise_exception));
  scope.set("strftime_now", Value::callable("strftime_now", builtin_strftime_now));
}

std::tm Interpreter::now() const {
  if (now_) return now_();
  const std::time_t t = std::time(nullptr);
  std::tm local{};
  localtime_r(&t, &local);
  return local;
}

Status Interpreter::raise(std::string message) {
  error_located_ = true;
  return invalid_argument(std::move(message));
}

Result<std::string> Interpreter::render(const Dict& context) {
  auto globals = std::make_shared<Scope>();
  install_globals(*globals);
  auto context_scope = std::make_shared<Scope>();
  context_scope->parent = globals;
  for (const auto& [key, value] : context.entries) {
    if (key.is_string()) context_scope->set(key.as_string(), value);
  }
  scope_ = std::make_shared<Scope>();
  scope_->parent = context_scope;
  std::string out;
  out_ = &out;
  flow_ = Flow::kNormal;
  error_located_ = false;
  nesting_ = 0;
  Status status = exec(program_.body);
  // Nothing rendered outlives the call: empty the namespaces, which breaks any cycle through them.
  for (const auto& weak : namespaces_) {
    if (auto ns = weak.lock()) ns->attributes.entries.clear();
  }
  namespaces_.clear();
  scope_.reset();
  STRATA_RETURN_IF_ERROR(status);
  return out;
}

Status Interpreter::exec(const Body& body) {
  for (const StmtPtr& stmt : body) {
    STRATA_RETURN_IF_ERROR(exec(*stmt));
    if (flow_ != Flow::kNormal) return {};
  }
  return {};
}

Result<std::string> Interpreter::capture(const Body& body) {
  std::string buffer;
  std::string* saved = out_;
  out_ = &buffer;
  Status status = exec(body);
  out_ = saved;
  STRATA_RETURN_IF_ERROR(status);
  return buffer;
}

Status Interpreter::exec(const Stmt& stmt) {
  if (nesting_ >= kMaxNesting) return invalid_argument("maximum template recursion depth exceeded (macro calls and nested expressions)");
  if (out_->size() > kMaxOutputBytes) {
    return invalid_argument("template output exceeds " + std::to_string(kMaxOutputBytes >> 20) + " MiB");
  }
  ++nesting_;
  Status status = exec_stmt(stmt);
  --nesting_;
  return status;
}

Status Interpreter::exec_stmt(const Stmt& stmt) {
  Status status;
  switch (stmt.kind) {
    case StmtKind::kText:
      out_->append(stmt.text);
      return {};
    case StmtKind::kOutput: {
      Result<Value> value = eval(*stmt.expr);
      if (value.ok()) {
        out_->append(to_str(*value));
      } else {
        status = value.status();
      }
      break;
    }
    case StmtKind::kIf: {
      bool taken = false;
      for (const auto& [condition, body] : stmt.branches) {
        Result<Value> test = eval(*condition);
        if (!test.ok()) {
          status = test.status();
          break;
        }
        if (truthy(*test)) {
          taken = true;
          status = exec(body);
          break;
        }
      }
      if (status.ok() && !taken) status = exec(stmt.else_body);
      break;
    }
    case StmtKind::kFor:
      status = exec_for(stmt);
      break;
    case StmtKind::kSet:
      status = exec_set(stmt);
      break;
    case StmtKind::kSetBlock: {
      Result<std::string> text = capture(stmt.body);
      if (!text.ok()) return text.status();
      Value value = Value::string(std::move(*text));
      if (stmt.expr) {
        filter_block_input_ = value;
        Result<Value> filtered = eval(*stmt.expr);
        if (!filtered.ok()) {
          status = filtered.status();
          break;
        }
        value = std::move(*filtered);
      }
      scope_->set(stmt.targets[0], std::move(value));
      break;
    }
    case StmtKind::kMacro: {
      const Stmt* macro = &stmt;
      std::shared_ptr<Scope> closure = scope_;
      // The macro holds its defining scope weakly: a scope that stored a macro defined in it
      // would otherwise own itself.
      std::weak_ptr<Scope> weak_closure = closure;
      scope_->set(stmt.name, Value::callable(stmt.name, [macro, weak_closure](Interpreter& interp, CallArgs& args) {
                    std::shared_ptr<Scope> scope = weak_closure.lock();
                    if (!scope) return Result<Value>(internal_error("macro called after its scope ended"));
                    return interp.call_macro(*macro, scope, args);
                  }));
      return {};
    }
    case StmtKind::kBreak:
      flow_ = Flow::kBreak;
      return {};
    case StmtKind::kContinue:
      flow_ = Flow::kContinue;
      return {};
    case StmtKind::kFilterBlock: {
      Result<std::string> text = capture(stmt.body);
      if (!text.ok()) return text.status();
      filter_block_input_ = Value::string(std::move(*text));
      Result<Value> filtered = eval(*stmt.expr);
      if (!filtered.ok()) {
        status = filtered.status();
        break;
      }
      out_->append(to_str(*filtered));
      break;
    }
    case StmtKind::kWith: {
      auto scope = std::make_shared<Scope>();
      scope->parent = scope_;
      for (size_t i = 0; i < stmt.targets.size() && status.ok(); ++i) {
        Result<Value> value = eval(*stmt.defaults[i]);
        if (!value.ok()) {
          status = value.status();
          break;
        }
        scope->set(stmt.targets[i], std::move(*value));
      }
      if (!status.ok()) break;
      std::shared_ptr<Scope> saved = scope_;
      scope_ = scope;
      status = exec(stmt.body);
      scope_ = saved;
      break;
    }
    case StmtKind::kScope:
      status = exec(stmt.body);
      break;
  }
  if (!status.ok() && !error_located_) {
    error_located_ = true;
    return Status(status.code(), "chat template: line " + std::to_string(stmt.line) + ": " + status.message());
  }
  return status;
}

Status Interpreter::assign(const std::vector<std::string>& targets, const Value& value) {
  if (targets.size() == 1) {
    scope_->set(targets[0], value);
    return {};
  }
  if (!value.is_list() && !value.is_string()) {
    return invalid_argument(std::string("cannot unpack non-iterable ") + type_name(value) + " object");
  }
  STRATA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(value));
  if (items.size() != targets.size()) {
    if (items.size() > targets.size()) {
      return invalid_argument("too many values to unpack (expected " + std::to_string(targets.size()) + ")");
    }
    return invalid_argument("not enough values to unpack (expected " + std::to_string(targets.size()) + ", got " +
                            std::to_string(items.size()) + ")");
  }
  for (size_t i = 0; i < targets.size(); ++i) scope_->set(targets[i], items[i]);
  return {};
}

Status Interpreter::exec_set(const Stmt& stmt) {
  STRATA_ASSIGN_OR_RETURN(Value value, eval(*stmt.expr));
  if (!stmt.attribute.empty()) {
    const Value* target = scope_->find(stmt.targets[0]);
    if (target == nullptr || !target->is_namespace()) {
      return invalid_argument("cannot assign attribute on non-namespace object");
    }
    target->as_namespace().attributes.set(Value::string(stmt.attribute), std::move(value));
    return {};
  }
  return assign(stmt.targets, value);
}

Status Interpreter::exec_for(const Stmt& stmt) {
  STRATA_ASSIGN_OR_RETURN(Value iterable, eval(*stmt.expr));
  STRATA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(iterable));
  std::shared_ptr<Scope> outer = scope_;
  if (stmt.condition) {  // `for x in xs if cond`: filtered before the loop, so loop.length counts survivors
    std::vector<Value> kept;
    for (const Value& item : items) {
      scope_ = std::make_shared<Scope>();
      scope_->parent = outer;
      Status status = assign(stmt.targets, item);
      Result<Value> keep = status.ok() ? eval(*stmt.condition) : Result<Value>(status);
      scope_ = outer;
      if (!keep.ok()) return keep.status();
      if (truthy(*keep)) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    scope_ = std::make_shared<Scope>();
    scope_->parent = outer;
    Status status = exec(stmt.else_body);
    scope_ = outer;
    return status;
  }
  for (size_t i = 0; i < items.size(); ++i) {
    scope_ = std::make_shared<Scope>();
    scope_->parent = outer;
    scope_->set("loop", make_loop_object(i, items));
    Status status = assign(stmt.targets, items[i]);
    if (status.ok()) status = exec(stmt.body);
    scope_ = outer;
    STRATA_RETURN_IF_ERROR(status);
    if (flow_ == Flow::kBreak) {
      flow_ = Flow::kNormal;
      break;
    }
    flow_ = Flow::kNormal;
  }
  return {};
}

Result<Value> Interpreter::call_macro(const Stmt& macro, const std::shared_ptr<Scope>& closure, CallArgs& args) {
  if (call_depth_ >= kMaxCallDepth) return invalid_argument("maximum macro recursion depth exceeded");
  auto scope = std::make_shared<Scope>();
  scope->parent = closure;
  std::vector<bool> bound(macro.params.size(), false);
  std::vector<Value> varargs;
  for (size_t i = 0; i < args.positional.size(); ++i) {
    if (i < macro.params.size()) {
      scope->set(macro.params[i], args.positional[i]);
      bound[i] = true;
    } else {
      varargs.push_back(args.positional[i]);
    }
  }
  Dict kwargs;
  for (auto& [key, value] : args.keyword) {
    size_t i = 0;
    while (i < macro.params.size() && macro.params[i] != key) ++i;
    if (i == macro.params.size()) {
      kwargs.set(Value::string(key), value);
      continue;
    }
    if (bound[i]) return invalid_argument("macro '" + macro.name + "' got multiple values for argument '" + key + "'");
    scope->set(key, value);
    bound[i] = true;
  }
  scope->set("varargs", Value::tuple(std::move(varargs)));
  scope->set("kwargs", Value::dict(std::move(kwargs)));
  std::shared_ptr<Scope> saved = scope_;
  scope_ = scope;
  Flow saved_flow = flow_;
  flow_ = Flow::kNormal;
  ++call_depth_;
  Status status;
  // Defaults are evaluated at call time, in the macro's scope (so they may use earlier params).
  for (size_t i = 0; i < macro.params.size() && status.ok(); ++i) {
    if (bound[i]) continue;
    if (macro.defaults[i]) {
      Result<Value> value = eval(*macro.defaults[i]);
      if (value.ok()) {
        scope->set(macro.params[i], std::move(*value));
      } else {
        status = value.status();
      }
    } else {
      scope->set(macro.params[i], Value::undefined("parameter '" + macro.params[i] + "' was not provided"));
    }
  }
  Result<std::string> text = status.ok() ? capture(macro.body) : Result<std::string>(status);
  --call_depth_;
  scope_ = saved;
  flow_ = saved_flow;
  if (!text.ok()) return text.status();
  return Value::string(std::move(*text));
}

Result<Value> Interpreter::call(const Value& callee, CallArgs& args) {
  if (callee.is_callable()) return callee.as_callable().call(*this, args);
  if (callee.is_undefined()) return undefined_error(callee);
  return invalid_argument(std::string("'") + type_name(callee) + "' object is not callable");
}

Result<Value> Interpreter::apply_filter(std::string_view name, const Value& value, CallArgs& args) {
  FilterFn filter = find_filter(name);
  if (filter == nullptr) return invalid_argument("no filter named '" + std::string(name) + "'");
  return filter(*this, value, args);
}

Result<bool> Interpreter::apply_test(std::string_view name, const Value& value, CallArgs& args) {
  TestFn test = find_test(name);
  if (test == nullptr) return invalid_argument("no test named '" + std::string(name) + "'");
  return test(*this, value, args);
}

Status Interpreter::eval_args(const Expr& expr, CallArgs* args) {
  args->positional.reserve(expr.args.size());
  for (const ExprPtr& arg : expr.args) {
    STRATA_ASSIGN_OR_RETURN(Value value, eval(*arg));
    args->positional.push_back(std::move(value));
  }
  for (const auto& [key, arg] : expr.kwargs) {
    STRATA_ASSIGN_OR_RETURN(Value value, eval(*arg));
    args->keyword.emplace_back(key, std::move(value));
  }
  return {};
}

Result<Value> Interpreter::eval_call(const Expr& expr) {
  const Expr& callee = *expr.children[0];
  CallArgs args;
  if (callee.kind == ExprKind::kGetAttr) {  // obj.method(...) without building a bound method
    STRATA_ASSIGN_OR_RETURN(Value object, eval(*callee.children[0]));
    if (has_method(object, callee.name)) {
      STRATA_RETURN_IF_ERROR(eval_args(expr, &args));
      return call_method(*this, object, callee.name, args);
    }
    Value function = get_attribute(object, callee.name);
    STRATA_RETURN_IF_ERROR(eval_args(expr, &args));
    return call(function, args);
  }
  STRATA_ASSIGN_OR_RETURN(Value function, eval(callee));
  STRATA_RETURN_IF_ERROR(eval_args(expr, &args));
  return call(function, args);
}

Result<Value> Interpreter::eval(const Expr& expr) {
  if (nesting_ >= kMaxNesting) return invalid_argument("maximum template recursion depth exceeded (macro calls and nested expressions)");
  ++nesting_;
  Result<Value> value = eval_expr(expr);
  --nesting_;
  return value;
}

Result<Value> Interpreter::eval_expr(const Expr& expr) {
  switch (expr.kind) {
    case ExprKind::kLiteral:
      return expr.literal;
    case ExprKind::kName: {
      const Value* value = scope_->find(expr.name);
      if (value == nullptr) return Value::undefined("'" + expr.name + "' is undefined");
      return *value;
    }
    case ExprKind::kList:
    case ExprKind::kTuple: {
      std::vector<Value> items;
      items.reserve(expr.children.size());
      for (const ExprPtr& child : expr.children) {
        STRATA_ASSIGN_OR_RETURN(Value item, eval(*child));
        items.push_back(std::move(item));
      }
      return expr.kind == ExprKind::kList ? Value::list(std::move(items)) : Value::tuple(std::move(items));
    }
    case ExprKind::kDict: {
      Dict dict;
      for (size_t i = 0; i + 1 < expr.children.size(); i += 2) {
        STRATA_ASSIGN_OR_RETURN(Value key, eval(*expr.children[i]));
        STRATA_ASSIGN_OR_RETURN(Value value, eval(*expr.children[i + 1]));
        if (key.is_list() && !key.as_list().is_tuple) return invalid_argument("unhashable type: 'list'");
        if (key.is_dict()) return invalid_argument("unhashable type: 'dict'");
        dict.set(std::move(key), std::move(value));
      }
      return Value::dict(std::move(dict));
    }
    case ExprKind::kNegate: {
      STRATA_ASSIGN_OR_RETURN(Value operand, eval(*expr.children[0]));
      return negate(operand);
    }
    case ExprKind::kPlus: {
      STRATA_ASSIGN_OR_RETURN(Value operand, eval(*expr.children[0]));
      return unary_plus(operand);
    }
    case ExprKind::kBinary: {
      STRATA_ASSIGN_OR_RETURN(Value left, eval(*expr.children[0]));
      STRATA_ASSIGN_OR_RETURN(Value right, eval(*expr.children[1]));
      return binary_op(expr.binary_op, left, right);
    }
    case ExprKind::kAnd: {
      STRATA_ASSIGN_OR_RETURN(Value left, eval(*expr.children[0]));
      if (!truthy(left)) return left;
      return eval(*expr.children[1]);
    }
    case ExprKind::kOr: {
      STRATA_ASSIGN_OR_RETURN(Value left, eval(*expr.children[0]));
      if (truthy(left)) return left;
      return eval(*expr.children[1]);
    }
    case ExprKind::kNot: {
      STRATA_ASSIGN_OR_RETURN(Value operand, eval(*expr.children[0]));
      return Value::boolean(!truthy(operand));
    }
    case ExprKind::kCompare: {
      STRATA_ASSIGN_OR_RETURN(Value left, eval(*expr.children[0]));
      for (size_t i = 0; i < expr.compare_ops.size(); ++i) {
        STRATA_ASSIGN_OR_RETURN(Value right, eval(*expr.children[i + 1]));
        STRATA_ASSIGN_OR_RETURN(bool holds, compare_op(expr.compare_ops[i], left, right));
        if (!holds) return Value::boolean(false);
        left = std::move(right);
      }
      return Value::boolean(true);
    }
    case ExprKind::kCondition: {
      STRATA_ASSIGN_OR_RETURN(Value test, eval(*expr.children[1]));
      if (truthy(test)) return eval(*expr.children[0]);
      if (expr.children[2]) return eval(*expr.children[2]);
      return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
    case ExprKind::kGetAttr: {
      STRATA_ASSIGN_OR_RETURN(Value object, eval(*expr.children[0]));
      return get_attribute(object, expr.name);
    }
    case ExprKind::kGetItem: {
      STRATA_ASSIGN_OR_RETURN(Value object, eval(*expr.children[0]));
      STRATA_ASSIGN_OR_RETURN(Value key, eval(*expr.children[1]));
      return get_item(object, key);
    }
    case ExprKind::kSlice: {
      STRATA_ASSIGN_OR_RETURN(Value object, eval(*expr.children[0]));
      std::optional<int64_t> bounds[3];
      for (int i = 0; i < 3; ++i) {
        if (!expr.children[i + 1]) continue;
        STRATA_ASSIGN_OR_RETURN(Value bound, eval(*expr.children[i + 1]));
        if (bound.is_none()) continue;
        if (!bound.is_integral()) return invalid_argument("slice indices must be integers or None");
        bounds[i] = bound.as_int();
      }
      if (object.is_undefined()) return object;
      return slice(object, bounds[0], bounds[1], bounds[2]);
    }
    case ExprKind::kCall:
      return eval_call(expr);
    case ExprKind::kFilter: {
      Value operand = filter_block_input_;
      if (expr.children[0]) {
        STRATA_ASSIGN_OR_RETURN(operand, eval(*expr.children[0]));
      }
      CallArgs args;
      STRATA_RETURN_IF_ERROR(eval_args(expr, &args));
      return apply_filter(expr.name, operand, args);
    }
    case ExprKind::kTest: {
      STRATA_ASSIGN_OR_RETURN(Value operand, eval(*expr.children[0]));
      CallArgs args;
      STRATA_RETURN_IF_ERROR(eval_args(expr, &args));
      STRATA_ASSIGN_OR_RETURN(bool result, apply_test(expr.name, operand, args));
      return Value::boolean(result != expr.negated);
    }
  }
  return internal_error("unknown expression kind");
}

}  // namespace strata::tmpl
