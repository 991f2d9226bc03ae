// The parsed form of a template: expression and statement nodes, each with its source line.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/template/value.h"

namespace strata::tmpl {

enum class ExprKind : uint8_t {
  kLiteral,    // literal
  kName,       // name
  kList,       // children: items
  kTuple,      // children: items
  kDict,       // children: key0, value0, key1, value1, ...
  kNegate,     // -children[0]
  kPlus,       // +children[0]
  kBinary,     // children[0] binary_op children[1]
  kAnd,        // children[0] and children[1]
  kOr,         // children[0] or children[1]
  kNot,        // not children[0]
  kCompare,    // children[0] compare_ops[0] children[1] compare_ops[1] children[2] ...
  kCondition,  // children: value-if-true, test, value-if-false (may be null)
  kGetAttr,    // children[0].name
  kGetItem,    // children[0][children[1]]
  kSlice,      // children[0][children[1]:children[2]:children[3]], each bound may be null
  kCall,       // children[0](args, kwargs)
  kFilter,     // children[0] | name(args, kwargs); children[0] is null inside {% filter %}
  kTest,       // children[0] is [not] name(args, kwargs)
};

enum class BinaryOp : uint8_t { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow, kConcat };
enum class CompareOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  int line = 0;
  Value literal;
  std::string name;
  std::vector<ExprPtr> children;
  BinaryOp binary_op = BinaryOp::kAdd;
  std::vector<CompareOp> compare_ops;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false;  // kTest: `is not`
};

enum class StmtKind : uint8_t {
  kText,      // text
  kOutput,    // {{ expr }}
  kIf,        // branches, else_body
  kFor,       // for targets in expr [if condition]: body, else_body
  kSet,       // set targets = expr; or set targets[0].attribute = expr
  kSetBlock,  // set targets[0] [| filter]: body
  kMacro,     // macro name(params = defaults): body
  kBreak,
  kContinue,
  kFilterBlock,  // filter expr: body (expr is a filter chain on a null operand)
  kWith,         // with targets = values: body
  kScope,        // a body rendered as is ({% generation %})
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  StmtKind kind = StmtKind::kText;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;
  std::vector<std::string> targets;
  std::string attribute;  // kSet on a namespace: `set ns.attribute = ...`
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  std::string name;                 // kMacro
  std::vector<std::string> params;  // kMacro
  std::vector<ExprPtr> defaults;    // kMacro: one per param, null where none; kWith: the values
};

struct Program {
  std::string source;  // normalized source
  Body body;
};

}  // namespace strata::tmpl
