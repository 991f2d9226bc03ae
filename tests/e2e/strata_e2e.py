"""Helpers for strata's end-to-end tests: pick a checkpoint, run the real `strata serve` binary
on a free loopback port, and talk to it with the Python standard library only.

Environment (set by tests/e2e/CMakeLists.txt):
  STRATA_BIN         the strata binary
  STRATA_SOURCE_DIR  the source tree
  STRATA_E2E_WORK    a scratch folder in the build tree
  STRATA_E2E_MODEL   optional: a checkpoint folder to serve instead of the default
"""

import contextlib
import fcntl
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

SKIP = 77  # ctest SKIP_RETURN_CODE


def skip(reason):
    print(f"SKIP: {reason}", flush=True)
    sys.exit(SKIP)


def source_dir():
    return os.environ.get("STRATA_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))


def work_dir():
    d = os.environ.get("STRATA_E2E_WORK", "/tmp/strata_e2e")
    os.makedirs(d, exist_ok=True)
    return d


def tiny_model(name="tiny_model", *args):
    """A checkpoint made by scripts/e2e/make_tiny_model.py (standard library only), once per
    build tree; `args` go to the script (e.g. --max-position-embeddings 8192)."""
    path = os.path.join(work_dir(), name)
    maker = os.path.join(source_dir(), "scripts", "e2e", "make_tiny_model.py")
    if not os.path.isfile(maker):
        skip("scripts/e2e/make_tiny_model.py is missing")
    with open(os.path.join(work_dir(), name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # tests run in parallel; one of them builds it
        if not os.path.isfile(os.path.join(path, "model.safetensors")):
            shutil.rmtree(path + ".tmp", ignore_errors=True)
            subprocess.run([sys.executable, maker, path + ".tmp", *args], check=True, stdout=subprocess.DEVNULL)
            shutil.rmtree(path, ignore_errors=True)
            os.rename(path + ".tmp", path)
    return path


def model_dir():
    """STRATA_E2E_MODEL; else the golden qwen2_bpe checkpoint; else a tiny checkpoint made by
    scripts/e2e/make_tiny_model.py; skips when none can be had."""
    explicit = os.environ.get("STRATA_E2E_MODEL")
    if explicit:
        if not os.path.isfile(os.path.join(explicit, "config.json")):
            skip(f"STRATA_E2E_MODEL={explicit} has no config.json")
        return explicit
    golden = os.path.join(source_dir(), "tests", "golden", "models", "qwen2_bpe")
    if os.path.isfile(os.path.join(golden, "config.json")):
        return golden
    return tiny_model()


def strata_bin():
    b = os.environ.get("STRATA_BIN")
    if not b or not os.access(b, os.X_OK):
        skip(f"strata binary not found (STRATA_BIN={b})")
    return b


class Server:
    """A running `strata serve`; use as a context manager. Stopping sends SIGTERM and checks
    that the process exits 0 (the graceful-shutdown contract). The gRPC API gets a free port
    too unless `flags` set --grpc-port; `grpc_target` is its "127.0.0.1:port" (None when off)."""

    def __init__(self, *flags, model=None, env=None, start_timeout=60):
        self.model = model or model_dir()
        self.log_path = os.path.join(work_dir(), f"serve-{os.getpid()}-{int(time.time() * 1e6)}.log")
        self.log = open(self.log_path, "w+")
        cmd = [strata_bin(), "serve", "--model", self.model, "--port", "0"]
        if not any(str(f).split("=")[0] == "--grpc-port" for f in flags):
            cmd += ["--grpc-port", "0"]  # the default, 50051, would clash between tests run in parallel
        cmd += list(flags)
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=full_env)
        self.port = None
        deadline = time.time() + start_timeout
        while time.time() < deadline:
            text = self.log_text()
            m = re.search(r"listening on http://[^:]+:(\d+)", text)
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"strata serve exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.05)
        if self.port is None:
            self.proc.kill()
            raise RuntimeError("strata serve did not start in time:\n" + self.log_text())
        self.host = "127.0.0.1"
        self.url = f"http://{self.host}:{self.port}"
        # strata serve logs the gRPC address before the HTTP one.
        m = re.search(r"listening on grpc://\S+:(\d+)", self.log_text())
        self.grpc_port = int(m.group(1)) if m else None
        self.grpc_target = f"{self.host}:{self.grpc_port}" if m else None

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("strata serve did not exit after SIGTERM:\n" + self.log_text()[-4000:])
        return rc

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        rc = self.stop()
        if exc_type is None and rc != 0:
            raise AssertionError(f"strata serve exited with {rc}:\n" + self.log_text()[-4000:])
        if exc_type is not None:
            sys.stderr.write("---- server log (tail) ----\n" + self.log_text()[-4000:] + "\n")
        return False

    # ---- clients ----
    def conn(self, timeout=60):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers dict with lower-case names, body bytes)."""
        c = self.conn(timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            h = {"Content-Type": "application/json"} if body is not None else {}
            h.update(headers or {})
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def post_json(self, path, body, headers=None, timeout=60):
        status, _, data = self.request("POST", path, body, headers, timeout)
        return status, json.loads(data) if data else None

    def get_json(self, path, headers=None):
        status, _, data = self.request("GET", path, None, headers)
        return status, json.loads(data) if data else None

    def metrics(self):
        status, _, data = self.request("GET", "/metrics")
        assert status == 200, status
        return parse_metrics(data.decode())

    def stream(self, path, body, timeout=120):
        """Posts a streaming request; returns (status, list of decoded data payloads). The last
        payload is the string '[DONE]' when the stream ended properly."""
        c = self.conn(timeout)
        try:
            c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
            r = c.getresponse()
            if r.status != 200:
                return r.status, [json.loads(r.read())]
            return r.status, read_sse(r)
        finally:
            c.close()


def read_sse(response):
    events = []
    buf = b""
    while True:
        chunk = response.read1(65536) if hasattr(response, "read1") else response.read(65536)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            for line in event.split(b"\n"):
                if line.startswith(b"data: "):
                    payload = line[6:].decode()
                    events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def parse_metrics(text):
    """{'name{labels}': value} plus {'name': value} for unlabelled lookups of single series."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, value = line.rsplit(" ", 1)
        out[key] = float(value)
    return out


def metric(metrics, name, **labels):
    """Sum of the series of `name` whose labels include `labels`."""
    total = 0.0
    found = False
    for key, value in metrics.items():
        m = re.match(r"([^{]+)\{(.*)\}$", key)
        series, lab = (m.group(1), m.group(2)) if m else (key, "")
        if series != name:
            continue
        pairs = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', lab))
        if all(pairs.get(k) == v for k, v in labels.items()):
            total += value
            found = True
    if not found:
        raise KeyError(f"no metric {name} {labels}")
    return total


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def raw_exchange(port, data, timeout=10.0, read_all=True):
    """Sends raw bytes on a fresh connection and returns what comes back until the server
    closes (or `timeout`)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
            if not read_all and b"\r\n\r\n" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                m = re.search(rb"content-length: *(\d+)", head, re.I)
                if m and len(rest) >= int(m.group(1)):
                    break
        return out
    finally:
        s.close()


def run_threads(n, fn):
    """Runs fn(i) on n threads at once; returns the results in order (exceptions re-raised)."""
    results = [None] * n
    errors = []
    barrier = threading.Barrier(n)

    def body(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as e:  # noqa: BLE001
            errors.append((i, e))

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        i, e = errors[0]
        raise AssertionError(f"{len(errors)} of {n} clients failed; client {i}: {e!r}") from e
    return results


@contextlib.contextmanager
def step(name):
    t0 = time.time()
    print(f"-- {name}", flush=True)
    yield
    print(f"   ok ({time.time() - t0:.2f} s)", flush=True)
