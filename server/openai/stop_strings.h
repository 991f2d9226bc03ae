// StopStringMatcher: finds OpenAI `stop` strings in text that arrives piece by piece and holds
// back any tail that could still grow into one, so partial stop text never reaches a client.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace strata {

class StopStringMatcher {
 public:
  // Empty strings in `stops` are ignored. With `include_stop`, the matched stop string is
  // part of the emitted text (vLLM's include_stop_str_in_output).
  explicit StopStringMatcher(std::vector<std::string> stops = {}, bool include_stop = false);

  // Adds text; returns what is safe to emit now. After a match, stopped() is true and the
  // text from the stop string on is dropped.
  std::string push(std::string_view text);
  // End of generation: returns whatever was held back.
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  bool include_stop_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace strata
