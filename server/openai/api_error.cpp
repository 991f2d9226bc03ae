// ApiError rendering and the engine-status mapping.
#include "server/openai/api_error.h"

#include <array>
#include <nlohmann/json.hpp>

namespace strata {

std::string ApiError::to_json() const {
  nlohmann::ordered_json j = {{"error",
                               {{"message", message},
                                {"type", type},
                                {"param", param.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(param)},
                                {"code", code.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(code)}}}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

HttpResponse ApiError::to_response() const {
  HttpResponse r;
  r.status = status;
  r.body = to_json();
  if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  if (retry_after_s > 0) r.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
  return r;
}

ApiError bad_request(std::string message, std::string param) {
  ApiError e;
  e.message = std::move(message);
  e.param = std::move(param);
  return e;
}

ApiError not_found_error(std::string message, std::string code) {
  ApiError e;
  e.status = 404;
  e.message = std::move(message);
  e.code = std::move(code);
  return e;
}

ApiError service_unavailable(std::string message) {
  ApiError e;
  e.status = 503;
  e.message = std::move(message);
  e.type = "server_error";
  e.code = "service_unavailable";
  e.retry_after_s = 1;
  return e;
}

ApiError internal_server_error(std::string message) {
  ApiError e;
  e.status = 500;
  e.message = std::move(message);
  e.type = "server_error";
  return e;
}

ApiError api_error_from_status(const Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange: {
      static constexpr std::array<const char*, 13> kFields = {
          "temperature", "top_p",    "top_k",          "min_p",     "repetition_penalty", "presence_penalty",
          "frequency_penalty", "logit_bias", "max_tokens", "min_tokens", "logprobs", "stop_token_ids", "prompt"};
      std::string param;
      for (const char* f : kFields) {
        const std::string field = f;
        if (status.message().rfind(field, 0) == 0 &&
            (status.message().size() == field.size() || status.message()[field.size()] == ' ')) {
          param = field;
        }
      }
      return bad_request(status.message(), param);
    }
    case StatusCode::kResourceExhausted: {
      ApiError e;
      e.status = 429;
      e.message = "The server is busy: " + status.message() + ". Retry later.";
      e.type = "rate_limit_error";
      e.code = "rate_limit_exceeded";
      e.retry_after_s = 1;  // a place frees as soon as any request ends
      return e;
    }
    case StatusCode::kUnavailable:
    case StatusCode::kCancelled:
      return service_unavailable(status.message());
    default:
      return internal_server_error(status.message());
  }
}

}  // namespace strata
