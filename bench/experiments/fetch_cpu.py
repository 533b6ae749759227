#!/usr/bin/env python3
"""Scenario 4's slowlab fetch, CPU per request: user-space instructions (callgrind) and CPU time
(rusage) per request, beside wrk and the ceiling client (bench/limit) in interleaved rounds.

    bench/experiments/fetch_cpu.py [--bin PATH]... [--n 200000] [--rounds 5]
                                   [--count-n 10000] [--count-rounds 2] [--out FILE.json]

slowlab fetch runs with scenario 4's own flags (`--mode async --concurrency 50 --output json
--quiet`, outcomes kept) against the bare hyper server, client on CPU 0 and server on CPU 1, as
bench/run pins them. Each `--bin` is a slowlab binary (e.g. before and after a change); all of
them race in the same rounds.

Instructions: callgrind counts the client's user-space instructions, which do not depend on the
machine's load. Start-up and the JSON document written at the end are taken out by counting two
runs, of N and 2N requests: the difference over N is the cost of one more request (its share of
the final document included). Times: wall, user and system CPU from wait4's rusage, and the
requests per second the client reports (slowlab fetch: ok / its wall; wrk: its own count over its
duration; the ceiling: its own JSON). Needs valgrind, wrk, the release build, the bare_hyper
example and bench/limit built into target/limit. Standard library only."""

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import ROOT, attribute, free_port, server, shown_binaries, write_results

LIMIT = ROOT / "target/limit/release/slowlab-limit"


def fetch_cmd(binary, n, base):
    return [str(binary), "fetch", "--count", str(n), "--delay", "0", "--mode", "async",
            "--output", "json", "--quiet", "--base-url", base, "--concurrency", "50"]


# Where a request's instructions go: functions whose inclusive cost callgrind_annotate reports
# (the largest entry of each name; inlined copies are reported under the caller's name).
PARTS = {
    "hyper connection task (write, read, parse)":
        "hyper::proto::h1::dispatch::Dispatcher<D,Bs,I,T>::poll_catch",
    "  of it: reading and parsing the response head":
        "hyper::proto::h1::conn::Conn<I,B,T>::poll_read_head",
    "  of it: writing the request head": "hyper::proto::h1::dispatch::Dispatcher<D,Bs,I,T>::poll_write",
    "worker task (one request after another on a connection)":
        "slowlab_client::runner::http1::worker::{{closure}}",
    "  of it: building the request (before)": "slowlab_client::runner::http1::request",
    "  of it: building the request (after: from a template)":
        "slowlab_client::runner::http1::from_template",
    "  of it: send, await the answer, read the body (exchange)":
        "slowlab_client::runner::http1::exchange::{{closure}}",
    "  of it: judging the body (the time_elapsed echo)": "slowlab_client::outcome::judge_body",
    "  of it: cancellation future per request (before)":
        "slowlab_client::runner::Control::cancelled::{{closure}}",
    "collector: receiving outcomes (channel)": "tokio::sync::mpsc::chan::Rx<T,S>::recv",
    "collector: counting (histograms, statuses)": "slowlab_client::summary::Tally::add",
    "after the wall: the JSON document": "<slowlab::sink::json::JsonSink<W> as slowlab::sink::Sink>::finish",
    "after the wall: peak concurrency from the outcomes": "slowlab_client::summary::peak_concurrency",
}


def instructions(cmd, n=None):
    """Instructions of `cmd`; with `n`, also the inclusive cost of each of PARTS over n. Tried
    again when callgrind's file has no total (seen now and then on this shared machine)."""
    for attempt in range(3):
        try:
            return instructions_once(cmd, n)
        except SystemExit:
            if attempt == 2:
                raise


def instructions_once(cmd, n):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           check=True)
        text = out.read_text() if out.exists() else ""
        total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if not total:
            raise SystemExit(f"callgrind wrote no summary for {cmd}:\n{r.stderr[-2000:]}")
        parts = attribute(out, n, PARTS, source=r"\S+?\.(?:rs|c|h|S)") if n else None
        return int(total.group(1)), parts


def one_run(cmd, parse):
    start = time.perf_counter()
    proc = subprocess.Popen(["taskset", "-c", "0", *cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[0]} failed")
    requests, rate = parse(out)
    return {"process_wall": wall, "requests": requests, "rate": rate,
            "user_us_per_request": usage.ru_utime / requests * 1e6,
            "system_us_per_request": usage.ru_stime / requests * 1e6,
            "involuntary_switches": usage.ru_nivcsw, "voluntary_switches": usage.ru_nvcsw}


def parse_fetch(out):
    s = json.loads(out)["summary"]
    return s["requests"], s["ok"] / s["wall"]


def parse_wrk(out):
    m = re.search(r"(\d+) requests in ([\d.]+)(ms|s)\b", out)
    seconds = float(m.group(2)) * (1e-3 if m.group(3) == "ms" else 1.0)
    return int(m.group(1)), int(m.group(1)) / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", action="append", default=[])
    parser.add_argument("--n", type=int, default=200000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count-n", type=int, default=10000)
    parser.add_argument("--count-rounds", type=int, default=2)
    parser.add_argument("--wrk-seconds", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()
    bins = {Path(b).name: Path(b) for b in (args.bin or [ROOT / "target/release/slowlab"])}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    counts = {name: [] for name in bins}
    parts = {}
    clients = {**{name: (lambda n, b=b: fetch_cmd(b, n, base), parse_fetch)
                  for name, b in bins.items()},
               "wrk": (lambda n: ["wrk", "-t1", "-c50", f"-d{args.wrk_seconds}s", base + "/0"],
                       parse_wrk),
               "ceiling": (lambda n: [str(LIMIT), "fetch", base + "/0", str(n), "50"],
                           parse_fetch)}
    runs = {name: [] for name in clients}
    with server([str(ROOT / "target/release/examples/bare_hyper"), str(port)], port):
        for _ in range(args.count_rounds):
            for name, binary in bins.items():
                small, _ = instructions(fetch_cmd(binary, args.count_n, base))
                large, split = instructions(fetch_cmd(binary, 2 * args.count_n, base),
                                            2 * args.count_n)
                parts.setdefault(name, split)
                counts[name].append({"n": small, "2n": large,
                                     "per_request": (large - small) / args.count_n})
        names = list(clients)
        for rnd in range(args.rounds + 1):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for name in order:
                cmd, parse = clients[name]
                result = one_run(cmd(args.n), parse)
                if rnd:  # round 0 warms up
                    runs[name].append(result)
    medians = {c: {k: statistics.median(r[k] for r in v) for k in v[0]}
               for c, v in runs.items() if v}
    ratios = {}
    for name in bins:
        per_round = lambda other: statistics.median(
            a["rate"] / b["rate"] for a, b in zip(runs[name], runs[other]))
        ratios[name] = {"over_wrk": per_round("wrk"), "of_ceiling": per_round("ceiling")}
    write_results("fetch_cpu", args.n, {
        "count_n": args.count_n,
        "binaries": shown_binaries(bins),
        "instructions": counts,
        "instructions_per_request": {name: statistics.median(r["per_request"] for r in v)
                                     for name, v in counts.items() if v},
        "parts_per_request": parts,
        "parts_note": "inclusive instructions of each part over the 2N-request run, divided by "
                      "2N (start-up excluded by no part; parts nest where indented)",
        "runs": runs, "medians": medians, "rate_ratios_by_round": ratios}, args.out)


if __name__ == "__main__":
    main()
