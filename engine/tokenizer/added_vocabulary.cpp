// Added-token splitting, following HF tokenizers' AddedVocabulary::extract_and_normalize:
// first tokens matched on the raw text, then the rest is normalized and tokens flagged
// `normalized` are matched on the normalized text.
#include "engine/tokenizer/added_vocabulary.h"

#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/normalizer.h"
#include "engine/tokenizer/utf8.h"

namespace strata::tokenizer {
namespace {

// Last code point before `end` (end > 0) and where it starts.
char32_t code_point_before(std::string_view text, size_t end, size_t& begin) {
  begin = end - 1;
  while (begin > 0 && (static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80) --begin;
  size_t pos = begin;
  return next_code_point(text, pos);
}

bool is_word_char(char32_t cp) { return cp == '_' || is_alphanumeric(cp); }

}  // namespace

void AddedVocabulary::Trie::insert(std::string_view key, int32_t token_index) {
  if (key.empty()) return;
  int32_t node = 0;
  for (const char c : key) {
    const auto byte = static_cast<unsigned char>(c);
    auto it = nodes[node].children.find(byte);
    if (it == nodes[node].children.end()) {
      nodes.push_back(Node{});
      it = nodes[node].children.emplace(byte, static_cast<int32_t>(nodes.size() - 1)).first;
    }
    node = it->second;
  }
  // An earlier token with the same content wins.
  if (nodes[node].token_index < 0) nodes[node].token_index = token_index;
  first_byte[static_cast<unsigned char>(key[0])] = true;
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& token = tokens_[i];
    index_by_id_[token.id] = i;
    id_by_content_.try_emplace(token.content, token.id);
    if (token.normalized) {
      std::string key = token.content;
      if (normalizer != nullptr) normalizer->normalize(key);
      normalized_trie_.insert(key, static_cast<int32_t>(i));
    } else {
      raw_trie_.insert(token.content, static_cast<int32_t>(i));
    }
  }
}

const AddedToken* AddedVocabulary::find(int32_t id) const {
  auto it = index_by_id_.find(id);
  return it == index_by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int32_t> AddedVocabulary::token_to_id(std::string_view content) const {
  auto it = id_by_content_.find(content);
  if (it == id_by_content_.end()) return std::nullopt;
  return it->second;
}

std::vector<AddedVocabulary::Match> AddedVocabulary::find_matches(std::string_view text, const Trie& trie) const {
  std::vector<Match> matches;
  if (trie.empty()) return matches;
  size_t consumed = 0;  // end of the previous match, stripped spaces included
  for (size_t pos = 0; pos < text.size();) {
    if (!trie.first_byte[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    // Longest token starting at pos.
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t i = pos; i < text.size(); ++i) {
      auto it = trie.nodes[node].children.find(static_cast<unsigned char>(text[i]));
      if (it == trie.nodes[node].children.end()) break;
      node = it->second;
      if (trie.nodes[node].token_index >= 0) best = trie.nodes[node].token_index, best_end = i + 1;
    }
    if (best < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[best];
    size_t begin = pos, end = best_end;
    // Matching resumes after the token whether or not it is kept (non-overlapping matches).
    pos = best_end;
    if (token.single_word) {
      size_t unused = 0;
      const bool word_before = begin > 0 && is_word_char(code_point_before(text, begin, unused));
      size_t after = end;
      const bool word_after = end < text.size() && is_word_char(next_code_point(text, after));
      if (word_before || word_after) continue;
    }
    if (token.lstrip) {
      size_t b = begin;
      while (b > consumed) {
        size_t prev = 0;
        if (!is_whitespace(code_point_before(text, b, prev))) break;
        b = prev;
      }
      begin = b;
    }
    if (token.rstrip) {
      while (end < text.size()) {
        size_t next = end;
        if (!is_whitespace(next_code_point(text, next))) break;
        end = next;
      }
      pos = std::max(pos, end);
    }
    matches.push_back({begin, end, best});
    consumed = end;
  }
  return matches;
}

std::vector<InputPiece> AddedVocabulary::split(std::string_view text, const Normalizer* normalizer) const {
  std::vector<InputPiece> pieces;
  // Text between tokens: normalized, then searched for normalized tokens.
  const auto add_text = [&](std::string_view raw, bool at_input_start) {
    if (raw.empty()) return;
    std::string normalized(raw);
    if (normalizer != nullptr) normalizer->normalize(normalized);
    if (normalized.empty()) return;
    size_t prev = 0;
    bool first = true;
    for (const Match& m : find_matches(normalized, normalized_trie_)) {
      if (prev < m.begin)
        pieces.push_back({normalized.substr(prev, m.begin - prev), std::nullopt, at_input_start && first});
      pieces.push_back({std::string(), tokens_[m.token_index].id, false});
      prev = m.end;
      first = false;
    }
    if (prev < normalized.size())
      pieces.push_back({normalized.substr(prev), std::nullopt, at_input_start && prev == 0});
  };

  size_t prev = 0;
  for (const Match& m : find_matches(text, raw_trie_)) {
    add_text(text.substr(prev, m.begin - prev), prev == 0);
    pieces.push_back({std::string(), tokens_[m.token_index].id, false});
    prev = m.end;
  }
  add_text(text.substr(prev), prev == 0);
  return pieces;
}

Result<std::vector<AddedToken>> parse_added_tokens(const Json& spec, const std::string& where) {
  std::vector<AddedToken> tokens;
  if (spec.is_null()) return tokens;
  if (!spec.is_array()) return invalid_argument(where + " must be an array");
  tokens.reserve(spec.size());
  for (size_t i = 0; i < spec.size(); ++i) {
    const Json& item = spec[i];
    const std::string label = where + "[" + std::to_string(i) + "]";
    if (!item.is_object()) return invalid_argument(label + " must be an object");
    AddedToken token;
    STRATA_ASSIGN_OR_RETURN(const int64_t id, read_int(item, "id", -1, label));
    if (id < 0 || id > INT32_MAX) return invalid_argument(label + ".id must be a non-negative integer");
    token.id = static_cast<int32_t>(id);
    STRATA_ASSIGN_OR_RETURN(token.content, read_string(item, "content", label));
    STRATA_ASSIGN_OR_RETURN(token.single_word, read_bool(item, "single_word", false, label));
    STRATA_ASSIGN_OR_RETURN(token.lstrip, read_bool(item, "lstrip", false, label));
    STRATA_ASSIGN_OR_RETURN(token.rstrip, read_bool(item, "rstrip", false, label));
    STRATA_ASSIGN_OR_RETURN(token.special, read_bool(item, "special", false, label));
    STRATA_ASSIGN_OR_RETURN(token.normalized, read_bool(item, "normalized", !token.special, label));
    tokens.push_back(std::move(token));
  }
  return tokens;
}

}  // namespace strata::tokenizer
