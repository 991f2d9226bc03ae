#!/usr/bin/env python3
"""Fuzz-style robustness: malformed JSON, wrong types, huge and negative numbers, invalid UTF-8,
oversized bodies and broken HTTP. Every reply to a broken request is a 4xx with an OpenAI error
body; a request that happens to be valid gets a 200; nothing gets a 5xx; the server stays up.
Random cases draw from a fresh seed each run (printed; STRATA_FUZZ_SEED replays one)."""
import json
import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from strata_e2e import Server, raw_exchange, run_threads, step  # noqa: E402

MAX_BODY = 1 << 20
NUM_RANDOM = 400


def parse_reply(raw):
    """(status, headers, body) of the first response in `raw`, or None if there is none."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return None
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    if not m:
        return None
    headers = dict((k.strip().lower(), v.strip()) for k, _, v in
                   (line.partition(b":") for line in head.split(b"\r\n")[1:]))
    n = int(headers.get(b"content-length", b"0"))
    return int(m.group(1)), headers, rest[:n]


def assert_error_reply(raw, what, allowed=range(400, 500)):
    r = parse_reply(raw)
    assert r is not None, f"{what}: no HTTP response: {raw[:200]!r}"
    status, _, body = r
    assert status in allowed, f"{what}: status {status}: {body[:300]!r}"
    j = json.loads(body)
    e = j["error"]
    assert isinstance(e["message"], str) and e["message"] and "type" in e and "param" in e and "code" in e, j
    return status


def post(port, path, body, extra_headers=b"", content_length=None):
    if isinstance(body, str):
        body = body.encode()
    n = len(body) if content_length is None else content_length
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode() + extra_headers +
            f"Content-Length: {n}\r\nConnection: close\r\n\r\n".encode() + body)


MALFORMED_BODIES = [
    b"", b"{", b"}", b"[", b"nul", b"null", b"true", b"0", b"-1", b'"x"', b"[]", b"{}", b'{"prompt": }',
    b'{"prompt": "x",}', b"{'prompt': 'x'}", b'{"prompt": "x"} trailing', b'{"prompt": "\\x41"}',
    b'{"prompt": "\xff\xfe"}', b'{"prompt": "\xc3\x28"}', b'{"prompt": "\xed\xa0\x80"}', b'{"prompt": NaN}',
    b'{"prompt": "x", "max_tokens": Infinity}', b"\x00\x01\x02", b'{"prompt":"x"\x00}',
    b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000, b'{"prompt": "' + b"\\u" + b'"}',
    b'{"messages": "hi"}', b'{"messages": [{"role": "user"}]}', b'{"messages": [{"content": "x"}]}',
    b'{"messages": [{"role": 5, "content": "x"}]}', b'{"messages": [{"role": "user", "content": 5}]}',
    b'{"messages": [{"role": "user", "content": [{"type": "text"}]}]}', b'{"messages": [null]}',
]

FIELDS = ["prompt", "max_tokens", "temperature", "top_p", "top_k", "min_p", "n", "stop", "seed", "stream",
          "stream_options", "logprobs", "echo", "presence_penalty", "frequency_penalty", "repetition_penalty",
          "logit_bias", "user", "ignore_eos", "min_tokens", "stop_token_ids", "model", "best_of", "suffix",
          "max_completion_tokens", "top_logprobs", "messages", "response_format", "add_special_tokens"]


def random_value(rng, depth=0):
    choices = [
        lambda: None, lambda: rng.choice([True, False]), lambda: rng.randint(-3, 3),
        lambda: rng.choice([-2**63, 2**63, 2**64 + 5, 10**30, -10**30, 2**31, -2**31 - 1]),
        lambda: rng.uniform(-5, 5), lambda: rng.choice([1e308, -1e308, 1e-320, 0.5]),
        lambda: "".join(rng.choice("ab \n\u00e9\u4e2d\U0001f600\\\"") for _ in range(rng.randint(0, 8))),
        lambda: rng.choice(["", "x" * 1000, "<|im_end|>", "</s>"]),
    ]
    if depth < 2:
        choices += [lambda: [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))],
                    lambda: {rng.choice(["a", "1", "-1", "99999999999", "include_usage", "type"]):
                             random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}]
    return rng.choice(choices)()


def random_request(rng):
    chat = rng.random() < 0.4
    body = {}
    if rng.random() < 0.8:
        if chat:
            body["messages"] = [{"role": rng.choice(["user", "system", "assistant", "bogus"]),
                                 "content": rng.choice(["hi", "", ["x"], [{"type": "text", "text": "t"}], None, 5])}]
        else:
            body["prompt"] = rng.choice(["hello", "", ["a", "b"], [1, 2, 3], [[1], [2, 3]], [[]], [-1], 7, None])
    for f in rng.sample(FIELDS, rng.randint(0, 6)):
        body[f] = random_value(rng)
    # Keep valid requests short: the point is robustness, not generation.
    if rng.random() < 0.7:
        body["max_tokens"] = rng.choice([1, 2, 3])
    if isinstance(body.get("n"), int) and not isinstance(body.get("n"), bool) and body["n"] > 4:
        body["n"] = 4
    return ("/v1/chat/completions" if chat else "/v1/completions"), body


def main():
    seed = int(os.environ.get("STRATA_FUZZ_SEED", random.SystemRandom().randrange(1 << 30)))
    print(f"fuzz seed {seed} (STRATA_FUZZ_SEED={seed} replays it)", flush=True)
    rng = random.Random(seed)
    with Server("--max-body-bytes", str(MAX_BODY)) as server:
        port = server.port
        with step("malformed bodies"):
            for path in ("/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize"):
                for body in MALFORMED_BODIES:
                    assert_error_reply(raw_exchange(port, post(port, path, body)), f"{path} {body[:40]!r}",
                                       allowed=[400, 404])

        with step("oversized bodies"):
            big = b'{"prompt": "' + b"a" * (MAX_BODY + 10) + b'"}'
            assert assert_error_reply(raw_exchange(port, post(port, "/v1/completions", big)), "big body") == 413
            # Declared length over the limit, body never sent.
            assert assert_error_reply(raw_exchange(port, post(port, "/v1/completions", b"", content_length=MAX_BODY * 10)),
                                      "declared big body") == 413
            # Chunked body that grows past the limit.
            chunk = b"a" * 65536
            chunked = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                       (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * (MAX_BODY // len(chunk) + 2) + b"0\r\n\r\n")
            assert assert_error_reply(raw_exchange(port, chunked), "chunked big body") == 413

        with step("broken HTTP"):
            cases = [
                b"GARBAGE\r\n\r\n",
                b"GET / HTTP/9.9\r\n\r\n",
                b"GET\r\n\r\n",
                b"GET /health HTTP/1.1\r\nBad Header Without Colon\r\n\r\n",
                b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"h" * 40000 + b"\r\n\r\n",
                b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
                b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                b"G\x00T / HTTP/1.1\r\n\r\n",
                b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"BREW /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"DELETE /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"GET /v1/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
                b"Connection: close\r\n\r\nhello",
            ]
            for raw in cases:
                assert_error_reply(raw_exchange(port, raw), repr(raw[:50]))

        with step(f"{NUM_RANDOM} random requests (8 clients at a time)"):
            requests = [random_request(rng) for _ in range(NUM_RANDOM)]

            def client(t):
                statuses = []
                for k in range(t, NUM_RANDOM, 8):
                    path, body = requests[k]
                    raw = raw_exchange(port, post(port, path, json.dumps(body)))
                    r = parse_reply(raw)
                    assert r is not None, f"no reply to {body}"
                    status = r[0]
                    if status == 200:
                        if not body.get("stream") is True:
                            assert "choices" in json.loads(r[2]), (body, r[2][:200])
                    else:
                        assert_error_reply(raw, f"{path} {json.dumps(body)[:300]}")
                    statuses.append(status)
                return statuses
            statuses = [s for ss in run_threads(8, client) for s in ss]
            counts = {s: statuses.count(s) for s in sorted(set(statuses))}
            print(f"   statuses {counts}")

        with step("still up"):
            status, _, _ = server.request("GET", "/health")
            assert status == 200
            status, r = server.post_json("/v1/completions", {"prompt": "ok?", "max_tokens": 2})
            assert status == 200, r
    print("PASS")


if __name__ == "__main__":
    main()
