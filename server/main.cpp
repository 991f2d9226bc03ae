// strata: command-line entry point and subcommand dispatch.
#include <cstring>
#include <iostream>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace strata {
int run_generate(int argc, char** argv);
int run_eval(int argc, char** argv);
int run_serve(int argc, char** argv);
}

namespace {
void print_usage() {
  std::cout << "strata: an LLM inference engine\n\n"
               "usage: strata <command> [flags]\n\n"
               "commands:\n"
               "  generate   run a JSON-lines file of prompts offline and write JSON lines\n"
               "  serve      serve the OpenAI-compatible HTTP API (completions, chat, SSE)\n\n"
               "`strata <command> --help` lists a command's flags.\n";
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  spdlog::set_default_logger(spdlog::stderr_color_mt("strata"));
  if (command == "generate") return strata::run_generate(argc - 2, argv + 2);
  if (command == "eval") return strata::run_eval(argc - 2, argv + 2);
  if (command == "serve") return strata::run_serve(argc - 2, argv + 2);
  std::cerr << "strata: unknown command '" << command << "'\n";
  print_usage();
  return 2;
}
