// ChoiceDecoder: turns the outputs of one engine request into the text a client sees —
// incremental detokenization, stop strings, and how the choice ended — for every front end
// (HTTP/SSE and gRPC), so both stream the same text and the same finish reasons.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "engine/engine_core.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/openai/stop_strings.h"

namespace strata {

struct DecodedOutput {
  std::string text;  // text that became final (safe to send: no partial stop string)
  // The choice is over: kStop (EOS, stop token or stop string), kLength, kError (the engine's
  // error is in the output) or kAbort. kNone while it goes on.
  FinishReason finish_reason = FinishReason::kNone;
  // A stop string ended the choice before the engine finished it: cancel the engine request.
  bool cancel_request = false;
  bool finished() const { return finish_reason != FinishReason::kNone; }
};

class ChoiceDecoder {
 public:
  ChoiceDecoder(const Tokenizer& tokenizer, std::span<const int32_t> prompt_ids, bool skip_special_tokens,
                std::vector<std::string> stop, bool include_stop_str_in_output);

  // Consumes one engine output. `on_token` runs for each token that counts (usage, logprobs),
  // before its text is added, so text_code_points() is then that token's text offset. The
  // EOS/stop token that ends a request counts but adds no text; tokens after a stop-string
  // match do not count.
  DecodedOutput push(const RequestOutput& output, const std::function<void(const SampledToken&)>& on_token = {});

  // Code points of all text decoded so far (held-back stop-string prefixes included).
  size_t text_code_points() const { return text_code_points_; }

 private:
  IncrementalDetokenizer detokenizer_;
  StopStringMatcher stop_;
  size_t text_code_points_ = 0;
  bool finished_ = false;
};

}  // namespace strata
