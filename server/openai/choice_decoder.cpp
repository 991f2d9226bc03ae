// ChoiceDecoder implementation: the engine's finish reason, overridden by a stop string that
// matches first.
#include "server/openai/choice_decoder.h"

#include <utility>

namespace strata {
namespace {

size_t count_code_points(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

ChoiceDecoder::ChoiceDecoder(const Tokenizer& tokenizer, std::span<const int32_t> prompt_ids, bool skip_special_tokens,
                             std::vector<std::string> stop, bool include_stop_str_in_output)
    : detokenizer_(tokenizer, prompt_ids, skip_special_tokens), stop_(std::move(stop), include_stop_str_in_output) {}

DecodedOutput ChoiceDecoder::push(const RequestOutput& out, const std::function<void(const SampledToken&)>& on_token) {
  DecodedOutput result;
  if (finished_) return result;
  const auto stop_matched = [&] {
    finished_ = true;
    result.finish_reason = FinishReason::kStop;
    result.cancel_request = !out.finished;
    return std::move(result);
  };
  for (size_t k = 0; k < out.new_tokens.size(); ++k) {
    const SampledToken& token = out.new_tokens[k];
    if (on_token) on_token(token);
    // The EOS / stop token that ended the request counts (usage, logprobs) but is not text.
    const bool stop_token = out.finished && out.finish_reason == FinishReason::kStop && k + 1 == out.new_tokens.size();
    if (stop_token) break;
    std::string delta = detokenizer_.push(token.token_id);
    text_code_points_ += count_code_points(delta);
    result.text += stop_.push(delta);
    if (stop_.stopped()) return stop_matched();
  }
  if (!out.finished) return result;
  std::string tail = detokenizer_.flush();
  text_code_points_ += count_code_points(tail);
  result.text += stop_.push(tail);
  if (stop_.stopped()) return stop_matched();
  result.text += stop_.flush();
  finished_ = true;
  // kNone on a finished output would be an engine bug; treat it as an abort.
  result.finish_reason = out.finish_reason == FinishReason::kNone ? FinishReason::kAbort : out.finish_reason;
  return result;
}

}  // namespace strata
