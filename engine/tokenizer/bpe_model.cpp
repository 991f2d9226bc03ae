// BPE merging with a priority queue over a linked list of symbols: repeatedly merge the
// adjacent pair of lowest merge rank, leftmost first (the order HF tokenizers' Word::merge_all
// uses), in O(n log n) so a 60 KB "word" from a pre-tokenizer-less model stays fast.
#include "engine/tokenizer/bpe_model.h"

#include <cstdio>
#include <mutex>
#include <queue>
#include <shared_mutex>

#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/utf8.h"

namespace strata::tokenizer {
namespace {

constexpr size_t kCacheCapacity = 20000;  // words; beyond it new words are not cached
constexpr size_t kMaxCachedWordBytes = 256;

}  // namespace

struct BpeModel::Cache {
  mutable std::shared_mutex mutex;
  StringMap<std::vector<int32_t>> words;
};

BpeModel::BpeModel() : cache_(std::make_unique<Cache>()) {}
BpeModel::~BpeModel() = default;

Result<std::unique_ptr<BpeModel>> BpeModel::create(StringMap<int32_t> vocab,
                                                   std::vector<std::pair<std::string, std::string>> merges,
                                                   BpeOptions options, const std::string& where) {
  std::unique_ptr<BpeModel> model(new BpeModel());
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab) {
    if (id < 0) return invalid_argument(where + ".vocab['" + token + "'] has negative id " + std::to_string(id));
    max_id = std::max(max_id, id);
  }
  model->id_to_token_.resize(static_cast<size_t>(max_id + 1));
  for (const auto& [token, id] : vocab) model->id_to_token_[id] = token;
  model->vocab_ = std::move(vocab);

  model->merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const std::string label = where + ".merges[" + std::to_string(rank) + "] ('" + left + "', '" + right + "')";
    auto left_id = model->token_to_id(left);
    auto right_id = model->token_to_id(right);
    auto new_id = model->token_to_id(left + right);
    if (!left_id || !right_id) return invalid_argument(label + ": a part is not in the vocab");
    if (!new_id) return invalid_argument(label + ": '" + left + right + "' is not in the vocab");
    // The first occurrence of a pair defines its rank.
    model->merges_.try_emplace(pair_key(*left_id, *right_id), Merge{static_cast<int32_t>(rank), *new_id});
  }

  if (options.unk_token) {
    model->unk_id_ = model->token_to_id(*options.unk_token);
    if (!model->unk_id_) return invalid_argument(where + ".unk_token '" + *options.unk_token + "' is not in the vocab");
  }
  model->byte_token_ids_.assign(256, -1);
  if (options.byte_fallback) {
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      if (auto id = model->token_to_id(name)) model->byte_token_ids_[b] = *id;
    }
  }
  model->options_ = std::move(options);
  return model;
}

Result<std::unique_ptr<BpeModel>> BpeModel::parse(const Json& spec, const std::string& where) {
  STRATA_ASSIGN_OR_RETURN(const std::string type, read_type(spec, where));
  if (type != "BPE") return unsupported_type(where, type);

  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    STRATA_ASSIGN_OR_RETURN(auto value, read_optional_string(spec, key, where));
    if (value && !value->empty()) {
      return unimplemented(field_path(where, key) + " '" + *value + "' is not supported (only null)");
    }
  }
  if (auto it = spec.find("dropout");
      it != spec.end() && !it->is_null() && !(it->is_number() && it->get<double>() == 0.0)) {
    return unimplemented(where + ".dropout " + it->dump() + " is not supported (only null)");
  }

  auto vocab_it = spec.find("vocab");
  if (vocab_it == spec.end() || !vocab_it->is_object()) return invalid_argument(where + ".vocab must be an object");
  StringMap<int32_t> vocab;
  vocab.reserve(vocab_it->size());
  for (auto it = vocab_it->begin(); it != vocab_it->end(); ++it) {
    if (!it.value().is_number_integer()) {
      return invalid_argument(where + ".vocab['" + it.key() + "'] must be an integer id");
    }
    vocab.emplace(it.key(), it.value().get<int32_t>());
  }

  std::vector<std::pair<std::string, std::string>> merges;
  if (auto merges_it = spec.find("merges"); merges_it != spec.end() && !merges_it->is_null()) {
    if (!merges_it->is_array()) return invalid_argument(where + ".merges must be an array");
    merges.reserve(merges_it->size());
    for (size_t i = 0; i < merges_it->size(); ++i) {
      const Json& merge = (*merges_it)[i];
      const std::string label = where + ".merges[" + std::to_string(i) + "]";
      if (merge.is_string()) {
        // "left right": the parts are separated by the first space.
        const std::string& line = merge.get_ref<const std::string&>();
        const size_t space = line.find(' ');
        if (space == std::string::npos || space == 0 || space + 1 == line.size()) {
          return invalid_argument(label + " '" + line + "' is not two tokens separated by a space");
        }
        merges.emplace_back(line.substr(0, space), line.substr(space + 1));
      } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
        merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
      } else {
        return invalid_argument(label + " must be a string \"a b\" or a pair [\"a\", \"b\"], not " + merge.dump());
      }
    }
  }

  BpeOptions options;
  STRATA_ASSIGN_OR_RETURN(options.unk_token, read_optional_string(spec, "unk_token", where));
  STRATA_ASSIGN_OR_RETURN(options.fuse_unk, read_bool(spec, "fuse_unk", false, where));
  STRATA_ASSIGN_OR_RETURN(options.byte_fallback, read_bool(spec, "byte_fallback", false, where));
  STRATA_ASSIGN_OR_RETURN(options.ignore_merges, read_bool(spec, "ignore_merges", false, where));
  return create(std::move(vocab), std::move(merges), std::move(options), where);
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !id_to_token_[id]) return nullptr;
  return &*id_to_token_[id];
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& ids) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    if (auto id = token_to_id(word)) {
      ids.push_back(*id);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::shared_lock lock(cache_->mutex);
    auto it = cache_->words.find(word);
    if (it != cache_->words.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = ids.size();
  merge_word(word, ids);
  if (cacheable) {
    std::unique_lock lock(cache_->mutex);
    if (cache_->words.size() < kCacheCapacity) {
      cache_->words.try_emplace(std::string(word), ids.begin() + static_cast<std::ptrdiff_t>(first), ids.end());
    }
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& ids) const {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  const auto add_symbol = [&](int32_t id) {
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1, true});
    if (index > 0) symbols[index - 1].next = index;
  };

  // Characters to initial symbols (HF BPE::merge_word).
  bool pending_unk = false;
  for (size_t pos = 0; pos < word.size();) {
    const size_t begin = pos;
    next_code_point(word, pos);
    const std::string_view character = word.substr(begin, pos - begin);
    if (auto id = token_to_id(character)) {
      if (pending_unk) add_symbol(*unk_id_), pending_unk = false;
      add_symbol(*id);
      continue;
    }
    if (options_.byte_fallback) {
      bool all_bytes = true;
      for (const char c : character) all_bytes = all_bytes && byte_token_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all_bytes) {
        if (pending_unk) add_symbol(*unk_id_), pending_unk = false;
        for (const char c : character) add_symbol(byte_token_ids_[static_cast<unsigned char>(c)]);
        continue;
      }
    }
    if (unk_id_) {
      if (pending_unk && !options_.fuse_unk) add_symbol(*unk_id_);
      pending_unk = true;
    }
    // Without an unk token, HF drops the character.
  }
  if (pending_unk) add_symbol(*unk_id_);

  struct Candidate {
    int32_t rank;
    int32_t left;  // index of the left symbol
    int32_t left_id;
    int32_t right_id;
    int32_t new_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  const auto push_pair = [&](int32_t left) {
    if (left < 0) return;
    const int32_t right = symbols[left].next;
    if (right < 0) return;
    auto it = merges_.find(pair_key(symbols[left].id, symbols[right].id));
    if (it == merges_.end()) return;
    queue.push({it->second.rank, left, symbols[left].id, symbols[right].id, it->second.new_id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) push_pair(i);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.left];
    if (!left.alive || left.id != top.left_id || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    if (right.id != top.right_id) continue;
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    push_pair(left.prev);
    push_pair(top.left);
  }

  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) ids.push_back(symbols[i].id);
}

}  // namespace strata::tokenizer
