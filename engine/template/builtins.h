// The filters, tests and object methods of the Jinja subset, and attribute/item access with
// the semantics of jinja2's ImmutableSandboxedEnvironment.
#pragma once

#include <initializer_list>
#include <optional>
#include <string_view>
#include <vector>

#include "engine/core/status.h"
#include "engine/template/value.h"

namespace strata::tmpl {

class Interpreter;

// Binds call arguments to parameter names as Python does; unset parameters stay empty.
Result<std::vector<std::optional<Value>>> bind_args(const CallArgs& args, std::string_view function,
                                                    std::initializer_list<std::string_view> params);

using FilterFn = Result<Value> (*)(Interpreter&, const Value&, CallArgs&);
using TestFn = Result<bool> (*)(Interpreter&, const Value&, CallArgs&);
FilterFn find_filter(std::string_view name);  // null when unknown
TestFn find_test(std::string_view name);      // null when unknown

// The Python methods of str, dict and list that the sandbox allows (and the mutating ones,
// which fail when called, as in jinja2's immutable sandbox).
bool has_method(const Value& object, std::string_view name);
Result<Value> call_method(Interpreter& interpreter, const Value& object, std::string_view name, CallArgs& args);

// obj.name: a method of str/dict/list, else a dict key or namespace attribute, else undefined.
Value get_attribute(const Value& object, std::string_view name);
// obj[key]: a dict key, a list or string index, else as get_attribute for string keys.
Value get_item(const Value& object, const Value& key);

}  // namespace strata::tmpl
