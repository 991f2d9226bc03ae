#!/usr/bin/env python3
"""The torch reference for strata_bench_attention: F.scaled_dot_product_attention, flash backend
forced, on the same shapes.

prefill: causal, batch 1, q [1, num_heads, L, head_dim], k and v [1, num_kv_heads, L, head_dim]
  (contiguous) with enable_gqa=True, which the flash backend supports (PyTorch >= 2.5); where it
  is refused, k and v are repeated to num_heads heads (repeat_interleave, outside the timing) and
  the report says so. TFLOP/s counting 4*L*L*num_heads*head_dim/2 FLOPs, as strata does.
decode (--decode): q [B, num_heads, 1, head_dim] against a contiguous (not paged) KV of C tokens,
  is_causal=False (the one query sits at the last position, so it sees every token); bytes as
  strata counts them (K+V of all context tokens + q + out), calls rotating over several input
  sets until 4x L2 (>= 256 MiB) has passed, repetitions replaying a CUDA graph of the calls.

Inputs uniform in [-1, 1), bf16 (or --dtype f16); outputs checked finite and inside V's range.
CUDA-event times, median and best of --reps repetitions after warm-ups; a repetition is as many
calls as last >= 2 ms. Needs nothing but torch with CUDA.
Usage: sdpa_bench.py [--json FILE] [--prefill 1024,8192,32768] [--decode] [--contexts ...]
                     [--batches 1,64] [--num-heads 32] [--num-kv-heads 8] [--head-dim 128]
"""

import argparse
import json
import math
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

TARGET_REP_MS = 2.0
MAX_SETS = 64


def int_list(text):
    values = [int(v) for v in text.split(",") if v]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: want positive integers, comma-separated")
    return values


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", help="write every number to this file")
    p.add_argument("--num-heads", type=int, default=32)
    p.add_argument("--num-kv-heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=128)
    p.add_argument("--dtype", choices=["bf16", "f16"], default="bf16")
    p.add_argument("--prefill", type=int_list, default=[1024, 8192, 32768], help="causal prefill lengths L")
    p.add_argument("--decode", action="store_true", help="also time decode-shaped SDPA")
    p.add_argument("--contexts", type=int_list, default=[1024, 8192, 32768], help="decode context lengths")
    p.add_argument("--batches", type=int_list, default=[1, 64], help="decode batch sizes")
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--warmups", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-graph", action="store_true", help="decode: stream launches instead of graph replays")
    a = p.parse_args()
    if a.num_heads % a.num_kv_heads != 0:
        p.error(f"--num-heads ({a.num_heads}) must be a multiple of --num-kv-heads ({a.num_kv_heads})")
    if a.reps < 1 or a.warmups < 0:
        p.error("need --reps >= 1 and --warmups >= 0")
    return a


def die(message):
    print(f"sdpa_bench.py: {message}", file=sys.stderr)
    sys.exit(1)


def time_calls(enqueue, calls, warmups, reps):
    """Per-call ms of `reps` repetitions of `calls` enqueues, after `warmups` untimed ones."""
    call = 0
    for _ in range(warmups):
        for _ in range(calls):
            enqueue(call)
            call += 1
    torch.cuda.synchronize()
    start = torch.cuda.Event(enable_timing=True)
    stop = torch.cuda.Event(enable_timing=True)
    rep_ms = []
    for _ in range(reps):
        start.record()
        for _ in range(calls):
            enqueue(call)
            call += 1
        stop.record()
        stop.synchronize()
        rep_ms.append(start.elapsed_time(stop) / calls)
    return rep_ms


def calls_for(ms_per_call, target_ms, multiple_of):
    calls = math.ceil(target_ms / ms_per_call) if ms_per_call > 0 else 1
    calls = min(max(calls, 1), 20000)
    return (calls + multiple_of - 1) // multiple_of * multiple_of


def summary(rep_ms):
    return {"median_ms": statistics.median(rep_ms), "best_ms": min(rep_ms), "rep_ms": rep_ms}


def uniform(shape, dtype, generator):
    return torch.empty(shape, device="cuda", dtype=dtype).uniform_(-1.0, 1.0, generator=generator)


def check_output(out, what):
    if not bool(torch.isfinite(out).all()):
        die(f"{what}: output has non-finite elements")
    peak = float(out.abs().max())
    if peak > 1.0 + 1.0 / 64:
        die(f"{what}: output element {peak} outside V's range [-1, 1)")


def sdpa(q, k, v, causal, gqa):
    """The flash backend only: sdpa_kernel makes SDPA raise instead of falling back."""
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        if gqa == "enable_gqa":
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def choose_gqa(a, dtype):
    """enable_gqa=True where the flash backend takes it, else repeated kv heads."""
    if a.num_heads == a.num_kv_heads:
        return "none (num_heads == num_kv_heads)"
    q = torch.zeros(1, a.num_heads, 128, a.head_dim, device="cuda", dtype=dtype)
    kv = torch.zeros(1, a.num_kv_heads, 128, a.head_dim, device="cuda", dtype=dtype)
    try:
        sdpa(q, kv, kv, True, "enable_gqa")
        torch.cuda.synchronize()
        return "enable_gqa"
    except (RuntimeError, TypeError) as error:
        print(f"flash SDPA refused enable_gqa ({str(error).splitlines()[0]}); repeating kv heads instead")
        return "repeat_interleave"


def expand_kv(x, a, gqa):
    return x.repeat_interleave(a.num_heads // a.num_kv_heads, dim=1) if gqa == "repeat_interleave" else x


def run_prefill(a, dtype, gqa, seq_len, generator):
    q = uniform((1, a.num_heads, seq_len, a.head_dim), dtype, generator)
    k = expand_kv(uniform((1, a.num_kv_heads, seq_len, a.head_dim), dtype, generator), a, gqa)
    v = expand_kv(uniform((1, a.num_kv_heads, seq_len, a.head_dim), dtype, generator), a, gqa)
    out = sdpa(q, k, v, True, gqa)
    torch.cuda.synchronize()
    check_output(out, f"prefill {seq_len}")
    probe = time_calls(lambda i: sdpa(q, k, v, True, gqa), 1, 1, 1)
    calls = calls_for(probe[0], TARGET_REP_MS, 1)
    row = summary(time_calls(lambda i: sdpa(q, k, v, True, gqa), calls, a.warmups, a.reps))
    flops = 4.0 * seq_len * seq_len * a.num_heads * a.head_dim / 2
    row.update(seq_len=seq_len, batch=1, causal=True, flops=flops, calls_per_rep=calls,
               median_tflops=flops / (row["median_ms"] * 1e9), best_tflops=flops / (row["best_ms"] * 1e9))
    return row


def run_decode(a, dtype, gqa, batch, context, rotate_bytes, generator):
    es = torch.finfo(dtype).bits // 8
    kv_bytes = 2.0 * batch * context * a.num_kv_heads * a.head_dim * es
    q_out_bytes = 2.0 * batch * a.num_heads * a.head_dim * es
    sets = int(min(max(math.ceil(rotate_bytes / (kv_bytes + q_out_bytes)), 1), MAX_SETS))
    inputs = []
    for _ in range(sets):
        q = uniform((batch, a.num_heads, 1, a.head_dim), dtype, generator)
        k = expand_kv(uniform((batch, a.num_kv_heads, context, a.head_dim), dtype, generator), a, gqa)
        v = expand_kv(uniform((batch, a.num_kv_heads, context, a.head_dim), dtype, generator), a, gqa)
        inputs.append((q, k, v))

    def call(i):
        q, k, v = inputs[i % sets]
        return sdpa(q, k, v, False, gqa)

    for i in range(sets):
        check_output(call(i), f"decode batch {batch} context {context}")
    probe = time_calls(call, sets, 1, 1)
    calls = calls_for(probe[0], TARGET_REP_MS, sets)
    timing = "stream"
    if a.no_graph:
        rep_ms = time_calls(call, calls, a.warmups, a.reps)
    else:
        graph = torch.cuda.CUDAGraph()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the capture stream, as torch.cuda.graphs advises
            for i in range(sets):
                call(i)
        torch.cuda.current_stream().wait_stream(side)
        outs = []
        with torch.cuda.graph(graph):
            for i in range(calls):
                out = call(i)
                if i >= calls - sets:
                    outs.append(out)
        rep_ms = [ms / calls for ms in time_calls(lambda i: graph.replay(), 1, a.warmups, a.reps)]
        torch.cuda.synchronize()
        for out in outs:
            check_output(out, f"decode batch {batch} context {context} (graph)")
        timing = "cuda_graph"
    row = summary(rep_ms)
    nbytes = kv_bytes + q_out_bytes
    row.update(batch=batch, context=context, kv_sets=sets, calls_per_rep=calls, timing=timing, kv_bytes=kv_bytes,
               q_out_bytes=q_out_bytes, bytes=nbytes, median_gbps=nbytes / (row["median_ms"] * 1e6),
               best_gbps=nbytes / (row["best_ms"] * 1e6))
    return row


def main():
    a = parse_args()
    if not torch.cuda.is_available():
        die("no CUDA device")
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float16
    prop = torch.cuda.get_device_properties(0)
    l2_bytes = getattr(prop, "L2_cache_size", 50 << 20)
    flash_impl = None
    current_impl = getattr(torch.nn.attention, "current_flash_attention_impl", None)
    if current_impl is not None:
        flash_impl = current_impl()
    print(f"device: {prop.name}, {prop.multi_processor_count} SMs, L2 {l2_bytes >> 20} MiB; torch {torch.__version__}, "
          f"CUDA {torch.version.cuda}; flash implementation: {flash_impl or 'default (FlashAttention-2)'}")
    generator = torch.Generator(device="cuda")
    generator.manual_seed(a.seed)
    gqa = choose_gqa(a, dtype)
    print(f"shape: {a.num_heads} query heads, {a.num_kv_heads} KV heads, head_dim {a.head_dim}, {a.dtype}; GQA: {gqa}")

    report = {
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "device": {"name": prop.name, "compute_capability": f"{prop.major}.{prop.minor}",
                   "multiprocessors": prop.multi_processor_count, "l2_bytes": l2_bytes,
                   "global_memory_bytes": prop.total_memory},
        "backend": "FLASH_ATTENTION (forced with torch.nn.attention.sdpa_kernel)",
        "flash_impl": flash_impl,
        "gqa": gqa,
        "shape": {"num_heads": a.num_heads, "num_kv_heads": a.num_kv_heads, "head_dim": a.head_dim,
                  "dtype": a.dtype, "layout": "[batch, heads, tokens, head_dim], contiguous"},
        "reps": a.reps,
        "warmups": a.warmups,
        "prefill_flops": "4 * L * L * num_heads * head_dim / 2 (causal: half of Q K^T and P V)",
        "decode_bytes": "K+V of all context tokens + q + out",
        "prefill": [],
        "decode": [],
    }
    with torch.inference_mode():
        try:
            for seq_len in a.prefill:
                row = run_prefill(a, dtype, gqa, seq_len, generator)
                report["prefill"].append(row)
                print(f"prefill {seq_len}: {row['median_ms']:.3f} ms, {row['median_tflops']:.1f} TFLOP/s")
                torch.cuda.empty_cache()
            if a.decode:
                rotate_bytes = max(4 * l2_bytes, 256 << 20)
                for context in a.contexts:
                    for batch in a.batches:
                        row = run_decode(a, dtype, gqa, batch, context, rotate_bytes, generator)
                        report["decode"].append(row)
                        print(f"decode batch {batch} context {context}: {row['median_ms'] * 1e3:.2f} us, "
                              f"{row['median_gbps']:.0f} GB/s")
                        torch.cuda.empty_cache()
        except torch.cuda.OutOfMemoryError as error:
            die(f"device memory short ({str(error).splitlines()[0]}); lower --prefill, --contexts or --batches")

    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")

    # The short table, last.
    print(f"\nSDPA flash backend ({flash_impl or 'default'}), {a.dtype}, GQA via {gqa}, {a.reps} reps, median")
    print("prefill (batch 1, causal, query = context = L): FLOPs = 4*L*L*heads*head_dim/2")
    print(f"{'L':>8} {'median ms':>11} {'best ms':>11} {'TFLOP/s':>9} {'best':>9}")
    for r in report["prefill"]:
        print(f"{r['seq_len']:>8} {r['median_ms']:>11.3f} {r['best_ms']:>11.3f} {r['median_tflops']:>9.1f} "
              f"{r['best_tflops']:>9.1f}")
    if report["decode"]:
        print("decode (1 query token, contiguous KV): bytes = K+V of all context tokens + q + out")
        print(f"{'batch':>6} {'context':>8} {'sets':>5} {'median us':>11} {'GB/s':>9}")
        for r in report["decode"]:
            print(f"{r['batch']:>6} {r['context']:>8} {r['kv_sets']:>5} {r['median_ms'] * 1e3:>11.2f} "
                  f"{r['median_gbps']:>9.0f}")


if __name__ == "__main__":
    main()
