// Beast request message -> HttpRequest (see request_conversion.h).
#include "server/http/request_conversion.h"

#include <cctype>

namespace strata {
namespace {

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

HttpRequest to_http_request(BeastRequest& msg) {
  HttpRequest req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  req.path = req.target.substr(0, req.target.find('?'));
  for (const auto& field : msg) {
    const auto name = field.name_string();
    req.headers.emplace_back(to_lower(std::string_view(name.data(), name.size())), std::string(field.value()));
  }
  req.body = std::move(msg.body());
  return req;
}

}  // namespace strata
