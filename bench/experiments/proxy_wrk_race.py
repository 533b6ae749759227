#!/usr/bin/env python3
"""Scenario 9b's shape on the wall clock, for two or more slowlab builds: wrk through each
build's proxy in interleaved rounds, a side check beside proxy_cpu.py's instruction counts.

    bench/experiments/proxy_wrk_race.py --bin PATH --bin PATH [--rounds 4] [--seconds 5]
                                        [--serve] [--out FILE.json]

As in 9b: the upstream is the bare hyper example on CPU 0 with the client (`wrk -t1 -c50`, GET
/0); each proxy (`slowlab proxy`, no rule, no log) runs pinned to CPU 1, all of them started
at once and idle but for the one being loaded. The builds take turns in each round, in an order
rotated every round, so that a change of the machine's load falls on all of them. Requests per
second depend on that load (the load average at the end is written down): the figures are a
side check, not a measure. Beside them, each proxy's CPU time (user and system, from /proc)
over the requests wrk completed: microseconds per request, which contention changes less than
the rate. With `--serve`, scenario 3's shape instead: wrk loads each build's `slowlab serve`
itself, and bare hyper takes its turn in the same rounds as the reference, all on CPU 1. Needs
wrk and the bare_hyper example. Standard library only."""

import argparse
import re
import statistics
import subprocess
from contextlib import ExitStack
from pathlib import Path

from common import ROOT, free_port, proc_cpu, server, shown_binaries, write_results


def wrk(port, seconds):
    """Requests per second of one wrk run against `port`, requests completed, and errors."""
    out = subprocess.run(["taskset", "-c", "0", "wrk", "-t1", "-c50", f"-d{seconds}s",
                          f"http://127.0.0.1:{port}/0"], capture_output=True, text=True,
                         check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    done = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    return rate, done, errors.group(0) if errors else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", action="append", required=True)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--serve", action="store_true",
                        help="load each build's serve, and bare hyper, instead of their proxies")
    parser.add_argument("--out")
    args = parser.parse_args()
    bins = {Path(b).name: Path(b) for b in args.bin}
    bare_hyper = ROOT / "target/release/examples/bare_hyper"
    if args.serve:
        bins["bare_hyper"] = bare_hyper
    rates = {name: [] for name in bins}
    errors = {name: [] for name in bins}
    cpu_us = {name: [] for name in bins}
    up_port = free_port()
    def command(binary, port):
        if binary == bare_hyper:
            return [str(binary), str(port)]
        if args.serve:
            return [str(binary), "serve", "--port", str(port)]
        return [str(binary), "proxy", "--listen", f"127.0.0.1:{port}", "--upstream",
                f"http://127.0.0.1:{up_port}"]

    with ExitStack() as stack:
        if not args.serve:
            stack.enter_context(server([str(bare_hyper), str(up_port)], up_port, cpu=0))
        ports, pids = {}, {}
        for name, binary in bins.items():
            ports[name] = free_port()
            pids[name] = stack.enter_context(server(command(binary, ports[name]), ports[name],
                                                    cpu=1)).pid
        for name in bins:  # warm-up: the connections to the upstream, the allocator
            wrk(ports[name], 1)
        for rnd in range(args.rounds):
            names = list(bins)
            names = names[rnd % len(names):] + names[:rnd % len(names)]
            for name in names:
                before = sum(proc_cpu(pids[name]))
                rate, done, err = wrk(ports[name], args.seconds)
                used = sum(proc_cpu(pids[name])) - before
                rates[name].append(round(rate))
                errors[name].append(err)
                cpu_us[name].append(round(used / done * 1e6, 2))
                print(f"round {rnd}: {name}: {rate:,.0f} req/s, {cpu_us[name][-1]} us CPU "
                      f"per request", flush=True)
    first = next(iter(bins))
    write_results("serve_wrk_race" if args.serve else "proxy_wrk_race", args.rounds, {
        "binaries": shown_binaries(bins),
        "seconds": args.seconds,
        "rps": rates,
        "errors": errors,
        "rps_median": {name: statistics.median(v) for name, v in rates.items()},
        "cpu_us_per_request": cpu_us,
        "cpu_us_per_request_median": {name: statistics.median(v) for name, v in cpu_us.items()},
        "over_first_by_round": {name: [round(a / b, 3) for a, b in zip(v, rates[first])]
                                for name, v in rates.items() if name != first},
    }, args.out)


if __name__ == "__main__":
    main()
