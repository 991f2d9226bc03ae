#!/usr/bin/env python3
"""scripts/loadtest.py against the real `strata serve`: fixed-concurrency, Poisson, ShareGPT and
non-streaming runs complete with exact input/output token counts, self-consistent statistics
and /metrics counters that moved by what the client reports; failing requests are counted, and
an unreachable server or a bad dataset is a clear error with a non-zero exit."""
import json
import math
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from strata_e2e import Server, metric, source_dir, step, wait_for, work_dir  # noqa: E402

LOADTEST = os.path.join(source_dir(), "scripts", "loadtest.py")
EXIT_FATAL, EXIT_FAILED_REQUESTS = 1, 3


def loadtest(*flags, timeout=240):
    """Runs loadtest.py; returns (exit code, stdout, stderr, parsed --output-json or None)."""
    out = os.path.join(work_dir(), f"loadtest-{os.getpid()}.json")
    if os.path.exists(out):
        os.remove(out)
    cmd = [sys.executable, LOADTEST, *flags, "--output-json", out]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    doc = None
    if os.path.exists(out):
        with open(out) as f:
            doc = json.load(f)
    return p.returncode, p.stdout, p.stderr, doc


def close(a, b, rel=1e-9):
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def check_table(stdout):
    assert "strata load test" in stdout, stdout
    for label in ("Completed requests", "Failed requests", "Request throughput", "Output throughput",
                  "TTFT", "TPOT", "ITL", "E2E"):
        assert label in stdout, f"table lacks {label!r}:\n{stdout}"


def check_stats(name, s):
    """mean/median/p90/p99 inside [min, max] and ordered."""
    if s["count"] == 0:
        return
    assert s["min"] <= s["median"] <= s["p90"] <= s["p99"] <= s["max"], (name, s)
    assert s["min"] - 1e-12 <= s["mean"] <= s["max"] + 1e-12, (name, s)
    assert s["min"] >= 0, (name, s)


def check_run(rc, stdout, stderr, doc, num_requests, streaming=True, exact_input=True):
    """The checks every successful run must pass; returns (input tokens, output tokens, requests)
    that reached the server including warmup."""
    assert rc == 0, f"loadtest exited {rc}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    check_table(stdout)
    assert doc is not None, "no JSON written"
    m, reqs = doc["metrics"], doc["requests"]
    assert m["requests_completed"] == num_requests and m["requests_failed"] == 0, (m, stderr)
    assert len(reqs) == num_requests and all(r["ok"] for r in reqs), [r["error"] for r in reqs if not r["ok"]]
    assert m["errors"] == {}, m["errors"]
    assert f"{'Completed requests':<30}{num_requests}" in stdout, stdout
    assert doc["config"]["tokenize_used"] is True, doc["config"]

    for r in reqs:
        assert r["output_tokens_source"] == "usage", r
        assert r["output_tokens"] == r["requested_output_tokens"], r
        assert r["input_tokens_source"] == "usage", r
        if exact_input:
            assert r["expected_input_tokens_exact"], r
            assert r["input_tokens"] == r["requested_input_tokens"] == r["expected_input_tokens"], r
        assert r["e2e_s"] > 0 and r["start_s"] >= 0, r
        assert r["start_s"] + r["e2e_s"] <= m["duration_s"] + 1e-6, (r, m["duration_s"])
        if streaming:
            assert 0 < r["ttft_s"] <= r["e2e_s"], r
            assert len(r["itl_s"]) == r["num_chunks"] - 1 and all(x >= 0 for x in r["itl_s"]), r
            assert 1 <= r["num_chunks"] <= r["output_tokens"], r
            # Chunks with text: TTFT + the ITLs reach the last text chunk, at or before E2E.
            assert r["ttft_s"] + sum(r["itl_s"]) <= r["e2e_s"] + 1e-6, r
            if r["output_tokens"] > 1:
                assert close(r["tpot_s"], (r["e2e_s"] - r["ttft_s"]) / (r["output_tokens"] - 1)), r
        else:
            assert r["ttft_s"] is None and r["itl_s"] == [] and r["tpot_s"] is None, r

    total_in = sum(r["input_tokens"] for r in reqs)
    total_out = sum(r["output_tokens"] for r in reqs)
    assert m["total_input_tokens"] == total_in and m["total_output_tokens"] == total_out, m
    d = m["duration_s"]
    assert d > 0
    assert close(m["request_throughput"], num_requests / d), m
    assert close(m["input_token_throughput"], total_in / d), m
    assert close(m["output_token_throughput"], total_out / d), m
    assert close(m["total_token_throughput"], (total_in + total_out) / d), m
    for key in ("ttft_s", "tpot_s", "itl_s", "e2e_s"):
        check_stats(key, m[key])
    assert m["e2e_s"]["count"] == num_requests
    if streaming:
        assert m["ttft_s"]["count"] == num_requests
        assert m["itl_s"]["count"] == sum(len(r["itl_s"]) for r in reqs)
        assert close(m["ttft_s"]["mean"], sum(r["ttft_s"] for r in reqs) / num_requests)
    else:
        assert m["ttft_s"]["count"] == 0 and "n/a" in stdout
    assert close(m["e2e_s"]["mean"], sum(r["e2e_s"] for r in reqs) / num_requests)
    w = doc["warmup"]
    assert w["failed"] == 0, w
    return total_in + w["input_tokens"], total_out + w["output_tokens"], num_requests + w["completed"]


class MetricsDelta:
    """Checks that strata's /metrics counters moved by what the load test reported."""

    def __init__(self, server):
        self.server = server
        self.before = server.metrics()

    def check(self, input_tokens, output_tokens, requests):
        after = wait_for(lambda: (m := self.server.metrics()) and metric(m, "strata:num_requests_running") == 0
                         and metric(m, "strata:num_requests_waiting") == 0 and m, what="idle engine")

        def delta(name, **labels):
            return metric(after, name, **labels) - metric(self.before, name, **labels)

        assert delta("strata:generation_tokens_total") == output_tokens, (delta("strata:generation_tokens_total"),
                                                                           output_tokens)
        assert delta("strata:prompt_tokens_total") == input_tokens, (delta("strata:prompt_tokens_total"), input_tokens)
        assert delta("strata:request_success_total", finished_reason="length") == requests
        assert delta("strata:request_success_total") == requests
        assert delta("strata:e2e_request_latency_seconds_count") == requests


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    with Server("--max-num-seqs", "8") as server:
        status, tok = server.post_json("/tokenize", {"prompt": "x"})
        assert status == 200, tok
        max_model_len = tok["max_model_len"]
        url = server.url

        with step("fixed concurrency: 16 requests, concurrency 4, input 32, output 8, 2 warmup"):
            delta = MetricsDelta(server)
            rc, out, err, doc = loadtest("--base-url", url, "--num-requests", "16", "--concurrency", "4",
                                         "--input-len", "32", "--output-len", "8", "--warmup", "2", "--seed", "1")
            print(out, end="")
            totals = check_run(rc, out, err, doc, 16)
            assert doc["warmup"]["completed"] == 2 and doc["warmup"]["output_tokens"] == 16, doc["warmup"]
            assert all(r["input_tokens"] == 32 and r["output_tokens"] == 8 for r in doc["requests"])
            assert doc["config"]["model"] and doc["config"]["concurrency"] == 4
            assert doc["metrics"]["total_output_tokens"] == 16 * 8
            delta.check(*totals)

        # Chat prompts include the template (Qwen2's adds a default system prompt): 40..120 tokens.
        with step("Poisson arrivals at 25 req/s (max concurrency 3), chat, random lengths"):
            delta = MetricsDelta(server)
            rc, out, err, doc = loadtest("--base-url", url + "/v1", "--endpoint", "chat", "--num-requests", "12",
                                         "--request-rate", "25", "--max-concurrency", "3", "--input-len", "80",
                                         "--output-len", "6", "--range-ratio", "0.5", "--seed", "7")
            totals = check_run(rc, out, err, doc, 12)
            reqs = doc["requests"]
            assert len({r["input_tokens"] for r in reqs}) > 1, "range ratio drew one input length"
            assert all(40 <= r["input_tokens"] <= 120 and 3 <= r["output_tokens"] <= 9 for r in reqs), reqs
            scheduled = [r["scheduled_s"] for r in reqs]
            assert scheduled == sorted(scheduled) and scheduled[-1] > 0, scheduled
            assert all(r["start_s"] >= r["scheduled_s"] - 1e-6 for r in reqs)
            assert "Poisson 25 req/s" in out, out
            delta.check(*totals)

        with step("ShareGPT file: output length from the gpt reply; unusable and too-long entries skipped"):
            replies = ["Sure, here is a short answer.", "No.", "The capital of France is Paris, a city on the Seine.",
                       "Blocks of the KV cache are shared between requests with a common prefix."]
            data = [{"conversations": [{"from": "human", "value": f"Question number {i}: tell me something."},
                                       {"from": "gpt", "value": reply}]} for i, reply in enumerate(replies)]
            data.append({"conversations": [{"from": "human", "value": "only one turn"}]})
            data.append({"id": "no conversations"})
            data.append({"conversations": [{"from": "human", "value": "word " * (max_model_len + 10)},
                                           {"from": "gpt", "value": "too long"}]})
            path = os.path.join(work_dir(), f"sharegpt-{os.getpid()}.json")
            with open(path, "w") as f:
                json.dump(data, f)
            reply_lens = set()
            for reply in replies:
                status, t = server.post_json("/tokenize", {"prompt": reply, "add_special_tokens": False})
                reply_lens.add(t["count"])
            delta = MetricsDelta(server)
            rc, out, err, doc = loadtest("--base-url", url, "--dataset", path, "--num-requests", "8",
                                         "--concurrency", "3", "--seed", "3")
            totals = check_run(rc, out, err, doc, 8, exact_input=False)
            reqs = doc["requests"]
            assert {r["output_tokens"] for r in reqs} <= reply_lens, (reply_lens, reqs)
            assert len({r["output_tokens"] for r in reqs}) >= 2, reqs
            assert all(r["input_tokens"] == r["expected_input_tokens"] for r in reqs), reqs
            assert all(r["input_tokens"] + r["output_tokens"] <= max_model_len for r in reqs)
            assert "skipped 1 conversations" in err, err
            delta.check(*totals)

            rc, out, err, doc = loadtest("--base-url", url, "--dataset", path, "--num-requests", "3",
                                         "--output-len", "5", "--endpoint", "chat")
            check_run(rc, out, err, doc, 3, exact_input=False)
            assert all(r["output_tokens"] == 5 for r in doc["requests"])

        with step("--no-stream"):
            delta = MetricsDelta(server)
            rc, out, err, doc = loadtest("--base-url", url, "--no-stream", "--num-requests", "4", "--concurrency", "2",
                                         "--input-len", "16", "--output-len", "5")
            delta.check(*check_run(rc, out, err, doc, 4, streaming=False))

        with step("requests the server rejects are counted as failed, with the message"):
            rc, out, err, doc = loadtest("--base-url", url, "--num-requests", "5", "--concurrency", "2",
                                         "--input-len", "16", "--output-len", str(max_model_len + 1))
            assert rc == EXIT_FAILED_REQUESTS, (rc, out, err)
            check_table(out)
            m = doc["metrics"]
            assert m["requests_completed"] == 0 and m["requests_failed"] == 5, m
            assert len(doc["requests"]) == 5 and not any(r["ok"] for r in doc["requests"])
            [(message, count)] = m["errors"].items()
            assert count == 5 and message.startswith("HTTP 400") and "context length" in message, m["errors"]
            assert "context length" in out, out

        with step("bad datasets are clear errors"):
            missing = os.path.join(work_dir(), "no-such-dataset.json")
            rc, out, err, doc = loadtest("--base-url", url, "--dataset", missing)
            assert rc == EXIT_FATAL and "cannot read dataset" in err and doc is None, (rc, err)
            bad = os.path.join(work_dir(), f"bad-dataset-{os.getpid()}.json")
            with open(bad, "w") as f:
                f.write("[{\"conversations\": ")
            rc, out, err, doc = loadtest("--base-url", url, "--dataset", bad)
            assert rc == EXIT_FATAL and "not valid JSON" in err, (rc, err)
            with open(bad, "w") as f:
                json.dump([{"conversations": [{"from": "gpt", "value": "x"}]}], f)
            rc, out, err, doc = loadtest("--base-url", url, "--dataset", bad)
            assert rc == EXIT_FATAL and "no usable conversations" in err, (rc, err)

    with step("nothing listening: non-zero exit with a clear message"):
        port = free_port()
        rc, out, err, doc = loadtest("--base-url", f"http://127.0.0.1:{port}", "--num-requests", "2", timeout=60)
        assert rc == EXIT_FATAL, (rc, out, err)
        assert "connection refused" in err and str(port) in err, err
        assert "Traceback" not in err and doc is None and "strata load test" not in out, (out, err)
    print("PASS")


if __name__ == "__main__":
    main()
