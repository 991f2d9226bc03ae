// The public face of the template module: parse once, render per request.
#include "engine/template/chat_template.h"

#include "engine/template/interpreter.h"
#include "engine/template/parser.h"
#include "engine/template/py_string.h"
#include "engine/template/value.h"

namespace strata::tmpl {
namespace {

Result<Value> parse_json_object(std::string_view json_text, std::string_view what) {
  STRATA_ASSIGN_OR_RETURN(Value value, value_from_json(json_text));
  if (!value.is_dict()) return invalid_argument(std::string(what) + " must be a JSON object");
  return value;
}

}  // namespace

Result<ChatTemplate> ChatTemplate::parse(std::string_view source, const ChatTemplateOptions& options) {
  ParseOptions parse_options;
  parse_options.lex.trim_blocks = options.trim_blocks;
  parse_options.lex.lstrip_blocks = options.lstrip_blocks;
  parse_options.keep_trailing_newline = options.keep_trailing_newline;
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<const Program> program, parse_program(source, parse_options));
  return ChatTemplate(std::move(program));
}

Result<std::string> ChatTemplate::render(std::string_view context_json, const RenderOptions& options) const {
  STRATA_ASSIGN_OR_RETURN(Value context, parse_json_object(context_json, "chat template context"));
  Interpreter interpreter(*program_, options.now);
  return interpreter.render(context.as_dict());
}

Result<std::string> ChatTemplate::render_chat(const ChatRenderInput& input, const RenderOptions& options) const {
  Dict context;
  STRATA_ASSIGN_OR_RETURN(Value messages, value_from_json(input.messages_json));
  if (!messages.is_list()) return invalid_argument("chat messages must be a JSON array");
  context.set(Value::string("messages"), std::move(messages));
  Value tools = Value::none();
  if (!input.tools_json.empty()) {
    STRATA_ASSIGN_OR_RETURN(tools, value_from_json(input.tools_json));
  }
  context.set(Value::string("tools"), std::move(tools));
  context.set(Value::string("documents"), Value::none());
  context.set(Value::string("add_generation_prompt"), Value::boolean(input.add_generation_prompt));
  if (!input.bos_token.empty()) context.set(Value::string("bos_token"), Value::string(input.bos_token));
  if (!input.eos_token.empty()) context.set(Value::string("eos_token"), Value::string(input.eos_token));
  if (!input.extra_vars_json.empty()) {
    STRATA_ASSIGN_OR_RETURN(Value extra, parse_json_object(input.extra_vars_json, "extra template variables"));
    for (const auto& [key, value] : extra.as_dict().entries) context.set(key, value);
  }
  Interpreter interpreter(*program_, options.now);
  return interpreter.render(context);
}

Result<std::string> render_chat(std::string_view template_source, const ChatRenderInput& input,
                                const RenderOptions& options) {
  STRATA_ASSIGN_OR_RETURN(ChatTemplate chat_template, ChatTemplate::parse(template_source));
  return chat_template.render_chat(input, options);
}

Result<std::string> render_chat(std::string_view template_source, std::string_view messages_json,
                                bool add_generation_prompt, std::string_view bos_token, std::string_view eos_token,
                                std::string_view extra_vars_json, const RenderOptions& options) {
  ChatRenderInput input;
  input.messages_json = std::string(messages_json);
  input.add_generation_prompt = add_generation_prompt;
  input.bos_token = std::string(bos_token);
  input.eos_token = std::string(eos_token);
  input.extra_vars_json = std::string(extra_vars_json);
  return render_chat(template_source, input, options);
}

Result<std::string> chat_messages_to_json(const std::vector<ChatMessage>& messages) {
  std::string out = "[";
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    Dict message;
    message.set(Value::string("role"), Value::string(m.role));
    message.set(Value::string("content"), Value::string(m.content));
    if (!m.extra_json.empty()) {
      STRATA_ASSIGN_OR_RETURN(Value extra, parse_json_object(m.extra_json, "ChatMessage::extra_json"));
      for (const auto& [key, value] : extra.as_dict().entries) message.set(key, value);
    }
    JsonDumpOptions options;
    options.separators.emplace(",", ":");
    STRATA_ASSIGN_OR_RETURN(std::string json, to_json(Value::dict(std::move(message)), options));
    if (i > 0) out += ',';
    out += json;
  }
  out += ']';
  return out;
}

}  // namespace strata::tmpl
