// The API-key check of `strata serve`, shared by the HTTP and gRPC front ends: the client
// sends 'Authorization: Bearer <key>' (header or gRPC metadata); the key is compared in
// constant time.
#pragma once

#include <optional>
#include <string_view>

namespace strata {

// True when `api_key` is empty (no authentication) or `authorization` is "Bearer <api_key>"
// (the scheme name in any case).
bool authorization_matches(std::optional<std::string_view> authorization, std::string_view api_key);

}  // namespace strata
