#!/usr/bin/env python3
"""SIGTERM with requests in flight (`--shutdown-grace-s 1`): the listener stays open while the
server drains, /ready and new requests (on open keep-alive connections and on new ones) get 503
with Retry-After, a short request still finishes
normally, long streams end with an error event and [DONE], a long non-streaming request gets a
503 error, and the process exits 0 soon after the grace period.

Uses a tiny generated checkpoint with an 8192-token context so requests can outlast the grace
period on a small machine."""
import http.client
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from strata_e2e import Server, step, tiny_model, wait_for  # noqa: E402

GRACE_S = 1
LONG_TOKENS = 3000


def main():
    model = tiny_model("tiny_model_8k", "--max-position-embeddings", "8192")
    server = Server("--shutdown-grace-s", str(GRACE_S), "--kv-cache-mb", "64", model=model)
    try:
        results = {}
        progress = {}

        def long_stream(i):
            c = server.conn(timeout=60)
            c.request("POST", "/v1/completions", body=json.dumps(
                {"prompt": f"long {i}", "max_tokens": LONG_TOKENS, "ignore_eos": True, "stream": True}),
                headers={"Content-Type": "application/json"})
            r = c.getresponse()
            events = []
            buf = b""
            while True:
                chunk = r.read1(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n\n" in buf:
                    ev, buf = buf.split(b"\n\n", 1)
                    payload = ev[6:].decode()
                    events.append(payload if payload == "[DONE]" else json.loads(payload))
                    progress[i] = len(events)
            results[f"stream{i}"] = (r.status, events)

        def long_plain():
            results["plain"] = server.post_json("/v1/completions", {"prompt": "long plain", "max_tokens": LONG_TOKENS,
                                                                    "ignore_eos": True})

        def short():
            results["short"] = server.post_json("/v1/completions", {"prompt": "short", "max_tokens": 20,
                                                                    "ignore_eos": True})

        threads = [threading.Thread(target=long_stream, args=(i,)) for i in range(3)]
        threads.append(threading.Thread(target=long_plain))
        for t in threads:
            t.start()
        idle = server.conn(timeout=30)  # a keep-alive connection that stays open across the signal
        idle.request("GET", "/health")
        resp = idle.getresponse()
        resp.read()
        assert resp.status == 200
        wait_for(lambda: len(progress) == 3 and min(progress.values()) >= 3, timeout=30, what="streams under way")

        with step("SIGTERM with 4 long requests and a short one in flight"):
            short_thread = threading.Thread(target=short)
            short_thread.start()
            time.sleep(0.05)
            t_signal = time.time()
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)

            # Existing connection: 503 for /ready and for new work.
            idle.request("GET", "/ready")
            resp = idle.getresponse()
            body = json.loads(resp.read())
            assert resp.status == 503 and body["error"]["code"] == "service_unavailable", (resp.status, body)
            try:
                idle.request("POST", "/v1/completions", body=json.dumps({"prompt": "late", "max_tokens": 2}),
                             headers={"Content-Type": "application/json"})
                resp = idle.getresponse()
                body = resp.read()
                assert resp.status == 503, (resp.status, body)
            except (ConnectionError, http.client.HTTPException):
                pass  # the server may close the connection after the previous answer instead
            # New connections (a load balancer's probes): still accepted while draining; /ready
            # and new work answer 503 with Retry-After, and the connection is closed after.
            for path, body in (("/ready", None), ("/v1/completions", {"prompt": "late", "max_tokens": 2})):
                c = server.conn(timeout=5)
                if body is None:
                    c.request("GET", path)
                else:
                    c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
                resp = c.getresponse()
                got = json.loads(resp.read())
                c.close()
                assert resp.status == 503 and got["error"]["code"] == "service_unavailable", (path, resp.status, got)
                assert resp.getheader("Retry-After") == "1", (path, resp.getheaders())
                assert resp.getheader("Connection", "").lower() == "close", (path, resp.getheaders())

            rc = server.proc.wait(timeout=GRACE_S + 15)
            elapsed = time.time() - t_signal
            print(f"   exited with {rc} after {elapsed:.2f} s")
            assert rc == 0, rc
            assert elapsed < GRACE_S + 6, elapsed
            for t in threads + [short_thread]:
                t.join(timeout=10)

        with step("each request ended the right way"):
            status, body = results["short"]
            assert status == 200 and body["usage"]["completion_tokens"] == 20, (status, body)
            status, body = results["plain"]
            assert status == 503 and "shutting down" in body["error"]["message"], (status, body)
            for i in range(3):
                status, events = results[f"stream{i}"]
                assert status == 200
                assert events[-1] == "[DONE]", events[-2:]
                assert "error" in events[-2] and events[-2]["error"]["code"] == "service_unavailable", events[-2]
                generated = "".join(e["choices"][0]["text"] for e in events[:-2] if e.get("choices"))
                assert len(generated) > 0
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            sys.stderr.write(server.log_text()[-4000:])
    print("PASS")


if __name__ == "__main__":
    main()
