// Typed reads of tokenizer JSON fields whose errors name the file and field path,
// e.g. "tokenizer.json: model.merges[3] must be a string or a pair of strings".
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "engine/core/status.h"

namespace strata::tokenizer {

using Json = nlohmann::json;

inline std::string field_path(const std::string& where, const char* key) { return where + "." + key; }

inline std::string json_type_name(const Json& value) { return value.type_name(); }

// A required string field.
inline Result<std::string> read_string(const Json& object, const char* key, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end()) return invalid_argument(field_path(where, key) + " is missing");
  if (!it->is_string()) {
    return invalid_argument(field_path(where, key) + " must be a string, not " + json_type_name(*it));
  }
  return it->get<std::string>();
}

// An optional string field: nullopt when missing or null.
inline Result<std::optional<std::string>> read_optional_string(const Json& object, const char* key,
                                                               const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) {
    return invalid_argument(field_path(where, key) + " must be a string, not " + json_type_name(*it));
  }
  return std::optional<std::string>(it->get<std::string>());
}

inline Result<bool> read_bool(const Json& object, const char* key, bool fallback, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    return invalid_argument(field_path(where, key) + " must be a boolean, not " + json_type_name(*it));
  }
  return it->get<bool>();
}

inline Result<int64_t> read_int(const Json& object, const char* key, int64_t fallback, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) {
    return invalid_argument(field_path(where, key) + " must be an integer, not " + json_type_name(*it));
  }
  return it->get<int64_t>();
}

// The "type" of a component object ({"type": "BPE", ...}).
inline Result<std::string> read_type(const Json& object, const std::string& where) {
  if (!object.is_object()) return invalid_argument(where + " must be an object, not " + json_type_name(object));
  return read_string(object, "type", where);
}

inline Status unsupported_type(const std::string& where, const std::string& type) {
  return unimplemented(where + ".type '" + type + "' is not supported");
}

}  // namespace strata::tokenizer
