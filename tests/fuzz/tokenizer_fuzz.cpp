// Fuzzes the tokenizers (engine/tokenizer): encode arbitrary bytes, decode arbitrary ids (in and
// out of the vocabulary), and stream ids through the IncrementalDetokenizer, with the default
// model's SentencePiece tokenizer and the byte-level BPE tokenizer.json files of the golden
// checkpoints (Qwen2 and Llama 3 pre-tokenizers, SentencePiece-style BPE).
//
// Input: byte 0 picks the tokenizer (bits 0-1), add_special_tokens (bit 2), skip_special_tokens
// (bit 3); byte 1 is how many ids form the detokenizer's prompt; the rest is the text, and the
// same bytes read as 16-bit ids.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer/tokenizer.h"

namespace {

const std::vector<std::unique_ptr<strata::Tokenizer>>& tokenizers() {
  static const auto all = [] {
    const std::string root = STRATA_SOURCE_DIR;
    std::vector<std::unique_ptr<strata::Tokenizer>> out;
    for (const char* dir : {"/models/default", "/tests/golden/tokenizers/bpe_qwen2",
                            "/tests/golden/tokenizers/bpe_llama3", "/tests/golden/tokenizers/bpe_sp_style"}) {
      auto t = strata::load_tokenizer(root + dir);
      if (!t.ok()) std::abort();
      out.push_back(std::move(*t));
    }
    return out;
  }();
  return all;
}

// Decodes `ids` one at a time as the server streams them; returns the text it emitted.
std::string stream(const strata::Tokenizer& tok, std::span<const int32_t> prompt, std::span<const int32_t> ids,
                   bool skip_special_tokens) {
  strata::IncrementalDetokenizer detok(tok, prompt, skip_special_tokens);
  std::string text;
  for (int32_t id : ids) text += detok.push(id);
  text += detok.flush();
  return text;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tokenizers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const auto& all = tokenizers();
  const strata::Tokenizer& tok = *all[data[0] & 3];
  const bool add_special_tokens = data[0] & 4;
  const bool skip_special_tokens = data[0] & 8;
  const size_t num_prompt_ids = data[1];
  const std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);

  const std::vector<int32_t> encoded = tok.encode(text, add_special_tokens);
  for (int32_t id : encoded) {
    if (id < 0 || id >= tok.vocab_size()) std::abort();  // encode only yields ids of the vocabulary
  }
  (void)tok.decode(encoded, skip_special_tokens);
  (void)stream(tok, {}, encoded, skip_special_tokens);

  // Ids from the raw bytes: mostly in the vocabulary, a few just outside it on either side.
  std::vector<int32_t> ids;
  const int32_t span = tok.vocab_size() + 8;
  for (size_t i = 0; i + 1 < text.size(); i += 2) {
    const int32_t raw = static_cast<uint8_t>(text[i]) | (static_cast<uint8_t>(text[i + 1]) << 8);
    ids.push_back(raw % span - 4);
  }
  (void)tok.decode(ids, skip_special_tokens);
  for (int32_t id : ids) {
    (void)tok.id_to_token(id);
    (void)tok.is_special(id);
  }
  const size_t split = std::min(num_prompt_ids, ids.size());
  const std::span<const int32_t> all_ids(ids);
  (void)stream(tok, all_ids.first(split), all_ids.subspan(split), skip_special_tokens);
  (void)tok.token_to_id(text);
  return 0;
}
