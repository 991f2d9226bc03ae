// Incremental detokenization as vLLM does it (detokenize_incrementally): decode a short window
// of already-emitted ids (prefix_offset..read_offset) with and without the new ids and emit the
// difference, so SentencePiece's leading-space rules and multi-token UTF-8 characters come out
// right; hold output back while it ends in U+FFFD (an incomplete character).
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/utf8.h"

namespace strata {
namespace {

// Ids of the prompt that give the first generated token its context.
constexpr size_t kInitialWindow = 5;

bool ends_with_replacement(const std::string& text) {
  const std::string_view suffix = tokenizer::kReplacementUtf8;
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// new_text minus its prefix prefix_text; cut on a character boundary.
std::string suffix_after(const std::string& new_text, const std::string& prefix_text) {
  size_t start = std::min(prefix_text.size(), new_text.size());
  // When the window's decode is not prefix-stable, keep what still agrees.
  size_t common = 0;
  while (common < start && new_text[common] == prefix_text[common]) ++common;
  start = common;
  while (start > 0 && start < new_text.size() && (static_cast<unsigned char>(new_text[start]) & 0xC0) == 0x80) --start;
  return new_text.substr(start);
}

}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, std::span<const int32_t> prompt_ids,
                                               bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens), ids_(prompt_ids.begin(), prompt_ids.end()) {
  read_offset_ = ids_.size();
  prefix_offset_ = ids_.size() > kInitialWindow ? ids_.size() - kInitialWindow : 0;
}

std::string IncrementalDetokenizer::push(int32_t id) {
  ids_.push_back(id);
  const std::span<const int32_t> all(ids_);
  const std::string prefix_text =
      tokenizer_.decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_tokens_);
  const std::string new_text = tokenizer_.decode(all.subspan(prefix_offset_), skip_special_tokens_);
  if (new_text.size() <= prefix_text.size() || ends_with_replacement(new_text)) return std::string();
  std::string delta = suffix_after(new_text, prefix_text);
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  return delta;
}

std::string IncrementalDetokenizer::flush() {
  if (read_offset_ >= ids_.size()) return std::string();
  const std::span<const int32_t> all(ids_);
  const std::string prefix_text =
      tokenizer_.decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_tokens_);
  const std::string new_text = tokenizer_.decode(all.subspan(prefix_offset_), skip_special_tokens_);
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  if (new_text.size() <= prefix_text.size()) return std::string();
  return suffix_after(new_text, prefix_text);
}

}  // namespace strata
