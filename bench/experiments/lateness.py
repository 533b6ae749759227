#!/usr/bin/env python3
"""Timer lateness at 10,000 in flight (scenario 6), slowlab serve against the ceiling: is the
p99 a property of the workload on one core, which the least work a server can do shows too, or
slowlab serve's own?

    bench/experiments/lateness.py [--rounds 5] [--n 10000] [--slowlab BINARY]
                                  [--variant NAME=COMMAND ...] [--rps-count 200000]
                                  [--shared] [--out FILE.json]

The workload is scenario 6's: N concurrent `GET /1` over HTTP/1.1, one connection each, sent by
`slowlab fetch --count N --delay 1 --mode async` on CPU 0 to a server on CPU 1, a fresh server
for every run. The contenders are slowlab serve (--slowlab, target/release/slowlab by default),
the ceiling (bench/limit's epoll server, --limit, target/limit by default), any --variant:
another slowlab binary or flag to race against the first (a lever), given as NAME=COMMAND, where
COMMAND is the binary, with KEY=VALUE words before it set in its environment (as in a shell) and
flags for `serve` after it (`NAME=target/release/slowlab --workers 2`), and any
--ceiling-variant: another build of the ceiling, NAME=BINARY. They run in rounds, each
running every contender once, the order rotated by one each round, after one warm-up round that
is not counted. With --shared nothing is pinned: server and client share every CPU (the machine's
own shape, for a server that runs several threads on purpose).

Per run:
- the server's lateness: slowlab serve's `slowlab_lateness_seconds` histogram from /metrics
  (its quantiles are the upper bounds of the buckets they fall in: the time from the request
  counted in to the sleeping task resumed, minus the wait); the ceiling's exact values from
  `GET /lateness` (each delayed answer's writing time minus its request's reading time plus the
  wait);
- what the client saw, the same for every server: each request's latency from slowlab fetch's
  JSON outcomes (`end - start`, connection setup included) minus the 1 s asked for, exact
  quantiles; its wall (scenario 2's figure at N = 10,000);
- the shape of the arrivals and answers, from the same outcomes: how long the client took to
  have all N connections made (`start + connect`, first to last) and how long the answers took
  to arrive (`first_byte`, first to last). If the server writes the answers more slowly than it
  read the requests, the answers' span is the longer one and the lateness grows along it. And
  the most requests sent within one millisecond and within 10 ms (by `start + connect`): the
  bunches whose waits end together a second later, if the server reads them as they come;
- the server's CPU time (user + kernel, /proc/PID/stat) over the run, and how many times the
  kernel took its CPU from it (involuntary context switches of all its threads,
  /proc/PID/task/*/status): on a busy machine another program on the server's core makes
  lateness of its own, and a server with two threads (slowlab serve's two runtime workers) gets
  a larger share of a contended core than one with one (the ceiling);
- the 1-minute load average when the run started.

With --rps-count C (0 to skip), every round also measures each slowlab binary's `GET /0`
throughput, C requests over 50 keep-alive connections from the ceiling's client on CPU 0
(scenario 4's shape, the cheapest client, so the server is what is measured): a lever must not
cost throughput.

Medians over the rounds, and for each variant its figures over the first slowlab binary's,
round by round; "levers" gives each variant's figures and a verdict by the rule in
"lever_rule" (a p99 lower in every round and at most half, wall and throughput within 5%). The
machine may be busy: compare figures within one run only. Standard library only; needs taskset
and both release builds."""

import argparse
import json
import math
import os
import re
import shlex
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

from common import ROOT, free_port, proc_cpu, server, write_results

LIMIT = str(ROOT / "target" / "limit" / "release" / "slowlab-limit")
SLOWLAB = str(ROOT / "target" / "release" / "slowlab")
CEILING = "ceiling"
CEILINGS = {CEILING}
# Where the server and the client run: the server on CPU 1 and the client on CPU 0 (scenario 6's
# shape), or both on every CPU (--shared).
SHAPE = {"shared": False, "server_cpu": 1}
QUANTILES = {"p50": 0.5, "p99": 0.99, "p99_9": 0.999, "max": 1.0}
# A lever is kept only if it clearly lowers the p99 without costing scenario 2's wall or /0's
# throughput: these bars.
CLEARLY, WALL_BAR, RPS_BAR = 0.5, 1.05, 0.95


def exact(values):
    """Nearest-rank quantiles (the smallest value with at least q of all at or below it)."""
    values = sorted(values)
    if not values:
        return None
    n = len(values)
    return {"count": n, **{k: values[min(n, max(1, math.ceil(round(q * n, 6)))) - 1]
                           for k, q in QUANTILES.items()}}


def histogram(text, name):
    """Cumulative Prometheus buckets of `name` -> the upper bound each quantile falls in."""
    buckets = {}
    for line in text.splitlines():
        m = re.match(name + r'_bucket\{.*le="([^"]+)".*\}\s+([\d.eE+-]+)', line)
        if m:
            bound = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets[bound] = buckets.get(bound, 0) + float(m.group(2))
    if not buckets or not buckets[max(buckets)]:
        return None
    total = buckets[max(buckets)]
    return {"count": int(total), **{k: next(b for b in sorted(buckets) if buckets[b] >= q * total)
                                    for k, q in QUANTILES.items()}}


def http_get(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()


def preempted(pid):
    """Involuntary context switches of all the process's threads: times the kernel took the
    CPU from the server (another program on its core) rather than the server waiting."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            m = re.search(r"nonvoluntary_ctxt_switches:\s+(\d+)", status.read_text())
        except OSError:
            continue
        total += int(m.group(1)) if m else 0
    return total


def command(spec):
    """NAME=COMMAND -> (name, argv, env): KEY=VALUE words before the binary go to its env, words
    after it are flags for `serve` (a slowlab variant's)."""
    name, _, rest = spec.partition("=")
    words = shlex.split(rest)
    env = dict(os.environ)
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    if not name or not words:
        raise SystemExit(f"--variant wants NAME=[KEY=VALUE ...] BINARY [FLAGS ...], not {spec!r}")
    return name, words, env


def busiest(times, width):
    """The most of `times` that fall in one window of `width` seconds (windows from 0)."""
    counts = {}
    for t in times:
        counts[int(t // width)] = counts.get(int(t // width), 0) + 1
    return max(counts.values(), default=0)


def on_client_cpu(cmd):
    """`cmd` on CPU 0, or anywhere when the run is not pinned (--shared)."""
    return cmd if SHAPE["shared"] else ["taskset", "-c", "0", *cmd]


def fetch_run(binary, port, n):
    """slowlab fetch on CPU 0: (summary, client figures)."""
    out = subprocess.run(on_client_cpu([binary, "fetch", "--count", str(n), "--delay",
                          "1", "--mode", "async", "--output", "json", "--quiet", "--base-url",
                          f"http://127.0.0.1:{port}"]), capture_output=True, text=True,
                         timeout=120).stdout
    doc = json.loads(out)
    summary, outcomes = doc["summary"], doc["outcomes"]
    ok = [o for o in outcomes if o.get("status") == 200]
    sent = [o["start"] + (o.get("connect") or 0) for o in ok]
    answered = [o["first_byte"] for o in ok if o.get("first_byte") is not None]
    return summary, {
        "ok": len(ok), "failed": summary["failed"], "wall": summary["wall"],
        "latency_minus_1s": exact([o["end"] - o["start"] - 1 for o in ok]),
        "overhead_summary": {k: summary["overhead"].get(k) for k in QUANTILES},
        "connections_span": max(sent) - min(sent) if sent else None,
        "most_sent_in_1ms": busiest(sent, 0.001),
        "most_sent_in_10ms": busiest(sent, 0.01),
        "answers_span": max(answered) - min(answered) if answered else None,
    }


def lateness_run(client_binary, n, who, argv, env):
    port = free_port()
    ceiling = who in CEILINGS
    binary, flags = argv[0], argv[1:]
    cmd = ([binary, "serve", str(port)] if ceiling
           else [binary, "serve", "--port", str(port), *flags])
    load = os.getloadavg()[0]
    with server(cmd, port, cpu=SHAPE["server_cpu"], env=env) as proc:
        cpu0, switches0 = sum(proc_cpu(proc.pid)), preempted(proc.pid)
        _, client = fetch_run(client_binary, port, n)
        cpu = sum(proc_cpu(proc.pid)) - cpu0
        switches = preempted(proc.pid) - switches0
        if ceiling:
            quant = json.loads(http_get(f"http://127.0.0.1:{port}/lateness"))
            method = "exact"
        else:
            quant = histogram(http_get(f"http://127.0.0.1:{port}/metrics"),
                              "slowlab_lateness_seconds")
            method = "bucket upper bounds"
    return {"loadavg_1m": load, "server_lateness": quant, "server_lateness_method": method,
            "server_cpu_s": cpu, "server_preempted": switches, "client": client}


def rps_run(limit, argv, env, count):
    port = free_port()
    load = os.getloadavg()[0]
    with server([argv[0], "serve", "--port", str(port), *argv[1:]], port,
                cpu=SHAPE["server_cpu"], env=env):
        out = subprocess.run(on_client_cpu([limit, "fetch", f"http://127.0.0.1:{port}/0",
                                            str(count), "50"]), capture_output=True, text=True,
                             timeout=300).stdout
    s = json.loads(out.strip().splitlines()[-1])["summary"]
    return {"loadavg_1m": load, "ok": s["ok"], "rps": s["ok"] / s["wall"]}


def med(runs, *path):
    values = []
    for run in runs:
        for key in path:
            run = run.get(key) if isinstance(run, dict) else None
        if run is not None:
            values.append(run)
    return statistics.median(values) if values else None


def paired(a, b, *path):
    """Median over rounds of a / b, rounds paired in order."""
    ratios = []
    for x, y in zip(a, b):
        for key in path:
            x, y = (x or {}).get(key), (y or {}).get(key)
        if x is not None and y:
            ratios.append(x / y)
    return statistics.median(ratios) if ratios else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--slowlab", default=SLOWLAB, help="slowlab serve, and the client")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME=[KEY=VALUE ...] BINARY [FLAGS ...]: another slowlab serve to race")
    ap.add_argument("--limit", default=LIMIT, help="the ceiling (bench/limit)")
    ap.add_argument("--ceiling-variant", action="append", default=[],
                    help="NAME=BINARY: another build of the ceiling to race")
    ap.add_argument("--rps-count", type=int, default=200000)
    ap.add_argument("--shared", action="store_true",
                    help="pin nothing: server and client share every CPU (the 2-core shape)")
    ap.add_argument("--note", default="", help="what else ran, how the variants were built")
    ap.add_argument("--out")
    args = ap.parse_args()
    SHAPE.update(shared=args.shared, server_cpu=None if args.shared else 1)
    contenders = {"slowlab serve": ([args.slowlab], dict(os.environ)),
                  CEILING: ([args.limit], None)}
    for spec in args.variant:
        name, argv, env = command(spec)
        contenders[name] = (argv, env)
    for spec in args.ceiling_variant:
        name, argv, env = command(spec)
        contenders[name] = (argv, env)
        CEILINGS.add(name)
    slowlabs = [c for c in contenders if c not in CEILINGS]
    runs = {c: [] for c in contenders}
    rps = {c: [] for c in slowlabs}
    names = list(contenders)
    for rnd in range(args.rounds + 1):
        order = names[rnd % len(names):] + names[:rnd % len(names)]
        for who in order:
            run = lateness_run(args.slowlab, args.n, who, *contenders[who])
            late, client = run["server_lateness"] or {}, run["client"]
            print(f"round {rnd} {who:28} p50 {late.get('p50', 0) * 1e3:6.2f} ms  "
                  f"p99 {late.get('p99', 0) * 1e3:6.2f} ms  max {late.get('max', 0) * 1e3:6.2f} "
                  f"ms  client p99 {client['latency_minus_1s']['p99'] * 1e3:6.2f} ms  wall "
                  f"{client['wall']:.3f} s  conns {client['connections_span'] * 1e3:5.0f} ms "
                  f"(most in 1 ms {client['most_sent_in_1ms']})  "
                  f"answers {client['answers_span'] * 1e3:5.0f} ms  cpu {run['server_cpu_s']:.2f}"
                  f" s  preempted {run['server_preempted']}  load {run['loadavg_1m']:.1f}",
                  flush=True)
            if rnd:  # round 0 warms up
                runs[who].append({"round": rnd, **run})
            time.sleep(1)  # let the closed connections' TIME_WAIT settle a little
        if args.rps_count:
            for who in order:
                if who in CEILINGS:
                    continue
                r = rps_run(args.limit, *contenders[who], args.rps_count)
                print(f"round {rnd} {who:28} GET /0 {r['rps']:10,.0f} req/s  load "
                      f"{r['loadavg_1m']:.1f}", flush=True)
                if rnd:
                    rps[who].append({"round": rnd, **r})

    described = {who: " ".join([*(f"{k}={v}" for k, v in (contenders[who][1] or {}).items()
                                  if os.environ.get(k) != v),
                                os.path.basename(contenders[who][0][0]),
                                *contenders[who][0][1:]])
                 for who in names}
    medians = {}
    for who, rows in runs.items():
        medians[who] = {
            "server_lateness": {k: med(rows, "server_lateness", k) for k in QUANTILES},
            "client_latency_minus_1s": {k: med(rows, "client", "latency_minus_1s", k)
                                        for k in QUANTILES},
            "wall": med(rows, "client", "wall"),
            "connections_span": med(rows, "client", "connections_span"),
            "most_sent_in_1ms": med(rows, "client", "most_sent_in_1ms"),
            "most_sent_in_10ms": med(rows, "client", "most_sent_in_10ms"),
            "answers_span": med(rows, "client", "answers_span"),
            "server_cpu_s": med(rows, "server_cpu_s"),
            "server_preempted": med(rows, "server_preempted"),
            "loadavg_1m": med(rows, "loadavg_1m"),
        }
        if who in rps:
            medians[who]["rps_get_0"] = med(rps[who], "rps")
    base = "slowlab serve"
    against = {}
    for who in names:
        if who == base:
            continue
        against[who] = {
            "server_p99_over_slowlab": paired(runs[who], runs[base], "server_lateness", "p99"),
            "client_p99_over_slowlab": paired([r["client"] for r in runs[who]],
                                              [r["client"] for r in runs[base]],
                                              "latency_minus_1s", "p99"),
            "wall_over_slowlab": paired([r["client"] for r in runs[who]],
                                        [r["client"] for r in runs[base]], "wall"),
        }
        if who in rps:
            against[who]["rps_over_slowlab"] = paired(rps[who], rps[base], "rps")
    levers = []
    for who in slowlabs[1:]:
        ratio = against[who]
        p99s = [(r["server_lateness"] or {}).get("p99") for r in runs[who]]
        base_p99s = [(r["server_lateness"] or {}).get("p99") for r in runs[base]]
        lower_every_round = all(a is not None and b is not None and a < b
                                for a, b in zip(p99s, base_p99s))
        clearly = (ratio["server_p99_over_slowlab"] is not None
                   and ratio["server_p99_over_slowlab"] <= CLEARLY and lower_every_round)
        harmless = ((ratio["wall_over_slowlab"] or 0) <= WALL_BAR
                    and (ratio.get("rps_over_slowlab") or RPS_BAR) >= RPS_BAR)
        levers.append({"lever": who, "command": described[who], **medians[who],
                       "server_p99_each_round": p99s, **ratio,
                       "p99_lower_every_round": lower_every_round,
                       "verdict": "keep" if clearly and harmless else
                       ("p99 not clearly lower" if not clearly else
                        "p99 lower, but costs wall or throughput")})
    write_results("lateness", args.n, {
        "method": "scenario 6's workload: slowlab fetch --count N --delay 1 --mode async on CPU "
                  "0, a fresh server on CPU 1 per run (with shape 'shared', neither pinned); "
                  "contenders in rotated order, round 0 discarded; server lateness from slowlab "
                  "serve's /metrics histogram (bucket upper bounds) and the ceiling's GET "
                  "/lateness (exact); client figures from "
                  "slowlab fetch's JSON outcomes (end - start - 1 s, exact); GET /0 throughput "
                  "from the ceiling's client, 50 connections, on CPU 0",
        "note": args.note,
        "shape": "shared: server and client unpinned on every CPU" if args.shared else
                 "pinned: server on CPU 1, client on CPU 0",
        "contenders": described,
        "rounds": args.rounds, "rps_count": args.rps_count,
        "medians": medians, "round_by_round_ratios": against,
        "lever_rule": f"keep a lever only if its server p99 is lower than slowlab serve's in "
                      f"every round and at most {CLEARLY}x of it (median of the round-by-round "
                      f"ratios), with wall at most {WALL_BAR}x and GET /0 throughput at least "
                      f"{RPS_BAR}x slowlab serve's",
        "levers": levers,
        "runs": runs, "rps_runs": rps,
    }, args.out)


if __name__ == "__main__":
    main()
