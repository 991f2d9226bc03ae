// OpenAiService: the HTTP routes of `strata serve` — OpenAI completions and chat completions
// (JSON and Server-Sent Events), models, tokenize/detokenize, health, readiness and metrics —
// on top of the Engine's submit/cancel/stream API.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/engine.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/http/http_server.h"
#include "server/metrics/metrics.h"
#include "server/openai/chat_prompt.h"
#include "server/openai/cors.h"

namespace strata {

struct ServiceOptions {
  std::string served_model_name;
  std::string model_dir;
  std::string api_key;  // empty: no authentication
  int64_t created_unix_s = 0;
  CorsPolicy cors;      // --allowed-origins
};

class OpenAiService {
 public:
  OpenAiService(Engine& engine, const Tokenizer& tokenizer, const ChatPromptRenderer& chat, ServerMetrics& metrics,
                ServiceOptions options);

  // The HttpServer handler: routes one exchange (runs on its connection's strand). Every
  // response carries X-Request-Id and, for an allowed Origin, the CORS headers; CORS
  // preflights are answered before authentication (browsers send no key with them).
  void handle(const std::shared_ptr<HttpExchange>& raw_exchange);
  // Shutting down: /ready answers 503 and new generation requests are refused with 503.
  void set_draining() { draining_ = true; }
  // Completion / chat requests not yet answered in full.
  int num_generations_in_flight() const { return generations_in_flight_.load(); }

  struct Context;  // what a generation needs from the service

 private:
  void handle_generation(const std::shared_ptr<HttpExchange>& exchange, bool chat);
  void handle_models(const std::shared_ptr<HttpExchange>& exchange, const std::string& model_id);
  void handle_tokenize(const std::shared_ptr<HttpExchange>& exchange);
  void handle_detokenize(const std::shared_ptr<HttpExchange>& exchange);
  bool authorized(const HttpRequest& request) const;

  Engine& engine_;
  const Tokenizer& tokenizer_;
  const ChatPromptRenderer& chat_;
  ServerMetrics& metrics_;
  ServiceOptions options_;
  std::atomic<bool> draining_{false};
  std::atomic<int> generations_in_flight_{0};
  std::shared_ptr<Context> context_;
};

}  // namespace strata
