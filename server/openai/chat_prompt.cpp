// ChatPromptRenderer implementation and message normalization.
#include "server/openai/chat_prompt.h"

#include <optional>

#include "engine/template/chat_template.h"

namespace strata {

using nlohmann::json;

struct ChatPromptRenderer::Compiled {
  std::optional<tmpl::ChatTemplate> chat_template;
};

ChatPromptRenderer::~ChatPromptRenderer() = default;

Result<std::unique_ptr<ChatPromptRenderer>> ChatPromptRenderer::create(const Tokenizer& tokenizer,
                                                                       const std::string& template_override) {
  std::unique_ptr<ChatPromptRenderer> r(new ChatPromptRenderer());
  if (auto bos = tokenizer.bos_id()) r->bos_token_ = tokenizer.id_to_token(*bos);
  if (auto eos = tokenizer.eos_id()) r->eos_token_ = tokenizer.id_to_token(*eos);
  const std::string& source = template_override.empty() ? tokenizer.chat_template() : template_override;
  r->compiled_ = std::make_unique<Compiled>();
  if (source.empty()) return r;
  auto parsed = tmpl::ChatTemplate::parse(source);
  if (!parsed.ok()) return parsed.status();
  r->compiled_->chat_template.emplace(std::move(*parsed));
  r->fallback_ = false;
  return r;
}

Result<std::string> ChatPromptRenderer::render(const ChatRenderRequest& request) const {
  if (fallback_) return render_fallback(request);
  const json& messages = request.messages;
  tmpl::ChatRenderInput input;
  input.messages_json = messages.dump(-1, ' ', false, json::error_handler_t::replace);
  // continue_final_message: render the conversation as finished, then cut after the last
  // message's content so the model continues it (as transformers and vLLM do).
  input.add_generation_prompt = request.add_generation_prompt && !request.continue_final_message;
  input.bos_token = bos_token_;
  input.eos_token = eos_token_;
  if (request.tools.is_array()) input.tools_json = request.tools.dump(-1, ' ', false, json::error_handler_t::replace);
  if (request.template_kwargs.is_object()) {
    input.extra_vars_json = request.template_kwargs.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  auto text = compiled_->chat_template->render_chat(input);
  if (!text.ok() || !request.continue_final_message) return text;
  const json& last = messages.back();
  const std::string content = last.contains("content") && last["content"].is_string() ? last["content"].get<std::string>() : "";
  const size_t pos = content.empty() ? std::string::npos : text->rfind(content);
  if (pos == std::string::npos) {
    return invalid_argument("continue_final_message: the final message's content does not appear in the rendered prompt");
  }
  return text->substr(0, pos + content.size());
}

Result<std::string> ChatPromptRenderer::render_fallback(const ChatRenderRequest& request) const {
  std::string out;
  const size_t n = request.messages.size();
  for (size_t i = 0; i < n; ++i) {
    const json& m = request.messages[i];
    const std::string role = m["role"].get<std::string>();
    const std::string content = m.contains("content") && m["content"].is_string() ? m["content"].get<std::string>() : "";
    out += "<|im_start|>" + role + "\n" + content;
    const bool open_last = request.continue_final_message && i + 1 == n;
    if (!open_last) out += "<|im_end|>\n";
  }
  if (request.add_generation_prompt && !request.continue_final_message) out += "<|im_start|>assistant\n";
  return out;
}

Result<json> normalize_chat_messages(const json& messages) {
  if (!messages.is_array() || messages.empty()) {
    return invalid_argument("messages must be a non-empty array of message objects");
  }
  json out = json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return invalid_argument(where + " must be an object");
    if (!m.contains("role") || !m["role"].is_string()) return invalid_argument(where + ".role must be a string");
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant" && role != "tool" && role != "developer") {
      return invalid_argument(where + ".role '" + role + "' is not one of system, developer, user, assistant, tool");
    }
    json nm = m;
    if (!m.contains("content") || m["content"].is_null()) {
      if (role != "assistant") return invalid_argument(where + ".content is required for role '" + role + "'");
      nm["content"] = nullptr;
    } else if (m["content"].is_array()) {
      std::string text;
      bool first = true;
      for (size_t k = 0; k < m["content"].size(); ++k) {
        const json& part = m["content"][k];
        const std::string pwhere = where + ".content[" + std::to_string(k) + "]";
        if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
          return invalid_argument(pwhere + " must be an object with a type");
        }
        const std::string type = part["type"].get<std::string>();
        if (type != "text") {
          return invalid_argument(pwhere + ": content parts of type '" + type + "' are not supported (text only)");
        }
        if (!part.contains("text") || !part["text"].is_string()) return invalid_argument(pwhere + ".text must be a string");
        if (!first) text += "\n";
        text += part["text"].get<std::string>();
        first = false;
      }
      nm["content"] = text;
    } else if (!m["content"].is_string()) {
      return invalid_argument(where + ".content must be a string or an array of content parts");
    }
    if (m.contains("name") && !m["name"].is_string()) return invalid_argument(where + ".name must be a string");
    out.push_back(std::move(nm));
  }
  return out;
}

}  // namespace strata
