// `strata serve`: loads a checkpoint and serves the OpenAI-compatible HTTP API and the gRPC
// API (proto/strata.proto) until SIGINT or SIGTERM, then drains (stops accepting, lets running
// requests finish up to a grace period, aborts the rest) and exits 0.
//
// Settings come from, weakest first: a JSON --config file (keys are flag names, with '-' or
// '_'), environment variables STRATA_<FLAG_NAME> ('-' -> '_', upper case), command-line flags.
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sstream>
#include <thread>
#include <tuple>

#include "engine/engine.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/cli_args.h"
#include "server/cli_common.h"
#include "server/grpc/grpc_service.h"
#include "server/http/http_server.h"
#include "server/metrics/metrics.h"
#include "server/openai/chat_prompt.h"
#include "server/openai/openai_service.h"

namespace strata {

namespace {

std::vector<FlagSpec> serve_flag_specs() {
  std::vector<FlagSpec> specs = engine_flag_specs();
  const std::vector<FlagSpec> serve = {
      {"host", "address to listen on (0.0.0.0 for every interface, e.g. in a container)", true, "127.0.0.1"},
      {"port", "TCP port to listen on (0: any free port; the log says which)", true, "8000"},
      {"grpc-port", "TCP port of the gRPC API on --host (0: any free port, the log says which; -1: no gRPC)", true,
       "50051"},
      {"served-model-name", "model id of the API (the `model` field, /v1/models)", true, "the model folder's name"},
      {"api-key", "require 'Authorization: Bearer KEY' on /v1/* routes (or env STRATA_API_KEY)", true, ""},
      {"allowed-origins",
       "browser origins allowed to call the API (CORS): '*' for any, a comma-separated list of exact origins, or "
       "'' for none",
       true, "*"},
      {"max-queue", "most requests waiting for the engine; more get HTTP 429 (0: unbounded)", true, "0"},
      {"max-body-bytes", "largest request body accepted; larger ones get HTTP 413", true, "8388608"},
      {"max-connections",
       "most HTTP connections open at once; a connection beyond it gets HTTP 503 with Retry-After and is closed "
       "(0: the open-file limit less 256)",
       true, "0"},
      {"header-read-timeout-s",
       "seconds a client has to send a request's whole header from its first byte (from connecting, for the first "
       "request); slower clients are disconnected",
       true, "10"},
      {"idle-timeout-s", "seconds a keep-alive connection may sit idle between requests before it is closed", true,
       "60"},
      {"io-threads", "threads serving HTTP connections", true, "2"},
      {"chat-template", "chat template (a file, or the template text) replacing the checkpoint's", true, ""},
      {"shutdown-grace-s",
       "on SIGTERM/SIGINT, seconds running requests may take to finish; meanwhile /ready and new generation "
       "requests answer 503 with Retry-After",
       true, "10"},
      {"config", "JSON file of settings; keys are flag names; flags and env win over it", true, ""},
      {"help", "show this help", false, ""},
  };
  specs.insert(specs.end(), serve.begin(), serve.end());
  return specs;
}

std::string env_name(const std::string& flag) {
  std::string out = "STRATA_";
  for (char c : flag) out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

const FlagSpec* find_spec(const std::vector<FlagSpec>& specs, const std::string& name) {
  for (const auto& s : specs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

bool truthy(std::string v) {
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  return v == "1" || v == "true" || v == "yes" || v == "on";
}

// Flags from the --config file, as "--name=value" arguments.
Result<std::vector<std::string>> config_file_args(const std::string& path, const std::vector<FlagSpec>& specs) {
  std::ifstream in(path);
  if (!in) return not_found("--config " + path + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  auto j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument("--config " + path + ": not a JSON object");
  std::vector<std::string> args;
  for (const auto& [raw_key, value] : j.items()) {
    std::string key = raw_key;
    std::replace(key.begin(), key.end(), '_', '-');
    const FlagSpec* spec = find_spec(specs, key);
    if (!spec || key == "config" || key == "help") {
      return invalid_argument("--config " + path + ": unknown key '" + raw_key + "'");
    }
    if (!spec->takes_value) {
      if (!value.is_boolean()) return invalid_argument("--config " + path + ": '" + raw_key + "' must be true or false");
      if (value.get<bool>()) args.push_back("--" + key);
      continue;
    }
    if (value.is_string()) {
      args.push_back("--" + key + "=" + value.get<std::string>());
    } else if (value.is_number_integer() || value.is_number_unsigned() || value.is_number_float()) {
      args.push_back("--" + key + "=" + value.dump());
    } else if (!value.is_null()) {
      return invalid_argument("--config " + path + ": '" + raw_key + "' must be a string or a number");
    }
  }
  return args;
}

std::string read_template_flag(const std::string& value) {
  if (value.empty()) return value;
  std::error_code ec;
  if (std::filesystem::is_regular_file(value, ec)) {
    std::ifstream in(value);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  return value;
}

// Raises the soft open-file limit to the hard one (each connection is a descriptor); returns
// the limit now in force, or 0 when it cannot be read.
int raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur > INT32_MAX ? INT32_MAX : static_cast<int>(limit.rlim_cur);
}

std::string mib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

}  // namespace

int run_serve(int argc, char** argv) {
  const std::vector<FlagSpec> specs = serve_flag_specs();
  CliArgs cli = CliArgs::parse(argc, argv, specs);
  if (cli.has("help")) {
    std::cout << CliArgs::help_text("strata serve [flags]", specs)
              << "\nEvery flag can also be set with an environment variable STRATA_<FLAG> (e.g. STRATA_PORT=8080,\n"
                 "STRATA_API_KEY=secret) or a key of the --config JSON file (e.g. {\"port\": 8080}); flags win over\n"
                 "the environment, which wins over the file. Switches take true/false in both.\n"
                 "\nRoutes: POST /v1/completions, POST /v1/chat/completions (JSON or SSE with \"stream\": true),\n"
                 "GET /v1/models, POST /tokenize, POST /detokenize, GET /health, GET /ready, GET /metrics\n"
                 "(Prometheus). gRPC (--grpc-port): strata.v1.Strata (Generate, Tokenize, ListModels; see\n"
                 "proto/strata.proto) and grpc.health.v1.Health. --api-key guards the /v1 routes and the\n"
                 "strata.v1 methods (metadata 'authorization: Bearer KEY'), not health. Chat messages are rendered with the\n"
                 "checkpoint's chat template (tokenizer_config.json or chat_template.jinja, or --chat-template);\n"
                 "without one, with ChatML: <|im_start|>{role}\\n{content}<|im_end|>\\n ... <|im_start|>assistant\\n.\n"
                 "The server listens on 127.0.0.1 by default; use --host 0.0.0.0 in a container.\n";
    return 0;
  }
  if (!cli.ok()) {
    std::cerr << "strata serve: " << cli.error() << "\n";
    return 2;
  }

  // Merge: config file, then environment, then the command line (later values win).
  std::vector<std::string> merged;
  std::string config_path = cli.get("config");
  if (config_path.empty()) {
    if (const char* e = std::getenv("STRATA_CONFIG")) config_path = e;
  }
  if (!config_path.empty()) {
    auto from_file = config_file_args(config_path, specs);
    if (!from_file.ok()) {
      std::cerr << "strata serve: " << from_file.status().message() << "\n";
      return 2;
    }
    merged = std::move(*from_file);
  }
  for (const auto& spec : specs) {
    if (spec.name == "help" || spec.name == "config") continue;
    const char* value = std::getenv(env_name(spec.name).c_str());
    if (!value) continue;
    if (!spec.takes_value) {
      if (truthy(value)) merged.push_back("--" + spec.name);
      continue;
    }
    merged.push_back("--" + spec.name + "=" + value);
  }
  for (int i = 0; i < argc; ++i) merged.emplace_back(argv[i]);
  std::vector<char*> merged_argv;
  for (auto& s : merged) merged_argv.push_back(s.data());
  CliArgs args = CliArgs::parse(static_cast<int>(merged_argv.size()), merged_argv.data(), specs);
  if (!args.ok()) {
    std::cerr << "strata serve: " << args.error() << "\n";
    return 2;
  }

  const std::string log_level = args.get("log-level", "info");
  const auto level = spdlog::level::from_str(log_level);
  if (level == spdlog::level::off && log_level != "off") {
    std::cerr << "strata serve: --log-level must be trace, debug, info, warn, error or off\n";
    return 2;
  }
  spdlog::set_level(level);

  HttpServerOptions http;
  http.host = args.get("host", "127.0.0.1");
  const long long port = args.get_int("port", 8000);
  const long long grpc_port = args.get_int("grpc-port", 50051);
  const long long max_queue = args.get_int("max-queue", 0);
  const long long max_body = args.get_int("max-body-bytes", 8ll << 20);
  const long long io_threads = args.get_int("io-threads", 2);
  const long long grace_s = args.get_int("shutdown-grace-s", 10);
  const long long max_connections = args.get_int("max-connections", 0);
  const long long header_timeout_s = args.get_int("header-read-timeout-s", 10);
  const long long idle_timeout_s = args.get_int("idle-timeout-s", 60);
  if (!args.ok()) {
    std::cerr << "strata serve: " << args.error() << "\n";
    return 2;
  }
  if (port < 0 || port > 65535) {
    std::cerr << "strata serve: --port must be in [0, 65535]\n";
    return 2;
  }
  if (grpc_port < -1 || grpc_port > 65535) {
    std::cerr << "strata serve: --grpc-port must be in [0, 65535], or -1 for no gRPC\n";
    return 2;
  }
  for (const auto& [flag, value, low, high] : std::vector<std::tuple<const char*, long long, long long, long long>>{
           {"max-queue", max_queue, 0, INT32_MAX},
           {"max-body-bytes", max_body, 1, int64_t{1} << 40},
           {"io-threads", io_threads, 1, 256},
           {"shutdown-grace-s", grace_s, 0, 86400},
           {"max-connections", max_connections, 0, 1 << 24},
           {"header-read-timeout-s", header_timeout_s, 1, 3600},
           {"idle-timeout-s", idle_timeout_s, 1, 86400}}) {
    if (value < low || value > high) {
      std::cerr << "strata serve: --" << flag << " must be in [" << low << ", " << high << "], got " << value << "\n";
      return 2;
    }
  }
  const int fd_limit = raise_open_file_limit();
  if (max_connections > 0 && fd_limit > 0 && max_connections > fd_limit - 64) {
    std::cerr << "strata serve: --max-connections " << max_connections << " exceeds what the open-file limit ("
              << fd_limit << ", ulimit -n) leaves for connections (" << fd_limit - 64 << ")\n";
    return 2;
  }
  http.max_connections =
      max_connections > 0 ? static_cast<int>(max_connections) : (fd_limit > 512 ? fd_limit - 256 : 0);
  http.header_read_timeout_s = static_cast<int>(header_timeout_s);
  http.idle_timeout_s = static_cast<int>(idle_timeout_s);
  http.port = static_cast<int>(port);
  http.max_body_bytes = static_cast<size_t>(max_body);
  http.num_io_threads = static_cast<int>(io_threads);
  auto config = engine_config_from_flags(args);
  if (!config.ok()) {
    std::cerr << "strata serve: " << config.status().message() << "\n";
    return 2;
  }
  config->max_waiting = static_cast<int>(max_queue);

  std::string api_key = args.get("api-key");
  std::string served_name = args.get("served-model-name");
  if (served_name.empty()) {
    std::filesystem::path dir(config->model_dir);
    if (!dir.has_filename()) dir = dir.parent_path();
    served_name = dir.filename().string();
    if (served_name.empty() || served_name == ".") served_name = std::filesystem::absolute(dir).filename().string();
  }

  spdlog::info("loading {} (device: {})", config->model_dir, config->device);
  const auto load_start = std::chrono::steady_clock::now();
  auto engine = Engine::create(*config);
  if (!engine.ok()) {
    spdlog::error("cannot load the model: {}", engine.status().to_string());
    return 1;
  }
  auto tokenizer = load_tokenizer(tokenizer_dir_from_flags(args, *config));
  if (!tokenizer.ok()) {
    spdlog::error("cannot load the tokenizer: {}", tokenizer.status().to_string());
    return 1;
  }
  auto chat = ChatPromptRenderer::create(**tokenizer, read_template_flag(args.get("chat-template")));
  if (!chat.ok()) {
    spdlog::error("cannot use the chat template: {}", chat.status().to_string());
    return 1;
  }
  Engine& e = **engine;
  const ModelConfig& mc = e.model_config();
  const EngineConfig& ec = e.config();
  spdlog::info("model: {} ({} layers, hidden {}, {} heads / {} kv heads, vocab {}), weights {} on {}",
               mc.architecture, mc.num_layers, mc.hidden_size, mc.num_heads, mc.num_kv_heads, mc.vocab_size,
               mib(e.weight_bytes()), e.device_name());
  spdlog::info("KV cache: {} blocks x {} tokens = {} tokens ({}), context window {} tokens, max {} running requests",
               ec.num_kv_blocks, ec.block_size, static_cast<long long>(ec.num_kv_blocks) * ec.block_size,
               mib(e.kv_cache_bytes()), e.max_model_len(), ec.max_num_seqs);
  spdlog::info("chat template: {}", (*chat)->uses_fallback() ? "none in the checkpoint, using the ChatML fallback"
                                                               : "the checkpoint's");
  spdlog::info("loaded in {:.2f} s; served model name '{}'{}",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count(), served_name,
               api_key.empty() ? "" : "; /v1 routes need the API key");

  ::signal(SIGPIPE, SIG_IGN);
  ServerMetrics metrics(served_name);
  ServiceOptions service_options;
  service_options.served_model_name = served_name;
  service_options.model_dir = config->model_dir;
  service_options.api_key = api_key;
  service_options.cors = CorsPolicy::parse(args.get("allowed-origins", "*"));
  service_options.created_unix_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  OpenAiService service(e, **tokenizer, **chat, metrics, service_options);

  std::unique_ptr<GrpcServer> grpc_server;
  if (grpc_port >= 0) {
    GrpcServerOptions grpc_options;
    grpc_options.host = http.host;
    grpc_options.port = static_cast<int>(grpc_port);
    grpc_options.served_model_name = served_name;
    grpc_options.model_dir = config->model_dir;
    grpc_options.api_key = api_key;
    grpc_options.created_unix_s = service_options.created_unix_s;
    grpc_options.max_message_bytes = http.max_body_bytes;
    auto started = GrpcServer::start(e, **tokenizer, metrics, grpc_options);
    if (!started.ok()) {
      spdlog::error("{}", started.status().message());
      return 1;
    }
    grpc_server = std::move(*started);
    // Before the HTTP line, which tests wait for: both ports are known once it appears.
    spdlog::info("listening on grpc://{} (gRPC: strata.v1.Strata, grpc.health.v1.Health)", grpc_server->address());
  }

  auto server = HttpServer::start(http, [&service](std::shared_ptr<HttpExchange> ex) { service.handle(ex); });
  if (!server.ok()) {
    spdlog::error("{}", server.status().message());
    return 1;
  }
  std::mutex mu;
  std::condition_variable cv;
  int signal_number = 0;
  (*server)->on_signal([&](int signo) {
    std::lock_guard lock(mu);
    if (signal_number != 0) {
      spdlog::warn("second signal: exiting without draining");
      std::_Exit(1);
    }
    signal_number = signo;
    cv.notify_all();
  });
  spdlog::info("listening on http://{}:{}", http.host, (*server)->port());
  spdlog::info("connections: at most {}, header within {} s, idle keep-alive {} s", http.max_connections,
               http.header_read_timeout_s, http.idle_timeout_s);

  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return signal_number != 0; });
  }
  spdlog::info("signal {}: draining: /ready and new requests answer 503; running ones may finish within {} s",
               signal_number, grace_s);
  // The listener stays open while draining, so that a load balancer's readiness probe reads a
  // 503 (and takes this replica out) instead of a refused connection.
  service.set_draining();
  (*server)->set_draining();
  // gRPC stops taking calls at once; running ones finish (or are aborted with the engine's
  // requests below) within the grace period, plus a little for their last messages.
  std::thread grpc_stopper;
  if (grpc_server) {
    grpc_server->set_draining();
    grpc_stopper = std::thread([&] { grpc_server->shutdown(static_cast<int>(grace_s * 1000) + 3000); });
  }
  e.shutdown(static_cast<int>(grace_s * 1000));
  // Aborted requests now answer with an error; give their last bytes a moment to leave.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while ((service.num_generations_in_flight() > 0 || (*server)->num_active_exchanges() > 0) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  (*server)->stop_accepting();
  if (grpc_stopper.joinable()) grpc_stopper.join();
  (*server)->stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace strata
