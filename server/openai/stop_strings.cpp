// StopStringMatcher implementation. Everything emitted so far is free of stop strings and of
// stop-string prefixes at its end, so a match can only start inside the held text.
#include "server/openai/stop_strings.h"

#include <algorithm>
#include <utility>

namespace strata {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops, bool include_stop)
    : include_stop_(include_stop) {
  for (auto& s : stops) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

std::string StopStringMatcher::push(std::string_view text) {
  if (stopped_) return std::string();
  held_.append(text);
  if (stops_.empty()) return std::exchange(held_, std::string());

  size_t best = std::string::npos;
  size_t best_len = 0;
  for (const auto& s : stops_) {
    const size_t pos = held_.find(s);
    if (pos != std::string::npos && (pos < best || (pos == best && s.size() > best_len))) {
      best = pos;
      best_len = s.size();
    }
  }
  if (best != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, include_stop_ ? best + best_len : best);
    held_.clear();
    return out;
  }

  // Hold back the longest tail of held_ that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const auto& s : stops_) {
    const size_t max_len = std::min(held_.size(), s.size() - 1);
    for (size_t len = max_len; len > hold; --len) {
      if (held_.compare(held_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - hold);
  held_.erase(0, held_.size() - hold);
  return out;
}

std::string StopStringMatcher::flush() {
  if (stopped_) return std::string();
  return std::exchange(held_, std::string());
}

}  // namespace strata
