// Tests of the public ChatTemplate API: parse once and render many times, render_chat with
// the variables transformers passes, chat_messages_to_json, the lexer options.
#include "engine/template/chat_template.h"

#include <gtest/gtest.h>

namespace strata::tmpl {
namespace {

constexpr std::string_view kChatMl =
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

TEST(ChatTemplate, ParsesOnceAndRendersManyContexts) {
  auto parsed = ChatTemplate::parse(kChatMl);
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  auto first = parsed->render(R"({"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": true})");
  auto second = parsed->render(R"({"messages": [{"role": "user", "content": "yo"}], "add_generation_prompt": false})");
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(*first, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(*second, "<|im_start|>user\nyo<|im_end|>\n");
}

TEST(ChatTemplate, RenderChatPassesTransformersVariables) {
  ChatRenderInput input;
  input.messages_json = R"([{"role": "user", "content": "hi"}])";
  input.bos_token = "<s>";
  input.eos_token = "</s>";
  input.extra_vars_json = R"({"enable_thinking": false})";
  auto out = render_chat(
      "{{ bos_token }}|{{ eos_token }}|{{ tools is none }}|{{ documents is none }}|{{ add_generation_prompt }}|"
      "{{ enable_thinking }}|{{ messages | length }}",
      input);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(*out, "<s>|</s>|True|True|True|False|1");
}

TEST(ChatTemplate, RenderChatPositionalConvenience) {
  auto out = render_chat(kChatMl, R"([{"role": "user", "content": "hi"}])", false, "<s>", "</s>");
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(*out, "<|im_start|>user\nhi<|im_end|>\n");
}

TEST(ChatTemplate, RenderChatLeavesMissingSpecialTokensUndefined) {
  ChatRenderInput input;
  input.tools_json = R"([{"type": "function", "function": {"name": "f"}}])";
  auto out = render_chat("{{ bos_token is defined }}|{{ tools[0].function.name }}", input);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(*out, "False|f");
}

TEST(ChatTemplate, ExtraVariablesOverrideDefaults) {
  ChatRenderInput input;
  input.add_generation_prompt = true;
  input.extra_vars_json = R"({"add_generation_prompt": false})";
  auto out = render_chat("{{ add_generation_prompt }}", input);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "False");
}

TEST(ChatTemplate, MessagesToJson) {
  std::vector<ChatMessage> messages = {
      {"system", "Be \"brief\".", ""},
      {"assistant", "", R"({"content": null, "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]})"},
      {"tool", "42", R"({"tool_call_id": "abc"})"},
  };
  auto json = chat_messages_to_json(messages);
  ASSERT_TRUE(json.ok()) << json.status().to_string();
  EXPECT_EQ(*json,
            R"([{"role":"system","content":"Be \"brief\"."},)"
            R"({"role":"assistant","content":null,"tool_calls":[{"function":{"name":"f","arguments":{"x":1}}}]},)"
            R"({"role":"tool","content":"42","tool_call_id":"abc"}])");
  ChatRenderInput input;
  input.messages_json = *json;
  auto out =
      render_chat("{% for m in messages %}{{ m.role }}:{{ m.content }}:{{ m.tool_call_id }};{% endfor %}", input);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "system:Be \"brief\".:;assistant:None:;tool:42:abc;");
}

TEST(ChatTemplate, MessagesToJsonRejectsBadExtraJson) {
  auto json = chat_messages_to_json({{"user", "hi", "[1]"}});
  EXPECT_FALSE(json.ok());
}

TEST(ChatTemplate, ContentAsAListOfParts) {
  auto parsed = ChatTemplate::parse(
      "{% for m in messages %}{% if m.content is string %}{{ m.content }}{% else %}"
      "{% for p in m.content if p.type == 'text' %}{{ p.text }}{% endfor %}{% endif %}{% endfor %}");
  ASSERT_TRUE(parsed.ok());
  auto out = parsed->render(
      R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"}]}]})");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "ab");
}

TEST(ChatTemplate, JsonNumbersKeepPythonTypes) {
  auto parsed = ChatTemplate::parse("{{ i }} {{ f }} {{ big }} {{ i is integer }} {{ f is float }} {{ obj }}");
  ASSERT_TRUE(parsed.ok());
  auto out = parsed->render(R"({"i": 3, "f": 3.0, "big": 1e100, "obj": {"z": 1, "a": [true, null]}})");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "3 3.0 1e+100 True True {'z': 1, 'a': [True, None]}");
}

TEST(ChatTemplate, RepeatedJsonKeysKeepFirstPositionAndLastValue) {
  auto parsed = ChatTemplate::parse("{{ d }}");
  ASSERT_TRUE(parsed.ok());
  auto out = parsed->render(R"({"d": {"a": 1, "b": 2, "a": 3}})");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "{'a': 3, 'b': 2}");  // json.loads
}

TEST(ChatTemplate, OptionsSelectJinjaDefaults) {
  ChatTemplateOptions jinja_defaults;
  jinja_defaults.trim_blocks = false;
  jinja_defaults.lstrip_blocks = false;
  auto parsed = ChatTemplate::parse("  {% if true %}\nx\n  {% endif %}\n", jinja_defaults);
  ASSERT_TRUE(parsed.ok());
  auto out = parsed->render("{}");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "  \nx\n  ");
}

}  // namespace
}  // namespace strata::tmpl
