// ApiError: an OpenAI-style error ({"error": {"message", "type", "param", "code"}}) with the
// HTTP status it travels with.
#pragma once

#include <string>

#include "engine/core/status.h"
#include "server/http/http_server.h"

namespace strata {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty: null
  std::string code;   // empty: null
  int retry_after_s = 0;  // > 0: a Retry-After header (429 busy, 503 draining or at capacity)

  std::string to_json() const;
  HttpResponse to_response() const;
};

ApiError bad_request(std::string message, std::string param = "");
ApiError not_found_error(std::string message, std::string code = "");
// 503 with Retry-After: 1 (draining, or no connection slot): another replica, or this one
// shortly, can take the request.
ApiError service_unavailable(std::string message);
ApiError internal_server_error(std::string message);
// Maps an engine Status: invalid_argument/out_of_range -> 400 (param guessed from the message's
// first word when it names a request field), resource_exhausted -> 429 with Retry-After,
// unavailable -> 503 with Retry-After.
ApiError api_error_from_status(const Status& status);

}  // namespace strata
