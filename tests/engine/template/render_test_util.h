// Shared helpers for the template tests: render a template string in one call.
#pragma once

#include <string>
#include <string_view>

#include "engine/template/chat_template.h"

namespace strata::tmpl::testing_util {

// Renders with transformers' settings (or `options`); returns the output, or "ERROR: <message>".
inline std::string render(std::string_view source, std::string_view context_json = "{}",
                          const ChatTemplateOptions& options = {}) {
  auto parsed = ChatTemplate::parse(source, options);
  if (!parsed.ok()) return "ERROR: " + parsed.status().message();
  auto rendered = parsed->render(context_json);
  if (!rendered.ok()) return "ERROR: " + rendered.status().message();
  return *rendered;
}

// jinja2's own defaults: no trim_blocks, no lstrip_blocks.
inline ChatTemplateOptions plain_jinja() {
  ChatTemplateOptions options;
  options.trim_blocks = false;
  options.lstrip_blocks = false;
  return options;
}

}  // namespace strata::tmpl::testing_util
