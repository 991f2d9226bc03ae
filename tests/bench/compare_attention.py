#!/usr/bin/env python3
"""strata paged attention against torch SDPA (flash backend), from the JSON files of
strata_bench_attention and sdpa_bench.py: prefill TFLOP/s per L and their ratio strata/SDPA
(above 1: strata is faster); decode GB/s per (batch, context), strata's share of the copy
ceiling, and strata/SDPA where sdpa_bench.py ran with --decode.
Usage: compare_attention.py STRATA_JSON SDPA_JSON
"""

import json
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    with open(sys.argv[1]) as f:
        strata = json.load(f)
    with open(sys.argv[2]) as f:
        sdpa = json.load(f)

    sdpa_prefill = {r["seq_len"]: r for r in sdpa.get("prefill", [])}
    print(f"prefill, causal, batch 1, median TFLOP/s (4*L*L*heads*head_dim/2); SDPA: flash, GQA via {sdpa.get('gqa')}")
    print(f"{'L':>8} {'strata':>9} {'SDPA':>9} {'strata/SDPA':>12}")
    for r in strata.get("prefill", []):
        ref = sdpa_prefill.get(r["seq_len"])
        ratio = f"{r['median_tflops'] / ref['median_tflops']:12.2f}" if ref else f"{'-':>12}"
        ref_tflops = f"{ref['median_tflops']:9.1f}" if ref else f"{'-':>9}"
        print(f"{r['seq_len']:>8} {r['median_tflops']:9.1f} {ref_tflops} {ratio}")

    if strata.get("decode"):
        ceiling = strata["copy_ceiling"]
        sdpa_decode = {(r["batch"], r["context"]): r for r in sdpa.get("decode", [])}
        print(f"\ndecode, median GB/s (K+V of all context tokens + q + out); copy ceiling "
              f"{ceiling['median_gbps']:.0f} GB/s ({ceiling['method']})")
        print(f"{'batch':>6} {'context':>8} {'strata':>9} {'of copy':>8} {'SDPA':>9} {'strata/SDPA':>12}")
        for r in strata["decode"]:
            ref = sdpa_decode.get((r["batch"], r["context"]))
            ref_gbps = f"{ref['median_gbps']:9.0f}" if ref else f"{'-':>9}"
            ratio = f"{r['median_gbps'] / ref['median_gbps']:12.2f}" if ref else f"{'-':>12}"
            print(f"{r['batch']:>6} {r['context']:>8} {r['median_gbps']:9.0f} "
                  f"{100 * r['ratio_to_copy_ceiling']:7.0f}% {ref_gbps} {ratio}")


if __name__ == "__main__":
    main()
