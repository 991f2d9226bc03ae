#!/usr/bin/env python3
"""Slow and surplus connections: 5,000 slowloris connections (a request header that never
completes) do not slow a normal client (p99 latency within 2x its baseline) and are cut at the
header-read deadline; beyond --max-connections a connection gets 503 with Retry-After, and a
slot frees when a connection closes."""
import json
import os
import resource
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from strata_e2e import Server, skip, step  # noqa: E402

NUM_SLOW = 5000
HEADER_TIMEOUT_S = 6
SAMPLES = 300


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            skip(f"open-file limit {hard} is below the {need} this test needs")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def latencies(server, n):
    """n sequential small completions, each on a new connection; sorted seconds."""
    body = json.dumps({"prompt": "hello", "max_tokens": 1})
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        c = server.conn(timeout=30)
        c.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        c.close()
        assert r.status == 200, r.status
        out.append(time.perf_counter() - t0)
    return sorted(out)


def p99(sorted_values):
    return sorted_values[min(len(sorted_values) - 1, int(0.99 * len(sorted_values)))]


def open_slow(port, n):
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slow: ")
        socks.append(s)
    return socks


def closed_by_server(sock):
    poller = select.poll()  # select() stops at descriptor 1023
    poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
    if not poller.poll(0):
        return False
    try:
        return sock.recv(4096) == b""
    except (ConnectionResetError, OSError):
        return True


def main():
    raise_fd_limit(NUM_SLOW + 1024)
    with Server("--header-read-timeout-s", str(HEADER_TIMEOUT_S), "--max-connections", str(NUM_SLOW + 500)) as server:
        latencies(server, 50)  # warm-up
        for attempt in range(3):
            with step(f"attempt {attempt + 1}: baseline, then {NUM_SLOW} slowloris connections"):
                base = latencies(server, SAMPLES)
                t_open = time.time()
                slow = open_slow(server.port, NUM_SLOW)
                opened_s = time.time() - t_open
                loaded = latencies(server, SAMPLES)
                measured_s = time.time() - t_open
                print(f"   opened {NUM_SLOW} in {opened_s:.1f} s; p99 {p99(base) * 1e3:.2f} ms baseline, "
                      f"{p99(loaded) * 1e3:.2f} ms with them open ({measured_s:.1f} s after opening)")
                assert measured_s < HEADER_TIMEOUT_S, "too slow to measure inside the header deadline"
                ok = p99(loaded) <= 2 * p99(base)
            with step("the slow connections are cut at the header deadline"):
                deadline = t_open + HEADER_TIMEOUT_S + 15
                remaining = list(slow)
                while remaining and time.time() < deadline:
                    remaining = [s for s in remaining if not closed_by_server(s)]
                    time.sleep(0.2)
                cut_after = time.time() - t_open
                for s in slow:
                    s.close()
                print(f"   all cut {cut_after:.1f} s after opening ({len(remaining)} left)")
                assert not remaining, f"{len(remaining)} slow connections outlived the header deadline"
                assert cut_after >= HEADER_TIMEOUT_S - 1, f"cut after {cut_after:.1f} s, before the deadline"
            if ok:
                break
        assert ok, f"p99 {p99(loaded) * 1e3:.2f} ms under slowloris vs {p99(base) * 1e3:.2f} ms baseline (3 attempts)"

    with Server("--max-connections", "20") as server:
        with step("--max-connections 20: the 21st connection gets 503 with Retry-After"):
            idle = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(20)]
            time.sleep(0.3)
            c = server.conn(timeout=10)
            c.request("GET", "/health")
            r = c.getresponse()
            body = json.loads(r.read())
            c.close()
            assert r.status == 503, r.status
            assert r.getheader("Retry-After") == "1", r.getheaders()
            assert body["error"]["code"] == "service_unavailable" and "--max-connections" in body["error"]["message"]
            for s in idle:
                s.close()
            time.sleep(0.5)
            assert server.request("GET", "/health")[0] == 200
    print("PASS")


if __name__ == "__main__":
    main()
