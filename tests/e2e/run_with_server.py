#!/usr/bin/env python3
"""Starts `strata serve` (flags before `--`), runs a client command (after `--`) with
STRATA_URL, STRATA_PORT and STRATA_MODEL_NAME in its environment, then stops the server with
SIGTERM and requires exit status 0. The client's exit status is the test's (77: skipped).

    run_with_server.py [serve flags...] -- command [args...]
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import strata_e2e  # noqa: E402


def main():
    if "--" not in sys.argv:
        sys.exit("usage: run_with_server.py [serve flags] -- command [args]")
    sep = sys.argv.index("--")
    flags, command = sys.argv[1:sep], sys.argv[sep + 1:]
    server = strata_e2e.Server(*flags)
    env = dict(os.environ, STRATA_URL=server.url, STRATA_PORT=str(server.port),
               STRATA_MODEL_NAME=os.path.basename(os.path.normpath(server.model)))
    try:
        rc = subprocess.call(command, env=env)
    finally:
        server_rc = server.stop()
    if rc not in (0, strata_e2e.SKIP) or server_rc != 0:
        sys.stderr.write("---- server log (tail) ----\n" + server.log_text()[-6000:] + "\n")
    if server_rc != 0:
        print(f"FAIL: strata serve exited with {server_rc} after SIGTERM", flush=True)
        sys.exit(1)
    sys.exit(rc)


if __name__ == "__main__":
    main()
