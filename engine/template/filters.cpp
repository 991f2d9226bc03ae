// Jinja's built-in filters and tests (jinja2/filters.py, jinja2/tests.py semantics), plus
// transformers' tojson, which does not HTML-escape and takes json.dumps' arguments.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <unordered_map>

#include "engine/template/builtins.h"
#include "engine/template/interpreter.h"
#include "engine/template/operators.h"
#include "engine/template/py_string.h"

namespace strata::tmpl {
namespace {

using Bound = std::vector<std::optional<Value>>;

bool flag(const std::optional<Value>& arg, bool default_value = false) { return arg ? truthy(*arg) : default_value; }

Result<std::string> string_param(const std::optional<Value>& arg, std::string_view filter, std::string_view param) {
  if (!arg->is_string()) {
    return invalid_argument(std::string(filter) + ": " + std::string(param) + " must be a string, not " +
                            type_name(*arg));
  }
  return arg->as_string();
}

// jinja2's make_attrgetter: "a.b.0" looks up a, then b, then index 0, each with getitem.
Value lookup_attribute_path(const Value& item, const Value& attribute) {
  if (!attribute.is_string()) return get_item(item, attribute);
  Value current = item;
  const std::string& path = attribute.as_string();
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const bool numeric = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
    current = get_item(current, numeric ? Value::integer(std::stoll(part)) : Value::string(part));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return current;
}

Value fold_case(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::string(py_lower(v.as_string()));
  return v;
}

// Sorts `items` by `key_of`, stably; `reverse` keeps equal items in their original order, as
// Python's sorted(reverse=True) does.
template <typename KeyOf>
Status sort_values(std::vector<Value>& items, bool reverse, KeyOf key_of) {
  std::vector<std::pair<Value, Value>> keyed;
  keyed.reserve(items.size());
  for (Value& item : items) keyed.emplace_back(key_of(item), std::move(item));
  Status status;
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    if (!status.ok()) return false;
    Result<int> c = reverse ? py_compare(y.first, x.first) : py_compare(x.first, y.first);
    if (!c.ok()) {
      status = c.status();
      return false;
    }
    return *c < 0;
  });
  STRATA_RETURN_IF_ERROR(status);
  items.clear();
  for (auto& [key, item] : keyed) items.push_back(std::move(item));
  return {};
}

// ---- filters -----------------------------------------------------------------------------

Result<Value> filter_abs(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "abs", {}));
  if (v.is_integral()) return Value::integer(v.as_int() < 0 ? -v.as_int() : v.as_int());
  if (v.is_float()) return Value::number(std::fabs(v.as_float()));
  return invalid_argument(std::string("bad operand type for abs(): '") + type_name(v) + "'");
}

Result<Value> filter_attr(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "attr", {"name"}));
  if (!b[0] || !b[0]->is_string()) return invalid_argument("attr: name must be a string");
  return get_attribute(v, b[0]->as_string());
}

Result<Value> filter_capitalize(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "capitalize", {}));
  return Value::string(py_capitalize(to_str(v)));
}

Result<Value> filter_center(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "center", {"width"}));
  const int64_t width = b[0] && b[0]->is_integral() ? b[0]->as_int() : 80;
  const std::string s = to_str(v);
  const int64_t len = static_cast<int64_t>(code_point_length(s));
  if (len >= width) return Value::string(s);
  const int64_t total = width - len;
  const int64_t left = total / 2 + (total & width & 1);  // CPython's str.center
  return Value::string(std::string(static_cast<size_t>(left), ' ') + s +
                       std::string(static_cast<size_t>(total - left), ' '));
}

Result<Value> filter_default(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "default", {"default_value", "boolean"}));
  const bool use_default = flag(b[1]) ? !truthy(v) : v.is_undefined();
  if (use_default) return b[0] ? *b[0] : Value::string("");
  return v;
}

Result<Value> filter_dictsort(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "dictsort", {"case_sensitive", "by", "reverse"}));
  if (!v.is_dict()) return invalid_argument("dictsort: can only sort a mapping");
  const bool case_sensitive = flag(b[0]);
  int position = 0;
  if (b[1]) {
    STRATA_ASSIGN_OR_RETURN(std::string by, string_param(b[1], "dictsort", "by"));
    if (by == "value")
      position = 1;
    else if (by != "key")
      return invalid_argument("You can only sort by either 'key' or 'value'");
  }
  std::vector<Value> items;
  for (const auto& [k, value] : v.as_dict().entries) items.push_back(Value::tuple({k, value}));
  STRATA_RETURN_IF_ERROR(sort_values(
      items, flag(b[2]), [&](const Value& item) { return fold_case(item.as_list().items[position], case_sensitive); }));
  return Value::list(std::move(items));
}

Result<Value> filter_escape(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "escape", {}));
  return Value::string(html_escape(to_str(v)));
}

Result<Value> filter_first(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "first", {}));
  STRATA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Result<Value> filter_last(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "last", {}));
  STRATA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

std::optional<double> to_py_float(const Value& v) {
  if (v.is_number()) return v.as_float();
  if (v.is_string()) return parse_py_float(v.as_string());
  return std::nullopt;
}

Result<Value> filter_float(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "float", {"default"}));
  if (auto f = to_py_float(v)) return Value::number(*f);
  return b[0] ? *b[0] : Value::number(0.0);
}

Result<Value> filter_int(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "int", {"default", "base"}));
  const Value fallback = b[0] ? *b[0] : Value::integer(0);
  if (v.is_integral()) return Value::integer(v.as_int());
  if (v.is_float()) {
    if (!std::isfinite(v.as_float())) return invalid_argument("cannot convert float infinity or NaN to integer");
    return Value::integer(static_cast<int64_t>(v.as_float()));
  }
  if (v.is_string()) {
    const int base = b[1] && b[1]->is_integral() ? static_cast<int>(b[1]->as_int()) : 10;
    if (auto i = parse_py_int(v.as_string(), base)) return Value::integer(*i);
    // jinja2: "42.23"|int gives 42.
    if (auto f = parse_py_float(v.as_string()); f && std::isfinite(*f)) return Value::integer(static_cast<int64_t>(*f));
  }
  return fallback;
}

Result<Value> filter_format(Interpreter&, const Value& v, CallArgs& args) {
  if (!args.positional.empty() && !args.keyword.empty()) {
    return invalid_argument("can't handle positional and keyword arguments at the same time");
  }
  Value format_args;
  if (!args.keyword.empty()) {
    Dict kwargs;
    for (auto& [k, value] : args.keyword) kwargs.set(Value::string(k), value);
    format_args = Value::dict(std::move(kwargs));
  } else {
    format_args = Value::tuple(args.positional);
  }
  STRATA_ASSIGN_OR_RETURN(std::string out, percent_format(to_str(v), format_args));
  return Value::string(std::move(out));
}

Result<Value> filter_indent(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "indent", {"width", "first", "blank"}));
  std::string indentation = "    ";
  if (b[0]) {
    if (b[0]->is_string()) {
      indentation = b[0]->as_string();
    } else if (b[0]->is_integral()) {
      indentation = std::string(static_cast<size_t>(std::max<int64_t>(0, b[0]->as_int())), ' ');
    } else {
      return invalid_argument("indent: width must be an integer or a string");
    }
  }
  const std::string text = to_str(v) + "\n";  // jinja2's quirk for splitlines()
  std::vector<std::string> lines = py_splitlines(text, false);
  std::string out;
  if (flag(b[2])) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i > 0) out += "\n" + indentation;
      out += lines[i];
    }
  } else {
    out = lines.empty() ? std::string() : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      out += "\n";
      if (!lines[i].empty()) out += indentation;
      out += lines[i];
    }
  }
  if (flag(b[1])) out = indentation + out;
  return Value::string(std::move(out));
}

Result<Value> filter_items(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "items", {}));
  if (v.is_undefined()) return Value::list();
  if (!v.is_dict()) return invalid_argument(std::string("Can only get item pairs from a mapping, not ") + type_name(v));
  std::vector<Value> items;
  for (const auto& [k, value] : v.as_dict().entries) items.push_back(Value::tuple({k, value}));
  return Value::list(std::move(items));
}

Result<Value> filter_join(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "join", {"d", "attribute"}));
  STRATA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  const std::string separator = b[0] ? to_str(*b[0]) : std::string();
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += to_str(b[1] && !b[1]->is_none() ? lookup_attribute_path(items[i], *b[1]) : items[i]);
  }
  return Value::string(std::move(out));
}

Result<Value> filter_length(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "length", {}));
  STRATA_ASSIGN_OR_RETURN(int64_t n, length(v));
  return Value::integer(n);
}

Result<Value> filter_list(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "list", {}));
  STRATA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  return Value::list(std::move(items));
}

Result<Value> filter_lower(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "lower", {}));
  return Value::string(py_lower(to_str(v)));
}

Result<Value> filter_upper(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "upper", {}));
  return Value::string(py_upper(to_str(v)));
}

Result<Value> filter_map(Interpreter& interp, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  std::vector<Value> out;
  out.reserve(items.size());
  if (args.positional.empty()) {
    std::optional<Value> attribute;
    std::optional<Value> default_value;
    for (const auto& [key, value] : args.keyword) {
      if (key == "attribute")
        attribute = value;
      else if (key == "default")
        default_value = value;
      else
        return invalid_argument("map() got an unexpected keyword argument '" + key + "'");
    }
    if (!attribute) return invalid_argument("map requires a filter argument");
    for (const Value& item : items) {
      Value mapped = lookup_attribute_path(item, *attribute);
      if (mapped.is_undefined() && default_value) mapped = *default_value;
      out.push_back(std::move(mapped));
    }
    return Value::list(std::move(out));
  }
  if (!args.positional[0].is_string()) return invalid_argument("map: the filter name must be a string");
  const std::string filter_name = args.positional[0].as_string();
  CallArgs filter_args{std::vector<Value>(args.positional.begin() + 1, args.positional.end()), args.keyword};
  for (const Value& item : items) {
    CallArgs each = filter_args;
    STRATA_ASSIGN_OR_RETURN(Value mapped, interp.apply_filter(filter_name, item, each));
    out.push_back(std::move(mapped));
  }
  return Value::list(std::move(out));
}

Result<Value> min_max(const Value& v, CallArgs& args, bool want_max) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, want_max ? "max" : "min", {"case_sensitive", "attribute"}));
  STRATA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  if (items.empty()) return Value::undefined(std::string("No aggregated item, sequence was empty."));
  const bool case_sensitive = flag(b[0]);
  const auto key_of = [&](const Value& item) {
    return fold_case(b[1] && !b[1]->is_none() ? lookup_attribute_path(item, *b[1]) : item, case_sensitive);
  };
  size_t best = 0;
  Value best_key = key_of(items[0]);
  for (size_t i = 1; i < items.size(); ++i) {
    Value key = key_of(items[i]);
    STRATA_ASSIGN_OR_RETURN(int c, py_compare(key, best_key));
    if (want_max ? c > 0 : c < 0) {
      best = i;
      best_key = std::move(key);
    }
  }
  return items[best];
}

Result<Value> filter_max(Interpreter&, const Value& v, CallArgs& args) { return min_max(v, args, true); }
Result<Value> filter_min(Interpreter&, const Value& v, CallArgs& args) { return min_max(v, args, false); }

// select / reject / selectattr / rejectattr.
Result<Value> select_items(Interpreter& interp, const Value& v, CallArgs& args, bool by_attribute, bool keep_matches) {
  STRATA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  size_t next = 0;
  std::optional<Value> attribute;
  if (by_attribute) {
    if (args.positional.empty()) return invalid_argument("Missing parameter for attribute name");
    attribute = args.positional[next++];
  }
  std::optional<std::string> test_name;
  if (next < args.positional.size()) {
    if (!args.positional[next].is_string()) return invalid_argument("the test name must be a string");
    test_name = args.positional[next++].as_string();
  }
  CallArgs test_args{std::vector<Value>(args.positional.begin() + static_cast<long>(next), args.positional.end()),
                     args.keyword};
  std::vector<Value> out;
  for (const Value& item : items) {
    const Value subject = attribute ? lookup_attribute_path(item, *attribute) : item;
    bool matched;
    if (test_name) {
      CallArgs each = test_args;
      STRATA_ASSIGN_OR_RETURN(matched, interp.apply_test(*test_name, subject, each));
    } else {
      matched = truthy(subject);
    }
    if (matched == keep_matches) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Result<Value> filter_select(Interpreter& i, const Value& v, CallArgs& a) { return select_items(i, v, a, false, true); }
Result<Value> filter_reject(Interpreter& i, const Value& v, CallArgs& a) { return select_items(i, v, a, false, false); }
Result<Value> filter_selectattr(Interpreter& i, const Value& v, CallArgs& a) {
  return select_items(i, v, a, true, true);
}
Result<Value> filter_rejectattr(Interpreter& i, const Value& v, CallArgs& a) {
  return select_items(i, v, a, true, false);
}

Result<Value> filter_replace(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "replace", {"old", "new", "count"}));
  if (!b[0] || !b[1]) return invalid_argument("replace() missing required arguments 'old' and 'new'");
  int64_t count = -1;
  if (b[2] && !b[2]->is_none()) {
    if (!b[2]->is_integral()) return invalid_argument("replace: count must be an integer");
    count = b[2]->as_int();
  }
  return Value::string(py_replace(to_str(v), to_str(*b[0]), to_str(*b[1]), count));
}

Result<Value> filter_reverse(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "reverse", {}));
  if (v.is_string()) return slice(v, std::nullopt, std::nullopt, -1);
  STRATA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

// Python's round(x, ndigits): correctly rounded, ties to even on the exact binary value.
double py_round(double x, int64_t digits) {
  if (!std::isfinite(x)) return x;
  if (digits >= 0) {
    if (digits > 300) return x;
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(digits), x);
    return std::strtod(buf, nullptr);
  }
  const double scale = std::pow(10.0, static_cast<double>(-digits));
  return std::nearbyint(x / scale) * scale;
}

Result<Value> filter_round(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "round", {"precision", "method"}));
  const int64_t precision = b[0] && b[0]->is_integral() ? b[0]->as_int() : 0;
  std::string method = "common";
  if (b[1]) {
    STRATA_ASSIGN_OR_RETURN(method, string_param(b[1], "round", "method"));
  }
  if (method != "common" && method != "ceil" && method != "floor") {
    return invalid_argument("method must be common, ceil or floor");
  }
  if (!v.is_number()) return invalid_argument(std::string("type ") + type_name(v) + " doesn't define __round__ method");
  if (method == "common") {
    if (v.is_integral()) {
      if (precision >= 0) return Value::integer(v.as_int());
      return Value::integer(static_cast<int64_t>(py_round(static_cast<double>(v.as_int()), precision)));
    }
    return Value::number(py_round(v.as_float(), precision));
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double scaled = v.as_float() * scale;
  return Value::number((method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) / scale);
}

Result<Value> filter_safe(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "safe", {}));
  return v.is_string() ? v : Value::string(to_str(v));
}

Result<Value> filter_sort(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "sort", {"reverse", "case_sensitive", "attribute"}));
  STRATA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  const bool case_sensitive = flag(b[1]);
  STRATA_RETURN_IF_ERROR(sort_values(items, flag(b[0]), [&](const Value& item) {
    return fold_case(b[2] && !b[2]->is_none() ? lookup_attribute_path(item, *b[2]) : item, case_sensitive);
  }));
  return Value::list(std::move(items));
}

Result<Value> filter_string(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "string", {}));
  return Value::string(to_str(v));
}

Result<Value> filter_sum(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "sum", {"attribute", "start"}));
  STRATA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  Value total = b[1] ? *b[1] : Value::integer(0);
  for (const Value& item : items) {
    STRATA_ASSIGN_OR_RETURN(
        total, binary_op(BinaryOp::kAdd, total, b[0] && !b[0]->is_none() ? lookup_attribute_path(item, *b[0]) : item));
  }
  return total;
}

Result<Value> filter_title(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "title", {}));
  return Value::string(jinja_title(to_str(v)));
}

// transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
Result<Value> filter_tojson(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "tojson", {"ensure_ascii", "indent", "separators", "sort_keys"}));
  JsonDumpOptions options;
  options.ensure_ascii = flag(b[0]);
  if (b[1] && !b[1]->is_none()) {
    if (b[1]->is_integral()) {
      options.indent = std::string(static_cast<size_t>(std::max<int64_t>(0, b[1]->as_int())), ' ');
    } else if (b[1]->is_string()) {
      options.indent = b[1]->as_string();
    } else {
      return invalid_argument("tojson: indent must be an integer or a string");
    }
  }
  if (b[2] && !b[2]->is_none()) {
    const Value& separators = *b[2];
    if (!separators.is_list() || separators.as_list().items.size() != 2 || !separators.as_list().items[0].is_string() ||
        !separators.as_list().items[1].is_string()) {
      return invalid_argument("tojson: separators must be a pair of strings");
    }
    options.separators.emplace(separators.as_list().items[0].as_string(), separators.as_list().items[1].as_string());
  }
  options.sort_keys = flag(b[3]);
  STRATA_ASSIGN_OR_RETURN(std::string json, to_json(v, options));
  return Value::string(std::move(json));
}

Result<Value> filter_trim(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "trim", {"chars"}));
  std::optional<std::string> chars;
  if (b[0] && !b[0]->is_none()) chars = to_str(*b[0]);
  return Value::string(py_strip(to_str(v), chars, true, true));
}

Result<Value> filter_unique(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "unique", {"case_sensitive", "attribute"}));
  STRATA_ASSIGN_OR_RETURN(std::vector<Value> items, iterate(v));
  const bool case_sensitive = flag(b[0]);
  std::vector<Value> seen;
  std::vector<Value> out;
  for (const Value& item : items) {
    Value key = fold_case(b[1] && !b[1]->is_none() ? lookup_attribute_path(item, *b[1]) : item, case_sensitive);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return py_equals(s, key); })) continue;
    seen.push_back(std::move(key));
    out.push_back(item);
  }
  return Value::list(std::move(out));
}

Result<Value> filter_wordcount(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Bound b, bind_args(args, "wordcount", {}));
  const std::string s = to_str(v);
  int64_t words = 0;
  bool in_word = false;
  for (size_t pos = 0; pos < s.size();) {
    const char32_t c = decode_code_point(s, pos);
    // \w: letters, digits and '_'.
    const bool word_char = c == '_' || py_isalnum(c);
    if (word_char && !in_word) ++words;
    in_word = word_char;
  }
  return Value::integer(words);
}

const std::unordered_map<std::string_view, FilterFn>& filter_table() {
  static const auto* table = new std::unordered_map<std::string_view, FilterFn>{
      {"abs", filter_abs},
      {"attr", filter_attr},
      {"capitalize", filter_capitalize},
      {"center", filter_center},
      {"count", filter_length},
      {"d", filter_default},
      {"default", filter_default},
      {"dictsort", filter_dictsort},
      {"e", filter_escape},
      {"escape", filter_escape},
      {"first", filter_first},
      {"float", filter_float},
      {"format", filter_format},
      {"indent", filter_indent},
      {"int", filter_int},
      {"items", filter_items},
      {"join", filter_join},
      {"last", filter_last},
      {"length", filter_length},
      {"list", filter_list},
      {"lower", filter_lower},
      {"map", filter_map},
      {"max", filter_max},
      {"min", filter_min},
      {"reject", filter_reject},
      {"rejectattr", filter_rejectattr},
      {"replace", filter_replace},
      {"reverse", filter_reverse},
      {"round", filter_round},
      {"safe", filter_safe},
      {"select", filter_select},
      {"selectattr", filter_selectattr},
      {"sort", filter_sort},
      {"string", filter_string},
      {"sum", filter_sum},
      {"title", filter_title},
      {"tojson", filter_tojson},
      {"trim", filter_trim},
      {"unique", filter_unique},
      {"upper", filter_upper},
      {"wordcount", filter_wordcount},
  };
  return *table;
}

// ---- tests -------------------------------------------------------------------------------

Result<Value> one_arg(const CallArgs& args, std::string_view test) {
  if (args.positional.size() + args.keyword.size() != 1) {
    return invalid_argument(std::string(test) + "() takes exactly 1 argument");
  }
  return args.positional.empty() ? args.keyword[0].second : args.positional[0];
}

template <bool (*Pred)(const Value&)>
Result<bool> simple_test(Interpreter&, const Value& v, CallArgs& args) {
  if (!args.positional.empty() || !args.keyword.empty()) return invalid_argument("test takes no arguments");
  return Pred(v);
}

bool is_defined(const Value& v) { return !v.is_undefined(); }
bool is_undefined(const Value& v) { return v.is_undefined(); }
bool is_none(const Value& v) { return v.is_none(); }
bool is_boolean(const Value& v) { return v.is_bool(); }
bool is_true(const Value& v) { return v.is_bool() && v.as_bool(); }
bool is_false(const Value& v) { return v.is_bool() && !v.as_bool(); }
bool is_integer(const Value& v) { return v.is_int(); }
bool is_float(const Value& v) { return v.is_float(); }
bool is_number(const Value& v) { return v.is_number(); }
bool is_string(const Value& v) { return v.is_string(); }
bool is_mapping(const Value& v) { return v.is_dict(); }
bool is_iterable(const Value& v) { return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined(); }
bool is_sequence(const Value& v) { return v.is_string() || v.is_list() || v.is_dict(); }
bool is_callable(const Value& v) { return v.is_callable(); }
bool is_escaped(const Value&) { return false; }
bool is_lower(const Value& v) { return py_islower(to_str(v)); }
bool is_upper(const Value& v) { return py_isupper(to_str(v)); }

template <CompareOp Op>
Result<bool> compare_test(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Value other, one_arg(args, "compare"));
  return compare_op(Op, v, other);
}

Result<bool> test_in(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Value seq, one_arg(args, "in"));
  return contains(seq, v);
}

Result<bool> test_sameas(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Value other, one_arg(args, "sameas"));
  if (v.kind() != other.kind()) return false;
  switch (v.kind()) {
    case ValueKind::kList:
      return &v.as_list() == &other.as_list();
    case ValueKind::kDict:
      return &v.as_dict() == &other.as_dict();
    default:
      return py_equals(v, other);
  }
}

Result<bool> parity_test(const Value& v, const CallArgs& args, int64_t remainder) {
  if (!args.positional.empty() || !args.keyword.empty()) return invalid_argument("test takes no arguments");
  if (!v.is_integral()) return invalid_argument(std::string("odd/even: expected an integer, not ") + type_name(v));
  int64_t m = v.as_int() % 2;
  if (m < 0) m += 2;
  return m == remainder;
}

Result<bool> test_odd(Interpreter&, const Value& v, CallArgs& args) { return parity_test(v, args, 1); }
Result<bool> test_even(Interpreter&, const Value& v, CallArgs& args) { return parity_test(v, args, 0); }

Result<bool> test_divisibleby(Interpreter&, const Value& v, CallArgs& args) {
  STRATA_ASSIGN_OR_RETURN(Value num, one_arg(args, "divisibleby"));
  STRATA_ASSIGN_OR_RETURN(Value m, binary_op(BinaryOp::kMod, v, num));
  return py_equals(m, Value::integer(0));
}

Result<bool> test_filter(Interpreter&, const Value& v, CallArgs& args) {
  if (!args.positional.empty() || !args.keyword.empty()) return invalid_argument("test takes no arguments");
  return v.is_string() && find_filter(v.as_string()) != nullptr;
}

Result<bool> test_test(Interpreter&, const Value& v, CallArgs& args) {
  if (!args.positional.empty() || !args.keyword.empty()) return invalid_argument("test takes no arguments");
  return v.is_string() && find_test(v.as_string()) != nullptr;
}

const std::unordered_map<std::string_view, TestFn>& test_table() {
  static const auto* table = new std::unordered_map<std::string_view, TestFn>{
      {"defined", simple_test<is_defined>},
      {"undefined", simple_test<is_undefined>},
      {"none", simple_test<is_none>},
      {"boolean", simple_test<is_boolean>},
      {"true", simple_test<is_true>},
      {"false", simple_test<is_false>},
      {"integer", simple_test<is_integer>},
      {"float", simple_test<is_float>},
      {"number", simple_test<is_number>},
      {"string", simple_test<is_string>},
      {"mapping", simple_test<is_mapping>},
      {"iterable", simple_test<is_iterable>},
      {"sequence", simple_test<is_sequence>},
      {"callable", simple_test<is_callable>},
      {"escaped", simple_test<is_escaped>},
      {"lower", simple_test<is_lower>},
      {"upper", simple_test<is_upper>},
      {"odd", test_odd},
      {"even", test_even},
      {"divisibleby", test_divisibleby},
      {"sameas", test_sameas},
      {"in", test_in},
      {"filter", test_filter},
      {"test", test_test},
      {"eq", compare_test<CompareOp::kEq>},
      {"equalto", compare_test<CompareOp::kEq>},
      {"==", compare_test<CompareOp::kEq>},
      {"ne", compare_test<CompareOp::kNe>},
      {"!=", compare_test<CompareOp::kNe>},
      {"lt", compare_test<CompareOp::kLt>},
      {"lessthan", compare_test<CompareOp::kLt>},
      {"<", compare_test<CompareOp::kLt>},
      {"le", compare_test<CompareOp::kLe>},
      {"<=", compare_test<CompareOp::kLe>},
      {"gt", compare_test<CompareOp::kGt>},
      {"greaterthan", compare_test<CompareOp::kGt>},
      {">", compare_test<CompareOp::kGt>},
      {"ge", compare_test<CompareOp::kGe>},
      {">=", compare_test<CompareOp::kGe>},
  };
  return *table;
}

}  // namespace

FilterFn find_filter(std::string_view name) {
  const auto& table = filter_table();
  const auto it = table.find(name);
  return it == table.end() ? nullptr : it->second;
}

TestFn find_test(std::string_view name) {
  const auto& table = test_table();
  const auto it = table.find(name);
  return it == table.end() ? nullptr : it->second;
}

}  // namespace strata::tmpl
