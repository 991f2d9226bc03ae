#!/usr/bin/env python3
"""200 streaming clients that hang up mid-stream (half with FIN, half with RST) and 20
non-streaming clients that hang up while waiting: the server cancels their engine requests, so
/metrics soon shows nothing running or waiting and every KV block free (or cached), and the
server keeps serving.

A waiting client hangs up only once the server has accepted all 220 requests (the queue-time
histogram counts a request when the engine takes it): a client that resets its connection before
the server has read its request leaves nothing to cancel, and CI once lost one that way
(aborted 219 of 220)."""
import json
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from strata_e2e import Server, metric, run_threads, step, wait_for  # noqa: E402

NUM_STREAMING = 200
NUM_WAITING = 20


def http_request(port, path, body):
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data


def hang_up(sock, reset):
    if reset:  # SO_LINGER 0: close() sends RST
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def streaming_client(port, i, max_tokens):
    chat = i % 2 == 0
    body = {"max_tokens": max_tokens, "ignore_eos": True, "stream": True, "temperature": 1.0, "seed": i}
    if chat:
        body["messages"] = [{"role": "user", "content": f"Tell me a long story, {i}."}]
        req = http_request(port, "/v1/chat/completions", body)
    else:
        body["prompt"] = f"A long story number {i}:"
        req = http_request(port, "/v1/completions", body)
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(req)
    got = b""
    # Wait for the headers and two data events: generation is under way.
    while got.count(b"data: ") < 2:
        chunk = s.recv(4096)
        assert chunk, f"client {i}: server closed early: {got[:300]!r}"
        got += chunk
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    assert b"[DONE]" not in got, f"client {i}: finished before hanging up; raise max_tokens"
    hang_up(s, reset=i % 4 >= 2)
    return True


def waiting_client(port, i, max_tokens, all_accepted):
    body = {"prompt": f"Waiting client {i}", "max_tokens": max_tokens, "ignore_eos": True}
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(http_request(port, "/v1/completions", body))
    assert all_accepted.wait(timeout=30), f"waiting client {i}: the server did not accept every request"
    hang_up(s, reset=i % 2 == 0)
    return True


def main():
    with Server("--max-num-seqs", "256") as server:
        # Long enough that nobody finishes before hanging up: most of the context window.
        status, tok = server.post_json("/tokenize", {"prompt": "x"})
        max_model_len = tok["max_model_len"]
        max_tokens = max_model_len - 64
        before = server.metrics()

        with step(f"{NUM_STREAMING} streaming + {NUM_WAITING} waiting clients hang up"):
            all_accepted = threading.Event()

            def watch_accepted():
                def accepted():
                    m = server.metrics()
                    return (metric(m, "strata:request_queue_time_seconds_count")
                            - metric(before, "strata:request_queue_time_seconds_count")) >= NUM_STREAMING + NUM_WAITING
                try:
                    wait_for(accepted, timeout=30, what="every request accepted")
                    all_accepted.set()
                except AssertionError as e:
                    print(f"   {e}")
            watcher = threading.Thread(target=watch_accepted, daemon=True)
            watcher.start()

            def client(i):
                if i < NUM_STREAMING:
                    return streaming_client(server.port, i, max_tokens)
                return waiting_client(server.port, i, max_tokens, all_accepted)
            run_threads(NUM_STREAMING + NUM_WAITING, client)
            hung_up = time.time()
            watcher.join()

        with step("the engine drops every request and frees its blocks"):
            def idle():
                m = server.metrics()
                ok = (metric(m, "strata:num_requests_running") == 0 and metric(m, "strata:num_requests_waiting") == 0
                      and metric(m, "strata:kv_cache_blocks_used") == 0)
                return m if ok else None
            after = wait_for(idle, timeout=20, what="0 running, 0 waiting, 0 KV blocks used")
            print(f"   idle {time.time() - hung_up:.2f} s after the last hang-up")
            total = metric(after, "strata:kv_cache_blocks_total")
            assert metric(after, "strata:kv_cache_blocks_free") == total

            def delta(reason):
                return (metric(after, "strata:request_success_total", finished_reason=reason)
                        - metric(before, "strata:request_success_total", finished_reason=reason))
            # The front end counts an ending when it drains the engine's final output on the
            # connection's strand, which may trail the engine's own idle figures (seen under TSan).
            deadline = time.time() + 10
            while delta("abort") + delta("length") + delta("stop") < NUM_STREAMING + NUM_WAITING \
                    and time.time() < deadline:
                time.sleep(0.05)
                after = server.metrics()
            aborted, finished = delta("abort"), delta("length") + delta("stop")
            print(f"   aborted {aborted:.0f}, finished {finished:.0f}")
            assert aborted + finished == NUM_STREAMING + NUM_WAITING, (aborted, finished)
            assert aborted >= NUM_STREAMING, aborted
            assert delta("error") == 0

        with step("the server still serves"):
            status, r = server.post_json("/v1/completions", {"prompt": "still there?", "max_tokens": 3})
            assert status == 200 and r["usage"]["completion_tokens"] >= 1, (status, r)
            status, _, _ = server.request("GET", "/health")
            assert status == 200
    print("PASS")


if __name__ == "__main__":
    main()
