// Request-field parsing: every type or range error names its parameter.
#include "server/openai/request_parsing.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>

namespace strata {
namespace {

using nlohmann::json;

constexpr int kMaxChoices = 128;
constexpr int kMaxLogprobs = 20;

// Reads typed fields of a request object; the first problem becomes an ApiError.
class FieldReader {
 public:
  explicit FieldReader(const json& obj) : obj_(obj) {}

  const std::optional<ApiError>& error() const { return error_; }
  bool ok() const { return !error_; }

  // nullptr when absent or null.
  const json* find(const char* key) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  void fail(const std::string& param, const std::string& message) {
    if (!error_) error_ = bad_request(message, param);
  }

  bool number(const char* key, float& out) {
    const json* v = find(key);
    if (!v || !ok()) return false;
    if (!v->is_number()) {
      fail(key, std::string(key) + " must be a number");
      return false;
    }
    const double d = v->get<double>();
    if (!std::isfinite(d) || std::abs(d) > 1e30) {
      fail(key, std::string(key) + " is out of range");
      return false;
    }
    out = static_cast<float>(d);
    return true;
  }

  bool integer(const char* key, long long min, long long max, long long& out) {
    const json* v = find(key);
    if (!v || !ok()) return false;
    long long value = 0;
    if (v->is_number_unsigned()) {
      const auto u = v->get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<long long>::max())) {
        fail(key, std::string(key) + " must be in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " +
                      std::to_string(u));
        return false;
      }
      value = static_cast<long long>(u);
    } else if (v->is_number_integer()) {
      value = v->get<long long>();
    } else if (v->is_number_float() && std::isfinite(v->get<double>()) && std::floor(v->get<double>()) == v->get<double>()) {
      // 16.0 is an integer in JSON Schema terms; integers past 2^64 reach here as doubles.
      const double d = v->get<double>();
      if (std::abs(d) >= 9e15) {
        char shown[32];
        std::snprintf(shown, sizeof(shown), "%.6g", d);
        fail(key, std::string(key) + " must be in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " +
                      shown);
        return false;
      }
      value = static_cast<long long>(d);
    } else {
      fail(key, std::string(key) + " must be an integer");
      return false;
    }
    if (value < min || value > max) {
      fail(key, std::string(key) + " must be in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " +
                    std::to_string(value));
      return false;
    }
    out = value;
    return true;
  }

  bool integer(const char* key, int min, int max, int& out) {
    long long v = 0;
    if (!integer(key, static_cast<long long>(min), static_cast<long long>(max), v)) return false;
    out = static_cast<int>(v);
    return true;
  }

  bool boolean(const char* key, bool& out) {
    const json* v = find(key);
    if (!v || !ok()) return false;
    if (!v->is_boolean()) {
      fail(key, std::string(key) + " must be a boolean");
      return false;
    }
    out = v->get<bool>();
    return true;
  }

  bool object(const char* key, const json*& out) {
    const json* v = find(key);
    if (!v || !ok()) return false;
    if (!v->is_object()) {
      fail(key, std::string(key) + " must be an object");
      return false;
    }
    out = v;
    return true;
  }

 private:
  const json& obj_;
  std::optional<ApiError> error_;
};

bool parse_token_ids(const json& v, std::vector<int32_t>& out) {
  for (const auto& x : v) {
    if (!x.is_number_integer()) return false;
    const long long id = x.get<long long>();
    if (id < std::numeric_limits<int32_t>::min() || id > std::numeric_limits<int32_t>::max()) return false;
    out.push_back(static_cast<int32_t>(id));
  }
  return true;
}

}  // namespace

std::optional<ApiError> parse_generation_spec(const json& body, bool chat, const GenerationDefaults& d,
                                              GenerationSpec& spec) {
  spec.chat = chat;
  SamplingParams& p = spec.params;
  // Checkpoint defaults first (generation_config.json), as vLLM does; the request overrides.
  if (d.do_sample.has_value() && !*d.do_sample) p.temperature = 0.0f;
  if (d.temperature) p.temperature = *d.temperature;
  if (d.top_p) p.top_p = *d.top_p;
  if (d.top_k) p.top_k = *d.top_k;
  if (d.min_p) p.min_p = *d.min_p;
  if (d.repetition_penalty) p.repetition_penalty = *d.repetition_penalty;
  spec.default_max_tokens = d.max_new_tokens;

  FieldReader r(body);
  constexpr int kIntMax = std::numeric_limits<int>::max();
  r.integer("n", 1, kMaxChoices, spec.n);
  if (const json* bo = r.find("best_of"); bo && r.ok()) {
    int best_of = 1;
    if (r.integer("best_of", 1, kMaxChoices, best_of) && best_of != spec.n) {
      r.fail("best_of", "best_of other than n is not supported");
    }
  }
  r.boolean("stream", spec.stream);
  const json* stream_options = nullptr;
  if (r.object("stream_options", stream_options)) {
    if (!spec.stream) {
      r.fail("stream_options", "stream_options can only be set when stream is true");
    } else {
      FieldReader so(*stream_options);
      so.boolean("include_usage", spec.include_usage);
      if (!so.ok()) r.fail("stream_options", "stream_options.include_usage must be a boolean");
    }
  }

  // echo first: it decides whether max_tokens 0 means something (the prompt alone, back).
  r.boolean("echo", spec.echo);
  if (chat && spec.echo && r.ok()) r.fail("echo", "echo is not supported for chat completions");
  const int min_max_tokens = spec.echo ? 0 : 1;
  int max_tokens = 0;
  if (r.integer("max_tokens", min_max_tokens, kIntMax, max_tokens)) spec.max_tokens = max_tokens;
  if (chat && r.integer("max_completion_tokens", min_max_tokens, kIntMax, max_tokens)) spec.max_tokens = max_tokens;
  r.integer("min_tokens", 0, kIntMax, p.min_tokens);
  r.number("temperature", p.temperature);
  r.number("top_p", p.top_p);
  r.integer("top_k", -1, kIntMax, p.top_k);
  r.number("min_p", p.min_p);
  r.number("presence_penalty", p.presence_penalty);
  r.number("frequency_penalty", p.frequency_penalty);
  r.number("repetition_penalty", p.repetition_penalty);
  long long seed = 0;
  if (r.integer("seed", std::numeric_limits<long long>::min(), std::numeric_limits<long long>::max(), seed)) {
    p.seed = static_cast<uint64_t>(seed);
  }
  r.boolean("ignore_eos", p.ignore_eos);
  r.boolean("skip_special_tokens", spec.skip_special_tokens);
  r.boolean("include_stop_str_in_output", spec.include_stop_str_in_output);

  if (const json* lb = r.find("logit_bias"); lb && r.ok()) {
    if (!lb->is_object()) {
      r.fail("logit_bias", "logit_bias must be an object mapping token ids to numbers");
    } else {
      for (const auto& [key, value] : lb->items()) {
        long long id = -1;
        size_t used = 0;
        try {
          id = std::stoll(key, &used);
        } catch (...) {
          used = 0;
        }
        if (used == 0 || used != key.size() || id < 0 || id > std::numeric_limits<int32_t>::max()) {
          r.fail("logit_bias", "logit_bias key '" + key + "' is not a token id");
          break;
        }
        if (!value.is_number() || !std::isfinite(value.get<double>())) {
          r.fail("logit_bias", "logit_bias values must be numbers");
          break;
        }
        p.logit_bias.emplace_back(static_cast<int32_t>(id), static_cast<float>(value.get<double>()));
      }
    }
  }

  if (const json* stop = r.find("stop"); stop && r.ok()) {
    if (stop->is_string()) {
      spec.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (const auto& s : *stop) {
        if (!s.is_string()) {
          r.fail("stop", "stop must be a string or a list of strings");
          break;
        }
        spec.stop.push_back(s.get<std::string>());
      }
    } else {
      r.fail("stop", "stop must be a string or a list of strings");
    }
  }
  if (const json* ids = r.find("stop_token_ids"); ids && r.ok()) {
    if (!ids->is_array() || !parse_token_ids(*ids, p.stop_token_ids)) {
      r.fail("stop_token_ids", "stop_token_ids must be a list of token ids");
    }
  }

  if (chat) {
    // Tools reach the prompt through the chat template; what needs constrained decoding is not
    // built yet, so it is refused rather than answered in plain text.
    const json* tools = r.find("tools");
    if (tools && r.ok() && !tools->is_array()) r.fail("tools", "tools must be a list of tool definitions");
    if (const json* choice = r.find("tool_choice"); choice && r.ok()) {
      if (!tools) {
        r.fail("tool_choice", "tool_choice needs tools");
      } else if (choice->is_string() && (*choice == "none" || *choice == "auto")) {
        // none: answer in text; auto: the model's own text, tool calls included, comes back as content
      } else if (choice->is_string() && *choice == "required") {
        r.fail("tool_choice", "tool_choice 'required' is not supported yet (it needs constrained decoding)");
      } else if (choice->is_object()) {
        r.fail("tool_choice", "tool_choice naming a function is not supported yet (it needs constrained decoding)");
      } else {
        r.fail("tool_choice", "tool_choice must be 'none', 'auto', 'required' or {\"type\": \"function\", ...}");
      }
    }
    r.boolean("logprobs", spec.want_logprobs);
    if (r.integer("top_logprobs", 0, kMaxLogprobs, spec.top_logprobs) && !spec.want_logprobs) {
      r.fail("top_logprobs", "top_logprobs requires logprobs to be true");
    }
  } else {
    if (r.integer("logprobs", 0, kMaxLogprobs, spec.top_logprobs)) spec.want_logprobs = true;
    if (const json* suffix = r.find("suffix"); suffix && r.ok()) {
      r.fail("suffix", "suffix is not supported");
    }
    if (spec.echo && spec.want_logprobs) {
      r.fail("echo", "echo together with logprobs needs prompt logprobs, which this server does not compute");
    }
  }
  // vLLM's extras that this server does not compute: refused rather than ignored.
  if (const json* pl = r.find("prompt_logprobs"); pl && r.ok()) {
    r.fail("prompt_logprobs", "prompt_logprobs is not supported");
  }
  if (const json* ids = r.find("return_tokens_as_token_ids"); ids && r.ok() && !(ids->is_boolean() && !*ids)) {
    r.fail("return_tokens_as_token_ids", "return_tokens_as_token_ids is not supported");
  }
  if (const json* rf = r.find("response_format"); rf && r.ok()) {
    if (!rf->is_object() || !rf->contains("type") || (*rf)["type"] != "text") {
      r.fail("response_format", "response_format other than {\"type\": \"text\"} is not supported");
    }
  }
  if (r.ok()) p.logprobs = spec.want_logprobs ? spec.top_logprobs : -1;
  return r.error();
}

std::optional<ApiError> parse_completion_prompts(const json& body, std::vector<PromptInput>& prompts) {
  auto it = body.find("prompt");
  if (it == body.end() || it->is_null()) return bad_request("prompt is required", "prompt");
  const json& v = *it;
  const auto bad = [] {
    return bad_request("prompt must be a string, a list of strings, a list of token ids or a list of token-id lists",
                       "prompt");
  };
  if (v.is_string()) {
    prompts.push_back({true, v.get<std::string>(), {}});
    return std::nullopt;
  }
  if (!v.is_array() || v.empty()) return v.is_array() ? bad_request("prompt must not be empty", "prompt") : bad();
  if (v[0].is_string()) {
    for (const auto& s : v) {
      if (!s.is_string()) return bad();
      prompts.push_back({true, s.get<std::string>(), {}});
    }
  } else if (v[0].is_number()) {
    PromptInput p;
    p.is_text = false;
    if (!parse_token_ids(v, p.ids)) return bad();
    prompts.push_back(std::move(p));
  } else if (v[0].is_array()) {
    for (const auto& ids : v) {
      PromptInput p;
      p.is_text = false;
      if (!ids.is_array() || !parse_token_ids(ids, p.ids)) return bad();
      if (p.ids.empty()) return bad_request("prompt token-id lists must not be empty", "prompt");
      prompts.push_back(std::move(p));
    }
  } else {
    return bad();
  }
  return std::nullopt;
}

std::optional<ApiError> check_model_name(const std::string& requested, const std::string& served_model_name) {
  if (requested == served_model_name) return std::nullopt;
  ApiError e = not_found_error("The model `" + requested + "` does not exist.", "model_not_found");
  e.param = "model";
  return e;
}

std::optional<ApiError> resolve_max_tokens(const GenerationSpec& spec, int num_prompt_tokens, int max_model_len,
                                           int kv_cache_tokens, bool allow_zero, const PromptFieldNames& fields,
                                           int& max_tokens) {
  const int p = num_prompt_tokens;
  const std::string& input = fields.input;
  if (p == 0) return bad_request(input + " is empty (no tokens)", input);
  if (p >= max_model_len) {
    return bad_request("This model's maximum context length is " + std::to_string(max_model_len) +
                           " tokens. However, your request has " + std::to_string(p) +
                           " input tokens. Please reduce the length of the input " + input + ".",
                       input);
  }
  if (spec.max_tokens) {
    max_tokens = *spec.max_tokens;
    if (max_tokens < (allow_zero ? 0 : 1)) {
      return bad_request(fields.max_tokens + " must be in [" + std::string(allow_zero ? "0" : "1") + ", " +
                             std::to_string(std::numeric_limits<int>::max()) + "], got " + std::to_string(max_tokens),
                         fields.max_tokens);
    }
    if (static_cast<long long>(p) + max_tokens > max_model_len) {
      return bad_request("This model's maximum context length is " + std::to_string(max_model_len) +
                             " tokens. However, you requested " +
                             std::to_string(static_cast<long long>(p) + max_tokens) + " tokens (" + std::to_string(p) +
                             " in the " + input + ", " + std::to_string(max_tokens) +
                             " in the completion). Please reduce the length of the " + input + " or completion.",
                         fields.max_tokens);
    }
    if (p + max_tokens > kv_cache_tokens) {
      return bad_request("The request may need " + std::to_string(p + max_tokens) + " tokens of KV cache (" +
                             std::to_string(p) + " in the " + input + ", " + std::to_string(max_tokens) +
                             " in the completion), but the whole cache holds " + std::to_string(kv_cache_tokens) +
                             " tokens. Reduce max_tokens, or start the server with a larger --kv-cache-mb.",
                         "max_tokens");
    }
    return std::nullopt;
  }
  max_tokens = std::min(max_model_len, kv_cache_tokens) - p;
  if (spec.default_max_tokens && *spec.default_max_tokens > 0) {
    max_tokens = std::min(max_tokens, *spec.default_max_tokens);
  }
  if (max_tokens < 1) {
    return bad_request("The " + input + " has " + std::to_string(p) +
                           " tokens, which leaves no room in the KV cache (" + std::to_string(kv_cache_tokens) +
                           " tokens) to generate.",
                       input);
  }
  return std::nullopt;
}

bool is_json_media_type(std::string_view content_type) {
  std::string type(content_type.substr(0, content_type.find(';')));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.pop_back();
  const size_t start = type.find_first_not_of(" \t");
  type = start == std::string::npos ? std::string() : type.substr(start);
  std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::tolower(c); });
  const std::string_view t = type;
  return t == "application/json" ||
         (t.rfind("application/", 0) == 0 && t.size() > 17 && t.substr(t.size() - 5) == "+json");
}

int json_nesting_depth(std::string_view text) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

}  // namespace strata
