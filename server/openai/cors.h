// Cross-origin requests (browsers calling the API) and the headers every response carries:
// CORS per --allowed-origins, answers to OPTIONS preflights, and X-Request-Id.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/http/http_server.h"

namespace strata {

// --allowed-origins: "*" (any origin, the default, as vLLM) or a comma-separated list of exact
// origins ("https://app.example.com,http://localhost:3000"); empty: no CORS headers at all.
struct CorsPolicy {
  bool any_origin = true;
  std::vector<std::string> origins;

  static CorsPolicy parse(const std::string& flag);
  // The Access-Control-Allow-Origin value for a request's Origin header, if it is allowed.
  std::optional<std::string> allow_origin(const HttpRequest& request) const;
};

// The headers every response to `request` carries: X-Request-Id (the client's, when it sent
// one, else `fallback_id`) and, for an allowed Origin, Access-Control-Allow-Origin (+ Vary,
// Access-Control-Expose-Headers).
HttpHeaders response_headers(const HttpRequest& request, const CorsPolicy& cors, const std::string& fallback_id);

// A CORS preflight (OPTIONS with Origin and Access-Control-Request-Method): the 204 answer, or
// nullopt when the request is not one.
std::optional<HttpResponse> preflight_response(const HttpRequest& request, const CorsPolicy& cors);

// Wraps an exchange so that every response it sends (respond or start_stream) carries `headers`.
std::shared_ptr<HttpExchange> with_headers(std::shared_ptr<HttpExchange> inner, HttpHeaders headers);

}  // namespace strata
