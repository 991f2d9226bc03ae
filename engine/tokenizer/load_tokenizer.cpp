// load_tokenizer: picks tokenizer.json (byte-level BPE) or tokenizer.model (SentencePiece).
#include <filesystem>

#include "engine/tokenizer/bpe_tokenizer.h"
#include "engine/tokenizer/sentencepiece_tokenizer.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/tokenizer_config.h"

namespace strata {

Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const fs::path dir(model_dir);
  if (!fs::is_directory(dir)) return not_found(model_dir + ": not a directory");
  STRATA_ASSIGN_OR_RETURN(const tokenizer::TokenizerConfig config, tokenizer::read_tokenizer_config(model_dir));

  const fs::path json_path = dir / "tokenizer.json";
  if (fs::exists(json_path)) {
    STRATA_ASSIGN_OR_RETURN(const std::string text, tokenizer::read_file(json_path.string()));
    return tokenizer::parse_bpe_tokenizer(text, config);
  }
  const fs::path model_path = dir / "tokenizer.model";
  if (fs::exists(model_path)) return tokenizer::load_sentencepiece_tokenizer(model_path.string(), config);
  return not_found(model_dir + ": neither tokenizer.json nor tokenizer.model is present");
}

}  // namespace strata
