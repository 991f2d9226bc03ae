// Helpers shared by the tokenizer tests: temporary model folders and tiny tokenizer.json
// fixtures built in code.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/tokenizer/byte_level.h"

#include "tests/temp_dir.h"

namespace strata::tokenizer::testing {

// A fresh folder under the system temp dir, removed with everything in it at scope exit.
using strata::testing::TempDir;

// The code point of byte `b` in GPT-2's byte-level alphabet, UTF-8 encoded.
inline std::string byte_char(unsigned char b) { return byte_level_encode(std::string(1, static_cast<char>(b))); }

// A byte-level BPE tokenizer.json: ids 0..255 are the 256 byte characters (in byte order),
// then one id per merge result in merge order, then `added_tokens`.
inline nlohmann::json byte_level_bpe_json(const std::vector<std::pair<std::string, std::string>>& merges,
                                          const nlohmann::json& added_tokens = nlohmann::json::array()) {
  nlohmann::json vocab = nlohmann::json::object();
  int id = 0;
  for (int b = 0; b < 256; ++b) vocab[byte_char(static_cast<unsigned char>(b))] = id++;
  nlohmann::json merge_list = nlohmann::json::array();
  for (const auto& [left, right] : merges) {
    if (!vocab.contains(left + right)) vocab[left + right] = id++;
    merge_list.push_back(left + " " + right);
  }
  return {
      {"version", "1.0"},
      {"added_tokens", added_tokens},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
      {"post_processor",
       {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", merge_list}}},
  };
}

inline nlohmann::json added_token(int id, const std::string& content, bool special, bool normalized = false) {
  return {{"id", id},        {"content", content},       {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", normalized}, {"special", special}};
}

// Trains a small SentencePiece BPE model (byte_fallback, Llama-style <unk>/<s>/</s> at 0/1/2)
// into `dir`/tokenizer.model. Defined in sentencepiece_tokenizer_test.cpp.
void train_tiny_sentencepiece(const std::filesystem::path& dir);

}  // namespace strata::tokenizer::testing
