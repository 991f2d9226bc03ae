#!/usr/bin/env python3
"""Soak client for `strata serve`: mixed OpenAI requests at a fixed concurrency for a number of
requests or a duration, while it samples the server's resident memory (/proc/PID/status, when
the server runs on this machine), its GPU memory (nvidia-smi, when present) and the KV-block
gauges of /metrics. Every request's outcome is checked against what its kind must produce.

Kinds: completion and chat, streaming and not, n > 1, logprobs, clients that hang up mid-stream
(half FIN, half RST), and requests that must fail (bad JSON, a wrong field, a wrong model, an
unknown route, a prompt beyond the context window, a non-JSON Content-Type).

Standard library only. Prints a short table last; `--json` writes every figure.

    python3 scripts/soak.py --url http://127.0.0.1:8000 --pid $(pgrep -n strata) \\
        --requests 20000 --concurrency 16 --warmup 3000
"""

import argparse
import http.client
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadtest import WORDS, read_sse_events  # noqa: E402  (the load-test client beside this script)

KINDS = ["completion", "completion_stream", "chat", "chat_stream", "n_choices", "logprobs", "chat_logprobs",
         "disconnect", "bad_request"]


def rss_kib(pid):
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def gpu_mib(pid):
    """GPU memory of `pid` in MiB (nvidia-smi), or None."""
    if not pid:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(pid):
            return int(parts[1])
    return None


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key.split("{")[0]] = out.get(key.split("{")[0], 0.0) + float(value)
    return out


class Client:
    """One worker: a keep-alive connection, reopened after any failure."""

    def __init__(self, host, port, timeout_s):
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.conn = None

    def call(self, method, path, body=None, content_type="application/json", stream=False):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        try:
            self.conn.request(method, path, body=data, headers=headers)
            r = self.conn.getresponse()
            payload = read_sse(r) if stream and r.status == 200 else r.read()
            if r.getheader("connection", "").lower() == "close":
                self.close()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, payload
        except Exception:
            self.close()
            raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def read_sse(response):
    """The data payloads of a server-sent event stream, JSON decoded ('[DONE]' kept as is)."""
    return [p if p == "[DONE]" else json.loads(p) for _, p in read_sse_events(response)]


class Soak:
    def __init__(self, args):
        self.args = args
        u = urllib.parse.urlparse(args.url)
        self.host, self.port = u.hostname, u.port or 80
        self.lock = threading.Lock()
        self.sent = 0
        self.done = 0
        self.by_kind = {k: 0 for k in KINDS}
        self.failures = []  # (kind, description)
        self.num_failures = 0
        self.samples = []  # (t, requests done, rss KiB, gpu MiB)
        self.stop = threading.Event()
        self.t0 = time.time()
        self.model = None
        self.max_model_len = None

    # ---- one request of each kind; returns None when it behaved, else what went wrong ----
    def run_one(self, client, kind, rng):
        a = self.args
        if a.hello_only:  # the leak reproducer of issue 14
            s, _, b = client.call("POST", "/v1/completions", {"prompt": "hello", "max_tokens": 1})
            return check_json(s, b, 1)
        max_tokens = rng.randint(1, a.max_tokens)
        prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, a.prompt_words)))
        if kind == "completion":
            s, _, b = client.call("POST", "/v1/completions", {"prompt": prompt, "max_tokens": max_tokens,
                                                              "temperature": rng.choice([0, 0.8])})
            return check_json(s, b, 1)
        if kind == "completion_stream":
            s, _, ev = client.call("POST", "/v1/completions", {"prompt": prompt, "max_tokens": max_tokens, "stream": True,
                                                               "stream_options": {"include_usage": True}}, stream=True)
            return check_stream(s, ev)
        if kind == "chat":
            s, _, b = client.call("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": prompt}],
                                                                   "max_tokens": max_tokens})
            return check_json(s, b, 1)
        if kind == "chat_stream":
            s, _, ev = client.call("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": prompt}],
                                                                    "max_tokens": max_tokens, "stream": True}, stream=True)
            return check_stream(s, ev)
        if kind == "n_choices":
            n = rng.randint(2, 3)
            s, _, b = client.call("POST", "/v1/completions", {"prompt": prompt, "max_tokens": max_tokens, "n": n,
                                                              "temperature": 1.0, "seed": rng.randint(0, 1 << 30)})
            return check_json(s, b, n)
        if kind == "logprobs":
            s, _, b = client.call("POST", "/v1/completions", {"prompt": prompt, "max_tokens": max_tokens, "logprobs": 2})
            return check_json(s, b, 1)
        if kind == "chat_logprobs":
            s, _, b = client.call("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": prompt}],
                                                                   "max_tokens": max_tokens, "logprobs": True,
                                                                   "top_logprobs": 2})
            return check_json(s, b, 1)
        if kind == "disconnect":
            return self.hang_up(prompt, rng)
        if kind == "bad_request":
            case = rng.randrange(6)
            if case == 0:
                s, _, b = client.call("POST", "/v1/completions", '{"prompt": "x", "max_tokens": ')
                want = 400
            elif case == 1:
                s, _, b = client.call("POST", "/v1/completions", {"prompt": "x", "temperature": "hot"})
                want = 400
            elif case == 2:
                s, _, b = client.call("POST", "/v1/chat/completions", {"model": "no-such-model",
                                                                       "messages": [{"role": "user", "content": "x"}]})
                want = 404
            elif case == 3:
                s, _, b = client.call("GET", "/v1/no-such-route")
                want = 404
            elif case == 4:
                s, _, b = client.call("POST", "/v1/completions",
                                      {"prompt": [1] * 4, "max_tokens": (self.max_model_len or 1 << 20) + 1})
                want = 400
            else:
                s, _, b = client.call("POST", "/v1/completions", "prompt=x", content_type="text/plain")
                want = 415
            if s != want:
                return f"bad_request case {case}: HTTP {s} (wanted {want}): {b[:200]!r}"
            if "error" not in json.loads(b):
                return f"bad_request case {case}: no error object"
            return None
        raise ValueError(kind)

    def hang_up(self, prompt, rng):
        body = json.dumps({"prompt": prompt, "max_tokens": self.args.max_tokens, "stream": True,
                           "ignore_eos": True}).encode()
        req = (f"POST /v1/completions HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        s = socket.create_connection((self.host, self.port), timeout=self.args.timeout_s)
        try:
            s.sendall(req)
            got = b""
            while b"data: " not in got and rng.random() < 0.9:
                chunk = s.recv(4096)
                if not chunk:
                    return f"disconnect: server closed first: {got[:200]!r}"
                got += chunk
            if got and not (got.startswith(b"HTTP/1.1 200") or got.startswith(b"HTTP/1.1 429")):
                return f"disconnect: {got[:200]!r}"
            if rng.random() < 0.5:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        finally:
            s.close()
        return None

    def worker(self, index):
        rng = random.Random(self.args.seed * 1000 + index)
        client = Client(self.host, self.port, self.args.timeout_s)
        weights = [self.args.disconnect_fraction if k == "disconnect" else
                   self.args.error_fraction if k == "bad_request" else 1.0 for k in KINDS]
        normal = sum(w for k, w in zip(KINDS, weights) if k not in ("disconnect", "bad_request"))
        rest = 1.0 - self.args.disconnect_fraction - self.args.error_fraction
        weights = [w * rest / normal if k not in ("disconnect", "bad_request") else w for k, w in zip(KINDS, weights)]
        while not self.stop.is_set():
            with self.lock:
                if self.args.requests and self.sent >= self.args.requests:
                    break
                if self.args.duration_s and time.time() - self.t0 >= self.args.duration_s:
                    break
                self.sent += 1
            kind = "completion" if self.args.hello_only else rng.choices(KINDS, weights)[0]
            try:
                problem = self.run_one(client, kind, rng)
            except Exception as e:  # noqa: BLE001
                problem = f"{type(e).__name__}: {e}"
            with self.lock:
                self.done += 1
                self.by_kind[kind] += 1
                if problem:
                    self.num_failures += 1
                    if len(self.failures) < 20:
                        self.failures.append((kind, problem))
        client.close()

    def load_over(self):
        with self.lock:
            sent = self.sent
        return ((self.args.requests and sent >= self.args.requests) or
                (self.args.duration_s and time.time() - self.t0 >= self.args.duration_s))

    def sampler(self):
        while not self.stop.wait(self.args.sample_interval_s):
            self.sample()

    def sample(self):
        with self.lock:
            done = self.done
        self.samples.append((time.time() - self.t0, done, rss_kib(self.args.pid), gpu_mib(self.args.pid)))

    def metrics(self):
        c = Client(self.host, self.port, 30)
        try:
            s, _, b = c.call("GET", "/metrics")
            return parse_metrics(b.decode()) if s == 200 else {}
        finally:
            c.close()

    def run(self):
        c = Client(self.host, self.port, 30)
        s, _, b = c.call("POST", "/tokenize", {"prompt": "x"})
        c.close()
        if s != 200:
            raise SystemExit(f"soak: /tokenize answered {s}: {b[:200]!r}")
        self.max_model_len = json.loads(b)["max_model_len"]
        self.sample()
        threads = [threading.Thread(target=self.worker, args=(i,)) for i in range(self.args.concurrency)]
        watcher = threading.Thread(target=self.sampler, daemon=True)
        watcher.start()
        warm_sample = None
        for t in threads:
            t.start()
        load_end = None
        while any(t.is_alive() for t in threads):
            time.sleep(0.05)
            if warm_sample is None and self.done >= self.args.warmup:
                self.sample()
                warm_sample = self.samples[-1]
            if load_end is None and self.load_over():
                # The last sample at full load, before the batch drains through sizes the
                # steady load never ran (new CUDA graphs and GEMM plans then fill their caches).
                self.sample()
                load_end = self.samples[-1]
        for t in threads:
            t.join()
        self.stop.set()
        elapsed = time.time() - self.t0
        self.sample()
        load_end = load_end or self.samples[-1]
        # Hung-up requests end within a step; let the engine settle before the last figures.
        deadline = time.time() + 30
        m = self.metrics()
        while time.time() < deadline and (m.get("strata:num_requests_running", 0) or
                                           m.get("strata:num_requests_waiting", 0) or
                                           m.get("strata:kv_cache_blocks_used", 0)):
            time.sleep(0.2)
            m = self.metrics()
        self.sample()
        return self.report(elapsed, warm_sample or self.samples[0], load_end, self.samples[-1], m)

    def report(self, elapsed, warm, last, drained, m):
        """`last`: the sample as the load ends; `drained`: once the engine is idle again (a GPU
        server's batch then shrinks through sizes the steady load never ran)."""
        after_warm = last[1] - warm[1]
        rss_growth = (last[2] - warm[2]) if warm[2] is not None and last[2] is not None else None
        gpu_growth = (last[3] - warm[3]) if warm[3] is not None and last[3] is not None else None
        r = {
            "requests": self.done,
            "elapsed_s": round(elapsed, 1),
            "requests_per_s": round(self.done / elapsed, 1) if elapsed else None,
            "concurrency": self.args.concurrency,
            "by_kind": self.by_kind,
            "failures": self.num_failures,
            "failure_examples": self.failures,
            "warmup_requests": warm[1],
            "rss_warm_kib": warm[2],
            "rss_end_kib": last[2],
            "rss_growth_kib": rss_growth,
            "retained_bytes_per_request": round(rss_growth * 1024 / after_warm, 1) if rss_growth is not None and after_warm else None,
            "gpu_warm_mib": warm[3],
            "gpu_end_mib": last[3],
            "gpu_growth_mib": gpu_growth,
            "rss_drained_kib": drained[2],
            "gpu_drained_mib": drained[3],
            "kv_blocks_used_at_end": m.get("strata:kv_cache_blocks_used"),
            "kv_blocks_total": m.get("strata:kv_cache_blocks_total"),
            "running_at_end": m.get("strata:num_requests_running"),
            "waiting_at_end": m.get("strata:num_requests_waiting"),
            "samples": self.samples,
        }
        return r


def check_json(status, body, n):
    if status != 200:
        return f"HTTP {status}: {body[:200]!r}"
    j = json.loads(body)
    if len(j.get("choices", [])) != n:
        return f"{len(j.get('choices', []))} choices, wanted {n}"
    if j["usage"]["completion_tokens"] < n:
        return f"usage {j['usage']}"
    return None


def check_stream(status, events):
    if status != 200:
        return f"HTTP {status}: {events[:200]!r}"
    if not events or events[-1] != "[DONE]":
        return f"stream did not end with [DONE]: {events[-2:]!r}"
    if any(isinstance(e, dict) and "error" in e for e in events):
        return f"error event: {events[-2]!r}"
    return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--pid", type=int, default=0, help="the server's process id (memory samples); 0: none")
    p.add_argument("--requests", type=int, default=20000, help="requests to send (0: run for --duration-s)")
    p.add_argument("--duration-s", type=float, default=0, help="stop after this many seconds (0: by --requests)")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--warmup", type=int, default=3000, help="requests before the memory baseline is taken")
    p.add_argument("--max-tokens", type=int, default=8, help="largest max_tokens drawn (1..N)")
    p.add_argument("--prompt-words", type=int, default=24, help="longest prompt drawn, in words")
    p.add_argument("--disconnect-fraction", type=float, default=0.05)
    p.add_argument("--error-fraction", type=float, default=0.05)
    p.add_argument("--timeout-s", type=float, default=120)
    p.add_argument("--sample-interval-s", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    p.add_argument("--hello-only", action="store_true",
                   help='only {"prompt": "hello", "max_tokens": 1} completions (the leak reproducer)')
    p.add_argument("--json", help="write every figure here")
    args = p.parse_args(argv)
    print(f"soak: seed {args.seed}", flush=True)
    r = Soak(args).run()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=1)
    for kind, problem in r["failure_examples"]:
        print(f"failure ({kind}): {problem}")
    rows = [("requests", r["requests"]), ("requests/s", r["requests_per_s"]), ("failures", r["failures"]),
            ("RSS after warm-up (KiB)", r["rss_warm_kib"]), ("RSS at end (KiB)", r["rss_end_kib"]),
            ("RSS growth (KiB)", r["rss_growth_kib"]), ("retained bytes/request", r["retained_bytes_per_request"]),
            ("GPU MiB warm / end", f"{r['gpu_warm_mib']} / {r['gpu_end_mib']}"),
            ("RSS KiB / GPU MiB once drained", f"{r['rss_drained_kib']} / {r['gpu_drained_mib']}"),
            ("KV blocks used at end", r["kv_blocks_used_at_end"])]
    print("\n| soak | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    return 0 if r["failures"] == 0 else 3


if __name__ == "__main__":
    sys.exit(main())
