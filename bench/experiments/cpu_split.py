#!/usr/bin/env python3
"""Where scenario 2's time goes: N concurrent requests of 1 s over HTTP/1.1, a connection each,
with the client's and the server's CPU time split into user and system (kernel) time.

    bench/experiments/cpu_split.py [--n 10000] [--rounds 3] [--out FILE.json]

Client on CPU 0, server on CPU 1, as bench/run pins them. CPU times come from the kernel
(wait4's rusage for the client, /proc/PID/stat for the server), so unlike wall time they do not
depend much on what else runs. Standard library only."""

import argparse
import json
import os
import resource
import statistics
import subprocess
import time

from common import ROOT, free_port, proc_cpu, server, write_results



def one_run(binary, n):
    port = free_port()
    with server([binary, "serve", "--port", str(port)], port) as serving:
        before = proc_cpu(serving.pid)
        start = time.perf_counter()
        client = subprocess.Popen(
            ["taskset", "-c", "0", binary, "fetch", "--count", str(n), "--delay", "1", "--mode",
             "async", "--output", "json", "--no-outcomes", "--quiet", "--base-url",
             f"http://127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out = client.stdout.read()
        _, status, usage = os.wait4(client.pid, 0)
        wall = time.perf_counter() - start
        after = proc_cpu(serving.pid)
    summary = json.loads(out)["summary"]
    if os.waitstatus_to_exitcode(status) != 0 or summary["ok"] != n:
        raise SystemExit(f"run failed: {summary['ok']}/{n} ok")
    return {"wall_process": wall, "wall_fetch": summary["wall"],
            "client_user": usage.ru_utime, "client_system": usage.ru_stime,
            "server_user": after[0] - before[0], "server_system": after[1] - before[1],
            "client_voluntary_switches": usage.ru_nvcsw}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "slowlab"))
    parser.add_argument("--out")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 2 * args.n + 1000), hard))
    one_run(args.binary, min(args.n, 100))  # warm-up, discarded
    runs = [one_run(args.binary, args.n) for _ in range(args.rounds)]
    write_results("cpu_split", args.n, {
        "runs": runs,
        "medians": {k: statistics.median(r[k] for r in runs) for k in runs[0]}}, args.out)


if __name__ == "__main__":
    main()
