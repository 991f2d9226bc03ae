// `strata eval`: yardsticks measured through strata's own engine.
//
//   strata eval retrieval  passkey / key-value retrieval accuracy over a grid of context
//                          lengths and needle depths (greedy generation through the Engine).
//   strata eval ppl        perplexity of held-out text by teacher forcing (LlamaModel::forward).
//
// The retrieval prompts are the ones scripts/train_default_model.py trains on: an intro, filler
// sentences, the needle at the requested depth, and the question at the end.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <regex>
#include <sstream>

#include "engine/engine.h"
#include "engine/model/forward_batch.h"
#include "engine/model/kv_cache_storage.h"
#include "engine/model/llama_model.h"
#include "engine/model/model_config.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/cli_args.h"
#include "server/cli_common.h"

namespace strata {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kPasskeyIntro =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
    "I will quiz you about the important information there.";
constexpr const char* kKvIntro =
    "Below is a long text with some key-value records hidden in it. Find them and memorize them. "
    "I will ask you about one of the values.";
constexpr const char* kClassicFiller =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

// The attention policies `--policy` accepts; later issues add sparse ones.
const std::vector<std::string> kPolicies = {"dense"};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::vector<std::string> split_csv(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// Sentences of a text: split after . ! ? followed by a space and an upper-case letter or quote.
std::vector<std::string> split_sentences(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i + 2 < text.size(); ++i) {
    const char c = text[i];
    if ((c == '.' || c == '!' || c == '?') && text[i + 1] == ' ' &&
        (std::isupper(static_cast<unsigned char>(text[i + 2])) || text[i + 2] == '"')) {
      out.push_back(text.substr(start, i + 1 - start));
      start = i + 2;
    }
  }
  if (start < text.size()) {
    std::string last = text.substr(start);
    while (!last.empty() && std::isspace(static_cast<unsigned char>(last.back()))) last.pop_back();
    if (!last.empty()) out.push_back(last);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// retrieval

struct RetrievalCase {
  int length = 0;   // target prompt length in tokens (BOS included)
  int depth = 0;    // percent of the filler before the asked needle
  std::string answer;
  std::string prompt;
  std::vector<int32_t> prompt_ids;
  std::string output;
  bool correct = false;
};

struct FillerBank {
  std::vector<std::string> sentences;
  std::vector<int> tokens;  // token count of each sentence encoded on its own
  bool cyclic = true;       // classic filler: in order from the first sentence
};

int count_tokens(const Tokenizer& tok, const std::string& text) {
  return static_cast<int>(tok.encode(text, false).size());
}

std::string random_key(std::mt19937_64& rng) {
  std::uniform_int_distribution<int> letter(0, 25);
  std::string key(4, 'a');
  for (char& c : key) c = static_cast<char>('a' + letter(rng));
  return key;
}

// Builds one prompt: intro, filler, needles (the asked one at `depth`), question. Filler
// sentences are added while the total stays within `length` tokens; SentencePiece splits at
// spaces, so the sum of per-sentence counts is the count of the joined text.
RetrievalCase build_case(const Tokenizer& tok, const FillerBank& bank, const std::string& task, int length,
                         int depth, int kv_pairs, std::mt19937_64& rng) {
  RetrievalCase c;
  c.length = length;
  c.depth = depth;
  std::uniform_int_distribution<int> five_digits(10000, 99999);
  std::string intro, question;
  std::vector<std::string> needles;  // needles[0] is the asked one
  if (task == "passkey") {
    c.answer = std::to_string(five_digits(rng));
    intro = kPasskeyIntro;
    needles.push_back("The pass key is " + c.answer + ". Remember it. " + c.answer + " is the pass key.");
    question = "What is the pass key? The pass key is";
  } else {
    intro = kKvIntro;
    std::vector<std::string> keys;
    while (static_cast<int>(keys.size()) < kv_pairs) {
      std::string k = random_key(rng);
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    }
    for (int i = 0; i < kv_pairs; ++i) {
      const std::string value = std::to_string(five_digits(rng));
      if (i == 0) c.answer = value;
      needles.push_back("The value of key " + keys[i] + " is " + value + ".");
    }
    question = "What is the value of key " + keys[0] + "? The value of key " + keys[0] + " is";
  }
  int fixed = 1 + count_tokens(tok, intro) + count_tokens(tok, question);
  for (const auto& n : needles) fixed += count_tokens(tok, n);
  const int budget = length - fixed;
  std::vector<int> filler;  // indices into the bank
  size_t next = bank.cyclic ? 0 : std::uniform_int_distribution<size_t>(0, bank.sentences.size() - 1)(rng);
  for (int used = 0;;) {
    const size_t i = next % bank.sentences.size();
    if (used + bank.tokens[i] > budget) break;
    filler.push_back(static_cast<int>(i));
    used += bank.tokens[i];
    ++next;
  }
  const int n = static_cast<int>(filler.size());
  // Where each needle goes (a filler index it precedes): the asked one at `depth`, others random.
  std::vector<std::pair<int, int>> slots;  // (position, needle)
  slots.emplace_back(static_cast<int>(std::lround(depth / 100.0 * n)), 0);
  std::uniform_int_distribution<int> anywhere(0, n);
  for (int i = 1; i < static_cast<int>(needles.size()); ++i) slots.emplace_back(anywhere(rng), i);
  std::stable_sort(slots.begin(), slots.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string text = intro;
  size_t s = 0;
  for (int i = 0; i <= n; ++i) {
    for (; s < slots.size() && slots[s].first == i; ++s) text += " " + needles[slots[s].second];
    if (i < n) text += " " + bank.sentences[filler[i]];
  }
  text += " " + question;
  c.prompt = std::move(text);
  c.prompt_ids = tok.encode(c.prompt, true);
  return c;
}

Result<FillerBank> load_filler(const Tokenizer& tok, const std::string& path) {
  FillerBank bank;
  std::string text = kClassicFiller;
  if (!path.empty()) {
    std::ifstream in(path);
    if (!in) return not_found("--filler " + path + ": cannot open");
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
    bank.cyclic = false;
    std::replace(text.begin(), text.end(), '\n', ' ');
  }
  for (auto& s : split_sentences(text)) {
    const int n = count_tokens(tok, s);
    if (n == 0) continue;
    bank.sentences.push_back(std::move(s));
    bank.tokens.push_back(n);
  }
  if (bank.sentences.empty()) return invalid_argument("--filler " + path + ": no sentences");
  return bank;
}

std::string first_number(const std::string& s) {
  std::smatch m;
  static const std::regex digits("[0-9]+");
  return std::regex_search(s, m, digits) ? m.str() : std::string();
}

int run_retrieval(int argc, char** argv) {
  std::vector<FlagSpec> specs = engine_flag_specs();
  specs.push_back({"task", "passkey or kv (key-value records; the asked one at the depth)", true, "passkey"});
  specs.push_back({"lengths", "prompt lengths in tokens, comma-separated", true, "1024,2048,4096,8192,16384"});
  specs.push_back({"depths", "needle depths in percent of the filler, comma-separated", true, "0,25,50,75,100"});
  specs.push_back({"samples", "prompts per (length, depth) cell", true, "4"});
  specs.push_back({"kv-pairs", "records per prompt for --task kv", true, "4"});
  specs.push_back({"seed", "seed of keys, values and record positions", true, "1234"});
  specs.push_back({"policy", "attention policy (only 'dense' exists so far)", true, "dense"});
  specs.push_back({"filler", "text file to draw filler sentences from (default: the classic grass/sky filler)", true, ""});
  specs.push_back({"max-tokens", "tokens generated per prompt", true, "8"});
  specs.push_back({"json", "write the grid and every case as JSON to this file", true, ""});
  specs.push_back({"min-accuracy", "exit with status 1 when the overall accuracy is below this (0..1)", true, ""});
  specs.push_back({"help", "show this help", false, ""});
  CliArgs args = CliArgs::parse(argc, argv, specs);
  if (args.has("help")) {
    std::cout << CliArgs::help_text("strata eval retrieval [flags]", specs);
    return 0;
  }
  if (!args.ok()) {
    std::cerr << "strata eval retrieval: " << args.error() << "\n";
    return 2;
  }
  const std::string policy = args.get("policy", "dense");
  if (std::find(kPolicies.begin(), kPolicies.end(), policy) == kPolicies.end()) {
    std::cerr << "strata eval retrieval: unknown attention policy '" << policy << "' (available: dense)\n";
    return 2;
  }
  const std::string task = args.get("task", "passkey");
  if (task != "passkey" && task != "kv") {
    std::cerr << "strata eval retrieval: --task must be passkey or kv, not '" << task << "'\n";
    return 2;
  }
  std::vector<int> lengths, depths;
  try {
    for (const auto& s : split_csv(args.get("lengths", "1024,2048,4096,8192,16384"))) lengths.push_back(std::stoi(s));
    for (const auto& s : split_csv(args.get("depths", "0,25,50,75,100"))) depths.push_back(std::stoi(s));
  } catch (const std::exception&) {
    std::cerr << "strata eval retrieval: --lengths and --depths take comma-separated integers\n";
    return 2;
  }
  const int samples = static_cast<int>(args.get_int("samples", 4));
  const int kv_pairs = static_cast<int>(args.get_int("kv-pairs", 4));
  const uint64_t seed = static_cast<uint64_t>(args.get_int("seed", 1234));
  const int max_tokens = static_cast<int>(args.get_int("max-tokens", 8));
  double min_accuracy = -1.0;
  if (args.has("min-accuracy")) min_accuracy = std::stod(args.get("min-accuracy"));
  if (!args.ok()) {
    std::cerr << "strata eval retrieval: " << args.error() << "\n";
    return 2;
  }
  if (lengths.empty() || depths.empty() || samples < 1 || kv_pairs < 1) {
    std::cerr << "strata eval retrieval: need lengths, depths, --samples >= 1 and --kv-pairs >= 1\n";
    return 2;
  }
  for (int d : depths) {
    if (d < 0 || d > 100) {
      std::cerr << "strata eval retrieval: depths are percentages in [0, 100]\n";
      return 2;
    }
  }

  auto config = engine_config_from_flags(args);
  if (!config.ok()) {
    std::cerr << "strata eval retrieval: " << config.status().message() << "\n";
    return 2;
  }
  if (!args.has("kv-cache-mb") && !args.has("num-kv-blocks")) config->kv_cache_bytes = size_t{1024} << 20;
  auto tokenizer = load_tokenizer(tokenizer_dir_from_flags(args, *config));
  if (!tokenizer.ok()) {
    std::cerr << "strata eval retrieval: " << tokenizer.status().message() << "\n";
    return 1;
  }
  const Tokenizer& tok = **tokenizer;
  auto engine = Engine::create(*config);
  if (!engine.ok()) {
    std::cerr << "strata eval retrieval: " << engine.status().message() << "\n";
    return 1;
  }
  auto bank = load_filler(tok, args.get("filler", ""));
  if (!bank.ok()) {
    std::cerr << "strata eval retrieval: " << bank.status().message() << "\n";
    return 2;
  }

  // Cases in grid order; a length beyond the context window is clamped to fit the answer.
  const int max_len = (*engine)->max_model_len();
  std::mt19937_64 rng(seed);
  std::vector<RetrievalCase> cases;
  for (int& length : lengths) {
    length = std::min(length, max_len - max_tokens);
    for (int depth : depths) {
      for (int i = 0; i < samples; ++i) cases.push_back(build_case(tok, *bank, task, length, depth, kv_pairs, rng));
    }
  }

  const auto t0 = Clock::now();
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (auto& c : cases) {
    EngineRequest req;
    req.prompt_ids = c.prompt_ids;
    req.params.temperature = 0.0f;
    req.params.max_tokens = max_tokens;
    auto stream = (*engine)->submit(std::move(req));
    if (!stream.ok()) {
      std::cerr << "strata eval retrieval: " << stream.status().message() << "\n";
      return 1;
    }
    streams.push_back(*stream);
  }
  long long prompt_tokens = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    RetrievalCase& c = cases[i];
    std::vector<int32_t> ids;
    while (auto o = streams[i]->next()) {
      for (const auto& t : o->new_tokens) ids.push_back(t.token_id);
      if (o->finished && o->finish_reason == FinishReason::kError) {
        std::cerr << "strata eval retrieval: case " << i << ": " << o->error.message() << "\n";
        return 1;
      }
    }
    c.output = tok.decode(ids, true);
    c.correct = first_number(c.output) == c.answer;
    prompt_tokens += static_cast<long long>(c.prompt_ids.size());
    std::cerr << "[" << (i + 1) << "/" << cases.size() << "] len " << c.prompt_ids.size() << " depth " << c.depth
              << "%: " << (c.correct ? "ok" : "WRONG") << " (want " << c.answer << ", got \"" << c.output << "\") "
              << std::fixed << std::setprecision(1) << seconds_since(t0) << "s\n";
  }
  const double elapsed = seconds_since(t0);

  // Grid: rows are lengths, columns depths, cells accuracy.
  json cells = json::array();
  json per_length = json::object();
  int total_correct = 0;
  std::cout << "task " << task << ", policy " << policy << ", " << samples << " sample(s) per cell, model "
            << config->model_dir << "\n";
  std::cout << std::setw(8) << "length";
  for (int d : depths) std::cout << std::setw(7) << (std::to_string(d) + "%");
  std::cout << std::setw(8) << "mean" << "\n";
  size_t k = 0;
  for (int length : lengths) {
    std::cout << std::setw(8) << length;
    int row_correct = 0, row_total = 0;
    for (int depth : depths) {
      int correct = 0;
      long long tokens = 0;
      for (int i = 0; i < samples; ++i, ++k) {
        correct += cases[k].correct;
        tokens += static_cast<long long>(cases[k].prompt_ids.size());
      }
      row_correct += correct;
      row_total += samples;
      const double acc = static_cast<double>(correct) / samples;
      std::cout << std::setw(7) << std::fixed << std::setprecision(0) << acc * 100;
      cells.push_back({{"length", length}, {"depth", depth}, {"correct", correct}, {"total", samples},
                       {"accuracy", acc}, {"mean_prompt_tokens", static_cast<double>(tokens) / samples}});
    }
    total_correct += row_correct;
    const double row_acc = static_cast<double>(row_correct) / row_total;
    per_length[std::to_string(length)] = row_acc;
    std::cout << std::setw(8) << std::fixed << std::setprecision(1) << row_acc * 100 << "\n";
  }
  const double overall = static_cast<double>(total_correct) / static_cast<double>(cases.size());
  std::cout << "overall " << std::fixed << std::setprecision(1) << overall * 100 << "% (" << total_correct << "/"
            << cases.size() << "), " << std::setprecision(1) << elapsed << " s, "
            << std::setprecision(0) << prompt_tokens / std::max(elapsed, 1e-9) << " prompt tokens/s\n";

  if (args.has("json")) {
    json j = {{"task", task}, {"policy", policy}, {"model", config->model_dir}, {"lengths", lengths},
              {"depths", depths}, {"samples", samples}, {"seed", seed}, {"max_tokens", max_tokens},
              {"filler", args.get("filler", "classic")}, {"cells", cells}, {"per_length", per_length},
              {"overall", overall}, {"elapsed_s", elapsed}, {"prompt_tokens", prompt_tokens}};
    if (task == "kv") j["kv_pairs"] = kv_pairs;
    json list = json::array();
    for (const auto& c : cases) {
      list.push_back({{"length", c.length}, {"depth", c.depth}, {"prompt_tokens", c.prompt_ids.size()},
                      {"answer", c.answer}, {"output", c.output}, {"correct", c.correct}});
    }
    j["cases"] = list;
    std::ofstream out(args.get("json"));
    if (!out) {
      std::cerr << "strata eval retrieval: cannot write --json " << args.get("json") << "\n";
      return 1;
    }
    out << j.dump(1) << "\n";
  }
  if (min_accuracy >= 0 && overall < min_accuracy) {
    std::cerr << "strata eval retrieval: accuracy " << overall << " is below --min-accuracy " << min_accuracy << "\n";
    return 1;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// ppl

int run_ppl(int argc, char** argv) {
  std::vector<FlagSpec> specs = {
      {"model", "Hugging Face checkpoint folder", true, "the embedded default model"},
      {"text", "text file; each non-empty line is one document (BOS + text + EOS)", true, ""},
      {"max-len", "tokens per document at most (longer ones are cut)", true, "1024"},
      {"json", "write the result as JSON to this file", true, ""},
      {"help", "show this help", false, ""},
  };
  CliArgs args = CliArgs::parse(argc, argv, specs);
  if (args.has("help")) {
    std::cout << CliArgs::help_text("strata eval ppl --text FILE [flags]", specs);
    return 0;
  }
  if (!args.ok() || !args.has("text")) {
    std::cerr << "strata eval ppl: " << (args.ok() ? "--text is required" : args.error()) << "\n";
    return 2;
  }
  const std::string model_dir = args.get("model", default_model_dir());
  const int max_len = static_cast<int>(args.get_int("max-len", 1024));
  if (!args.ok() || max_len < 2) {
    std::cerr << "strata eval ppl: --max-len must be an integer >= 2\n";
    return 2;
  }
  auto config = load_model_config(model_dir);
  if (!config.ok()) {
    std::cerr << "strata eval ppl: " << config.status().message() << "\n";
    return 1;
  }
  auto tokenizer = load_tokenizer(model_dir);
  if (!tokenizer.ok()) {
    std::cerr << "strata eval ppl: " << tokenizer.status().message() << "\n";
    return 1;
  }
  auto model = LlamaModel::load(model_dir, *config);
  if (!model.ok()) {
    std::cerr << "strata eval ppl: " << model.status().message() << "\n";
    return 1;
  }
  const std::string path = args.get("text");
  std::ifstream in(path);
  if (!in) {
    std::cerr << "strata eval ppl: cannot open --text " << path << "\n";
    return 1;
  }
  const Tokenizer& tok = **tokenizer;
  const int vocab = config->vocab_size;
  const std::optional<int32_t> eos = tok.eos_id();
  constexpr int kBlockSize = 16;
  const int num_blocks = (max_len + kBlockSize - 1) / kBlockSize;
  KvCacheStorage kv(config->num_layers, num_blocks, kBlockSize, config->num_kv_heads, config->head_dim);

  const auto t0 = Clock::now();
  double nll = 0.0;
  long long count = 0;
  int documents = 0;
  std::string line;
  std::vector<float> logits;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::vector<int32_t> ids = tok.encode(line, true);
    if (eos) ids.push_back(*eos);
    if (static_cast<int>(ids.size()) > max_len) ids.resize(max_len);
    if (ids.size() < 2) continue;
    const int n = static_cast<int>(ids.size()) - 1;  // inputs; targets are ids[1..n]
    ForwardBatch batch;
    batch.token_ids.assign(ids.begin(), ids.begin() + n);
    batch.positions.resize(n);
    std::iota(batch.positions.begin(), batch.positions.end(), 0);
    batch.query_start = {0, n};
    batch.context_lens = {n};
    std::vector<int32_t> table((n + kBlockSize - 1) / kBlockSize);
    std::iota(table.begin(), table.end(), 0);
    batch.block_tables = {table};
    batch.logits_indices.resize(n);
    std::iota(batch.logits_indices.begin(), batch.logits_indices.end(), 0);
    logits.assign(static_cast<size_t>(n) * vocab, 0.0f);
    const Status st = (*model)->forward(batch, kv, logits);
    if (!st.ok()) {
      std::cerr << "strata eval ppl: " << st.message() << "\n";
      return 1;
    }
    for (int t = 0; t < n; ++t) {
      const float* row = logits.data() + static_cast<size_t>(t) * vocab;
      const float max_logit = *std::max_element(row, row + vocab);
      double sum = 0.0;
      for (int v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - max_logit);
      nll += std::log(sum) + max_logit - row[ids[t + 1]];
    }
    count += n;
    ++documents;
  }
  if (count == 0) {
    std::cerr << "strata eval ppl: " << path << " has no text\n";
    return 1;
  }
  const double ppl = std::exp(nll / static_cast<double>(count));
  const double elapsed = seconds_since(t0);
  std::cout << "perplexity " << std::fixed << std::setprecision(3) << ppl << " over " << count << " tokens in "
            << documents << " documents (" << path << "), " << std::setprecision(1) << elapsed << " s\n";
  if (args.has("json")) {
    std::ofstream out(args.get("json"));
    out << json({{"model", model_dir}, {"text", path}, {"perplexity", ppl}, {"tokens", count},
                 {"documents", documents}, {"mean_nll", nll / static_cast<double>(count)}, {"max_len", max_len},
                 {"elapsed_s", elapsed}})
               .dump(1)
        << "\n";
  }
  return 0;
}

void print_eval_usage() {
  std::cout << "usage: strata eval <yardstick> [flags]\n\n"
               "yardsticks:\n"
               "  retrieval  passkey / key-value retrieval accuracy over context lengths and depths\n"
               "  ppl        perplexity of a text file by teacher forcing\n\n"
               "`strata eval <yardstick> --help` lists its flags.\n";
}

}  // namespace

int run_eval(int argc, char** argv) {
  if (argc < 1 || !std::strcmp(argv[0], "--help") || !std::strcmp(argv[0], "-h")) {
    print_eval_usage();
    return argc < 1 ? 2 : 0;
  }
  const std::string what = argv[0];
  if (what == "retrieval") return run_retrieval(argc - 1, argv + 1);
  if (what == "ppl") return run_ppl(argc - 1, argv + 1);
  std::cerr << "strata eval: unknown yardstick '" << what << "'\n";
  print_eval_usage();
  return 2;
}

}  // namespace strata
