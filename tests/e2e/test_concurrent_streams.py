#!/usr/bin/env python3
"""200 concurrent streaming clients (completions and chat, with usage chunks) against one
`strata serve`: every stream ends with [DONE], and /metrics' counters move by exactly what the
clients saw (requests by finish reason, prompt and generation tokens, latency histogram counts)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from strata_e2e import Server, metric, run_threads, step, wait_for  # noqa: E402

NUM_CLIENTS = 200


def client(server, i):
    chat = i % 2 == 1
    body = {"max_tokens": 8 + i % 9, "temperature": 0.8, "seed": i, "stream": True,
            "stream_options": {"include_usage": True}, "ignore_eos": i % 3 == 0}
    if chat:
        body["messages"] = [{"role": "user", "content": f"Client {i} says hello."}]
        path = "/v1/chat/completions"
    else:
        body["prompt"] = f"Client number {i} writes:"
        path = "/v1/completions"
    status, events = server.stream(path, body)
    assert status == 200, (status, events)
    assert events and events[-1] == "[DONE]", f"client {i}: stream did not end with [DONE]: {events[-3:]}"
    chunks = events[:-1]
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == [] and usage["completion_tokens"] >= 1, chunks[-1]
    finals = [c["choices"][0]["finish_reason"] for c in chunks[:-1] if c["choices"][0]["finish_reason"]]
    assert len(finals) == 1 and finals[0] in ("stop", "length"), finals
    assert chunks[-2]["choices"][0]["finish_reason"] == finals[0]
    if finals[0] == "length":
        assert usage["completion_tokens"] == body["max_tokens"], (usage, body)
    if chat:
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    return usage["prompt_tokens"], usage["completion_tokens"], finals[0]


def main():
    with Server("--max-num-seqs", "256") as server:
        before = server.metrics()
        with step(f"{NUM_CLIENTS} concurrent streams"):
            results = run_threads(NUM_CLIENTS, lambda i: client(server, i))
        prompt_tokens = sum(r[0] for r in results)
        generation_tokens = sum(r[1] for r in results)
        by_reason = {r: sum(1 for x in results if x[2] == r) for r in ("stop", "length")}
        print(f"   prompt tokens {prompt_tokens}, generated {generation_tokens}, finish reasons {by_reason}")

        with step("metrics match what the clients saw"):
            after = wait_for(lambda: (m := server.metrics()) and
                             metric(m, "strata:num_requests_running") == 0 and m, what="idle engine")

            def delta(name, **labels):
                return metric(after, name, **labels) - metric(before, name, **labels)

            for reason, count in by_reason.items():
                assert delta("strata:request_success_total", finished_reason=reason) == count, reason
            assert delta("strata:request_success_total", finished_reason="abort") == 0
            assert delta("strata:request_success_total", finished_reason="error") == 0
            assert delta("strata:prompt_tokens_total") == prompt_tokens
            assert delta("strata:generation_tokens_total") == generation_tokens
            assert delta("strata:time_to_first_token_seconds_count") == NUM_CLIENTS
            assert delta("strata:e2e_request_latency_seconds_count") == NUM_CLIENTS
            assert delta("strata:request_queue_time_seconds_count") == NUM_CLIENTS
            assert delta("strata:inter_token_latency_seconds_count") == generation_tokens - NUM_CLIENTS
            assert metric(after, "strata:num_requests_waiting") == 0
            assert metric(after, "strata:kv_cache_blocks_used") == 0
    print("PASS")


if __name__ == "__main__":
    main()
