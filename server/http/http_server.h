// HttpServer: an asynchronous HTTP/1.1 server (Boost.Beast over a few io threads) that hands
// each parsed request to a handler as an HttpExchange. Beast stays inside http_server.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/core/status.h"

namespace strata {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query as sent
  std::string path;    // target without the query
  HttpHeaders headers;  // names lower-cased
  std::string body;
  std::string remote;  // peer address, for logs

  // The first header named `name` (lower-case), if any.
  std::optional<std::string_view> header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  HttpHeaders headers;
  std::string body;
};

// One request in flight. The handler answers exactly once: respond(), or start_stream()
// followed by write_chunk()s and end_stream(). Every method is thread-safe: it hops onto the
// connection's strand, where all of the exchange's callbacks also run.
class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  virtual const HttpRequest& request() const = 0;

  virtual void respond(HttpResponse response) = 0;
  // Sends the status line and headers of a chunked response (Transfer-Encoding: chunked).
  virtual void start_stream(int status, std::string content_type, HttpHeaders headers = {}) = 0;
  virtual void write_chunk(std::string data) = 0;
  virtual void end_stream() = 0;

  // Runs `fn` on the exchange's strand, serialized with its other callbacks.
  virtual void post(std::function<void()> fn) = 0;
  // `fn` runs once, on the strand, if the client goes away before the answer is complete.
  virtual void on_disconnect(std::function<void()> fn) = 0;
  // True once the client went away (or the server closed the connection).
  virtual bool closed() const = 0;
};

using HttpHandler = std::function<void(std::shared_ptr<HttpExchange>)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0: any free port (see HttpServer::port())
  int num_io_threads = 2;
  size_t max_body_bytes = size_t{8} << 20;
  size_t max_header_bytes = 16 << 10;
  int idle_timeout_s = 60;  // keep-alive connections idle longer than this between requests are closed
  // A request's header must arrive in full within this many seconds of its first byte (of the
  // connection's opening, for its first request); slower clients are disconnected.
  int header_read_timeout_s = 10;
  // Open connections at most (0: no limit); a connection beyond it gets 503 with Retry-After
  // and is closed.
  int max_connections = 0;
};

class HttpServer {
 public:
  // Binds and listens (errors come back here), then serves on its own io threads.
  static Result<std::unique_ptr<HttpServer>> start(const HttpServerOptions& options, HttpHandler handler);
  ~HttpServer();

  int port() const;
  // Registers `fn` to run (on an io thread) when SIGINT or SIGTERM arrives.
  void on_signal(std::function<void(int)> fn);
  // From now on every response says `Connection: close`, so that clients and load balancers
  // reconnect elsewhere; connections are still accepted (a drain answers /ready with 503
  // rather than refusing connections).
  void set_draining();
  // Closes the listening socket; open connections keep being served.
  void stop_accepting();
  // Connections open now.
  int num_connections() const;
  // Exchanges started and not yet answered in full.
  int num_active_exchanges() const;
  // Closes every connection and joins the io threads.
  void stop();

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata
