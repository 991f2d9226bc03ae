// Python object semantics of template values: truthiness, str/repr, equality, ordering, json.dumps.
#include "engine/template/value.h"

#include <algorithm>
#include <cmath>

#include "engine/template/py_string.h"

namespace strata::tmpl {

Value Value::list(std::vector<Value> items) {
  auto list = std::make_shared<List>();
  list->items = std::move(items);
  return Value(std::shared_ptr<const List>(std::move(list)));
}

Value Value::tuple(std::vector<Value> items) {
  auto list = std::make_shared<List>();
  list->items = std::move(items);
  list->is_tuple = true;
  return Value(std::shared_ptr<const List>(std::move(list)));
}

Value Value::dict() { return dict(Dict{}); }

Value Value::dict(Dict dict) { return Value(std::shared_ptr<const Dict>(std::make_shared<Dict>(std::move(dict)))); }

Value Value::callable(std::string name, std::function<Result<Value>(Interpreter&, CallArgs&)> fn) {
  auto callable = std::make_shared<Callable>();
  callable->name = std::move(name);
  callable->call = std::move(fn);
  return Value(std::shared_ptr<const Callable>(std::move(callable)));
}

const Value* Dict::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.as_string()));
  for (const auto& [k, v] : entries) {
    if (py_equals(k, key)) return &v;
  }
  return nullptr;
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k.is_string() && k.as_string() == key) return &v;
  }
  return nullptr;
}

void Dict::set(Value key, Value value) {
  for (auto& [k, v] : entries) {
    if (py_equals(k, key)) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

Status undefined_error(const Value& v) {
  return invalid_argument(v.undefined_hint().empty() ? std::string("value is undefined") : v.undefined_hint());
}

const char* type_name(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kUndefined:
      return "Undefined";
    case ValueKind::kNone:
      return "NoneType";
    case ValueKind::kBool:
      return "bool";
    case ValueKind::kInt:
      return "int";
    case ValueKind::kFloat:
      return "float";
    case ValueKind::kString:
      return "str";
    case ValueKind::kList:
      return v.as_list().is_tuple ? "tuple" : "list";
    case ValueKind::kDict:
      return "dict";
    case ValueKind::kNamespace:
      return "Namespace";
    case ValueKind::kCallable:
      return "function";
  }
  return "object";
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kUndefined:
    case ValueKind::kNone:
      return false;
    case ValueKind::kBool:
      return v.as_bool();
    case ValueKind::kInt:
      return v.as_int() != 0;
    case ValueKind::kFloat:
      return v.as_float() != 0.0;
    case ValueKind::kString:
      return !v.as_string().empty();
    case ValueKind::kList:
      return !v.as_list().items.empty();
    case ValueKind::kDict:
      return v.as_dict().size() != 0;
    case ValueKind::kNamespace:
    case ValueKind::kCallable:
      return true;
  }
  return false;
}

namespace {

std::string dict_repr(const Dict& dict) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : dict.entries) {
    if (!first) out += ", ";
    first = false;
    out += repr(k);
    out += ": ";
    out += repr(v);
  }
  out += '}';
  return out;
}

}  // namespace

std::string to_str(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kUndefined:
      return "";
    case ValueKind::kString:
      return v.as_string();
    default:
      return repr(v);
  }
}

std::string repr(const Value& v) {
  switch (v.kind()) {
    case ValueKind::kUndefined:
      return "Undefined";
    case ValueKind::kNone:
      return "None";
    case ValueKind::kBool:
      return v.as_bool() ? "True" : "False";
    case ValueKind::kInt:
      return std::to_string(v.as_int());
    case ValueKind::kFloat:
      return py_float_repr(v.as_float());
    case ValueKind::kString:
      return py_repr_string(v.as_string());
    case ValueKind::kList: {
      const List& list = v.as_list();
      std::string out = list.is_tuple ? "(" : "[";
      for (size_t i = 0; i < list.items.size(); ++i) {
        if (i > 0) out += ", ";
        out += repr(list.items[i]);
      }
      if (list.is_tuple && list.items.size() == 1) out += ',';
      out += list.is_tuple ? ")" : "]";
      return out;
    }
    case ValueKind::kDict:
      return dict_repr(v.as_dict());
    case ValueKind::kNamespace:
      return "<Namespace " + dict_repr(v.as_namespace().attributes) + ">";
    case ValueKind::kCallable:
      return "<function " + v.as_callable().name + ">";
  }
  return "";
}

bool py_equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return a.as_int() == b.as_int();
    return a.as_float() == b.as_float();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case ValueKind::kUndefined:
    case ValueKind::kNone:
      return true;
    case ValueKind::kString:
      return a.as_string() == b.as_string();
    case ValueKind::kList: {
      const List& x = a.as_list();
      const List& y = b.as_list();
      if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) return false;
      for (size_t i = 0; i < x.items.size(); ++i) {
        if (!py_equals(x.items[i], y.items[i])) return false;
      }
      return true;
    }
    case ValueKind::kDict: {
      const Dict& x = a.as_dict();
      const Dict& y = b.as_dict();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x.entries) {
        const Value* other = y.find(k);
        if (other == nullptr || !py_equals(v, *other)) return false;
      }
      return true;
    }
    case ValueKind::kNamespace:
      return &a.as_namespace() == &b.as_namespace();
    case ValueKind::kCallable:
      return &a.as_callable() == &b.as_callable();
    default:
      return false;
  }
}

Result<int> py_compare(const Value& a, const Value& b, std::string_view op) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) {
      return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int() ? 1 : 0);
    }
    const double x = a.as_float();
    const double y = b.as_float();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list() && a.as_list().is_tuple == b.as_list().is_tuple) {
    const auto& x = a.as_list().items;
    const auto& y = b.as_list().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (py_equals(x[i], y[i])) continue;
      return py_compare(x[i], y[i], op);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
  }
  if (a.is_undefined() || b.is_undefined()) return undefined_error(a.is_undefined() ? a : b);
  return invalid_argument("'" + std::string(op) + "' not supported between instances of '" + type_name(a) + "' and '" +
                          type_name(b) + "'");
}

namespace {

Result<std::string> json_key(const Value& key) {
  switch (key.kind()) {
    case ValueKind::kString:
      return key.as_string();
    case ValueKind::kInt:
      return std::to_string(key.as_int());
    case ValueKind::kBool:
      return std::string(key.as_bool() ? "true" : "false");
    case ValueKind::kNone:
      return std::string("null");
    case ValueKind::kFloat:
      return py_float_repr(key.as_float());
    default:
      return invalid_argument(std::string("keys must be str, int, float, bool or None, not ") + type_name(key));
  }
}

struct JsonWriter {
  const JsonDumpOptions& options;
  std::string item_separator;
  std::string key_separator;
  std::string out;

  void newline(int level) {
    out += '\n';
    for (int i = 0; i < level; ++i) out += *options.indent;
  }

  Status write(const Value& v, int level) {
    switch (v.kind()) {
      case ValueKind::kNone:
        out += "null";
        return {};
      case ValueKind::kBool:
        out += v.as_bool() ? "true" : "false";
        return {};
      case ValueKind::kInt:
        out += std::to_string(v.as_int());
        return {};
      case ValueKind::kFloat: {
        const double d = v.as_float();
        if (std::isnan(d)) {
          out += "NaN";
        } else if (std::isinf(d)) {
          out += d > 0 ? "Infinity" : "-Infinity";
        } else {
          out += py_float_repr(d);
        }
        return {};
      }
      case ValueKind::kString:
        out += json_quote(v.as_string(), options.ensure_ascii);
        return {};
      case ValueKind::kList: {
        const auto& items = v.as_list().items;
        if (items.empty()) {
          out += "[]";
          return {};
        }
        out += '[';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i > 0) out += item_separator;
          if (options.indent) newline(level + 1);
          STRATA_RETURN_IF_ERROR(write(items[i], level + 1));
        }
        if (options.indent) newline(level);
        out += ']';
        return {};
      }
      case ValueKind::kDict: {
        const Dict& dict = v.as_dict();
        if (dict.size() == 0) {
          out += "{}";
          return {};
        }
        std::vector<const std::pair<Value, Value>*> entries;
        for (const auto& entry : dict.entries) entries.push_back(&entry);
        if (options.sort_keys) {
          Status sort_status;
          std::stable_sort(entries.begin(), entries.end(), [&](const auto* x, const auto* y) {
            auto c = py_compare(x->first, y->first);
            if (!c.ok()) {
              sort_status = c.status();
              return false;
            }
            return *c < 0;
          });
          STRATA_RETURN_IF_ERROR(sort_status);
        }
        out += '{';
        for (size_t i = 0; i < entries.size(); ++i) {
          if (i > 0) out += item_separator;
          if (options.indent) newline(level + 1);
          STRATA_ASSIGN_OR_RETURN(std::string key, json_key(entries[i]->first));
          out += json_quote(key, options.ensure_ascii);
          out += key_separator;
          STRATA_RETURN_IF_ERROR(write(entries[i]->second, level + 1));
        }
        if (options.indent) newline(level);
        out += '}';
        return {};
      }
      default:
        return invalid_argument(std::string("Object of type ") + type_name(v) + " is not JSON serializable");
    }
  }
};

}  // namespace

Result<std::string> to_json(const Value& v, const JsonDumpOptions& options) {
  JsonWriter writer{options, ", ", ": ", {}};
  if (options.separators) {
    writer.item_separator = options.separators->first;
    writer.key_separator = options.separators->second;
  } else if (options.indent) {
    writer.item_separator = ",";
  }
  STRATA_RETURN_IF_ERROR(writer.write(v, 0));
  return std::move(writer.out);
}

}  // namespace strata::tmpl
