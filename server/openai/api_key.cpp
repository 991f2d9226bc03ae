// Bearer-token check with a comparison whose time does not depend on where the key differs.
#include "server/openai/api_key.h"

#include <algorithm>
#include <cctype>
#include <cstddef>

namespace strata {
namespace {

// Constant-time comparison, so the key cannot be guessed byte by byte from response times.
bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

}  // namespace

bool authorization_matches(std::optional<std::string_view> authorization, std::string_view api_key) {
  if (api_key.empty()) return true;
  if (!authorization) return false;
  const std::string_view value = *authorization;
  constexpr std::string_view kBearer = "Bearer ";
  if (value.size() < kBearer.size()) return false;
  for (size_t i = 0; i < kBearer.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) != std::tolower(static_cast<unsigned char>(kBearer[i]))) {
      return false;
    }
  }
  return constant_time_equal(value.substr(kBearer.size()), api_key);
}

}  // namespace strata
