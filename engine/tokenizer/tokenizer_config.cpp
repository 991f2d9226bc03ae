// tokenizer_config.json parsing. Token fields may be a string or an AddedToken object
// ({"content": "<s>", ...}); chat_template may be a string or a list of named templates.
#include "engine/tokenizer/tokenizer_config.h"

#include <climits>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/tokenizer/json_fields.h"

namespace strata::tokenizer {
namespace {

constexpr const char* kFile = "tokenizer_config.json";

Result<std::optional<std::string>> read_token(const Json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::optional<std::string>();
  if (it->is_string()) return std::optional<std::string>(it->get<std::string>());
  if (it->is_object()) {
    auto content = it->find("content");
    if (content != it->end() && content->is_string()) return std::optional<std::string>(content->get<std::string>());
  }
  return invalid_argument(std::string(kFile) + ": " + key + " must be a string or an object with a \"content\" string");
}

Result<std::optional<bool>> read_optional_bool(const Json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean()) return invalid_argument(std::string(kFile) + ": " + key + " must be a boolean");
  return std::optional<bool>(it->get<bool>());
}

Result<std::string> read_chat_template(const Json& config) {
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    for (const Json& entry : *it) {
      if (entry.is_object() && entry.value("name", std::string()) == "default" && entry.contains("template") &&
          entry["template"].is_string()) {
        return entry["template"].get<std::string>();
      }
    }
    return invalid_argument(std::string(kFile) + ": chat_template is a list without a template named 'default'");
  }
  return invalid_argument(std::string(kFile) + ": chat_template must be a string or a list of {name, template}");
}

// {"32000": {"content": "<pad>", "special": true, ...}, ...} as parse_added_tokens' array form.
Result<std::vector<AddedToken>> read_added_tokens_decoder(const Json& config) {
  auto it = config.find("added_tokens_decoder");
  if (it == config.end() || it->is_null()) return std::vector<AddedToken>();
  const std::string where = std::string(kFile) + ": added_tokens_decoder";
  if (!it->is_object()) return invalid_argument(where + " must be an object keyed by token id");
  Json tokens = Json::array();
  for (const auto& [key, value] : it->items()) {
    size_t used = 0;
    long long id = -1;
    try {
      id = std::stoll(key, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != key.size() || id < 0 || id > INT32_MAX) {
      return invalid_argument(where + ": key '" + key + "' is not a token id");
    }
    if (!value.is_object()) return invalid_argument(where + "[" + key + "] must be an object");
    Json token = value;
    token["id"] = id;
    tokens.push_back(std::move(token));
  }
  return parse_added_tokens(tokens, where);
}

}  // namespace

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found(path + ": cannot open file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return data_loss(path + ": read error");
  return buffer.str();
}

Result<TokenizerConfig> read_tokenizer_config(const std::string& model_dir) {
  TokenizerConfig config;
  const std::filesystem::path dir(model_dir);
  const std::filesystem::path path = dir / kFile;
  if (std::filesystem::exists(path)) {
    STRATA_ASSIGN_OR_RETURN(const std::string text, read_file(path.string()));
    Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) return data_loss(std::string(kFile) + ": not valid JSON");
    if (!json.is_object()) return invalid_argument(std::string(kFile) + ": top level must be an object");
    config.present = true;
    if (auto it = json.find("tokenizer_class"); it != json.end() && it->is_string()) {
      config.tokenizer_class = it->get<std::string>();
    }
    STRATA_ASSIGN_OR_RETURN(config.bos_token, read_token(json, "bos_token"));
    STRATA_ASSIGN_OR_RETURN(config.eos_token, read_token(json, "eos_token"));
    STRATA_ASSIGN_OR_RETURN(config.add_bos_token, read_optional_bool(json, "add_bos_token"));
    STRATA_ASSIGN_OR_RETURN(config.add_eos_token, read_optional_bool(json, "add_eos_token"));
    STRATA_ASSIGN_OR_RETURN(auto clean_up, read_optional_bool(json, "clean_up_tokenization_spaces"));
    config.clean_up_tokenization_spaces = clean_up.value_or(false);
    STRATA_ASSIGN_OR_RETURN(config.chat_template, read_chat_template(json));
    STRATA_ASSIGN_OR_RETURN(config.added_tokens, read_added_tokens_decoder(json));
  }
  // Recent transformers write the template to its own file.
  if (config.chat_template.empty()) {
    const std::filesystem::path jinja = dir / "chat_template.jinja";
    if (std::filesystem::exists(jinja)) {
      STRATA_ASSIGN_OR_RETURN(config.chat_template, read_file(jinja.string()));
    }
  }
  return config;
}

std::string clean_up_tokenization(std::string text) {
  static const std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
  };
  for (const auto& [from, to] : kRules) {
    std::string out;
    out.reserve(text.size());
    size_t pos = 0;
    for (size_t hit = text.find(from); hit != std::string::npos; hit = text.find(from, pos)) {
      out.append(text, pos, hit - pos);
      out.append(to);
      pos = hit + from.size();
    }
    out.append(text, pos);
    text = std::move(out);
  }
  return text;
}

}  // namespace strata::tokenizer
