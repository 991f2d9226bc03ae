// Chat templates from tokenizer_config.json: a Jinja subset rendered the way transformers'
// apply_chat_template renders it (trim_blocks, lstrip_blocks, loopcontrols, its tojson,
// raise_exception and strftime_now). Variables arrive as JSON text; no JSON types leak here.
//
// Not supported: {% include/import/extends/block/call %}, recursive loops, *args/**kwargs in
// calls, integers beyond 64 bits. Unlike jinja2's default Undefined, an attribute or item of
// an undefined value is undefined rather than an error.
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/status.h"

namespace strata::tmpl {

struct Program;

struct ChatTemplateOptions {
  // transformers' settings; plain jinja2 defaults all three to false.
  bool trim_blocks = true;    // drop the newline right after a block tag
  bool lstrip_blocks = true;  // drop spaces and tabs before a block tag at the start of a line
  bool keep_trailing_newline = false;
};

struct RenderOptions {
  // What strftime_now() formats; empty means the local time at render.
  std::function<std::tm()> now;
};

// One message for chat_messages_to_json.
struct ChatMessage {
  std::string role;
  std::string content;
  // Optional JSON object merged into the message after role and content, for tool_calls,
  // tool_call_id, name, reasoning_content, or to replace content (null, a list of parts).
  std::string extra_json;
};

// The JSON array that render_chat takes, e.g. [{"role": "user", "content": "Hi"}].
Result<std::string> chat_messages_to_json(const std::vector<ChatMessage>& messages);

// The variables transformers passes a chat template.
struct ChatRenderInput {
  std::string messages_json = "[]";  // a JSON array of message objects
  bool add_generation_prompt = true;
  std::string bos_token;  // empty: left undefined, as for a tokenizer without one
  std::string eos_token;
  std::string tools_json;       // empty: tools = None; else a JSON array of tool schemas
  std::string extra_vars_json;  // empty, or a JSON object of more variables (enable_thinking, documents, ...)
};

class ChatTemplate {
 public:
  // Syntax errors say where: "chat template: syntax error at line 3, column 12: ...".
  static Result<ChatTemplate> parse(std::string_view source, const ChatTemplateOptions& options = {});

  // `context_json` is a JSON object of variables, typically {"messages": [...],
  // "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>", "tools": null}.
  // raise_exception(msg) in the template fails with invalid_argument and exactly `msg`;
  // other runtime errors are invalid_argument "chat template: line N: ...".
  Result<std::string> render(std::string_view context_json, const RenderOptions& options = {}) const;
  Result<std::string> render_chat(const ChatRenderInput& input, const RenderOptions& options = {}) const;

 private:
  explicit ChatTemplate(std::shared_ptr<const Program> program) : program_(std::move(program)) {}

  std::shared_ptr<const Program> program_;
};

// Parses `template_source` and renders it once: render_chat with the usual variables.
Result<std::string> render_chat(std::string_view template_source, const ChatRenderInput& input,
                                const RenderOptions& options = {});
Result<std::string> render_chat(std::string_view template_source, std::string_view messages_json,
                                bool add_generation_prompt, std::string_view bos_token, std::string_view eos_token,
                                std::string_view extra_vars_json = {}, const RenderOptions& options = {});

}  // namespace strata::tmpl
