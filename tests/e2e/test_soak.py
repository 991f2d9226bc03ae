#!/usr/bin/env python3
"""Memory soak of `strata serve` (scripts/soak.py): after a warm-up, tens of thousands of mixed
requests (completion and chat, streaming and not, n > 1, logprobs, clients hanging up, requests
that must fail) leave the server's resident memory flat, every outcome as its kind requires and
every KV block free; then the issue's reproducer, one-token completions of "hello", retains
less than 100 bytes a request.

STRATA_SOAK_REQUESTS (default 20000) sets the mixed phase's size; the GPU run uses a long form
(tests/bench/soak_on_gpu.sh)."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from strata_e2e import Server, source_dir, step, work_dir  # noqa: E402

MIXED_REQUESTS = int(os.environ.get("STRATA_SOAK_REQUESTS", "20000"))
MAX_RSS_GROWTH_KIB = 4096         # "a few MB" after warm-up, whatever the request count
MAX_RETAINED_BYTES_PER_REQUEST = 100


def soak(server, name, *flags):
    out = os.path.join(work_dir(), f"soak-{name}-{os.getpid()}.json")
    cmd = [sys.executable, os.path.join(source_dir(), "scripts", "soak.py"), "--url", server.url,
           "--pid", str(server.proc.pid), "--json", out, *flags]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1500)
    print(r.stdout[-3000:], flush=True)
    assert r.returncode in (0, 3), r.stderr[-3000:]
    with open(out) as f:
        return json.load(f)


def main():
    with Server("--max-num-seqs", "64") as server:
        with step(f"{MIXED_REQUESTS} mixed requests at concurrency 16"):
            r = soak(server, "mixed", "--requests", str(MIXED_REQUESTS), "--warmup", "4000", "--concurrency", "16")
            print(f"   {r['requests_per_s']} requests/s; kinds {r['by_kind']}")
            assert r["failures"] == 0, r["failure_examples"]
            assert all(n > 0 for n in r["by_kind"].values()), r["by_kind"]
            assert r["kv_blocks_used_at_end"] == 0, r["kv_blocks_used_at_end"]
            assert r["running_at_end"] == 0 and r["waiting_at_end"] == 0
            assert r["rss_growth_kib"] is not None, "no memory samples (is /proc readable?)"
            print(f"   RSS {r['rss_warm_kib']} KiB after warm-up -> {r['rss_end_kib']} KiB")
            assert r["rss_growth_kib"] <= MAX_RSS_GROWTH_KIB, \
                f"RSS grew {r['rss_growth_kib']} KiB after warm-up ({r['retained_bytes_per_request']} B/request)"

        with step("the leak reproducer: one-token completions of 'hello'"):
            r = soak(server, "hello", "--requests", "12000", "--warmup", "2000", "--concurrency", "8",
                     "--hello-only")
            assert r["failures"] == 0, r["failure_examples"]
            print(f"   retained {r['retained_bytes_per_request']} bytes/request over "
                  f"{r['requests'] - r['warmup_requests']} requests")
            assert r["retained_bytes_per_request"] < MAX_RETAINED_BYTES_PER_REQUEST, r["retained_bytes_per_request"]
    print("PASS")


if __name__ == "__main__":
    main()
