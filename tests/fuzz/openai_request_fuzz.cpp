// Fuzzes a request body of /v1/completions and /v1/chat/completions on the way to the engine, as
// OpenAiService::handle_generation takes it: the nesting guard and JSON parse, the model name,
// parse_generation_spec (SamplingParams with the default model's generation_config.json), the
// prompts (text, token ids, or chat messages rendered through the default model's chat template
// and tokenized), and the max_tokens resolution. Every input is tried on both endpoints.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/model/model_config.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/openai/chat_prompt.h"
#include "server/openai/request_parsing.h"

namespace {

using nlohmann::json;

constexpr int kMaxJsonDepth = 64;        // openai_service.cpp's guard
constexpr int kKvCacheTokens = 64 * 16;  // a small KV cache, so its check is reached too
const char kServedModelName[] = "default";

struct Served {
  std::unique_ptr<strata::Tokenizer> tokenizer;
  std::unique_ptr<strata::ChatPromptRenderer> chat;
  strata::GenerationDefaults defaults;
  int max_model_len = 0;
};

const Served& served() {
  static const Served s = [] {
    const std::string dir = std::string(STRATA_SOURCE_DIR) + "/models/default";
    Served out;
    auto tokenizer = strata::load_tokenizer(dir);
    auto defaults = strata::load_generation_defaults(dir);
    auto config = strata::load_model_config(dir);
    if (!tokenizer.ok() || !defaults.ok() || !config.ok()) std::abort();
    out.tokenizer = std::move(*tokenizer);
    auto chat = strata::ChatPromptRenderer::create(*out.tokenizer, "");
    if (!chat.ok()) std::abort();
    out.chat = std::move(*chat);
    out.defaults = *defaults;
    out.max_model_len = config->max_position_embeddings;
    return out;
  }();
  return s;
}

// Every error becomes a response body; it must serialize whatever bytes the request carried.
void respond(const strata::ApiError& e) {
  if (e.to_json().empty()) std::abort();
}

bool flag(const json& body, const char* key, bool fallback) {
  auto v = body.find(key);
  return v != body.end() && v->is_boolean() ? v->get<bool>() : fallback;
}

void generation(const Served& s, const json& body, bool chat) {
  strata::GenerationSpec spec;
  if (auto e = strata::parse_generation_spec(body, chat, s.defaults, spec)) return respond(*e);

  std::vector<std::vector<int32_t>> prompts;
  if (chat) {
    auto it = body.find("messages");
    auto messages = strata::normalize_chat_messages(it == body.end() ? json() : *it);
    if (!messages.ok()) return respond(strata::bad_request(messages.status().message(), "messages"));
    strata::ChatRenderRequest render;
    render.messages = std::move(*messages);
    render.add_generation_prompt = flag(body, "add_generation_prompt", true);
    render.continue_final_message = flag(body, "continue_final_message", false);
    if (auto v = body.find("tools"); v != body.end() && v->is_array()) render.tools = *v;
    if (auto v = body.find("chat_template_kwargs"); v != body.end() && v->is_object()) render.template_kwargs = *v;
    auto text = s.chat->render(render);
    if (!text.ok()) return respond(strata::bad_request(text.status().message(), "messages"));
    prompts.push_back(s.tokenizer->encode(*text, flag(body, "add_special_tokens", false)));
  } else {
    std::vector<strata::PromptInput> inputs;
    if (auto e = strata::parse_completion_prompts(body, inputs)) return respond(*e);
    for (auto& in : inputs) {
      if (in.is_text) {
        prompts.push_back(s.tokenizer->encode(in.text, flag(body, "add_special_tokens", true)));
      } else {
        if (spec.echo) s.tokenizer->decode(in.ids, false);  // echo decodes the ids before the engine checks them
        prompts.push_back(std::move(in.ids));
      }
    }
  }

  strata::PromptFieldNames fields;
  if (chat) {
    fields.input = "messages";
    if (body.contains("max_completion_tokens")) fields.max_tokens = "max_completion_tokens";
  }
  const bool no_generation = !chat && spec.echo && spec.max_tokens && *spec.max_tokens == 0;
  for (const auto& ids : prompts) {
    int max_tokens = 0;
    if (auto e = strata::resolve_max_tokens(spec, static_cast<int>(ids.size()), s.max_model_len, kKvCacheTokens,
                                            no_generation, fields, max_tokens)) {
      return respond(*e);
    }
    // What the engine is then promised: room for the prompt and every token asked for.
    const long long total = static_cast<long long>(ids.size()) + max_tokens;
    if (max_tokens < 0 || (max_tokens == 0 && !no_generation) || total > s.max_model_len || total > kKvCacheTokens) {
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  served();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (strata::json_nesting_depth(text) > kMaxJsonDepth) return 0;
  const json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) return 0;
  if (auto m = body.find("model"); m != body.end() && !m->is_null()) {
    if (!m->is_string()) return 0;
    // The service answers 404 here; going on lets inputs naming any model reach the rest.
    if (auto e = strata::check_model_name(m->get<std::string>(), kServedModelName)) respond(*e);
  }
  const Served& s = served();
  generation(s, body, /*chat=*/false);
  generation(s, body, /*chat=*/true);
  return 0;
}
