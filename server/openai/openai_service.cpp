// OpenAiService implementation: routing, auth, request -> EngineRequest(s), and one Generation
// per completion/chat request that turns engine outputs into JSON or SSE chunks.
#include "server/openai/openai_service.h"

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <spdlog/spdlog.h>

#include "server/openai/api_error.h"
#include "server/openai/api_key.h"
#include "server/openai/choice_decoder.h"
#include "engine/tokenizer/token_text.h"
#include "server/openai/request_parsing.h"

namespace strata {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

struct OpenAiService::Context {
  Engine& engine;
  const Tokenizer& tokenizer;
  ServerMetrics& metrics;
  std::string model_name;
  std::atomic<int>& in_flight;
  TokenTextDecoder token_texts;  // logprob tokens as the exact text they add
};

namespace {

constexpr int kMaxJsonDepth = 64;

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

HttpResponse json_response(const ojson& j, int status = 200) {
  HttpResponse r;
  r.status = status;
  r.body = dump(j);
  return r;
}

std::string random_id(const char* prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return std::string(prefix) + buf;
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// JSON has no infinities; vLLM reports -inf logprobs as -9999.0.
double json_logprob(float lp) { return std::isfinite(lp) ? static_cast<double>(lp) : -9999.0; }

ojson utf8_bytes(const std::string& s) {
  ojson a = ojson::array();
  for (unsigned char c : s) a.push_back(static_cast<int>(c));
  return a;
}

// Parses a request body into a JSON object, or says why it is not one. A Content-Type other
// than JSON is a 415 (curl -d sends application/x-www-form-urlencoded); none at all is read as JSON.
std::optional<ApiError> parse_body(const HttpRequest& req, json& out) {
  if (auto type = req.header("content-type"); type && !is_json_media_type(*type)) {
    ApiError e = bad_request("Content-Type must be application/json, got '" + std::string(*type) +
                             "' (send the header 'Content-Type: application/json')");
    e.status = 415;
    e.code = "unsupported_media_type";
    return e;
  }
  if (json_nesting_depth(req.body) > kMaxJsonDepth) {
    return bad_request("request body nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  out = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded()) return bad_request("request body is not valid JSON (UTF-8)");
  if (!out.is_object()) return bad_request("request body must be a JSON object");
  return std::nullopt;
}

// The request's optional `model` must name the served model (404 otherwise, as OpenAI and vLLM).
std::optional<ApiError> check_model_field(const json& body, const std::string& served_model_name) {
  auto m = body.find("model");
  if (m == body.end() || m->is_null()) return std::nullopt;
  if (!m->is_string()) return bad_request("model must be a string", "model");
  return check_model_name(m->get<std::string>(), served_model_name);
}

constexpr int kMaxChoicesPerRequest = 4096;

// RFC 3986 percent-decoding of a path segment; nullopt for a malformed escape.
std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// One engine request of a completion or chat request: its stream and what it produced so far.
struct ChoiceState {
  int index = 0;
  int prompt_index = 0;
  std::shared_ptr<RequestStream> stream;
  std::unique_ptr<ChoiceDecoder> decoder;
  std::string text;           // all text (JSON) / text since the last chunk (SSE)
  ojson chat_logprobs = ojson::array();  // entries (all, or since the last chunk)
  ojson lp_tokens = ojson::array();      // completions' legacy logprobs, same scope
  ojson lp_token_logprobs = ojson::array();
  ojson lp_top_logprobs = ojson::array();
  ojson lp_text_offset = ojson::array();
  int num_prompt_tokens = 0;
  int num_cached_tokens = 0;
  int num_output_tokens = 0;
  bool have_first_token = false;
  Clock::time_point last_token_time;
  bool done = false;
  bool finish_chunk_pending = false;
  std::string finish_reason;
  std::optional<ApiError> error;
};

class Generation : public std::enable_shared_from_this<Generation> {
 public:
  Generation(std::shared_ptr<OpenAiService::Context> ctx, std::shared_ptr<HttpExchange> exchange, GenerationSpec spec,
             Clock::time_point arrival)
      : ctx_(std::move(ctx)),
        exchange_(std::move(exchange)),
        spec_(std::move(spec)),
        arrival_(arrival),
        id_(random_id(spec_.chat ? "chatcmpl-" : "cmpl-")),
        created_(unix_now()) {}

  void add_prompt(std::vector<int32_t> ids, std::string text, int max_tokens) {
    prompts_.push_back({std::move(ids), std::move(text), max_tokens});
  }

  // Submits n engine requests per prompt; on failure, cancels those already submitted.
  std::optional<ApiError> submit() {
    for (size_t p = 0; p < prompts_.size(); ++p) {
      for (int j = 0; j < spec_.n; ++j) {
        EngineRequest req;
        req.prompt_ids = prompts_[p].ids;
        req.params = spec_.params;
        req.params.max_tokens = prompts_[p].max_tokens;
        // n > 1: distinct seeds derived from the request's seed, so choices differ yet repeat.
        if (spec_.params.seed) req.params.seed = *spec_.params.seed + static_cast<uint64_t>(j);
        auto stream = ctx_->engine.submit(std::move(req));
        if (!stream.ok()) {
          for (auto& c : choices_) ctx_->engine.cancel(c.stream->request_id());
          choices_.clear();
          return api_error_from_status(stream.status());
        }
        ChoiceState c;
        c.index = static_cast<int>(choices_.size());
        c.prompt_index = static_cast<int>(p);
        c.stream = std::move(*stream);
        c.num_prompt_tokens = static_cast<int>(prompts_[p].ids.size());
        c.decoder = std::make_unique<ChoiceDecoder>(ctx_->tokenizer, prompts_[p].ids, spec_.skip_special_tokens,
                                                    spec_.stop, spec_.include_stop_str_in_output);
        choices_.push_back(std::move(c));
      }
    }
    ctx_->metrics.observe_queue_time(seconds_between(arrival_, Clock::now()));
    return std::nullopt;
  }

  // Installs the notifiers. A stream's headers wait for the first engine output, so that a
  // request the engine turns down late (its queue filled meanwhile) still gets a real status.
  void start() {
    ctx_->in_flight++;
    auto self = shared_from_this();
    exchange_->on_disconnect([self] { self->client_gone(); });
    for (auto& c : choices_) {
      // Holds the generation alive until finish_choice() clears it.
      c.stream->set_notifier([self] { self->schedule_drain(); });
    }
    schedule_drain();  // outputs pushed before the notifiers were set
  }

  // Answers at once without the engine (completions with echo and max_tokens 0).
  void respond_without_generation() {
    ojson choices = ojson::array();
    int prompt_tokens = 0;
    int index = 0;
    for (const auto& p : prompts_) {
      prompt_tokens += static_cast<int>(p.ids.size());
      for (int j = 0; j < spec_.n; ++j) {
        choices.push_back({{"index", index++}, {"text", p.text}, {"logprobs", nullptr}, {"finish_reason", "length"}});
      }
    }
    ojson usage = {{"prompt_tokens", prompt_tokens}, {"completion_tokens", 0}, {"total_tokens", prompt_tokens}};
    if (spec_.stream) {
      exchange_->start_stream(200, "text/event-stream; charset=utf-8");
      for (auto& ch : choices) send_chunk(std::move(ch));
      if (spec_.include_usage) send_usage_chunk(usage);
      exchange_->write_chunk("data: [DONE]\n\n");
      exchange_->end_stream();
      return;
    }
    exchange_->respond(json_response({{"id", id_},
                                      {"object", "text_completion"},
                                      {"created", created_},
                                      {"model", ctx_->model_name},
                                      {"choices", choices},
                                      {"usage", usage}}));
  }

 private:
  struct Prompt {
    std::vector<int32_t> ids;
    std::string text;
    int max_tokens = 0;
  };

  void schedule_drain() {
    if (drain_scheduled_.exchange(true)) return;
    exchange_->post([self = shared_from_this()] {
      self->drain_scheduled_ = false;
      self->drain();
    });
  }

  void client_gone() {
    if (completed_) return;
    client_gone_ = true;
    for (auto& c : choices_) {
      if (!c.done) ctx_->engine.cancel(c.stream->request_id());
    }
  }

  void drain() {
    if (completed_) return;
    for (auto& c : choices_) {
      if (c.done) continue;
      for (RequestOutput& out : c.stream->drain()) {
        process(c, out);
        if (c.done) break;
      }
    }
    if (first_error_ && !error_cancelled_) {
      // One choice failed: the request as a whole has failed; stop the others.
      error_cancelled_ = true;
      for (auto& c : choices_) {
        if (!c.done) ctx_->engine.cancel(c.stream->request_id());
      }
    }
    if (spec_.stream && !client_gone_ && !stream_started_ && any_tokens_ && !first_error_) start_stream();
    if (spec_.stream && !client_gone_ && stream_started_) flush_chunks();
    bool all_done = true;
    for (const auto& c : choices_) all_done = all_done && c.done;
    if (all_done) complete();
  }

  void process(ChoiceState& c, RequestOutput& out) {
    c.num_prompt_tokens = out.num_prompt_tokens > 0 ? out.num_prompt_tokens : c.num_prompt_tokens;
    c.num_cached_tokens = out.num_cached_tokens;
    if (!out.new_tokens.empty()) {
      any_tokens_ = true;
      const auto now = Clock::now();
      if (!c.have_first_token) {
        c.have_first_token = true;
        ctx_->metrics.observe_time_to_first_token(seconds_between(arrival_, now));
      } else {
        const double per_token = seconds_between(c.last_token_time, now) / static_cast<double>(out.new_tokens.size());
        for (size_t k = 0; k < out.new_tokens.size(); ++k) ctx_->metrics.observe_inter_token_latency(per_token);
      }
      c.last_token_time = now;
    }
    DecodedOutput decoded = c.decoder->push(out, [&](const SampledToken& token) {
      ++c.num_output_tokens;
      if (spec_.want_logprobs) add_logprobs(c, token);
    });
    c.text += decoded.text;
    if (decoded.cancel_request) ctx_->engine.cancel(c.stream->request_id());
    switch (decoded.finish_reason) {
      case FinishReason::kNone:
        return;
      case FinishReason::kStop:
        return finish_choice(c, "stop");
      case FinishReason::kLength:
        return finish_choice(c, "length");
      case FinishReason::kError:
        // Late rejections (resource_exhausted: the queue filled up) keep their HTTP status.
        c.error = out.error.code() == StatusCode::kInternal || out.error.ok()
                      ? internal_server_error("generation failed: " + out.error.message())
                      : api_error_from_status(out.error);
        if (!first_error_) first_error_ = c.error;
        return finish_choice(c, "error");
      case FinishReason::kAbort:
        if (!client_gone_ && !error_cancelled_) {
          c.error = service_unavailable("the server is shutting down; the request was aborted");
          if (!first_error_) first_error_ = c.error;
        }
        return finish_choice(c, "abort");
    }
  }

  void add_logprobs(ChoiceState& c, const SampledToken& t) {
    const std::string text = token_text(t.token_id);
    if (spec_.chat) {
      ojson top = ojson::array();
      for (const auto& alt : t.top) {
        const std::string alt_text = token_text(alt.token_id);
        top.push_back({{"token", alt_text}, {"logprob", json_logprob(alt.logprob)}, {"bytes", utf8_bytes(alt_text)}});
      }
      c.chat_logprobs.push_back(
          {{"token", text}, {"logprob", json_logprob(t.logprob)}, {"bytes", utf8_bytes(text)}, {"top_logprobs", top}});
      return;
    }
    ojson top = ojson::object();
    for (const auto& alt : t.top) top[token_text(alt.token_id)] = json_logprob(alt.logprob);
    top[text] = json_logprob(t.logprob);
    c.lp_tokens.push_back(text);
    c.lp_token_logprobs.push_back(json_logprob(t.logprob));
    c.lp_top_logprobs.push_back(std::move(top));
    c.lp_text_offset.push_back(c.decoder->text_code_points());
  }

  std::string token_text(int32_t id) const { return ctx_->token_texts.text(id); }

  void finish_choice(ChoiceState& c, const std::string& reason) {
    c.done = true;
    c.finish_reason = reason;
    c.finish_chunk_pending = true;
    c.stream->set_notifier(nullptr);
    ctx_->metrics.count_finished(reason, c.num_prompt_tokens, c.num_output_tokens);
    ctx_->metrics.observe_e2e_latency(seconds_between(arrival_, Clock::now()));
  }

  ojson chunk_logprobs(ChoiceState& c) {
    if (!spec_.want_logprobs) return nullptr;
    if (spec_.chat) {
      if (c.chat_logprobs.empty()) return nullptr;
      return {{"content", std::exchange(c.chat_logprobs, ojson::array())}};
    }
    if (c.lp_tokens.empty()) return nullptr;
    return {{"tokens", std::exchange(c.lp_tokens, ojson::array())},
            {"token_logprobs", std::exchange(c.lp_token_logprobs, ojson::array())},
            {"top_logprobs", std::exchange(c.lp_top_logprobs, ojson::array())},
            {"text_offset", std::exchange(c.lp_text_offset, ojson::array())}};
  }

  ojson full_logprobs(ChoiceState& c) {
    if (!spec_.want_logprobs) return nullptr;
    if (spec_.chat) return {{"content", c.chat_logprobs}};
    return {{"tokens", c.lp_tokens},
            {"token_logprobs", c.lp_token_logprobs},
            {"top_logprobs", c.lp_top_logprobs},
            {"text_offset", c.lp_text_offset}};
  }

  void start_stream() {
    stream_started_ = true;
    exchange_->start_stream(200, "text/event-stream; charset=utf-8", {{"X-Request-Id", id_}});
    for (auto& c : choices_) {
      if (spec_.chat) {
        send_chunk({{"index", c.index},
                    {"delta", {{"role", "assistant"}, {"content", ""}}},
                    {"logprobs", nullptr},
                    {"finish_reason", nullptr}});
      } else if (spec_.echo) {
        send_chunk({{"index", c.index},
                    {"text", prompts_[c.prompt_index].text},
                    {"logprobs", nullptr},
                    {"finish_reason", nullptr}});
      }
    }
  }

  void send_chunk(ojson choice) {
    ojson chunk = {{"id", id_},
                   {"object", spec_.chat ? "chat.completion.chunk" : "text_completion"},
                   {"created", created_},
                   {"model", ctx_->model_name},
                   {"choices", ojson::array({std::move(choice)})}};
    if (spec_.include_usage) chunk["usage"] = nullptr;
    exchange_->write_chunk("data: " + dump(chunk) + "\n\n");
  }

  void send_usage_chunk(const ojson& usage) {
    ojson chunk = {{"id", id_},
                   {"object", spec_.chat ? "chat.completion.chunk" : "text_completion"},
                   {"created", created_},
                   {"model", ctx_->model_name},
                   {"choices", ojson::array()},
                   {"usage", usage}};
    exchange_->write_chunk("data: " + dump(chunk) + "\n\n");
  }

  // SSE: one chunk per choice with the text and logprobs since the last one, then its finish.
  void flush_chunks() {
    for (auto& c : choices_) {
      ojson logprobs = chunk_logprobs(c);
      if (!c.text.empty() || !logprobs.is_null()) {
        std::string text = std::exchange(c.text, std::string());
        ojson choice = {{"index", c.index}};
        if (spec_.chat) {
          choice["delta"] = {{"content", text}};
        } else {
          choice["text"] = text;
        }
        choice["logprobs"] = logprobs;
        choice["finish_reason"] = nullptr;
        send_chunk(std::move(choice));
      }
      if (c.finish_chunk_pending) {
        c.finish_chunk_pending = false;
        if (c.error || c.finish_reason == "abort") continue;  // the error event at the end says why
        ojson choice = {{"index", c.index}};
        if (spec_.chat) {
          choice["delta"] = ojson::object();
        } else {
          choice["text"] = "";
        }
        choice["logprobs"] = nullptr;
        choice["finish_reason"] = c.finish_reason;
        send_chunk(std::move(choice));
      }
    }
  }

  ojson usage() const {
    int prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
    std::vector<bool> seen(prompts_.size(), false);
    for (const auto& c : choices_) {
      completion_tokens += c.num_output_tokens;
      if (!seen[c.prompt_index]) {
        seen[c.prompt_index] = true;
        prompt_tokens += c.num_prompt_tokens;
        cached_tokens += c.num_cached_tokens;
      }
    }
    ojson u = {{"prompt_tokens", prompt_tokens},
               {"completion_tokens", completion_tokens},
               {"total_tokens", prompt_tokens + completion_tokens}};
    if (cached_tokens > 0) u["prompt_tokens_details"] = {{"cached_tokens", cached_tokens}};
    return u;
  }

  void complete() {
    completed_ = true;
    ctx_->in_flight--;
    if (client_gone_) return;
    if (spec_.stream) {
      if (!stream_started_) {
        // Failed before any token: a plain HTTP error (e.g. 429) rather than an event.
        if (first_error_) return exchange_->respond(first_error_->to_response());
        start_stream();
      }
      flush_chunks();
      if (first_error_) exchange_->write_chunk("data: " + first_error_->to_json() + "\n\n");
      if (spec_.include_usage) send_usage_chunk(usage());
      exchange_->write_chunk("data: [DONE]\n\n");
      exchange_->end_stream();
      return;
    }
    if (first_error_) return exchange_->respond(first_error_->to_response());
    ojson choices = ojson::array();
    for (auto& c : choices_) {
      ojson choice = {{"index", c.index}};
      if (spec_.chat) {
        choice["message"] = {{"role", "assistant"}, {"content", c.text}};
      } else {
        choice["text"] = spec_.echo ? prompts_[c.prompt_index].text + c.text : c.text;
      }
      choice["logprobs"] = full_logprobs(c);
      choice["finish_reason"] = c.finish_reason;
      choices.push_back(std::move(choice));
    }
    exchange_->respond(json_response({{"id", id_},
                                      {"object", spec_.chat ? "chat.completion" : "text_completion"},
                                      {"created", created_},
                                      {"model", ctx_->model_name},
                                      {"choices", std::move(choices)},
                                      {"usage", usage()}}));
  }

  std::shared_ptr<OpenAiService::Context> ctx_;
  std::shared_ptr<HttpExchange> exchange_;
  GenerationSpec spec_;
  Clock::time_point arrival_;
  std::string id_;
  int64_t created_;
  std::vector<Prompt> prompts_;
  std::vector<ChoiceState> choices_;
  std::atomic<bool> drain_scheduled_{false};
  bool client_gone_ = false;
  bool completed_ = false;
  bool stream_started_ = false;
  bool any_tokens_ = false;
  bool error_cancelled_ = false;
  std::optional<ApiError> first_error_;
};

}  // namespace

OpenAiService::OpenAiService(Engine& engine, const Tokenizer& tokenizer, const ChatPromptRenderer& chat,
                             ServerMetrics& metrics, ServiceOptions options)
    : engine_(engine), tokenizer_(tokenizer), chat_(chat), metrics_(metrics), options_(std::move(options)) {
  context_ = std::make_shared<Context>(
      Context{engine_, tokenizer_, metrics_, options_.served_model_name, generations_in_flight_,
              TokenTextDecoder(tokenizer_)});
}

bool OpenAiService::authorized(const HttpRequest& request) const {
  return authorization_matches(request.header("authorization"), options_.api_key);
}

void OpenAiService::handle(const std::shared_ptr<HttpExchange>& raw_exchange) {
  const HttpRequest& req = raw_exchange->request();
  const std::shared_ptr<HttpExchange> exchange =
      with_headers(raw_exchange, response_headers(req, options_.cors, random_id("req-")));
  if (auto preflight = preflight_response(req, options_.cors)) return exchange->respond(std::move(*preflight));
  const std::string& path = req.path;
  const bool is_v1 = path == "/v1" || path.rfind("/v1/", 0) == 0;
  if (is_v1 && !authorized(req)) {
    ApiError e;
    e.status = 401;
    e.message = "Invalid or missing API key; send it as 'Authorization: Bearer <key>'";
    e.code = "invalid_api_key";
    return exchange->respond(e.to_response());
  }

  struct Route {
    const char* method;
    std::function<void()> run;
  };
  std::optional<Route> route;
  if (path == "/health") {
    route = Route{"GET", [&] {
                    HttpResponse r;
                    r.content_type = "text/plain; charset=utf-8";
                    exchange->respond(std::move(r));
                  }};
  } else if (path == "/ready") {
    route = Route{"GET", [&] {
                    if (draining_) return exchange->respond(service_unavailable("the server is shutting down").to_response());
                    exchange->respond(json_response({{"status", "ready"}}));
                  }};
  } else if (path == "/metrics") {
    route = Route{"GET", [&] {
                    HttpResponse r;
                    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
                    r.body = metrics_.render(engine_.stats());
                    exchange->respond(std::move(r));
                  }};
  } else if (path == "/v1/models") {
    route = Route{"GET", [&] { handle_models(exchange, ""); }};
  } else if (path.rfind("/v1/models/", 0) == 0) {
    route = Route{"GET", [&] {
                    // Model ids hold '/' ("org/name"): clients send it as %2F.
                    auto id = percent_decode(path.substr(std::string("/v1/models/").size()));
                    if (!id) return exchange->respond(bad_request("the model id in the path is not valid "
                                                                  "percent-encoding")
                                                          .to_response());
                    handle_models(exchange, *id);
                  }};
  } else if (path == "/v1/completions") {
    route = Route{"POST", [&] { handle_generation(exchange, false); }};
  } else if (path == "/v1/chat/completions") {
    route = Route{"POST", [&] { handle_generation(exchange, true); }};
  } else if (path == "/tokenize") {
    route = Route{"POST", [&] { handle_tokenize(exchange); }};
  } else if (path == "/detokenize") {
    route = Route{"POST", [&] { handle_detokenize(exchange); }};
  }
  if (!route) {
    return exchange->respond(not_found_error("Unknown route: " + req.method + " " + path, "not_found").to_response());
  }
  if (req.method != route->method) {
    ApiError e;
    e.status = 405;
    e.message = "Method " + req.method + " is not allowed for " + path + " (use " + route->method + ")";
    e.code = "method_not_allowed";
    HttpResponse r = e.to_response();
    r.headers.emplace_back("Allow", route->method);
    return exchange->respond(std::move(r));
  }
  route->run();
}

void OpenAiService::handle_models(const std::shared_ptr<HttpExchange>& exchange, const std::string& model_id) {
  ojson card = {{"id", options_.served_model_name},
                {"object", "model"},
                {"created", options_.created_unix_s},
                {"owned_by", "strata"},
                {"root", options_.model_dir},
                {"parent", nullptr},
                {"max_model_len", engine_.max_model_len()}};
  if (!model_id.empty()) {
    if (model_id != options_.served_model_name) {
      return exchange->respond(
          not_found_error("The model `" + model_id + "` does not exist.", "model_not_found").to_response());
    }
    return exchange->respond(json_response(card));
  }
  exchange->respond(json_response({{"object", "list"}, {"data", ojson::array({card})}}));
}

void OpenAiService::handle_generation(const std::shared_ptr<HttpExchange>& exchange, bool chat) {
  const auto arrival = Clock::now();
  const auto fail = [&](const ApiError& e) { exchange->respond(e.to_response()); };
  if (draining_) return fail(service_unavailable("the server is shutting down"));
  json body;
  if (auto e = parse_body(exchange->request(), body)) return fail(*e);
  if (auto e = check_model_field(body, options_.served_model_name)) return fail(*e);
  GenerationSpec spec;
  if (auto e = parse_generation_spec(body, chat, engine_.generation_defaults(), spec)) return fail(*e);

  // Prompts as token ids (and the text echo returns).
  std::vector<std::pair<std::vector<int32_t>, std::string>> prompts;
  if (chat) {
    auto messages = normalize_chat_messages(body["messages"]);
    if (!messages.ok()) return fail(bad_request(messages.status().message(), "messages"));
    ChatRenderRequest render;
    render.messages = std::move(*messages);
    bool add_special_tokens = false;
    if (auto v = body.find("add_generation_prompt"); v != body.end() && v->is_boolean()) render.add_generation_prompt = *v;
    if (auto v = body.find("continue_final_message"); v != body.end() && v->is_boolean()) render.continue_final_message = *v;
    if (auto v = body.find("add_special_tokens"); v != body.end() && v->is_boolean()) add_special_tokens = *v;
    if (auto v = body.find("tools"); v != body.end() && v->is_array()) render.tools = *v;
    if (auto v = body.find("chat_template_kwargs"); v != body.end() && v->is_object()) render.template_kwargs = *v;
    auto text = chat_.render(render);
    if (!text.ok()) return fail(bad_request(text.status().message(), "messages"));
    prompts.emplace_back(tokenizer_.encode(*text, add_special_tokens), std::string());
  } else {
    std::vector<PromptInput> inputs;
    if (auto e = parse_completion_prompts(body, inputs)) return fail(*e);
    bool add_special_tokens = true;
    if (auto v = body.find("add_special_tokens"); v != body.end() && v->is_boolean()) add_special_tokens = *v;
    for (auto& in : inputs) {
      if (in.is_text) {
        prompts.emplace_back(tokenizer_.encode(in.text, add_special_tokens), std::move(in.text));
      } else {
        std::string text = spec.echo ? tokenizer_.decode(in.ids, false) : std::string();
        prompts.emplace_back(std::move(in.ids), std::move(text));
      }
    }
  }

  if (prompts.size() * static_cast<size_t>(spec.n) > kMaxChoicesPerRequest) {
    return fail(bad_request("too many choices: " + std::to_string(prompts.size()) + " prompts x n=" +
                                std::to_string(spec.n) + " exceeds " + std::to_string(kMaxChoicesPerRequest),
                            "prompt"));
  }

  // Context window and KV-cache checks, with the numbers (as vLLM words them).
  const int max_model_len = engine_.max_model_len();
  const int kv_tokens = engine_.config().num_kv_blocks * engine_.config().block_size;
  PromptFieldNames fields;
  if (chat) {
    fields.input = "messages";
    if (body.contains("max_completion_tokens")) fields.max_tokens = "max_completion_tokens";
  }
  auto gen = std::make_shared<Generation>(context_, exchange, spec, arrival);
  const bool no_generation = !chat && spec.echo && spec.max_tokens && *spec.max_tokens == 0;
  for (auto& [ids, text] : prompts) {
    int max_tokens = 0;
    if (auto e = resolve_max_tokens(spec, static_cast<int>(ids.size()), max_model_len, kv_tokens, no_generation, fields,
                                    max_tokens)) {
      return fail(*e);
    }
    gen->add_prompt(std::move(ids), std::move(text), max_tokens);
  }
  if (no_generation) return gen->respond_without_generation();
  if (auto e = gen->submit()) return fail(*e);
  gen->start();
}

void OpenAiService::handle_tokenize(const std::shared_ptr<HttpExchange>& exchange) {
  const auto fail = [&](const ApiError& e) { exchange->respond(e.to_response()); };
  json body;
  if (auto e = parse_body(exchange->request(), body)) return fail(*e);
  if (auto e = check_model_field(body, options_.served_model_name)) return fail(*e);
  std::vector<int32_t> ids;
  if (body.contains("messages")) {
    auto messages = normalize_chat_messages(body["messages"]);
    if (!messages.ok()) return fail(bad_request(messages.status().message(), "messages"));
    ChatRenderRequest render;
    render.messages = std::move(*messages);
    bool add_special_tokens = false;
    if (auto v = body.find("add_generation_prompt"); v != body.end() && v->is_boolean()) render.add_generation_prompt = *v;
    if (auto v = body.find("continue_final_message"); v != body.end() && v->is_boolean()) render.continue_final_message = *v;
    if (auto v = body.find("add_special_tokens"); v != body.end() && v->is_boolean()) add_special_tokens = *v;
    if (auto v = body.find("tools"); v != body.end() && v->is_array()) render.tools = *v;
    if (auto v = body.find("chat_template_kwargs"); v != body.end() && v->is_object()) render.template_kwargs = *v;
    auto text = chat_.render(render);
    if (!text.ok()) return fail(bad_request(text.status().message(), "messages"));
    ids = tokenizer_.encode(*text, add_special_tokens);
  } else if (auto p = body.find("prompt"); p != body.end() && p->is_string()) {
    bool add_special_tokens = true;
    if (auto v = body.find("add_special_tokens"); v != body.end()) {
      if (!v->is_boolean()) return fail(bad_request("add_special_tokens must be a boolean", "add_special_tokens"));
      add_special_tokens = *v;
    }
    ids = tokenizer_.encode(p->get<std::string>(), add_special_tokens);
  } else {
    return fail(bad_request("tokenize needs a string prompt or chat messages", "prompt"));
  }
  ojson out = {{"count", ids.size()}, {"max_model_len", engine_.max_model_len()}, {"tokens", ids}};
  bool return_strs = false;
  if (auto v = body.find("return_token_strs"); v != body.end() && v->is_boolean()) return_strs = *v;
  if (return_strs) {
    ojson strs = ojson::array();
    for (int32_t id : ids) strs.push_back(tokenizer_.id_to_token(id));
    out["token_strs"] = strs;
  } else {
    out["token_strs"] = nullptr;
  }
  exchange->respond(json_response(out));
}

void OpenAiService::handle_detokenize(const std::shared_ptr<HttpExchange>& exchange) {
  const auto fail = [&](const ApiError& e) { exchange->respond(e.to_response()); };
  json body;
  if (auto e = parse_body(exchange->request(), body)) return fail(*e);
  if (auto e = check_model_field(body, options_.served_model_name)) return fail(*e);
  auto t = body.find("tokens");
  if (t == body.end() || !t->is_array()) return fail(bad_request("tokens must be a list of token ids", "tokens"));
  std::vector<int32_t> ids;
  const int32_t vocab = tokenizer_.vocab_size();
  for (const auto& v : *t) {
    if (!v.is_number_integer() || v.get<long long>() < 0 || v.get<long long>() >= vocab) {
      return fail(bad_request("tokens must be token ids in [0, " + std::to_string(vocab) + ")", "tokens"));
    }
    ids.push_back(v.get<int32_t>());
  }
  exchange->respond(json_response({{"prompt", tokenizer_.decode(ids, true)}}));
}

}  // namespace strata
