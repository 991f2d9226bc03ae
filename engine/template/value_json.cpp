// JSON text -> template values, the way Python's json.loads builds them (ints stay ints,
// objects keep their key order, a repeated key keeps its first position and last value).
// Values are built straight from nlohmann's SAX events, without a DOM in between; nlohmann
// stays private to this file.
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "engine/template/value.h"

namespace strata::tmpl {
namespace {

using Json = nlohmann::json;

// Deeper JSON than any chat request needs; the bound keeps conversion, printing and
// destruction of the values off the end of the stack.
constexpr size_t kMaxDepth = 200;

class ValueBuilder {
 public:
  bool null() { return add(Value::none()); }
  bool boolean(bool b) { return add(Value::boolean(b)); }
  bool number_integer(Json::number_integer_t i) { return add(Value::integer(i)); }
  bool number_unsigned(Json::number_unsigned_t u) {
    if (u > static_cast<uint64_t>(INT64_MAX)) return add(Value::number(static_cast<double>(u)));
    return add(Value::integer(static_cast<int64_t>(u)));
  }
  bool number_float(Json::number_float_t d, const Json::string_t&) { return add(Value::number(d)); }
  bool string(Json::string_t& s) { return add(Value::string(std::move(s))); }
  bool binary(Json::binary_t&) { return add(Value::none()); }

  bool start_object(size_t) { return open(false); }
  bool key(Json::string_t& k) {
    pending_key_ = std::move(k);
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(size_t) { return open(true); }
  bool end_array() { return close(); }

  bool parse_error(size_t, const std::string&, const nlohmann::detail::exception& e) {
    error_ = "chat template context is not valid JSON: " + std::string(e.what());
    return false;
  }

  Result<Value> result() && {
    if (!error_.empty()) return invalid_argument(error_);
    return std::move(root_);
  }

 private:
  struct Open {
    bool is_array;
    std::vector<Value> items;
    Dict dict;
    std::string key;  // the key this container will be stored under in its parent object
  };

  bool open(bool is_array) {
    if (stack_.size() >= kMaxDepth) {
      error_ = "chat template context nests deeper than " + std::to_string(kMaxDepth) + " levels";
      return false;
    }
    Open frame{is_array, {}, {}, stack_.empty() || stack_.back().is_array ? std::string() : std::move(pending_key_)};
    stack_.push_back(std::move(frame));
    return true;
  }

  bool close() {
    Open frame = std::move(stack_.back());
    stack_.pop_back();
    Value value;
    if (frame.is_array) {
      value = Value::list(std::move(frame.items));
    } else {
      value = Value::dict(without_repeated_keys(std::move(frame.dict)));
    }
    pending_key_ = std::move(frame.key);
    return add(std::move(value));
  }

  bool add(Value value) {
    if (stack_.empty()) {
      root_ = std::move(value);
    } else if (stack_.back().is_array) {
      stack_.back().items.push_back(std::move(value));
    } else {
      stack_.back().dict.entries.emplace_back(Value::string(std::move(pending_key_)), std::move(value));
    }
    return true;
  }

  static Dict without_repeated_keys(Dict dict) {
    std::unordered_set<std::string_view> seen;
    bool repeated = false;
    for (const auto& [k, v] : dict.entries) repeated |= !seen.insert(k.as_string()).second;
    if (!repeated) return dict;
    Dict unique;
    for (auto& [k, v] : dict.entries) unique.set(k, v);
    return unique;
  }

  std::vector<Open> stack_;
  std::string pending_key_;
  Value root_;
  std::string error_;
};

}  // namespace

Result<Value> value_from_json(std::string_view json_text) {
  ValueBuilder builder;
  (void)Json::sax_parse(json_text.begin(), json_text.end(), &builder, nlohmann::detail::input_format_t::json, true);
  return std::move(builder).result();
}

}  // namespace strata::tmpl
