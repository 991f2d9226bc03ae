// Python operator semantics for template values (see operators.h).
#include "engine/template/operators.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "engine/template/py_string.h"

namespace strata::tmpl {
namespace {

constexpr size_t kMaxRepeatBytes = size_t{64} << 20;  // guards 'x' * 10**12

Status unsupported(const char* op, const Value& a, const Value& b) {
  return invalid_argument(std::string("unsupported operand type(s) for ") + op + ": '" + type_name(a) + "' and '" +
                          type_name(b) + "'");
}

Result<Value> int_result(bool overflow, int64_t value) {
  if (overflow) return invalid_argument("integer overflow (values beyond 64 bits are not supported)");
  return Value::integer(value);
}

double py_float_mod(double a, double b) {
  double mod = std::fmod(a, b);
  if (mod != 0.0) {
    if ((b < 0) != (mod < 0)) mod += b;
  } else {
    mod = std::copysign(0.0, b);
  }
  return mod;
}

double py_float_floordiv(double a, double b) {
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0.0 && ((b < 0) != (mod < 0))) div -= 1.0;
  if (div == 0.0) return std::copysign(0.0, a / b);
  double floored = std::floor(div);
  if (div - floored > 0.5) floored += 1.0;
  return floored;
}

Result<Value> repeat(const Value& seq, int64_t times) {
  if (times < 0) times = 0;
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty() && static_cast<size_t>(times) > kMaxRepeatBytes / s.size()) {
      return invalid_argument("repeated string is too large");
    }
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i) out += s;
    return Value::string(std::move(out));
  }
  const List& list = seq.as_list();
  if (!list.items.empty() && static_cast<size_t>(times) > kMaxRepeatBytes / (list.items.size() * sizeof(Value))) {
    return invalid_argument("repeated list is too large");
  }
  std::vector<Value> items;
  for (int64_t i = 0; i < times; ++i) items.insert(items.end(), list.items.begin(), list.items.end());
  return list.is_tuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
}

Result<Value> power(const Value& a, const Value& b) {
  if (a.is_integral() && b.is_integral() && b.as_int() >= 0) {
    int64_t base = a.as_int();
    int64_t exponent = b.as_int();
    int64_t result = 1;
    bool overflow = false;
    while (exponent > 0 && !overflow) {
      if (exponent & 1) overflow |= __builtin_mul_overflow(result, base, &result);
      exponent >>= 1;
      if (exponent > 0) overflow |= __builtin_mul_overflow(base, base, &base);
    }
    return int_result(overflow, result);
  }
  const double x = a.as_float();
  const double y = b.as_float();
  if (x == 0.0 && y < 0) return invalid_argument("0.0 cannot be raised to a negative power");
  return Value::number(std::pow(x, y));
}

}  // namespace

// Joins two strings unless the result would pass kMaxJoinedBytes (a loop that doubles a string
// reaches gigabytes in a few dozen steps; a chat prompt is far below this).
constexpr size_t kMaxJoinedBytes = size_t{16} << 20;

Result<Value> joined(const std::string& a, const std::string& b) {
  if (a.size() + b.size() > kMaxJoinedBytes) {
    return invalid_argument("string concatenation would exceed " + std::to_string(kMaxJoinedBytes >> 20) + " MiB");
  }
  return Value::string(a + b);
}

Result<Value> binary_op(BinaryOp op, const Value& a, const Value& b) {
  if (op == BinaryOp::kConcat) return joined(to_str(a), to_str(b));
  if (a.is_undefined()) return undefined_error(a);
  if (b.is_undefined()) return undefined_error(b);
  const bool numbers = a.is_number() && b.is_number();
  const bool ints = a.is_integral() && b.is_integral();
  switch (op) {
    case BinaryOp::kAdd: {
      if (ints) {
        int64_t r;
        const bool overflow = __builtin_add_overflow(a.as_int(), b.as_int(), &r);
        return int_result(overflow, r);
      }
      if (numbers) return Value::number(a.as_float() + b.as_float());
      if (a.is_string() && b.is_string()) return joined(a.as_string(), b.as_string());
      if (a.is_list() && b.is_list() && a.as_list().is_tuple == b.as_list().is_tuple) {
        std::vector<Value> items = a.as_list().items;
        items.insert(items.end(), b.as_list().items.begin(), b.as_list().items.end());
        return a.as_list().is_tuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
      }
      if (a.is_string()) {
        return invalid_argument(std::string("can only concatenate str (not \"") + type_name(b) + "\") to str");
      }
      if (a.is_list() && !a.as_list().is_tuple) {
        return invalid_argument(std::string("can only concatenate list (not \"") + type_name(b) + "\") to list");
      }
      return unsupported("+", a, b);
    }
    case BinaryOp::kSub: {
      if (ints) {
        int64_t r;
        const bool overflow = __builtin_sub_overflow(a.as_int(), b.as_int(), &r);
        return int_result(overflow, r);
      }
      if (numbers) return Value::number(a.as_float() - b.as_float());
      return unsupported("-", a, b);
    }
    case BinaryOp::kMul: {
      if (ints) {
        int64_t r;
        const bool overflow = __builtin_mul_overflow(a.as_int(), b.as_int(), &r);
        return int_result(overflow, r);
      }
      if (numbers) return Value::number(a.as_float() * b.as_float());
      if ((a.is_string() || a.is_list()) && b.is_integral()) return repeat(a, b.as_int());
      if (a.is_integral() && (b.is_string() || b.is_list())) return repeat(b, a.as_int());
      return unsupported("*", a, b);
    }
    case BinaryOp::kDiv: {
      if (!numbers) return unsupported("/", a, b);
      if (b.as_float() == 0.0) return invalid_argument("division by zero");
      return Value::number(a.as_float() / b.as_float());
    }
    case BinaryOp::kFloorDiv: {
      if (!numbers) return unsupported("//", a, b);
      if (ints) {
        const int64_t x = a.as_int();
        const int64_t y = b.as_int();
        if (y == 0) return invalid_argument("integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) return int_result(true, 0);
        int64_t q = x / y;
        if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
        return Value::integer(q);
      }
      if (b.as_float() == 0.0) return invalid_argument("float floor division by zero");
      return Value::number(py_float_floordiv(a.as_float(), b.as_float()));
    }
    case BinaryOp::kMod: {
      if (a.is_string()) {
        STRATA_ASSIGN_OR_RETURN(std::string formatted, percent_format(a.as_string(), b));
        return Value::string(std::move(formatted));
      }
      if (!numbers) return unsupported("%", a, b);
      if (ints) {
        const int64_t x = a.as_int();
        const int64_t y = b.as_int();
        if (y == 0) return invalid_argument("integer division or modulo by zero");
        if (y == -1) return Value::integer(0);
        int64_t m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) m += y;
        return Value::integer(m);
      }
      if (b.as_float() == 0.0) return invalid_argument("float modulo");
      return Value::number(py_float_mod(a.as_float(), b.as_float()));
    }
    case BinaryOp::kPow: {
      if (!numbers) return unsupported("** or pow()", a, b);
      return power(a, b);
    }
    case BinaryOp::kConcat:
      break;
  }
  return internal_error("unknown binary operator");
}

Result<Value> negate(const Value& v) {
  if (v.is_integral()) {
    if (v.as_int() == INT64_MIN) return int_result(true, 0);
    return Value::integer(-v.as_int());
  }
  if (v.is_float()) return Value::number(-v.as_float());
  if (v.is_undefined()) return undefined_error(v);
  return invalid_argument(std::string("bad operand type for unary -: '") + type_name(v) + "'");
}

Result<Value> unary_plus(const Value& v) {
  if (v.is_integral()) return Value::integer(v.as_int());
  if (v.is_float()) return v;
  if (v.is_undefined()) return undefined_error(v);
  return invalid_argument(std::string("bad operand type for unary +: '") + type_name(v) + "'");
}

Result<bool> contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case ValueKind::kUndefined:
      return false;
    case ValueKind::kString:
      if (!item.is_string()) {
        return invalid_argument(std::string("'in <string>' requires string as left operand, not ") + type_name(item));
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case ValueKind::kList:
      for (const Value& v : container.as_list().items) {
        if (py_equals(v, item)) return true;
      }
      return false;
    case ValueKind::kDict:
      return container.as_dict().find(item) != nullptr;
    default:
      return invalid_argument(std::string("argument of type '") + type_name(container) + "' is not iterable");
  }
}

Result<bool> compare_op(CompareOp op, const Value& a, const Value& b) {
  switch (op) {
    case CompareOp::kEq:
      return py_equals(a, b);
    case CompareOp::kNe:
      return !py_equals(a, b);
    case CompareOp::kIn:
      return contains(b, a);
    case CompareOp::kNotIn: {
      STRATA_ASSIGN_OR_RETURN(bool in, contains(b, a));
      return !in;
    }
    case CompareOp::kLt: {
      STRATA_ASSIGN_OR_RETURN(int c, py_compare(a, b, "<"));
      return c < 0;
    }
    case CompareOp::kLe: {
      STRATA_ASSIGN_OR_RETURN(int c, py_compare(a, b, "<="));
      return c <= 0;
    }
    case CompareOp::kGt: {
      STRATA_ASSIGN_OR_RETURN(int c, py_compare(a, b, ">"));
      return c > 0;
    }
    case CompareOp::kGe: {
      STRATA_ASSIGN_OR_RETURN(int c, py_compare(a, b, ">="));
      return c >= 0;
    }
  }
  return false;
}

Result<std::vector<Value>> iterate(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kUndefined:
      return std::vector<Value>{};
    case ValueKind::kList:
      return v.as_list().items;
    case ValueKind::kDict: {
      std::vector<Value> keys;
      keys.reserve(v.as_dict().size());
      for (const auto& [k, value] : v.as_dict().entries) keys.push_back(k);
      return keys;
    }
    case ValueKind::kString: {
      std::vector<Value> chars;
      const std::string& s = v.as_string();
      for (size_t pos = 0; pos < s.size();) {
        const size_t start = pos;
        decode_code_point(s, pos);
        chars.push_back(Value::string(s.substr(start, pos - start)));
      }
      return chars;
    }
    default:
      return invalid_argument(std::string("'") + type_name(v) + "' object is not iterable");
  }
}

Result<int64_t> length(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kUndefined:
      return int64_t{0};
    case ValueKind::kString:
      return static_cast<int64_t>(code_point_length(v.as_string()));
    case ValueKind::kList:
      return static_cast<int64_t>(v.as_list().items.size());
    case ValueKind::kDict:
      return static_cast<int64_t>(v.as_dict().size());
    default:
      return invalid_argument(std::string("object of type '") + type_name(v) + "' has no len()");
  }
}

Result<Value> slice(const Value& object, std::optional<int64_t> start, std::optional<int64_t> stop,
                    std::optional<int64_t> step) {
  if (!object.is_string() && !object.is_list()) return Value::undefined("object is not subscriptable");
  const int64_t st = step.value_or(1);
  if (st == 0) return invalid_argument("slice step cannot be zero");
  std::vector<size_t> offsets;
  int64_t n = 0;
  if (object.is_string()) {
    offsets = code_point_offsets(object.as_string());
    n = static_cast<int64_t>(offsets.size()) - 1;
  } else {
    n = static_cast<int64_t>(object.as_list().items.size());
  }
  // PySlice_AdjustIndices.
  const auto adjust = [&](std::optional<int64_t> index, int64_t if_absent) {
    if (!index) return if_absent;
    int64_t i = *index;
    if (i < 0) {
      i += n;
      if (i < 0) i = st < 0 ? -1 : 0;
    } else if (i >= n) {
      i = st < 0 ? n - 1 : n;
    }
    return i;
  };
  const int64_t from = adjust(start, st < 0 ? n - 1 : 0);
  const int64_t to = adjust(stop, st < 0 ? -1 : n);
  std::vector<int64_t> picks;
  if (st > 0) {
    for (int64_t i = from; i < to; i += st) picks.push_back(i);
  } else {
    for (int64_t i = from; i > to; i += st) picks.push_back(i);
  }
  if (object.is_string()) {
    const std::string& s = object.as_string();
    if (st == 1)
      return Value::string(picks.empty() ? std::string() : s.substr(offsets[from], offsets[to] - offsets[from]));
    std::string out;
    for (int64_t i : picks) out += s.substr(offsets[i], offsets[i + 1] - offsets[i]);
    return Value::string(std::move(out));
  }
  const List& list = object.as_list();
  std::vector<Value> items;
  items.reserve(picks.size());
  for (int64_t i : picks) items.push_back(list.items[i]);
  return list.is_tuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
}

// ---- number parsing ----------------------------------------------------------------------

namespace {

// Digits of `base` with single '_' between them; returns them without underscores.
std::optional<std::string> digits_with_underscores(std::string_view s, int base) {
  std::string out;
  bool previous_digit = false;
  for (char c : s) {
    if (c == '_') {
      if (!previous_digit) return std::nullopt;
      previous_digit = false;
      continue;
    }
    int v = 99;
    if (c >= '0' && c <= '9')
      v = c - '0';
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
      v = (c | 0x20) - 'a' + 10;
    if (v >= base) return std::nullopt;
    out += c;
    previous_digit = true;
  }
  if (out.empty() || !previous_digit) return std::nullopt;
  return out;
}

std::string_view strip_ascii_space(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || (s.front() >= '\t' && s.front() <= '\r'))) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || (s.back() >= '\t' && s.back() <= '\r'))) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<double> parse_py_float(std::string_view text) {
  std::string_view s = strip_ascii_space(text);
  std::string clean;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    clean += s.front();
    s.remove_prefix(1);
  }
  const std::string lower = py_lower(s);
  if (lower == "inf" || lower == "infinity") return clean == "-" ? -INFINITY : INFINITY;
  if (lower == "nan") return NAN;
  // digits [. digits] [e [sign] digits], where either side of '.' may be empty but not both.
  const size_t e = lower.find('e');
  const std::string_view mantissa = std::string_view(lower).substr(0, e);
  const size_t dot = mantissa.find('.');
  const std::string_view int_part = mantissa.substr(0, dot);
  const std::string_view frac_part = dot == std::string_view::npos ? std::string_view() : mantissa.substr(dot + 1);
  if (int_part.empty() && frac_part.empty()) return std::nullopt;
  if (!int_part.empty()) {
    auto d = digits_with_underscores(int_part, 10);
    if (!d) return std::nullopt;
    clean += *d;
  }
  if (dot != std::string_view::npos) {
    clean += '.';
    if (!frac_part.empty()) {
      auto d = digits_with_underscores(frac_part, 10);
      if (!d) return std::nullopt;
      clean += *d;
    }
  }
  if (e != std::string::npos) {
    std::string_view exponent = std::string_view(lower).substr(e + 1);
    clean += 'e';
    if (!exponent.empty() && (exponent.front() == '+' || exponent.front() == '-')) {
      clean += exponent.front();
      exponent.remove_prefix(1);
    }
    auto d = digits_with_underscores(exponent, 10);
    if (!d) return std::nullopt;
    clean += *d;
  }
  return std::strtod(clean.c_str(), nullptr);
}

std::optional<int64_t> parse_py_int(std::string_view text, int base) {
  std::string_view s = strip_ascii_space(text);
  bool negative = false;
  if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s.size() > 2 && s[0] == '0') {
    const char p = static_cast<char>(s[1] | 0x20);
    const int prefixed = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
    if (prefixed != 0 && (base == prefixed || base == 0)) {
      base = prefixed;
      s.remove_prefix(2);
      if (!s.empty() && s.front() == '_') s.remove_prefix(1);
    }
  }
  if (base == 0) base = 10;
  auto digits = digits_with_underscores(s, base);
  if (!digits) return std::nullopt;
  errno = 0;
  const long long v = std::strtoll(digits->c_str(), nullptr, base);
  if (errno == ERANGE) return std::nullopt;
  return negative ? -v : v;
}

// ---- string formatting -------------------------------------------------------------------

namespace {

std::string c_format(const std::string& spec, double value) {
  char buf[512];
  std::snprintf(buf, sizeof(buf), spec.c_str(), value);
  return buf;
}

std::string c_format_int(const std::string& spec, long long value) {
  char buf[512];
  std::snprintf(buf, sizeof(buf), spec.c_str(), value);
  return buf;
}

std::string pad(std::string text, size_t width, char align, char fill) {
  const size_t len = code_point_length(text);
  if (len >= width) return text;
  const size_t total = width - len;
  std::string fill_str(1, fill);
  const auto repeat_fill = [&](size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) out += fill_str;
    return out;
  };
  if (align == '<') return text + repeat_fill(total);
  if (align == '^') return repeat_fill(total / 2) + text + repeat_fill(total - total / 2);
  return repeat_fill(total) + text;
}

}  // namespace

Result<std::string> percent_format(std::string_view format, const Value& args) {
  std::vector<Value> positional;
  const Dict* mapping = nullptr;
  if (args.is_list() && args.as_list().is_tuple) {
    positional = args.as_list().items;
  } else if (args.is_dict()) {
    mapping = &args.as_dict();
    positional.push_back(args);
  } else {
    positional.push_back(args);
  }
  size_t next_arg = 0;
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    if (++i >= format.size()) return invalid_argument("incomplete format");
    const Value* arg = nullptr;
    if (format[i] == '(') {
      const size_t close = format.find(')', i);
      if (close == std::string_view::npos || mapping == nullptr) return invalid_argument("format requires a mapping");
      arg = mapping->find(format.substr(i + 1, close - i - 1));
      if (arg == nullptr)
        return invalid_argument("KeyError: '" + std::string(format.substr(i + 1, close - i - 1)) + "'");
      i = close + 1;
    }
    std::string flags;
    while (i < format.size() && std::string_view("-+ #0").find(format[i]) != std::string_view::npos)
      flags += format[i++];
    std::string width;
    while (i < format.size() && format[i] >= '0' && format[i] <= '9') width += format[i++];
    std::string precision;
    if (i < format.size() && format[i] == '.') {
      precision = ".";
      ++i;
      while (i < format.size() && format[i] >= '0' && format[i] <= '9') precision += format[i++];
    }
    if (i >= format.size()) return invalid_argument("incomplete format");
    const char conversion = format[i];
    if (conversion == '%') {
      out += '%';
      continue;
    }
    if (arg == nullptr) {
      if (next_arg >= positional.size()) return invalid_argument("not enough arguments for format string");
      arg = &positional[next_arg++];
    }
    const std::string spec_prefix = "%" + flags + width + precision;
    switch (conversion) {
      case 's':
      case 'r':
      case 'a': {
        std::string text = conversion == 's' ? to_str(*arg) : repr(*arg);
        if (precision.size() > 1) {
          const size_t keep = static_cast<size_t>(std::atoi(precision.c_str() + 1));
          const auto offsets = code_point_offsets(text);
          if (keep + 1 < offsets.size()) text.resize(offsets[keep]);
        }
        out += pad(text, static_cast<size_t>(std::atoi(width.c_str())),
                   flags.find('-') != std::string::npos ? '<' : '>', ' ');
        break;
      }
      case 'd':
      case 'i':
      case 'u':
      case 'x':
      case 'X':
      case 'o': {
        if (!arg->is_number()) {
          return invalid_argument(std::string("%") + conversion + " format: a real number is required, not " +
                                  type_name(*arg));
        }
        const long long v = arg->is_float() ? static_cast<long long>(arg->as_float()) : arg->as_int();
        out += c_format_int(spec_prefix + "ll" + (conversion == 'i' || conversion == 'u' ? 'd' : conversion), v);
        break;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': {
        if (!arg->is_number()) {
          return invalid_argument(std::string("must be real number, not ") + type_name(*arg));
        }
        out += c_format(spec_prefix + conversion, arg->as_float());
        break;
      }
      case 'c': {
        if (arg->is_string()) {
          out += arg->as_string();
        } else if (arg->is_integral()) {
          append_code_point(out, static_cast<char32_t>(arg->as_int()));
        }
        break;
      }
      default:
        return invalid_argument(std::string("unsupported format character '") + conversion + "'");
    }
  }
  if (mapping == nullptr && next_arg < positional.size()) {
    return invalid_argument("not all arguments converted during string formatting");
  }
  return out;
}

Result<std::string> str_format(std::string_view format, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if (c == '}') {
      if (i + 1 < format.size() && format[i + 1] == '}') {
        out += '}';
        ++i;
        continue;
      }
      return invalid_argument("Single '}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < format.size() && format[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    const size_t close = format.find('}', i);
    if (close == std::string_view::npos) return invalid_argument("Single '{' encountered in format string");
    std::string_view field = format.substr(i + 1, close - i - 1);
    i = close;
    std::string_view spec;
    char conversion = 0;
    if (const size_t colon = field.find(':'); colon != std::string_view::npos) {
      spec = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    if (const size_t bang = field.find('!'); bang != std::string_view::npos) {
      if (bang + 1 < field.size()) conversion = field[bang + 1];
      field = field.substr(0, bang);
    }
    const Value* arg = nullptr;
    if (field.empty()) {
      if (auto_index >= args.positional.size()) return invalid_argument("Replacement index out of range");
      arg = &args.positional[auto_index++];
    } else if (field.find_first_not_of("0123456789") == std::string_view::npos) {
      const size_t index = static_cast<size_t>(std::atoll(std::string(field).c_str()));
      if (index >= args.positional.size()) return invalid_argument("Replacement index out of range");
      arg = &args.positional[index];
    } else {
      for (const auto& [name, value] : args.keyword) {
        if (name == field) arg = &value;
      }
      if (arg == nullptr) return invalid_argument("KeyError: '" + std::string(field) + "'");
    }
    std::string text;
    if (conversion == 'r') {
      text = repr(*arg);
    } else if (conversion == 0 || conversion == 's') {
      text = to_str(*arg);
    } else {
      return invalid_argument(std::string("Unknown conversion specifier ") + conversion);
    }
    if (spec.empty()) {
      out += text;
      continue;
    }
    // [[fill]align][width][.precision][type], enough for the formats chat templates use.
    char fill = ' ';
    char align = (arg->is_number() && conversion == 0) ? '>' : '<';
    size_t p = 0;
    if (spec.size() >= 2 && std::string_view("<>^").find(spec[1]) != std::string_view::npos) {
      fill = spec[0];
      align = spec[1];
      p = 2;
    } else if (!spec.empty() && std::string_view("<>^").find(spec[0]) != std::string_view::npos) {
      align = spec[0];
      p = 1;
    }
    if (p == 0 && p < spec.size() && spec[p] == '0') {  // "08.3f": zero padding
      fill = '0';
      align = '>';
      ++p;
    }
    size_t width = 0;
    while (p < spec.size() && spec[p] >= '0' && spec[p] <= '9')
      width = width * 10 + static_cast<size_t>(spec[p++] - '0');
    int precision = -1;
    if (p < spec.size() && spec[p] == '.') {
      precision = 0;
      ++p;
      while (p < spec.size() && spec[p] >= '0' && spec[p] <= '9') precision = precision * 10 + (spec[p++] - '0');
    }
    const char type = p < spec.size() ? spec[p++] : 0;
    if (p != spec.size()) return invalid_argument("unsupported format spec '" + std::string(spec) + "'");
    if (type == 'f' || type == 'F' || type == 'e' || type == 'g' || type == '%') {
      if (!arg->is_number())
        return invalid_argument("Unknown format code '" + std::string(1, type) + "' for object of type '" +
                                type_name(*arg) + "'");
      const double v = type == '%' ? arg->as_float() * 100 : arg->as_float();
      text = c_format("%." + std::to_string(precision < 0 ? 6 : precision) + (type == '%' ? 'f' : type), v);
      if (type == '%') text += '%';
    } else if (type == 'd') {
      if (!arg->is_integral())
        return invalid_argument(std::string("Unknown format code 'd' for object of type '") + type_name(*arg) + "'");
      text = std::to_string(arg->as_int());
    } else if (type == 's' || type == 0) {
      if (precision >= 0 && arg->is_string()) {
        const auto offsets = code_point_offsets(text);
        if (static_cast<size_t>(precision) + 1 < offsets.size()) text.resize(offsets[precision]);
      }
    } else {
      return invalid_argument("unsupported format spec '" + std::string(spec) + "'");
    }
    out += pad(std::move(text), width, align, fill);
  }
  return out;
}

}  // namespace strata::tmpl
