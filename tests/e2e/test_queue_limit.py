#!/usr/bin/env python3
"""`--max-queue 4 --max-num-seqs 2` and 50 simultaneous requests (half streaming): a burst of
run slots plus queue places (6) is accepted whole, the excess get HTTP 429 (an OpenAI rate-limit
error, the same for streaming and non-streaming requests, with Retry-After) at once, every
accepted request completes in full, and no refusal is counted as a finished request."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from strata_e2e import Server, metric, read_sse, run_threads, step, wait_for  # noqa: E402

NUM_CLIENTS = 50


def finished(metrics, reason):
    try:
        return metric(metrics, "strata:request_success_total", finished_reason=reason)
    except KeyError:  # no request has ended that way yet
        return 0.0


def main():
    with Server("--max-queue", "4", "--max-num-seqs", "2") as server:
        status, tok = server.post_json("/tokenize", {"prompt": "x"})
        max_tokens = min(160, tok["max_model_len"] - 32)

        def client(i):
            body = {"prompt": f"Queue client {i}", "max_tokens": max_tokens, "ignore_eos": True, "temperature": 0}
            t0 = time.time()
            c = server.conn(timeout=120)
            try:
                if i % 2:
                    body["stream"] = True
                    body["stream_options"] = {"include_usage": True}
                c.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
                r = c.getresponse()
                headers = {k.lower(): v for k, v in r.getheaders()}
                headers["x-test-stream"] = "1" if i % 2 else "0"
                if r.status != 200:
                    return r.status, json.loads(r.read()), time.time() - t0, headers
                if i % 2:
                    events = read_sse(r)
                    assert events[-1] == "[DONE]", events[-2:]
                    return r.status, events[-2]["usage"], time.time() - t0, headers
                return r.status, json.loads(r.read())["usage"], time.time() - t0, headers
            finally:
                c.close()

        before = server.metrics()
        with step(f"{NUM_CLIENTS} simultaneous requests"):
            results = run_threads(NUM_CLIENTS, client)
        ok = [r for r in results if r[0] == 200]
        rejected = [r for r in results if r[0] == 429]
        print(f"   {len(ok)} completed, {len(rejected)} got 429")
        assert len(ok) + len(rejected) == NUM_CLIENTS, [r for r in results if r[0] not in (200, 429)][:3]
        assert len(rejected) >= NUM_CLIENTS - 2 * 6, "the queue limit did not bite"
        # Every accepted request holds its place until it ends: the 2 run slots and the 4 queue
        # places are all taken by the burst, whatever the engine's steps did meanwhile.
        assert len(ok) >= 6, "a burst of --max-num-seqs + --max-queue requests was not accepted whole"
        for _, usage, _, _ in ok:
            assert usage["completion_tokens"] == max_tokens, usage
        for _, err, elapsed, headers in rejected:
            e = err["error"]
            assert e["code"] == "rate_limit_exceeded" and e["type"] and "queue" in e["message"], e
            assert headers.get("retry-after") == "1", headers
            assert elapsed < 5.0, f"a 429 took {elapsed:.2f} s"
        streamed_429 = [r for r in rejected if r[3].get("x-test-stream") == "1"]
        plain_429 = [r for r in rejected if r[3].get("x-test-stream") != "1"]
        assert streamed_429 and plain_429, "expected 429s for both kinds"
        assert streamed_429[0][1]["error"]["code"] == plain_429[0][1]["error"]["code"]
        slowest_429 = max(r[2] for r in rejected)
        slowest_ok = max(r[2] for r in ok)
        print(f"   slowest 429 {slowest_429 * 1000:.0f} ms, slowest completion {slowest_ok * 1000:.0f} ms")

        with step("refusals are not counted as finished requests"):
            after = server.metrics()
            for reason in ("error", "abort"):
                delta = finished(after, reason) - finished(before, reason)
                assert delta == 0, f"{delta:.0f} requests counted as finished_reason={reason}"
            done = finished(after, "length") - finished(before, "length")
            assert done == len(ok), (done, len(ok))

        with step("nothing left behind"):
            # The engine refreshes its statistics just after it pushes the last outputs.
            wait_for(lambda: (m := server.metrics()) and metric(m, "strata:num_requests_running") == 0
                     and metric(m, "strata:num_requests_waiting") == 0, what="empty engine")
            status, r = server.post_json("/v1/completions", {"prompt": "after", "max_tokens": 2})
            assert status == 200, r
    print("PASS")


if __name__ == "__main__":
    main()
