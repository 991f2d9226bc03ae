// ChatPromptRenderer: OpenAI chat messages -> prompt text, through the checkpoint's chat
// template (tokenizer_config.json's chat_template, rendered by engine/template) or, when the
// checkpoint has none, a ChatML fallback:
//   <|im_start|>{role}\n{content}<|im_end|>\n ... <|im_start|>assistant\n
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/core/status.h"
#include "engine/tokenizer/tokenizer.h"

namespace strata {

struct ChatRenderRequest {
  nlohmann::json messages;  // normalized: every content is a string (or null)
  bool add_generation_prompt = true;
  bool continue_final_message = false;
  nlohmann::json tools;            // null when absent
  nlohmann::json template_kwargs;  // extra template variables (chat_template_kwargs), object or null
};

class ChatPromptRenderer {
 public:
  // `template_override`: a template text that replaces the checkpoint's (empty: none).
  static Result<std::unique_ptr<ChatPromptRenderer>> create(const Tokenizer& tokenizer,
                                                            const std::string& template_override);
  ~ChatPromptRenderer();

  bool uses_fallback() const { return fallback_; }
  // The prompt text; an invalid conversation or a template error is invalid_argument.
  Result<std::string> render(const ChatRenderRequest& request) const;

  struct Compiled;

 private:
  ChatPromptRenderer() = default;
  Result<std::string> render_fallback(const ChatRenderRequest& request) const;

  bool fallback_ = true;
  std::string bos_token_;
  std::string eos_token_;
  std::unique_ptr<Compiled> compiled_;
};

// Checks OpenAI `messages` and flattens content parts ([{type: "text", text}]) into strings
// joined by "\n". Returns invalid_argument naming the offending message.
Result<nlohmann::json> normalize_chat_messages(const nlohmann::json& messages);

}  // namespace strata
