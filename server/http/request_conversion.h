// The step of HttpServer between Beast's parser and the handler: a parsed request message as
// an HttpRequest. Apart from http_server.cpp so that tests/fuzz can drive it without sockets.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "server/http/http_server.h"

namespace strata {

using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;

// Method, target, path (the target up to '?'), headers with lower-cased names, and the body,
// which is moved out of `msg`. `remote` is left for the caller.
HttpRequest to_http_request(BeastRequest& msg);

}  // namespace strata
