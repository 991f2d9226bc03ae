// Renders a parsed Program against a context of variables: scopes, loops, macros, calls,
// and the globals transformers gives chat templates (raise_exception, strftime_now, ...).
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/status.h"
#include "engine/template/ast.h"
#include "engine/template/value.h"

namespace strata::tmpl {

struct Scope {
  std::vector<std::pair<std::string, Value>> variables;
  std::shared_ptr<Scope> parent;

  const Value* find(std::string_view name) const;
  void set(std::string_view name, Value value);
};

class Interpreter {
 public:
  // `now` answers strftime_now(); when empty, the local time.
  Interpreter(const Program& program, std::function<std::tm()> now);

  Result<std::string> render(const Dict& context);

  // For filters, methods and builtins.
  Result<Value> call(const Value& callee, CallArgs& args);
  Result<Value> apply_filter(std::string_view name, const Value& value, CallArgs& args);
  Result<bool> apply_test(std::string_view name, const Value& value, CallArgs& args);
  std::tm now() const;
  // raise_exception(): the message travels unchanged, without a line prefix.
  Status raise(std::string message);
  // namespace(): registered so that render() can break the reference cycles a template makes
  // by storing a namespace in itself ({% set ns.self = ns %}).
  void track(const std::shared_ptr<Namespace>& ns) { namespaces_.push_back(ns); }

 private:
  enum class Flow : uint8_t { kNormal, kBreak, kContinue };

  Status exec(const Body& body);
  Status exec(const Stmt& stmt);  // counts nesting_, then exec_stmt
  Status exec_stmt(const Stmt& stmt);
  Status exec_for(const Stmt& stmt);
  Status exec_set(const Stmt& stmt);
  Result<std::string> capture(const Body& body);
  Result<Value> eval(const Expr& expr);  // counts nesting_, then eval_expr
  Result<Value> eval_expr(const Expr& expr);
  Result<Value> eval_call(const Expr& expr);
  Status eval_args(const Expr& expr, CallArgs* args);
  Status assign(const std::vector<std::string>& targets, const Value& value);
  Result<Value> call_macro(const Stmt& macro, const std::shared_ptr<Scope>& closure, CallArgs& args);
  void install_globals(Scope& scope);

  const Program& program_;
  std::function<std::tm()> now_;
  std::shared_ptr<Scope> scope_;
  std::string* out_ = nullptr;
  Flow flow_ = Flow::kNormal;
  Value filter_block_input_;
  int call_depth_ = 0;
  int nesting_ = 0;  // eval() and exec(Stmt) frames on the native stack
  std::vector<std::weak_ptr<Namespace>> namespaces_;
  bool error_located_ = false;
};

}  // namespace strata::tmpl
