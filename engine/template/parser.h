// Template source -> Program: the statement and expression grammar of jinja2's parser,
// restricted to what chat templates use.
#pragma once

#include <memory>
#include <string_view>

#include "engine/core/status.h"
#include "engine/template/ast.h"
#include "engine/template/lexer.h"

namespace strata::tmpl {

struct ParseOptions {
  LexOptions lex;
  bool keep_trailing_newline = false;
};

// Syntax errors name the line and column ("chat template: syntax error at line 3, column 9: ...").
Result<std::shared_ptr<const Program>> parse_program(std::string_view source, const ParseOptions& options);

}  // namespace strata::tmpl
