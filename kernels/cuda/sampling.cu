// Sampling kernel: one 512-thread block per logits row. Raw logprobs, sparse logit edits in
// place, then the argmax or a radix selection by count or by probability mass that walks the
// CPU sampler's canonical order (descending weight, ties to the lower id).
//
// logits: [num_rows, vocab_size] fp32. Per row (engine/sampling/sampler.cpp is the spec):
//  1. Logprobs (num_logprobs >= 0): log_sum_exp of the raw row (one pass, online per thread)
//     and the top-N raw logits by a count selection (below), before any edit.
//  2. Edits, in the CPU's order: logit_bias (duplicates of a token added in request order by
//     one thread), -inf on stop/EOS ids while min_tokens is not reached, repetition_penalty
//     on every listed token, then frequency/presence on those with output_count > 0. The raw
//     values of the edited tokens go to the workspace first, for the sampled token's logprob.
//  3. Greedy rows: argmax, ties to the lowest id. Others: the max (derived from the raw max
//     when no edit touched a token at it, else one pass), then
//     - top-k: a count selection of the k-th token in (logit desc, id asc) order. When
//       k <= 2048 the k tokens are gathered into shared memory, given their weights
//       exp((logit - max) / T), sorted, and min-p, top-p and the draw run there on prefix sums.
//     - otherwise, over the whole row: a mass selection of the top-p boundary (target
//       top_p * top-k mass, inclusive), then of the drawn token (target u * kept mass,
//       exclusive) among the tokens ranked up to that boundary; if the nucleus holds at most
//       2048 tokens they are gathered and the draw runs in shared memory instead.
//
// The selection (select_boundary) is an MSB radix select over a 32-bit key that orders
// members canonically (the order-preserving bits of the logit, or the bits of the weight,
// which is >= 0): three levels of 11/11/10 bits, each one pass over the row building a
// 2048-bin histogram of the members inside the current bucket. Count mode counts; mass mode
// sums the members' weights exactly, as integers: within a bin the exponent is fixed, so
// the mass is count * (bin significand) plus the sum of the free low bits, kept in two
// 32-bit counters (native shared-memory atomics, order-independent, so runs are
// deterministic). The bins are scanned in descending order for the first whose running mass
// passes the target. As soon as the chosen bucket holds <= 2048 members they are gathered
// (with the members above it, when those fit too), bitonic-sorted by (key desc, id asc) and
// the boundary found with a block prefix sum; a bucket still larger after all 32 bits is a
// tie group of one weight, resolved arithmetically and located by an ordered scan over ids.
//
// Where it may differ from the CPU: weights are computed as (float)exp((double)z) on the
// same z = (logit - max) / T (IEEE sub and div), so they are the correctly rounded value;
// glibc's expf is within 0.502 ulp, so the two agree except for rare 1-ulp differences. Mass
// sums are double on both sides but in another order. A draw can therefore only differ when
// its target lies within ~1e-7 relative of a prefix-sum boundary (or min_p within ~1e-7 of a
// weight); the test constructs inputs away from such boundaries.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <limits>
#include <utility>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/sampling.h"

namespace strata::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kNumBins = 2048;  // 11-bit digits (the last level uses 10)
constexpr int kBinsPerThread = kNumBins / kThreads;
static_assert(kNumBins % (2 * kThreads) == 0, "every thread scans whole bins at every level");
constexpr int kCandidateCapacity = 2048;  // members sorted in shared memory at once
constexpr int kMaxVocabSize = 1 << 21;    // keeps the histogram's 32-bit bit sums from overflowing
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// ---- keys and weights ----------------------------------------------------------------------

// Order-preserving bits of a non-NaN logit: a > b as floats iff key(a) > key(b). -0 maps to +0,
// since the CPU compares them equal and breaks the tie by id.
__device__ __forceinline__ uint32_t logit_key(float x) {
  const uint32_t bits = x == 0.0f ? 0u : __float_as_uint(x);
  return (bits & 0x80000000u) != 0 ? ~bits : (bits | 0x80000000u);
}

__device__ __forceinline__ float logit_of_key(uint32_t key) {
  return __uint_as_float((key & 0x80000000u) != 0 ? (key & 0x7fffffffu) : ~key);
}

// The CPU's weight std::exp((logit - max) / temperature): the same IEEE float sub and div,
// then exp in double rounded once to float (the correctly rounded result).
__device__ __forceinline__ float token_weight(float logit, float max_logit, float temperature) {
  const float scaled = __fdiv_rn(__fsub_rn(logit, max_logit), temperature);
  return __double2float_rn(exp(static_cast<double>(scaled)));
}

// Sorted candidates: (key desc, id asc) is the descending order of key << 32 | ~id. Every real
// entry is > 0 (keys of members are > 0), so 0 pads a sort.
__device__ __forceinline__ uint64_t compose(uint32_t key, int32_t id) {
  return (static_cast<uint64_t>(key) << 32) | static_cast<uint32_t>(~static_cast<uint32_t>(id));
}
__device__ __forceinline__ uint32_t key_of(uint64_t candidate) { return static_cast<uint32_t>(candidate >> 32); }
__device__ __forceinline__ int32_t id_of(uint64_t candidate) {
  return static_cast<int32_t>(~static_cast<uint32_t>(candidate));
}

// A member's weight in mass mode (its key is the bits of its weight), 1 in count mode.
template <bool kMass>
__device__ __forceinline__ double member_weight(uint32_t key) {
  if constexpr (kMass) {
    return static_cast<double>(__uint_as_float(key));
  } else {
    return 1.0;
  }
}

__device__ __forceinline__ bool passes(double mass, double target, bool inclusive) {
  return inclusive ? mass >= target : mass > target;
}

// ---- shared memory and block reductions --------------------------------------------------

struct Histogram {
  uint32_t count[kNumBins];
  uint32_t free_hi[kNumBins];  // mass mode: sums of the members' free key bits >> 11
  uint32_t free_lo[kNumBins];  // and of their free key bits & 0x7ff
};

struct RowShared {
  union {
    Histogram hist;
    uint64_t candidates[kCandidateCapacity];
  };
  double scratch_mass[kWarps];
  int scratch_count[kWarps];
  float scratch_value[kWarps];
  int scratch_id[kWarps];
  double chosen_mass;
  int chosen_count;
  int chosen_bin_count;
  int first_index;
  int last_index;
  int num_gathered;
  int found_id;
  int raw_found;
  float raw_logit;
};

__device__ __forceinline__ int lane_id() { return static_cast<int>(threadIdx.x & 31u); }
__device__ __forceinline__ int warp_id() { return static_cast<int>(threadIdx.x >> 5); }

// Sums in a fixed order: every thread (and every run) gets the same bits.
__device__ double block_sum(double v, RowShared& sm) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  if (lane_id() == 0) sm.scratch_mass[warp_id()] = v;
  __syncthreads();
  double total = 0.0;
  for (int w = 0; w < kWarps; ++w) total += sm.scratch_mass[w];
  __syncthreads();
  return total;
}

// Max over the block, NaNs ignored (fmaxf), as the CPU's std::max loop.
__device__ float block_max(float v, RowShared& sm) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  if (lane_id() == 0) sm.scratch_value[warp_id()] = v;
  __syncthreads();
  float result = kNegInf;
  for (int w = 0; w < kWarps; ++w) result = fmaxf(result, sm.scratch_value[w]);
  __syncthreads();
  return result;
}

struct ScanResult {
  double mass_before = 0.0;  // over lower threads
  int count_before = 0;
  double mass_total = 0.0;
  int count_total = 0;
};

// Exclusive prefix sums over threads in threadIdx order, of a mass and a count together.
__device__ ScanResult block_exclusive_scan(double mass, int count, RowShared& sm) {
  const int lane = lane_id();
  const int warp = warp_id();
  double m = mass;
  int c = count;
  for (int offset = 1; offset < 32; offset <<= 1) {
    const double up_m = __shfl_up_sync(kFullMask, m, offset);
    const int up_c = __shfl_up_sync(kFullMask, c, offset);
    if (lane >= offset) {
      m += up_m;
      c += up_c;
    }
  }
  double lane_m = __shfl_up_sync(kFullMask, m, 1);
  int lane_c = __shfl_up_sync(kFullMask, c, 1);
  if (lane == 0) {
    lane_m = 0.0;
    lane_c = 0;
  }
  if (lane == 31) {
    sm.scratch_mass[warp] = m;
    sm.scratch_count[warp] = c;
  }
  __syncthreads();
  ScanResult result;
  for (int w = 0; w < kWarps; ++w) {
    if (w == warp) {
      result.mass_before = result.mass_total;
      result.count_before = result.count_total;
    }
    result.mass_total += sm.scratch_mass[w];
    result.count_total += sm.scratch_count[w];
  }
  result.mass_before += lane_m;
  result.count_before += lane_c;
  __syncthreads();
  return result;
}

// Calls fn(id, logit) for every token of the row, split over the block; 16-byte loads when the
// row allows (vocab_size % 4 == 0 and an aligned row), kLoadBatch of them issued before any is
// used so that one block per SM keeps enough bytes in flight.
template <class Fn>
__device__ __forceinline__ void for_each_logit(const float* row, int vocab_size, bool vec4, Fn&& fn) {
  constexpr int kLoadBatch = 4;
  if (vec4) {
    const float4* row4 = reinterpret_cast<const float4*>(row);
    const int num_vecs = vocab_size >> 2;
    int v = static_cast<int>(threadIdx.x);
    for (; v + (kLoadBatch - 1) * kThreads < num_vecs; v += kLoadBatch * kThreads) {
      float4 q[kLoadBatch];
#pragma unroll
      for (int b = 0; b < kLoadBatch; ++b) q[b] = row4[v + b * kThreads];
#pragma unroll
      for (int b = 0; b < kLoadBatch; ++b) {
        const int id = (v + b * kThreads) << 2;
        fn(id, q[b].x);
        fn(id + 1, q[b].y);
        fn(id + 2, q[b].z);
        fn(id + 3, q[b].w);
      }
    }
    for (; v < num_vecs; v += kThreads) {
      const float4 q = row4[v];
      const int id = v << 2;
      fn(id, q.x);
      fn(id + 1, q.y);
      fn(id + 2, q.z);
      fn(id + 3, q.w);
    }
  } else {
    for (int id = static_cast<int>(threadIdx.x); id < vocab_size; id += kThreads) fn(id, row[id]);
  }
}

// The highest logit, ties to the lowest id; 0 when no logit is above -inf (the CPU's argmax).
__device__ int argmax_logit(const float* row, int vocab_size, bool vec4, RowShared& sm) {
  float best = kNegInf;
  int best_id = INT_MAX;
  for_each_logit(row, vocab_size, vec4, [&](int id, float x) {
    if (x > best || (x == best && x > kNegInf && id < best_id)) {
      best = x;
      best_id = id;
    }
  });
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float other = __shfl_xor_sync(kFullMask, best, offset);
    const int other_id = __shfl_xor_sync(kFullMask, best_id, offset);
    if (other > best || (other == best && other_id < best_id)) {
      best = other;
      best_id = other_id;
    }
  }
  if (lane_id() == 0) {
    sm.scratch_value[warp_id()] = best;
    sm.scratch_id[warp_id()] = best_id;
  }
  __syncthreads();
  best = kNegInf;
  best_id = INT_MAX;
  for (int w = 0; w < kWarps; ++w) {
    const float other = sm.scratch_value[w];
    const int other_id = sm.scratch_id[w];
    if (other > best || (other == best && other_id < best_id)) {
      best = other;
      best_id = other_id;
    }
  }
  __syncthreads();
  return best_id == INT_MAX ? 0 : best_id;
}

__device__ float max_logit_of_row(const float* row, int vocab_size, bool vec4, RowShared& sm) {
  float m = kNegInf;
  for_each_logit(row, vocab_size, vec4, [&](int, float x) { m = fmaxf(m, x); });
  return block_max(m, sm);
}

// ---- views: which tokens a selection ranks, and by which key ---------------------------------
// member(id, logit, key, first_pass) says whether the token takes part and sets its key; on
// the first pass of a selection (which sees every token once) a view may gather statistics.

// Raw logits for the top logprobs: every non-NaN token. The first pass also accumulates
// log_sum_exp: the max over non-NaN logits and, per thread, sum exp(x - finite_max) online.
struct RawLogitsView {
  float max_logit = kNegInf;
  float finite_max = kNegInf;
  double sum_exp = 0.0;

  __device__ void observe(float x) {
    if (isnan(x)) return;
    max_logit = fmaxf(max_logit, x);
    if (isinf(x)) return;
    if (x > finite_max) {
      sum_exp = sum_exp * exp(static_cast<double>(finite_max) - static_cast<double>(x)) + 1.0;
      finite_max = x;
    } else {
      sum_exp += static_cast<double>(expf(x - finite_max));
    }
  }
  __device__ bool member(int, float x, uint32_t& key, bool first_pass) {
    if (first_pass) observe(x);
    if (isnan(x)) return false;
    key = logit_key(x);
    return true;
  }
};

// log(sum(exp(logits))) as the CPU's log_sum_exp: the max itself when it is not finite.
__device__ double log_normalizer(const RawLogitsView& view, float max_logit, RowShared& sm) {
  const double part = view.sum_exp > 0.0
                          ? view.sum_exp * exp(static_cast<double>(view.finite_max) - static_cast<double>(max_logit))
                          : 0.0;
  const double sum = block_sum(part, sm);
  if (!isfinite(max_logit)) return static_cast<double>(max_logit);
  return static_cast<double>(max_logit) + log(sum);
}

// Edited logits for top-k: every token above -inf. Optionally the max on the first pass.
struct FiniteLogitsView {
  bool track_max = false;
  float max_logit = kNegInf;

  __device__ bool member(int, float x, uint32_t& key, bool first_pass) {
    if (first_pass && track_max) max_logit = fmaxf(max_logit, x);
    if (!(x > kNegInf)) return false;
    key = logit_key(x);
    return true;
  }
};

// The top-k set: tokens ranked up to the k-th in (logit desc, id asc) order.
struct TopKCut {
  bool active = false;
  uint32_t key = 0;
  int32_t id = 0;

  __device__ bool keeps(int token_id, float x) const {
    if (!active) return true;
    const uint32_t k = logit_key(x);
    return k > key || (k == key && token_id <= id);
  }
};

// Weights of the top-k tokens that min-p keeps (weight > 0 and >= min_p), keyed by the bits of
// their weight; with has_nucleus only those ranked up to the top-p boundary. The first pass
// also sums the weights of the whole top-k set (top-p's normalizer).
struct WeightsView {
  float max_logit = 0.0f;
  float temperature = 1.0f;
  float min_p = 0.0f;
  TopKCut top_k;
  bool has_nucleus = false;
  uint32_t nucleus_key = 0;
  int32_t nucleus_id = 0;
  double top_k_mass = 0.0;

  __device__ bool member(int id, float x, uint32_t& key, bool first_pass) {
    if (!(x > kNegInf) || !top_k.keeps(id, x)) return false;
    const float w = token_weight(x, max_logit, temperature);
    if (first_pass) top_k_mass += static_cast<double>(w);
    if (!(w > 0.0f) || w < min_p) return false;
    key = __float_as_uint(w);
    return !has_nucleus || key > nucleus_key || (key == nucleus_key && id <= nucleus_id);
  }
};

// ---- candidates in shared memory -------------------------------------------------------------

// Sorts sm.candidates[0, n) descending (the canonical order); n <= kCandidateCapacity.
__device__ void sort_candidates(int n, RowShared& sm) {
  int size = 1;
  while (size < n) size <<= 1;
  for (int i = n + static_cast<int>(threadIdx.x); i < size; i += kThreads) sm.candidates[i] = 0;
  __syncthreads();
  for (int k = 2; k <= size; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int i = static_cast<int>(threadIdx.x); i < size; i += kThreads) {
        const int partner = i ^ j;
        if (partner <= i) continue;
        const uint64_t a = sm.candidates[i];
        const uint64_t b = sm.candidates[partner];
        if ((i & k) == 0 ? a < b : a > b) {
          sm.candidates[i] = b;
          sm.candidates[partner] = a;
        }
      }
      __syncthreads();
    }
  }
}

// The first index in [begin, end) of the sorted candidates where base plus the running mass
// passes `target`; -1 when none does.
template <bool kMass>
__device__ int first_passing(int begin, int end, double base, double target, bool inclusive, RowShared& sm) {
  const int n = end - begin;
  const int per_thread = (n + kThreads - 1) / kThreads;
  const int lo = begin + min(n, static_cast<int>(threadIdx.x) * per_thread);
  const int hi = begin + min(n, (static_cast<int>(threadIdx.x) + 1) * per_thread);
  double mass = 0.0;
  for (int i = lo; i < hi; ++i) mass += member_weight<kMass>(key_of(sm.candidates[i]));
  const ScanResult scan = block_exclusive_scan(mass, 0, sm);
  if (threadIdx.x == 0) sm.first_index = INT_MAX;
  __syncthreads();
  double running = base + scan.mass_before;
  for (int i = lo; i < hi; ++i) {
    running += member_weight<kMass>(key_of(sm.candidates[i]));
    if (passes(running, target, inclusive)) {
      atomicMin(&sm.first_index, i);
      break;
    }
  }
  __syncthreads();
  const int first = sm.first_index;
  __syncthreads();
  return first == INT_MAX ? -1 : first;
}

// Inverse CDF over the weight-sorted candidates [0, n), n >= 1: the first whose running mass
// exceeds uniform * their total, the last when rounding leaves none.
__device__ int draw_from_candidates(int n, double uniform, RowShared& sm) {
  double mass = 0.0;
  for (int i = static_cast<int>(threadIdx.x); i < n; i += kThreads) mass += __uint_as_float(key_of(sm.candidates[i]));
  const double kept_mass = block_sum(mass, sm);
  int index = first_passing<true>(0, n, 0.0, uniform * kept_mass, /*inclusive=*/false, sm);
  if (index < 0) index = n - 1;
  const int id = id_of(sm.candidates[index]);
  __syncthreads();
  return id;
}

// sm.candidates[0, n): the top-k tokens keyed by logit. Weights them, sorts by weight and runs
// min-p, top-p and the draw; -1 when min-p keeps nothing (the caller takes the argmax).
__device__ int sample_top_k_candidates(int n, float max_logit, const SamplingRow& p, RowShared& sm) {
  for (int i = static_cast<int>(threadIdx.x); i < n; i += kThreads) {
    const uint64_t c = sm.candidates[i];
    const float w = token_weight(logit_of_key(key_of(c)), max_logit, p.temperature);
    sm.candidates[i] = compose(__float_as_uint(w), id_of(c));
  }
  __syncthreads();
  sort_candidates(n, sm);
  double mass = 0.0;
  int kept = 0;
  for (int i = static_cast<int>(threadIdx.x); i < n; i += kThreads) {
    const float w = __uint_as_float(key_of(sm.candidates[i]));
    mass += static_cast<double>(w);
    kept += (w > 0.0f && w >= p.min_p) ? 1 : 0;
  }
  const ScanResult totals = block_exclusive_scan(mass, kept, sm);
  const int num_kept = totals.count_total;  // a prefix: the weights are sorted
  if (num_kept == 0) return -1;
  int cut = num_kept;
  if (p.top_p < 1.0f) {
    const double nucleus_mass = static_cast<double>(p.top_p) * totals.mass_total;
    const int index = first_passing<true>(0, num_kept, 0.0, nucleus_mass, /*inclusive=*/true, sm);
    if (index >= 0) cut = index + 1;
  }
  return draw_from_candidates(cut, p.uniform, sm);
}

// ---- the selection ---------------------------------------------------------------------------

struct Selection {
  bool empty = true;    // no member at all
  bool beyond = false;  // the target exceeds the members' total: the boundary is the last member
  uint32_t key = 0;     // the boundary member
  int32_t id = 0;
  int rank = 0;          // members ranked before the boundary
  int prefix_count = 0;  // > 0: sm.candidates[0, prefix_count) holds the members up to the boundary, sorted
};

// The id of the `nth` (1-based) member with key `key`, in increasing id order.
template <class View>
__device__ int nth_member_with_key(const float* row, int vocab_size, View& view, uint32_t key, int nth, RowShared& sm) {
  constexpr int kPerThread = 4;
  const auto matches = [&](int id) {
    uint32_t k = 0;
    return id < vocab_size && view.member(id, row[id], k, false) && k == key;
  };
  if (threadIdx.x == 0) sm.found_id = 0;
  int seen = 0;
  for (int chunk = 0; chunk < vocab_size; chunk += kThreads * kPerThread) {
    const int first = chunk + static_cast<int>(threadIdx.x) * kPerThread;
    int count = 0;
    for (int q = 0; q < kPerThread; ++q) count += matches(first + q) ? 1 : 0;
    const ScanResult scan = block_exclusive_scan(0.0, count, sm);
    const int before = seen + scan.count_before;
    if (before < nth && nth <= before + count) {
      int k = before;
      for (int q = 0; q < kPerThread; ++q) {
        if (matches(first + q) && ++k == nth) {
          sm.found_id = first + q;
          break;
        }
      }
    }
    seen += scan.count_total;
    if (seen >= nth) break;
  }
  __syncthreads();
  const int id = sm.found_id;
  __syncthreads();
  return id;
}

// Gathers the members with (key & prefix_mask) == prefix, and those above them when all fit,
// sorts them and finds the boundary among the bucket's members.
template <bool kMass, class View>
__device__ Selection collect_bucket(const float* row, int vocab_size, bool vec4, View& view, uint32_t prefix,
                                    uint32_t prefix_mask, double above_mass, int above_count, int bucket_count,
                                    double target, bool inclusive, bool beyond, RowShared& sm) {
  const bool with_above = above_count + bucket_count <= kCandidateCapacity;
  if (threadIdx.x == 0) sm.num_gathered = 0;
  __syncthreads();
  for_each_logit(row, vocab_size, vec4, [&](int id, float x) {
    uint32_t key = 0;
    if (!view.member(id, x, key, false)) return;
    const uint32_t high = key & prefix_mask;
    if (high == prefix || (with_above && high > prefix)) {
      const int slot = atomicAdd(&sm.num_gathered, 1);
      if (slot < kCandidateCapacity) sm.candidates[slot] = compose(key, id);
    }
  });
  __syncthreads();
  const int n = min(sm.num_gathered, kCandidateCapacity);
  sort_candidates(n, sm);
  const int begin = with_above ? min(above_count, n) : 0;
  int index = beyond ? -1 : first_passing<kMass>(begin, n, above_mass, target, inclusive, sm);
  Selection sel;
  sel.empty = false;
  sel.beyond = index < 0;
  if (index < 0) index = n - 1;
  sel.key = key_of(sm.candidates[index]);
  sel.id = id_of(sm.candidates[index]);
  sel.rank = above_count + (index - begin);
  sel.prefix_count = with_above ? index + 1 : 0;
  __syncthreads();
  return sel;
}

// Finds the member at which the running weight (count, or mass in kMass mode), taken in
// canonical order (key desc, id asc), first passes the target: >= when inclusive, else >.
// target_of(total) gives the target once the first pass has seen every member. When the
// target is beyond the total the boundary is the last member (the CPU's select_by_mass).
template <bool kMass, class View, class TargetFn>
__device__ Selection select_boundary(const float* row, int vocab_size, bool vec4, View& view, TargetFn&& target_of,
                                     bool inclusive, RowShared& sm) {
  uint32_t prefix = 0;
  uint32_t prefix_mask = 0;
  double above_mass = 0.0;  // members ranked above the current bucket
  int above_count = 0;
  double target = 0.0;
  bool beyond = false;
  for (int level = 0; level < 3; ++level) {
    const int shift = level == 0 ? 21 : (level == 1 ? 10 : 0);
    const uint32_t digit_mask = level == 2 ? 0x3ffu : 0x7ffu;
    const int num_bins = static_cast<int>(digit_mask) + 1;
    const uint32_t free_mask = (1u << shift) - 1u;
    for (int b = static_cast<int>(threadIdx.x); b < num_bins; b += kThreads) {
      sm.hist.count[b] = 0;
      sm.hist.free_hi[b] = 0;
      sm.hist.free_lo[b] = 0;
    }
    __syncthreads();
    const bool first_pass = level == 0;
    for_each_logit(row, vocab_size, vec4, [&](int id, float x) {
      uint32_t key = 0;
      if (!view.member(id, x, key, first_pass) || (key & prefix_mask) != prefix) return;
      const uint32_t bin = (key >> shift) & digit_mask;
      atomicAdd(&sm.hist.count[bin], 1u);
      if constexpr (kMass) {
        const uint32_t free_bits = key & free_mask;
        if ((free_bits >> 11) != 0) atomicAdd(&sm.hist.free_hi[bin], free_bits >> 11);
        if ((free_bits & 0x7ffu) != 0) atomicAdd(&sm.hist.free_lo[bin], free_bits & 0x7ffu);
      }
    });
    __syncthreads();

    // Each thread takes `per_thread` consecutive bins in descending key order.
    const int per_thread = num_bins / kThreads;
    double bin_mass[kBinsPerThread];
    int bin_count[kBinsPerThread];
    double thread_mass = 0.0;
    int thread_count = 0;
#pragma unroll
    for (int q = 0; q < kBinsPerThread; ++q) {
      bin_mass[q] = 0.0;
      bin_count[q] = 0;
      if (q >= per_thread) continue;
      const int bin = num_bins - 1 - (static_cast<int>(threadIdx.x) * per_thread + q);
      const uint32_t count = sm.hist.count[bin];
      bin_count[q] = static_cast<int>(count);
      if constexpr (kMass) {
        // Within a bin the exponent is fixed: the mass is exact from the significands' sum.
        const uint32_t bin_key = prefix | (static_cast<uint32_t>(bin) << shift);
        const uint32_t exponent = (bin_key >> 23) & 0xffu;
        const double significand = (exponent != 0 ? 8388608.0 : 0.0) + static_cast<double>(bin_key & 0x7fffffu);
        const double significand_sum = static_cast<double>(count) * significand +
                                       static_cast<double>(sm.hist.free_hi[bin]) * 2048.0 +
                                       static_cast<double>(sm.hist.free_lo[bin]);
        bin_mass[q] = ldexp(significand_sum, static_cast<int>(exponent > 1u ? exponent : 1u) - 150);
      } else {
        bin_mass[q] = static_cast<double>(count);
      }
      thread_mass += bin_mass[q];
      thread_count += bin_count[q];
    }
    const ScanResult scan = block_exclusive_scan(thread_mass, thread_count, sm);
    if (level == 0) {
      if (scan.count_total == 0) return Selection{};
      target = target_of(scan.mass_total);
    }

    if (threadIdx.x == 0) {
      sm.first_index = INT_MAX;
      sm.last_index = -1;
    }
    __syncthreads();
    double running = above_mass + scan.mass_before;
    for (int q = 0; q < per_thread; ++q) {
      if (bin_count[q] == 0) continue;
      const int j = static_cast<int>(threadIdx.x) * per_thread + q;
      running += bin_mass[q];
      atomicMax(&sm.last_index, j);
      if (!beyond && passes(running, target, inclusive)) {
        atomicMin(&sm.first_index, j);
        break;
      }
    }
    __syncthreads();
    const bool passed = sm.first_index != INT_MAX;
    const int chosen = passed ? sm.first_index : sm.last_index;
    beyond = beyond || !passed;
    if (static_cast<int>(threadIdx.x) == chosen / per_thread) {
      double mass = above_mass + scan.mass_before;
      int count = above_count + scan.count_before;
      const int chosen_q = chosen % per_thread;
      for (int q = 0; q < chosen_q; ++q) {
        mass += bin_mass[q];
        count += bin_count[q];
      }
      sm.chosen_mass = mass;
      sm.chosen_count = count;
      sm.chosen_bin_count = bin_count[chosen_q];
    }
    __syncthreads();
    above_mass = sm.chosen_mass;
    above_count = sm.chosen_count;
    const int bucket_count = sm.chosen_bin_count;
    prefix |= static_cast<uint32_t>(num_bins - 1 - chosen) << shift;
    prefix_mask |= digit_mask << shift;
    __syncthreads();

    if (bucket_count <= kCandidateCapacity) {
      return collect_bucket<kMass>(row, vocab_size, vec4, view, prefix, prefix_mask, above_mass, above_count,
                                   bucket_count, target, inclusive, beyond, sm);
    }
    if (level == 2) {
      // A tie group of one key (so one weight) too large to sort: take members by id.
      const double weight = member_weight<kMass>(prefix);
      int take = bucket_count;
      if (!beyond) {
        const double needed = (target - above_mass) / weight;
        const double taken = inclusive ? ceil(needed) : floor(needed) + 1.0;
        take = static_cast<int>(fmin(fmax(taken, 1.0), static_cast<double>(bucket_count)));
      }
      Selection sel;
      sel.empty = false;
      sel.beyond = beyond;
      sel.key = prefix;
      sel.id = nth_member_with_key(row, vocab_size, view, prefix, take, sm);
      sel.rank = above_count + take - 1;
      return sel;
    }
  }
  return Selection{};  // not reached: level 2 always returns
}

// Puts the members ranked up to sel's boundary into sm.candidates, sorted; returns how many.
// Needs sel.rank < kCandidateCapacity.
template <class View>
__device__ int gather_prefix(const float* row, int vocab_size, bool vec4, View& view, const Selection& sel,
                             RowShared& sm) {
  if (sel.prefix_count > 0) return sel.prefix_count;
  if (threadIdx.x == 0) sm.num_gathered = 0;
  __syncthreads();
  for_each_logit(row, vocab_size, vec4, [&](int id, float x) {
    uint32_t key = 0;
    if (!view.member(id, x, key, false)) return;
    if (key > sel.key || (key == sel.key && id <= sel.id)) {
      const int slot = atomicAdd(&sm.num_gathered, 1);
      if (slot < kCandidateCapacity) sm.candidates[slot] = compose(key, id);
    }
  });
  __syncthreads();
  const int n = min(sm.num_gathered, kCandidateCapacity);
  sort_candidates(n, sm);
  return n;
}

// ---- one row -----------------------------------------------------------------------------------

struct KernelArgs {
  float* logits;
  const SamplingRow* rows;
  const SamplingLogitBias* logit_bias;
  const int32_t* stop_token_ids;
  const SamplingPenaltyToken* penalty_tokens;
  int64_t num_logit_bias;
  int64_t num_stop_token_ids;
  float* raw_backup;  // workspace: one slot per list entry (bias, then stop, then penalty)
  int num_rows;
  int vocab_size;
  int max_num_logprobs;
  int32_t* token_ids;
  float* logprobs;
  int32_t* top_token_ids;
  float* top_logprobs;
};

// The list entries one row applies.
struct RowEdits {
  const KernelArgs* args;
  const SamplingRow* row;
  bool mask;
  bool penalize;

  __device__ bool any() const {
    return row->logit_bias_end > row->logit_bias_begin || (mask && row->stop_end > row->stop_begin) ||
           (penalize && row->penalty_end > row->penalty_begin);
  }
  // fn(token_id, workspace slot) for every applied entry, split over the block.
  template <class Fn>
  __device__ void for_each(Fn&& fn) const {
    const int tid = static_cast<int>(threadIdx.x);
    for (int k = row->logit_bias_begin + tid; k < row->logit_bias_end; k += kThreads) {
      fn(args->logit_bias[k].token_id, static_cast<int64_t>(k));
    }
    if (mask) {
      for (int k = row->stop_begin + tid; k < row->stop_end; k += kThreads) {
        fn(args->stop_token_ids[k], args->num_logit_bias + k);
      }
    }
    if (penalize) {
      for (int k = row->penalty_begin + tid; k < row->penalty_end; k += kThreads) {
        fn(args->penalty_tokens[k].token_id, args->num_logit_bias + args->num_stop_token_ids + k);
      }
    }
  }
};

// Bias, then min_tokens masking, then repetition and frequency/presence penalties, in place.
__device__ void apply_edits(float* logits, int vocab_size, const RowEdits& edits) {
  const KernelArgs& a = *edits.args;
  const SamplingRow& p = *edits.row;
  const int tid = static_cast<int>(threadIdx.x);
  // The first entry of each token adds all of that token's biases, in request order.
  for (int k = p.logit_bias_begin + tid; k < p.logit_bias_end; k += kThreads) {
    const int32_t token = a.logit_bias[k].token_id;
    if (token < 0 || token >= vocab_size) continue;
    bool first = true;
    for (int j = p.logit_bias_begin; j < k && first; ++j) first = a.logit_bias[j].token_id != token;
    if (!first) continue;
    float logit = logits[token];
    for (int j = k; j < p.logit_bias_end; ++j) {
      if (a.logit_bias[j].token_id == token) logit = __fadd_rn(logit, a.logit_bias[j].bias);
    }
    logits[token] = logit;
  }
  __syncthreads();
  if (edits.mask) {
    for (int k = p.stop_begin + tid; k < p.stop_end; k += kThreads) {
      const int32_t token = a.stop_token_ids[k];
      if (token >= 0 && token < vocab_size) logits[token] = kNegInf;
    }
  }
  __syncthreads();
  if (edits.penalize) {
    const bool repetition = p.repetition_penalty != 1.0f;
    const bool frequency_presence = p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f;
    for (int k = p.penalty_begin + tid; k < p.penalty_end; k += kThreads) {
      const SamplingPenaltyToken entry = a.penalty_tokens[k];
      if (entry.token_id < 0 || entry.token_id >= vocab_size) continue;
      float logit = logits[entry.token_id];
      if (repetition) {
        logit = logit > 0.0f ? __fdiv_rn(logit, p.repetition_penalty) : __fmul_rn(logit, p.repetition_penalty);
      }
      if (frequency_presence && entry.output_count > 0) {
        const float count = static_cast<float>(entry.output_count);
        logit = __fsub_rn(logit, __fadd_rn(__fmul_rn(p.frequency_penalty, count), p.presence_penalty));
      }
      logits[entry.token_id] = logit;
    }
  }
  __syncthreads();
}

// Temperature, top-k, top-p, min-p and the draw (the CPU's sample_filtered).
__device__ int sample_filtered_row(const float* logits, int vocab_size, bool vec4, const SamplingRow& p, bool have_max,
                                   float max_logit, RowShared& sm) {
  const int top_k = p.top_k > 0 && p.top_k < vocab_size ? p.top_k : 0;
  TopKCut cut;
  if (top_k > 0) {
    FiniteLogitsView view;
    view.track_max = !have_max;
    const Selection sel = select_boundary<false>(
        logits, vocab_size, vec4, view, [top_k](double) { return static_cast<double>(top_k); }, true, sm);
    if (!have_max) {
      max_logit = block_max(view.max_logit, sm);
      have_max = true;
    }
    if (!isfinite(max_logit)) return argmax_logit(logits, vocab_size, vec4, sm);
    if (!sel.empty && !sel.beyond) {  // else fewer than k tokens are above -inf: no cut
      cut.active = true;
      cut.key = sel.key;
      cut.id = sel.id;
      if (top_k <= kCandidateCapacity) {
        const int n = gather_prefix(logits, vocab_size, vec4, view, sel, sm);
        const int token = sample_top_k_candidates(n, max_logit, p, sm);
        return token >= 0 ? token : argmax_logit(logits, vocab_size, vec4, sm);
      }
    }
  }
  if (!have_max) max_logit = max_logit_of_row(logits, vocab_size, vec4, sm);
  if (!isfinite(max_logit)) return argmax_logit(logits, vocab_size, vec4, sm);  // all masked, or a +inf logit

  WeightsView view;
  view.max_logit = max_logit;
  view.temperature = p.temperature;
  view.min_p = p.min_p;
  view.top_k = cut;
  if (p.top_p < 1.0f) {
    const double top_p = static_cast<double>(p.top_p);
    const Selection nucleus = select_boundary<true>(
        logits, vocab_size, vec4, view, [&](double) { return top_p * block_sum(view.top_k_mass, sm); }, true, sm);
    if (nucleus.empty) return argmax_logit(logits, vocab_size, vec4, sm);  // min_p kept nothing
    if (nucleus.rank < kCandidateCapacity) {
      const int n = gather_prefix(logits, vocab_size, vec4, view, nucleus, sm);
      return draw_from_candidates(n, p.uniform, sm);
    }
    view.has_nucleus = true;
    view.nucleus_key = nucleus.key;
    view.nucleus_id = nucleus.id;
  }
  const double uniform = p.uniform;
  const Selection draw = select_boundary<true>(
      logits, vocab_size, vec4, view, [uniform](double total) { return uniform * total; }, false, sm);
  if (draw.empty) return argmax_logit(logits, vocab_size, vec4, sm);  // min_p kept nothing
  return draw.id;
}

__global__ void __launch_bounds__(kThreads) sample_tokens_kernel(KernelArgs a) {
  __shared__ RowShared sm;
  const int vocab_size = a.vocab_size;
  const int tid = static_cast<int>(threadIdx.x);
  for (int r = static_cast<int>(blockIdx.x); r < a.num_rows; r += static_cast<int>(gridDim.x)) {
    const SamplingRow p = a.rows[r];
    float* logits = a.logits + static_cast<int64_t>(r) * vocab_size;
    const bool vec4 = (vocab_size & 3) == 0 && (reinterpret_cast<uintptr_t>(logits) & 15u) == 0;
    const bool want_logprobs = p.num_logprobs >= 0;

    // 1. Raw logprobs, before any edit.
    double normalizer = 0.0;
    float raw_max = kNegInf;
    if (want_logprobs) {
      const int num_top = min(p.num_logprobs, min(a.max_num_logprobs, vocab_size));
      RawLogitsView view;
      int num_found = 0;
      if (num_top > 0) {
        const Selection sel = select_boundary<false>(
            logits, vocab_size, vec4, view, [num_top](double) { return static_cast<double>(num_top); }, true, sm);
        if (!sel.empty) num_found = gather_prefix(logits, vocab_size, vec4, view, sel, sm);
      } else {
        for_each_logit(logits, vocab_size, vec4, [&](int, float x) { view.observe(x); });
      }
      raw_max = block_max(view.max_logit, sm);
      normalizer = log_normalizer(view, raw_max, sm);
      if (a.top_token_ids != nullptr) {
        for (int i = tid; i < a.max_num_logprobs; i += kThreads) {
          const int64_t slot = static_cast<int64_t>(r) * a.max_num_logprobs + i;
          if (i < num_found) {
            const uint64_t c = sm.candidates[i];
            a.top_token_ids[slot] = id_of(c);
            a.top_logprobs[slot] = static_cast<float>(static_cast<double>(logit_of_key(key_of(c))) - normalizer);
          } else {
            a.top_token_ids[slot] = -1;
            a.top_logprobs[slot] = kNegInf;
          }
        }
      }
      __syncthreads();
    } else if (a.top_token_ids != nullptr) {
      for (int i = tid; i < a.max_num_logprobs; i += kThreads) {
        const int64_t slot = static_cast<int64_t>(r) * a.max_num_logprobs + i;
        a.top_token_ids[slot] = -1;
        a.top_logprobs[slot] = kNegInf;
      }
    }

    // 2. Sparse edits in place; the raw logits they overwrite are kept for the logprob.
    RowEdits edits;
    edits.args = &a;
    edits.row = &p;
    edits.mask = p.mask_stop_tokens != 0;
    edits.penalize = p.repetition_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f;
    const bool has_edits = edits.any();
    if (has_edits) {
      if (want_logprobs) {
        edits.for_each([&](int32_t token, int64_t slot) {
          if (token >= 0 && token < vocab_size) a.raw_backup[slot] = logits[token];
        });
        __syncthreads();
      }
      apply_edits(logits, vocab_size, edits);
    }

    // 3. The token.
    int token = 0;
    if (p.greedy != 0) {
      token = argmax_logit(logits, vocab_size, vec4, sm);
    } else {
      bool have_max = false;
      float max_logit = kNegInf;
      if (want_logprobs && !has_edits) {
        have_max = true;
        max_logit = raw_max;
      } else if (want_logprobs) {
        // The edited max is max(raw max, edited values) unless an edit hit a token at the raw max.
        bool touched_max = false;
        float edited_max = kNegInf;
        edits.for_each([&](int32_t t, int64_t slot) {
          if (t < 0 || t >= vocab_size) return;
          if (a.raw_backup[slot] == raw_max) touched_max = true;
          edited_max = fmaxf(edited_max, logits[t]);
        });
        touched_max = __syncthreads_or(touched_max) != 0;
        edited_max = block_max(edited_max, sm);
        if (!touched_max) {
          have_max = true;
          max_logit = fmaxf(raw_max, edited_max);
        }
      }
      token = sample_filtered_row(logits, vocab_size, vec4, p, have_max, max_logit, sm);
    }

    // 4. Outputs; the sampled token's logprob is that of its raw logit.
    float logprob = 0.0f;
    if (want_logprobs) {
      if (tid == 0) sm.raw_found = 0;
      __syncthreads();
      if (has_edits) {
        edits.for_each([&](int32_t t, int64_t slot) {
          if (t == token) {
            sm.raw_logit = a.raw_backup[slot];  // every entry of the token saved the same raw value
            sm.raw_found = 1;
          }
        });
      }
      __syncthreads();
      const float raw_logit = sm.raw_found != 0 ? sm.raw_logit : logits[token];
      logprob = static_cast<float>(static_cast<double>(raw_logit) - normalizer);
    }
    if (tid == 0) {
      a.token_ids[r] = token;
      if (a.logprobs != nullptr) a.logprobs[r] = logprob;
    }
    __syncthreads();
  }
}

}  // namespace

size_t sampling_workspace_bytes(const SamplingBatch& batch) {
  const int64_t entries = std::max<int64_t>(batch.num_logit_bias, 0) + std::max<int64_t>(batch.num_stop_token_ids, 0) +
                          std::max<int64_t>(batch.num_penalty_tokens, 0);
  return static_cast<size_t>(entries) * sizeof(float);
}

LaunchStatus sample_tokens(const SamplingBatch& batch, const SamplingOutputs& outputs, void* workspace,
                           size_t workspace_bytes, cudaStream_t stream) {
  constexpr const char* kKernel = "sample_tokens_kernel";
  const ShapeArgs shape = {{"num_rows", batch.num_rows},
                           {"vocab_size", batch.vocab_size},
                           {"max_num_logprobs", batch.max_num_logprobs},
                           {"num_logit_bias", batch.num_logit_bias},
                           {"num_stop_token_ids", batch.num_stop_token_ids},
                           {"num_penalty_tokens", batch.num_penalty_tokens}};
  const auto fail = [&](const char* why) { return invalid_argument(kKernel, DType::kF32, shape, why); };
  if (batch.num_rows < 0) return fail("num_rows must be >= 0");
  if (batch.vocab_size <= 0 || batch.vocab_size > kMaxVocabSize) return fail("vocab_size must be in [1, 2^21]");
  if (batch.max_num_logprobs < 0 || batch.max_num_logprobs > kMaxSamplingLogprobs) {
    return fail("max_num_logprobs must be in [0, 20]");
  }
  constexpr int64_t kMaxEntries = INT_MAX;
  if (batch.num_logit_bias < 0 || batch.num_stop_token_ids < 0 || batch.num_penalty_tokens < 0 ||
      batch.num_logit_bias > kMaxEntries || batch.num_stop_token_ids > kMaxEntries ||
      batch.num_penalty_tokens > kMaxEntries) {
    return fail("list sizes must be in [0, 2^31)");
  }
  if (batch.num_rows == 0) return {};
  if (batch.logits == nullptr || batch.rows == nullptr || outputs.token_ids == nullptr) {
    return fail("logits, rows and token_ids must be set");
  }
  if ((batch.num_logit_bias > 0 && batch.logit_bias == nullptr) ||
      (batch.num_stop_token_ids > 0 && batch.stop_token_ids == nullptr) ||
      (batch.num_penalty_tokens > 0 && batch.penalty_tokens == nullptr)) {
    return fail("a non-empty list has a null pointer");
  }
  if (batch.max_num_logprobs > 0 && (outputs.top_token_ids == nullptr || outputs.top_logprobs == nullptr)) {
    return fail("top_token_ids and top_logprobs must be set when max_num_logprobs > 0");
  }
  const size_t needed = sampling_workspace_bytes(batch);
  if (workspace_bytes < needed || (needed > 0 && workspace == nullptr)) {
    return fail("workspace smaller than sampling_workspace_bytes");
  }
  KernelArgs args;
  args.logits = batch.logits;
  args.rows = batch.rows;
  args.logit_bias = batch.logit_bias;
  args.stop_token_ids = batch.stop_token_ids;
  args.penalty_tokens = batch.penalty_tokens;
  args.num_logit_bias = batch.num_logit_bias;
  args.num_stop_token_ids = batch.num_stop_token_ids;
  args.raw_backup = static_cast<float*>(workspace);
  args.num_rows = batch.num_rows;
  args.vocab_size = batch.vocab_size;
  args.max_num_logprobs = batch.max_num_logprobs;
  args.token_ids = outputs.token_ids;
  args.logprobs = outputs.logprobs;
  args.top_token_ids = batch.max_num_logprobs > 0 ? outputs.top_token_ids : nullptr;
  args.top_logprobs = batch.max_num_logprobs > 0 ? outputs.top_logprobs : nullptr;
  sample_tokens_kernel<<<grid_for(batch.num_rows), kThreads, 0, stream>>>(args);
  return check_launch(kKernel, DType::kF32, shape);
}

void append_penalty_tokens(const int32_t* prompt_ids, size_t num_prompt_ids, const int32_t* output_ids,
                           size_t num_output_ids, int32_t vocab_size, std::vector<SamplingPenaltyToken>* out) {
  // (token id, 1 if it comes from the output), sorted so each token's occurrences are adjacent.
  std::vector<std::pair<int32_t, int32_t>> occurrences;
  occurrences.reserve(num_prompt_ids + num_output_ids);
  for (size_t i = 0; i < num_prompt_ids; ++i) {
    if (prompt_ids[i] >= 0 && prompt_ids[i] < vocab_size) occurrences.emplace_back(prompt_ids[i], 0);
  }
  for (size_t i = 0; i < num_output_ids; ++i) {
    if (output_ids[i] >= 0 && output_ids[i] < vocab_size) occurrences.emplace_back(output_ids[i], 1);
  }
  std::sort(occurrences.begin(), occurrences.end());
  for (size_t i = 0; i < occurrences.size();) {
    SamplingPenaltyToken entry;
    entry.token_id = occurrences[i].first;
    for (; i < occurrences.size() && occurrences[i].first == entry.token_id; ++i) {
      entry.output_count += occurrences[i].second;
    }
    out->push_back(entry);
  }
}

}  // namespace strata::cuda
