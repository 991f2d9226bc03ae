// Decoder implementations, matching HF tokenizers' decode_chain of each type.
#include "engine/tokenizer/decoder.h"

#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/pattern.h"
#include "engine/tokenizer/utf8.h"

namespace strata::tokenizer {
namespace {

class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& token : tokens) bytes += byte_level_decode_token(token);
    tokens.assign(1, repair_utf8(bytes));
  }
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) token = pattern_.replace_all(token, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// Runs of <0xXX> tokens become the text of their bytes, or one U+FFFD per byte when the
// bytes are not valid UTF-8.
class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    const auto flush = [&] {
      if (pending.empty()) return;
      if (is_valid_utf8(pending)) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending.size(); ++i) out.emplace_back(kReplacementUtf8);
      }
      pending.clear();
    };
    for (std::string& token : tokens) {
      if (auto byte = parse_byte_token(token)) {
        pending.push_back(static_cast<char>(*byte));
      } else {
        flush();
        out.push_back(std::move(token));
      }
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static std::optional<uint8_t> parse_byte_token(const std::string& token) {
    if (token.size() != 6 || token.compare(0, 3, "<0x") != 0 || token[5] != '>') return std::nullopt;
    const auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    const int hi = hex(token[3]), lo = hex(token[4]);
    if (hi < 0 || lo < 0) return std::nullopt;
    return static_cast<uint8_t>(hi * 16 + lo);
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const std::string& token : tokens) joined += token;
    tokens.assign(1, std::move(joined));
  }
};

// Removes up to `start` leading and `stop` trailing copies of `content` from each token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      std::vector<size_t> offsets;  // byte offset of each character, plus the end
      std::vector<char32_t> chars;
      for (size_t pos = 0; pos < token.size();) {
        offsets.push_back(pos);
        chars.push_back(next_code_point(token, pos));
      }
      offsets.push_back(token.size());
      size_t start_cut = 0;
      for (size_t i = 0; i < start_ && i < chars.size() && chars[i] == content_; ++i) start_cut = i + 1;
      size_t stop_cut = chars.size();
      for (size_t i = 0; i < stop_ && i < chars.size(); ++i) {
        const size_t index = chars.size() - i - 1;
        if (chars[index] != content_ || index < start_cut) break;
        stop_cut = index;
      }
      token = token.substr(offsets[start_cut], offsets[stop_cut] - offsets[start_cut]);
    }
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, bool strip_first) : replacement_(replacement), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& token = tokens[i];
      for (size_t pos = 0; pos < token.size();) {
        const size_t begin = pos;
        const char32_t cp = next_code_point(token, pos);
        if (cp == replacement_) {
          if (!(i == 0 && strip_first_)) out.push_back(' ');
        } else {
          out.append(token, begin, pos - begin);
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  char32_t replacement_;
  bool strip_first_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

Result<char32_t> read_char(const Json& spec, const char* key, const std::string& where) {
  STRATA_ASSIGN_OR_RETURN(const std::string text, read_string(spec, key, where));
  size_t pos = 0;
  const char32_t cp = text.empty() ? 0 : next_code_point(text, pos);
  if (text.empty() || pos != text.size()) {
    return invalid_argument(field_path(where, key) + " must be a single character, not '" + text + "'");
  }
  return cp;
}

}  // namespace

Result<std::unique_ptr<Decoder>> parse_decoder(const Json& spec, const std::string& where) {
  using Ptr = std::unique_ptr<Decoder>;
  if (spec.is_null()) return Ptr();
  STRATA_ASSIGN_OR_RETURN(const std::string type, read_type(spec, where));
  if (type == "ByteLevel") return Ptr(new ByteLevelDecoder());
  if (type == "ByteFallback") return Ptr(new ByteFallbackDecoder());
  if (type == "Fuse") return Ptr(new FuseDecoder());
  if (type == "Replace") {
    if (!spec.contains("pattern")) return invalid_argument(where + ".pattern is missing");
    STRATA_ASSIGN_OR_RETURN(Pattern pattern, Pattern::parse(spec["pattern"], where + ".pattern"));
    STRATA_ASSIGN_OR_RETURN(std::string content, read_string(spec, "content", where));
    return Ptr(new ReplaceDecoder(std::move(pattern), std::move(content)));
  }
  if (type == "Strip") {
    STRATA_ASSIGN_OR_RETURN(const char32_t content, read_char(spec, "content", where));
    STRATA_ASSIGN_OR_RETURN(const int64_t start, read_int(spec, "start", 0, where));
    STRATA_ASSIGN_OR_RETURN(const int64_t stop, read_int(spec, "stop", 0, where));
    if (start < 0 || stop < 0) return invalid_argument(where + ".start and .stop must not be negative");
    return Ptr(new StripDecoder(content, static_cast<size_t>(start), static_cast<size_t>(stop)));
  }
  if (type == "Metaspace") {
    STRATA_ASSIGN_OR_RETURN(const char32_t replacement, read_char(spec, "replacement", where));
    STRATA_ASSIGN_OR_RETURN(auto scheme, read_optional_string(spec, "prepend_scheme", where));
    bool strip_first = true;
    if (scheme) {
      strip_first = *scheme != "never";
    } else {
      STRATA_ASSIGN_OR_RETURN(strip_first, read_bool(spec, "add_prefix_space", true, where));
    }
    return Ptr(new MetaspaceDecoder(replacement, strip_first));
  }
  if (type == "Sequence") {
    auto it = spec.find("decoders");
    if (it == spec.end() || !it->is_array()) return invalid_argument(where + ".decoders must be an array");
    std::vector<Ptr> steps;
    for (size_t i = 0; i < it->size(); ++i) {
      STRATA_ASSIGN_OR_RETURN(Ptr step, parse_decoder((*it)[i], where + ".decoders[" + std::to_string(i) + "]"));
      if (step) steps.push_back(std::move(step));
    }
    return Ptr(new SequenceDecoder(std::move(steps)));
  }
  return unsupported_type(where, type);
}

}  // namespace strata::tokenizer
