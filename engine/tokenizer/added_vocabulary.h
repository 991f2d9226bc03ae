// Added tokens of tokenizer.json ("added_tokens"): split out of the input before the model
// sees it, longest match first, with HF's lstrip/rstrip/single_word/normalized rules.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/core/status.h"
#include "engine/tokenizer/bpe_model.h"

namespace strata::tokenizer {

class Normalizer;

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// One piece of the input: either an added token or text the model tokenizes.
struct InputPiece {
  std::string text;              // normalized text; empty for tokens
  std::optional<int32_t> token;  // the added token's id
  bool at_input_start = false;
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  // `normalizer` (may be null) gives the normalized form under which tokens flagged
  // `normalized` are matched, as HF does.
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  // Splits `text` around added tokens, normalizing the text between them.
  std::vector<InputPiece> split(std::string_view text, const Normalizer* normalizer) const;

  const AddedToken* find(int32_t id) const;
  std::optional<int32_t> token_to_id(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // A byte trie over token contents for leftmost-longest matching.
  struct Trie {
    struct Node {
      std::unordered_map<unsigned char, int32_t> children;
      int32_t token_index = -1;  // index into tokens_
    };
    std::vector<Node> nodes{Node{}};
    bool first_byte[256] = {};
    void insert(std::string_view key, int32_t token_index);
    bool empty() const { return nodes.size() == 1; }
  };
  struct Match {
    size_t begin, end;
    int32_t token_index;
  };
  std::vector<Match> find_matches(std::string_view text, const Trie& trie) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> index_by_id_;
  StringMap<int32_t> id_by_content_;
  Trie raw_trie_;         // tokens with normalized == false, matched on the raw input
  Trie normalized_trie_;  // tokens with normalized == true, matched on normalized text
};

// Parses the "added_tokens" array; `where` is e.g. "tokenizer.json: added_tokens".
Result<std::vector<AddedToken>> parse_added_tokens(const nlohmann::json& spec, const std::string& where);

}  // namespace strata::tokenizer
