// JSON text -> template values, the way Python's json.loads builds them (ints stay ints,
// objects keep their key order). nlohmann stays private to this file.
#include <nlohmann/json.hpp>

#include "engine/template/value.h"

namespace strata::tmpl {
namespace {

using Json = nlohmann::ordered_json;

Value from_json(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      return Value::none();
    case Json::value_t::boolean:
      return Value::boolean(j.get<bool>());
    case Json::value_t::number_integer:
      return Value::integer(j.get<int64_t>());
    case Json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::number(static_cast<double>(u));
      return Value::integer(static_cast<int64_t>(u));
    }
    case Json::value_t::number_float:
      return Value::number(j.get<double>());
    case Json::value_t::string:
      return Value::string(j.get<std::string>());
    case Json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const Json& item : j) items.push_back(from_json(item));
      return Value::list(std::move(items));
    }
    case Json::value_t::object: {
      Dict dict;
      dict.entries.reserve(j.size());
      for (const auto& [key, item] : j.items()) dict.set(Value::string(key), from_json(item));
      return Value::dict(std::move(dict));
    }
    default:
      return Value::none();
  }
}

}  // namespace

Result<Value> value_from_json(std::string_view json_text) {
  Json parsed;
  try {
    parsed = Json::parse(json_text.begin(), json_text.end());
  } catch (const Json::parse_error& e) {
    return invalid_argument(std::string("chat template context is not valid JSON: ") + e.what());
  }
  return from_json(parsed);
}

}  // namespace strata::tmpl
