// config.json and generation_config.json: read the fields each architecture family uses,
// apply its rules (Qwen2 q/k/v biases, Qwen3 qk-norm, sliding windows, RoPE scaling) and
// validate the shapes, with messages that name the file, the field and the offending values.
#include "engine/model/model_config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

namespace strata {
namespace {

using Json = nlohmann::json;

struct SupportedArch {
  std::string_view architecture;  // architectures[0]
  std::string_view model_type;    // fallback when a config has no architectures
  ModelArch arch;
};

constexpr SupportedArch kSupportedArchs[] = {
    {"LlamaForCausalLM", "llama", ModelArch::kLlama},
    {"MistralForCausalLM", "mistral", ModelArch::kMistral},
    {"Qwen2ForCausalLM", "qwen2", ModelArch::kQwen2},
    {"Qwen3ForCausalLM", "qwen3", ModelArch::kQwen3},
};

std::string supported_arch_list() {
  std::string out;
  for (const auto& a : kSupportedArchs) {
    if (!out.empty()) out += ", ";
    out += a.architecture;
  }
  return out;
}

// A short rendering of a JSON value for error messages.
std::string describe(const Json& v) {
  std::string text = v.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return std::string(v.type_name()) + " " + text;
}

// Strips nlohmann's "[json.exception.parse_error.101] " tag from an exception message.
std::string parse_error_text(const std::exception& e) {
  std::string text = e.what();
  if (!text.empty() && text[0] == '[') {
    auto close = text.find("] ");
    if (close != std::string::npos) text = text.substr(close + 2);
  }
  return text;
}

Result<Json> parse_json_object(std::string_view text, const std::string& source) {
  Json root;
  try {
    root = Json::parse(text);
  } catch (const Json::exception& e) {
    return invalid_argument(source + ": invalid JSON: " + parse_error_text(e));
  }
  if (!root.is_object()) {
    return invalid_argument(source + ": expected a JSON object at the top level, got " + std::string(root.type_name()));
  }
  return root;
}

Result<std::string> read_text_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return not_found(path + ": file not found");
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found(path + ": cannot open for reading");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return data_loss(path + ": read failed");
  return text.str();
}

// Typed access to the fields of one JSON object. A null value counts as absent, as
// transformers writes `null` for unset optional fields. `prefix` names nested blocks in
// messages ("rope_scaling.factor").
class FieldReader {
 public:
  FieldReader(const Json& object, const std::string& source, std::string prefix = "")
      : object_(object), source_(source), prefix_(std::move(prefix)) {}

  const std::string& source() const { return source_; }
  std::string name(std::string_view key) const { return prefix_ + std::string(key); }

  const Json* find(std::string_view key) const {
    auto it = object_.find(std::string(key));
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  Status missing(std::string_view key) const {
    return invalid_argument(source_ + ": missing required field '" + name(key) + "'");
  }
  Status wrong_type(std::string_view key, const Json& v, std::string_view expected) const {
    return invalid_argument(source_ + ": field '" + name(key) + "' must be " + std::string(expected) + ", got " +
                            describe(v));
  }

  Result<std::optional<int>> opt_int(std::string_view key) const {
    const Json* v = find(key);
    if (!v) return std::optional<int>{};
    STRATA_ASSIGN_OR_RETURN(int value, to_int(key, *v));
    return std::optional<int>(value);
  }
  Result<int> req_int(std::string_view key) const {
    const Json* v = find(key);
    if (!v) return missing(key);
    STRATA_ASSIGN_OR_RETURN(int value, to_int(key, *v));
    return value;
  }
  Result<std::optional<double>> opt_number(std::string_view key) const {
    const Json* v = find(key);
    if (!v) return std::optional<double>{};
    if (!v->is_number()) return wrong_type(key, *v, "a number");
    return std::optional<double>(v->get<double>());
  }
  Result<double> req_number(std::string_view key) const {
    STRATA_ASSIGN_OR_RETURN(std::optional<double> value, opt_number(key));
    if (!value) return missing(key);
    return *value;
  }
  Result<std::optional<bool>> opt_bool(std::string_view key) const {
    const Json* v = find(key);
    if (!v) return std::optional<bool>{};
    if (!v->is_boolean()) return wrong_type(key, *v, "a boolean");
    return std::optional<bool>(v->get<bool>());
  }
  Result<std::optional<std::string>> opt_string(std::string_view key) const {
    const Json* v = find(key);
    if (!v) return std::optional<std::string>{};
    if (!v->is_string()) return wrong_type(key, *v, "a string");
    return std::optional<std::string>(v->get<std::string>());
  }
  // An object-valued field (nullptr when absent or null).
  Result<const Json*> opt_object(std::string_view key) const {
    const Json* v = find(key);
    if (v && !v->is_object()) return wrong_type(key, *v, "an object");
    return v;
  }
  // eos_token_id style fields: one id, a list of ids, or absent.
  Result<std::vector<int>> token_ids(std::string_view key) const {
    std::vector<int> ids;
    const Json* v = find(key);
    if (!v) return ids;
    if (v->is_array()) {
      for (const Json& item : *v) {
        if (!is_integral(item)) return wrong_type(key, *v, "an integer or a list of integers");
        STRATA_ASSIGN_OR_RETURN(int id, to_int(key, item));
        ids.push_back(id);
      }
      return ids;
    }
    if (!is_integral(*v)) return wrong_type(key, *v, "an integer or a list of integers");
    STRATA_ASSIGN_OR_RETURN(int id, to_int(key, *v));
    ids.push_back(id);
    return ids;
  }

 private:
  // Integers, and floats with an integral value (4096.0), which hand-edited configs contain.
  static bool is_integral(const Json& v) {
    if (v.is_number_integer()) return true;
    if (!v.is_number_float()) return false;
    double d = v.get<double>();
    return std::isfinite(d) && std::floor(d) == d;
  }

  Result<int> to_int(std::string_view key, const Json& v) const {
    if (!is_integral(v)) return wrong_type(key, v, "an integer");
    constexpr auto kMin = static_cast<double>(std::numeric_limits<int>::min());
    constexpr auto kMax = static_cast<double>(std::numeric_limits<int>::max());
    double as_double = v.is_number_unsigned()  ? static_cast<double>(v.get<uint64_t>())
                       : v.is_number_integer() ? static_cast<double>(v.get<int64_t>())
                                               : v.get<double>();
    if (as_double < kMin || as_double > kMax) {
      return invalid_argument(source_ + ": field '" + name(key) + "' (" + v.dump() + ") does not fit a 32-bit integer");
    }
    return static_cast<int>(as_double);
  }

  const Json& object_;
  const std::string& source_;
  std::string prefix_;
};

std::string format_number(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

// One RoPE block: transformers 4's `rope_scaling` or transformers 5's `rope_parameters`.
// Both carry `rope_type` (legacy `type`); `rope_parameters` also carries `rope_theta`.
Status parse_rope_block(const FieldReader& block, RopeConfig& rope) {
  STRATA_ASSIGN_OR_RETURN(std::optional<std::string> rope_type, block.opt_string("rope_type"));
  std::string type_field = "rope_type";
  if (!rope_type) {
    STRATA_ASSIGN_OR_RETURN(rope_type, block.opt_string("type"));
    type_field = "type";
  }
  STRATA_ASSIGN_OR_RETURN(std::optional<double> theta, block.opt_number("rope_theta"));
  if (theta) rope.theta = static_cast<float>(*theta);

  const std::string type = rope_type.value_or("default");
  if (type == "default") {
    rope.type = "default";
    return Status::ok_status();
  }
  if (type != "llama3") {
    return unimplemented(block.source() + ": " + block.name(type_field) + " '" + type +
                         "' is not supported (supported: default, llama3)");
  }
  rope.type = "llama3";
  STRATA_ASSIGN_OR_RETURN(double factor, block.req_number("factor"));
  STRATA_ASSIGN_OR_RETURN(double low_freq_factor, block.req_number("low_freq_factor"));
  STRATA_ASSIGN_OR_RETURN(double high_freq_factor, block.req_number("high_freq_factor"));
  STRATA_ASSIGN_OR_RETURN(int original_max, block.req_int("original_max_position_embeddings"));
  if (!(factor >= 1.0)) {
    return invalid_argument(block.source() + ": " + block.name("factor") + " (" + format_number(factor) +
                            ") must be at least 1");
  }
  if (!(low_freq_factor > 0.0)) {
    return invalid_argument(block.source() + ": " + block.name("low_freq_factor") + " (" +
                            format_number(low_freq_factor) + ") must be positive");
  }
  if (!(high_freq_factor > low_freq_factor)) {
    return invalid_argument(block.source() + ": " + block.name("high_freq_factor") + " (" +
                            format_number(high_freq_factor) + ") must be greater than " +
                            block.name("low_freq_factor") + " (" + format_number(low_freq_factor) + ")");
  }
  if (original_max <= 0) {
    return invalid_argument(block.source() + ": " + block.name("original_max_position_embeddings") + " (" +
                            std::to_string(original_max) + ") must be positive");
  }
  rope.factor = static_cast<float>(factor);
  rope.low_freq_factor = static_cast<float>(low_freq_factor);
  rope.high_freq_factor = static_cast<float>(high_freq_factor);
  rope.original_max_position_embeddings = original_max;
  return Status::ok_status();
}

Status parse_rope(const FieldReader& fields, RopeConfig& rope) {
  STRATA_ASSIGN_OR_RETURN(std::optional<double> theta, fields.opt_number("rope_theta"));
  if (theta) rope.theta = static_cast<float>(*theta);

  STRATA_ASSIGN_OR_RETURN(const Json* parameters, fields.opt_object("rope_parameters"));
  STRATA_ASSIGN_OR_RETURN(const Json* scaling, fields.opt_object("rope_scaling"));
  // transformers 5 keeps everything in rope_parameters; when both exist it is the newer one.
  if (parameters) {
    STRATA_RETURN_IF_ERROR(parse_rope_block(FieldReader(*parameters, fields.source(), "rope_parameters."), rope));
  } else if (scaling) {
    STRATA_RETURN_IF_ERROR(parse_rope_block(FieldReader(*scaling, fields.source(), "rope_scaling."), rope));
  }
  if (!(rope.theta > 0.0f) || !std::isfinite(rope.theta)) {
    return invalid_argument(fields.source() + ": rope_theta (" + format_number(rope.theta) +
                            ") must be a positive number");
  }
  return Status::ok_status();
}

// Qwen2/Qwen3: the window applies only with use_sliding_window, and then only to layers
// listed as "sliding_attention" in layer_types (or, in older configs, to layers at or above
// max_window_layers). A mix of windowed and full layers is not supported yet.
Result<std::optional<int>> qwen_sliding_window(const FieldReader& fields, int num_layers) {
  STRATA_ASSIGN_OR_RETURN(std::optional<bool> use, fields.opt_bool("use_sliding_window"));
  if (!use.value_or(false)) return std::optional<int>{};
  STRATA_ASSIGN_OR_RETURN(std::optional<int> window, fields.opt_int("sliding_window"));
  if (!window) return std::optional<int>{};

  int sliding_layers = 0;
  const Json* layer_types = fields.find("layer_types");
  if (layer_types) {
    if (!layer_types->is_array()) {
      return fields.wrong_type("layer_types", *layer_types, "a list of strings");
    }
    for (const Json& t : *layer_types) {
      if (!t.is_string()) return fields.wrong_type("layer_types", *layer_types, "a list of strings");
      if (t.get<std::string>() == "sliding_attention") ++sliding_layers;
    }
  } else {
    // transformers' Qwen2Config/Qwen3Config default max_window_layers is 28.
    STRATA_ASSIGN_OR_RETURN(std::optional<int> max_window_layers, fields.opt_int("max_window_layers"));
    const int first_sliding = std::max(0, max_window_layers.value_or(28));
    sliding_layers = std::max(0, num_layers - first_sliding);
  }
  if (sliding_layers == 0) return std::optional<int>{};
  if (sliding_layers != num_layers) {
    return unimplemented(fields.source() + ": use_sliding_window with a sliding window on " +
                         std::to_string(sliding_layers) + " of " + std::to_string(num_layers) +
                         " layers is not supported (only all or none)");
  }
  return window;
}

Status check_positive(const std::string& source, std::string_view field, int value) {
  if (value > 0) return Status::ok_status();
  return invalid_argument(source + ": " + std::string(field) + " (" + std::to_string(value) + ") must be positive");
}

}  // namespace

Result<ModelConfig> parse_model_config(std::string_view json_text, const std::string& source) {
  STRATA_ASSIGN_OR_RETURN(Json root, parse_json_object(json_text, source));
  FieldReader fields(root, source);
  ModelConfig config;

  // Architecture: architectures[0], or model_type for configs saved without a model class.
  const Json* architectures = fields.find("architectures");
  if (architectures) {
    if (!architectures->is_array() || (!architectures->empty() && !(*architectures)[0].is_string())) {
      return fields.wrong_type("architectures", *architectures, "a list of strings");
    }
    if (!architectures->empty()) config.architecture = (*architectures)[0].get<std::string>();
  }
  if (config.architecture.empty()) {
    STRATA_ASSIGN_OR_RETURN(std::optional<std::string> model_type, fields.opt_string("model_type"));
    if (!model_type) return fields.missing("architectures");
    bool known = false;
    for (const auto& a : kSupportedArchs) {
      if (a.model_type == *model_type) {
        config.architecture = std::string(a.architecture);
        known = true;
      }
    }
    if (!known) {
      return invalid_argument(source + ": model_type '" + *model_type +
                              "' is not supported (supported: " + supported_arch_list() + ")");
    }
  }
  bool known_arch = false;
  for (const auto& a : kSupportedArchs) {
    if (a.architecture == config.architecture) {
      config.arch = a.arch;
      known_arch = true;
    }
  }
  if (!known_arch) {
    return invalid_argument(source + ": architecture '" + config.architecture +
                            "' is not supported (supported: " + supported_arch_list() + ")");
  }

  STRATA_ASSIGN_OR_RETURN(config.vocab_size, fields.req_int("vocab_size"));
  STRATA_ASSIGN_OR_RETURN(config.hidden_size, fields.req_int("hidden_size"));
  STRATA_ASSIGN_OR_RETURN(config.intermediate_size, fields.req_int("intermediate_size"));
  STRATA_ASSIGN_OR_RETURN(config.num_layers, fields.req_int("num_hidden_layers"));
  STRATA_ASSIGN_OR_RETURN(config.num_heads, fields.req_int("num_attention_heads"));
  STRATA_ASSIGN_OR_RETURN(config.max_position_embeddings, fields.req_int("max_position_embeddings"));
  STRATA_ASSIGN_OR_RETURN(std::optional<int> num_kv_heads, fields.opt_int("num_key_value_heads"));
  STRATA_ASSIGN_OR_RETURN(std::optional<int> head_dim, fields.opt_int("head_dim"));
  if (!head_dim && config.arch == ModelArch::kQwen3) {
    // Qwen3 decouples head_dim from hidden_size / heads, so it cannot be derived.
    return fields.missing("head_dim");
  }

  STRATA_RETURN_IF_ERROR(check_positive(source, "vocab_size", config.vocab_size));
  STRATA_RETURN_IF_ERROR(check_positive(source, "hidden_size", config.hidden_size));
  STRATA_RETURN_IF_ERROR(check_positive(source, "intermediate_size", config.intermediate_size));
  STRATA_RETURN_IF_ERROR(check_positive(source, "num_hidden_layers", config.num_layers));
  STRATA_RETURN_IF_ERROR(check_positive(source, "num_attention_heads", config.num_heads));
  STRATA_RETURN_IF_ERROR(check_positive(source, "max_position_embeddings", config.max_position_embeddings));
  config.num_kv_heads = num_kv_heads.value_or(config.num_heads);
  STRATA_RETURN_IF_ERROR(check_positive(source, "num_key_value_heads", config.num_kv_heads));
  if (config.num_heads % config.num_kv_heads != 0) {
    return invalid_argument(source + ": num_key_value_heads (" + std::to_string(config.num_kv_heads) +
                            ") must divide num_attention_heads (" + std::to_string(config.num_heads) + ")");
  }
  if (head_dim) {
    config.head_dim = *head_dim;
    STRATA_RETURN_IF_ERROR(check_positive(source, "head_dim", config.head_dim));
  } else {
    if (config.hidden_size % config.num_heads != 0) {
      return invalid_argument(source + ": hidden_size (" + std::to_string(config.hidden_size) +
                              ") must be divisible by num_attention_heads (" + std::to_string(config.num_heads) +
                              ") when head_dim is not given");
    }
    config.head_dim = config.hidden_size / config.num_heads;
  }
  if (config.head_dim % 2 != 0) {
    return invalid_argument(source + ": head_dim (" + std::to_string(config.head_dim) +
                            ") must be even (RoPE rotates pairs of dimensions)");
  }

  STRATA_ASSIGN_OR_RETURN(std::optional<double> eps, fields.opt_number("rms_norm_eps"));
  if (eps) {
    if (!(*eps > 0.0) || !std::isfinite(*eps)) {
      return invalid_argument(source + ": rms_norm_eps (" + format_number(*eps) + ") must be a positive number");
    }
    config.rms_norm_eps = static_cast<float>(*eps);
  }

  STRATA_ASSIGN_OR_RETURN(std::optional<std::string> hidden_act, fields.opt_string("hidden_act"));
  // "swish" is transformers' other name for SiLU.
  if (hidden_act && *hidden_act != "silu" && *hidden_act != "swish") {
    return unimplemented(source + ": hidden_act '" + *hidden_act + "' is not supported (must be \"silu\")");
  }

  STRATA_RETURN_IF_ERROR(parse_rope(fields, config.rope));

  STRATA_ASSIGN_OR_RETURN(std::optional<bool> tie, fields.opt_bool("tie_word_embeddings"));
  config.tie_word_embeddings = tie.value_or(false);

  STRATA_ASSIGN_OR_RETURN(std::optional<bool> attention_bias, fields.opt_bool("attention_bias"));
  switch (config.arch) {
    case ModelArch::kLlama:
    case ModelArch::kQwen3:
      config.attention_bias = attention_bias.value_or(false);
      break;
    case ModelArch::kMistral:  // MistralAttention has no biases and no such field
      config.attention_bias = false;
      break;
    case ModelArch::kQwen2:  // Qwen2Attention always has q/k/v biases
      config.attention_bias = true;
      break;
  }
  config.qk_norm = config.arch == ModelArch::kQwen3;
  if (config.arch == ModelArch::kLlama) {
    STRATA_ASSIGN_OR_RETURN(std::optional<bool> mlp_bias, fields.opt_bool("mlp_bias"));
    if (mlp_bias.value_or(false)) {
      return unimplemented(source + ": mlp_bias = true is not supported");
    }
  }

  switch (config.arch) {
    case ModelArch::kLlama:
      break;
    case ModelArch::kMistral: {
      STRATA_ASSIGN_OR_RETURN(config.sliding_window, fields.opt_int("sliding_window"));
      break;
    }
    case ModelArch::kQwen2:
    case ModelArch::kQwen3: {
      STRATA_ASSIGN_OR_RETURN(config.sliding_window, qwen_sliding_window(fields, config.num_layers));
      break;
    }
  }
  if (config.sliding_window && *config.sliding_window <= 0) {
    return invalid_argument(source + ": sliding_window (" + std::to_string(*config.sliding_window) +
                            ") must be positive");
  }

  // transformers 5 renamed torch_dtype to dtype.
  STRATA_ASSIGN_OR_RETURN(std::optional<std::string> dtype, fields.opt_string("dtype"));
  if (!dtype) {
    STRATA_ASSIGN_OR_RETURN(dtype, fields.opt_string("torch_dtype"));
  }
  config.torch_dtype = dtype.value_or("");

  STRATA_ASSIGN_OR_RETURN(config.bos_token_id, fields.opt_int("bos_token_id"));
  STRATA_ASSIGN_OR_RETURN(config.eos_token_ids, fields.token_ids("eos_token_id"));
  return config;
}

Result<ModelConfig> load_model_config(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "config.json").string();
  STRATA_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  return parse_model_config(text, path);
}

Result<GenerationDefaults> load_generation_defaults(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "generation_config.json").string();
  GenerationDefaults defaults;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return defaults;
  STRATA_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  STRATA_ASSIGN_OR_RETURN(Json root, parse_json_object(text, path));
  FieldReader fields(root, path);

  STRATA_ASSIGN_OR_RETURN(defaults.eos_token_ids, fields.token_ids("eos_token_id"));
  STRATA_ASSIGN_OR_RETURN(defaults.bos_token_id, fields.opt_int("bos_token_id"));
  STRATA_ASSIGN_OR_RETURN(defaults.do_sample, fields.opt_bool("do_sample"));
  STRATA_ASSIGN_OR_RETURN(std::optional<double> temperature, fields.opt_number("temperature"));
  STRATA_ASSIGN_OR_RETURN(std::optional<double> top_p, fields.opt_number("top_p"));
  STRATA_ASSIGN_OR_RETURN(defaults.top_k, fields.opt_int("top_k"));
  STRATA_ASSIGN_OR_RETURN(std::optional<double> min_p, fields.opt_number("min_p"));
  STRATA_ASSIGN_OR_RETURN(std::optional<double> repetition_penalty, fields.opt_number("repetition_penalty"));
  STRATA_ASSIGN_OR_RETURN(defaults.max_new_tokens, fields.opt_int("max_new_tokens"));
  auto to_float = [](std::optional<double> x) -> std::optional<float> {
    if (!x) return std::nullopt;
    return static_cast<float>(*x);
  };
  defaults.temperature = to_float(temperature);
  defaults.top_p = to_float(top_p);
  defaults.min_p = to_float(min_p);
  defaults.repetition_penalty = to_float(repetition_penalty);
  return defaults;
}

}  // namespace strata
