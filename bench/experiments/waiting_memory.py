#!/usr/bin/env python3
"""Server bytes per waiting HTTP/1.1 request, scenario 2's method, for variants of the server's
settings: VmHWM when /healthz first shows all N requests in flight, minus VmHWM after start-up,
over N. The N requests (a connection each) come from the ceiling's client (bench/limit), so the
figure is the server's alone. They ask for 5 s rather than scenario 2's 1 s: a waiting request
holds the same state either way, and on a busy machine the last connections can take longer
than 1 s to open, so that with 1 s the first answers go out before all N are in flight.

    bench/experiments/waiting_memory.py [--n 10000] [--rounds 3] [--variant NAME=ENV ...]
                                        [--slowlab PATH] [--out FILE.json]

A variant is a name and environment settings for the server, e.g. `tcache=_RJEM_MALLOC_CONF=
tcache:false` (jemalloc's options, read at start-up). Resident memory is counted, not timed, so
the figure barely moves with the machine's load. Standard library only."""

import argparse
import json
import os
import statistics
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from common import ROOT, free_port, server, write_results

LIMIT = str(ROOT / "target" / "limit" / "release" / "slowlab-limit")


def hwm_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def in_flight(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
        return json.loads(r.read()).get("in_flight", 0)


def one_run(binary, n, env):
    port = free_port()
    full_env = {**os.environ, **env}
    with server([binary, "serve", "--port", str(port)], port, env=full_env) as serving:
        time.sleep(0.2)
        before = hwm_kb(serving.pid)
        waiting = {}

        def watch():
            while "kb" not in waiting and not waiting.get("stop"):
                try:
                    if in_flight(port) >= n:
                        waiting["kb"] = hwm_kb(serving.pid)
                        return
                except OSError:
                    pass
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        out = subprocess.run(["taskset", "-c", "0", LIMIT, "fetch", f"http://127.0.0.1:{port}/5",
                              str(n), str(n)], capture_output=True, text=True, check=True).stdout
        waiting["stop"] = True
        watcher.join()
        if f'"ok":{n}' not in out:
            raise RuntimeError(f"not every request succeeded: {out}")
        if "kb" not in waiting:
            return None
        return (waiting["kb"] - before) * 1000 / n


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME=VAR=VALUE: a server environment setting to compare")
    parser.add_argument("--slowlab", default=str(ROOT / "target" / "release" / "slowlab"))
    parser.add_argument("--out")
    args = parser.parse_args()
    variants = {"default": {}}
    for v in args.variant:
        name, var, value = v.split("=", 2)
        variants[name] = {var: value}
    runs = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, env in variants.items():  # interleaved: every variant once per round
            runs[name].append(one_run(args.slowlab, args.n, env))
    medians = {name: statistics.median([r for r in rs if r is not None] or [0])
               for name, rs in runs.items()}
    write_results("waiting_memory", args.n, {
        "slowlab": os.path.relpath(args.slowlab, ROOT), "variants": variants,
        "bytes_per_waiting_request": runs, "medians": medians}, args.out)


if __name__ == "__main__":
    main()
