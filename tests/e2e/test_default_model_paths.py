#!/usr/bin/env python3
"""The embedded default model is found without --model from any build folder and install:
a copy of the binary far from the source tree (no models/ beside it) falls back to the source
tree recorded at configure time; `cmake --install` puts it in <prefix>/share/strata/models and
the installed binary serves that copy."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from strata_e2e import skip, source_dir, step, strata_bin, work_dir  # noqa: E402

PROMPT = '{"prompt": "Once upon a time, there was a little", "max_tokens": 8, "temperature": 0}\n'


def generate(binary, cwd):
    return subprocess.run([binary, "generate", "--input", "-"], input=PROMPT, capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def main():
    src_model = os.path.join(source_dir(), "models", "default")
    if not os.path.isfile(os.path.join(src_model, "config.json")):
        skip("no models/default in the source tree")
    root = os.path.join(work_dir(), "default_model_paths")
    shutil.rmtree(root, ignore_errors=True)
    scratch = os.path.join(root, "cwd")
    os.makedirs(scratch)

    with step("a copy of the binary outside the build tree finds the source tree's model"):
        os.makedirs(os.path.join(root, "elsewhere", "bin"))
        copy = os.path.join(root, "elsewhere", "bin", "strata")
        shutil.copy2(strata_bin(), copy)
        r = generate(copy, scratch)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout.splitlines()[0])
        # The default model's greedy continuation (models/default/README.md, "Samples").
        assert out["text"].startswith(" goat named Ruby") or out["text"].startswith("goat named Ruby"), out

    with step("cmake --install: the installed binary serves <prefix>/share/strata/models/default"):
        build_dir = os.path.dirname(os.path.dirname(os.path.abspath(strata_bin())))
        prefix = os.path.join(root, "prefix")
        r = subprocess.run(["cmake", "--install", build_dir, "--prefix", prefix], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        installed_model = os.path.join(prefix, "share", "strata", "models", "default")
        assert os.path.isfile(os.path.join(installed_model, "config.json")), os.listdir(prefix)
        log_path = os.path.join(root, "installed-serve.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen([os.path.join(prefix, "bin", "strata"), "serve", "--port", "0", "--grpc-port", "-1"],
                                    cwd=scratch, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 60
            text = ""
            while time.time() < deadline:
                text = open(log_path, errors="replace").read()
                if "listening on http://" in text or proc.poll() is not None:
                    break
                time.sleep(0.1)
            m = re.search(r"loading (\S+) \(device", text)
            assert m, text
            assert os.path.realpath(m.group(1)) == os.path.realpath(installed_model), (m.group(1), installed_model)
            assert "listening on http://" in text, text
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)

    print("PASS")


if __name__ == "__main__":
    main()
