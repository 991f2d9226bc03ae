// Sampler: logit bias, min_tokens masking, penalties, temperature, top-k / top-p / min-p and a
// counter-based draw. Order and arithmetic follow vLLM's sampler (see sampler.h).
#include "engine/sampling/sampler.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <string>

namespace strata {
namespace {

using Candidate = SamplerWorkspace::Candidate;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int kMaxLogprobs = 20;         // OpenAI's top_logprobs limit
constexpr float kMaxAbsLogitBias = 100;  // OpenAI's logit_bias range
constexpr float kMaxAbsPenalty = 2;      // OpenAI's presence/frequency_penalty range

// ---- validation ------------------------------------------------------------------------

template <typename T>
std::string format_number(T value) {
  char buf[64];
  auto result = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, result.ptr);
}

template <typename T>
Status field_error(const std::string& field, const std::string& expected, T got) {
  return invalid_argument(field + " must be " + expected + ", got " + format_number(got));
}

bool in_vocab(int32_t token_id, int32_t vocab_size) { return token_id >= 0 && token_id < vocab_size; }

// ---- the counter-based generator -------------------------------------------------------

constexpr uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ull;

// SplitMix64's output function (Steele, Lea, Flood: "Fast splittable pseudorandom number
// generators", OOPSLA 2014).
constexpr uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The largest logit, NaNs ignored. Eight independent lanes break the compare chain that a
// plain loop waits on.
float max_logit_of(std::span<const float> logits) {
  constexpr size_t kLanes = 8;
  float lane_max[kLanes];
  std::fill(lane_max, lane_max + kLanes, kNegInf);
  size_t i = 0;
  for (; i + kLanes <= logits.size(); i += kLanes) {
    for (size_t lane = 0; lane < kLanes; ++lane) {
      lane_max[lane] = std::max(lane_max[lane], logits[i + lane]);
    }
  }
  for (; i < logits.size(); ++i) lane_max[0] = std::max(lane_max[0], logits[i]);
  return *std::max_element(lane_max, lane_max + kLanes);
}

// ---- raw logprobs ----------------------------------------------------------------------

// The best `num_top` tokens of `logits` (ties to the lower id) with their logits, best first.
void collect_top_logits(std::span<const float> logits, size_t num_top, std::vector<TokenLogprob>& top) {
  top.clear();
  if (num_top == 0) return;
  top.reserve(num_top);
  float worst_kept = kNegInf;  // once `top` is full, a token must beat this to enter
  for (size_t i = 0; i < logits.size(); ++i) {
    const float logit = logits[i];
    if (top.size() == num_top ? !(logit > worst_kept) : std::isnan(logit)) continue;
    // First entry with a smaller logit: equal logits keep their lower ids ahead.
    const auto pos =
        std::upper_bound(top.begin(), top.end(), logit, [](float v, const TokenLogprob& t) { return v > t.logprob; });
    const auto index = pos - top.begin();
    if (top.size() == num_top) top.pop_back();
    top.insert(top.begin() + index, TokenLogprob{static_cast<int32_t>(i), logit});
    worst_kept = top.back().logprob;
  }
}

// log(sum(exp(logits))), NaNs ignored.
double log_sum_exp(std::span<const float> logits) {
  const float max_logit = max_logit_of(logits);
  if (!std::isfinite(max_logit)) return max_logit;
  double sum = 0.0;
  for (const float logit : logits) {
    if (!std::isnan(logit)) sum += std::exp(logit - max_logit);
  }
  return static_cast<double>(max_logit) + std::log(sum);
}

// ---- sparse logit edits: bias, masking, penalties --------------------------------------

// Writes single logits, remembering the raw value of each token it touches so the sampled
// token's raw logprob can be reported without copying the whole row.
class LogitEditor {
 public:
  LogitEditor(std::span<float> logits, std::vector<std::pair<int32_t, float>>* raw_logit_edits)
      : logits_(logits), raw_logit_edits_(raw_logit_edits) {
    if (raw_logit_edits_ != nullptr) raw_logit_edits_->clear();
  }

  int32_t vocab_size() const { return static_cast<int32_t>(logits_.size()); }
  float get(int32_t token_id) const { return logits_[token_id]; }
  void set(int32_t token_id, float logit) {
    if (raw_logit_edits_ != nullptr) raw_logit_edits_->emplace_back(token_id, logits_[token_id]);
    logits_[token_id] = logit;
  }

  // The logit `token_id` had before any edit.
  float raw(int32_t token_id) const {
    if (raw_logit_edits_ != nullptr) {
      for (const auto& [edited_id, raw_logit] : *raw_logit_edits_) {
        if (edited_id == token_id) return raw_logit;  // the first edit saw the raw value
      }
    }
    return logits_[token_id];
  }

 private:
  std::span<float> logits_;
  std::vector<std::pair<int32_t, float>>* raw_logit_edits_;
};

void apply_logit_bias(LogitEditor& editor, const SamplingParams& params) {
  for (const auto& [token_id, bias] : params.logit_bias) {
    if (in_vocab(token_id, editor.vocab_size())) editor.set(token_id, editor.get(token_id) + bias);
  }
}

// vLLM's MinTokensLogitsProcessor: no stop token before min_tokens tokens exist.
void mask_stop_tokens(LogitEditor& editor, const SamplingParams& params, const SamplingContext& ctx) {
  if (ctx.output_ids.size() >= static_cast<size_t>(std::max(params.min_tokens, 0))) return;
  for (const int32_t token_id : ctx.eos_ids) {
    if (in_vocab(token_id, editor.vocab_size())) editor.set(token_id, kNegInf);
  }
  for (const int32_t token_id : params.stop_token_ids) {
    if (in_vocab(token_id, editor.vocab_size())) editor.set(token_id, kNegInf);
  }
}

// Counts `ids` into workspace.token_counts, listing each distinct id once in counted_ids.
// The caller clears the counts with clear_counts before returning.
void count_tokens(std::span<const int32_t> ids, SamplerWorkspace& workspace, int32_t vocab_size) {
  for (const int32_t token_id : ids) {
    if (!in_vocab(token_id, vocab_size)) continue;
    if (workspace.token_counts[token_id]++ == 0) workspace.counted_ids.push_back(token_id);
  }
}

void clear_counts(SamplerWorkspace& workspace) {
  for (const int32_t token_id : workspace.counted_ids) workspace.token_counts[token_id] = 0;
  workspace.counted_ids.clear();
}

// HF / vLLM repetition penalty (CTRL, Keskar et al. 2019): once per distinct token of the
// prompt or the output, whatever its count.
void apply_repetition_penalty(LogitEditor& editor, float penalty, const SamplingContext& ctx,
                              SamplerWorkspace& workspace) {
  count_tokens(ctx.prompt_ids, workspace, editor.vocab_size());
  count_tokens(ctx.output_ids, workspace, editor.vocab_size());
  for (const int32_t token_id : workspace.counted_ids) {
    const float logit = editor.get(token_id);
    editor.set(token_id, logit > 0 ? logit / penalty : logit * penalty);
  }
  clear_counts(workspace);
}

// OpenAI: logit -= frequency_penalty * count + presence_penalty * (count > 0), output only.
void apply_frequency_presence_penalties(LogitEditor& editor, const SamplingParams& params, const SamplingContext& ctx,
                                        SamplerWorkspace& workspace) {
  count_tokens(ctx.output_ids, workspace, editor.vocab_size());
  for (const int32_t token_id : workspace.counted_ids) {
    const float count = static_cast<float>(workspace.token_counts[token_id]);
    editor.set(token_id, editor.get(token_id) - (params.frequency_penalty * count + params.presence_penalty));
  }
  clear_counts(workspace);
}

// ---- choosing the token ----------------------------------------------------------------

// The highest logit, ties to the lowest id; token 0 when nothing is finite or above -inf.
int32_t argmax(std::span<const float> logits) {
  int32_t best_id = 0;
  float best_logit = kNegInf;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > best_logit) {
      best_logit = logits[i];
      best_id = static_cast<int32_t>(i);
    }
  }
  return best_id;
}

// The canonical order every filter and the draw walk: higher weight first, ties to lower id.
// (A lambda rather than a function, so the selection algorithms inline it.)
constexpr auto ranks_before = [](const Candidate& a, const Candidate& b) {
  return a.weight > b.weight || (a.weight == b.weight && a.token_id < b.token_id);
};

// The k-th largest logit above -inf (-inf when fewer exist), one pass with a k-entry heap:
// on real logits few tokens beat the running threshold, so this costs about one read each.
float kth_largest_logit(std::span<const float> logits, size_t k, std::vector<float>& heap) {
  heap.clear();
  heap.reserve(k);
  const auto min_heap = std::greater<float>();
  for (const float logit : logits) {
    if (!(logit > kNegInf)) continue;
    if (heap.size() < k) {
      heap.push_back(logit);
      std::push_heap(heap.begin(), heap.end(), min_heap);
    } else if (logit > heap.front()) {
      std::pop_heap(heap.begin(), heap.end(), min_heap);
      heap.back() = logit;
      std::push_heap(heap.begin(), heap.end(), min_heap);
    }
  }
  return heap.size() < k ? kNegInf : heap.front();
}

// Finds the candidate at which the running mass, taken in canonical order, first exceeds
// `target` (or reaches it, when `inclusive`), and reorders `candidates` so that those ranked
// before it come first, in no particular order. Returns its index; the last one when rounding
// leaves the target beyond the total. A quickselect on mass: each cut splits the range that
// holds the answer, so only a few dozen candidates are ever sorted. The first cut is one
// partition at a weight threshold, since real LLM distributions put nearly all their mass on
// a few tokens; later cuts halve the range with nth_element.
size_t select_by_mass(std::span<Candidate> candidates, double target, bool inclusive) {
  constexpr float kHeadWeight = 1e-4f;  // relative to the best token's weight of 1
  constexpr size_t kSortBelow = 64;
  const auto passes = [target, inclusive](double mass) { return inclusive ? mass >= target : mass > target; };
  const auto at = [&candidates](size_t i) { return candidates.begin() + static_cast<ptrdiff_t>(i); };
  size_t lo = 0;
  size_t hi = candidates.size();
  double mass_before_lo = 0.0;
  // Narrows [lo, hi) to the side of `mid` that holds the answer.
  const auto cut = [&](size_t mid) {
    double mass_lo_mid = 0.0;
    for (size_t i = lo; i < mid; ++i) mass_lo_mid += candidates[i].weight;
    if (passes(mass_before_lo + mass_lo_mid)) {
      hi = mid;
    } else {
      mass_before_lo += mass_lo_mid;
      lo = mid;
    }
  };
  if (hi - lo > kSortBelow) {
    const auto head_end = std::partition(at(lo), at(hi), [](const Candidate& c) { return c.weight >= kHeadWeight; });
    const auto mid = static_cast<size_t>(head_end - candidates.begin());
    if (mid > lo && mid < hi) cut(mid);
  }
  while (hi - lo > kSortBelow) {
    const size_t mid = lo + (hi - lo) / 2;
    std::nth_element(at(lo), at(mid), at(hi), ranks_before);
    cut(mid);
  }
  std::sort(at(lo), at(hi), ranks_before);
  double mass = mass_before_lo;
  for (size_t i = lo; i < hi; ++i) {
    mass += candidates[i].weight;
    if (passes(mass)) return i;
  }
  return hi - 1;
}

// Temperature, top-k, top-p, min-p (in that order, as vLLM's v0 sampler), then inverse-CDF
// sampling of `uniform` in canonical order.
int32_t sample_filtered(std::span<const float> logits, const SamplingParams& params, double uniform,
                        SamplerWorkspace& workspace) {
  const float max_logit = max_logit_of(logits);
  if (!std::isfinite(max_logit)) return argmax(logits);  // all masked, or a +inf logit

  // top-k: the candidates are the k best tokens (all tokens above -inf when disabled).
  const size_t vocab_size = logits.size();
  const size_t top_k = params.top_k > 0 ? std::min<size_t>(params.top_k, vocab_size) : vocab_size;
  const float threshold = top_k * 8 <= vocab_size ? kth_largest_logit(logits, top_k, workspace.top_k_heap) : kNegInf;
  auto& candidates = workspace.candidates;
  candidates.clear();
  for (size_t i = 0; i < vocab_size; ++i) {
    const float logit = logits[i];
    if (logit >= threshold && logit > kNegInf) {
      candidates.push_back(Candidate{logit, static_cast<int32_t>(i)});
    }
  }
  if (candidates.size() > top_k) {  // ties at the threshold, or no threshold was taken
    std::nth_element(candidates.begin(), candidates.begin() + static_cast<ptrdiff_t>(top_k), candidates.end(),
                     ranks_before);
    candidates.resize(top_k);
  }

  // Weights relative to the best token (weight 1); top-p renormalizes over the top-k set.
  const float temperature = params.temperature;
  double top_k_mass = 0.0;
  for (Candidate& c : candidates) {
    c.weight = std::exp((c.weight - max_logit) / temperature);
    top_k_mass += c.weight;
  }

  // min-p keeps tokens with p >= min_p * p_max, i.e. weight >= min_p. What it drops is a
  // suffix of the canonical order, so dropping it before the top-p cut rather than after
  // changes nothing (top-p still normalizes by the top-k mass). Underflowed weights can
  // never be drawn.
  const float min_p = params.min_p;
  std::erase_if(candidates, [min_p](const Candidate& c) { return !(c.weight > 0) || c.weight < min_p; });
  if (candidates.empty()) return argmax(logits);  // only with unvalidated params (min_p > 1)
  std::span<Candidate> kept(candidates);

  // top-p: the smallest prefix whose probability reaches top_p, at least one token.
  if (params.top_p < 1.0f) {
    const double nucleus_mass = static_cast<double>(params.top_p) * top_k_mass;
    kept = kept.first(select_by_mass(kept, nucleus_mass, /*inclusive=*/true) + 1);
  }

  // Inverse CDF over what is left.
  double kept_mass = 0.0;
  for (const Candidate& c : kept) kept_mass += c.weight;
  return kept[select_by_mass(kept, uniform * kept_mass, /*inclusive=*/false)].token_id;
}

}  // namespace

Status validate_sampling_params(const SamplingParams& params, int32_t vocab_size) {
  if (vocab_size <= 0) return field_error("vocab_size", "> 0", vocab_size);
  if (!(std::isfinite(params.temperature) && params.temperature >= 0.0f)) {
    return field_error("temperature", "a finite number >= 0", params.temperature);
  }
  if (!(params.top_p > 0.0f && params.top_p <= 1.0f)) {
    return field_error("top_p", "in (0, 1]", params.top_p);
  }
  if (params.top_k < -1) return field_error("top_k", ">= -1 (-1 and 0 disable it)", params.top_k);
  if (!(params.min_p >= 0.0f && params.min_p <= 1.0f)) {
    return field_error("min_p", "in [0, 1]", params.min_p);
  }
  if (!(std::isfinite(params.repetition_penalty) && params.repetition_penalty > 0.0f)) {
    return field_error("repetition_penalty", "a finite number > 0", params.repetition_penalty);
  }
  if (!(std::abs(params.presence_penalty) <= kMaxAbsPenalty)) {
    return field_error("presence_penalty", "in [-2, 2]", params.presence_penalty);
  }
  if (!(std::abs(params.frequency_penalty) <= kMaxAbsPenalty)) {
    return field_error("frequency_penalty", "in [-2, 2]", params.frequency_penalty);
  }
  for (const auto& [token_id, bias] : params.logit_bias) {
    if (!in_vocab(token_id, vocab_size)) {
      return field_error("logit_bias token id", "in [0, " + format_number(vocab_size) + ")", token_id);
    }
    if (!(std::abs(bias) <= kMaxAbsLogitBias)) {
      return field_error("logit_bias for token " + format_number(token_id), "in [-100, 100]", bias);
    }
  }
  if (params.max_tokens < 1) return field_error("max_tokens", ">= 1", params.max_tokens);
  if (params.min_tokens < 0) return field_error("min_tokens", ">= 0", params.min_tokens);
  if (params.min_tokens > params.max_tokens) {
    return field_error("min_tokens", "<= max_tokens (" + format_number(params.max_tokens) + ")", params.min_tokens);
  }
  if (params.logprobs < -1 || params.logprobs > kMaxLogprobs) {
    return field_error("logprobs", "in [-1, 20]", params.logprobs);
  }
  for (const int32_t token_id : params.stop_token_ids) {
    if (!in_vocab(token_id, vocab_size)) {
      return field_error("stop_token_ids entry", "in [0, " + format_number(vocab_size) + ")", token_id);
    }
  }
  return Status::ok_status();
}

double sampling_uniform(uint64_t seed, uint64_t step) {
  const uint64_t bits = mix64(mix64(seed) + (step + 1) * kGoldenGamma);
  return static_cast<double>(bits >> 11) * 0x1.0p-53;  // 53 random bits -> [0, 1)
}

SampledToken sample_token(std::span<float> logits, const SamplingParams& params, const SamplingContext& ctx,
                          SamplerWorkspace& workspace) {
  SampledToken out;
  if (logits.empty()) return out;

  // Logprobs describe the model's own distribution, so they are taken before any edit.
  const bool want_logprobs = params.logprobs >= 0;
  double raw_log_normalizer = 0.0;
  if (want_logprobs) {
    const size_t num_top = std::min<size_t>(params.logprobs, logits.size());
    collect_top_logits(logits, num_top, out.top);
    raw_log_normalizer = log_sum_exp(logits);
    for (TokenLogprob& t : out.top) {
      t.logprob = static_cast<float>(t.logprob - raw_log_normalizer);
    }
  }

  LogitEditor editor(logits, want_logprobs ? &workspace.raw_logit_edits : nullptr);
  apply_logit_bias(editor, params);
  mask_stop_tokens(editor, params, ctx);
  const bool repetition = params.repetition_penalty != 1.0f;
  const bool frequency_presence = params.frequency_penalty != 0.0f || params.presence_penalty != 0.0f;
  if (repetition || frequency_presence) {
    if (workspace.token_counts.size() < logits.size()) workspace.token_counts.resize(logits.size(), 0);
    workspace.counted_ids.clear();
    if (repetition) apply_repetition_penalty(editor, params.repetition_penalty, ctx, workspace);
    if (frequency_presence) apply_frequency_presence_penalties(editor, params, ctx, workspace);
  }

  if (is_greedy(params)) {
    out.token_id = argmax(logits);
  } else {
    const double uniform = sampling_uniform(ctx.seed, ctx.output_ids.size());
    out.token_id = sample_filtered(logits, params, uniform, workspace);
  }
  if (want_logprobs) {
    out.logprob = static_cast<float>(editor.raw(out.token_id) - raw_log_normalizer);
  }
  return out;
}

SampledToken sample_token(std::span<float> logits, const SamplingParams& params, const SamplingContext& ctx) {
  SamplerWorkspace workspace;
  return sample_token(logits, params, ctx, workspace);
}

}  // namespace strata
