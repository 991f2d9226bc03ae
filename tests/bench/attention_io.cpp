// strata_attention_io: cuda::paged_attention on inputs read from a file, its output written to
// another, so that a script on the GPU machine can hold it against another implementation bit
// for bit (tests/bench/attention_vs_flash.py: torch SDPA's FlashAttention-2 on the same inputs).
// One sequence of L new tokens, causal, prefill (query = context = L), KV blocks of 16 slots
// in order. The input file holds q [L, heads, head_dim], k and v [L, kv_heads, head_dim] as
// bf16, one after the other; the output file gets out [L, heads, head_dim] as bf16.
// Usage: strata_attention_io L HEADS KV_HEADS HEAD_DIM IN_FILE OUT_FILE
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/paged_attention.h"

namespace {

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "strata_attention_io: %s\n", message.c_str());
  std::exit(1);
}

void check(cudaError_t error, const char* what) {
  if (error != cudaSuccess) die(std::string(what) + ": " + cudaGetErrorString(error));
}

int positive(const char* text, const char* name) {
  const int value = std::atoi(text);
  if (value <= 0) die(std::string(name) + " must be a positive whole number, got " + text);
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  using strata::cuda::DeviceBuffer;
  if (argc != 7) die("usage: strata_attention_io L HEADS KV_HEADS HEAD_DIM IN_FILE OUT_FILE");
  const int len = positive(argv[1], "L");
  const int heads = positive(argv[2], "HEADS");
  const int kv_heads = positive(argv[3], "KV_HEADS");
  const int head_dim = positive(argv[4], "HEAD_DIM");
  constexpr int kBlockSize = 16;
  const int blocks = (len + kBlockSize - 1) / kBlockSize;
  const size_t q_elems = size_t(len) * heads * head_dim;
  const size_t kv_elems = size_t(len) * kv_heads * head_dim;
  const size_t cache_elems = size_t(blocks) * kBlockSize * kv_heads * head_dim;

  std::vector<uint16_t> host(q_elems + 2 * kv_elems);
  std::ifstream in(argv[5], std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(host.data()), std::streamsize(host.size() * 2))) {
    die(std::string(argv[5]) + ": want " + std::to_string(host.size() * 2) + " bytes of bf16 q, k, v");
  }
  DeviceBuffer q, k, v, out, tables, query_start, context_lens;
  auto make = [](DeviceBuffer* b, size_t bytes) {
    if (!DeviceBuffer::create(b, bytes).ok()) die("cudaMalloc failed");
  };
  make(&q, q_elems * 2);
  make(&k, cache_elems * 2);
  make(&v, cache_elems * 2);
  make(&out, q_elems * 2);
  make(&tables, size_t(blocks) * 4);
  make(&query_start, 8);
  make(&context_lens, 4);
  check(cudaMemset(k.get(), 0, cache_elems * 2), "cudaMemset");
  check(cudaMemset(v.get(), 0, cache_elems * 2), "cudaMemset");
  check(cudaMemcpy(q.get(), host.data(), q_elems * 2, cudaMemcpyHostToDevice), "q");
  check(cudaMemcpy(k.get(), host.data() + q_elems, kv_elems * 2, cudaMemcpyHostToDevice), "k");
  check(cudaMemcpy(v.get(), host.data() + q_elems + kv_elems, kv_elems * 2, cudaMemcpyHostToDevice), "v");
  std::vector<int32_t> table(blocks);
  for (int i = 0; i < blocks; ++i) table[i] = i;
  const int32_t starts[2] = {0, len};
  check(cudaMemcpy(tables.get(), table.data(), table.size() * 4, cudaMemcpyHostToDevice), "block table");
  check(cudaMemcpy(query_start.get(), starts, 8, cudaMemcpyHostToDevice), "query_start");
  check(cudaMemcpy(context_lens.get(), &len, 4, cudaMemcpyHostToDevice), "context_lens");
  const auto status = strata::cuda::paged_attention(
      out.get(), q.get(), int64_t(heads) * head_dim, k.get(), v.get(), tables.data<int32_t>(), blocks,
      query_start.data<int32_t>(), context_lens.data<int32_t>(), 1, len, len, len, heads, kv_heads, head_dim,
      kBlockSize, 1.0f / std::sqrt(float(head_dim)), 0, nullptr, 0, strata::cuda::DType::kBF16, nullptr);
  if (!status.ok()) die(status.message);
  check(cudaDeviceSynchronize(), "paged_attention");
  std::vector<uint16_t> result(q_elems);
  check(cudaMemcpy(result.data(), out.get(), q_elems * 2, cudaMemcpyDeviceToHost), "out");
  std::ofstream file(argv[6], std::ios::binary);
  file.write(reinterpret_cast<const char*>(result.data()), std::streamsize(result.size() * 2));
  if (!file) die(std::string("cannot write ") + argv[6]);
  return 0;
}
