// `strata generate`: runs a JSON-lines file of prompts through the engine, writes JSON lines.
//
// Input line:  {"prompt": "text"} or {"prompt_ids": [1, 2, 3]}, plus optional sampling
//              fields: max_tokens, min_tokens, temperature, top_p, top_k, min_p, seed,
//              repetition_penalty, presence_penalty, frequency_penalty, logit_bias {"id": bias},
//              stop_token_ids, ignore_eos, logprobs.
// Output line: {"index", "prompt_tokens", "cached_tokens", "output_ids", "text",
//               "finish_reason", "logprobs"?} or {"index", "error"}; in input order.
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "engine/engine.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/cli_args.h"
#include "server/cli_common.h"

namespace strata {

namespace {

using nlohmann::json;

Result<EngineRequest> parse_line(const json& j, const Engine& engine, const Tokenizer* tokenizer,
                                 const Status& tokenizer_status) {
  if (!j.is_object()) return invalid_argument("each line must be a JSON object");
  EngineRequest req;
  if (j.contains("prompt_ids")) {
    const auto& ids = j["prompt_ids"];
    if (!ids.is_array()) return invalid_argument("prompt_ids must be an array of integers");
    for (const auto& v : ids) {
      if (!v.is_number_integer()) return invalid_argument("prompt_ids must be an array of integers");
      req.prompt_ids.push_back(v.get<int32_t>());
    }
  } else if (j.contains("prompt")) {
    if (!j["prompt"].is_string()) return invalid_argument("prompt must be a string");
    if (!tokenizer) return Status(tokenizer_status.code(), "cannot tokenize the prompt: " + tokenizer_status.message());
    req.prompt_ids = tokenizer->encode(j["prompt"].get<std::string>(), true);
  } else {
    return invalid_argument("a line needs \"prompt\" or \"prompt_ids\"");
  }

  SamplingParams& p = req.params;
  const GenerationDefaults& d = engine.generation_defaults();
  if (d.do_sample.has_value() && !*d.do_sample) p.temperature = 0.0f;
  if (d.temperature) p.temperature = *d.temperature;
  if (d.top_p) p.top_p = *d.top_p;
  if (d.top_k) p.top_k = *d.top_k;
  if (d.min_p) p.min_p = *d.min_p;
  if (d.repetition_penalty) p.repetition_penalty = *d.repetition_penalty;
  if (d.max_new_tokens) p.max_tokens = *d.max_new_tokens;

  try {
    auto num = [&](const char* key, auto& field) {
      if (!j.contains(key) || j[key].is_null()) return;
      if (!j[key].is_number()) throw std::invalid_argument(std::string(key) + " must be a number");
      field = j[key].get<std::decay_t<decltype(field)>>();
    };
    num("max_tokens", p.max_tokens);
    num("min_tokens", p.min_tokens);
    num("temperature", p.temperature);
    num("top_p", p.top_p);
    num("top_k", p.top_k);
    num("min_p", p.min_p);
    num("repetition_penalty", p.repetition_penalty);
    num("presence_penalty", p.presence_penalty);
    num("frequency_penalty", p.frequency_penalty);
    num("logprobs", p.logprobs);
    if (j.contains("seed") && !j["seed"].is_null()) {
      if (!j["seed"].is_number_integer()) throw std::invalid_argument("seed must be an integer");
      p.seed = j["seed"].get<uint64_t>();
    }
    if (j.contains("ignore_eos")) {
      if (!j["ignore_eos"].is_boolean()) throw std::invalid_argument("ignore_eos must be a boolean");
      p.ignore_eos = j["ignore_eos"].get<bool>();
    }
    if (j.contains("stop_token_ids")) {
      if (!j["stop_token_ids"].is_array()) throw std::invalid_argument("stop_token_ids must be an array");
      for (const auto& v : j["stop_token_ids"]) p.stop_token_ids.push_back(v.get<int32_t>());
    }
    if (j.contains("logit_bias")) {
      if (!j["logit_bias"].is_object()) throw std::invalid_argument("logit_bias must be an object");
      for (const auto& [k, v] : j["logit_bias"].items()) p.logit_bias.emplace_back(std::stoi(k), v.get<float>());
    }
  } catch (const std::exception& e) {
    return invalid_argument(e.what());
  }
  return req;
}

json logprobs_json(const SampledToken& t) {
  json top = json::array();
  for (const auto& alt : t.top) top.push_back({{"token_id", alt.token_id}, {"logprob", alt.logprob}});
  return {{"token_id", t.token_id}, {"logprob", t.logprob}, {"top_logprobs", top}};
}

}  // namespace

int run_generate(int argc, char** argv) {
  std::vector<FlagSpec> specs = engine_flag_specs();
  specs.push_back({"input", "JSON-lines file of prompts ('-' for standard input)", true, "-"});
  specs.push_back({"output", "where to write JSON lines ('-' for standard output)", true, "-"});
  specs.push_back({"stats", "print engine statistics as JSON to standard error at the end", false, ""});
  specs.push_back({"help", "show this help", false, ""});
  CliArgs args = CliArgs::parse(argc, argv, specs);
  if (args.has("help")) {
    std::cout << CliArgs::help_text("strata generate [flags]", specs);
    return 0;
  }
  if (!args.ok()) {
    std::cerr << "strata generate: " << args.error() << "\n";
    return 2;
  }
  auto config = engine_config_from_flags(args);
  if (!config.ok()) {
    std::cerr << "strata generate: " << config.status().message() << "\n";
    return 2;
  }
  auto engine = Engine::create(*config);
  if (!engine.ok()) {
    std::cerr << "strata generate: " << engine.status().message() << "\n";
    return 1;
  }
  auto tokenizer = load_tokenizer(tokenizer_dir_from_flags(args, *config));
  const Tokenizer* tok = tokenizer.ok() ? tokenizer->get() : nullptr;

  std::ifstream in_file;
  std::istream* in = &std::cin;
  const std::string input = args.get("input", "-");
  if (input != "-") {
    in_file.open(input);
    if (!in_file) {
      std::cerr << "strata generate: cannot open --input " << input << "\n";
      return 1;
    }
    in = &in_file;
  }
  std::ofstream out_file;
  std::ostream* out = &std::cout;
  const std::string output = args.get("output", "-");
  if (output != "-") {
    out_file.open(output);
    if (!out_file) {
      std::cerr << "strata generate: cannot open --output " << output << "\n";
      return 1;
    }
    out = &out_file;
  }

  struct Item {
    std::shared_ptr<RequestStream> stream;
    json result;
  };
  std::vector<Item> items;
  std::string line;
  int index = 0;
  while (std::getline(*in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Item item;
    item.result = {{"index", index++}};
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) {
      item.result["error"] = "line " + std::to_string(index) + ": malformed JSON";
    } else if (auto req = parse_line(j, **engine, tok, tokenizer.status()); !req.ok()) {
      item.result["error"] = req.status().message();
    } else if (auto stream = (*engine)->submit(std::move(*req)); !stream.ok()) {
      item.result["error"] = stream.status().message();
    } else {
      item.stream = *stream;
    }
    items.push_back(std::move(item));
  }

  int failures = 0;
  for (Item& item : items) {
    if (item.stream) {
      std::vector<int32_t> ids;
      json logprobs = json::array();
      bool want_logprobs = false;
      while (auto o = item.stream->next()) {
        for (const auto& t : o->new_tokens) {
          ids.push_back(t.token_id);
          logprobs.push_back(logprobs_json(t));
          want_logprobs = want_logprobs || !t.top.empty() || t.logprob != 0.0f;
        }
        if (o->finished) {
          item.result["prompt_tokens"] = o->num_prompt_tokens;
          item.result["cached_tokens"] = o->num_cached_tokens;
          item.result["finish_reason"] = finish_reason_name(o->finish_reason);
          if (o->finish_reason == FinishReason::kError) item.result["error"] = o->error.message();
        }
      }
      item.result["output_ids"] = ids;
      if (tok) item.result["text"] = tok->decode(ids, true);
      if (want_logprobs) item.result["logprobs"] = logprobs;
    }
    if (item.result.contains("error")) ++failures;
    *out << item.result.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  }
  out->flush();
  if (args.has("stats")) {
    EngineStats s = (*engine)->stats();
    json st = {{"steps", s.num_steps},
               {"preemptions", s.num_preemptions},
               {"prompt_tokens_computed", s.num_prompt_tokens_computed},
               {"generated_tokens", s.num_generated_tokens},
               {"kv_blocks", s.kv.num_blocks},
               {"kv_blocks_used", s.kv.num_used},
               {"kv_blocks_free", s.kv.num_free},
               {"kv_blocks_cached", s.kv.num_cached},
               {"prefix_cache_queries", s.kv.prefix_queries},
               {"prefix_cache_hits", s.kv.prefix_hits}};
    std::cerr << st.dump() << "\n";
  }
  return failures == 0 ? 0 : 3;
}

}  // namespace strata
