// HttpServer implementation over Boost.Beast (1.74): one strand per connection, keep-alive,
// Expect: 100-continue, body limits, chunked streaming, and client-disconnect detection while a
// request is being answered. With request_conversion.cpp, the only translation units that include Beast.
#include "server/http/http_server.h"

#include <sys/socket.h>

#include <atomic>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <future>
#include <mutex>
#include <spdlog/spdlog.h>
#include <thread>
#include <unordered_map>

#include "server/http/request_conversion.h"

namespace strata {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::optional<std::string_view> HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

namespace {

constexpr auto kBodyReadTimeout = std::chrono::seconds(60);
constexpr auto kLingerTimeout = std::chrono::seconds(2);
constexpr size_t kFirstReadBytes = 4096;

// An OpenAI-style error body for failures found before a request reaches the handler.
std::string error_body(int status, const std::string& message, const char* code) {
  const char* type = status >= 500 ? "server_error" : "invalid_request_error";
  return std::string(R"({"error":{"message":")") + message + R"(","type":")" + type +
         R"(","param":null,"code":)" + (code ? std::string("\"") + code + "\"" : "null") + "}}";
}

std::string status_line(int status) {
  const auto reason = http::obsolete_reason(static_cast<http::status>(status));
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason.data(), reason.size()) + "\r\n";
}

bool is_http_parse_error(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category();
}

}  // namespace

class Connection;

// State shared by the server and its connections; connections hold it so that one kept
// alive by a handler after the server object is gone still finds valid state.
struct ServerShared {
  HttpServerOptions options;
  HttpHandler handler;
  std::atomic<int> active_exchanges{0};
  std::atomic<bool> stopping{false};
  std::atomic<bool> draining{false};
  std::atomic<int> num_connections{0};
  std::mutex mu;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections;
};

class Exchange;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `over_limit`: the connection is beyond max_connections and is only told so.
  Connection(tcp::socket socket, std::shared_ptr<ServerShared> shared, bool over_limit)
      : stream_(std::move(socket)), shared_(std::move(shared)), over_limit_(over_limit) {
    shared_->num_connections++;
  }
  ~Connection() {
    shared_->num_connections--;
    std::lock_guard lock(shared_->mu);
    shared_->connections.erase(this);
  }

  net::any_io_executor executor() { return stream_.get_executor(); }

  void start() {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
    net::dispatch(executor(), [self = shared_from_this()] {
      if (self->over_limit_) {
        return self->reject(503,
                            "The server has reached its limit of " + std::to_string(self->shared_->options.max_connections) +
                                " connections (--max-connections); retry shortly",
                            "service_unavailable", {{"Retry-After", "1"}});
      }
      self->read_request();
    });
  }

  // Any thread.
  void close_from_outside() {
    net::post(executor(), [self = shared_from_this()] { self->do_close(); });
  }

  // ---- called by Exchange, on the strand ----
  bool is_current(uint64_t seq) const { return !closed_ && seq == exchange_seq_ && exchange_open_; }
  bool is_closed_for(uint64_t seq) const { return closed_ || seq != exchange_seq_; }

  void respond(uint64_t seq, HttpResponse r) {
    if (!is_current(seq) || answer_started_) return;
    answer_started_ = true;
    std::string head = status_line(r.status);
    head += "Server: strata\r\nContent-Type: " + r.content_type + "\r\n";
    for (const auto& [k, v] : r.headers) head += k + ": " + v + "\r\n";
    head += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
    head += connection_header();
    head += "\r\n";
    head += r.body;
    response_complete_ = true;
    queue_write(std::move(head));
  }

  void start_stream(uint64_t seq, int status, const std::string& content_type, const HttpHeaders& headers) {
    if (!is_current(seq) || answer_started_) return;
    answer_started_ = true;
    streaming_ = true;
    // HTTP/1.0 has no chunked encoding: the body runs until the connection closes.
    chunked_ = http_version_ >= 11;
    if (!chunked_) keep_alive_ = false;
    std::string head = status_line(status);
    head += "Server: strata\r\nContent-Type: " + content_type + "\r\nCache-Control: no-cache\r\n";
    for (const auto& [k, v] : headers) head += k + ": " + v + "\r\n";
    if (chunked_) head += "Transfer-Encoding: chunked\r\n";
    head += connection_header();
    head += "\r\n";
    queue_write(std::move(head));
  }

  void write_chunk(uint64_t seq, std::string data) {
    if (!is_current(seq) || !streaming_ || response_complete_ || data.empty()) return;
    if (!chunked_) {
      queue_write(std::move(data));
      return;
    }
    char size[32];
    const int n = std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
    std::string frame(size, static_cast<size_t>(n));
    frame += data;
    frame += "\r\n";
    queue_write(std::move(frame));
  }

  void end_stream(uint64_t seq) {
    if (!is_current(seq) || !streaming_ || response_complete_) return;
    response_complete_ = true;
    queue_write(chunked_ ? std::string("0\r\n\r\n") : std::string());
  }

  void abandon(uint64_t seq);  // the handler dropped its exchange without answering

 private:
  std::string connection_header() const {
    if (!keep_alive_ || shared_->stopping || shared_->draining) return "Connection: close\r\n";
    return http_version_ < 11 ? "Connection: keep-alive\r\n" : "";
  }

  void read_request() {
    if (closed_) return;
    if (shared_->stopping) return graceful_close();
    parser_.emplace();
    parser_->body_limit(shared_->options.max_body_bytes);
    parser_->header_limit(static_cast<uint32_t>(shared_->options.max_header_bytes));
    // A new connection, or a pipelined request already buffered: the header deadline runs now.
    if (exchange_seq_ == 0 || buffer_.size() > 0) return read_header();
    // Between the requests of a keep-alive connection: the idle timeout, until the next
    // request's first bytes arrive.
    stream_.expires_after(std::chrono::seconds(shared_->options.idle_timeout_s));
    stream_.async_read_some(buffer_.prepare(kFirstReadBytes), [self = shared_from_this()](beast::error_code ec, size_t n) {
      if (ec) return self->on_read_error(ec);
      self->buffer_.commit(n);
      self->read_header();
    });
  }

  // Slowloris defence: the whole header within header_read_timeout_s, however it trickles in.
  void read_header() {
    stream_.expires_after(std::chrono::seconds(shared_->options.header_read_timeout_s));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    auto& req = parser_->get();
    if (auto len = parser_->content_length(); len && *len > shared_->options.max_body_bytes) {
      return reject(413,
                    "Request body of " + std::to_string(*len) + " bytes exceeds the limit of " +
                        std::to_string(shared_->options.max_body_bytes) + " bytes",
                    "request_too_large");
    }
    stream_.expires_after(kBodyReadTimeout);
    if (beast::iequals(req[http::field::expect], "100-continue") && !parser_->is_done()) {
      // Tell the client to send the body now rather than after its own timeout.
      auto msg = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      net::async_write(stream_, net::buffer(*msg), [self = shared_from_this(), msg](beast::error_code ec, size_t) {
        if (ec) return self->do_close();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    if (parser_->is_done()) return on_request(beast::error_code());
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_request(ec); });
  }

  void on_read_error(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return reject(413, "Request body exceeds the limit of " + std::to_string(shared_->options.max_body_bytes) + " bytes",
                    "request_too_large");
    }
    if (ec == http::error::header_limit) return reject(431, "Request header fields too large", nullptr);
    if (is_http_parse_error(ec) && ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return reject(400, "Malformed HTTP request: " + ec.message(), nullptr);
    }
    do_close();  // end of stream, timeout, reset: nothing to answer
  }

  // Answers a request that never reaches the handler, then closes the connection.
  void reject(int status, const std::string& message, const char* code, HttpHeaders headers = {}) {
    keep_alive_ = false;
    http_version_ = 11;
    exchange_open_ = true;
    answer_started_ = false;
    ++exchange_seq_;
    shared_->active_exchanges++;
    HttpResponse r;
    r.status = status;
    r.body = error_body(status, message, code);
    r.headers = std::move(headers);
    stream_.expires_after(kLingerTimeout);
    respond(exchange_seq_, std::move(r));
  }

  void on_request(beast::error_code ec);

  void watch_disconnect(uint64_t seq) {
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this(), seq](beast::error_code ec) {
      if (ec == net::error::operation_aborted || !self->is_current(seq) || self->response_complete_) return;
      if (ec) return self->client_gone();
      char byte;
      const ssize_t n = ::recv(self->stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return self->client_gone();
      if (n < 0) return self->watch_disconnect(seq);  // spurious wake-up
      // n > 0: the client pipelined its next request; leave the bytes for the next read.
    });
  }

  void client_gone();

  void queue_write(std::string bytes) {
    if (closed_) return;
    write_pending_ += bytes;
    if (!writing_) flush_writes();
  }

  void flush_writes() {
    if (closed_) return;
    if (write_pending_.empty()) {
      if (response_complete_ && exchange_open_) finish_exchange();
      return;
    }
    writing_ = true;
    write_inflight_.swap(write_pending_);
    write_pending_.clear();
    net::async_write(stream_, net::buffer(write_inflight_), [self = shared_from_this()](beast::error_code ec, size_t) {
      self->writing_ = false;
      self->write_inflight_.clear();
      if (ec) return self->client_gone();
      self->flush_writes();
    });
  }

  void finish_exchange();

  // Half-closes and drains what the client still sends, so that it reads our last response
  // instead of a reset.
  void graceful_close() {
    if (closed_) return;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(kLingerTimeout);
    drain_input();
  }

  void drain_input() {
    stream_.async_read_some(net::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->do_close();
      self->drain_input();
    });
  }

  void do_close() {
    if (closed_) return;
    if (exchange_open_) {
      // Closed while a request was in flight: tell its handler.
      client_gone();
      return;
    }
    closed_ = true;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  std::shared_ptr<ServerShared> shared_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string remote_;
  const bool over_limit_;
  std::weak_ptr<Exchange> exchange_;
  uint64_t exchange_seq_ = 0;
  bool exchange_open_ = false;     // a request was read and is not fully answered
  bool answer_started_ = false;    // respond() or start_stream() was called
  bool streaming_ = false;
  bool chunked_ = false;
  bool response_complete_ = false;  // the whole answer is queued
  bool keep_alive_ = false;
  unsigned http_version_ = 11;
  bool closed_ = false;
  bool writing_ = false;
  std::string write_pending_;
  std::string write_inflight_;
  char scratch_[4096];
};

class Exchange : public HttpExchange, public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(std::shared_ptr<Connection> connection, uint64_t seq, HttpRequest request)
      : connection_(std::move(connection)), executor_(connection_->executor()), seq_(seq), request_(std::move(request)) {}
  ~Exchange() override {
    if (!answered_) {
      auto c = connection_;
      const uint64_t seq = seq_;
      net::post(executor_, [c, seq] { c->abandon(seq); });
    }
  }

  const HttpRequest& request() const override { return request_; }

  void respond(HttpResponse response) override {
    answered_ = true;
    net::dispatch(executor_, [c = connection_, seq = seq_, r = std::move(response)]() mutable {
      c->respond(seq, std::move(r));
    });
  }
  void start_stream(int status, std::string content_type, HttpHeaders headers) override {
    answered_ = true;
    net::dispatch(executor_, [c = connection_, seq = seq_, status, ct = std::move(content_type),
                              h = std::move(headers)] { c->start_stream(seq, status, ct, h); });
  }
  void write_chunk(std::string data) override {
    net::dispatch(executor_, [c = connection_, seq = seq_, d = std::move(data)]() mutable {
      c->write_chunk(seq, std::move(d));
    });
  }
  void end_stream() override {
    net::dispatch(executor_, [c = connection_, seq = seq_] { c->end_stream(seq); });
  }
  void post(std::function<void()> fn) override { net::post(executor_, std::move(fn)); }

  void on_disconnect(std::function<void()> fn) override {
    net::dispatch(executor_, [self = shared_from_this(), fn = std::move(fn)]() mutable {
      if (self->finished_) return;  // answered already: the client can no longer miss it
      if (self->closed_) {
        fn();
        return;
      }
      self->on_disconnect_ = std::move(fn);
    });
  }
  bool closed() const override { return closed_; }

  // On the strand.
  void fire_disconnect() {
    if (closed_) return;
    closed_ = true;
    if (auto fn = std::move(on_disconnect_)) fn();
  }
  // On the strand, once the whole answer is written: the callback is released (see
  // Connection::finish_exchange).
  void finish() {
    finished_ = true;
    auto released = std::move(on_disconnect_);
    on_disconnect_ = nullptr;
  }

 private:
  std::shared_ptr<Connection> connection_;
  net::any_io_executor executor_;
  const uint64_t seq_;
  HttpRequest request_;
  std::atomic<bool> answered_{false};
  std::atomic<bool> closed_{false};
  bool finished_ = false;  // on the strand
  std::function<void()> on_disconnect_;
};

void Connection::on_request(beast::error_code ec) {
  if (ec) return on_read_error(ec);
  auto msg = parser_->release();
  HttpRequest req = to_http_request(msg);
  req.remote = remote_;
  keep_alive_ = msg.keep_alive();
  http_version_ = msg.version();
  stream_.expires_never();

  exchange_open_ = true;
  answer_started_ = false;
  response_complete_ = false;
  const uint64_t seq = ++exchange_seq_;
  shared_->active_exchanges++;
  auto exchange = std::make_shared<Exchange>(shared_from_this(), seq, std::move(req));
  exchange_ = exchange;
  watch_disconnect(seq);
  try {
    shared_->handler(exchange);
  } catch (const std::exception& e) {
    spdlog::error("http handler threw: {}", e.what());
    HttpResponse r;
    r.status = 500;
    r.body = error_body(500, "internal error", nullptr);
    exchange->respond(std::move(r));
  }
}

void Connection::finish_exchange() {
  // The answer is out: the disconnect callback can no longer run. Dropping it now breaks the
  // cycle exchange -> callback -> handler state -> exchange that would otherwise keep the
  // exchange, its handler's state and this connection alive for good (about 9.5 KB a request).
  if (auto ex = exchange_.lock()) ex->finish();
  exchange_open_ = false;
  response_complete_ = false;
  answer_started_ = false;
  streaming_ = false;
  ++exchange_seq_;
  shared_->active_exchanges--;
  if (!keep_alive_ || shared_->stopping) return graceful_close();
  read_request();
}

void Connection::client_gone() {
  const bool was_open = exchange_open_;
  if (was_open) {
    if (auto ex = exchange_.lock()) ex->fire_disconnect();
    exchange_open_ = false;
    ++exchange_seq_;
    shared_->active_exchanges--;
  }
  do_close();
}

void Connection::abandon(uint64_t seq) {
  if (!is_current(seq) || answer_started_) return;
  HttpResponse r;
  r.status = 500;
  r.body = error_body(500, "the request was dropped without an answer", nullptr);
  respond(seq, std::move(r));
}

struct HttpServer::Impl {
  std::shared_ptr<ServerShared> shared = std::make_shared<ServerShared>();
  net::io_context ioc;
  // The acceptor and the signal set are touched by their handlers and by stop_accepting() /
  // stop(); one strand serializes them.
  net::strand<net::io_context::executor_type> control{net::make_strand(ioc)};
  tcp::acceptor acceptor{control};
  net::signal_set signals{control};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  std::mutex signal_mu;
  std::function<void(int)> on_signal;  // under signal_mu
  int port = 0;

  void do_accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (!acceptor.is_open() || ec == net::error::operation_aborted) return;
        spdlog::warn("accept failed: {}", ec.message());
        if (ec == net::error::no_descriptors) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return do_accept();
      }
      beast::error_code opt_ec;
      socket.set_option(tcp::no_delay(true), opt_ec);
      const int limit = shared->options.max_connections;
      const bool over_limit = limit > 0 && shared->num_connections.load() >= limit;
      auto conn = std::make_shared<Connection>(std::move(socket), shared, over_limit);
      {
        std::lock_guard lock(shared->mu);
        shared->connections.emplace(conn.get(), conn);
      }
      conn->start();
      do_accept();
    });
  }

  void wait_signal() {
    signals.async_wait([this](beast::error_code ec, int signo) {
      if (ec) return;
      std::function<void(int)> fn;
      {
        std::lock_guard lock(signal_mu);
        fn = on_signal;
      }
      if (fn) fn(signo);
      wait_signal();
    });
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::start(const HttpServerOptions& options, HttpHandler handler) {
  auto impl = std::make_unique<Impl>();
  impl->shared->options = options;
  impl->shared->handler = std::move(handler);
  beast::error_code ec;
  auto address = net::ip::make_address(options.host, ec);
  if (ec) return invalid_argument("--host " + options.host + " is not an IP address");
  tcp::endpoint endpoint(address, static_cast<unsigned short>(options.port));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status(StatusCode::kUnavailable,
                  "cannot listen on " + options.host + ":" + std::to_string(options.port) + ": " + ec.message());
  }
  impl->port = impl->acceptor.local_endpoint().port();
  impl->signals.add(SIGINT);
  impl->signals.add(SIGTERM);
  impl->wait_signal();
  impl->do_accept();
  impl->work.emplace(impl->ioc.get_executor());
  const int n = std::max(1, options.num_io_threads);
  for (int i = 0; i < n; ++i) {
    impl->threads.emplace_back([ioc = &impl->ioc] {
      while (true) {
        try {
          ioc->run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("io thread: {}", e.what());
        }
      }
    });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

int HttpServer::port() const { return impl_->port; }

void HttpServer::on_signal(std::function<void(int)> fn) {
  std::lock_guard lock(impl_->signal_mu);
  impl_->on_signal = std::move(fn);
}

void HttpServer::stop_accepting() {
  impl_->shared->stopping = true;
  auto done = std::make_shared<std::promise<void>>();
  net::post(impl_->control, [impl = impl_.get(), done] {
    beast::error_code ec;
    impl->acceptor.close(ec);
    done->set_value();
  });
  done->get_future().wait_for(std::chrono::seconds(5));
}

void HttpServer::set_draining() { impl_->shared->draining = true; }

int HttpServer::num_active_exchanges() const { return impl_->shared->active_exchanges.load(); }

int HttpServer::num_connections() const { return impl_->shared->num_connections.load(); }

void HttpServer::stop() {
  if (!impl_ || impl_->threads.empty()) return;
  impl_->shared->stopping = true;
  {
    std::vector<std::shared_ptr<Connection>> conns;
    {
      std::lock_guard lock(impl_->shared->mu);
      for (auto& [ptr, weak] : impl_->shared->connections) {
        if (auto c = weak.lock()) conns.push_back(std::move(c));
      }
    }
    for (auto& c : conns) c->close_from_outside();
  }
  net::post(impl_->control, [impl = impl_.get()] {
    beast::error_code ec;
    impl->acceptor.close(ec);
    impl->signals.cancel(ec);
  });
  impl_->work.reset();
  // Let the closes run; whatever is still queued after that is dropped.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!impl_->ioc.stopped() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace strata
