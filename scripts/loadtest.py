#!/usr/bin/env python3
"""Load-test client for OpenAI-compatible inference servers (strata, vLLM, SGLang, llama.cpp
server): sends synthetic or ShareGPT prompts at a fixed concurrency or as Poisson arrivals, and
reports TTFT, TPOT, inter-token latency, end-to-end latency and throughput. Standard library only
(Python >= 3.8), so the same client measures every server.

Example:
    python3 scripts/loadtest.py --base-url http://127.0.0.1:8000 \\
        --num-requests 200 --concurrency 16 --input-len 512 --output-len 128 \\
        --output-json result.json
"""

import argparse
import collections
import http.client
import json
import math
import os
import queue
import random
import socket
import ssl
import sys
import textwrap
import threading
import time
import urllib.parse

EXIT_OK = 0
EXIT_FATAL = 1  # could not run: unreachable server, bad dataset, bad model
EXIT_USAGE = 2  # argparse's code for bad flags
EXIT_FAILED_REQUESTS = 3  # the run finished but some requests failed

# Words for synthetic prompts. Common English words are one token (with their leading space) in
# most vocabularies, so a prompt of N words is close to N tokens before any correction.
WORDS = """the of and to in is was for on that with as by at from his her an were are which this be
has had not but they you one all their there been have its more who will would said when so if
what about out up into them than some other time can only could new year these two may first
then do any like my now over such our man me even most made after also did many before must
through back years where much your way well down should because each just those people how too
little state good very make world still own see men work long get here between both life being
under never day same another know while last might us great old off come since against go came
right used take three small house place number found light water city land point look story
music power order river field money south north east west line hand high name night head read
city group book table green blue black white red open close early late river stone market
garden window street winter summer spring morning evening school paper letter answer question
""".split()


class FatalError(Exception):
    """A problem that stops the run before any measurement (printed as 'error: ...')."""


# ---------------------------------------------------------------------------------------------
# HTTP plumbing


class Target:
    """Where the server is: scheme, host, port, path prefix; makes connections and headers."""

    def __init__(self, base_url, api_key, timeout_s):
        url = base_url.rstrip("/")
        if "://" not in url:
            url = "http://" + url
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FatalError(f"--base-url {base_url!r} is not an http(s) URL")
        self.scheme = parts.scheme
        self.host = parts.hostname
        try:
            self.port = parts.port or (443 if self.scheme == "https" else 80)
        except ValueError:
            raise FatalError(f"--base-url {base_url!r} has a bad port") from None
        prefix = parts.path.rstrip("/")
        if prefix.endswith("/v1"):  # accept both http://h:p and http://h:p/v1
            prefix = prefix[: -len("/v1")]
        self.prefix = prefix
        self.base_url = f"{self.scheme}://{parts.netloc}{prefix}"
        self.api_key = api_key
        self.timeout_s = timeout_s
        self._ssl = ssl.create_default_context() if self.scheme == "https" else None

    def connect(self):
        if self._ssl is not None:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout_s, context=self._ssl)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)

    def headers(self, body=True):
        h = {"Accept": "application/json, text/event-stream", "User-Agent": "strata-loadtest/1"}
        if body:
            h["Content-Type"] = "application/json"
        if self.api_key:
            h["Authorization"] = "Bearer " + self.api_key
        return h

    def path(self, p):
        return self.prefix + p


def error_text(status, body_bytes):
    """A one-line summary of an HTTP error body (OpenAI error JSON or plain text)."""
    text = body_bytes.decode("utf-8", "replace").strip()
    try:
        obj = json.loads(text)
        if isinstance(obj, dict):
            err = obj.get("error", obj)
            if isinstance(err, dict) and err.get("message"):
                text = str(err["message"])
            elif isinstance(err, str):
                text = err
            elif obj.get("detail"):
                text = str(obj["detail"])
            elif obj.get("message"):
                text = str(obj["message"])
    except ValueError:
        pass
    text = " ".join(text.split())
    if len(text) > 200:
        text = text[:197] + "..."
    return f"HTTP {status}: {text}" if text else f"HTTP {status}"


def describe_connect_error(target, e):
    if isinstance(e, ConnectionRefusedError):
        return f"cannot connect to {target.base_url}: connection refused (is the server running on port {target.port}?)"
    if isinstance(e, socket.gaierror):
        return f"cannot resolve host {target.host!r} of {target.base_url}: {e}"
    if isinstance(e, socket.timeout):
        return f"no answer from {target.base_url} within {target.timeout_s:g} s"
    if isinstance(e, ssl.SSLError):
        return f"TLS error talking to {target.base_url}: {e}"
    return f"cannot reach {target.base_url}: {e.__class__.__name__}: {e}"


class JsonClient:
    """One keep-alive connection for set-up calls (models, tokenize); not for measured requests."""

    def __init__(self, target):
        self.target = target
        self.conn = None

    def call(self, method, path, body=None):
        """(status, parsed JSON or None, raw bytes); raises OSError when the server is unreachable."""
        data = None if body is None else json.dumps(body).encode()
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = self.target.connect()
            try:
                self.conn.request(method, self.target.path(path), body=data, headers=self.target.headers(data is not None))
                r = self.conn.getresponse()
                raw = r.read()
                if r.getheader("connection", "").lower() == "close":
                    self.close()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()  # a stale keep-alive connection: retry once on a fresh one
                if attempt:
                    raise
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return r.status, parsed, raw

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# ---------------------------------------------------------------------------------------------
# Token counting and prompts


class TokenCounter:
    """Counts prompt tokens with the server's POST /tokenize (strata, vLLM) when it has one, so
    synthetic prompts can hit an exact input length; otherwise estimates one token per word."""

    def __init__(self, target, model, chat, enabled):
        self.target = target
        self.model = model
        self.chat = chat
        self.local = threading.local()
        self.available = False
        self.note = "disabled by --no-tokenize" if not enabled else ""
        if enabled:
            self._probe()

    def _client(self):
        c = getattr(self.local, "client", None)
        if c is None:
            c = self.local.client = JsonClient(self.target)
        return c

    def _body(self, text):
        body = {"model": self.model}
        if self.chat:
            body["messages"] = [{"role": "user", "content": text}]
            body["add_generation_prompt"] = True
        else:
            body["prompt"] = text
        return body

    def _probe(self):
        try:
            status, obj, raw = self._client().call("POST", "/tokenize", self._body("Hello world"))
        except OSError as e:
            self.note = f"/tokenize unreachable ({e.__class__.__name__})"
            return
        count = None
        if status == 200 and isinstance(obj, dict):
            count = obj["count"] if isinstance(obj.get("count"), int) else \
                len(obj["tokens"]) if isinstance(obj.get("tokens"), list) else None
        if count:  # a server whose /tokenize takes other fields answers 0 tokens: not usable
            self.available = True
            self.note = "POST /tokenize"
        else:
            self.note = f"no usable POST /tokenize ({error_text(status, raw)}); estimating 1 token per word"

    def count(self, text):
        """Tokens the server will see for `text` as the (user message of the) prompt."""
        if not self.available:
            return estimate_tokens(text)
        status, obj, raw = self._client().call("POST", "/tokenize", self._body(text))
        if status != 200 or not isinstance(obj, dict):
            raise FatalError(f"POST /tokenize failed: {error_text(status, raw)}")
        if isinstance(obj.get("count"), int):
            return obj["count"]
        return len(obj["tokens"])

    def count_plain(self, text):
        """Tokens of `text` alone (no chat template): for the length of a reference reply."""
        if not self.available:
            return estimate_tokens(text)
        status, obj, raw = self._client().call("POST", "/tokenize",
                                               {"model": self.model, "prompt": text, "add_special_tokens": False})
        if status != 200 or not isinstance(obj, dict):
            raise FatalError(f"POST /tokenize failed: {error_text(status, raw)}")
        return obj["count"] if isinstance(obj.get("count"), int) else len(obj["tokens"])


def estimate_tokens(text):
    return max(1, len(text.split()))


class Prompt:
    __slots__ = ("text", "input_len", "input_len_exact", "output_len", "source", "requested_input_len")

    def __init__(self, text, input_len, input_len_exact, output_len, source, requested_input_len=None):
        self.text = text
        self.requested_input_len = input_len if requested_input_len is None else requested_input_len
        self.input_len = input_len  # expected prompt tokens (None when unknown)
        self.input_len_exact = input_len_exact  # counted by the server's tokenizer
        self.output_len = output_len
        self.source = source


FILLERS = [" a", " I", ".", ",", " x", "s", "a", "!", " 1", "1", " ."]


def fit_prompt(counter, rng, target_len):
    """Random words whose tokenization is exactly `target_len` tokens when the server can count
    them: the largest word prefix that does not overshoot (secant steps inside a bracket), then
    one-token fillers. Returns (text, tokens); tokens may fall short when no filler fits."""
    if not counter.available:
        n = max(1, target_len)
        return " ".join(rng.choice(WORDS) for _ in range(n)), n
    words = [rng.choice(WORDS) for _ in range(target_len + 8)]
    cache = {}

    def count(k):
        if k not in cache:
            cache[k] = counter.count(" ".join(words[:k]))
        return cache[k]

    # Grow until the words overshoot: then lo (fits) < hi (overshoots) bracket the answer.
    while count(len(words)) <= target_len:
        if count(len(words)) == target_len:
            return " ".join(words), target_len
        if len(words) > 64 * (target_len + 8):
            raise FatalError(f"POST /tokenize counts {count(len(words))} tokens for {len(words)} words; "
                             "cannot build prompts from it (use --no-tokenize)")
        words.extend(rng.choice(WORDS) for _ in range(len(words)))
    lo, hi = 1, len(words)
    if count(1) > target_len:
        return words[0], count(1)
    while hi - lo > 1:
        c_lo, c_hi = count(lo), count(hi)
        if c_lo == target_len:
            break
        guess = lo + round((target_len - c_lo) * (hi - lo) / max(1, c_hi - c_lo))
        mid = min(max(guess, lo + 1), hi - 1)
        if count(mid) <= target_len:
            lo = mid
        else:
            hi = mid
    text, have = " ".join(words[:lo]), count(lo)
    while have < target_len:
        for filler in FILLERS:
            c = counter.count(text + filler)
            if have < c <= target_len:
                text, have = text + filler, c
                break
        else:
            break  # nothing adds exactly one token here; report the shortfall
    return text, have


def draw_lengths(rng, mean, ratio, count):
    """`count` integers uniform in [mean*(1-ratio), mean*(1+ratio)] (at least 1)."""
    if ratio <= 0:
        return [mean] * count
    lo = max(1, int(math.floor(mean * (1 - ratio))))
    hi = max(lo, int(math.ceil(mean * (1 + ratio))))
    return [rng.randint(lo, hi) for _ in range(count)]


def parallel_map(fn, items, workers):
    """fn over items on `workers` threads, results in order; the first exception is re-raised."""
    results = [None] * len(items)
    errors = []
    next_index = [0]
    lock = threading.Lock()

    def body():
        while True:
            with lock:
                i = next_index[0]
                if i >= len(items) or errors:
                    return
                next_index[0] += 1
            try:
                results[i] = fn(items[i])
            except BaseException as e:  # noqa: BLE001 - re-raised below
                with lock:
                    errors.append(e)
                return

    threads = [threading.Thread(target=body, daemon=True) for _ in range(max(1, min(workers, len(items))))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def synthetic_prompts(args, counter, count, seed):
    rng = random.Random(seed)
    input_lens = draw_lengths(rng, args.input_len, args.range_ratio, count)
    output_lens = draw_lengths(rng, args.output_len, args.range_ratio, count)
    seeds = [rng.getrandbits(64) for _ in range(count)]

    def make(i):
        text, have = fit_prompt(counter, random.Random(seeds[i]), input_lens[i])
        return Prompt(text, have, counter.available, output_lens[i], "synthetic", input_lens[i])

    return parallel_map(make, list(range(count)), args.prepare_workers)


def load_sharegpt(path):
    """(human prompt, gpt reply) pairs from a ShareGPT-format file; FatalError when unusable."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise FatalError(f"cannot read dataset {path}: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise FatalError(f"dataset {path} is not valid JSON: {e}") from None
    if not isinstance(data, list):
        raise FatalError(f"dataset {path}: expected a JSON list of {{\"conversations\": [...]}} entries, "
                         f"got {type(data).__name__}")
    pairs = []
    for entry in data:
        conv = entry.get("conversations") if isinstance(entry, dict) else None
        if not isinstance(conv, list) or len(conv) < 2:
            continue
        first, second = conv[0], conv[1]
        if not (isinstance(first, dict) and isinstance(second, dict)):
            continue
        if first.get("from") not in ("human", "user") or second.get("from") not in ("gpt", "assistant", "chatgpt"):
            continue
        prompt, reply = first.get("value"), second.get("value")
        if isinstance(prompt, str) and isinstance(reply, str) and prompt.strip():
            pairs.append((prompt, reply))
    if not pairs:
        raise FatalError(f"dataset {path}: no usable conversations (each entry needs \"conversations\" whose first "
                         f"two turns are from \"human\" and \"gpt\" with string \"value\"s)")
    return pairs


def dataset_prompts(args, counter, count, seed, max_model_len, pairs):
    rng = random.Random(seed)
    order = list(range(len(pairs)))
    rng.shuffle(order)

    def measure(i):
        prompt, reply = pairs[i]
        input_len = counter.count(prompt)
        output_len = args.output_len_override or max(1, counter.count_plain(reply) if reply.strip() else 1)
        return Prompt(prompt, input_len, counter.available, output_len, "sharegpt")

    chosen, skipped, start = [], 0, 0
    # Measure in batches until enough fit the context window (or the dataset runs out).
    while len(chosen) < count and start < len(order):
        batch = order[start:start + max(8, 2 * (count - len(chosen)))]
        start += len(batch)
        for p in parallel_map(measure, batch, args.prepare_workers):
            if max_model_len and p.input_len + p.output_len > max_model_len:
                skipped += 1
                continue
            chosen.append(p)
    if not chosen:
        raise FatalError(f"dataset {args.dataset}: none of its {len(pairs)} conversations fit the model's "
                         f"context of {max_model_len} tokens")
    while len(chosen) < count:  # a small dataset is reused in order
        chosen.append(chosen[len(chosen) % max(1, len(chosen))])
    return chosen[:count], skipped


# ---------------------------------------------------------------------------------------------
# One measured request


class RequestRecord:
    """What one request did; times are seconds, `start_s` relative to the start of the run."""

    def __init__(self, index, prompt):
        self.index = index
        self.prompt = prompt
        self.ok = False
        self.error = None
        self.http_status = None
        self.start_s = None
        self.scheduled_s = None
        self.ttft_s = None
        self.e2e_s = None
        self.itl_s = []
        self.num_chunks = 0
        self.output_chars = 0
        self.input_tokens = None
        self.input_tokens_source = None
        self.output_tokens = None
        self.output_tokens_source = None
        self.finish_reason = None

    @property
    def tpot_s(self):
        if not self.ok or self.ttft_s is None or not self.output_tokens or self.output_tokens < 2:
            return None
        return (self.e2e_s - self.ttft_s) / (self.output_tokens - 1)

    def to_json(self):
        return {
            "index": self.index,
            "ok": self.ok,
            "error": self.error,
            "http_status": self.http_status,
            "source": self.prompt.source,
            "scheduled_s": self.scheduled_s,
            "start_s": self.start_s,
            "input_tokens": self.input_tokens,
            "input_tokens_source": self.input_tokens_source,
            "requested_input_tokens": self.prompt.requested_input_len,
            "expected_input_tokens": self.prompt.input_len,
            "expected_input_tokens_exact": self.prompt.input_len_exact,
            "requested_output_tokens": self.prompt.output_len,
            "output_tokens": self.output_tokens,
            "output_tokens_source": self.output_tokens_source,
            "finish_reason": self.finish_reason,
            "ttft_s": self.ttft_s,
            "tpot_s": self.tpot_s,
            "e2e_s": self.e2e_s,
            "itl_s": self.itl_s,
            "num_chunks": self.num_chunks,
            "output_chars": self.output_chars,
        }


def request_body(args, model, prompt):
    body = {"model": model, "max_tokens": prompt.output_len, "temperature": args.temperature}
    if args.endpoint == "chat":
        body["messages"] = [{"role": "user", "content": prompt.text}]
    else:
        body["prompt"] = prompt.text
    if not args.no_ignore_eos:
        body["ignore_eos"] = True
        body["min_tokens"] = prompt.output_len
    if not args.no_stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    body.update(args.extra_body)
    return body


def chunk_text(choice, chat):
    if chat:
        delta = choice.get("delta") or {}
        text = delta.get("content") or ""
        extra = delta.get("reasoning_content") or delta.get("reasoning") or ""
        return (text if isinstance(text, str) else "") + (extra if isinstance(extra, str) else "")
    text = choice.get("text")
    return text if isinstance(text, str) else ""


def read_sse_events(response):
    """Yields (arrival time, data payload) per server-sent event as it arrives."""
    data_lines = []
    while True:
        line = response.readline()
        if not line:
            if data_lines:
                yield time.perf_counter(), "\n".join(data_lines)
            return
        line = line.rstrip(b"\r\n")
        if not line:
            if data_lines:
                yield time.perf_counter(), "\n".join(data_lines)
                data_lines = []
            continue
        if line.startswith(b":"):
            continue  # comment / keep-alive
        if line.startswith(b"data:"):
            value = line[5:]
            if value.startswith(b" "):
                value = value[1:]
            data_lines.append(value.decode("utf-8", "replace"))


def apply_usage(rec, usage):
    if isinstance(usage, dict):
        if isinstance(usage.get("prompt_tokens"), int):
            rec.input_tokens, rec.input_tokens_source = usage["prompt_tokens"], "usage"
        if isinstance(usage.get("completion_tokens"), int):
            rec.output_tokens, rec.output_tokens_source = usage["completion_tokens"], "usage"


def run_request(target, args, model, rec, t_origin):
    _run_request(target, args, model, rec, t_origin)
    if rec.ok and rec.input_tokens is None and rec.prompt.input_len is not None:
        rec.input_tokens = rec.prompt.input_len
        rec.input_tokens_source = "tokenize" if rec.prompt.input_len_exact else "words"


def _run_request(target, args, model, rec, t_origin):
    chat = args.endpoint == "chat"
    path = target.path("/v1/chat/completions" if chat else "/v1/completions")
    payload = json.dumps(request_body(args, model, rec.prompt)).encode()
    conn = target.connect()
    t0 = time.perf_counter()
    rec.start_s = t0 - t_origin
    try:
        conn.request("POST", path, body=payload, headers=target.headers())
        resp = conn.getresponse()
        rec.http_status = resp.status
        if resp.status != 200:
            rec.error = error_text(resp.status, resp.read())
            return
        if args.no_stream:
            raw = resp.read()
            rec.e2e_s = time.perf_counter() - t0
            try:
                obj = json.loads(raw)
            except ValueError:
                rec.error = "response is not JSON"
                return
            if not isinstance(obj, dict) or not isinstance(obj.get("choices"), list) or not obj["choices"]:
                rec.error = "response has no choices" if not (isinstance(obj, dict) and "error" in obj) \
                    else error_text(200, raw)
                return
            choice = obj["choices"][0]
            text = ((choice.get("message") or {}).get("content") if chat else choice.get("text")) or ""
            rec.output_chars = len(text)
            rec.finish_reason = choice.get("finish_reason")
            apply_usage(rec, obj.get("usage"))
            if rec.output_tokens is None:
                rec.output_tokens, rec.output_tokens_source = estimate_tokens(text) if text else 0, "words"
            rec.ok = True
            return
        events = []  # parsed after the stream ends, so reading stays cheap while timing
        for t, data in read_sse_events(resp):
            events.append((t, data))
            if data == "[DONE]":
                break
        t_end = events[-1][0] if events else time.perf_counter()
    except (OSError, http.client.HTTPException) as e:
        rec.error = f"stream broken: {e.__class__.__name__}" + (f": {e}" if str(e) else "") \
            if rec.http_status else describe_connect_error(target, e)
        return
    finally:
        conn.close()

    rec.e2e_s = t_end - t0
    done = False
    last_token_t = None
    for t, data in events:
        if data == "[DONE]":
            done = True
            break
        try:
            obj = json.loads(data)
        except ValueError:
            rec.error = "stream sent an event that is not JSON: " + data[:80]
            return
        if not isinstance(obj, dict):
            continue
        if obj.get("error"):
            err = obj["error"]
            msg = err.get("message") if isinstance(err, dict) else str(err)
            rec.error = f"error event in stream: {msg}"
            return
        if obj.get("usage"):
            apply_usage(rec, obj["usage"])
        for choice in obj.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            if choice.get("finish_reason"):
                rec.finish_reason = choice["finish_reason"]
            text = chunk_text(choice, chat)
            if not text:
                continue
            rec.num_chunks += 1
            rec.output_chars += len(text)
            if last_token_t is None:
                rec.ttft_s = t - t0
            else:
                rec.itl_s.append(t - last_token_t)
            last_token_t = t
    if not done:
        rec.error = "stream ended without [DONE]"
        return
    if rec.output_tokens is None:
        rec.output_tokens, rec.output_tokens_source = rec.num_chunks, "chunks"
    if rec.ttft_s is None:
        rec.error = "stream finished without any generated text"
        return
    rec.ok = True


# ---------------------------------------------------------------------------------------------
# Load shapes


def run_fixed_concurrency(target, args, model, records, concurrency, t_origin):
    todo = queue.Queue()
    for rec in records:
        todo.put(rec)

    def worker():
        while True:
            try:
                rec = todo.get_nowait()
            except queue.Empty:
                return
            rec.scheduled_s = time.perf_counter() - t_origin
            run_request(target, args, model, rec, t_origin)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, min(concurrency, len(records))))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run_poisson(target, args, model, records, rate, max_concurrency, seed, t_origin):
    """Arrivals with exponential gaps of mean 1/rate; a request waits for a slot when
    max_concurrency are in flight (its wait shows as start_s - scheduled_s)."""
    rng = random.Random(seed ^ 0x5EED)
    slots = threading.Semaphore(max_concurrency) if max_concurrency else None
    threads = []
    t_next = 0.0

    def one(rec):
        try:
            run_request(target, args, model, rec, t_origin)
        finally:
            if slots:
                slots.release()

    for i, rec in enumerate(records):
        if i and math.isfinite(rate):
            t_next += rng.expovariate(rate)
        delay = t_origin + t_next - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        rec.scheduled_s = t_next
        if slots:
            slots.acquire()
        th = threading.Thread(target=one, args=(rec,), daemon=True)
        th.start()
        threads.append(th)
    for th in threads:
        th.join()


# ---------------------------------------------------------------------------------------------
# Statistics and report


def percentile(sorted_values, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return {"count": 0, "mean": None, "median": None, "p90": None, "p99": None, "min": None, "max": None}
    return {"count": len(v), "mean": sum(v) / len(v), "median": percentile(v, 50), "p90": percentile(v, 90),
            "p99": percentile(v, 99), "min": v[0], "max": v[-1]}


def aggregate(records, duration_s):
    done = [r for r in records if r.ok]
    failed = [r for r in records if not r.ok]
    input_tokens = sum(r.input_tokens or 0 for r in done)
    output_tokens = sum(r.output_tokens or 0 for r in done)
    errors = collections.Counter(r.error or "unknown error" for r in failed)
    def per_s(x):
        return x / duration_s if duration_s > 0 else None

    return {
        "requests_completed": len(done),
        "requests_failed": len(failed),
        "duration_s": duration_s,
        "total_input_tokens": input_tokens,
        "total_output_tokens": output_tokens,
        "request_throughput": per_s(len(done)),
        "input_token_throughput": per_s(input_tokens),
        "output_token_throughput": per_s(output_tokens),
        "total_token_throughput": per_s(input_tokens + output_tokens),
        "ttft_s": summarize(r.ttft_s for r in done),
        "tpot_s": summarize(r.tpot_s for r in done),
        "itl_s": summarize(x for r in done for x in r.itl_s),
        "e2e_s": summarize(r.e2e_s for r in done),
        "errors": dict(errors.most_common()),
    }


def fmt_ms(x):
    return "n/a" if x is None else f"{x * 1000:.2f}"


def print_report(config, m, out):
    load = (f"concurrency {config['concurrency']}" if config["request_rate"] is None else
            f"Poisson {config['request_rate']:g} req/s" +
            (f", max concurrency {config['max_concurrency']}" if config["max_concurrency"] else ""))
    rows = [
        ("Server", f"{config['base_url']}  model {config['model']}"),
        ("Endpoint", f"{config['endpoint_path']}  ({'non-streaming' if config['no_stream'] else 'streaming'})"),
        ("Load", load),
        ("Prompts", config["prompt_summary"]),
        ("Completed requests", str(m["requests_completed"])),
        ("Failed requests", str(m["requests_failed"])),
        ("Duration (s)", f"{m['duration_s']:.3f}"),
        ("Request throughput (req/s)", f"{m['request_throughput']:.3f}"),
        ("Input tokens", str(m["total_input_tokens"])),
        ("Output tokens", str(m["total_output_tokens"])),
        ("Input throughput (tok/s)", f"{m['input_token_throughput']:.2f}"),
        ("Output throughput (tok/s)", f"{m['output_token_throughput']:.2f}"),
        ("Total throughput (tok/s)", f"{m['total_token_throughput']:.2f}"),
    ]
    width = 64
    lines = ["=" * width, " strata load test ".center(width, "="), "=" * width]
    lines += [f"{k:<30}{v}" for k, v in rows]
    lines.append("-" * width)
    lines.append(f"{'Latency (ms)':<14}{'mean':>10}{'median':>10}{'p90':>10}{'p99':>10}{'count':>10}")
    for key, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("itl_s", "ITL"), ("e2e_s", "E2E")):
        s = m[key]
        lines.append(f"{label:<14}{fmt_ms(s['mean']):>10}{fmt_ms(s['median']):>10}{fmt_ms(s['p90']):>10}"
                     f"{fmt_ms(s['p99']):>10}{s['count']:>10}")
    if m["errors"]:
        lines.append("-" * width)
        lines.append("Errors (count  message):")
        for msg, n in list(m["errors"].items())[:10]:
            lines.append(f"  {n:>5}  {msg}")
        if len(m["errors"]) > 10:
            lines.append(f"  ... and {len(m['errors']) - 10} other messages (see the JSON output)")
    lines.append("=" * width)
    out.write("\n".join(lines) + "\n")
    out.flush()


# ---------------------------------------------------------------------------------------------
# Main


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="loadtest.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Load-test an OpenAI-compatible inference server (strata, vLLM, SGLang, llama.cpp server) "
            "with the same client.", 92) + "\n\n" + textwrap.fill(
            "Each request asks for max_tokens = its output length with ignore_eos and min_tokens "
            "(vLLM's extensions, which strata also takes), so the server generates exactly that many "
            "tokens. Per request it measures TTFT (time to the first chunk with text), every "
            "inter-token latency ITL (time between chunks with text), TPOT = (E2E - TTFT) / "
            "(output tokens - 1) and end-to-end latency E2E; output tokens come from the usage "
            "field when the server sends it, else from the number of chunks. A request that fails "
            "(HTTP error, error event, broken stream, stream without [DONE]) counts as failed.", 92),
        epilog=(
            "examples:\n"
            "  # 200 synthetic requests, 16 at a time, 512 prompt tokens, 128 output tokens\n"
            "  python3 scripts/loadtest.py --base-url http://127.0.0.1:8000 --num-requests 200 \\\n"
            "      --concurrency 16 --input-len 512 --output-len 128 --output-json result.json\n"
            "  # Poisson arrivals at 4 req/s (at most 32 in flight) from a ShareGPT file, chat API\n"
            "  python3 scripts/loadtest.py --endpoint chat --dataset sharegpt.json --request-rate 4 \\\n"
            "      --max-concurrency 32 --num-requests 500\n\n"
            "exit status: 0 every request completed; 3 the run finished but some requests failed;\n"
            "1 the run could not start (server unreachable, bad dataset, no model); 2 bad flags.\n\n"
            "JSON output (--output-json): {\"config\": flags and resolved settings, \"metrics\": "
            "aggregates\n(ttft_s / tpot_s / itl_s / e2e_s with mean, median, p90, p99, min, max, count; "
            "throughputs;\nerror messages with counts), \"warmup\": counts, \"requests\": one record per "
            "request}.\nTimes in the JSON are seconds; the table prints milliseconds."))
    g = p.add_argument_group("server")
    g.add_argument("--base-url", default="http://127.0.0.1:8000",
                   help="server root, with or without a trailing /v1 (default: %(default)s)")
    g.add_argument("--api-key", default=None,
                   help="bearer token sent as 'Authorization: Bearer ...' (default: $OPENAI_API_KEY, else none)")
    g.add_argument("--model", default=None, help="model name to send (default: the first id from GET /v1/models)")
    g.add_argument("--endpoint", choices=("completions", "chat"), default="completions",
                   help="/v1/completions or /v1/chat/completions (default: %(default)s)")
    g.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                   help="socket timeout per request: connect and the wait for each read (default: %(default)s)")
    g = p.add_argument_group("load shape")
    g.add_argument("--num-requests", type=int, default=100, metavar="N", help="measured requests (default: %(default)s)")
    g.add_argument("--concurrency", type=int, default=None, metavar="N",
                   help="fixed concurrency: N requests always in flight (default: 1 when --request-rate is not given)")
    g.add_argument("--request-rate", type=float, default=None, metavar="R",
                   help="Poisson arrivals at R requests/s on average ('inf' sends all at once); "
                        "excludes --concurrency")
    g.add_argument("--max-concurrency", type=int, default=None, metavar="N",
                   help="with --request-rate: at most N requests in flight; later arrivals wait for a slot")
    g.add_argument("--warmup", type=int, default=0, metavar="N",
                   help="requests sent before the measured run and not counted (default: %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="seed for prompts, lengths and arrival times (default: %(default)s)")
    g = p.add_argument_group("prompts")
    g.add_argument("--input-len", type=int, default=128, metavar="TOKENS",
                   help="synthetic prompt length in tokens; exact when the server has POST /tokenize, "
                        "else estimated as one token per word (default: %(default)s)")
    g.add_argument("--output-len", type=int, default=None, metavar="TOKENS",
                   help="tokens to generate per request (default: 128 for synthetic prompts; with --dataset: "
                        "the length of the dataset's gpt reply unless this is given)")
    g.add_argument("--range-ratio", type=float, default=0.0, metavar="F",
                   help="synthetic lengths uniform in [len*(1-F), len*(1+F)] instead of fixed, 0 <= F < 1 "
                        "(default: %(default)s)")
    g.add_argument("--dataset", default=None, metavar="PATH",
                   help="ShareGPT-format JSON: a list of {\"conversations\": [{\"from\": \"human\", \"value\": ...}, "
                        "{\"from\": \"gpt\", \"value\": ...}]}; the first human turn is the prompt; "
                        "conversations longer than the model's context are skipped")
    g.add_argument("--no-tokenize", action="store_true",
                   help="do not call POST /tokenize; estimate one token per word")
    g = p.add_argument_group("requests")
    g.add_argument("--no-stream", action="store_true",
                   help="plain JSON responses instead of SSE (TTFT, TPOT and ITL are then not measured)")
    g.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default: %(default)s)")
    g.add_argument("--no-ignore-eos", action="store_true",
                   help="do not send ignore_eos / min_tokens (for servers that reject unknown fields); "
                        "outputs may then stop early")
    g.add_argument("--extra-body", default="{}", metavar="JSON",
                   help="JSON object merged into every request body, e.g. '{\"top_p\": 0.9}'")
    g = p.add_argument_group("output")
    g.add_argument("--output-json", default=None, metavar="PATH",
                   help="write config, aggregate metrics and per-request records here")
    g.add_argument("--prepare-workers", type=int, default=8, metavar="N",
                   help="threads that build prompts (calls to /tokenize) before the run (default: %(default)s)")
    g.add_argument("--quiet", action="store_true", help="only the final table (no progress lines)")
    args = p.parse_args(argv)

    if args.num_requests < 1:
        p.error("--num-requests must be at least 1")
    if args.request_rate is not None:
        if args.concurrency is not None:
            p.error("--concurrency and --request-rate exclude each other (use --max-concurrency with a rate)")
        if not args.request_rate > 0:
            p.error("--request-rate must be > 0 (or 'inf')")
    elif args.max_concurrency is not None:
        p.error("--max-concurrency goes with --request-rate; for a fixed load use --concurrency")
    if args.request_rate is None and args.concurrency is None:
        args.concurrency = 1
    if args.concurrency is not None and args.concurrency < 1:
        p.error("--concurrency must be at least 1")
    if args.max_concurrency is not None and args.max_concurrency < 1:
        p.error("--max-concurrency must be at least 1")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    if args.input_len < 1:
        p.error("--input-len must be at least 1")
    if args.output_len is not None and args.output_len < 1:
        p.error("--output-len must be at least 1")
    if not 0 <= args.range_ratio < 1:
        p.error("--range-ratio must be in [0, 1)")
    if args.timeout <= 0:
        p.error("--timeout must be > 0")
    if args.prepare_workers < 1:
        p.error("--prepare-workers must be at least 1")
    try:
        args.extra_body = json.loads(args.extra_body)
    except ValueError as e:
        p.error(f"--extra-body is not JSON: {e}")
    if not isinstance(args.extra_body, dict):
        p.error("--extra-body must be a JSON object")
    args.output_len_override = args.output_len
    if args.output_len is None:
        args.output_len = 128
    if args.api_key is None:
        args.api_key = os.environ.get("OPENAI_API_KEY") or None
    return args


def discover(target, args, log):
    """(model name, max_model_len or None) from GET /v1/models."""
    client = JsonClient(target)
    try:
        status, obj, raw = client.call("GET", "/v1/models")
    except (OSError, http.client.HTTPException) as e:
        raise FatalError(describe_connect_error(target, e)) from None
    finally:
        client.close()
    cards = obj.get("data") if status == 200 and isinstance(obj, dict) else None
    cards = [c for c in cards if isinstance(c, dict)] if isinstance(cards, list) else []
    if status in (401, 403):
        raise FatalError(f"GET {target.base_url}/v1/models was refused: {error_text(status, raw)} "
                         f"(pass --api-key or set OPENAI_API_KEY)")
    model = args.model
    if model is None:
        if status != 200:
            raise FatalError(f"GET {target.base_url}/v1/models failed ({error_text(status, raw)}); pass --model")
        if not cards or not isinstance(cards[0].get("id"), str):
            raise FatalError(f"GET {target.base_url}/v1/models listed no models; pass --model")
        model = cards[0]["id"]
    elif status != 200:
        log(f"note: GET /v1/models answered {error_text(status, raw)}; using --model {model}")
    elif cards and model not in [c.get("id") for c in cards]:
        served = ", ".join(str(c.get("id")) for c in cards)
        raise FatalError(f"model {model!r} is not served by {target.base_url} (GET /v1/models lists: {served})")
    max_model_len = None
    for c in cards:
        if c.get("id") == model and isinstance(c.get("max_model_len"), int):
            max_model_len = c["max_model_len"]
    return model, max_model_len


def main(argv=None):
    args = parse_args(argv)
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    try:
        return run(args, log)
    except FatalError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FATAL
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def run(args, log):
    target = Target(args.base_url, args.api_key, args.timeout)
    pairs = load_sharegpt(args.dataset) if args.dataset else None  # bad files fail before any traffic
    model, max_model_len = discover(target, args, log)
    chat = args.endpoint == "chat"
    counter = TokenCounter(target, model, chat, enabled=not args.no_tokenize)
    log(f"server {target.base_url}, model {model}" + (f" (max_model_len {max_model_len})" if max_model_len else "") +
        f"; token counts: {counter.note}")

    total = args.warmup + args.num_requests
    t_prep = time.perf_counter()
    try:
        if pairs is not None:
            prompts, skipped = dataset_prompts(args, counter, total, args.seed, max_model_len, pairs)
            if skipped:
                log(f"skipped {skipped} conversations longer than the context ({max_model_len} tokens)")
            summary = (f"ShareGPT {os.path.basename(args.dataset)} ({len(pairs)} conversations), output len "
                       + (str(args.output_len_override) if args.output_len_override else "from the gpt reply"))
        else:
            prompts = synthetic_prompts(args, counter, total, args.seed)
            summary = f"synthetic, input {args.input_len}, output {args.output_len}" + \
                (f", range ratio {args.range_ratio:g}" if args.range_ratio else "")
            off = [p for p in prompts if p.input_len != p.requested_input_len]
            if counter.available and off:
                worst = max(abs(p.input_len - p.requested_input_len) for p in off)
                log(f"warning: {len(off)} prompts could not be fitted exactly (off by up to {worst} tokens)")
    except (OSError, http.client.HTTPException) as e:
        raise FatalError("while building prompts: " + describe_connect_error(target, e)) from None
    summary += " (token counts exact: /tokenize)" if counter.available else " (token counts estimated: words)"
    if max_model_len and pairs is None:
        too_long = sum(1 for p in prompts if p.input_len + p.output_len > max_model_len)
        if too_long:
            log(f"warning: {too_long} requests exceed the model's context of {max_model_len} tokens "
                "and will likely fail")
    log(f"prepared {total} prompts in {time.perf_counter() - t_prep:.2f} s")

    warmup_records = [RequestRecord(i, p) for i, p in enumerate(prompts[:args.warmup])]
    records = [RequestRecord(i, p) for i, p in enumerate(prompts[args.warmup:])]

    if warmup_records:
        log(f"warmup: {len(warmup_records)} requests")
        t0 = time.perf_counter()
        run_fixed_concurrency(target, args, model, warmup_records,
                              args.concurrency or args.max_concurrency or len(warmup_records), t0)

    log(f"running {len(records)} requests")
    t_origin = time.perf_counter()
    if args.request_rate is None:
        run_fixed_concurrency(target, args, model, records, args.concurrency, t_origin)
    else:
        run_poisson(target, args, model, records, args.request_rate, args.max_concurrency, args.seed, t_origin)
    duration_s = time.perf_counter() - t_origin

    # A server that was never reachable gives only connection errors: say so plainly.
    if all(not r.ok for r in records) and all((r.error or "").startswith("cannot") for r in records):
        raise FatalError(records[0].error)

    metrics = aggregate(records, duration_s)
    config = {
        "base_url": target.base_url,
        "model": model,
        "max_model_len": max_model_len,
        "endpoint": args.endpoint,
        "endpoint_path": "/v1/chat/completions" if chat else "/v1/completions",
        "no_stream": args.no_stream,
        "num_requests": args.num_requests,
        "concurrency": args.concurrency,
        "request_rate": args.request_rate if args.request_rate is None or math.isfinite(args.request_rate) else "inf",
        "max_concurrency": args.max_concurrency,
        "warmup": args.warmup,
        "seed": args.seed,
        "input_len": args.input_len if pairs is None else None,
        "output_len": args.output_len if (pairs is None or args.output_len_override) else None,
        "range_ratio": args.range_ratio,
        "dataset": args.dataset,
        "temperature": args.temperature,
        "ignore_eos": not args.no_ignore_eos,
        "extra_body": args.extra_body,
        "token_counting": counter.note,
        "tokenize_used": counter.available,
        "prompt_summary": summary,
        "api_key_set": bool(args.api_key),
    }
    print_report(dict(config, request_rate=args.request_rate), metrics, sys.stdout)
    if args.output_json:
        warm_ok = [r for r in warmup_records if r.ok]
        doc = {
            "config": config,
            "metrics": metrics,
            "warmup": {"requests": len(warmup_records), "completed": len(warm_ok),
                       "failed": len(warmup_records) - len(warm_ok),
                       "input_tokens": sum(r.input_tokens or 0 for r in warm_ok),
                       "output_tokens": sum(r.output_tokens or 0 for r in warm_ok)},
            "requests": [r.to_json() for r in records],
        }
        try:
            with open(args.output_json, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1, allow_nan=False, default=str)
                f.write("\n")
        except (OSError, ValueError) as e:
            raise FatalError(f"cannot write {args.output_json}: {e}") from None
        log(f"wrote {args.output_json}")
    return EXIT_OK if metrics["requests_failed"] == 0 else EXIT_FAILED_REQUESTS


if __name__ == "__main__":
    sys.exit(main())
