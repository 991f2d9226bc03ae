// Recursive-descent parser following jinja2's grammar and operator precedence:
// condexpr < or < and < not < compare < + - < ~ < * / // % < ** < unary < postfix, filters, tests.
#include "engine/template/parser.h"

#include <algorithm>
#include <initializer_list>

namespace strata::tmpl {
namespace {

constexpr int kMaxNesting = 300;

class Parser {
 public:
  explicit Parser(std::shared_ptr<Program> program, std::vector<Token> tokens)
      : program_(std::move(program)), tokens_(std::move(tokens)) {
    line_starts_.push_back(0);
    const std::string& src = program_->source;
    for (size_t i = 0; i < src.size(); ++i) {
      if (src[i] == '\n') line_starts_.push_back(static_cast<uint32_t>(i + 1));
    }
  }

  Status run() {
    std::string end_keyword;
    STRATA_RETURN_IF_ERROR(parse_body({}, &program_->body, &end_keyword));
    return {};
  }

 private:
  // ---- token helpers -------------------------------------------------------------------

  const Token& current() const { return tokens_[pos_]; }
  const Token& look(size_t ahead = 1) const { return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)]; }
  void advance() {
    if (pos_ + 1 < tokens_.size()) ++pos_;
  }
  bool at_name(std::string_view name) const { return current().kind == TokenKind::kName && current().text == name; }
  bool at_op(std::string_view op) const { return current().kind == TokenKind::kOperator && current().text == op; }
  bool skip_name(std::string_view name) {
    if (!at_name(name)) return false;
    advance();
    return true;
  }
  bool skip_op(std::string_view op) {
    if (!at_op(op)) return false;
    advance();
    return true;
  }

  int line() const { return line_at(current().offset); }
  int line_at(uint32_t offset) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    return static_cast<int>(it - line_starts_.begin());
  }

  static std::string describe(const Token& token) {
    switch (token.kind) {
      case TokenKind::kText:
        return "template data";
      case TokenKind::kVariableBegin:
        return "begin of print statement";
      case TokenKind::kVariableEnd:
        return "end of print statement";
      case TokenKind::kBlockBegin:
        return "begin of statement block";
      case TokenKind::kBlockEnd:
        return "end of statement block";
      case TokenKind::kString:
        return "string";
      case TokenKind::kInteger:
        return "integer";
      case TokenKind::kFloat:
        return "float";
      case TokenKind::kEnd:
        return "end of template";
      default:
        return token.text;
    }
  }

  Status fail(std::string_view message) const { return fail_at(current(), message); }
  Status fail_at(const Token& token, std::string_view message) const {
    return syntax_error(program_->source, token.offset, message);
  }
  Status unexpected(std::string_view expected) const {
    return fail("expected " + std::string(expected) + ", got '" + describe(current()) + "'");
  }

  Status expect_op(std::string_view op) {
    if (!skip_op(op)) return unexpected("'" + std::string(op) + "'");
    return {};
  }
  Status expect_block_end() {
    if (current().kind != TokenKind::kBlockEnd) return unexpected("end of statement block");
    advance();
    return {};
  }
  Result<std::string> expect_name() {
    if (current().kind != TokenKind::kName) return unexpected("a name");
    std::string name = current().text;
    advance();
    return name;
  }

  ExprPtr make(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }
  StmtPtr make_stmt(StmtKind kind, int line) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = line;
    return s;
  }

  // ---- statements ----------------------------------------------------------------------

  // Parses statements until a block tag whose keyword is in `end_keywords`; consumes the
  // `{%` and the keyword and stores the keyword in `*found`.
  Status parse_body(std::initializer_list<std::string_view> end_keywords, Body* body, std::string* found) {
    while (true) {
      const Token& token = current();
      switch (token.kind) {
        case TokenKind::kEnd: {
          if (end_keywords.size() == 0) return {};
          std::string wanted;
          for (std::string_view k : end_keywords) wanted += (wanted.empty() ? "'" : " or '") + std::string(k) + "'";
          return fail("unexpected end of template; looking for " + wanted);
        }
        case TokenKind::kText: {
          auto stmt = make_stmt(StmtKind::kText, line());
          stmt->text = token.text;
          body->push_back(std::move(stmt));
          advance();
          break;
        }
        case TokenKind::kVariableBegin: {
          auto stmt = make_stmt(StmtKind::kOutput, line());
          advance();
          STRATA_ASSIGN_OR_RETURN(stmt->expr, parse_tuple(true, false, {}));
          if (current().kind != TokenKind::kVariableEnd) return unexpected("end of print statement");
          advance();
          body->push_back(std::move(stmt));
          break;
        }
        case TokenKind::kBlockBegin: {
          advance();
          if (current().kind != TokenKind::kName) return unexpected("a statement name");
          const std::string keyword = current().text;
          if (std::find(end_keywords.begin(), end_keywords.end(), keyword) != end_keywords.end()) {
            advance();
            *found = keyword;
            return {};
          }
          STRATA_ASSIGN_OR_RETURN(StmtPtr stmt, parse_statement());
          body->push_back(std::move(stmt));
          break;
        }
        default:
          return fail("unexpected '" + describe(token) + "'");
      }
    }
  }

  Result<StmtPtr> parse_statement() {
    if (++statement_nesting_ > kMaxNesting) return fail("statements nested too deeply");
    Result<StmtPtr> stmt = parse_statement_body();
    --statement_nesting_;
    return stmt;
  }

  Result<StmtPtr> parse_statement_body() {
    const Token& keyword_token = current();
    const std::string keyword = keyword_token.text;
    const int stmt_line = line();
    advance();
    if (keyword == "if") return parse_if(stmt_line);
    if (keyword == "for") return parse_for(stmt_line);
    if (keyword == "set") return parse_set(stmt_line);
    if (keyword == "macro") return parse_macro(stmt_line);
    if (keyword == "filter") return parse_filter_block(stmt_line);
    if (keyword == "with") return parse_with(stmt_line);
    if (keyword == "break" || keyword == "continue") {
      if (loop_depth_ == 0) return fail_at(keyword_token, "'" + keyword + "' outside of a loop");
      STRATA_RETURN_IF_ERROR(expect_block_end());
      return make_stmt(keyword == "break" ? StmtKind::kBreak : StmtKind::kContinue, stmt_line);
    }
    if (keyword == "generation") {  // transformers' AssistantTracker: renders its body unchanged
      auto stmt = make_stmt(StmtKind::kScope, stmt_line);
      STRATA_RETURN_IF_ERROR(expect_block_end());
      std::string found;
      STRATA_RETURN_IF_ERROR(parse_body({"endgeneration"}, &stmt->body, &found));
      STRATA_RETURN_IF_ERROR(expect_block_end());
      return stmt;
    }
    if (keyword == "call" || keyword == "include" || keyword == "import" || keyword == "from" || keyword == "extends" ||
        keyword == "block" || keyword == "autoescape" || keyword == "do") {
      return fail_at(keyword_token, "tag '" + keyword + "' is not supported");
    }
    return fail_at(keyword_token, "unknown tag '" + keyword + "'");
  }

  Result<StmtPtr> parse_if(int stmt_line) {
    auto stmt = make_stmt(StmtKind::kIf, stmt_line);
    STRATA_ASSIGN_OR_RETURN(ExprPtr condition, parse_tuple(false, false, {}));
    STRATA_RETURN_IF_ERROR(expect_block_end());
    while (true) {
      Body body;
      std::string found;
      STRATA_RETURN_IF_ERROR(parse_body({"elif", "else", "endif"}, &body, &found));
      stmt->branches.emplace_back(std::move(condition), std::move(body));
      if (found == "elif") {
        STRATA_ASSIGN_OR_RETURN(condition, parse_tuple(false, false, {}));
        STRATA_RETURN_IF_ERROR(expect_block_end());
        continue;
      }
      STRATA_RETURN_IF_ERROR(expect_block_end());
      if (found == "else") {
        STRATA_RETURN_IF_ERROR(parse_body({"endif"}, &stmt->else_body, &found));
        STRATA_RETURN_IF_ERROR(expect_block_end());
      }
      return stmt;
    }
  }

  // A name, or names separated by commas, optionally in parentheses.
  Status parse_assign_targets(std::vector<std::string>* targets) {
    const bool parenthesized = skip_op("(");
    while (true) {
      STRATA_ASSIGN_OR_RETURN(std::string name, expect_name());
      targets->push_back(std::move(name));
      if (!skip_op(",")) break;
      if (current().kind != TokenKind::kName) break;  // trailing comma
    }
    if (parenthesized) STRATA_RETURN_IF_ERROR(expect_op(")"));
    return {};
  }

  Result<StmtPtr> parse_for(int stmt_line) {
    auto stmt = make_stmt(StmtKind::kFor, stmt_line);
    STRATA_RETURN_IF_ERROR(parse_assign_targets(&stmt->targets));
    if (!skip_name("in")) return unexpected("'in'");
    STRATA_ASSIGN_OR_RETURN(stmt->expr, parse_tuple(false, false, {"recursive"}));
    if (at_name("recursive")) return fail("recursive loops are not supported");
    if (skip_name("if")) {
      STRATA_ASSIGN_OR_RETURN(stmt->condition, parse_expression(true));
    }
    STRATA_RETURN_IF_ERROR(expect_block_end());
    ++loop_depth_;
    std::string found;
    STRATA_RETURN_IF_ERROR(parse_body({"endfor", "else"}, &stmt->body, &found));
    --loop_depth_;
    STRATA_RETURN_IF_ERROR(expect_block_end());
    if (found == "else") {
      STRATA_RETURN_IF_ERROR(parse_body({"endfor"}, &stmt->else_body, &found));
      STRATA_RETURN_IF_ERROR(expect_block_end());
    }
    return stmt;
  }

  Result<StmtPtr> parse_set(int stmt_line) {
    auto stmt = make_stmt(StmtKind::kSet, stmt_line);
    if (current().kind == TokenKind::kName && look().kind == TokenKind::kOperator && look().text == ".") {
      stmt->targets.push_back(current().text);
      advance();
      advance();
      STRATA_ASSIGN_OR_RETURN(stmt->attribute, expect_name());
    } else {
      STRATA_RETURN_IF_ERROR(parse_assign_targets(&stmt->targets));
    }
    if (skip_op("=")) {
      STRATA_ASSIGN_OR_RETURN(stmt->expr, parse_tuple(true, false, {}));
      STRATA_RETURN_IF_ERROR(expect_block_end());
      return stmt;
    }
    if (!stmt->attribute.empty() || stmt->targets.size() != 1) return unexpected("'='");
    stmt->kind = StmtKind::kSetBlock;
    if (at_op("|")) {
      STRATA_ASSIGN_OR_RETURN(stmt->expr, parse_filter(nullptr, false));
    }
    STRATA_RETURN_IF_ERROR(expect_block_end());
    std::string found;
    STRATA_RETURN_IF_ERROR(parse_body({"endset"}, &stmt->body, &found));
    STRATA_RETURN_IF_ERROR(expect_block_end());
    return stmt;
  }

  Result<StmtPtr> parse_macro(int stmt_line) {
    auto stmt = make_stmt(StmtKind::kMacro, stmt_line);
    STRATA_ASSIGN_OR_RETURN(stmt->name, expect_name());
    STRATA_RETURN_IF_ERROR(expect_op("("));
    while (!at_op(")")) {
      if (!stmt->params.empty()) STRATA_RETURN_IF_ERROR(expect_op(","));
      if (at_op(")")) break;
      STRATA_ASSIGN_OR_RETURN(std::string param, expect_name());
      stmt->params.push_back(std::move(param));
      if (skip_op("=")) {
        STRATA_ASSIGN_OR_RETURN(ExprPtr value, parse_expression(true));
        stmt->defaults.push_back(std::move(value));
      } else {
        if (!stmt->defaults.empty() && stmt->defaults.back() != nullptr) {
          return fail("non-default argument follows default argument");
        }
        stmt->defaults.push_back(nullptr);
      }
    }
    advance();  // ')'
    STRATA_RETURN_IF_ERROR(expect_block_end());
    const int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    std::string found;
    STRATA_RETURN_IF_ERROR(parse_body({"endmacro"}, &stmt->body, &found));
    loop_depth_ = saved_loop_depth;
    STRATA_RETURN_IF_ERROR(expect_block_end());
    return stmt;
  }

  Result<StmtPtr> parse_filter_block(int stmt_line) {
    auto stmt = make_stmt(StmtKind::kFilterBlock, stmt_line);
    STRATA_ASSIGN_OR_RETURN(stmt->expr, parse_filter(nullptr, true));
    STRATA_RETURN_IF_ERROR(expect_block_end());
    std::string found;
    STRATA_RETURN_IF_ERROR(parse_body({"endfilter"}, &stmt->body, &found));
    STRATA_RETURN_IF_ERROR(expect_block_end());
    return stmt;
  }

  Result<StmtPtr> parse_with(int stmt_line) {
    auto stmt = make_stmt(StmtKind::kWith, stmt_line);
    while (current().kind != TokenKind::kBlockEnd) {
      if (!stmt->targets.empty()) STRATA_RETURN_IF_ERROR(expect_op(","));
      STRATA_ASSIGN_OR_RETURN(std::string name, expect_name());
      stmt->targets.push_back(std::move(name));
      STRATA_RETURN_IF_ERROR(expect_op("="));
      STRATA_ASSIGN_OR_RETURN(ExprPtr value, parse_expression(true));
      stmt->defaults.push_back(std::move(value));
    }
    advance();
    std::string found;
    STRATA_RETURN_IF_ERROR(parse_body({"endwith"}, &stmt->body, &found));
    STRATA_RETURN_IF_ERROR(expect_block_end());
    return stmt;
  }

  // ---- expressions ---------------------------------------------------------------------

  bool at_tuple_end(std::initializer_list<std::string_view> extra_end_names) const {
    const Token& t = current();
    if (t.kind == TokenKind::kVariableEnd || t.kind == TokenKind::kBlockEnd || t.kind == TokenKind::kEnd) return true;
    if (t.kind == TokenKind::kOperator && t.text == ")") return true;
    if (t.kind == TokenKind::kName) {
      for (std::string_view n : extra_end_names) {
        if (t.text == n) return true;
      }
    }
    return false;
  }

  Result<ExprPtr> parse_tuple(bool with_condexpr, bool explicit_parentheses,
                              std::initializer_list<std::string_view> extra_end_names) {
    const int tuple_line = line();
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) STRATA_RETURN_IF_ERROR(expect_op(","));
      if (at_tuple_end(extra_end_names)) break;
      STRATA_ASSIGN_OR_RETURN(ExprPtr item, with_condexpr ? parse_expression(true) : parse_or());
      items.push_back(std::move(item));
      if (at_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parentheses) return fail("expected an expression, got '" + describe(current()) + "'");
    }
    auto tuple = make(ExprKind::kTuple, tuple_line);
    tuple->children = std::move(items);
    return tuple;
  }

  Result<ExprPtr> parse_expression(bool with_condexpr) {
    if (with_condexpr) return parse_condexpr();
    return parse_or();
  }

  Result<ExprPtr> parse_condexpr() {
    STRATA_ASSIGN_OR_RETURN(ExprPtr value, parse_or());
    while (at_name("if")) {
      const int cond_line = line();
      advance();
      STRATA_ASSIGN_OR_RETURN(ExprPtr test, parse_or());
      ExprPtr otherwise;
      if (skip_name("else")) {
        STRATA_ASSIGN_OR_RETURN(otherwise, parse_condexpr());
      }
      auto node = make(ExprKind::kCondition, cond_line);
      node->children.push_back(std::move(value));
      node->children.push_back(std::move(test));
      node->children.push_back(std::move(otherwise));
      value = std::move(node);
    }
    return value;
  }

  Result<ExprPtr> parse_or() {
    STRATA_ASSIGN_OR_RETURN(ExprPtr left, parse_and());
    while (at_name("or")) {
      auto node = make(ExprKind::kOr, line());
      advance();
      STRATA_ASSIGN_OR_RETURN(ExprPtr right, parse_and());
      node->children.push_back(std::move(left));
      node->children.push_back(std::move(right));
      left = std::move(node);
    }
    return left;
  }

  Result<ExprPtr> parse_and() {
    STRATA_ASSIGN_OR_RETURN(ExprPtr left, parse_not());
    while (at_name("and")) {
      auto node = make(ExprKind::kAnd, line());
      advance();
      STRATA_ASSIGN_OR_RETURN(ExprPtr right, parse_not());
      node->children.push_back(std::move(left));
      node->children.push_back(std::move(right));
      left = std::move(node);
    }
    return left;
  }

  Result<ExprPtr> parse_not() {
    if (at_name("not")) {
      auto node = make(ExprKind::kNot, line());
      advance();
      if (++nesting_ > kMaxNesting) return fail("expression nested too deeply");
      STRATA_ASSIGN_OR_RETURN(ExprPtr operand, parse_not());
      --nesting_;
      node->children.push_back(std::move(operand));
      return node;
    }
    return parse_compare();
  }

  Result<ExprPtr> parse_compare() {
    const int compare_line = line();
    STRATA_ASSIGN_OR_RETURN(ExprPtr first, parse_math1());
    ExprPtr node;
    while (true) {
      CompareOp op;
      if (at_op("=="))
        op = CompareOp::kEq;
      else if (at_op("!="))
        op = CompareOp::kNe;
      else if (at_op("<"))
        op = CompareOp::kLt;
      else if (at_op("<="))
        op = CompareOp::kLe;
      else if (at_op(">"))
        op = CompareOp::kGt;
      else if (at_op(">="))
        op = CompareOp::kGe;
      else if (at_name("in"))
        op = CompareOp::kIn;
      else if (at_name("not") && look().kind == TokenKind::kName && look().text == "in") {
        op = CompareOp::kNotIn;
        advance();
      } else {
        break;
      }
      advance();
      STRATA_ASSIGN_OR_RETURN(ExprPtr operand, parse_math1());
      if (!node) {
        node = make(ExprKind::kCompare, compare_line);
        node->children.push_back(std::move(first));
      }
      node->compare_ops.push_back(op);
      node->children.push_back(std::move(operand));
    }
    if (!node) return first;
    return node;
  }

  ExprPtr binary(BinaryOp op, ExprPtr left, ExprPtr right, int op_line) {
    auto node = make(ExprKind::kBinary, op_line);
    node->binary_op = op;
    node->children.push_back(std::move(left));
    node->children.push_back(std::move(right));
    return node;
  }

  Result<ExprPtr> parse_math1() {
    STRATA_ASSIGN_OR_RETURN(ExprPtr left, parse_concat());
    while (at_op("+") || at_op("-")) {
      const BinaryOp op = at_op("+") ? BinaryOp::kAdd : BinaryOp::kSub;
      const int op_line = line();
      advance();
      STRATA_ASSIGN_OR_RETURN(ExprPtr right, parse_concat());
      left = binary(op, std::move(left), std::move(right), op_line);
    }
    return left;
  }

  Result<ExprPtr> parse_concat() {
    STRATA_ASSIGN_OR_RETURN(ExprPtr left, parse_math2());
    while (at_op("~")) {
      const int op_line = line();
      advance();
      STRATA_ASSIGN_OR_RETURN(ExprPtr right, parse_math2());
      left = binary(BinaryOp::kConcat, std::move(left), std::move(right), op_line);
    }
    return left;
  }

  Result<ExprPtr> parse_math2() {
    STRATA_ASSIGN_OR_RETURN(ExprPtr left, parse_pow());
    while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
      const std::string& t = current().text;
      const BinaryOp op = t == "*"    ? BinaryOp::kMul
                          : t == "/"  ? BinaryOp::kDiv
                          : t == "//" ? BinaryOp::kFloorDiv
                                      : BinaryOp::kMod;
      const int op_line = line();
      advance();
      STRATA_ASSIGN_OR_RETURN(ExprPtr right, parse_pow());
      left = binary(op, std::move(left), std::move(right), op_line);
    }
    return left;
  }

  // jinja2 makes ** left-associative: 2**3**2 == 64.
  Result<ExprPtr> parse_pow() {
    STRATA_ASSIGN_OR_RETURN(ExprPtr left, parse_unary(true));
    while (at_op("**")) {
      const int op_line = line();
      advance();
      STRATA_ASSIGN_OR_RETURN(ExprPtr right, parse_unary(true));
      left = binary(BinaryOp::kPow, std::move(left), std::move(right), op_line);
    }
    return left;
  }

  Result<ExprPtr> parse_unary(bool with_filter) {
    if (++nesting_ > kMaxNesting) return fail("expression nested too deeply");
    ExprPtr node;
    if (at_op("-") || at_op("+")) {
      node = make(at_op("-") ? ExprKind::kNegate : ExprKind::kPlus, line());
      advance();
      STRATA_ASSIGN_OR_RETURN(ExprPtr operand, parse_unary(false));
      node->children.push_back(std::move(operand));
    } else {
      STRATA_ASSIGN_OR_RETURN(node, parse_primary());
    }
    STRATA_ASSIGN_OR_RETURN(node, parse_postfix(std::move(node)));
    if (with_filter) {
      STRATA_ASSIGN_OR_RETURN(node, parse_filter_expr(std::move(node)));
    }
    --nesting_;
    return node;
  }

  Result<ExprPtr> parse_primary() {
    const Token& token = current();
    const int token_line = line();
    switch (token.kind) {
      case TokenKind::kName: {
        auto node = make(ExprKind::kLiteral, token_line);
        if (token.text == "true" || token.text == "True") {
          node->literal = Value::boolean(true);
        } else if (token.text == "false" || token.text == "False") {
          node->literal = Value::boolean(false);
        } else if (token.text == "none" || token.text == "None") {
          node->literal = Value::none();
        } else {
          node->kind = ExprKind::kName;
          node->name = token.text;
        }
        advance();
        return node;
      }
      case TokenKind::kString: {
        std::string value;
        while (current().kind == TokenKind::kString) {  // adjacent literals concatenate
          value += current().text;
          advance();
        }
        auto node = make(ExprKind::kLiteral, token_line);
        node->literal = Value::string(std::move(value));
        return node;
      }
      case TokenKind::kInteger: {
        auto node = make(ExprKind::kLiteral, token_line);
        node->literal = Value::integer(token.int_value);
        advance();
        return node;
      }
      case TokenKind::kFloat: {
        auto node = make(ExprKind::kLiteral, token_line);
        node->literal = Value::number(token.float_value);
        advance();
        return node;
      }
      case TokenKind::kOperator: {
        if (token.text == "(") {
          advance();
          STRATA_ASSIGN_OR_RETURN(ExprPtr inner, parse_tuple(true, true, {}));
          STRATA_RETURN_IF_ERROR(expect_op(")"));
          return inner;
        }
        if (token.text == "[") return parse_list();
        if (token.text == "{") return parse_dict();
        break;
      }
      default:
        break;
    }
    return fail("unexpected '" + describe(token) + "'");
  }

  Result<ExprPtr> parse_list() {
    auto node = make(ExprKind::kList, line());
    advance();  // '['
    while (!at_op("]")) {
      if (!node->children.empty()) STRATA_RETURN_IF_ERROR(expect_op(","));
      if (at_op("]")) break;
      STRATA_ASSIGN_OR_RETURN(ExprPtr item, parse_expression(true));
      node->children.push_back(std::move(item));
    }
    advance();
    return node;
  }

  Result<ExprPtr> parse_dict() {
    auto node = make(ExprKind::kDict, line());
    advance();  // '{'
    while (!at_op("}")) {
      if (!node->children.empty()) STRATA_RETURN_IF_ERROR(expect_op(","));
      if (at_op("}")) break;
      STRATA_ASSIGN_OR_RETURN(ExprPtr key, parse_expression(true));
      STRATA_RETURN_IF_ERROR(expect_op(":"));
      STRATA_ASSIGN_OR_RETURN(ExprPtr value, parse_expression(true));
      node->children.push_back(std::move(key));
      node->children.push_back(std::move(value));
    }
    advance();
    return node;
  }

  Result<ExprPtr> parse_postfix(ExprPtr node) {
    while (true) {
      if (at_op(".") || at_op("[")) {
        STRATA_ASSIGN_OR_RETURN(node, parse_subscript(std::move(node)));
      } else if (at_op("(")) {
        STRATA_ASSIGN_OR_RETURN(node, parse_call(std::move(node)));
      } else {
        return node;
      }
    }
  }

  Result<ExprPtr> parse_filter_expr(ExprPtr node) {
    while (true) {
      if (at_op("|")) {
        STRATA_ASSIGN_OR_RETURN(node, parse_filter(std::move(node), false));
      } else if (at_name("is")) {
        STRATA_ASSIGN_OR_RETURN(node, parse_test(std::move(node)));
      } else if (at_op("(")) {
        STRATA_ASSIGN_OR_RETURN(node, parse_call(std::move(node)));
      } else {
        return node;
      }
    }
  }

  Result<ExprPtr> parse_subscript(ExprPtr node) {
    const int sub_line = line();
    if (skip_op(".")) {
      const Token& attr = current();
      if (attr.kind == TokenKind::kName) {
        auto get = make(ExprKind::kGetAttr, sub_line);
        get->name = attr.text;
        get->children.push_back(std::move(node));
        advance();
        return get;
      }
      if (attr.kind != TokenKind::kInteger) return fail("expected name or number");
      auto get = make(ExprKind::kGetItem, sub_line);
      get->children.push_back(std::move(node));
      auto index = make(ExprKind::kLiteral, sub_line);
      index->literal = Value::integer(attr.int_value);
      get->children.push_back(std::move(index));
      advance();
      return get;
    }
    advance();  // '['
    std::vector<ExprPtr> args;
    bool any_slice = false;
    ExprPtr slice_parts[3];
    while (!at_op("]")) {
      if (!args.empty() || any_slice) STRATA_RETURN_IF_ERROR(expect_op(","));
      // parse_subscribed: expr, or [expr]:[expr][:[expr]]
      ExprPtr first;
      if (!at_op(":")) {
        STRATA_ASSIGN_OR_RETURN(first, parse_expression(true));
        if (!at_op(":")) {
          args.push_back(std::move(first));
          continue;
        }
      }
      if (any_slice || !args.empty()) return fail("multi-dimensional slices are not supported");
      advance();  // ':'
      any_slice = true;
      slice_parts[0] = std::move(first);
      if (!at_op(":") && !at_op("]") && !at_op(",")) {
        STRATA_ASSIGN_OR_RETURN(slice_parts[1], parse_expression(true));
      }
      if (skip_op(":")) {
        if (!at_op("]") && !at_op(",")) {
          STRATA_ASSIGN_OR_RETURN(slice_parts[2], parse_expression(true));
        }
      }
    }
    advance();  // ']'
    if (any_slice) {
      if (!args.empty()) return fail("multi-dimensional slices are not supported");
      auto slice = make(ExprKind::kSlice, sub_line);
      slice->children.push_back(std::move(node));
      for (auto& part : slice_parts) slice->children.push_back(std::move(part));
      return slice;
    }
    if (args.empty()) return fail("expected subscript expression");
    auto get = make(ExprKind::kGetItem, sub_line);
    get->children.push_back(std::move(node));
    if (args.size() == 1) {
      get->children.push_back(std::move(args[0]));
    } else {
      auto tuple = make(ExprKind::kTuple, sub_line);
      tuple->children = std::move(args);
      get->children.push_back(std::move(tuple));
    }
    return get;
  }

  Status parse_call_args(Expr* node) {
    STRATA_RETURN_IF_ERROR(expect_op("("));
    bool first = true;
    while (!at_op(")")) {
      if (!first) STRATA_RETURN_IF_ERROR(expect_op(","));
      first = false;
      if (at_op(")")) break;
      if (at_op("*") || at_op("**")) return fail("*args and **kwargs in calls are not supported");
      if (current().kind == TokenKind::kName && look().kind == TokenKind::kOperator && look().text == "=") {
        std::string key = current().text;
        advance();
        advance();
        STRATA_ASSIGN_OR_RETURN(ExprPtr value, parse_expression(true));
        node->kwargs.emplace_back(std::move(key), std::move(value));
      } else {
        if (!node->kwargs.empty()) return fail("positional argument follows keyword argument");
        STRATA_ASSIGN_OR_RETURN(ExprPtr value, parse_expression(true));
        node->args.push_back(std::move(value));
      }
    }
    advance();  // ')'
    return {};
  }

  Result<ExprPtr> parse_call(ExprPtr callee) {
    auto node = make(ExprKind::kCall, line());
    node->children.push_back(std::move(callee));
    STRATA_RETURN_IF_ERROR(parse_call_args(node.get()));
    return node;
  }

  Result<std::string> parse_dotted_name() {
    STRATA_ASSIGN_OR_RETURN(std::string name, expect_name());
    while (skip_op(".")) {
      STRATA_ASSIGN_OR_RETURN(std::string part, expect_name());
      name += "." + part;
    }
    return name;
  }

  // `| name(args) | name ...`; with start_inline the first filter has no leading pipe.
  Result<ExprPtr> parse_filter(ExprPtr operand, bool start_inline) {
    while (at_op("|") || start_inline) {
      if (!start_inline) advance();
      start_inline = false;
      auto node = make(ExprKind::kFilter, line());
      STRATA_ASSIGN_OR_RETURN(node->name, parse_dotted_name());
      if (at_op("(")) STRATA_RETURN_IF_ERROR(parse_call_args(node.get()));
      node->children.push_back(std::move(operand));
      operand = std::move(node);
    }
    return operand;
  }

  Result<ExprPtr> parse_test(ExprPtr operand) {
    auto node = make(ExprKind::kTest, line());
    advance();  // 'is'
    if (skip_name("not")) node->negated = true;
    STRATA_ASSIGN_OR_RETURN(node->name, parse_dotted_name());
    const Token& t = current();
    if (at_op("(")) {
      STRATA_RETURN_IF_ERROR(parse_call_args(node.get()));
    } else if ((t.kind == TokenKind::kName || t.kind == TokenKind::kString || t.kind == TokenKind::kInteger ||
                t.kind == TokenKind::kFloat || at_op("[") || at_op("{")) &&
               !at_name("else") && !at_name("or") && !at_name("and")) {
      if (at_name("is")) return fail("You cannot chain multiple tests with is");
      STRATA_ASSIGN_OR_RETURN(ExprPtr arg, parse_primary());
      STRATA_ASSIGN_OR_RETURN(arg, parse_postfix(std::move(arg)));
      node->args.push_back(std::move(arg));
    }
    node->children.push_back(std::move(operand));
    return node;
  }

  std::shared_ptr<Program> program_;
  std::vector<Token> tokens_;
  std::vector<uint32_t> line_starts_;
  size_t pos_ = 0;
  int nesting_ = 0;
  int statement_nesting_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Result<std::shared_ptr<const Program>> parse_program(std::string_view source, const ParseOptions& options) {
  auto program = std::make_shared<Program>();
  program->source = normalize_source(source, options.keep_trailing_newline);
  STRATA_ASSIGN_OR_RETURN(std::vector<Token> tokens, tokenize(program->source, options.lex));
  Parser parser(program, std::move(tokens));
  STRATA_RETURN_IF_ERROR(parser.run());
  return std::shared_ptr<const Program>(std::move(program));
}

}  // namespace strata::tmpl
