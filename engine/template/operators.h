// Python operator semantics for template values: arithmetic, comparison, membership,
// iteration, and the two string formatting mini-languages (`%` and str.format).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/status.h"
#include "engine/template/ast.h"
#include "engine/template/value.h"

namespace strata::tmpl {

Result<Value> binary_op(BinaryOp op, const Value& a, const Value& b);
Result<Value> negate(const Value& v);
Result<Value> unary_plus(const Value& v);
Result<bool> compare_op(CompareOp op, const Value& a, const Value& b);
// `item in container`; an undefined container contains nothing.
Result<bool> contains(const Value& container, const Value& item);
// The items `for x in v` visits: list items, dict keys, string characters; undefined is empty.
Result<std::vector<Value>> iterate(const Value& v);
// len(v); undefined has length 0.
Result<int64_t> length(const Value& v);
// obj[start:stop:step] for lists, tuples and strings; other objects give undefined.
Result<Value> slice(const Value& object, std::optional<int64_t> start, std::optional<int64_t> stop,
                    std::optional<int64_t> step);

// printf-style `format % args`: args is a tuple, a dict (for %(name)s) or a single value.
Result<std::string> percent_format(std::string_view format, const Value& args);
// str.format(*positional, **keyword).
Result<std::string> str_format(std::string_view format, const CallArgs& args);

// Python's float(str) and int(str, base): surrounding whitespace, signs, '_' between digits.
std::optional<double> parse_py_float(std::string_view text);
std::optional<int64_t> parse_py_int(std::string_view text, int base);

}  // namespace strata::tmpl
