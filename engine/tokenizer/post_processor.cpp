// Post-processor parsing: every supported processor reduces, for a single sequence, to fixed
// ids before and after it, so they are folded into one SpecialTokenFrame at load time.
#include "engine/tokenizer/post_processor.h"

#include "engine/tokenizer/json_fields.h"

namespace strata::tokenizer {
namespace {

// {"cls": ["<s>", 0]} style pair of BertProcessing/RobertaProcessing.
Result<int32_t> read_token_pair(const Json& spec, const char* key, const std::string& where) {
  auto it = spec.find(key);
  if (it == spec.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_number_integer()) {
    return invalid_argument(field_path(where, key) + " must be a pair [token, id]");
  }
  return (*it)[1].get<int32_t>();
}

Status parse_template(const Json& spec, const std::string& where, SpecialTokenFrame& frame) {
  auto single = spec.find("single");
  if (single == spec.end() || !single->is_array()) return invalid_argument(where + ".single must be an array");
  const Json empty = Json::object();
  auto specials_it = spec.find("special_tokens");
  const Json& specials = specials_it != spec.end() && specials_it->is_object() ? *specials_it : empty;
  bool seen_sequence = false;
  for (size_t i = 0; i < single->size(); ++i) {
    const Json& item = (*single)[i];
    const std::string label = where + ".single[" + std::to_string(i) + "]";
    if (item.is_object() && item.contains("Sequence")) {
      const Json& seq = item["Sequence"];
      if (seq.value("id", std::string("A")) != "A") {
        return invalid_argument(label + ".Sequence.id must be 'A' for a single sequence");
      }
      if (seen_sequence) return unimplemented(label + ": a template that repeats the sequence is not supported");
      seen_sequence = true;
      continue;
    }
    if (item.is_object() && item.contains("SpecialToken")) {
      const Json& special = item["SpecialToken"];
      if (!special.is_object() || !special.contains("id") || !special["id"].is_string()) {
        return invalid_argument(label + ".SpecialToken.id must be a string");
      }
      const std::string name = special["id"].get<std::string>();
      auto entry = specials.find(name);
      if (entry == specials.end() || !entry->is_object() || !entry->contains("ids") || !(*entry)["ids"].is_array()) {
        return invalid_argument(label + ": special token '" + name + "' is not in " + where + ".special_tokens");
      }
      auto& target = seen_sequence ? frame.suffix : frame.prefix;
      for (const Json& id : (*entry)["ids"]) {
        if (!id.is_number_integer())
          return invalid_argument(where + ".special_tokens['" + name + "'].ids must be integers");
        target.push_back(id.get<int32_t>());
      }
      continue;
    }
    return invalid_argument(label + " must be {\"SpecialToken\": ...} or {\"Sequence\": ...}");
  }
  if (!seen_sequence) return invalid_argument(where + ".single has no Sequence item");
  return Status::ok_status();
}

Status parse_into(const Json& spec, const std::string& where, SpecialTokenFrame& frame) {
  if (spec.is_null()) return Status::ok_status();
  STRATA_ASSIGN_OR_RETURN(const std::string type, read_type(spec, where));
  if (type == "ByteLevel") return Status::ok_status();  // only adjusts offsets
  if (type == "TemplateProcessing") return parse_template(spec, where, frame);
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    STRATA_ASSIGN_OR_RETURN(const int32_t cls, read_token_pair(spec, "cls", where));
    STRATA_ASSIGN_OR_RETURN(const int32_t sep, read_token_pair(spec, "sep", where));
    frame.prefix.insert(frame.prefix.begin(), cls);
    frame.suffix.push_back(sep);
    return Status::ok_status();
  }
  if (type == "Sequence") {
    auto it = spec.find("processors");
    if (it == spec.end() || !it->is_array()) return invalid_argument(where + ".processors must be an array");
    for (size_t i = 0; i < it->size(); ++i) {
      // Each processor wraps the output of the previous one.
      SpecialTokenFrame inner;
      STRATA_RETURN_IF_ERROR(parse_into((*it)[i], where + ".processors[" + std::to_string(i) + "]", inner));
      frame.prefix.insert(frame.prefix.begin(), inner.prefix.begin(), inner.prefix.end());
      frame.suffix.insert(frame.suffix.end(), inner.suffix.begin(), inner.suffix.end());
    }
    return Status::ok_status();
  }
  return unsupported_type(where, type);
}

}  // namespace

Result<SpecialTokenFrame> parse_post_processor(const Json& spec, const std::string& where) {
  SpecialTokenFrame frame;
  STRATA_RETURN_IF_ERROR(parse_into(spec, where, frame));
  return frame;
}

}  // namespace strata::tokenizer
