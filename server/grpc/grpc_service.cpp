// GrpcServer implementation: a synchronous gRPC service whose Generate handler submits one
// engine request and polls its stream, so a cancelled call or a passed deadline cancels the
// engine request (its KV blocks are freed in the next step) within kPollIntervalMs.
//
// Validation is the HTTP API's: a Generate request becomes the equivalent /v1/completions
// body and goes through parse_generation_spec and resolve_max_tokens; text comes out of the
// same ChoiceDecoder. (No SentencePiece header may be included here: it clashes with abseil.)
#include "server/grpc/grpc_service.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/tokenizer/token_text.h"
#include "proto/strata.grpc.pb.h"
#include "server/openai/api_error.h"
#include "server/openai/api_key.h"
#include "server/openai/choice_decoder.h"
#include "server/openai/request_parsing.h"

namespace strata {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// How often a waiting Generate handler looks at its call's cancellation and deadline.
constexpr int kPollIntervalMs = 20;
constexpr const char* kServiceName = "strata.v1.Strata";

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The HTTP status of an ApiError as a gRPC code; the message names the field it is about.
grpc::Status to_grpc_status(const ApiError& e) {
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (e.status) {
    case 400:
    case 413:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case 401:
      code = grpc::StatusCode::UNAUTHENTICATED;
      break;
    case 404:
      code = grpc::StatusCode::NOT_FOUND;
      break;
    case 429:
      code = grpc::StatusCode::RESOURCE_EXHAUSTED;
      break;
    case 503:
      code = grpc::StatusCode::UNAVAILABLE;
      break;
    default:
      break;
  }
  std::string message = e.message;
  if (!e.param.empty() && message.rfind(e.param, 0) != 0) message = e.param + ": " + message;
  return grpc::Status(code, message);
}

// The /v1/completions body a Generate request stands for (its sampling fields only), so both
// front ends share one validator and the same generation_config.json defaults.
json completion_body(const v1::GenerateRequest& r) {
  json body = json::object();
  if (r.has_max_tokens()) body["max_tokens"] = r.max_tokens();
  if (r.has_min_tokens()) body["min_tokens"] = r.min_tokens();
  if (r.has_temperature()) body["temperature"] = r.temperature();
  if (r.has_top_p()) body["top_p"] = r.top_p();
  if (r.has_top_k()) body["top_k"] = r.top_k();
  if (r.has_min_p()) body["min_p"] = r.min_p();
  if (r.has_seed()) body["seed"] = r.seed();
  if (r.stop_size() > 0) body["stop"] = std::vector<std::string>(r.stop().begin(), r.stop().end());
  if (r.include_stop_str_in_output()) body["include_stop_str_in_output"] = true;
  if (r.stop_token_ids_size() > 0) {
    body["stop_token_ids"] = std::vector<int32_t>(r.stop_token_ids().begin(), r.stop_token_ids().end());
  }
  if (r.has_presence_penalty()) body["presence_penalty"] = r.presence_penalty();
  if (r.has_frequency_penalty()) body["frequency_penalty"] = r.frequency_penalty();
  if (r.has_repetition_penalty()) body["repetition_penalty"] = r.repetition_penalty();
  if (r.has_logprobs()) body["logprobs"] = r.logprobs();
  if (r.ignore_eos()) body["ignore_eos"] = true;
  if (r.has_skip_special_tokens()) body["skip_special_tokens"] = r.skip_special_tokens();
  return body;
}

const char* finish_reason_text(FinishReason reason) { return reason == FinishReason::kLength ? "length" : "stop"; }

class StrataService final : public v1::Strata::Service {
 public:
  StrataService(Engine& engine, const Tokenizer& tokenizer, ServerMetrics& metrics, const GrpcServerOptions& options)
      : engine_(engine), tokenizer_(tokenizer), token_texts_(tokenizer), metrics_(metrics), options_(options) {}

  void set_draining() { draining_ = true; }

  grpc::Status Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                        grpc::ServerWriter<v1::GenerateResponse>* writer) override {
    const auto arrival = Clock::now();
    if (auto e = check_call(*context, request->model())) return *e;
    if (draining_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down");

    GenerationSpec spec;
    if (auto e =
            parse_generation_spec(completion_body(*request), /*chat=*/false, engine_.generation_defaults(), spec)) {
      return to_grpc_status(*e);
    }
    std::vector<int32_t> prompt_ids;
    switch (request->prompt_case()) {
      case v1::GenerateRequest::kText:
        prompt_ids = tokenizer_.encode(request->text(),
                                       request->has_add_special_tokens() ? request->add_special_tokens() : true);
        break;
      case v1::GenerateRequest::kTokenIds:
        prompt_ids.assign(request->token_ids().ids().begin(), request->token_ids().ids().end());
        break;
      default:
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "prompt is required (text or token_ids)");
    }
    const int kv_tokens = engine_.config().num_kv_blocks * engine_.config().block_size;
    int max_tokens = 0;
    if (auto e = resolve_max_tokens(spec, static_cast<int>(prompt_ids.size()), engine_.max_model_len(), kv_tokens,
                                    /*allow_zero=*/false, PromptFieldNames{}, max_tokens)) {
      return to_grpc_status(*e);
    }

    EngineRequest engine_request;
    engine_request.prompt_ids = prompt_ids;
    engine_request.params = spec.params;
    engine_request.params.max_tokens = max_tokens;
    auto submitted = engine_.submit(std::move(engine_request));
    if (!submitted.ok()) return to_grpc_status(api_error_from_status(submitted.status()));
    const std::shared_ptr<RequestStream> stream = std::move(*submitted);
    metrics_.observe_queue_time(seconds_between(arrival, Clock::now()));

    ChoiceDecoder decoder(tokenizer_, prompt_ids, spec.skip_special_tokens, spec.stop, spec.include_stop_str_in_output);
    int num_prompt_tokens = static_cast<int>(prompt_ids.size());
    int num_cached_tokens = 0;
    int num_output_tokens = 0;
    bool have_first_token = false;
    Clock::time_point last_token_time;
    const auto finish = [&](const char* reason) {
      metrics_.count_finished(reason, num_prompt_tokens, num_output_tokens);
      metrics_.observe_e2e_latency(seconds_between(arrival, Clock::now()));
    };
    const auto client_gone = [&] {
      engine_.cancel(stream->request_id());
      finish("abort");
      return grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the call");
    };

    while (true) {
      if (context->IsCancelled()) return client_gone();  // cancelled, or its deadline passed
      std::optional<RequestOutput> out = stream->next_for(kPollIntervalMs);
      if (!out) continue;
      if (out->num_prompt_tokens > 0) num_prompt_tokens = out->num_prompt_tokens;
      num_cached_tokens = out->num_cached_tokens;
      if (!out->new_tokens.empty()) {
        const auto now = Clock::now();
        if (!have_first_token) {
          have_first_token = true;
          metrics_.observe_time_to_first_token(seconds_between(arrival, now));
        } else {
          const double per_token = seconds_between(last_token_time, now) / static_cast<double>(out->new_tokens.size());
          for (size_t k = 0; k < out->new_tokens.size(); ++k) metrics_.observe_inter_token_latency(per_token);
        }
        last_token_time = now;
      }

      v1::GenerateResponse response;
      const DecodedOutput decoded = decoder.push(*out, [&](const SampledToken& token) {
        ++num_output_tokens;
        response.add_token_ids(token.token_id);
        if (spec.want_logprobs) add_logprob(response, token);
      });
      response.set_text(decoded.text);
      if (decoded.cancel_request) engine_.cancel(stream->request_id());

      if (decoded.finish_reason == FinishReason::kError || decoded.finish_reason == FinishReason::kAbort) {
        if (response.token_ids_size() > 0 || !response.text().empty()) writer->Write(response);
        if (decoded.finish_reason == FinishReason::kAbort) {
          finish("abort");
          if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the call");
          return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down; the request was aborted");
        }
        finish("error");
        // Late rejections (resource_exhausted: the queue filled up) keep their code.
        if (out->error.ok() || out->error.code() == StatusCode::kInternal) {
          return grpc::Status(grpc::StatusCode::INTERNAL, "generation failed: " + out->error.message());
        }
        return to_grpc_status(api_error_from_status(out->error));
      }
      if (decoded.finished()) {
        response.set_finish_reason(finish_reason_text(decoded.finish_reason));
        v1::Usage* usage = response.mutable_usage();
        usage->set_prompt_tokens(num_prompt_tokens);
        usage->set_completion_tokens(num_output_tokens);
        usage->set_cached_prompt_tokens(num_cached_tokens);
        finish(finish_reason_text(decoded.finish_reason));
        if (!writer->Write(response)) return grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the call");
        return grpc::Status::OK;
      }
      if (response.token_ids_size() == 0 && response.text().empty()) continue;
      if (!writer->Write(response)) return client_gone();
    }
  }

  grpc::Status Tokenize(grpc::ServerContext* context, const v1::TokenizeRequest* request,
                        v1::TokenizeResponse* response) override {
    if (auto e = check_call(*context, request->model())) return *e;
    const bool add_special_tokens = request->has_add_special_tokens() ? request->add_special_tokens() : true;
    const std::vector<int32_t> ids = tokenizer_.encode(request->text(), add_special_tokens);
    for (int32_t id : ids) response->add_token_ids(id);
    response->set_count(static_cast<int32_t>(ids.size()));
    response->set_max_model_len(engine_.max_model_len());
    if (request->return_token_strs()) {
      for (int32_t id : ids) response->add_token_strs(tokenizer_.id_to_token(id));
    }
    if (request->detokenize_ids_size() > 0) {
      const int32_t vocab = tokenizer_.vocab_size();
      for (int32_t id : request->detokenize_ids()) {
        if (id < 0 || id >= vocab) {
          return grpc::Status(
              grpc::StatusCode::INVALID_ARGUMENT,
              "detokenize_ids must be token ids in [0, " + std::to_string(vocab) + "), got " + std::to_string(id));
        }
      }
      const std::vector<int32_t> to_decode(request->detokenize_ids().begin(), request->detokenize_ids().end());
      response->set_detokenized_text(tokenizer_.decode(to_decode, true));
    }
    return grpc::Status::OK;
  }

  grpc::Status ListModels(grpc::ServerContext* context, const v1::ListModelsRequest* /*request*/,
                          v1::ListModelsResponse* response) override {
    if (auto e = check_call(*context, "")) return *e;
    v1::Model* model = response->add_models();
    model->set_id(options_.served_model_name);
    model->set_root(options_.model_dir);
    model->set_created(options_.created_unix_s);
    model->set_max_model_len(engine_.max_model_len());
    model->set_owned_by("strata");
    return grpc::Status::OK;
  }

 private:
  // API key (metadata 'authorization: Bearer <key>') and the request's model name.
  std::optional<grpc::Status> check_call(const grpc::ServerContext& context, const std::string& model) const {
    std::optional<std::string_view> authorization;
    const auto& metadata = context.client_metadata();
    if (auto it = metadata.find("authorization"); it != metadata.end()) {
      authorization = std::string_view(it->second.data(), it->second.size());
    }
    if (!authorization_matches(authorization, options_.api_key)) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "invalid or missing API key; send metadata 'authorization: Bearer <key>'");
    }
    if (!model.empty()) {
      if (auto e = check_model_name(model, options_.served_model_name)) return to_grpc_status(*e);
    }
    return std::nullopt;
  }

  std::string token_text(int32_t id) const { return token_texts_.text(id); }

  void add_logprob(v1::GenerateResponse& response, const SampledToken& token) const {
    v1::TokenLogprob* lp = response.add_logprobs();
    lp->set_token_id(token.token_id);
    lp->set_token(token_text(token.token_id));
    lp->set_logprob(token.logprob);
    for (const auto& alt : token.top) {
      v1::TopLogprob* top = lp->add_top_logprobs();
      top->set_token_id(alt.token_id);
      top->set_token(token_text(alt.token_id));
      top->set_logprob(alt.logprob);
    }
  }

  Engine& engine_;
  const Tokenizer& tokenizer_;
  TokenTextDecoder token_texts_;  // logprob tokens as the exact text they add
  ServerMetrics& metrics_;
  const GrpcServerOptions& options_;
  std::atomic<bool> draining_{false};
};

std::string host_port(const std::string& host, int port) {
  const bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace

struct GrpcServer::Impl {
  Impl(Engine& engine, const Tokenizer& tokenizer, ServerMetrics& metrics, GrpcServerOptions opts)
      : options(std::move(opts)), service(engine, tokenizer, metrics, options) {}

  GrpcServerOptions options;
  StrataService service;  // reads `options`, declared before it
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  bool shut_down = false;
};

GrpcServer::GrpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcServer::~GrpcServer() {
  if (impl_) shutdown(0);
}

Result<std::unique_ptr<GrpcServer>> GrpcServer::start(Engine& engine, const Tokenizer& tokenizer,
                                                      ServerMetrics& metrics, GrpcServerOptions options) {
  auto impl = std::make_unique<Impl>(engine, tokenizer, metrics, std::move(options));
  const std::string address = host_port(impl->options.host, impl->options.port);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which would let two servers share a port silently.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<size_t>(impl->options.max_message_bytes, INT32_MAX)));
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &impl->port);
  builder.RegisterService(&impl->service);
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    if (impl->server) impl->server->Shutdown();
    return Status(StatusCode::kUnavailable, "gRPC: cannot listen on " + address + " (in use, or not a local address)");
  }
  if (grpc::HealthCheckServiceInterface* health = impl->server->GetHealthCheckService()) {
    health->SetServingStatus(true);
    health->SetServingStatus(kServiceName, true);
  }
  return std::unique_ptr<GrpcServer>(new GrpcServer(std::move(impl)));
}

int GrpcServer::port() const { return impl_->port; }

std::string GrpcServer::address() const { return host_port(impl_->options.host, impl_->port); }

void GrpcServer::set_draining() {
  impl_->service.set_draining();
  if (grpc::HealthCheckServiceInterface* health = impl_->server->GetHealthCheckService()) {
    health->SetServingStatus(false);
  }
}

void GrpcServer::shutdown(int deadline_ms) {
  if (impl_->shut_down) return;
  impl_->shut_down = true;
  set_draining();
  if (grpc::HealthCheckServiceInterface* health = impl_->server->GetHealthCheckService()) {
    health->Shutdown();  // ends Watch streams at once
  }
  // Sends GOAWAY and waits for running calls; an idle client that is slow to answer the
  // GOAWAY ping (e.g. Python's, between calls) can hold this up to the deadline too.
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
  impl_->server->Wait();
}

}  // namespace strata
