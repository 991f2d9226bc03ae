// Tests of the Python string helpers: float repr, json.dumps quoting, repr quoting,
// split/strip/replace on UTF-8 text.
#include "engine/template/py_string.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>

namespace strata::tmpl {
namespace {

TEST(PyString, FloatReprMatchesPython) {
  EXPECT_EQ(py_float_repr(1.0), "1.0");
  EXPECT_EQ(py_float_repr(0.5), "0.5");
  EXPECT_EQ(py_float_repr(-2.25), "-2.25");
  EXPECT_EQ(py_float_repr(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(py_float_repr(1e16), "1e+16");
  EXPECT_EQ(py_float_repr(1.5e16), "1.5e+16");
  EXPECT_EQ(py_float_repr(1e15), "1000000000000000.0");
  EXPECT_EQ(py_float_repr(1e-4), "0.0001");
  EXPECT_EQ(py_float_repr(1e-5), "1e-05");
  EXPECT_EQ(py_float_repr(1.2345678901234567e-300), "1.2345678901234568e-300");
  EXPECT_EQ(py_float_repr(123456789.123456789), "123456789.12345679");
  EXPECT_EQ(py_float_repr(-0.0), "-0.0");
  EXPECT_EQ(py_float_repr(INFINITY), "inf");
  EXPECT_EQ(py_float_repr(NAN), "nan");
}

TEST(PyString, FloatReprRoundTrips) {
  std::mt19937_64 rng(std::random_device{}());
  const uint64_t seed = rng();
  rng.seed(seed);
  for (int i = 0; i < 2000; ++i) {
    uint64_t bits = rng();
    double value;
    std::memcpy(&value, &bits, sizeof(value));
    if (!std::isfinite(value)) continue;
    const std::string text = py_float_repr(value);
    ASSERT_EQ(std::strtod(text.c_str(), nullptr), value) << text << " (seed " << seed << ")";
  }
}

TEST(PyString, JsonQuote) {
  EXPECT_EQ(json_quote("a\"b\\c\n\t\r\b\f", false), R"("a\"b\\c\n\t\r\b\f")");
  EXPECT_EQ(json_quote(std::string("\x01\x1f", 2), false), R"("\u0001\u001f")");
  EXPECT_EQ(json_quote("\xC3\xA9</>&'", false), "\"\xC3\xA9</>&'\"");
  EXPECT_EQ(json_quote("\xC3\xA9\x7f", true), R"("\u00e9\u007f")");
  EXPECT_EQ(json_quote("\xF0\x9F\x98\x8A", true), R"("\ud83d\ude0a")");
}

TEST(PyString, ReprQuotesLikePython) {
  EXPECT_EQ(py_repr_string("abc"), "'abc'");
  EXPECT_EQ(py_repr_string("it's"), "\"it's\"");
  EXPECT_EQ(py_repr_string("a'\""), "'a\\'\"'");
  EXPECT_EQ(py_repr_string("tab\there\n\\"), "'tab\\there\\n\\\\'");
  EXPECT_EQ(py_repr_string("\x01\xC3\xA9\xC2\xA0"), "'\\x01\xC3\xA9\\xa0'");
}

TEST(PyString, SplitAndStrip) {
  using V = std::vector<std::string>;
  EXPECT_EQ(py_split("  a b  c  ", std::nullopt, -1), (V{"a", "b", "c"}));
  EXPECT_EQ(py_split("  a b  c  ", std::nullopt, 1), (V{"a", "b  c  "}));
  EXPECT_EQ(py_rsplit("  a b  c  ", std::nullopt, 1), (V{"  a b", "c"}));
  EXPECT_EQ(py_split("a,b,,c", std::string(","), -1), (V{"a", "b", "", "c"}));
  EXPECT_EQ(py_rsplit("a,b,c", std::string(","), 1), (V{"a,b", "c"}));
  EXPECT_EQ(py_split("", std::nullopt, -1), V{});
  EXPECT_EQ(py_split("", std::string(","), -1), V{""});
  EXPECT_EQ(py_strip("\xE3\x80\x80 x\t\n", std::nullopt, true, true), "x");  // U+3000 is whitespace
  EXPECT_EQ(py_strip("xyhixy", std::string("yx"), true, false), "hixy");
  EXPECT_EQ(py_strip("\xC3\xA9x\xC3\xA9", std::string("\xC3\xA9"), true, true), "x");
}

TEST(PyString, ReplaceFindCount) {
  EXPECT_EQ(py_replace("abc", "", "-", -1), "-a-b-c-");
  EXPECT_EQ(py_replace("aaa", "a", "b", 2), "bba");
  EXPECT_EQ(py_find("\xC3\xA9"
                    "abc",
                    "b", false),
            2);
  EXPECT_EQ(py_find("abcabc", "bc", true), 4);
  EXPECT_EQ(py_count("aaaa", "aa"), 2);
  EXPECT_EQ(py_count("ab", ""), 3);
}

TEST(PyString, SplitlinesHandlesAllPythonLineBreaks) {
  using V = std::vector<std::string>;
  EXPECT_EQ(py_splitlines("a\nb\r\nc\rd\xE2\x80\xA8"
                          "e\n",
                          false),
            (V{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(py_splitlines("a\r\nb", true), (V{"a\r\n", "b"}));
}

TEST(PyString, CaseMapping) {
  EXPECT_EQ(py_upper("stra\xC3\x9F"
                     "e \xC3\xA9t\xC3\xA9"),
            "STRASSE \xC3\x89T\xC3\x89");
  EXPECT_EQ(py_lower("\xCE\xA3\xCE\x9F\xCE\xA6\xCE\x99\xCE\x91"), "\xCF\x83\xCE\xBF\xCF\x86\xCE\xB9\xCE\xB1");
  EXPECT_EQ(py_title("hello wORLD 1st"), "Hello World 1St");
  EXPECT_EQ(jinja_title("hello wORLD 1st (x)"), "Hello World 1st (X)");
  EXPECT_EQ(py_capitalize("hELLO"), "Hello");
}

}  // namespace
}  // namespace strata::tmpl
