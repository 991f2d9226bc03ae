#!/usr/bin/env python3
"""`strata serve` settings: --help documents every flag; --config JSON < STRATA_* environment <
flags; --device cuda without a GPU fails clearly; bad settings exit 2 with a message; configs/serve.example.json
is a valid config."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from strata_e2e import Server, model_dir, source_dir, step, strata_bin, work_dir  # noqa: E402

FLAGS = ["model", "host", "port", "served-model-name", "api-key", "max-queue", "max-body-bytes", "config", "device", "gpu-memory-utilization",
         "log-level", "shutdown-grace-s", "io-threads", "chat-template", "max-num-seqs", "max-num-batched-tokens",
         "max-model-len", "block-size", "num-kv-blocks", "kv-cache-mb", "no-prefix-caching", "max-connections",
         "header-read-timeout-s", "idle-timeout-s"]


def run(*args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_") or k in ("STRATA_BIN",)}
    e.update(env or {})
    return subprocess.run([strata_bin(), "serve", *args], capture_output=True, text=True, env=e, timeout=60)


def served_name(server, key=None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    status, body = server.get_json("/v1/models", headers)
    return status, (body["data"][0]["id"] if status == 200 else body)


def main():
    with step("--help documents every flag"):
        r = run("--help")
        assert r.returncode == 0, r
        for f in FLAGS:
            assert f"--{f}" in r.stdout, f"--help does not mention --{f}:\n{r.stdout}"
        assert "STRATA_" in r.stdout

    with step("bad settings exit 2 with a message"):
        for args, needle in [(["--device", "tpu"], "--device"), (["--gpu-memory-utilization", "1.5"], "(0, 1]"),
                             (["--port", "abc"], "--port"), (["--port", "70000"], "--port"), (["--bogus"], "unknown flag"),
                             (["--log-level", "loud"], "--log-level"), (["--config", "/nonexistent.json"], "cannot open"),
                             (["--model", "/nonexistent-model"], "is not a folder"),
                             # zero where zero means nothing: refused, not read as the default
                             (["--num-kv-blocks", "0"], "--num-kv-blocks must be in [1, "),
                             (["--max-model-len", "0"], "--max-model-len must be in [1, "),
                             (["--max-num-seqs", "0"], "--max-num-seqs must be in [1, "),
                             (["--block-size", "-16"], "--block-size must be in [1, "),
                             (["--header-read-timeout-s", "0"], "--header-read-timeout-s must be in [1, "),
                             (["--max-connections", "-1"], "--max-connections must be in [0, ")]:
            r = run(*args)
            assert r.returncode == 2, (args, r.returncode, r.stderr)
            assert needle in r.stderr, (args, r.stderr)
        # Where CUDA is absent (no nvcc at build time, or no GPU/driver here) the model cannot
        # load on it: exit 1 naming why.
        r = run("--device", "cuda")
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert "no CUDA backend" in r.stderr or "no usable CUDA device" in r.stderr, r.stderr
        # A memory plan beyond the machine: refused at start-up with the numbers, before allocating.
        r = run("--device", "cpu", "--num-kv-blocks", "2000000000")
        out = r.stdout + r.stderr
        assert r.returncode == 1, (r.returncode, out)
        assert "host memory plan" in out and "exceeds" in out and "available" in out, out
        bad_cfg = os.path.join(work_dir(), "bad_config.json")
        with open(bad_cfg, "w") as f:
            json.dump({"port": 0, "no_such_setting": 1}, f)
        r = run("--config", bad_cfg)
        assert r.returncode == 2 and "no_such_setting" in r.stderr, r.stderr

    cfg = os.path.join(work_dir(), "config.json")
    with open(cfg, "w") as f:
        json.dump({"served_model_name": "from-config", "api-key": "config-key", "port": 0, "max_queue": 3,
                   "no-prefix-caching": True}, f)
    clean = {k: "" for k in []}
    with step("--config file"):
        with Server("--config", cfg, env=clean) as s:
            assert served_name(s) [0] == 401
            assert served_name(s, "config-key") == (200, "from-config")
    with step("environment over --config"):
        with Server("--config", cfg, env={"STRATA_SERVED_MODEL_NAME": "from-env", "STRATA_API_KEY": "env-key"}) as s:
            assert served_name(s, "env-key") == (200, "from-env")
    with step("flags over environment"):
        with Server("--config", cfg, "--served-model-name", "from-flag",
                    env={"STRATA_SERVED_MODEL_NAME": "from-env"}) as s:
            assert served_name(s, "config-key") == (200, "from-flag")
    with step("STRATA_API_KEY alone protects /v1 but not /health"):
        with Server(env={"STRATA_API_KEY": "k"}) as s:
            assert served_name(s)[0] == 401 and served_name(s, "k")[0] == 200
            assert s.request("GET", "/health")[0] == 200
    with step("configs/serve.example.json"):
        example = os.path.join(source_dir(), "configs", "serve.example.json")
        # --model and --port 0 come from Server; the example's 4096-token window exceeds the test model's.
        with open(os.path.join(model_dir(), "config.json")) as f:
            window = json.load(f)["max_position_embeddings"]
        with Server("--config", example, "--max-model-len", str(window)) as s:
            assert served_name(s) == (200, "qwen2.5-0.5b-instruct")
            status, body = s.post_json("/v1/completions", {"prompt": "hi", "max_tokens": 2})
            assert status == 200, body
    print("PASS")


if __name__ == "__main__":
    main()
