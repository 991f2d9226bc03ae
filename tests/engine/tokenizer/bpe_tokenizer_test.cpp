// End-to-end tests of tokenizer.json loading: the whole encode/decode pipeline on small
// fixtures written by the tests, added tokens, post-processing, config rules and errors.
#include "engine/tokenizer/bpe_tokenizer.h"

#include <gtest/gtest.h>

#include "engine/tokenizer/tokenizer.h"
#include "tests/engine/tokenizer/tokenizer_test_util.h"

namespace strata::tokenizer {
namespace {

using nlohmann::json;
using testing::added_token;
using testing::byte_char;
using testing::byte_level_bpe_json;
using testing::TempDir;
using Ids = std::vector<int32_t>;

const std::string kG = byte_char(' ');  // "Ġ"

// Merges that build "hello" and "Ġworld".
const std::vector<std::pair<std::string, std::string>> kHelloWorldMerges = {
    {"h", "e"}, {"l", "l"},       {"he", "ll"}, {"hell", "o"},      {kG, "w"},
    {"o", "r"}, {kG + "w", "or"}, {"l", "d"},   {kG + "wor", "ld"},
};

std::unique_ptr<Tokenizer> load(const TempDir& dir) {
  auto tokenizer = load_tokenizer(dir.str());
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  return tokenizer.ok() ? std::move(tokenizer).value() : nullptr;
}

std::unique_ptr<Tokenizer> load_json(const json& tokenizer_json, const json& config = nullptr) {
  TempDir dir;
  dir.write("tokenizer.json", tokenizer_json.dump());
  if (!config.is_null()) dir.write("tokenizer_config.json", config.dump());
  return load(dir);
}

TEST(BpeTokenizer, EncodesWithMergesAndDecodesBack) {
  auto tok = load_json(byte_level_bpe_json(kHelloWorldMerges));
  ASSERT_TRUE(tok);
  const Ids ids = tok->encode("hello world", false);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(tok->id_to_token(ids[0]), "hello");
  EXPECT_EQ(tok->id_to_token(ids[1]), kG + "world");
  EXPECT_EQ(tok->token_to_id("hello"), ids[0]);
  EXPECT_EQ(tok->decode(ids, false), "hello world");
}

TEST(BpeTokenizer, RoundTripsArbitraryUtf8ThroughBytes) {
  auto tok = load_json(byte_level_bpe_json(kHelloWorldMerges));
  ASSERT_TRUE(tok);
  const std::string text = "h\xC3\xA9llo \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80\n\ttabs  and  spaces ";
  EXPECT_EQ(tok->decode(tok->encode(text, false), false), text);
  // Each 4-byte emoji without merges is 4 byte tokens.
  EXPECT_EQ(tok->encode("\xF0\x9F\x98\x80", false).size(), 4u);
}

TEST(BpeTokenizer, InvalidUtf8InputIsRepaired) {
  auto tok = load_json(byte_level_bpe_json({}));
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->decode(tok->encode("a\xFF"
                                    "b",
                                    false),
                        false),
            "a\xEF\xBF\xBD"
            "b");
}

TEST(BpeTokenizer, SplitsSpecialTokensOutOfTheText) {
  const json added = {added_token(300, "<|im_start|>", true), added_token(301, "<|im_end|>", true)};
  auto tok = load_json(byte_level_bpe_json(kHelloWorldMerges, added));
  ASSERT_TRUE(tok);
  const Ids ids = tok->encode("<|im_start|>hello<|im_end|> world", false);
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], 300);
  EXPECT_EQ(tok->id_to_token(ids[1]), "hello");
  EXPECT_EQ(ids[2], 301);
  EXPECT_EQ(tok->id_to_token(ids[3]), kG + "world");
  EXPECT_TRUE(tok->is_special(300));
  EXPECT_FALSE(tok->is_special(ids[1]));
  EXPECT_EQ(tok->vocab_size(), 302);
  EXPECT_EQ(tok->decode(ids, false), "<|im_start|>hello<|im_end|> world");
  EXPECT_EQ(tok->decode(ids, true), "hello world");
}

TEST(BpeTokenizer, AddedTokensMatchLongestFirst) {
  const json added = {added_token(300, "<a>", true), added_token(301, "<a><b>", true), added_token(302, "<b>", true)};
  auto tok = load_json(byte_level_bpe_json({}, added));
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("<a><b><b>", false), (Ids{301, 302}));
}

TEST(BpeTokenizer, NonSpecialAddedTokensSurviveSkipSpecial) {
  const json added = {added_token(300, "<think>", false, /*normalized=*/true)};
  auto tok = load_json(byte_level_bpe_json({}, added));
  ASSERT_TRUE(tok);
  const Ids ids = tok->encode("a<think>b", false);
  EXPECT_EQ(ids, (Ids{'a', 300, 'b'}));
  EXPECT_EQ(tok->decode(ids, true), "a<think>b");
  EXPECT_FALSE(tok->is_special(300));
}

TEST(BpeTokenizer, AddedTokenStripFlags) {
  json mask = added_token(300, "<mask>", true);
  mask["lstrip"] = true;
  mask["rstrip"] = true;
  auto tok = load_json(byte_level_bpe_json({}, json::array({mask})));
  ASSERT_TRUE(tok);
  // The spaces around the token are absorbed by it.
  EXPECT_EQ(tok->encode("a  <mask>  b", false), (Ids{'a', 300, 'b'}));
}

TEST(BpeTokenizer, AddedTokenSingleWord) {
  json word = added_token(300, "ok", false);
  word["single_word"] = true;
  auto tok = load_json(byte_level_bpe_json({}, json::array({word})));
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("ok", false), (Ids{300}));
  const Ids inside = tok->encode("look", false);
  EXPECT_EQ(std::count(inside.begin(), inside.end(), 300), 0);
}

TEST(BpeTokenizer, TemplateProcessingAddsBos) {
  json spec = byte_level_bpe_json(kHelloWorldMerges, json::array({added_token(300, "<|begin_of_text|>", true)}));
  spec["post_processor"] = json::parse(R"({"type":"Sequence","processors":[
      {"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true},
      {"type":"TemplateProcessing",
       "single":[{"SpecialToken":{"id":"<|begin_of_text|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],
       "pair":[],
       "special_tokens":{"<|begin_of_text|>":{"id":"<|begin_of_text|>","ids":[300],"tokens":["<|begin_of_text|>"]}}}]})");
  auto tok = load_json(spec, {{"bos_token", "<|begin_of_text|>"}, {"eos_token", nullptr}});
  ASSERT_TRUE(tok);
  const Ids with = tok->encode("hello", true);
  EXPECT_EQ(with.size(), 2u);
  EXPECT_EQ(with[0], 300);
  EXPECT_EQ(tok->encode("hello", false).size(), 1u);
  EXPECT_EQ(tok->bos_id(), 300);
  EXPECT_EQ(tok->eos_id(), std::nullopt);
  EXPECT_EQ(tok->decode(with, false), "<|begin_of_text|>hello");
  EXPECT_EQ(tok->decode(with, true), "hello");
}

TEST(BpeTokenizer, WithoutPostProcessorConfigAddsBosAndEos) {
  json spec = byte_level_bpe_json({}, {added_token(300, "<s>", true), added_token(301, "</s>", true)});
  spec["post_processor"] = nullptr;
  const json config = {{"bos_token", {{"content", "<s>"}, {"lstrip", false}}},
                       {"eos_token", "</s>"},
                       {"add_bos_token", true},
                       {"add_eos_token", true}};
  auto tok = load_json(spec, config);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("a", true), (Ids{300, 'a', 301}));
  EXPECT_EQ(tok->encode("", true), (Ids{300, 301}));
  EXPECT_EQ(tok->encode("", false), Ids{});
}

TEST(BpeTokenizer, ChatTemplateFromConfig) {
  auto plain = load_json(byte_level_bpe_json({}), {{"chat_template", "{{ messages }}"}});
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->chat_template(), "{{ messages }}");
  const json named = {
      {"chat_template", {{{"name", "tool_use"}, {"template", "T"}}, {{"name", "default"}, {"template", "D"}}}}};
  auto listed = load_json(byte_level_bpe_json({}), named);
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->chat_template(), "D");
  auto none = load_json(byte_level_bpe_json({}));
  ASSERT_TRUE(none);
  EXPECT_EQ(none->chat_template(), "");
}

TEST(BpeTokenizer, ChatTemplateFromJinjaFile) {
  TempDir dir;
  dir.write("tokenizer.json", byte_level_bpe_json({}).dump());
  dir.write("chat_template.jinja", "{% for m in messages %}{{ m.content }}{% endfor %}");
  auto tok = load(dir);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->chat_template(), "{% for m in messages %}{{ m.content }}{% endfor %}");
}

// A tokenizer.json like the one transformers writes when converting a Llama SentencePiece
// model: Prepend/Replace normalizer, no pre-tokenizer, byte_fallback BPE, Llama decoder.
json sentencepiece_style_json() {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  int id = 3;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = id++;
  }
  for (const char* piece : {"▁", "H", "e", "l", "o", "w", "r", "d", "▁H", "el", "▁Hel", "lo", "▁Hello", "▁w", "or",
                            "▁wor", "ld", "▁world"}) {
    vocab[piece] = id++;
  }
  const json merges = {"▁ H", "e l", "▁H el", "l o", "▁Hel lo", "▁ w", "o r", "▁w or", "l d", "▁wor ld"};
  json spec = json::parse(R"({
    "version": "1.0",
    "added_tokens": [
      {"id":0,"content":"<unk>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
      {"id":1,"content":"<s>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
      {"id":2,"content":"</s>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],
    "normalizer": {"type":"Sequence","normalizers":[
      {"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]},
    "pre_tokenizer": null,
    "post_processor": {"type":"TemplateProcessing",
      "single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],
      "pair":[], "special_tokens":{"<s>":{"id":"<s>","ids":[1],"tokens":["<s>"]}}},
    "decoder": {"type":"Sequence","decoders":[
      {"type":"Replace","pattern":{"String":"▁"},"content":" "},
      {"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]},
    "model": {"type":"BPE","dropout":null,"unk_token":"<unk>","continuing_subword_prefix":null,
      "end_of_word_suffix":null,"fuse_unk":true,"byte_fallback":true,"ignore_merges":false}
  })");
  spec["model"]["vocab"] = vocab;
  spec["model"]["merges"] = merges;
  return spec;
}

TEST(BpeTokenizer, SentencePieceStyleJson) {
  auto tok =
      load_json(sentencepiece_style_json(), {{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}});
  ASSERT_TRUE(tok);
  const Ids ids = tok->encode("Hello world!", true);
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(tok->id_to_token(ids[1]), "▁Hello");
  EXPECT_EQ(tok->id_to_token(ids[2]), "▁world");
  EXPECT_EQ(tok->id_to_token(ids[3]), "<0x21>");
  EXPECT_EQ(tok->decode(ids, true), "Hello world!");
  EXPECT_EQ(tok->decode(ids, false), "<s> Hello world!");
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  // Text after a special token is normalized on its own, so it gets its own "▁".
  const Ids after = tok->encode("</s>Hello", false);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(tok->id_to_token(after[1]), "▁Hello");
}

TEST(BpeTokenizer, LlamaClassRebuildsPostProcessorFromConfig) {
  const json config = {{"tokenizer_class", "LlamaTokenizerFast"},
                       {"bos_token", "<s>"},
                       {"eos_token", "</s>"},
                       {"add_bos_token", false},
                       {"add_eos_token", true}};
  auto tok = load_json(sentencepiece_style_json(), config);
  ASSERT_TRUE(tok);
  const Ids ids = tok->encode("Hello", true);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids.back(), 2);
}

TEST(BpeTokenizer, CleanUpTokenizationSpacesWhenConfigured) {
  json spec = byte_level_bpe_json({});
  auto tok = load_json(spec, {{"clean_up_tokenization_spaces", true}});
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->decode(tok->encode("it is n't so , right ?", false), false), "it isn't so, right?");
}

TEST(BpeTokenizer, EncodesLongPromptQuickly) {
  auto tok = load_json(byte_level_bpe_json(kHelloWorldMerges));
  ASSERT_TRUE(tok);
  std::string text;
  for (int i = 0; i < 8000; ++i) text += "hello world, number " + std::to_string(i) + ". ";
  const auto start = std::chrono::steady_clock::now();
  const Ids ids = tok->encode(text, false);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(ids.size(), 16000u);
  EXPECT_LT(seconds, 1.0);
  EXPECT_EQ(tok->decode(ids, false), text);
}

// ---- errors ----

std::string load_error(const TempDir& dir) {
  auto tokenizer = load_tokenizer(dir.str());
  EXPECT_FALSE(tokenizer.ok());
  return tokenizer.ok() ? std::string() : tokenizer.status().message();
}

TEST(LoadTokenizer, MissingFolder) {
  auto tokenizer = load_tokenizer("/nonexistent/strata/model");
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), StatusCode::kNotFound);
}

TEST(LoadTokenizer, FolderWithoutTokenizerFiles) {
  TempDir dir;
  EXPECT_NE(load_error(dir).find("neither tokenizer.json nor tokenizer.model"), std::string::npos);
}

TEST(LoadTokenizer, CorruptTokenizerJson) {
  TempDir dir;
  dir.write("tokenizer.json", "{\"model\": ");
  EXPECT_EQ(load_error(dir), "tokenizer.json: not valid JSON");
}

TEST(LoadTokenizer, UnsupportedModelType) {
  TempDir dir;
  dir.write("tokenizer.json", R"({"model": {"type": "WordPiece", "vocab": {}}})");
  EXPECT_EQ(load_error(dir), "tokenizer.json: model.type 'WordPiece' is not supported");
}

TEST(LoadTokenizer, MissingModel) {
  TempDir dir;
  dir.write("tokenizer.json", R"({"normalizer": null})");
  EXPECT_EQ(load_error(dir), "tokenizer.json: model is missing");
}

TEST(LoadTokenizer, BadAddedToken) {
  TempDir dir;
  json spec = byte_level_bpe_json({});
  spec["added_tokens"] = json::array({{{"id", 300}}});
  dir.write("tokenizer.json", spec.dump());
  EXPECT_EQ(load_error(dir), "tokenizer.json: added_tokens[0].content is missing");
}

TEST(LoadTokenizer, CorruptTokenizerConfig) {
  TempDir dir;
  dir.write("tokenizer.json", byte_level_bpe_json({}).dump());
  dir.write("tokenizer_config.json", "not json");
  EXPECT_EQ(load_error(dir), "tokenizer_config.json: not valid JSON");
}

TEST(LoadTokenizer, ConfigTokenOfWrongType) {
  TempDir dir;
  dir.write("tokenizer.json", byte_level_bpe_json({}).dump());
  dir.write("tokenizer_config.json", R"({"eos_token": 5})");
  EXPECT_NE(load_error(dir).find("tokenizer_config.json: eos_token must be a string"), std::string::npos);
}

TEST(LoadTokenizer, ConfigTokenNotInVocab) {
  TempDir dir;
  dir.write("tokenizer.json", byte_level_bpe_json({}).dump());
  dir.write("tokenizer_config.json", R"({"bos_token": "<nope>"})");
  EXPECT_EQ(load_error(dir), "tokenizer_config.json: bos_token '<nope>' is not in the vocabulary of tokenizer.json");
}

TEST(LoadTokenizer, CorruptSentencePieceModel) {
  TempDir dir;
  dir.write("tokenizer.model", "definitely not a protobuf");
  EXPECT_NE(load_error(dir).find("tokenizer.model: cannot load SentencePiece model"), std::string::npos);
}

}  // namespace
}  // namespace strata::tokenizer
