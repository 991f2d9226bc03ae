// Renders every fixture in tests/engine/template/fixtures/cases.json and compares the output,
// byte for byte, with what Python's jinja2 produced (make_expected.py, transformers' settings).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "engine/template/chat_template.h"

namespace strata::tmpl {
namespace {

using Json = nlohmann::ordered_json;

const std::filesystem::path kFixtures = std::filesystem::path(STRATA_SOURCE_DIR) / "tests/engine/template/fixtures";

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The moment make_expected.py gives strftime_now: Friday 2024-07-26 14:30:05.
std::tm fixed_now() {
  std::tm t{};
  t.tm_year = 2024 - 1900;
  t.tm_mon = 6;
  t.tm_mday = 26;
  t.tm_hour = 14;
  t.tm_min = 30;
  t.tm_sec = 5;
  t.tm_wday = 5;
  t.tm_yday = 207;
  return t;
}

struct FixtureCase {
  std::string name;
  std::string template_file;
  std::string context_json;
};

std::vector<FixtureCase> load_cases() {
  // Runs during static initialization (test discovery), so a broken manifest must not throw:
  // it yields no cases and CoverAtLeastTwelveTemplateMessagePairs fails instead.
  const Json manifest = Json::parse(read_file(kFixtures / "cases.json"), nullptr, /*allow_exceptions=*/false);
  if (manifest.is_discarded() || !manifest.contains("cases")) return {};
  std::vector<FixtureCase> cases;
  for (const Json& c : manifest["cases"]) {
    const Json& spec = manifest["templates"][c["template"].get<std::string>()];
    Json variables = manifest["defaults"];
    const auto merge = [&](const Json& more) {
      for (const auto& [key, value] : more.items()) variables[key] = value;
    };
    if (spec.contains("vars")) merge(spec["vars"]);
    const Json context =
        Json::parse(read_file(kFixtures / "contexts" / (c["context"].get<std::string>() + ".json")), nullptr, false);
    if (context.is_object()) merge(context);
    if (c.contains("vars")) merge(c["vars"]);
    FixtureCase fixture;
    fixture.name = c["template"].get<std::string>() + "__" + c.value("name", c["context"].get<std::string>());
    fixture.template_file = spec["file"].get<std::string>();
    fixture.context_json = context.is_object() ? variables.dump() : "unreadable context file";
    cases.push_back(std::move(fixture));
  }
  return cases;
}

// gtest prints this instead of the struct's bytes when a case fails.
void PrintTo(const FixtureCase& c, std::ostream* os) { *os << c.name; }

class ChatTemplateFixture : public testing::TestWithParam<FixtureCase> {};

TEST_P(ChatTemplateFixture, MatchesJinja2) {
  const FixtureCase& c = GetParam();
  const std::filesystem::path expected_text = kFixtures / "expected" / (c.name + ".txt");
  const std::filesystem::path expected_error = kFixtures / "expected" / (c.name + ".error");
  ASSERT_TRUE(std::filesystem::exists(expected_text) || std::filesystem::exists(expected_error))
      << "no expected output for " << c.name << "; run /usr/bin/python3 tests/engine/template/make_expected.py";

  auto parsed = ChatTemplate::parse(read_file(kFixtures / "templates" / c.template_file));
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  RenderOptions options;
  options.now = fixed_now;
  auto rendered = parsed->render(c.context_json, options);

  if (std::filesystem::exists(expected_error)) {
    ASSERT_FALSE(rendered.ok()) << "expected raise_exception, got output:\n" << *rendered;
    EXPECT_EQ(rendered.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(rendered.status().message(), read_file(expected_error));
    return;
  }
  ASSERT_TRUE(rendered.ok()) << rendered.status().to_string();
  EXPECT_EQ(*rendered, read_file(expected_text));
}

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ChatTemplateFixture);
INSTANTIATE_TEST_SUITE_P(Fixtures, ChatTemplateFixture, testing::ValuesIn(load_cases()),
                         [](const testing::TestParamInfo<FixtureCase>& info) { return info.param.name; });

TEST(ChatTemplateFixtures, CoverAtLeastTwelveTemplateMessagePairs) { EXPECT_GE(load_cases().size(), 12u); }

}  // namespace
}  // namespace strata::tmpl
