#!/usr/bin/env python3
"""One runtime worker or two, for a server pinned to one CPU (issue 23): two slowlab builds that
differ only in that, raced in interleaved rounds on scenario 3's work (wrk, `GET /0`, 50
keep-alive connections; the server on CPU 1, wrk on CPU 0) and on scenario 9a's (the proxy's
latency at 10,000 requests a second, open loop, through each build's proxy in front of one
upstream). Bare hyper, one worker when pinned like any `#[tokio::main]` program, runs in the same
rounds as the reference.

  bench/experiments/one_worker.py --before OLD_SLOWLAB --after NEW_SLOWLAB --out FILE.json
"""

import argparse
import json
import re
import statistics
import subprocess

from common import ROOT, free_port, server, write_results

BARE_HYPER = ROOT / "target" / "release" / "examples" / "bare_hyper"


def wrk_rps(port, seconds):
    out = subprocess.run(["taskset", "-c", "0", "wrk", "-t1", "-c50", f"-d{seconds}s",
                          f"http://127.0.0.1:{port}/0"], capture_output=True, text=True,
                         check=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def serve_cmd(binary, port):
    if binary == "bare hyper":
        return [str(BARE_HYPER), str(port)]
    return [binary, "serve", "--port", str(port)]


def proxy_p99(binary, fetcher, upstream_port, rate, seconds):
    """p99 and p50 latency in ms of `fetch --rate` through `binary`'s proxy."""
    port = free_port()
    cmd = [binary, "proxy", "--listen", f"127.0.0.1:{port}", "--upstream",
           f"http://127.0.0.1:{upstream_port}"]
    with server(cmd, port):
        out = subprocess.run(["taskset", "-c", "0", fetcher, "fetch", "--rate", str(rate),
                              "--duration", f"{seconds}s", "--connections", "32", "--output",
                              "json", "--no-outcomes", "--quiet", "--base-url",
                              f"http://127.0.0.1:{port}", "0"], capture_output=True, text=True,
                             check=True).stdout
    latency = json.loads(out)["summary"]["latency"]
    return latency["p99"] * 1000, latency["p50"] * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="slowlab with two workers when pinned")
    parser.add_argument("--after", required=True, help="slowlab with one worker when pinned")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()

    builds = {"before (2 workers)": args.before, "after (1 worker)": args.after,
              "bare hyper": "bare hyper"}
    rps = {name: [] for name in builds}
    for rnd in range(args.rounds + 1):
        order = list(builds)[rnd % 3:] + list(builds)[:rnd % 3]
        for name in order:
            port = free_port()
            with server(serve_cmd(builds[name], port), port):
                value = wrk_rps(port, args.seconds)
            if rnd:  # round 0 warms up
                rps[name].append(value)
    ratios = [a / b for a, b in zip(rps["after (1 worker)"], rps["before (2 workers)"])]
    to_hyper = {name: statistics.median(a / b for a, b in zip(rps[name], rps["bare hyper"]))
                for name in builds if name != "bare hyper"}

    latency = {name: [] for name in list(builds)[:2]}
    upstream = free_port()
    with server([args.after, "serve", "--port", str(upstream)], upstream, cpu=1):
        for rnd in range(args.rounds + 1):
            order = list(latency) if rnd % 2 else list(latency)[::-1]
            for name in order:
                value = proxy_p99(builds[name], args.after, upstream, 10000, args.seconds)
                if rnd:
                    latency[name].append(value)

    write_results("one_worker", args.rounds, {
        "method": "wrk -t1 -c50 GET /0 for each build's serve and bare hyper on CPU 1, wrk on "
                  "CPU 0, rotated order, round 0 discarded; then each build's proxy (CPU 1, "
                  "beside one upstream serve) under fetch --rate 10000 on 32 connections",
        "rps": rps,
        "medians_rps": {name: statistics.median(v) for name, v in rps.items()},
        "median_ratio_after_over_before": statistics.median(ratios),
        "median_ratio_to_bare_hyper": to_hyper,
        "proxy_latency_ms_p99_p50": latency,
        "medians_proxy_p99_ms": {name: statistics.median(v[0] for v in runs)
                                 for name, runs in latency.items()},
    }, args.out)


if __name__ == "__main__":
    main()
