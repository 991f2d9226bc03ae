// Tests of whitespace control: {%- -%} {{- -}} {#- -#}, trim_blocks, lstrip_blocks (on by
// default, as transformers sets them; off as in plain jinja2), `+` modifiers, and the one
// trailing newline jinja2 drops.
#include <gtest/gtest.h>

#include "tests/engine/template/render_test_util.h"

namespace strata::tmpl {
namespace {

using testing_util::plain_jinja;
using testing_util::render;

TEST(Whitespace, TrimBlocksDropsTheNewlineAfterABlockTag) {
  EXPECT_EQ(render("{% if true %}\n  x\n{% endif %}\n"), "  x\n");
  EXPECT_EQ(render("{% if true %}\n  x\n{% endif %}\n", "{}", plain_jinja()), "\n  x\n");
}

TEST(Whitespace, TrimBlocksLeavesVariableTagsAlone) { EXPECT_EQ(render("{{ 'a' }}\n{{ 'b' }}\nc"), "a\nb\nc"); }

TEST(Whitespace, LstripBlocksStripsIndentBeforeBlockAndCommentTags) {
  EXPECT_EQ(render("  {% if true %}x{% endif %}  \nend"), "x  \nend");
  EXPECT_EQ(render("a\n  {{ 1 }}\n  {# c #}\nb"), "a\n  1\nb");
  EXPECT_EQ(render("a\n    {% if true %}\n    x\n    {% endif %}\nb"), "a\n    x\nb");
  EXPECT_EQ(render("  {% if true %}x{% endif %}", "{}", plain_jinja()), "  x");
}

TEST(Whitespace, LstripBlocksOnlyAppliesAtTheStartOfALine) {
  EXPECT_EQ(render("a  {% if true %}x{% endif %}"), "a  x");
  EXPECT_EQ(render("{% if true %}  {% endif %}|"), "  |");
}

TEST(Whitespace, MinusStripsAllWhitespaceIncludingNewlines) {
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(render("a \n\n {{- 'b' -}} \n\n c"), "abc");
  EXPECT_EQ(render("a\n  {#- comment -#}\n  b"), "ab");
  EXPECT_EQ(render("a {{- 5 - 3 -}} b"), "a2b");
}

TEST(Whitespace, PlusDisablesLstripAndTrim) {
  EXPECT_EQ(render("a\n  {%+ if true %}x{% endif %}"), "a\n  x");
  EXPECT_EQ(render("{% if true +%}\nx{% endif %}"), "\nx");
}

TEST(Whitespace, OneTrailingNewlineIsDropped) {
  EXPECT_EQ(render("x\n\n"), "x\n");
  EXPECT_EQ(render("x\n"), "x");
  ChatTemplateOptions keep;
  keep.keep_trailing_newline = true;
  EXPECT_EQ(render("x\n", "{}", keep), "x\n");
}

TEST(Whitespace, CarriageReturnsBecomeNewlines) {
  EXPECT_EQ(render("a\r\nb\rc"), "a\nb\nc");
  EXPECT_EQ(render("{% if true %}\r\nx{% endif %}"), "x");
}

TEST(Whitespace, RawBlocksAreNotInterpreted) {
  EXPECT_EQ(render("{% raw %}{{ x }} {% if %}{% endraw %}"), "{{ x }} {% if %}");
  EXPECT_EQ(render("a\n  {% raw -%}\n  {{ y }}\n  {%- endraw %}\nb"), "a\n{{ y }}b");
}

TEST(Whitespace, BracesInsideExpressionsDoNotEndTheTag) {
  EXPECT_EQ(render("{{ {'a': {'b': 1}} }}"), "{'a': {'b': 1}}");
  EXPECT_EQ(render("{{ '}}' ~ '%}' }}"), "}}%}");
}

}  // namespace
}  // namespace strata::tmpl
