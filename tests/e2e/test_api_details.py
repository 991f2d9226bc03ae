#!/usr/bin/env python3
"""API details a browser or an SDK relies on, on the embedded default model (SentencePiece):
CORS (preflight answered before auth, Access-Control-Allow-Origin per --allowed-origins),
X-Request-Id on every response (the client's echoed), percent-decoded model ids
(`models.retrieve("org/name")`), logprob tokens that concatenate to the generated text with
their leading spaces, and vLLM extras this server does not compute refused, not ignored."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from strata_e2e import Server, skip, source_dir, step  # noqa: E402

NAME = "org/default-model"


def main():
    model = os.path.join(source_dir(), "models", "default")
    if not os.path.isfile(os.path.join(model, "config.json")):
        skip("no models/default")
    with Server("--served-model-name", NAME, "--api-key", "k", model=model) as s:
        auth = {"Authorization": "Bearer k"}
        with step("CORS preflight: 204 with the allowed methods and headers, no key needed"):
            status, h, body = s.request("OPTIONS", "/v1/chat/completions", headers={
                "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type"})
            assert status == 204, (status, body)
            assert h["access-control-allow-origin"] == "*", h
            assert "POST" in h["access-control-allow-methods"], h
            assert h["access-control-allow-headers"] == "authorization, content-type", h
        with step("every response: X-Request-Id (the client's echoed) and, with an Origin, CORS"):
            status, h, _ = s.request("GET", "/health", headers={"Origin": "https://app.example"})
            assert status == 200 and h.get("x-request-id", "").startswith("req-"), h
            assert h["access-control-allow-origin"] == "*", h
            status, h, _ = s.request("GET", "/v1/models", headers={**auth, "X-Request-Id": "client-42"})
            assert status == 200 and h["x-request-id"] == "client-42", h
            assert "access-control-allow-origin" not in h, "CORS headers without an Origin"
            status, h, _ = s.request("POST", "/v1/completions", {"prompt": "x", "max_tokens": 1, "stream": True},
                                     headers={**auth, "Origin": "https://app.example"})
            assert status == 200 and h["access-control-allow-origin"] == "*" and "x-request-id" in h, h
            status, h, _ = s.request("GET", "/v1/models")  # 401: still carries the id
            assert status == 401 and "x-request-id" in h, (status, h)
        with step("model ids with '/' percent-decoded"):
            status, body = s.get_json("/v1/models/org%2Fdefault-model", auth)
            assert status == 200 and body["id"] == NAME, (status, body)
            status, body = s.get_json("/v1/models/org%2Fother", auth)
            assert status == 404 and "org/other" in body["error"]["message"], body
            status, body = s.get_json("/v1/models/bad%zz", auth)
            assert status == 400, (status, body)
        with step("logprob tokens concatenate to the text, leading spaces kept"):
            status, r = s.post_json("/v1/completions", {"prompt": "Once upon a time, there was a little",
                                                        "max_tokens": 16, "temperature": 0, "logprobs": 2}, auth)
            assert status == 200, r
            choice = r["choices"][0]
            tokens = choice["logprobs"]["tokens"]
            assert "".join(tokens) == choice["text"], (tokens, choice["text"])
            assert any(t.startswith(" ") for t in tokens), tokens
            status, r = s.post_json("/v1/chat/completions", {
                "messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 16, "temperature": 0,
                "logprobs": True, "top_logprobs": 3}, auth)
            assert status == 200, r
            content = r["choices"][0]["logprobs"]["content"]
            text = r["choices"][0]["message"]["content"]
            assert "".join(e["token"] for e in content) == text, (content, text)
            assert b"".join(bytes(e["bytes"]) for e in content).decode() == text
            for e in content:
                alts = [a["token"] for a in e["top_logprobs"]]
                assert len(alts) == len(set(alts)) == 3, alts
        with step("tool_choice: needs tools; 'required' and named functions refused until they are enforced"):
            msgs = [{"role": "user", "content": "weather?"}]
            tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
            for body, fragment in (({"tool_choice": "auto"}, "needs tools"),
                                   ({"tools": tools, "tool_choice": "required"}, "'required' is not supported"),
                                   ({"tools": tools, "tool_choice": {"type": "function",
                                                                     "function": {"name": "get_weather"}}},
                                    "naming a function"),
                                   ({"tools": tools, "tool_choice": 7}, "must be")):
                status, r = s.post_json("/v1/chat/completions", {"messages": msgs, "max_tokens": 2, **body}, auth)
                assert status == 400 and r["error"]["param"] == "tool_choice" and fragment in r["error"]["message"], \
                    (body, status, r)
            status, r = s.post_json("/v1/chat/completions", {"messages": msgs, "max_tokens": 2, "tools": tools,
                                                             "tool_choice": "auto"}, auth)
            assert status == 200, r
        with step("extras not computed here are refused, not ignored"):
            for field, value in (("prompt_logprobs", 1), ("return_tokens_as_token_ids", True)):
                status, r = s.post_json("/v1/completions", {"prompt": "x", "max_tokens": 1, field: value}, auth)
                assert status == 400 and r["error"]["param"] == field, (field, status, r)

    with Server("--allowed-origins", "https://a.example, http://localhost:3000", model=model) as s:
        with step("--allowed-origins: listed origins echoed (Vary: Origin), others get no CORS headers"):
            status, h, _ = s.request("GET", "/health", headers={"Origin": "https://a.example"})
            assert h.get("access-control-allow-origin") == "https://a.example" and h.get("vary") == "Origin", h
            status, h, _ = s.request("GET", "/health", headers={"Origin": "https://evil.example"})
            assert status == 200 and "access-control-allow-origin" not in h, h
            status, h, _ = s.request("OPTIONS", "/v1/completions", headers={
                "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
            assert status == 204 and "access-control-allow-methods" not in h, h
    print("PASS")


if __name__ == "__main__":
    main()
