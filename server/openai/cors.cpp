// CORS policy, preflight answers and the header-adding exchange wrapper.
#include "server/openai/cors.h"

#include <algorithm>
#include <cctype>
#include <functional>

namespace strata {

namespace {

std::string trim(std::string s) {
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

class HeaderExchange final : public HttpExchange {
 public:
  HeaderExchange(std::shared_ptr<HttpExchange> inner, HttpHeaders headers)
      : inner_(std::move(inner)), headers_(std::move(headers)) {}

  const HttpRequest& request() const override { return inner_->request(); }
  void respond(HttpResponse response) override {
    response.headers.insert(response.headers.end(), headers_.begin(), headers_.end());
    inner_->respond(std::move(response));
  }
  void start_stream(int status, std::string content_type, HttpHeaders headers) override {
    headers.insert(headers.end(), headers_.begin(), headers_.end());
    inner_->start_stream(status, std::move(content_type), std::move(headers));
  }
  void write_chunk(std::string data) override { inner_->write_chunk(std::move(data)); }
  void end_stream() override { inner_->end_stream(); }
  void post(std::function<void()> fn) override { inner_->post(std::move(fn)); }
  void on_disconnect(std::function<void()> fn) override { inner_->on_disconnect(std::move(fn)); }
  bool closed() const override { return inner_->closed(); }

 private:
  std::shared_ptr<HttpExchange> inner_;
  const HttpHeaders headers_;
};

}  // namespace

CorsPolicy CorsPolicy::parse(const std::string& flag) {
  CorsPolicy p;
  p.any_origin = false;
  size_t start = 0;
  while (start <= flag.size()) {
    const size_t comma = flag.find(',', start);
    std::string origin = trim(flag.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (origin == "*") {
      p.any_origin = true;
    } else if (!origin.empty()) {
      while (!origin.empty() && origin.back() == '/') origin.pop_back();  // "https://a.b/" names https://a.b
      p.origins.push_back(origin);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return p;
}

std::optional<std::string> CorsPolicy::allow_origin(const HttpRequest& request) const {
  const auto origin = request.header("origin");
  if (!origin) return std::nullopt;
  if (any_origin) return std::string("*");
  if (std::find(origins.begin(), origins.end(), *origin) != origins.end()) return std::string(*origin);
  return std::nullopt;
}

HttpHeaders response_headers(const HttpRequest& request, const CorsPolicy& cors, const std::string& fallback_id) {
  HttpHeaders h;
  const auto client_id = request.header("x-request-id");
  // A client's id is echoed only when it is a plain token (it lands in a header line).
  const bool usable = client_id && !client_id->empty() && client_id->size() <= 128 &&
                      std::all_of(client_id->begin(), client_id->end(),
                                  [](unsigned char c) { return c > 32 && c < 127; });
  h.emplace_back("X-Request-Id", usable ? std::string(*client_id) : fallback_id);
  if (auto allow = cors.allow_origin(request)) {
    h.emplace_back("Access-Control-Allow-Origin", *allow);
    if (*allow != "*") h.emplace_back("Vary", "Origin");
    h.emplace_back("Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
  }
  return h;
}

std::optional<HttpResponse> preflight_response(const HttpRequest& request, const CorsPolicy& cors) {
  if (request.method != "OPTIONS" || !request.header("origin") || !request.header("access-control-request-method")) {
    return std::nullopt;
  }
  HttpResponse r;
  r.status = 204;
  r.content_type = "text/plain; charset=utf-8";
  if (cors.allow_origin(request)) {  // a disallowed origin gets a 204 without them: the browser refuses
    r.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    const auto asked = request.header("access-control-request-headers");
    r.headers.emplace_back("Access-Control-Allow-Headers",
                           asked && !asked->empty() ? std::string(*asked) : "Authorization, Content-Type");
    r.headers.emplace_back("Access-Control-Max-Age", "600");
  }
  return r;
}

std::shared_ptr<HttpExchange> with_headers(std::shared_ptr<HttpExchange> inner, HttpHeaders headers) {
  return std::make_shared<HeaderExchange>(std::move(inner), std::move(headers));
}

}  // namespace strata
