// Post-processors of tokenizer.json ("post_processor"), single-sequence case: TemplateProcessing,
// BertProcessing, RobertaProcessing, ByteLevel (no-op for ids) and Sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "engine/core/status.h"

namespace strata::tokenizer {

// What add_special_tokens adds around one sequence: ids before and after it.
struct SpecialTokenFrame {
  std::vector<int32_t> prefix;
  std::vector<int32_t> suffix;
};

// A null spec gives an empty frame. Only the "single" template matters for one sequence.
Result<SpecialTokenFrame> parse_post_processor(const nlohmann::json& spec, const std::string& where);

}  // namespace strata::tokenizer
