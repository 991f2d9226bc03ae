// SentencePiece tokenizer: libsentencepiece's own encode/decode (ids = [bos] + encode(text),
// the reference make_golden.py checks against), BOS/EOS from add_bos_token/add_eos_token.
// Tokens listed in tokenizer_config.json's added_tokens_decoder ("<s>", "<|user|>", ...) are
// split out first and each text chunk between them is encoded on its own, with its own dummy
// prefix, as transformers' LlamaTokenizer does (legacy mode); without that list, text that
// looks like a control token is plain text, as sentencepiece does.
// Keep includes minimal: sentencepiece_processor.h clashes with abseil.
#include "engine/tokenizer/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <utility>

namespace strata::tokenizer {
namespace {

constexpr const char* kFile = "tokenizer.model";

class SentencePieceTokenizer final : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override {
    std::vector<int32_t> ids;
    if (add_special_tokens && add_bos_ && bos_id_) ids.push_back(*bos_id_);
    if (added_.tokens().empty()) {
      encode_chunk(text, ids);
    } else {
      for (const auto& piece : added_.split(text, nullptr)) {
        if (piece.token) {
          ids.push_back(*piece.token);
        } else {
          encode_chunk(piece.text, ids);
        }
      }
    }
    if (add_special_tokens && add_eos_ && eos_id_) ids.push_back(*eos_id_);
    return ids;
  }

  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override {
    std::vector<int> kept;
    kept.reserve(ids.size());
    // Added tokens beyond the SentencePiece vocabulary, each placed before kept[first].
    std::vector<std::pair<size_t, const AddedToken*>> beyond;
    bool has_special = false;
    for (const int32_t id : ids) {
      if (id < 0 || id >= vocab_size_) continue;
      const bool special = is_special(id);
      if (special && skip_special_tokens) continue;
      if (id >= piece_size_) {
        if (const AddedToken* token = added_.find(id)) beyond.emplace_back(kept.size(), token);
        continue;
      }
      has_special = has_special || special;
      kept.push_back(id);
    }
    std::string text;
    if (!has_special && beyond.empty()) {
      if (!processor_.Decode(kept, &text).ok()) text.clear();
      return text;
    }
    // sentencepiece renders control pieces as nothing; show them as their piece text, with
    // every other piece keeping the surface (and leading-space handling) sentencepiece gives it.
    const auto decoded = processor_.DecodeIdsAsImmutableProto(kept);
    size_t next_beyond = 0;
    size_t index = 0;
    for (const auto& piece : decoded.pieces()) {
      for (; next_beyond < beyond.size() && beyond[next_beyond].first == index; ++next_beyond) {
        text += beyond[next_beyond].second->content;
      }
      text += is_special(static_cast<int32_t>(piece.id())) ? piece.piece() : piece.surface();
      ++index;
    }
    for (; next_beyond < beyond.size(); ++next_beyond) text += beyond[next_beyond].second->content;
    return text;
  }

  int32_t vocab_size() const override { return vocab_size_; }

  std::optional<int32_t> token_to_id(std::string_view token) const override {
    if (auto added = added_.token_to_id(token)) return added;
    const int id = processor_.PieceToId(absl::string_view(token.data(), token.size()));
    // PieceToId answers unk_id for unknown pieces.
    if (id == processor_.unk_id() && processor_.IdToPiece(id) != token) return std::nullopt;
    return id;
  }

  std::string id_to_token(int32_t id) const override {
    if (const AddedToken* token = added_.find(id)) return token->content;
    if (id < 0 || id >= piece_size_) return std::string();
    return processor_.IdToPiece(id);
  }

  bool is_special(int32_t id) const override {
    if (const AddedToken* token = added_.find(id); token != nullptr && token->special) return true;
    return id >= 0 && id < piece_size_ && (processor_.IsControl(id) || processor_.IsUnknown(id));
  }

  std::optional<int32_t> bos_id() const override { return bos_id_; }
  std::optional<int32_t> eos_id() const override { return eos_id_; }
  const std::string& chat_template() const override { return chat_template_; }

  // Filled in by load_sentencepiece_tokenizer.
  sentencepiece::SentencePieceProcessor processor_;
  int32_t piece_size_ = 0;
  int32_t vocab_size_ = 0;  // piece_size_, or past the last added token beyond it
  AddedVocabulary added_;
  std::optional<int32_t> bos_id_;
  std::optional<int32_t> eos_id_;
  bool add_bos_ = true;
  bool add_eos_ = false;
  std::string chat_template_;

 private:
  void encode_chunk(std::string_view chunk, std::vector<int32_t>& ids) const {
    if (chunk.empty()) return;
    std::vector<int> chunk_ids;
    if (!processor_.Encode(absl::string_view(chunk.data(), chunk.size()), &chunk_ids).ok()) return;
    ids.insert(ids.end(), chunk_ids.begin(), chunk_ids.end());
  }
};

}  // namespace

Result<std::unique_ptr<Tokenizer>> load_sentencepiece_tokenizer(const std::string& model_path,
                                                                const TokenizerConfig& config) {
  auto tokenizer = std::make_unique<SentencePieceTokenizer>();
  const auto status = tokenizer->processor_.Load(model_path);
  if (!status.ok()) return data_loss(std::string(kFile) + ": cannot load SentencePiece model: " + status.ToString());
  tokenizer->piece_size_ = tokenizer->processor_.GetPieceSize();
  tokenizer->vocab_size_ = tokenizer->piece_size_;
  for (const AddedToken& token : config.added_tokens) {
    tokenizer->vocab_size_ = std::max(tokenizer->vocab_size_, token.id + 1);
  }
  tokenizer->added_ = AddedVocabulary(config.added_tokens, nullptr);

  const auto resolve = [&](const std::optional<std::string>& token, int model_id,
                           const char* field) -> Result<std::optional<int32_t>> {
    if (token) {
      auto id = tokenizer->token_to_id(*token);
      if (!id) {
        return invalid_argument("tokenizer_config.json: " + std::string(field) + " '" + *token +
                                "' is not a piece of tokenizer.model");
      }
      return id;
    }
    if (model_id < 0) return std::optional<int32_t>();
    return std::optional<int32_t>(model_id);
  };
  STRATA_ASSIGN_OR_RETURN(tokenizer->bos_id_, resolve(config.bos_token, tokenizer->processor_.bos_id(), "bos_token"));
  STRATA_ASSIGN_OR_RETURN(tokenizer->eos_id_, resolve(config.eos_token, tokenizer->processor_.eos_id(), "eos_token"));
  tokenizer->add_bos_ = config.add_bos_token.value_or(true);
  tokenizer->add_eos_ = config.add_eos_token.value_or(false);
  tokenizer->chat_template_ = config.chat_template;
  return std::unique_ptr<Tokenizer>(std::move(tokenizer));
}

}  // namespace strata::tokenizer
