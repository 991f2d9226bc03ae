// Tokenizer: one interface over SentencePiece models and byte-level BPE (tokenizer.json).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/status.h"

namespace strata {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // `add_special_tokens` applies the BOS/EOS rules of tokenizer_config.json, as
  // transformers' `tokenizer(text)` does; special tokens written in the text are recognised.
  // (SentencePiece models follow sentencepiece itself: "<s>" in the text is plain text.)
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const = 0;
  virtual std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const = 0;
  virtual int32_t vocab_size() const = 0;  // including added tokens
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  virtual std::string id_to_token(int32_t id) const = 0;
  virtual bool is_special(int32_t id) const = 0;
  virtual std::optional<int32_t> bos_id() const = 0;
  virtual std::optional<int32_t> eos_id() const = 0;
  // The chat_template string of tokenizer_config.json, empty when there is none.
  virtual const std::string& chat_template() const = 0;
};

// Loads the tokenizer of a checkpoint folder: tokenizer.json (byte-level BPE) when present,
// else tokenizer.model (SentencePiece); tokenizer_config.json supplies BOS/EOS rules.
Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& model_dir);

// Turns a growing list of generated ids into text deltas that never split a UTF-8 sequence
// and keep SentencePiece's leading-space rules (decodes a window, emits the new suffix).
class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(const Tokenizer& tokenizer, std::span<const int32_t> prompt_ids,
                         bool skip_special_tokens = true);
  // Appends one id; returns the text that became final (possibly empty).
  std::string push(int32_t id);
  // Text held back at the end of generation (an incomplete UTF-8 tail is replaced by U+FFFD).
  std::string flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;
  size_t prefix_offset_ = 0;
  size_t read_offset_ = 0;
};

}  // namespace strata
