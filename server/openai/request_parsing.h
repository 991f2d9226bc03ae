// Parsing and validation of the OpenAI request bodies (/v1/completions, /v1/chat/completions):
// typed fields, ranges, and the checkpoint's generation defaults for fields left out.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/model/model_config.h"
#include "engine/sampling/sampling_params.h"
#include "server/openai/api_error.h"

namespace strata {

// What one completion or chat request asks for, apart from its prompt.
struct GenerationSpec {
  bool chat = false;
  int n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool echo = false;           // completions only
  std::optional<int> max_tokens;  // as requested (max_completion_tokens wins for chat)
  SamplingParams params;           // defaults applied; max_tokens resolved per prompt later
  std::optional<int> default_max_tokens;  // generation_config.json's max_new_tokens
  std::vector<std::string> stop;
  bool include_stop_str_in_output = false;
  bool skip_special_tokens = true;
  bool want_logprobs = false;
  int top_logprobs = 0;
};

// A completions prompt: text (tokenized later) or token ids.
struct PromptInput {
  bool is_text = true;
  std::string text;
  std::vector<int32_t> ids;
};

// Reads the fields of a completions or chat request apart from the prompt (sampling, n,
// stream, stop, logprobs, vLLM extras), the one validation path of completions, chat and
// gRPC: a field gets the same check and message on every endpoint, ranges are worded
// "<field> must be in [lo, hi], got v".
std::optional<ApiError> parse_generation_spec(const nlohmann::json& body, bool chat, const GenerationDefaults& defaults,
                                              GenerationSpec& spec);

// Reads /v1/completions' `prompt`: a string, a list of strings, a list of token ids, or a list
// of token-id lists.
std::optional<ApiError> parse_completion_prompts(const nlohmann::json& body, std::vector<PromptInput>& prompts);

// The request's `model` must name the served model when set (404 otherwise, as OpenAI and vLLM).
std::optional<ApiError> check_model_name(const std::string& requested, const std::string& served_model_name);

// The request fields that resolve_max_tokens' errors name.
struct PromptFieldNames {
  std::string input = "prompt";               // the prompt (chat: messages)
  std::string max_tokens = "max_tokens";      // the length limit (chat: max_completion_tokens when sent)
};

// Context-window and KV-cache checks of one prompt of `num_prompt_tokens` tokens (worded as
// vLLM's), and the max_tokens it runs with: the request's, or else the rest of the context
// window, capped by generation_config.json and by what the KV cache can hold for one request.
// `allow_zero`: max_tokens 0 is valid (completions with echo answer without generating).
std::optional<ApiError> resolve_max_tokens(const GenerationSpec& spec, int num_prompt_tokens, int max_model_len,
                                           int kv_cache_tokens, bool allow_zero, const PromptFieldNames& fields,
                                           int& max_tokens);

// A JSON body's nesting depth, by a linear scan that skips strings (guards the parser).
int json_nesting_depth(std::string_view text);

// Whether a Content-Type header value names JSON: application/json or application/*+json,
// any case, parameters (charset) allowed.
bool is_json_media_type(std::string_view content_type);

}  // namespace strata
