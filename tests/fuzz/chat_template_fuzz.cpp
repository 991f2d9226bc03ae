// Fuzzes the chat-template interpreter (engine/template): the input is a template's source, parsed
// with transformers' settings and rendered against a fixed conversation, as the server renders a
// checkpoint's chat_template. The interpreter's own limits (macro recursion, range() length,
// string repetition) are what bounds a hostile template; nothing is added here.
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string_view>

#include "engine/template/chat_template.h"

namespace {

// A system prompt, a tool call and its result, multi-byte text, and a last user turn.
constexpr char kMessages[] = R"([
  {"role": "system", "content": "You are terse."},
  {"role": "user", "content": "What's the weather in Zürich? 天気"},
  {"role": "assistant", "content": null,
   "tool_calls": [{"id": "call_1", "type": "function",
                   "function": {"name": "get_weather", "arguments": {"city": "Zürich", "days": 2}}}]},
  {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\": 21.5}"},
  {"role": "assistant", "content": "21.5 °C.", "reasoning_content": "The tool said so."},
  {"role": "user", "content": "And tomorrow?\n"}
])";

constexpr char kTools[] = R"([
  {"type": "function", "function": {"name": "get_weather", "description": "Forecast for a city",
   "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                  "required": ["city"]}}}
])";

std::tm fixed_now() {
  std::tm t{};
  t.tm_year = 2025 - 1900;
  t.tm_mon = 2;
  t.tm_mday = 14;
  t.tm_hour = 9;
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  auto parsed = strata::tmpl::ChatTemplate::parse(source);
  if (!parsed.ok()) return 0;
  strata::tmpl::ChatRenderInput input;
  input.messages_json = kMessages;
  input.bos_token = "<s>";
  input.eos_token = "</s>";
  input.tools_json = kTools;
  input.extra_vars_json = R"({"enable_thinking": false, "documents": [{"title": "a", "text": "b"}]})";
  strata::tmpl::RenderOptions options;
  options.now = fixed_now;
  (void)parsed->render_chat(input, options);
  return 0;
}
