#!/usr/bin/env python3
"""The gRPC API of `strata serve` through a real gRPC client: Python stubs generated at test time
from proto/strata.proto (and the standard proto/health.proto) by protoc and grpc_python_plugin.

Checks that Generate streams tokens and ends with finish_reason and usage that match what was
streamed; that greedy output, stop strings, logprobs and Tokenize agree with the HTTP API; that
ListModels and health work; that bad requests get INVALID_ARGUMENT / NOT_FOUND naming the field;
that cancelled calls, passed deadlines and a full queue leave nothing running and every KV block
free; and that --api-key guards the strata.v1 methods but not health."""
import atexit
import importlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from strata_e2e import (Server, metric, model_dir, skip, source_dir, step, strata_bin, tiny_model,  # noqa: E402
                        wait_for, work_dir)

try:
    import grpc
except ImportError:
    skip("python3 has no grpc module (Debian: python3-grpcio)")

LONG_TOKENS = 8000  # seconds of generation on the 8192-token tiny checkpoint
KEY = "grpc-secret"


def load_stubs():
    """Generates and imports strata_pb2(_grpc) and health_pb2(_grpc) into a scratch folder."""
    protoc, plugin = shutil.which("protoc"), shutil.which("grpc_python_plugin")
    if not protoc or not plugin:
        skip("protoc or grpc_python_plugin missing (Debian: protobuf-compiler, protobuf-compiler-grpc)")
    proto_dir = os.path.join(source_dir(), "proto")
    out = tempfile.mkdtemp(prefix="grpc_stubs_", dir=work_dir())
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    subprocess.run([protoc, "-I", proto_dir, f"--python_out={out}", f"--grpc_python_out={out}",
                    f"--plugin=protoc-gen-grpc_python={plugin}", "strata.proto", "health.proto"], check=True)
    sys.path.insert(0, out)
    return tuple(importlib.import_module(m) for m in ("strata_pb2", "strata_pb2_grpc", "health_pb2", "health_pb2_grpc"))


pb, pb_grpc, health_pb, health_grpc = load_stubs()


def expect_error(fn, code, needle):
    """Runs fn() (which must raise grpc.RpcError with `code` and `needle` in its details)."""
    try:
        result = fn()
    except grpc.RpcError as e:
        assert e.code() == code, (e.code(), e.details(), code)
        assert needle in e.details(), (needle, e.details())
        return e.details()
    raise AssertionError(f"expected {code} ({needle}), got {result!r}")


def generate(stub, metadata=None, timeout=60, **fields):
    """All responses of one Generate call, checked for the stream's invariants."""
    responses = list(stub.Generate(pb.GenerateRequest(**fields), metadata=metadata, timeout=timeout))
    assert responses, "no responses"
    final = responses[-1]
    assert final.finish_reason in ("stop", "length"), final
    for r in responses[:-1]:
        assert not r.finish_reason and not r.HasField("usage"), r
    num_tokens = sum(len(r.token_ids) for r in responses)
    assert final.usage.completion_tokens == num_tokens, (final.usage, num_tokens)
    return responses


def text_of(responses):
    return "".join(r.text for r in responses)


def check_basics(server, stub, health):
    name = os.path.basename(os.path.normpath(server.model))
    with step("health: SERVING overall and for strata.v1.Strata"):
        for service in ("", "strata.v1.Strata"):
            r = health.Check(health_pb.HealthCheckRequest(service=service), timeout=10)
            assert r.status == health_pb.HealthCheckResponse.SERVING, r

    with step("ListModels lists the served name, as /v1/models"):
        models = stub.ListModels(pb.ListModelsRequest(), timeout=10).models
        status, body = server.get_json("/v1/models")
        assert status == 200
        assert [m.id for m in models] == [name] == [m["id"] for m in body["data"]], (models, body)
        assert models[0].max_model_len == body["data"][0]["max_model_len"]

    with step("Tokenize matches /tokenize and /detokenize"):
        for text in ["Hello, world! The quick brown fox.", "", "naïve café 東京 🙂"]:
            r = stub.Tokenize(pb.TokenizeRequest(text=text, return_token_strs=True), timeout=10)
            status, body = server.post_json("/tokenize", {"prompt": text, "return_token_strs": True})
            assert status == 200, body
            assert list(r.token_ids) == body["tokens"] and r.count == body["count"], (r, body)
            assert list(r.token_strs) == body["token_strs"] and r.max_model_len == body["max_model_len"]
            r2 = stub.Tokenize(pb.TokenizeRequest(text=text, add_special_tokens=False), timeout=10)
            _, body2 = server.post_json("/tokenize", {"prompt": text, "add_special_tokens": False})
            assert list(r2.token_ids) == body2["tokens"]
            if body["tokens"]:
                r3 = stub.Tokenize(pb.TokenizeRequest(detokenize_ids=body["tokens"]), timeout=10)
                _, body3 = server.post_json("/detokenize", {"tokens": body["tokens"]})
                assert r3.detokenized_text == body3["prompt"], (r3.detokenized_text, body3)
        expect_error(lambda: stub.Tokenize(pb.TokenizeRequest(detokenize_ids=[-5]), timeout=10),
                     grpc.StatusCode.INVALID_ARGUMENT, "detokenize_ids")
        return body["max_model_len"]


def check_generate(server, stub, max_model_len):
    prompt = "The capital of France is"
    with step("Generate streams tokens; greedy output equals /v1/completions"):
        responses = generate(stub, text=prompt, max_tokens=24, temperature=0.0)
        status, http = server.post_json("/v1/completions", {"prompt": prompt, "max_tokens": 24, "temperature": 0})
        assert status == 200, http
        final = responses[-1]
        print(f"   {len(responses)} messages, {final.usage.completion_tokens} tokens, {final.finish_reason}: "
              f"{text_of(responses)!r}")
        assert final.usage.completion_tokens >= 2 and len(responses) >= 2, responses
        assert text_of(responses) == http["choices"][0]["text"], (text_of(responses), http)
        assert final.finish_reason == http["choices"][0]["finish_reason"]
        assert final.usage.prompt_tokens == http["usage"]["prompt_tokens"]
        assert final.usage.completion_tokens == http["usage"]["completion_tokens"]
        ids = [t for r in responses for t in r.token_ids]

    with step("token-id prompt and seeded sampling agree with HTTP"):
        prompt_ids = server.post_json("/tokenize", {"prompt": prompt})[1]["tokens"]
        by_ids = generate(stub, token_ids=pb.TokenIds(ids=prompt_ids), max_tokens=24, temperature=0.0)
        assert [t for r in by_ids for t in r.token_ids] == ids
        sampled = generate(stub, text=prompt, max_tokens=16, temperature=0.9, top_p=0.9, top_k=40, seed=1234,
                           ignore_eos=True, repetition_penalty=1.1)
        _, http = server.post_json("/v1/completions", {"prompt": prompt, "max_tokens": 16, "temperature": 0.9,
                                                       "top_p": 0.9, "top_k": 40, "seed": 1234, "ignore_eos": True,
                                                       "repetition_penalty": 1.1})
        assert text_of(sampled) == http["choices"][0]["text"], (text_of(sampled), http)
        assert sampled[-1].finish_reason == "length" and sampled[-1].usage.completion_tokens == 16

    with step("stop strings cut the text as on HTTP"):
        long = generate(stub, text=prompt, max_tokens=40, temperature=0.0, ignore_eos=True)
        text = text_of(long)
        stop = text[len(text) // 2:len(text) // 2 + 3]
        assert stop.strip(), f"no usable stop string in {text!r}"
        stopped = generate(stub, text=prompt, max_tokens=40, temperature=0.0, ignore_eos=True, stop=[stop])
        _, http = server.post_json("/v1/completions", {"prompt": prompt, "max_tokens": 40, "temperature": 0,
                                                       "ignore_eos": True, "stop": [stop]})
        assert text_of(stopped) == http["choices"][0]["text"] == text[:text.index(stop)], (stopped, http, stop)
        assert stopped[-1].finish_reason == "stop" == http["choices"][0]["finish_reason"]
        assert stopped[-1].usage.completion_tokens == http["usage"]["completion_tokens"]

    with step("logprobs: one entry per token with top alternatives, as on HTTP"):
        lp = generate(stub, text=prompt, max_tokens=8, temperature=0.0, logprobs=3, ignore_eos=True)
        _, http = server.post_json("/v1/completions", {"prompt": prompt, "max_tokens": 8, "temperature": 0,
                                                       "logprobs": 3, "ignore_eos": True})
        entries = [e for r in lp for e in r.logprobs]
        assert [e.token_id for e in entries] == [t for r in lp for t in r.token_ids]
        http_lp = http["choices"][0]["logprobs"]
        assert [e.token for e in entries] == http_lp["tokens"]
        for e, want, top in zip(entries, http_lp["token_logprobs"], http_lp["top_logprobs"]):
            assert len(e.top_logprobs) == 3 and math.isclose(e.logprob, want, abs_tol=1e-4), (e, want)
            assert e.top_logprobs[0].logprob >= e.top_logprobs[-1].logprob
            for alt in e.top_logprobs:
                assert alt.token in top and math.isclose(alt.logprob, top[alt.token], abs_tol=1e-4), (alt, top)

    with step("invalid arguments name their field"):
        INVALID = grpc.StatusCode.INVALID_ARGUMENT
        cases = [
            (dict(text=prompt, max_tokens=-1), INVALID, "max_tokens"),
            (dict(text=prompt, max_tokens=0), INVALID, "max_tokens"),
            (dict(text=prompt, temperature=-1.0), INVALID, "temperature"),
            (dict(text=prompt, temperature=float("nan")), INVALID, "temperature"),
            (dict(text=prompt, top_p=1.5), INVALID, "top_p"),
            (dict(text=prompt, top_k=-2), INVALID, "top_k"),
            (dict(text=prompt, logprobs=50), INVALID, "logprobs"),
            (dict(text=prompt, max_tokens=max_model_len), INVALID, "max_tokens"),
            (dict(token_ids=pb.TokenIds(ids=[5] * max_model_len), max_tokens=1), INVALID, "prompt"),
            (dict(token_ids=pb.TokenIds(ids=[])), INVALID, "prompt"),
            (dict(max_tokens=4), INVALID, "prompt"),
            (dict(text=prompt, model="no-such-model"), grpc.StatusCode.NOT_FOUND, "no-such-model"),
        ]
        for fields, code, needle in cases:
            details = expect_error(lambda: generate(stub, **fields), code, needle)
            print(f"   {code.name}: {details[:100]}")
        expect_error(lambda: stub.Tokenize(pb.TokenizeRequest(text="x", model="other"), timeout=10),
                     grpc.StatusCode.NOT_FOUND, "model")
        # Long generations with a named model still work.
        name = os.path.basename(os.path.normpath(server.model))
        assert generate(stub, text=prompt, max_tokens=2, model=name)[-1].usage.completion_tokens == 2


class LongCall:
    """A long Generate call read on its own thread: records responses and how it ended."""

    def __init__(self, stub, i, metadata, timeout=60):
        self.call = stub.Generate(pb.GenerateRequest(text=f"long story {i}", max_tokens=LONG_TOKENS, ignore_eos=True,
                                                     temperature=1.0, seed=i), metadata=metadata, timeout=timeout)
        self.responses = []
        self.code = None
        self.thread = threading.Thread(target=self._read)
        self.thread.start()

    def _read(self):
        try:
            for r in self.call:
                self.responses.append(r)
            self.code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            self.code = e.code()

    def join(self):
        self.thread.join(30)
        assert not self.thread.is_alive(), "call did not end"
        return self.code


def check_auth_cancel_and_queue(server):
    auth = [("authorization", f"Bearer {KEY}")]
    channel = grpc.insecure_channel(server.grpc_target)
    stub = pb_grpc.StrataStub(channel)
    health = health_grpc.HealthStub(channel)

    with step("--api-key: strata.v1 needs the key; health does not"):
        for metadata in (None, [("authorization", "Bearer wrong")], [("authorization", KEY)]):
            expect_error(lambda: generate(stub, metadata=metadata, text="hi", max_tokens=2),
                         grpc.StatusCode.UNAUTHENTICATED, "API key")
            expect_error(lambda: stub.Tokenize(pb.TokenizeRequest(text="hi"), metadata=metadata, timeout=10),
                         grpc.StatusCode.UNAUTHENTICATED, "API key")
            expect_error(lambda: stub.ListModels(pb.ListModelsRequest(), metadata=metadata, timeout=10),
                         grpc.StatusCode.UNAUTHENTICATED, "API key")
        assert health.Check(health_pb.HealthCheckRequest(), timeout=10).status == health_pb.HealthCheckResponse.SERVING
        assert generate(stub, metadata=auth, text="hi", max_tokens=3)[-1].usage.completion_tokens == 3
        assert generate(stub, metadata=[("authorization", f"bearer {KEY}")], text="hi", max_tokens=1)

    before = server.metrics()
    with step("a full queue gives RESOURCE_EXHAUSTED"):
        # --max-num-seqs 2 --max-queue 1: two run, one waits, the fourth is turned down.
        calls = [LongCall(stub, i, auth) for i in range(2)]
        wait_for(lambda: all(len(c.responses) >= 2 for c in calls), timeout=30, what="two streams under way")
        queued = LongCall(stub, 2, auth, timeout=2.0)  # its deadline passes while it waits
        wait_for(lambda: metric(server.metrics(), "strata:num_requests_waiting") == 1, what="one waiting request")
        expect_error(lambda: generate(stub, metadata=auth, text="one too many", max_tokens=4),
                     grpc.StatusCode.RESOURCE_EXHAUSTED, "queue")
        m = server.metrics()
        assert metric(m, "strata:num_requests_running") == 2 and metric(m, "strata:kv_cache_blocks_used") > 0, m

    with step("cancelled calls and passed deadlines free their engine requests"):
        assert queued.join() == grpc.StatusCode.DEADLINE_EXCEEDED, queued.code
        assert not queued.responses, "the queued call got tokens"
        for c in calls:
            assert c.code is None, f"a long call ended early ({c.code}); raise LONG_TOKENS"
            c.call.cancel()
        for c in calls:
            assert c.join() == grpc.StatusCode.CANCELLED, c.code
        t0 = time.time()

        def idle():
            m = server.metrics()
            ok = (metric(m, "strata:num_requests_running") == 0 and metric(m, "strata:num_requests_waiting") == 0
                  and metric(m, "strata:kv_cache_blocks_used") == 0)
            return m if ok else None
        # Within a couple of seconds: left running, the calls would take several more.
        wait_for(idle, timeout=2, what="0 running, 0 waiting, 0 KV blocks used after the cancels")
        print(f"   idle {time.time() - t0:.2f} s after the cancels")
        # A deadline that passes mid-stream.
        mid = LongCall(stub, 3, auth, timeout=1.0)
        assert mid.join() == grpc.StatusCode.DEADLINE_EXCEEDED, mid.code
        assert mid.responses and not any(r.finish_reason for r in mid.responses), len(mid.responses)
        t0 = time.time()
        after = wait_for(idle, timeout=2, what="0 running, 0 waiting, 0 KV blocks used after the deadline")
        print(f"   idle {time.time() - t0:.2f} s after the deadline")
        assert metric(after, "strata:kv_cache_blocks_free") == metric(after, "strata:kv_cache_blocks_total")

        def delta(reason):
            return (metric(after, "strata:request_success_total", finished_reason=reason)
                    - metric(before, "strata:request_success_total", finished_reason=reason))
        assert delta("abort") == 4, delta("abort")
        assert delta("length") == 0 and delta("stop") == 0, (delta("length"), delta("stop"))

    with step("the server still serves"):
        assert generate(stub, metadata=auth, text="still there?", max_tokens=3)[-1].usage.completion_tokens == 3
    channel.close()


def main():
    with Server() as server:
        assert server.grpc_target, "no 'listening on grpc://' line in the log:\n" + server.log_text()
        channel = grpc.insecure_channel(server.grpc_target)
        stub = pb_grpc.StrataStub(channel)
        max_model_len = check_basics(server, stub, health_grpc.HealthStub(channel))
        check_generate(server, stub, max_model_len)
        channel.close()

        with step("a gRPC port in use is an error at start-up, not a shared port"):
            r = subprocess.run([strata_bin(), "serve", "--model", server.model, "--port", "0", "--grpc-port",
                                str(server.grpc_port)], capture_output=True, text=True, timeout=60)
            assert r.returncode == 1 and "cannot listen" in r.stdout + r.stderr, (r.returncode, r.stdout[-2000:])

    with step("--help documents --grpc-port; bad values exit 2"):
        r = subprocess.run([strata_bin(), "serve", "--help"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "--grpc-port" in r.stdout and "-1: no gRPC" in r.stdout, r.stdout
        for bad in ("-2", "70000", "abc"):
            r = subprocess.run([strata_bin(), "serve", "--model", model_dir(), "--grpc-port", bad],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 2 and "--grpc-port" in r.stderr, (bad, r.returncode, r.stderr)

    model = tiny_model("tiny_model_8k", "--max-position-embeddings", "8192")
    with Server("--api-key", KEY, "--max-num-seqs", "2", "--max-queue", "1", "--kv-cache-mb", "64",
                model=model) as server:
        check_auth_cancel_and_queue(server)

    with step("--grpc-port -1 turns gRPC off"):
        with Server("--grpc-port", "-1") as server:
            assert server.grpc_target is None and "grpc://" not in server.log_text()
    print("PASS")


if __name__ == "__main__":
    main()
