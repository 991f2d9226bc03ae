// TokenTextDecoder: a token's text keeps the leading space a lone decode drops, so the texts of
// a sequence's tokens concatenate to what they add after other text.
#include "engine/tokenizer/token_text.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace strata {
namespace {

std::string golden_model(const char* name) {
  return std::string(STRATA_SOURCE_DIR) + "/tests/golden/models/" + name;
}

class TokenText : public ::testing::TestWithParam<const char*> {};

TEST_P(TokenText, TokensConcatenateToTheTextTheyAddAfterOtherText) {
  const std::string dir = golden_model(GetParam());
  if (!std::filesystem::is_directory(dir)) GTEST_SKIP() << "no golden checkpoint " << dir;
  auto tokenizer = load_tokenizer(dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().to_string();
  const Tokenizer& t = **tokenizer;
  const TokenTextDecoder texts(t);
  const auto ids = t.encode("The story goes there, and then it ends.", false);
  ASSERT_GE(ids.size(), 4u);
  // After the first token, the decode of the whole sequence grows by each token's text.
  const int32_t first[1] = {ids[0]};
  const std::string head = t.decode(first, false);
  std::string joined;
  for (size_t i = 1; i < ids.size(); ++i) joined += texts.text(ids[i]);
  EXPECT_EQ(head + joined, t.decode(ids, false));
  // The word after the first keeps its space.
  EXPECT_EQ(texts.text(ids[1]).front(), ' ') << "'" << texts.text(ids[1]) << "'";
}

INSTANTIATE_TEST_SUITE_P(GoldenTokenizers, TokenText,
                         ::testing::Values("llama_sp_tied", "mistral_sp_style", "qwen2_bpe", "llama3_bpe"));

}  // namespace
}  // namespace strata
