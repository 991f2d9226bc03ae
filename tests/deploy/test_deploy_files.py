#!/usr/bin/python3
"""The deployment files under deploy/ (Compose, Kubernetes, nginx) and the Dockerfile agree with
the server: every YAML file parses; the Kubernetes Deployment asks for a GPU, probes /ready and
/health, runs as non-root and gives the drain time to finish; every Compose service of strata
reserves a GPU, has a health check, runs as non-root and waits for the drain before SIGKILL;
every STRATA_* variable they name is a flag of `strata serve --help`; nginx streams unbuffered
and never retries a request it has already sent.

Usage: test_deploy_files.py STRATA_BINARY [--root SOURCE_DIR]
Runs with Debian's /usr/bin/python3 (PyYAML)."""
import os
import re
import subprocess
import sys

try:
    import yaml
except ImportError:
    sys.exit("test_deploy_files.py needs PyYAML: apt-get install python3-yaml (Debian)")

# After the grace period `strata serve` gives aborted requests up to 3 s for their last bytes
# (server/cli_serve.cpp); SIGKILL must come after grace + this.
DRAIN_TAIL_S = 3
ENV_NAME = re.compile(r"\bSTRATA_[A-Z0-9_]*[A-Z0-9]\b")


class Checks:
    def __init__(self):
        self.failures = []
        self.passed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
            print(f"ok: {what}")
        else:
            self.failures.append(what)
            print(f"FAIL: {what}")
        return ok


def serve_flags(strata):
    r = subprocess.run([strata, "serve", "--help"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        sys.exit(f"{strata} serve --help exited {r.returncode}: {r.stderr}")
    flags = set(re.findall(r"^\s+--([a-z0-9][a-z0-9-]*)", r.stdout, re.MULTILINE))
    if not flags:
        sys.exit(f"no --flag lines in `{strata} serve --help`:\n{r.stdout}")
    return flags


def env_to_flag(name):
    return name[len("STRATA_"):].lower().replace("_", "-")


def resolve(value):
    """A Compose value with ${VAR:-default} / ${VAR-default} interpolation, at its defaults."""
    if not isinstance(value, str):
        return value
    if re.search(r"\$\{[^}:-]*\}", value):
        raise ValueError(f"{value!r} has no default")
    return re.sub(r"\$\{[A-Za-z0-9_]+:?-([^}]*)\}", r"\1", value)


def seconds(duration):
    """Compose durations ("30s", "1m30s", "500ms", "1h") or plain numbers, in seconds."""
    if isinstance(duration, (int, float)):
        return float(duration)
    text = str(duration).strip()
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {duration!r}")
    return sum(float(n) * units[u] for n, u in parts)


def non_root_user(user):
    """Compose `user:` ("uid", "uid:gid", "name"): set, and neither root by name nor uid 0."""
    if user is None:
        return False
    uid = str(user).split(":")[0]
    return uid not in ("", "0", "root")


def compose_env(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def load_yaml_files(root, c):
    docs = {}
    for dirpath, _, names in os.walk(os.path.join(root, "deploy")):
        for name in sorted(names):
            if not name.endswith((".yml", ".yaml")):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            try:
                with open(path) as f:
                    docs[rel] = [d for d in yaml.safe_load_all(f) if d is not None]
                c.check(True, f"{rel} parses")
            except yaml.YAMLError as e:
                c.check(False, f"{rel} parses: {e}")
    return docs


def is_strata_service(service):
    image = str(service.get("image", ""))
    return "build" in service or image.split(":")[0].split("/")[-1] == "strata"


def check_compose(rel, doc, c):
    services = {name: s for name, s in doc["services"].items() if is_strata_service(s)}
    c.check(bool(services), f"{rel}: has a strata service")
    for name, s in services.items():
        where = f"{rel}: service {name}"
        devices = (((s.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices") or []
        c.check(any(d.get("driver") == "nvidia" and "gpu" in (d.get("capabilities") or []) for d in devices),
                f"{where} reserves an nvidia GPU (deploy.resources.reservations.devices)")
        test = (s.get("healthcheck") or {}).get("test")
        c.check(bool(test) and test != ["NONE"] and not (s.get("healthcheck") or {}).get("disable"),
                f"{where} has a healthcheck")
        c.check(non_root_user(s.get("user")), f"{where} runs as a non-root user (user: {s.get('user')!r})")
        env = compose_env(s)
        try:
            grace = float(resolve(env.get("STRATA_SHUTDOWN_GRACE_S", "10")))
            stop = seconds(s.get("stop_grace_period", "10s"))
            c.check(stop > grace + DRAIN_TAIL_S,
                    f"{where}: stop_grace_period {stop:g} s > STRATA_SHUTDOWN_GRACE_S {grace:g} s + {DRAIN_TAIL_S} s")
        except ValueError as e:
            c.check(False, f"{where}: stop_grace_period vs STRATA_SHUTDOWN_GRACE_S: {e}")
        # `strata serve` refuses a --max-connections above the open-file limit less 64.
        nofile = (s.get("ulimits") or {}).get("nofile")
        nofile = nofile.get("hard") if isinstance(nofile, dict) else nofile
        max_connections = int(resolve(env.get("STRATA_MAX_CONNECTIONS", "0")) or 0)
        if nofile and max_connections > 0:
            c.check(max_connections <= int(nofile) - 64,
                    f"{where}: STRATA_MAX_CONNECTIONS {max_connections} <= ulimits nofile {nofile} - 64")
    if len(services) > 1:
        ids = [tuple(d.get("device_ids") or ()) for s in services.values()
               for d in (((s.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices") or []]
        c.check(all(ids) and len(set(ids)) == len(ids), f"{rel}: each replica pinned to its own GPU (device_ids {ids})")
    return [name for s in services.values() for name in compose_env(s)]


def http_get_path(probe):
    return ((probe or {}).get("httpGet") or {}).get("path")


def pre_stop_sleep_s(container):
    command = ((((container.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command")) or []
    if len(command) == 2 and command[0].endswith("sleep"):
        return float(command[1])
    sleep = (((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds")
    return float(sleep or 0)


def check_deployment(rel, doc, c):
    names = []
    pod = doc["spec"]["template"]["spec"]
    where = f"{rel}: Deployment {doc['metadata']['name']}"
    containers = [k for k in pod["containers"] if any(ENV_NAME.fullmatch(e.get("name", "")) for e in k.get("env") or [])]
    c.check(bool(containers), f"{where} has a container configured by STRATA_* env")
    for k in containers:
        cwhere = f"{where}, container {k['name']}"
        env = {e["name"]: e.get("value") for e in k.get("env") or []}
        names += list(env)
        gpus = ((k.get("resources") or {}).get("limits") or {}).get("nvidia.com/gpu")
        c.check(gpus is not None and int(gpus) >= 1, f"{cwhere}: resources.limits nvidia.com/gpu >= 1 ({gpus!r})")
        c.check(http_get_path(k.get("readinessProbe")) == "/ready", f"{cwhere}: readinessProbe httpGet /ready")
        c.check(http_get_path(k.get("livenessProbe")) == "/health", f"{cwhere}: livenessProbe httpGet /health")
        c.check(http_get_path(k.get("startupProbe")) is not None, f"{cwhere}: has an httpGet startupProbe (model load)")
        grace = float(env.get("STRATA_SHUTDOWN_GRACE_S") or 10)
        pre_stop = pre_stop_sleep_s(k)
        term = pod.get("terminationGracePeriodSeconds", 30)
        c.check(term > grace + DRAIN_TAIL_S + pre_stop,
                f"{cwhere}: terminationGracePeriodSeconds {term} > STRATA_SHUTDOWN_GRACE_S {grace:g} + "
                f"{DRAIN_TAIL_S} + preStop sleep {pre_stop:g}")
        sc = {**(pod.get("securityContext") or {}), **(k.get("securityContext") or {})}
        c.check(sc.get("runAsNonRoot") is True, f"{cwhere}: runAsNonRoot: true")
        uid = sc.get("runAsUser")
        c.check(isinstance(uid, int) and uid > 0, f"{cwhere}: runAsUser is a non-zero uid ({uid!r})")
    return names


def check_service(rel, doc, c):
    ports = {p.get("name"): p.get("port") for p in doc["spec"].get("ports") or []}
    c.check(ports.get("http") == 8000 and ports.get("grpc") == 50051,
            f"{rel}: Service {doc['metadata']['name']} has ports http 8000 and grpc 50051 ({ports})")


def check_nginx(path, rel, c):
    with open(path) as f:
        conf = re.sub(r"#[^\n]*", "", f.read())
    c.check("non_idempotent" not in conf, f"{rel}: does not list non_idempotent (a sent POST is never retried)")
    c.check(re.search(r"\bproxy_buffering\s+off\s*;", conf) is not None and
            re.search(r"\bproxy_buffering\s+on\s*;", conf) is None, f"{rel}: proxy_buffering off (SSE)")
    upstreams = re.findall(r"\bupstream\s+(\S+)\s*\{([^}]*)\}", conf)
    c.check(bool(upstreams), f"{rel}: has upstream blocks")
    for name, block in upstreams:
        c.check(re.search(r"\bleast_conn\s*;", block) is not None, f"{rel}: upstream {name} uses least_conn")
        servers = re.findall(r"\bserver\s+([^;]+);", block)
        c.check(len(servers) >= 2 and all("max_fails=" in s for s in servers),
                f"{rel}: upstream {name} has several servers, each with max_fails (passive health)")
    for directive in ("proxy_next_upstream", "grpc_next_upstream"):
        for args in re.findall(rf"\b{directive}\s+([^;]*);", conf):
            c.check(set(args.split()) <= {"error", "timeout"},
                    f"{rel}: {directive} retries connection errors and timeouts only ({args.strip()})")
    timeouts = [seconds(t) for t in re.findall(r"\bproxy_read_timeout\s+([^;\s]+)\s*;", conf)]
    c.check(bool(timeouts) and min(timeouts) >= 300, f"{rel}: proxy_read_timeout >= 300 s for long streams {timeouts}")


def dockerfile_runtime_stage(root):
    with open(os.path.join(root, "Dockerfile")) as f:
        text = f.read()
    return text[[m.start() for m in re.finditer(r"^FROM\s", text, re.MULTILINE)][-1]:]


def check_dockerfile(stage, c):
    users = re.findall(r"^USER\s+(\S+)", stage, re.MULTILINE)
    c.check(bool(users) and non_root_user(users[-1]), f"Dockerfile: the runtime stage runs as non-root (USER {users})")
    c.check(re.search(r"^HEALTHCHECK\s", stage, re.MULTILINE) is not None, "Dockerfile: the runtime stage has a HEALTHCHECK")


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    strata = args[0]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if "--root" in args:
        root = args[args.index("--root") + 1]
    c = Checks()
    flags = serve_flags(strata)
    valid_env = {f for f in flags if f != "help"} | {"config"}

    named = []
    docs = load_yaml_files(root, c)
    saw = {"compose": 0, "deployment": 0, "service": 0}
    for rel, file_docs in docs.items():
        for doc in file_docs:
            if isinstance(doc, dict) and "services" in doc:
                saw["compose"] += 1
                named += check_compose(rel, doc, c)
            elif isinstance(doc, dict) and doc.get("kind") == "Deployment":
                saw["deployment"] += 1
                named += check_deployment(rel, doc, c)
            elif isinstance(doc, dict) and doc.get("kind") == "Service":
                saw["service"] += 1
                check_service(rel, doc, c)
    for what, count in saw.items():
        c.check(count > 0, f"deploy/ has a {what} definition ({count})")

    nginx_confs = []
    for dirpath, _, names in os.walk(os.path.join(root, "deploy")):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, errors="replace") as f:
                named += ENV_NAME.findall(f.read())
            if name == "nginx.conf":
                nginx_confs.append(path)
    c.check(bool(nginx_confs), "deploy/ has an nginx.conf")
    for path in nginx_confs:
        check_nginx(path, os.path.relpath(path, root), c)

    stage = dockerfile_runtime_stage(root)
    named += ENV_NAME.findall(stage)
    check_dockerfile(stage, c)

    for name in sorted({n for n in named if ENV_NAME.fullmatch(n)}):
        c.check(env_to_flag(name) in valid_env, f"{name} is a `strata serve` flag (--{env_to_flag(name)})")

    print(f"deploy files: {c.passed} passed, {len(c.failures)} failed")
    if c.failures:
        print("failed:\n  " + "\n  ".join(c.failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
