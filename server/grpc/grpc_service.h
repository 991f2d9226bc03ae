// GrpcServer: the gRPC front end of `strata serve` — strata.v1.Strata (Generate, Tokenize,
// ListModels; proto/strata.proto) plus the standard grpc.health.v1.Health service — on the
// same Engine, validation and detokenization as the HTTP API. gRPC stays inside the .cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/core/status.h"
#include "engine/engine.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/metrics/metrics.h"

namespace strata {

struct GrpcServerOptions {
  std::string host = "127.0.0.1";
  int port = 50051;  // 0: any free port (port() says which)
  std::string served_model_name;
  std::string model_dir;
  std::string api_key;  // empty: no authentication; else 'authorization: Bearer <key>' metadata
  int64_t created_unix_s = 0;
  size_t max_message_bytes = size_t{8} << 20;  // largest request message accepted
};

class GrpcServer {
 public:
  // Binds and starts serving; fails when the address cannot be bound.
  static Result<std::unique_ptr<GrpcServer>> start(Engine& engine, const Tokenizer& tokenizer, ServerMetrics& metrics,
                                                   GrpcServerOptions options);
  ~GrpcServer();  // shuts down at once if shutdown() was not called

  int port() const;
  // "host:port" as bound ("[host]:port" for IPv6 hosts).
  std::string address() const;
  // Health turns NOT_SERVING and new Generate calls fail with UNAVAILABLE.
  void set_draining();
  // Stops taking calls; calls still running after `deadline_ms` are cancelled. Returns once
  // every handler has returned.
  void shutdown(int deadline_ms);

  struct Impl;

 private:
  explicit GrpcServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata
