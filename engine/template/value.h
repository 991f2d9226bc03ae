// The values a chat template computes with, modelled on the Python objects Jinja sees:
// Undefined, None, bool, int, float, str, list/tuple, dict (insertion-ordered), namespace
// objects and callables (macros, builtins, bound methods).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "engine/core/status.h"

namespace strata::tmpl {

class Interpreter;
struct List;
struct Dict;
struct Namespace;
struct CallArgs;
struct Callable;

enum class ValueKind : uint8_t {
  kUndefined,
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kList,
  kDict,
  kNamespace,
  kCallable,
};

class Value {
 public:
  Value() = default;  // undefined

  // `hint` is the error message that using the value raises ("'x' is undefined").
  static Value undefined(std::string hint = {}) { return Value(UndefinedTag{std::move(hint)}); }
  static Value none() { return Value(NoneTag{}); }
  static Value boolean(bool b) { return Value(b); }
  static Value integer(int64_t i) { return Value(i); }
  static Value number(double d) { return Value(d); }
  static Value string(std::string s) { return Value(std::move(s)); }
  static Value list(std::vector<Value> items = {});
  static Value tuple(std::vector<Value> items);
  static Value list(std::shared_ptr<const List> list) { return Value(std::move(list)); }
  static Value dict();  // an empty dict
  static Value dict(Dict dict);
  static Value dict(std::shared_ptr<const Dict> dict) { return Value(std::move(dict)); }
  static Value namespace_object(std::shared_ptr<Namespace> ns) { return Value(std::move(ns)); }
  static Value callable(std::string name, std::function<Result<Value>(Interpreter&, CallArgs&)> fn);

  ValueKind kind() const { return static_cast<ValueKind>(v_.index()); }
  bool is_undefined() const { return kind() == ValueKind::kUndefined; }
  bool is_none() const { return kind() == ValueKind::kNone; }
  bool is_bool() const { return kind() == ValueKind::kBool; }
  bool is_int() const { return kind() == ValueKind::kInt; }
  bool is_float() const { return kind() == ValueKind::kFloat; }
  bool is_string() const { return kind() == ValueKind::kString; }
  bool is_list() const { return kind() == ValueKind::kList; }  // lists and tuples
  bool is_dict() const { return kind() == ValueKind::kDict; }
  bool is_namespace() const { return kind() == ValueKind::kNamespace; }
  bool is_callable() const { return kind() == ValueKind::kCallable; }
  // Python's numbers.Number: bool, int and float.
  bool is_number() const { return is_bool() || is_int() || is_float(); }
  bool is_integral() const { return is_bool() || is_int(); }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return is_bool() ? (as_bool() ? 1 : 0) : std::get<int64_t>(v_); }
  double as_float() const { return is_float() ? std::get<double>(v_) : static_cast<double>(as_int()); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const List& as_list() const { return *std::get<std::shared_ptr<const List>>(v_); }
  const Dict& as_dict() const { return *std::get<std::shared_ptr<const Dict>>(v_); }
  Namespace& as_namespace() const { return *std::get<std::shared_ptr<Namespace>>(v_); }
  const Callable& as_callable() const { return *std::get<std::shared_ptr<const Callable>>(v_); }
  // For an undefined value: the error that using it raises ("'x' is undefined").
  const std::string& undefined_hint() const { return std::get<UndefinedTag>(v_).hint; }

 private:
  struct UndefinedTag {
    std::string hint;
  };
  struct NoneTag {};
  using Storage =
      std::variant<UndefinedTag, NoneTag, bool, int64_t, double, std::string, std::shared_ptr<const List>,
                   std::shared_ptr<const Dict>, std::shared_ptr<Namespace>, std::shared_ptr<const Callable>>;

  template <typename T>
  explicit Value(T v) : v_(std::move(v)) {}

  Storage v_;
};

struct List {
  std::vector<Value> items;
  bool is_tuple = false;  // prints as (a, b); otherwise the same as a list
};

// A Python dict: keys compare with Python equality (1 == 1.0 == True), order is insertion order.
struct Dict {
  std::vector<std::pair<Value, Value>> entries;

  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value value);
  size_t size() const { return entries.size(); }
};

// jinja2's namespace(): the one mutable object a template can assign attributes on.
struct Namespace {
  Dict attributes;
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

struct Callable {
  std::string name;
  std::function<Result<Value>(Interpreter&, CallArgs&)> call;
};

// The error an operation on an undefined value reports.
Status undefined_error(const Value& v);

// Python's type(x).__name__, as error messages name it.
const char* type_name(const Value& v);

bool truthy(const Value& v);                     // bool(x)
std::string to_str(const Value& v);              // str(x); undefined is ""
std::string repr(const Value& v);                // repr(x)
bool py_equals(const Value& a, const Value& b);  // a == b
// a < b as Python orders numbers, strings and sequences: -1, 0 or 1; an error for types
// Python cannot order ("'<' not supported between instances of 'str' and 'int'").
Result<int> py_compare(const Value& a, const Value& b, std::string_view op = "<");

// json.dumps(x, ensure_ascii, indent, separators, sort_keys), as transformers' tojson calls it.
struct JsonDumpOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // absent: one line
  std::optional<std::pair<std::string, std::string>> separators;
  bool sort_keys = false;
};
Result<std::string> to_json(const Value& v, const JsonDumpOptions& options);

// Parses JSON text (as Python's json.loads would: ints stay ints, key order is kept).
Result<Value> value_from_json(std::string_view json_text);

}  // namespace strata::tmpl
