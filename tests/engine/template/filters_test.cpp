// Tests of the built-in filters and tests; expected values are what Python's jinja2 prints
// (tojson: transformers' version, which does not HTML-escape).
#include <gtest/gtest.h>

#include "tests/engine/template/render_test_util.h"

namespace strata::tmpl {
namespace {

using testing_util::render;

TEST(Filters, TojsonMatchesPythonJsonDumps) {
  EXPECT_EQ(render(R"({{ {'b': [1, 2.0, none, true], 'a': 'é"\n<>&\''} | tojson }})"),
            R"({"b": [1, 2.0, null, true], "a": "é\"\n<>&'"})");
  EXPECT_EQ(render("{{ 'abc' | tojson }} {{ [] | tojson }} {{ {} | tojson }}"), R"("abc" [] {})");
  EXPECT_EQ(render("{{ {'z': 1, 'a': 2} | tojson(sort_keys=true) }} {{ '\xC3\xBC' | tojson(ensure_ascii=true) }}"),
            R"({"a": 2, "z": 1} "\u00fc")");
  EXPECT_EQ(render("{{ {'a': 1, 'b': 2} | tojson(separators=(',', ':')) }}"), R"({"a":1,"b":2})");
  EXPECT_EQ(render("{{ '\x01\x7f\xF0\x9F\x98\x8A' | tojson }} {{ '\xF0\x9F\x98\x8A' | tojson(ensure_ascii=true) }}"),
            "\"\\u0001\x7f\xF0\x9F\x98\x8A\" \"\\ud83d\\ude0a\"");
}

TEST(Filters, TojsonIndent) {
  EXPECT_EQ(render("{{ {'a': [1, {'b': none}]} | tojson(indent=2) }}"),
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": null\n    }\n  ]\n}");
  EXPECT_EQ(render("{{ [1, [2, []]] | tojson(indent='\\t') }}"), "[\n\t1,\n\t[\n\t\t2,\n\t\t[]\n\t]\n]");
}

TEST(Filters, TojsonRejectsUndefined) {
  EXPECT_NE(render("{{ nothing | tojson }}").find("not JSON serializable"), std::string::npos);
}

TEST(Filters, StringFilters) {
  EXPECT_EQ(
      render("{{ '  x  ' | trim }}|{{ 'xxhixx' | trim('x') }}|{{ 'hello world' | capitalize }}|{{ 'HELLO' | lower }}"),
      "x|hi|Hello world|hello");
  EXPECT_EQ(render("{{ 'a-b' | title }} {{ \"o'neil mc-d\" | title }} {{ 'Hello' | replace('l', 'L', 1) }} {{ 'aaa' | "
                   "replace('a', 'b') }}"),
            "A-B O'neil Mc-D HeLlo bbb");
  EXPECT_EQ(
      render("{{ 'x' | center(7) }}|{{ 'ab' | center(7) }}|{{ 'one two  three' | wordcount }}|{{ 'up' | upper }}"),
      "   x   |   ab  |3|UP");
  EXPECT_EQ(render("{{ 'Hi <b>\"&\\'' | e }} {{ 'x' | escape }} {{ '<b>' | safe }}"),
            "Hi &lt;b&gt;&#34;&amp;&#39; x <b>");
  EXPECT_EQ(render("{{ '%s and %s' | format('a', 'b') }} {{ '%(x)s!' | format(x=1) }}"), "a and b 1!");
}

TEST(Filters, Indent) {
  EXPECT_EQ(render("{{ 'line1\\nline2\\n\\nline4' | indent(2) }}"), "line1\n  line2\n\n  line4");
  EXPECT_EQ(render("{{ 'x' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(2, blank=true) }}|{{ 'a\\nb' | indent('> ') }}"),
            "  x|a\n  \n  b|a\n> b");
}

TEST(Filters, LengthCountFirstLast) {
  EXPECT_EQ(render("{{ [1, 2] | length }} {{ 'h\xC3\xA9' | count }} {{ {'a': 1} | length }} {{ nothing | length }}"),
            "2 2 1 0");
  EXPECT_EQ(render("{{ 'abc' | first }} {{ 'abc' | last }} {{ [] | first }}|{{ [3, 4] | last }}"), "a c |4");
}

TEST(Filters, DefaultAndItsAlias) {
  EXPECT_EQ(render("{{ nothing | default('dflt') }} {{ none | default('nd') }} {{ '' | default('empty', true) }}"),
            "dflt None empty");
  EXPECT_EQ(render("{{ 0 | default('d') }} {{ 0 | d('d', true) }} {{ nothing | d }}|"), "0 d |");
}

TEST(Filters, Conversions) {
  EXPECT_EQ(render("{{ '42' | int + 1 }} {{ '4.7' | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ 3.9 | int }} {{ ' 12 "
                   "' | int }}"),
            "43 4 0 7 3 12");
  EXPECT_EQ(render("{{ '1_000' | int }} {{ '0x1A' | int(base=16) }} {{ '2.5' | float }} {{ 3 | float }} {{ 'nan' | "
                   "float }} {{ 'x' | float }}"),
            "1000 26 2.5 3.0 nan 0.0");
  EXPECT_EQ(render("{{ 42 | string | length }} {{ none | string }} {{ true | string }} {{ 10 | string ~ '!' }}"),
            "2 None True 10!");
  EXPECT_EQ(render("{{ 'ab' | list }} {{ {'a': 1} | list }} {{ (1, 2) | list }}"), "['a', 'b'] ['a'] [1, 2]");
}

TEST(Filters, Numbers) {
  EXPECT_EQ(render("{{ -3 | abs }} {{ 12 | abs }} {{ -1.5 | abs }}"), "3 12 1.5");
  EXPECT_EQ(
      render(
          "{{ 2.5 | round }} {{ 3.5 | round }} {{ 2.675 | round(2) }} {{ 2.1 | round(0, 'ceil') }} {{ -2.5 | round }}"),
      "2.0 4.0 2.67 3.0 -2.0");
  EXPECT_EQ(render("{{ 5 | round }} {{ 7 | round(0, 'floor') }} {{ 1234 | round(-2) }}"), "5 7.0 1200");
  EXPECT_EQ(render("{{ [1, 2, 3] | sum }} {{ [{'v': 1.5}, {'v': 2}] | sum(attribute='v') }} {{ [3, 1, 2] | max }} {{ "
                   "[3, 1, 2] | min }}"),
            "6 3.5 3 1");
  EXPECT_EQ(render("{{ ['b', 'A', 'c'] | min }} {{ ['b', 'A', 'c'] | max(case_sensitive=true) }}"), "A c");
}

TEST(Filters, SortUniqueReverse) {
  EXPECT_EQ(render("{{ [3, 1, 2] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} {{ ['b', 'A', 'c'] | sort }}"),
            "[1, 2, 3] [3, 2, 1] ['A', 'b', 'c']");
  EXPECT_EQ(render("{{ [{'n': 'b'}, {'n': 'A'}] | sort(attribute='n') | map(attribute='n') | list }}"), "['A', 'b']");
  EXPECT_EQ(render("{{ ['a', 'A', 'b'] | unique | list }} {{ ['a', 'A', 'b'] | unique(case_sensitive=true) | list }}"),
            "['a', 'b'] ['a', 'A', 'b']");
  EXPECT_EQ(render("{{ 'abc' | reverse }} {{ [1, 2] | reverse | list }}"), "cba [2, 1]");
}

TEST(Filters, JoinAndMap) {
  EXPECT_EQ(render("{{ [1, 'a', none] | join('-') }} {{ [{'n': 1}, {'n': 2}] | join(',', attribute='n') }} {{ 'abc' | "
                   "join('.') }}"),
            "1-a-None 1,2 a.b.c");
  EXPECT_EQ(render("{{ [1, 2, 3] | map('string') | join(',') }} {{ ['a', 'b'] | map('upper') | list }}"),
            "1,2,3 ['A', 'B']");
  EXPECT_EQ(render("{{ [{'f': {'n': 'x'}}, {}] | map(attribute='f.n', default='?') | list }}"), "['x', '?']");
  EXPECT_EQ(render("{{ [[1, 'a'], [2, 'b']] | map(attribute=1) | list }}"), "['a', 'b']");
}

TEST(Filters, SelectRejectAndAttrVariants) {
  EXPECT_EQ(render("{{ [0, 1, '', 'x', none] | select | list }} {{ [1, 2, 3, 4] | reject('odd') | list }}"),
            "[1, 'x'] [2, 4]");
  EXPECT_EQ(render("{{ [{'a': 1}, {'a': 2}, {}] | selectattr('a', 'defined') | list }}"), "[{'a': 1}, {'a': 2}]");
  EXPECT_EQ(render("{{ [{'a': 1}, {'a': 2}] | rejectattr('a', 'equalto', 1) | list }}"), "[{'a': 2}]");
  EXPECT_EQ(render("{{ [{'role': 'user'}, {'role': 'tool'}] | selectattr('role', 'in', ['tool']) | list | length }}"),
            "1");
}

TEST(Filters, ItemsAndDictsort) {
  EXPECT_EQ(render("{{ {'a': 1} | items | list }} {{ nothing | items | list }}"), "[('a', 1)] []");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2} | dictsort }} {{ {'b': 1, 'a': 2} | dictsort(by='value') }}"),
            "[('a', 2), ('b', 1)] [('b', 1), ('a', 2)]");
}

TEST(Filters, UnknownFilterIsAnError) {
  EXPECT_NE(render("{{ 1 | no_such_filter }}").find("no filter named 'no_such_filter'"), std::string::npos);
}

TEST(Tests, TypeTests) {
  EXPECT_EQ(render("{{ none is none }} {{ 1 is number }} {{ true is number }} {{ 1.5 is float }} {{ 1 is integer }} {{ "
                   "true is integer }}"),
            "True True True True True False");
  EXPECT_EQ(render("{{ 'a' is string }} {{ {} is mapping }} {{ [] is iterable }} {{ 'x' is sequence }} {{ 1 is "
                   "iterable }} {{ none is mapping }}"),
            "True True True True False False");
  EXPECT_EQ(
      render("{{ true is true }} {{ 1 is true }} {{ false is false }} {{ true is boolean }} {{ range is callable }}"),
      "True False True True True");
  EXPECT_EQ(render("{{ x is defined }} {{ x is undefined }} {{ x is not defined }} {{ y is not none }}", R"({"y": 1})"),
            "False True True True");
}

TEST(Tests, ValueTests) {
  EXPECT_EQ(render("{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 5 is divisibleby(2) }}"),
            "True True True False");
  EXPECT_EQ(
      render(
          "{{ 1 is eq 1 }} {{ 2 is gt 1 }} {{ 2 is ge 3 }} {{ 'a' is in 'abc' }} {{ 1 is equalto 2 }} {{ 1 is ne 2 }}"),
      "True True False True False True");
  EXPECT_EQ(render("{{ 'abc' is lower }} {{ 'ABC' is upper }} {{ none is sameas none }} {{ 'upper' is filter }} {{ "
                   "'odd' is test }}"),
            "True True True True True");
}

}  // namespace
}  // namespace strata::tmpl
