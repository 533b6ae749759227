#!/usr/bin/env python3
"""Scenario 4's clients, CPU time split: slowlab fetch and oha, each sending the same requests
to the bare hyper server, in interleaved rounds after a warm-up round.

    bench/experiments/client_cpu.py [--n 200000] [--rounds 3] [--out FILE.json]

Client on CPU 0, server on CPU 1, as bench/run pins them. For each run: wall time, the client's
user and system (kernel) CPU time and its context switches, from wait4's rusage. Needs the
release build, the bare_hyper example and oha (bench/run installs it under bench/.work/oha).
Standard library only."""

import argparse
import os
import statistics
import subprocess
import time

from common import ROOT, free_port, server, write_results


def client_cmd(name, n, url):
    if name == "slowlab fetch":
        return [str(ROOT / "target/release/slowlab"), "fetch", "--count", str(n), "--delay", "0",
                "--concurrency", "50", "--output", "json", "--no-outcomes", "--quiet",
                "--base-url", url]
    return [str(ROOT / "bench/.work/oha/bin/oha"), "-n", str(n), "-c", "50", "--no-tui",
            "--output-format", "json", url + "/0"]


def one_run(name, n, url):
    start = time.perf_counter()
    proc = subprocess.Popen(["taskset", "-c", "0", *client_cmd(name, n, url)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed")
    return {"wall": wall, "rate": n / wall, "user": usage.ru_utime, "system": usage.ru_stime,
            "voluntary_switches": usage.ru_nvcsw, "involuntary_switches": usage.ru_nivcsw}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()
    port = free_port()
    clients = ["slowlab fetch", "oha"]
    runs = {c: [] for c in clients}
    with server([str(ROOT / "target/release/examples/bare_hyper"), str(port)], port):
        for rnd in range(args.rounds + 1):
            for name in clients[rnd % 2:] + clients[:rnd % 2]:
                result = one_run(name, args.n, f"http://127.0.0.1:{port}")
                if rnd:
                    runs[name].append(result)
    write_results("client_cpu", args.n, {
        "runs": runs,
        "medians": {c: {k: statistics.median(r[k] for r in v) for k in v[0]}
                    for c, v in runs.items()}}, args.out)


if __name__ == "__main__":
    main()
