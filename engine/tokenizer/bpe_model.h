// The BPE model of tokenizer.json ("model": {"type": "BPE"}): vocab, ranked merges,
// byte_fallback, unk_token/fuse_unk and ignore_merges.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/core/status.h"

namespace strata::tokenizer {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

struct BpeOptions {
  std::optional<std::string> unk_token;
  bool fuse_unk = false;
  bool byte_fallback = false;  // characters missing from the vocab become <0xXX> tokens
  bool ignore_merges = false;  // a word that is itself in the vocab is one token
};

class BpeModel {
 public:
  // `merges` are in rank order (first = applied first).
  static Result<std::unique_ptr<BpeModel>> create(StringMap<int32_t> vocab,
                                                  std::vector<std::pair<std::string, std::string>> merges,
                                                  BpeOptions options, const std::string& where);
  // From the "model" object of tokenizer.json; `where` is e.g. "tokenizer.json: model".
  static Result<std::unique_ptr<BpeModel>> parse(const nlohmann::json& spec, const std::string& where);
  ~BpeModel();

  // Appends the ids of one pre-tokenized word.
  void tokenize(std::string_view word, std::vector<int32_t>& ids) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // nullptr for an id the vocab does not have.
  const std::string* id_to_token(int32_t id) const;
  // Largest id + 1.
  int32_t vocab_size() const { return static_cast<int32_t>(id_to_token_.size()); }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  struct Cache;

  BpeModel();
  void merge_word(std::string_view word, std::vector<int32_t>& ids) const;
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }

  StringMap<int32_t> vocab_;
  std::vector<std::optional<std::string>> id_to_token_;
  std::unordered_map<uint64_t, Merge> merges_;
  BpeOptions options_;
  std::optional<int32_t> unk_id_;
  std::vector<int32_t> byte_token_ids_;  // 256 entries, -1 where <0xXX> is missing
  std::unique_ptr<Cache> cache_;
};

}  // namespace strata::tokenizer
