// Fuzzes what HttpServer does with the bytes a client sends: Beast's request parser under the
// server's default header and body limits, request after request on one connection
// (keep-alive, pipelining), and each parsed message turned into an HttpRequest.
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/http/http_server.h"
#include "server/http/request_conversion.h"

namespace {

namespace http = boost::beast::http;
namespace net = boost::asio;

// One parser per request, as Connection::read_request makes; false when the connection would
// end here (malformed, a limit hit, or the bytes run out mid-request).
bool parse_one(const strata::HttpServerOptions& options, std::string_view& pending) {
  http::request_parser<http::string_body> parser;
  parser.body_limit(options.max_body_bytes);
  parser.header_limit(static_cast<uint32_t>(options.max_header_bytes));
  boost::beast::error_code ec;
  // The header first (async_read_header), then the body (async_read, eager).
  while (!parser.is_header_done()) {
    const size_t used = parser.put(net::buffer(pending.data(), pending.size()), ec);
    pending.remove_prefix(used);
    if (ec || used == 0) return false;
  }
  if (auto len = parser.content_length(); len && *len > options.max_body_bytes) return false;  // 413
  parser.eager(true);
  while (!parser.is_done()) {
    const size_t used = parser.put(net::buffer(pending.data(), pending.size()), ec);
    pending.remove_prefix(used);
    if (ec == http::error::need_more && pending.empty()) {
      parser.put_eof(ec);  // the client half-closed: only a body delimited by EOF completes
      if (ec || !parser.is_done()) return false;
      break;
    }
    if (ec && ec != http::error::need_more) return false;
    if (used == 0 && !parser.is_done()) return false;
  }

  strata::BeastRequest msg = parser.release();
  const bool keep_alive = msg.keep_alive();
  const size_t body_bytes = msg.body().size();
  strata::HttpRequest req = strata::to_http_request(msg);
  // What the handler relies on: the path is the target's prefix, header names are lower-case,
  // the body arrived whole and within the limit.
  if (req.target.compare(0, req.path.size(), req.path) != 0) std::abort();
  if (req.path.find('?') != std::string::npos) std::abort();
  for (const auto& [name, value] : req.headers) {
    for (char c : name) {
      if (c >= 'A' && c <= 'Z') std::abort();
    }
  }
  if (req.body.size() != body_bytes || req.body.size() > options.max_body_bytes) std::abort();
  return keep_alive;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const strata::HttpServerOptions options;  // the limits `strata serve` starts with
  std::string_view pending(reinterpret_cast<const char*>(data), size);
  while (!pending.empty() && parse_one(options, pending)) {
  }
  return 0;
}
