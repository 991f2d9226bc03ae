// strata_mma_probe: do mma.sync (the m16n8k16 strata's attention kernels issue) and Hopper's
// wgmma (m64n8k16, which cuDNN's attention issues) give bitwise the same fp32 sums on the same
// bf16 inputs? Both chain the same k16 steps in the same order, so any difference is the tensor
// cores' own accumulation inside an instruction. Checked on the two products of attention:
// S = Q K^T per head (the causal part), and O = P V with P = bf16(exp2(S * scale - max))
// (unnormalized, causal), for inputs in strata_attention_io's file format (q [L, heads, head_dim],
// k and v [L, kv_heads, head_dim], bf16) or random ones. An fp64 reference on the host checks
// that both are the product at all (so that a wrong shared-memory layout cannot pass as
// "different rounding").
// Usage: strata_mma_probe L HEADS KV_HEADS HEAD_DIM (IN_FILE | --random SEED)
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "engine/core/dtype.h"

namespace {

constexpr int kMaxK = 2048;  // shared memory: 8 rows of K bf16

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "strata_mma_probe: %s\n", message.c_str());
  std::exit(1);
}

void check(cudaError_t error, const char* what) {
  if (error != cudaSuccess) die(std::string(what) + ": " + cudaGetErrorString(error));
}

__device__ __forceinline__ uint32_t load_pair(const uint16_t* p) { return *reinterpret_cast<const uint32_t*>(p); }

// C[b] = A[b] B[b]^T for A [mp, kp] and B [np, kp] (bf16 bits, k contiguous), fp32 out [mp, np],
// once by mma.sync chains and once by wgmma chains over the same k16 steps.
// grid: (mp / 64, np / 8, batch); block: 128 (one warpgroup; warp w takes rows 16w..16w+15).
__global__ void __launch_bounds__(128) probe_kernel(const uint16_t* a_all, const uint16_t* b_all, float* c_mma,
                                                    float* c_wgmma, int mp, int np, int kp) {
  __shared__ alignas(128) uint16_t s_b[8 * kMaxK];
  const int batch = blockIdx.z;
  const int m0 = blockIdx.x * 64;
  const int n0 = blockIdx.y * 8;
  const uint16_t* a = a_all + static_cast<size_t>(batch) * mp * kp;
  const uint16_t* b = b_all + static_cast<size_t>(batch) * np * kp;
  // The 8 x kp B tile as core matrices of 8 rows x 16 bytes: element (n, k) at core matrix k / 8
  // (128 bytes each, adjacent along k), row n, element k % 8. No swizzle.
  for (int e = threadIdx.x; e < 8 * kp; e += 128) {
    const int n = e / kp;
    const int k = e % kp;
    s_b[(k / 8) * 64 + n * 8 + (k % 8)] = b[static_cast<size_t>(n0 + n) * kp + k];
  }
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();

  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int g = lane >> 2;
  const int t = lane & 3;
  const int r0 = m0 + warp * 16;
  const uint16_t* a_lo = a + static_cast<size_t>(r0 + g) * kp;
  const uint16_t* a_hi = a + static_cast<size_t>(r0 + g + 8) * kp;
  const uint16_t* b_row = b + static_cast<size_t>(n0 + g) * kp;

  float dm[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int k0 = 0; k0 < kp; k0 += 16) {
    const uint32_t a0 = load_pair(a_lo + k0 + 2 * t), a1 = load_pair(a_hi + k0 + 2 * t);
    const uint32_t a2 = load_pair(a_lo + k0 + 2 * t + 8), a3 = load_pair(a_hi + k0 + 2 * t + 8);
    const uint32_t b0 = load_pair(b_row + k0 + 2 * t), b1 = load_pair(b_row + k0 + 2 * t + 8);
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(dm[0]), "+f"(dm[1]), "+f"(dm[2]), "+f"(dm[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  }

  float dw[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  const uint32_t base = static_cast<uint32_t>(__cvta_generic_to_shared(s_b));
  for (int k0 = 0; k0 < kp; k0 += 16) {
    const uint32_t a0 = load_pair(a_lo + k0 + 2 * t), a1 = load_pair(a_hi + k0 + 2 * t);
    const uint32_t a2 = load_pair(a_lo + k0 + 2 * t + 8), a3 = load_pair(a_hi + k0 + 2 * t + 8);
    // Start: core matrix k0 / 8; LBO (next core matrix along k) 128 bytes; SBO (next 8 rows
    // along n, none here) 256; no swizzle.
    const uint64_t desc = static_cast<uint64_t>(((base + (k0 / 8) * 128) & 0x3FFFF) >> 4) |
                          (static_cast<uint64_t>(128 >> 4) << 16) | (static_cast<uint64_t>(256 >> 4) << 32);
    // A's registers were just written: a fence before the wgmma that reads them.
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %9, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n8k16.f32.bf16.bf16 {%0, %1, %2, %3}, {%4, %5, %6, %7}, %8, p, 1, 1, 0;\n}\n"
        : "+f"(dw[0]), "+f"(dw[1]), "+f"(dw[2]), "+f"(dw[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(desc), "r"(1)
        : "memory");
  }
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");

  float* cm = c_mma + static_cast<size_t>(batch) * mp * np;
  float* cw = c_wgmma + static_cast<size_t>(batch) * mp * np;
  for (int half = 0; half < 2; ++half) {
    const size_t at = static_cast<size_t>(r0 + g + 8 * half) * np + n0 + 2 * t;
    cm[at] = dm[2 * half];
    cm[at + 1] = dm[2 * half + 1];
    cw[at] = dw[2 * half];
    cw[at + 1] = dw[2 * half + 1];
  }
}

int round_up(int x, int m) { return (x + m - 1) / m * m; }

struct Products {
  std::vector<float> mma, wgmma;
};

Products run(const std::vector<uint16_t>& a, const std::vector<uint16_t>& b, int batch, int mp, int np, int kp) {
  if (kp > kMaxK) die("K past " + std::to_string(kMaxK));
  uint16_t *da = nullptr, *db = nullptr;
  float *dm = nullptr, *dw = nullptr;
  const size_t c_elems = size_t(batch) * mp * np;
  check(cudaMalloc(&da, a.size() * 2), "cudaMalloc");
  check(cudaMalloc(&db, b.size() * 2), "cudaMalloc");
  check(cudaMalloc(&dm, c_elems * 4), "cudaMalloc");
  check(cudaMalloc(&dw, c_elems * 4), "cudaMalloc");
  check(cudaMemcpy(da, a.data(), a.size() * 2, cudaMemcpyHostToDevice), "A");
  check(cudaMemcpy(db, b.data(), b.size() * 2, cudaMemcpyHostToDevice), "B");
  probe_kernel<<<dim3(mp / 64, np / 8, batch), 128>>>(da, db, dm, dw, mp, np, kp);
  check(cudaGetLastError(), "probe_kernel launch");
  check(cudaDeviceSynchronize(), "probe_kernel");
  Products p{std::vector<float>(c_elems), std::vector<float>(c_elems)};
  check(cudaMemcpy(p.mma.data(), dm, c_elems * 4, cudaMemcpyDeviceToHost), "C");
  check(cudaMemcpy(p.wgmma.data(), dw, c_elems * 4, cudaMemcpyDeviceToHost), "C");
  cudaFree(da);
  cudaFree(db);
  cudaFree(dm);
  cudaFree(dw);
  return p;
}

struct Tally {
  int64_t compared = 0, differing = 0;
  double worst_rel_mma = 0.0, worst_rel_wgmma = 0.0;  // against fp64, over |exact| + 1e-3 * row scale
  std::vector<std::pair<int, int>> rows;                // (token, head) with a difference
};

void count(Tally* tally, float mma, float wgmma, double exact, double scale, int token, int head) {
  ++tally->compared;
  uint32_t x, y;
  std::memcpy(&x, &mma, 4);
  std::memcpy(&y, &wgmma, 4);
  if (x != y) {
    ++tally->differing;
    if (tally->rows.empty() || tally->rows.back() != std::make_pair(token, head)) tally->rows.push_back({token, head});
  }
  const double denom = std::fabs(exact) + 1e-3 * scale + 1e-30;
  tally->worst_rel_mma = std::max(tally->worst_rel_mma, std::fabs(mma - exact) / denom);
  tally->worst_rel_wgmma = std::max(tally->worst_rel_wgmma, std::fabs(wgmma - exact) / denom);
}

void report(const char* what, const Tally& t) {
  std::printf("%-6s compared %10lld  differing %8lld (%.4f%%)  rows with a difference %zu  worst rel. error vs fp64: "
              "mma %.2e, wgmma %.2e\n",
              what, static_cast<long long>(t.compared), static_cast<long long>(t.differing),
              t.compared ? 100.0 * double(t.differing) / double(t.compared) : 0.0, t.rows.size(), t.worst_rel_mma,
              t.worst_rel_wgmma);
  std::printf("       first differing (token, head):");
  for (size_t i = 0; i < t.rows.size() && i < 12; ++i) std::printf(" (%d, %d)", t.rows[i].first, t.rows[i].second);
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6 && argc != 7) die("usage: strata_mma_probe L HEADS KV_HEADS HEAD_DIM (IN_FILE | --random SEED)");
  const int len = std::atoi(argv[1]), heads = std::atoi(argv[2]), kv_heads = std::atoi(argv[3]),
            head_dim = std::atoi(argv[4]);
  if (len <= 0 || heads <= 0 || kv_heads <= 0 || head_dim <= 0 || heads % kv_heads != 0 || head_dim % 16 != 0) {
    die("L, HEADS, KV_HEADS, HEAD_DIM must be positive, HEADS a multiple of KV_HEADS, HEAD_DIM of 16");
  }
  const size_t q_elems = size_t(len) * heads * head_dim, kv_elems = size_t(len) * kv_heads * head_dim;
  std::vector<uint16_t> in(q_elems + 2 * kv_elems);
  if (std::string(argv[5]) == "--random") {
    if (argc != 7) die("--random needs a seed");
    std::mt19937 gen(static_cast<unsigned>(std::atoi(argv[6])));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (auto& x : in) x = strata::f32_to_bf16(normal(gen));
  } else {
    std::ifstream file(argv[5], std::ios::binary);
    if (!file.read(reinterpret_cast<char*>(in.data()), std::streamsize(in.size() * 2))) {
      die(std::string(argv[5]) + ": want " + std::to_string(in.size() * 2) + " bytes of bf16 q, k, v");
    }
  }
  const uint16_t* q = in.data();
  const uint16_t* k = q + q_elems;
  const uint16_t* v = k + kv_elems;
  const int group = heads / kv_heads;
  const int lp = round_up(len, 64);  // rows (M) and columns (N) of S, and k of P V
  const float scale_log2 = 1.0f / std::sqrt(float(head_dim)) * 1.4426950408889634f;

  // S = Q K^T per head: A = q_h [lp, head_dim], B = k_kvh [lp, head_dim].
  std::vector<uint16_t> a(size_t(heads) * lp * head_dim, 0), b(size_t(heads) * lp * head_dim, 0);
  for (int h = 0; h < heads; ++h) {
    for (int i = 0; i < len; ++i) {
      for (int d = 0; d < head_dim; ++d) {
        a[(size_t(h) * lp + i) * head_dim + d] = q[(size_t(i) * heads + h) * head_dim + d];
        b[(size_t(h) * lp + i) * head_dim + d] = k[(size_t(i) * kv_heads + h / group) * head_dim + d];
      }
    }
  }
  const Products s = run(a, b, heads, lp, lp, head_dim);
  Tally s_tally;
  for (int h = 0; h < heads; ++h) {
    for (int i = 0; i < len; ++i) {
      std::vector<double> exact(i + 1);
      double row_scale = 0.0;
      for (int j = 0; j <= i; ++j) {
        double dot = 0.0;
        for (int d = 0; d < head_dim; ++d) {
          dot += double(strata::bf16_to_f32(a[(size_t(h) * lp + i) * head_dim + d])) *
                 double(strata::bf16_to_f32(b[(size_t(h) * lp + j) * head_dim + d]));
        }
        exact[j] = dot;
        row_scale = std::max(row_scale, std::fabs(dot));
      }
      for (int j = 0; j <= i; ++j) {
        const size_t at = (size_t(h) * lp + i) * lp + j;
        count(&s_tally, s.mma[at], s.wgmma[at], exact[j], row_scale, i, h);
      }
    }
  }

  // O = P V per head: A = P [lp, lp] from the mma S (causal, exp2 of the scaled score minus its
  // row max, rounded to bf16), B = V^T [head_dim, lp].
  std::vector<uint16_t> p(size_t(heads) * lp * lp, 0), vt(size_t(heads) * head_dim * lp, 0);
  for (int h = 0; h < heads; ++h) {
    for (int i = 0; i < len; ++i) {
      float row_max = -INFINITY;
      for (int j = 0; j <= i; ++j) row_max = std::max(row_max, s.mma[(size_t(h) * lp + i) * lp + j]);
      for (int j = 0; j <= i; ++j) {
        const float x = std::fma(s.mma[(size_t(h) * lp + i) * lp + j], scale_log2, -row_max * scale_log2);
        p[(size_t(h) * lp + i) * lp + j] = strata::f32_to_bf16(std::exp2(x));
      }
    }
    for (int d = 0; d < head_dim; ++d) {
      for (int j = 0; j < len; ++j) {
        vt[(size_t(h) * head_dim + d) * lp + j] = v[(size_t(j) * kv_heads + h / group) * head_dim + d];
      }
    }
  }
  const Products o = run(p, vt, heads, lp, head_dim, lp);
  Tally o_tally;
  for (int h = 0; h < heads; ++h) {
    for (int i = 0; i < len; ++i) {
      std::vector<double> exact(head_dim, 0.0);
      double row_scale = 0.0;
      for (int d = 0; d < head_dim; ++d) {
        for (int j = 0; j <= i; ++j) {
          exact[d] += double(strata::bf16_to_f32(p[(size_t(h) * lp + i) * lp + j])) *
                      double(strata::bf16_to_f32(vt[(size_t(h) * head_dim + d) * lp + j]));
        }
        row_scale = std::max(row_scale, std::fabs(exact[d]));
      }
      for (int d = 0; d < head_dim; ++d) {
        const size_t at = (size_t(h) * lp + i) * head_dim + d;
        count(&o_tally, o.mma[at], o.wgmma[at], exact[d], row_scale, i, h);
      }
    }
  }
  std::printf("L %d, heads %d / %d, head_dim %d, %s\n", len, heads, kv_heads, head_dim, argv[5]);
  report("Q K^T", s_tally);
  report("P V", o_tally);
  return 0;
}
