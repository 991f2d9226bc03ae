// Tests of error reporting: syntax errors name line and column, raise_exception() passes its
// message through unchanged, runtime errors name the line, bad contexts are rejected.
#include <gtest/gtest.h>

#include "tests/engine/template/render_test_util.h"

namespace strata::tmpl {
namespace {

using testing_util::render;

Status parse_error(std::string_view source) {
  auto parsed = ChatTemplate::parse(source);
  return parsed.ok() ? Status() : parsed.status();
}

Status render_error(std::string_view source, std::string_view context_json = "{}") {
  auto parsed = ChatTemplate::parse(source);
  if (!parsed.ok()) return parsed.status();
  auto rendered = parsed->render(context_json);
  return rendered.ok() ? Status() : rendered.status();
}

TEST(Errors, SyntaxErrorNamesLineAndColumn) {
  const Status status = parse_error("line one\n{% if x %}\n{{ 1 + }}\n{% endif %}");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "chat template: syntax error at line 3, column 8: unexpected 'end of print statement'");
}

TEST(Errors, UnclosedBlockSaysWhatWasExpected) {
  EXPECT_EQ(
      parse_error("{% for x in y %}\nno end").message(),
      "chat template: syntax error at line 2, column 7: unexpected end of template; looking for 'endfor' or 'else'");
}

TEST(Errors, UnknownAndUnsupportedTags) {
  EXPECT_EQ(parse_error("ok\n  {% foo %}").message(),
            "chat template: syntax error at line 2, column 6: unknown tag 'foo'");
  EXPECT_EQ(parse_error("{% include 'x.jinja' %}").message(),
            "chat template: syntax error at line 1, column 4: tag 'include' is not supported");
  EXPECT_EQ(parse_error("{% endif %}").message(),
            "chat template: syntax error at line 1, column 4: unknown tag 'endif'");
}

TEST(Errors, LexicalErrors) {
  EXPECT_EQ(parse_error("{{ 'abc }}").message(),
            "chat template: syntax error at line 1, column 4: unterminated string literal");
  EXPECT_EQ(parse_error("{# never closed").message(),
            "chat template: syntax error at line 1, column 1: Missing end of comment tag");
  EXPECT_EQ(parse_error("{{ a ] }}").message(), "chat template: syntax error at line 1, column 6: unexpected ']'");
  EXPECT_EQ(parse_error("{{ a $ b }}").message(),
            "chat template: syntax error at line 1, column 6: unexpected char '$'");
}

TEST(Errors, BreakOutsideALoop) {
  EXPECT_EQ(parse_error("{% break %}").message(),
            "chat template: syntax error at line 1, column 4: 'break' outside of a loop");
}

TEST(Errors, ColumnsCountCodePoints) {
  EXPECT_EQ(parse_error("\xC3\xA9\xC3\xA9{{ ) }}").message(),
            "chat template: syntax error at line 1, column 6: unexpected ')'");
}

TEST(Errors, RaiseExceptionPassesItsMessageThrough) {
  const Status status = render_error(
      "{% for m in messages %}\n{% if m.role == 'bad' %}{{ raise_exception('Conversation roles must alternate!') }}"
      "{% endif %}{% endfor %}",
      R"({"messages": [{"role": "bad"}]})");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "Conversation roles must alternate!");
}

TEST(Errors, RaiseExceptionInsideAMacro) {
  EXPECT_EQ(
      render_error("{% macro check(x) %}{% if not x %}{{ raise_exception('empty: ' ~ x) }}{% endif %}{% endmacro %}"
                   "{{ check('') }}")
          .message(),
      "empty: ");
}

TEST(Errors, RuntimeErrorsNameTheLine) {
  EXPECT_EQ(render_error("a\n\n{{ 1 / 0 }}").message(), "chat template: line 3: division by zero");
  EXPECT_EQ(render_error("{% for x in 5 %}{% endfor %}").message(),
            "chat template: line 1: 'int' object is not iterable");
  EXPECT_EQ(render_error("{{ 'a' + 1 }}").message(),
            "chat template: line 1: can only concatenate str (not \"int\") to str");
  EXPECT_EQ(render_error("{{ 1 < 'a' }}").message(),
            "chat template: line 1: '<' not supported between instances of 'int' and 'str'");
}

TEST(Errors, ArithmeticOnUndefinedFails) {
  EXPECT_EQ(render_error("{{ x + 1 }}").message(), "chat template: line 1: 'x' is undefined");
  EXPECT_EQ(render_error("{{ m.missing + 1 }}", R"({"m": {}})").message(),
            "chat template: line 1: 'dict object' has no attribute 'missing'");
  EXPECT_EQ(render_error("{{ nothing() }}").message(), "chat template: line 1: 'nothing' is undefined");
}

TEST(Errors, SandboxRefusesMutation) {
  EXPECT_NE(render_error("{{ messages.append(1) }}", R"({"messages": []})").message().find("unsafe"),
            std::string::npos);
}

TEST(Errors, NamespaceAssignmentNeedsANamespace) {
  EXPECT_EQ(render_error("{% set d = {} %}{% set d.x = 1 %}").message(),
            "chat template: line 1: cannot assign attribute on non-namespace object");
}

TEST(Errors, RunawayRecursionAndRangesAreBounded) {
  EXPECT_NE(render_error("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").message().find("recursion"),
            std::string::npos);
  EXPECT_NE(render_error("{{ range(1000000) | length }}").message().find("Range too big"), std::string::npos);
}

// Found by tests/fuzz/chat_template_fuzz.cpp: each macro level holding a deep expression
// overflowed the native stack before the macro depth limit was reached.
TEST(Errors, DeepExpressionsInsideRecursiveMacrosAreBounded) {
  std::string inner = "f(n + 1)";
  for (int i = 0; i < 250; ++i) inner = "('x' ~ " + inner + ")";
  const std::string source = "{% macro f(n) %}{{ " + inner + " }}{% endmacro %}{{ f(0) }}";
  EXPECT_NE(render_error(source).message().find("recursion depth"), std::string::npos);
  EXPECT_NE(render_error("{% macro f(n) %}{% for x in [1] %}{% if true %}{{ 'a' ~ ('b' ~ f(n + 1)) }}{% endif %}"
                         "{% endfor %}{% endmacro %}{{ f(0) }}")
                .message()
                .find("recursion depth"),
            std::string::npos);
}

// Found by the fuzzer: a tuple's text form doubles its escapes on every pass, so this loop's
// string grew exponentially with no bound.
TEST(Errors, ExponentialStringGrowthIsBounded) {
  const Status status = render_error(
      "{%- set ns = namespace(s='') -%}{%- for c in 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' -%}"
      "{%- set ns.s = ns.s ~ c, -%}{%- endfor -%}{{ ns.s }}");
  EXPECT_NE(status.message().find("exceed"), std::string::npos) << status.message();
}

// Found by the fuzzer (LeakSanitizer, in the ASan pass): a namespace stored in itself is a
// reference cycle; render() breaks it.
TEST(Errors, NamespaceStoredInItselfRendersAndIsFreed) {
  EXPECT_EQ(render("{%- set ns = namespace(s='') -%}{%- set ns.s = ns -%}{%- set ns.t = 1 -%}{{ ns.t }}"), "1");
}

TEST(Errors, ContextMustBeAJsonObject) {
  auto parsed = ChatTemplate::parse("x");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->render("[1, 2]").status().message(), "chat template context must be a JSON object");
  const Status bad_json = parsed->render("{\"a\": ").status();
  EXPECT_EQ(bad_json.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_json.message().find("not valid JSON"), std::string::npos);
}

TEST(Errors, DeeplyNestedTemplatesAreRejected) {
  std::string ifs;
  for (int i = 0; i < 1000; ++i) ifs += "{% if true %}";
  EXPECT_NE(parse_error(ifs).message().find("nested too deeply"), std::string::npos);
  EXPECT_NE(
      parse_error("{{ " + std::string(2000, '[') + std::string(2000, ']') + " }}").message().find("nested too deeply"),
      std::string::npos);
}

TEST(Errors, DeeplyNestedContextIsRejected) {
  auto parsed = ChatTemplate::parse("x");
  ASSERT_TRUE(parsed.ok());
  const std::string deep = "{\"a\": " + std::string(5000, '[') + std::string(5000, ']') + "}";
  EXPECT_NE(parsed->render(deep).status().message().find("nests deeper"), std::string::npos);
}

}  // namespace
}  // namespace strata::tmpl
