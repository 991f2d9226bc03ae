// Attribute and item access, and the methods of str, dict and list that templates call
// (message.content.strip(), tool.get('type'), messages.index(m), ...).
#include <algorithm>
#include <array>

#include "engine/template/builtins.h"
#include "engine/template/interpreter.h"
#include "engine/template/operators.h"
#include "engine/template/py_string.h"

namespace strata::tmpl {
namespace {

constexpr std::array<std::string_view, 34> kStringMethods = {
    "strip",        "lstrip",       "rstrip",    "split",      "rsplit",     "splitlines", "startswith",
    "endswith",     "upper",        "lower",     "title",      "capitalize", "replace",    "format",
    "find",         "rfind",        "index",     "rindex",     "count",      "join",       "isdigit",
    "isalpha",      "isalnum",      "isspace",   "isupper",    "islower",    "isnumeric",  "isdecimal",
    "removeprefix", "removesuffix", "partition", "rpartition", "zfill",      "swapcase"};
constexpr std::array<std::string_view, 5> kDictMethods = {"items", "keys", "values", "get", "copy"};
constexpr std::array<std::string_view, 3> kListMethods = {"index", "count", "copy"};
// Mutating methods exist on the object but jinja2's immutable sandbox refuses to call them.
constexpr std::array<std::string_view, 13> kUnsafeMethods = {"append",  "extend", "insert", "pop",    "remove",
                                                             "reverse", "sort",   "clear",  "update", "setdefault",
                                                             "popitem", "add",    "discard"};

template <size_t N>
bool contains_name(const std::array<std::string_view, N>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

Result<std::optional<std::string>> optional_string_arg(const std::optional<Value>& arg, std::string_view what) {
  if (!arg || arg->is_none()) return std::optional<std::string>();
  if (!arg->is_string()) {
    return invalid_argument(std::string(what) + " arg must be None or str, not " + type_name(*arg));
  }
  return std::optional<std::string>(arg->as_string());
}

Result<int64_t> int_arg(const std::optional<Value>& arg, int64_t default_value) {
  if (!arg) return default_value;
  if (!arg->is_integral()) {
    return invalid_argument(std::string("'") + type_name(*arg) + "' object cannot be interpreted as an integer");
  }
  return arg->as_int();
}

Result<std::string> string_arg(const std::optional<Value>& arg, std::string_view method) {
  if (!arg) return invalid_argument(std::string(method) + "() missing a required argument");
  if (!arg->is_string()) {
    return invalid_argument(std::string(method) + "() argument must be str, not " + type_name(*arg));
  }
  return arg->as_string();
}

Value string_list(std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (auto& p : parts) items.push_back(Value::string(std::move(p)));
  return Value::list(std::move(items));
}

Result<Value> affix_test(const std::string& s, const CallArgs& args, bool prefix, std::string_view method) {
  STRATA_ASSIGN_OR_RETURN(auto bound, bind_args(args, method, {"prefix", "start", "end"}));
  if (!bound[0]) return invalid_argument(std::string(method) + "() takes at least 1 argument (0 given)");
  std::vector<std::string> candidates;
  if (bound[0]->is_string()) {
    candidates.push_back(bound[0]->as_string());
  } else if (bound[0]->is_list() && bound[0]->as_list().is_tuple) {
    for (const Value& v : bound[0]->as_list().items) {
      if (!v.is_string())
        return invalid_argument(std::string("tuple for ") + std::string(method) + " must only contain str");
      candidates.push_back(v.as_string());
    }
  } else {
    return invalid_argument(std::string(method) + " first arg must be str or a tuple of str, not " +
                            type_name(*bound[0]));
  }
  std::string_view text = s;
  if (bound[1] || bound[2]) {
    STRATA_ASSIGN_OR_RETURN(
        Value window,
        slice(Value::string(s),
              bound[1] && !bound[1]->is_none() ? std::optional<int64_t>(bound[1]->as_int()) : std::nullopt,
              bound[2] && !bound[2]->is_none() ? std::optional<int64_t>(bound[2]->as_int()) : std::nullopt,
              std::nullopt));
    return affix_test(window.as_string(), CallArgs{{*bound[0]}, {}}, prefix, method);
  }
  for (const std::string& c : candidates) {
    if (prefix ? text.starts_with(c) : text.ends_with(c)) return Value::boolean(true);
  }
  return Value::boolean(false);
}

template <typename Pred>
Value all_chars(const std::string& s, Pred pred) {
  if (s.empty()) return Value::boolean(false);
  for (size_t pos = 0; pos < s.size();) {
    if (!pred(decode_code_point(s, pos))) return Value::boolean(false);
  }
  return Value::boolean(true);
}

Result<Value> string_method(Interpreter& interp, const std::string& s, std::string_view name, CallArgs& args) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    STRATA_ASSIGN_OR_RETURN(auto bound, bind_args(args, name, {"chars"}));
    STRATA_ASSIGN_OR_RETURN(auto chars, optional_string_arg(bound[0], name));
    return Value::string(py_strip(s, chars, name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    STRATA_ASSIGN_OR_RETURN(auto bound, bind_args(args, name, {"sep", "maxsplit"}));
    STRATA_ASSIGN_OR_RETURN(auto sep, optional_string_arg(bound[0], "sep"));
    if (sep && sep->empty()) return invalid_argument("empty separator");
    STRATA_ASSIGN_OR_RETURN(int64_t max_split, int_arg(bound[1], -1));
    return string_list(name == "split" ? py_split(s, sep, max_split) : py_rsplit(s, sep, max_split));
  }
  if (name == "splitlines") {
    STRATA_ASSIGN_OR_RETURN(auto bound, bind_args(args, name, {"keepends"}));
    return string_list(py_splitlines(s, bound[0] && truthy(*bound[0])));
  }
  if (name == "startswith" || name == "endswith") return affix_test(s, args, name == "startswith", name);
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" || name == "swapcase") {
    STRATA_ASSIGN_OR_RETURN(auto bound, bind_args(args, name, {}));
    if (name == "upper") return Value::string(py_upper(s));
    if (name == "lower") return Value::string(py_lower(s));
    if (name == "title") return Value::string(py_title(s));
    if (name == "capitalize") return Value::string(py_capitalize(s));
    std::string out;
    for (size_t pos = 0; pos < s.size();) {
      const size_t start = pos;
      decode_code_point(s, pos);
      const std::string one = s.substr(start, pos - start);
      const std::string upper = py_upper(one);
      out += upper != one ? upper : py_lower(one);
    }
    return Value::string(std::move(out));
  }
  if (name == "replace") {
    STRATA_ASSIGN_OR_RETURN(auto bound, bind_args(args, name, {"old", "new", "count"}));
    STRATA_ASSIGN_OR_RETURN(std::string old_text, string_arg(bound[0], name));
    STRATA_ASSIGN_OR_RETURN(std::string new_text, string_arg(bound[1], name));
    STRATA_ASSIGN_OR_RETURN(int64_t count, int_arg(bound[2], -1));
    return Value::string(py_replace(s, old_text, new_text, count));
  }
  if (name == "format") {
    STRATA_ASSIGN_OR_RETURN(std::string formatted, str_format(s, args));
    return Value::string(std::move(formatted));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    STRATA_ASSIGN_OR_RETURN(auto bound, bind_args(args, name, {"sub"}));
    STRATA_ASSIGN_OR_RETURN(std::string sub, string_arg(bound[0], name));
    const int64_t at = py_find(s, sub, name[0] == 'r');
    if (at < 0 && (name == "index" || name == "rindex")) return invalid_argument("substring not found");
    return Value::integer(at);
  }
  if (name == "count") {
    STRATA_ASSIGN_OR_RETURN(auto bound, bind_args(args, name, {"sub"}));
    STRATA_ASSIGN_OR_RETURN(std::string sub, string_arg(bound[0], name));
    return Value::integer(py_count(s, sub));
  }
  if (name == "join") {
    STRATA_ASSIGN_OR_RETURN(auto bound, bind_args(args, name, {"iterable"}));
    if (!bound[0]) return invalid_argument("join() takes exactly one argument (0 given)");
    STRATA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(*bound[0]));
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string()) {
        return invalid_argument("sequence item " + std::to_string(i) + ": expected str instance, " +
                                type_name(items[i]) + " found");
      }
      if (i > 0) out += s;
      out += items[i].as_string();
    }
    return Value::string(std::move(out));
  }
  if (name == "isdigit" || name == "isnumeric" || name == "isdecimal") {
    return all_chars(s, [](char32_t c) { return c >= '0' && c <= '9'; });
  }
  if (name == "isalpha") {
    return all_chars(s, py_isalpha);
  }
  if (name == "isalnum") {
    return all_chars(s, py_isalnum);
  }
  if (name == "isspace") return all_chars(s, py_isspace);
  if (name == "isupper") return Value::boolean(py_isupper(s));
  if (name == "islower") return Value::boolean(py_islower(s));
  if (name == "removeprefix" || name == "removesuffix") {
    STRATA_ASSIGN_OR_RETURN(auto bound, bind_args(args, name, {"affix"}));
    STRATA_ASSIGN_OR_RETURN(std::string affix, string_arg(bound[0], name));
    std::string_view view = s;
    if (name == "removeprefix" && view.starts_with(affix)) view.remove_prefix(affix.size());
    if (name == "removesuffix" && view.ends_with(affix)) view.remove_suffix(affix.size());
    return Value::string(std::string(view));
  }
  if (name == "partition" || name == "rpartition") {
    STRATA_ASSIGN_OR_RETURN(auto bound, bind_args(args, name, {"sep"}));
    STRATA_ASSIGN_OR_RETURN(std::string sep, string_arg(bound[0], name));
    if (sep.empty()) return invalid_argument("empty separator");
    const size_t at = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (at == std::string::npos) {
      if (name == "partition") return Value::tuple({Value::string(s), Value::string(""), Value::string("")});
      return Value::tuple({Value::string(""), Value::string(""), Value::string(s)});
    }
    return Value::tuple({Value::string(s.substr(0, at)), Value::string(sep), Value::string(s.substr(at + sep.size()))});
  }
  if (name == "zfill") {
    STRATA_ASSIGN_OR_RETURN(auto bound, bind_args(args, name, {"width"}));
    STRATA_ASSIGN_OR_RETURN(int64_t width, int_arg(bound[0], 0));
    const int64_t len = static_cast<int64_t>(code_point_length(s));
    if (len >= width) return Value::string(s);
    const size_t sign = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    return Value::string(s.substr(0, sign) + std::string(static_cast<size_t>(width - len), '0') + s.substr(sign));
  }
  (void)interp;
  return invalid_argument("'str' object has no attribute '" + std::string(name) + "'");
}

Result<Value> dict_method(const Value& object, std::string_view name, CallArgs& args) {
  const Dict& dict = object.as_dict();
  if (name == "get") {
    STRATA_ASSIGN_OR_RETURN(auto bound, bind_args(args, name, {"key", "default"}));
    if (!bound[0]) return invalid_argument("get expected at least 1 argument, got 0");
    const Value* found = dict.find(*bound[0]);
    if (found != nullptr) return *found;
    return bound[1] ? *bound[1] : Value::none();
  }
  STRATA_ASSIGN_OR_RETURN(auto bound, bind_args(args, name, {}));
  if (name == "copy") return object;
  std::vector<Value> items;
  items.reserve(dict.size());
  for (const auto& [k, v] : dict.entries) {
    if (name == "items")
      items.push_back(Value::tuple({k, v}));
    else if (name == "keys")
      items.push_back(k);
    else
      items.push_back(v);
  }
  return Value::list(std::move(items));
}

Result<Value> list_method(const Value& object, std::string_view name, CallArgs& args) {
  const List& list = object.as_list();
  if (name == "copy") {
    STRATA_ASSIGN_OR_RETURN(auto bound, bind_args(args, name, {}));
    return object;
  }
  STRATA_ASSIGN_OR_RETURN(auto bound, bind_args(args, name, {"value"}));
  if (!bound[0]) return invalid_argument(std::string(name) + "() takes exactly one argument (0 given)");
  int64_t count = 0;
  for (size_t i = 0; i < list.items.size(); ++i) {
    if (!py_equals(list.items[i], *bound[0])) continue;
    if (name == "index") return Value::integer(static_cast<int64_t>(i));
    ++count;
  }
  if (name == "index") return invalid_argument(repr(*bound[0]) + " is not in list");
  return Value::integer(count);
}

}  // namespace

Result<std::vector<std::optional<Value>>> bind_args(const CallArgs& args, std::string_view function,
                                                    std::initializer_list<std::string_view> params) {
  std::vector<std::optional<Value>> bound(params.size());
  if (args.positional.size() > params.size()) {
    return invalid_argument(std::string(function) + "() takes at most " + std::to_string(params.size()) +
                            " argument(s) (" + std::to_string(args.positional.size()) + " given)");
  }
  for (size_t i = 0; i < args.positional.size(); ++i) bound[i] = args.positional[i];
  for (const auto& [key, value] : args.keyword) {
    const auto it = std::find(params.begin(), params.end(), key);
    if (it == params.end()) {
      return invalid_argument(std::string(function) + "() got an unexpected keyword argument '" + key + "'");
    }
    auto& slot = bound[static_cast<size_t>(it - params.begin())];
    if (slot) return invalid_argument(std::string(function) + "() got multiple values for argument '" + key + "'");
    slot = value;
  }
  return bound;
}

bool has_method(const Value& object, std::string_view name) {
  switch (object.kind()) {
    case ValueKind::kString:
      return contains_name(kStringMethods, name);
    case ValueKind::kDict:
      return contains_name(kDictMethods, name);
    case ValueKind::kList:
      return contains_name(kListMethods, name) || contains_name(kUnsafeMethods, name);
    default:
      return false;
  }
}

Result<Value> call_method(Interpreter& interpreter, const Value& object, std::string_view name, CallArgs& args) {
  if (contains_name(kUnsafeMethods, name)) {
    return invalid_argument("access to attribute '" + std::string(name) + "' of '" + type_name(object) +
                            "' object is unsafe (templates cannot modify objects)");
  }
  switch (object.kind()) {
    case ValueKind::kString:
      return string_method(interpreter, object.as_string(), name, args);
    case ValueKind::kDict:
      return dict_method(object, name, args);
    case ValueKind::kList:
      return list_method(object, name, args);
    default:
      return invalid_argument("'" + std::string(type_name(object)) + "' object has no method '" + std::string(name) +
                              "'");
  }
}

Value get_attribute(const Value& object, std::string_view name) {
  if (has_method(object, name)) {
    std::string method(name);
    return Value::callable(method, [object, method](Interpreter& interp, CallArgs& args) {
      return call_method(interp, object, method, args);
    });
  }
  switch (object.kind()) {
    case ValueKind::kDict:
      if (const Value* v = object.as_dict().find(name)) return *v;
      break;
    case ValueKind::kNamespace:
      if (const Value* v = object.as_namespace().attributes.find(name)) return *v;
      break;
    case ValueKind::kUndefined:
      return object;
    default:
      break;
  }
  return Value::undefined("'" + std::string(object.is_dict() ? "dict object" : type_name(object)) +
                          "' has no attribute '" + std::string(name) + "'");
}

Value get_item(const Value& object, const Value& key) {
  switch (object.kind()) {
    case ValueKind::kDict:
      if (const Value* v = object.as_dict().find(key)) return *v;
      break;
    case ValueKind::kList:
    case ValueKind::kString: {
      if (!key.is_integral()) break;
      const Result<int64_t> n = length(object);
      int64_t index = key.as_int();
      if (index < 0) index += *n;
      if (index < 0 || index >= *n) {
        return Value::undefined(std::string(type_name(object)) + " object has no element " +
                                std::to_string(key.as_int()));
      }
      if (object.is_list()) return object.as_list().items[static_cast<size_t>(index)];
      const Result<Value> one = slice(object, index, index + 1, std::nullopt);
      return *one;
    }
    case ValueKind::kUndefined:
      return object;
    default:
      break;
  }
  if (key.is_string()) return get_attribute(object, key.as_string());
  return Value::undefined("'" + std::string(object.is_dict() ? "dict object" : type_name(object)) +
                          "' has no attribute " + repr(key));
}

}  // namespace strata::tmpl
