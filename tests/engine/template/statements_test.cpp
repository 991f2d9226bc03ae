// Tests of statements: for loops and the loop object, if/elif/else, set and its scoping,
// namespace(), macros, filter and set blocks, with, break/continue, {% generation %}.
#include <gtest/gtest.h>

#include "tests/engine/template/render_test_util.h"

namespace strata::tmpl {
namespace {

using testing_util::render;

TEST(Statements, LoopVariables) {
  EXPECT_EQ(render("{% for i in [1,2,3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
                   "{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}"),
            "1032TrueFalse3;2121FalseFalse3;3210FalseTrue3;");
  EXPECT_EQ(render("{% for i in [1,2,3] %}{{ loop.revindex }}{{ loop.previtem }}{{ loop.nextitem }}|{% endfor %}"),
            "32|213|12|");
  EXPECT_EQ(render("{% for i in range(4) %}{{ loop.cycle('a', 'b', 'c') }}{% endfor %}"), "abca");
}

TEST(Statements, ForElseRunsWhenNothingIterated) {
  EXPECT_EQ(render("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for x in [1] if x > 5 %}a{% else %}filtered out{% endfor %}"), "filtered out");
}

TEST(Statements, LoopFilterRunsBeforeTheLoop) {
  EXPECT_EQ(render("{% for x in [1,2,3,4] if x is even %}{{ x }}/{{ loop.length }} {% endfor %}"), "2/2 4/2 ");
}

TEST(Statements, TupleUnpacking) {
  EXPECT_EQ(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"), "a=1;b=2;");
  EXPECT_EQ(render("{% for (a, b) in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}"), "37");
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}"), "12");
}

TEST(Statements, IterationOverDictsAndStrings) {
  EXPECT_EQ(render("{% for k in {'x': 1, 'y': 2} %}{{ k }}{% endfor %}{% for c in 'ab' %}[{{ c }}]{% endfor %}"),
            "xy[a][b]");
}

TEST(Statements, BreakAndContinue) {
  EXPECT_EQ(render("{% for x in [1,2,3,4] %}{% if x == 3 %}{% break %}{% endif %}"
                   "{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}"),
            "2");
}

TEST(Statements, NestedLoopsHaveTheirOwnLoopObject) {
  EXPECT_EQ(render("{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{% endfor %}{{ loop.index }};{% endfor %}"),
            "121;122;");
}

TEST(Statements, IfElifElse) {
  const char* tmpl =
      "{% for n in [1, 2, 3] %}{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %} {% endfor %}";
  EXPECT_EQ(render(tmpl), "one two many ");
}

TEST(Statements, SetInsideIfIsVisibleAfterIt) {
  EXPECT_EQ(render("{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}"), "2");
}

TEST(Statements, SetInsideALoopDoesNotLeakOrPersistAcrossIterations) {
  EXPECT_EQ(render("{% set c = 0 %}{% for i in range(3) %}{{ c }}{% set c = c + 1 %}{{ c }};{% endfor %}{{ c }}"),
            "01;01;01;0");
  EXPECT_EQ(render("{% for x in [1,2] %}{% set y = x %}{% endfor %}[{{ y }}]"), "[]");
}

TEST(Statements, NamespaceCarriesStateOutOfLoops) {
  EXPECT_EQ(
      render("{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"),
      "3");
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.found = false %}{% for m in ['a', 'b'] %}"
                   "{% if m == 'b' %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }}"),
            "True");
  EXPECT_EQ(render("{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns['a'] }}"), "121");
}

TEST(Statements, MacrosWithDefaultsVarargsAndKwargs) {
  EXPECT_EQ(render("{% macro m(a, b=a*2) %}{{ a }}-{{ b }}-{{ varargs }}-{{ kwargs }}{% endmacro %}"
                   "{{ m(1) }} {{ m(1, 5, 6, z=3) }}"),
            "1-2-()-{} 1-5-(6,)-{'z': 3}");
  EXPECT_EQ(render("{% macro greet(name) %}Hi {{ name }}{% endmacro %}{{ greet(name='Bo') | upper }}"), "HI BO");
}

TEST(Statements, MacrosSeeTemplateVariablesAndCanRecurse) {
  EXPECT_EQ(render("{% macro m() %}[{{ x }}]{% endmacro %}{% set x = 5 %}{{ m() }}"), "[5]");
  EXPECT_EQ(
      render("{% macro count(n) %}{{ n }}{% if n > 0 %}{{ count(n - 1) }}{% endif %}{% endmacro %}{{ count(3) }}"),
      "3210");
}

TEST(Statements, SetBlockAndFilterBlock) {
  EXPECT_EQ(render("{% set x %}block {{ 1 }}{% endset %}[{{ x }}]"), "[block 1]");
  EXPECT_EQ(render("{% set x | upper %}block{% endset %}[{{ x }}]"), "[BLOCK]");
  EXPECT_EQ(render("{% filter trim | upper %}   padded   {% endfilter %}|"), "PADDED|");
}

TEST(Statements, WithBlockScopesItsVariables) {
  EXPECT_EQ(render("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]"), "3[]");
}

TEST(Statements, GenerationTagRendersItsBody) {
  EXPECT_EQ(render("{% generation %}answer{% endgeneration %}"), "answer");
}

TEST(Statements, StrftimeNowUsesTheInjectedClock) {
  auto parsed = ChatTemplate::parse("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%-d %B') }}");
  ASSERT_TRUE(parsed.ok());
  RenderOptions options;
  options.now = [] {
    std::tm t{};
    t.tm_year = 125;
    t.tm_mon = 0;
    t.tm_mday = 5;
    t.tm_wday = 0;
    return t;
  };
  auto out = parsed->render("{}", options);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(*out, "05 Jan 2025|5 January");
}

}  // namespace
}  // namespace strata::tmpl
