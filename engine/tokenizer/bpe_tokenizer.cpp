// tokenizer.json pipeline (HF tokenizers' Tokenizer::encode): split out added tokens,
// normalize, pre-tokenize, BPE each word, add the post-processor's special tokens.
// Decoding runs the decoder chain over token strings.
#include "engine/tokenizer/bpe_tokenizer.h"

#include "engine/tokenizer/added_vocabulary.h"
#include "engine/tokenizer/bpe_model.h"
#include "engine/tokenizer/decoder.h"
#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/normalizer.h"
#include "engine/tokenizer/post_processor.h"
#include "engine/tokenizer/pre_tokenizer.h"
#include "engine/tokenizer/utf8.h"

namespace strata::tokenizer {
namespace {

constexpr const char* kFile = "tokenizer.json";

// transformers classes whose fast tokenizer rebuilds the post-processor from
// add_bos_token/add_eos_token (LlamaTokenizerFast.update_post_processor).
bool rebuilds_post_processor(const std::string& tokenizer_class) {
  for (const char* name : {"LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast",
                           "GemmaTokenizer", "GemmaTokenizerFast"}) {
    if (tokenizer_class == name) return true;
  }
  return false;
}

class BpeTokenizer final : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override {
    std::string repaired;
    if (!is_valid_utf8(text)) {
      repaired = repair_utf8(text);
      text = repaired;
    }
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 8);
    if (add_special_tokens) ids.insert(ids.end(), frame_.prefix.begin(), frame_.prefix.end());
    std::vector<PreToken> words;
    for (InputPiece& piece : added_.split(text, normalizer_.get())) {
      if (piece.token) {
        ids.push_back(*piece.token);
        continue;
      }
      words.clear();
      words.push_back({std::move(piece.text), piece.at_input_start});
      if (pre_tokenizer_) pre_tokenizer_->pre_tokenize(words);
      for (const PreToken& word : words) model_->tokenize(word.text, ids);
    }
    if (add_special_tokens) ids.insert(ids.end(), frame_.suffix.begin(), frame_.suffix.end());
    return ids;
  }

  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (const int32_t id : ids) {
      if (const AddedToken* added = added_.find(id)) {
        if (!(skip_special_tokens && added->special)) tokens.push_back(added->content);
      } else if (const std::string* token = model_->id_to_token(id)) {
        tokens.push_back(*token);
      }
    }
    std::string text;
    if (decoder_) {
      decoder_->decode_chain(tokens);
      for (const std::string& t : tokens) text += t;
    } else {
      for (size_t i = 0; i < tokens.size(); ++i) {
        if (i > 0) text += ' ';
        text += tokens[i];
      }
    }
    if (clean_up_tokenization_spaces_) text = clean_up_tokenization(std::move(text));
    return text;
  }

  int32_t vocab_size() const override { return vocab_size_; }

  std::optional<int32_t> token_to_id(std::string_view token) const override {
    if (auto id = added_.token_to_id(token)) return id;
    return model_->token_to_id(token);
  }

  std::string id_to_token(int32_t id) const override {
    if (const AddedToken* added = added_.find(id)) return added->content;
    if (const std::string* token = model_->id_to_token(id)) return *token;
    return std::string();
  }

  bool is_special(int32_t id) const override {
    const AddedToken* added = added_.find(id);
    return added != nullptr && added->special;
  }

  std::optional<int32_t> bos_id() const override { return bos_id_; }
  std::optional<int32_t> eos_id() const override { return eos_id_; }
  const std::string& chat_template() const override { return chat_template_; }

  // Filled in by parse_bpe_tokenizer.
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  AddedVocabulary added_;
  SpecialTokenFrame frame_;
  std::unique_ptr<Decoder> decoder_;
  int32_t vocab_size_ = 0;
  std::optional<int32_t> bos_id_;
  std::optional<int32_t> eos_id_;
  bool clean_up_tokenization_spaces_ = false;
  std::string chat_template_;
};

const Json& member_or_null(const Json& object, const char* key) {
  static const Json kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> parse_bpe_tokenizer(const std::string& json_text, const TokenizerConfig& config) {
  const std::string root = std::string(kFile) + ": ";
  Json json = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return data_loss(std::string(kFile) + ": not valid JSON");
  if (!json.is_object()) return invalid_argument(std::string(kFile) + ": top level must be an object");
  if (!json.contains("model")) return invalid_argument(std::string(kFile) + ": model is missing");

  auto tokenizer = std::make_unique<BpeTokenizer>();
  STRATA_ASSIGN_OR_RETURN(tokenizer->normalizer_,
                          parse_normalizer(member_or_null(json, "normalizer"), root + "normalizer"));
  STRATA_ASSIGN_OR_RETURN(tokenizer->pre_tokenizer_,
                          parse_pre_tokenizer(member_or_null(json, "pre_tokenizer"), root + "pre_tokenizer"));
  STRATA_ASSIGN_OR_RETURN(tokenizer->model_, BpeModel::parse(json["model"], root + "model"));
  STRATA_ASSIGN_OR_RETURN(tokenizer->decoder_, parse_decoder(member_or_null(json, "decoder"), root + "decoder"));
  STRATA_ASSIGN_OR_RETURN(auto added_tokens,
                          parse_added_tokens(member_or_null(json, "added_tokens"), root + "added_tokens"));
  tokenizer->added_ = AddedVocabulary(std::move(added_tokens), tokenizer->normalizer_.get());

  int32_t vocab_size = tokenizer->model_->vocab_size();
  for (const AddedToken& token : tokenizer->added_.tokens()) vocab_size = std::max(vocab_size, token.id + 1);
  tokenizer->vocab_size_ = vocab_size;

  const auto lookup = [&](const std::optional<std::string>& token,
                          const char* field) -> Result<std::optional<int32_t>> {
    if (!token) return std::optional<int32_t>();
    auto id = tokenizer->token_to_id(*token);
    if (!id) {
      return invalid_argument("tokenizer_config.json: " + std::string(field) + " '" + *token +
                              "' is not in the vocabulary of tokenizer.json");
    }
    return id;
  };
  STRATA_ASSIGN_OR_RETURN(tokenizer->bos_id_, lookup(config.bos_token, "bos_token"));
  STRATA_ASSIGN_OR_RETURN(tokenizer->eos_id_, lookup(config.eos_token, "eos_token"));

  const Json& post_processor = member_or_null(json, "post_processor");
  if (rebuilds_post_processor(config.tokenizer_class)) {
    if (config.add_bos_token.value_or(true) && tokenizer->bos_id_)
      tokenizer->frame_.prefix.push_back(*tokenizer->bos_id_);
    if (config.add_eos_token.value_or(false) && tokenizer->eos_id_)
      tokenizer->frame_.suffix.push_back(*tokenizer->eos_id_);
  } else if (!post_processor.is_null()) {
    STRATA_ASSIGN_OR_RETURN(tokenizer->frame_, parse_post_processor(post_processor, root + "post_processor"));
  } else {
    if (config.add_bos_token.value_or(false) && tokenizer->bos_id_)
      tokenizer->frame_.prefix.push_back(*tokenizer->bos_id_);
    if (config.add_eos_token.value_or(false) && tokenizer->eos_id_)
      tokenizer->frame_.suffix.push_back(*tokenizer->eos_id_);
  }
  for (const int32_t id : tokenizer->frame_.prefix) {
    if (id < 0 || id >= vocab_size)
      return invalid_argument(root + "post_processor adds id " + std::to_string(id) + " outside the vocabulary");
  }
  tokenizer->clean_up_tokenization_spaces_ = config.clean_up_tokenization_spaces;
  tokenizer->chat_template_ = config.chat_template;
  return std::unique_ptr<Tokenizer>(std::move(tokenizer));
}

}  // namespace strata::tokenizer
