#!/usr/bin/env python3
"""Scenario 9b's slowlab proxy, CPU per forwarded request with no rule: user-space instructions
(callgrind) per request, beside nginx as a reverse proxy measured the same way.

    bench/experiments/proxy_cpu.py [--bin PATH]... [--count-n 4000] [--rounds 2]
                                   [--client PATH] [--no-nginx] [--top 150] [--levers FILE.json]
                                   [--out FILE.json]

The upstream is the bare hyper example, as in 9b, run without instrumentation on CPU 0. Each
`--bin` is a slowlab binary (e.g. before and after a change); all of them race in the same
rounds. Each runs `slowlab proxy --listen ... --upstream ...` (9b's flags: no rule, no log)
under callgrind, pinned to CPU 1 as 9b pins it, so that tokio runs the two workers 9b's proxy
has. nginx runs under callgrind too, with 9b's configuration but one process
(`master_process off; daemon off; worker_processes 1`): one worker does the work of one
request whatever their number. The load is `slowlab fetch --count N --delay 0 --mode async
--concurrency 50` (the client, not instrumented, on CPU 0): 50 keep-alive connections, one
request after another on each.

Instructions: callgrind counts every user-space instruction of the proxy's process from start
to exit, which does not depend on the machine's load. Start-up, the first connections (to the
client and the upstream) and shutdown are taken out by counting two runs, of N and 2N requests:
the difference over N is the cost of one more request. The proxy is stopped with SIGTERM once
the client is done (it drains at once, nothing being in flight), nginx with SIGQUIT; both then
exit normally and callgrind writes its file.

Allocations: the calls into the allocator (jemalloc's entry points for slowlab, glibc's for
nginx) that callgrind's caller tree counts, the same difference over N.

Where the instructions go: `callgrind_annotate --inclusive=yes` (and the self cost) of both
runs, the difference per function over N, the largest `--top` kept (inlined code is counted in
its caller). Needs valgrind, nginx, the release build and the bare_hyper example. Standard
library only."""

import argparse
import json
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, free_port, server, shown_binaries, wait_listening, write_results

sys.path.insert(0, str(ROOT / "bench"))
from harness.proxy_configs import NGINX_CONF as PEER_NGINX_CONF  # noqa: E402

# 9b's nginx configuration (bench/harness/proxy_bench.py), as one process with one worker, so
# that callgrind sees all of nginx's work in the process it runs.
NGINX_CONF = "master_process off;\n" + PEER_NGINX_CONF.replace("{workers}", "1")


def client_cmd(client, n, port):
    return [str(client), "fetch", "--count", str(n), "--delay", "0", "--mode", "async",
            "--output", "json", "--quiet", "--concurrency", "50",
            "--base-url", f"http://127.0.0.1:{port}"]


def annotate(cmd):
    """callgrind_annotate's output, run from `/`: run from inside the repository it names the
    files below the working directory differently, and the caller tree then loses the calls
    into jemalloc (allocations came out 0 per request)."""
    return subprocess.run(cmd, capture_output=True, text=True, check=True, cwd="/").stdout


def functions(out, inclusive):
    """Cost by function in callgrind file `out` (the largest entry of each name)."""
    cmd = ["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", "--auto=no",
           "--threshold=100", str(out)]
    text = annotate(cmd)
    best = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*?)(?: \[.*\])?$", line)
        if m:
            cost = int(m.group(1).replace(",", ""))
            # Drop the source file (`path/file.rs:` or `???:`) before the function's name.
            name = re.sub(r"^(?:\?\?\?|[^\s:]*[/.][^\s:]*):", "", m.group(2), count=1)
            best[name] = max(best.get(name, 0), cost)
    return best


# Allocation entry points: jemalloc's (slowlab) and glibc's (nginx).
ALLOCATORS = {"_rjem_malloc", "_rjem_calloc", "_rjem_realloc", "_rjem_mallocx",
              "_rjem_rallocx", "_rjem_posix_memalign", "_rjem_aligned_alloc", "malloc",
              "calloc", "realloc", "posix_memalign", "aligned_alloc"}


def allocations(out):
    """Calls into the allocator in callgrind file `out`: the call counts callgrind_annotate's
    caller tree gives each caller of an ALLOCATORS function, summed."""
    cmd = ["callgrind_annotate", "--tree=caller", "--auto=no", "--threshold=100", str(out)]
    text = annotate(cmd)
    calls = 0
    for block in text.split("\n\n"):
        lines = block.strip().splitlines()
        star = [l for l in lines if re.match(r"^\s*[\d,]+ \(.*?\)\s+\*\s", l)]
        if not star:
            continue
        name = re.sub(r" \[.*\]$", "", star[0]).rsplit(":", 1)[-1].strip()
        if name.split("@")[0] in ALLOCATORS:
            calls += sum(int(m.group(1).replace(",", ""))
                         for l in lines if re.match(r"^\s*[\d,]+ \(.*?\)\s+<\s", l)
                         for m in [re.search(r"\(([\d,]+)x\)", l)] if m)
    return calls


def measured(cmd, port, client, n, stop, tmp):
    """Runs `cmd` (listening on `port`) under callgrind while the client sends `n` requests;
    returns its total instructions and its costs by function (inclusive, self)."""
    out = Path(tmp) / f"callgrind.{port}.{n}"
    proc = subprocess.Popen(["taskset", "-c", "1", "valgrind", "--tool=callgrind",
                             f"--callgrind-out-file={out}", *cmd],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port, proc, timeout=60.0)
        r = subprocess.run(["taskset", "-c", "0", *client_cmd(client, n, port)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"the client failed: {r.stderr[-2000:]}")
    finally:
        proc.send_signal(stop)
        _, err = proc.communicate(timeout=300)
    text = out.read_text() if out.exists() else ""
    total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    if not total:
        raise SystemExit(f"callgrind wrote no summary for {cmd}:\n{err[-2000:]}")
    parts = (functions(out, True), functions(out, False), allocations(out))
    out.unlink()
    return int(total.group(1)), parts


def per_request(small, large, n, top):
    """The difference per function between the 2N and the N run, over N, largest first."""
    diff = {f: (large.get(f, 0) - small.get(f, 0)) / n for f in large}
    return dict(sorted(((f, round(v, 1)) for f, v in diff.items() if v > 0),
                       key=lambda kv: -kv[1])[:top])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", action="append", default=[])
    parser.add_argument("--client", default=str(ROOT / "target/release/slowlab"))
    parser.add_argument("--count-n", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--top", type=int, default=150)
    parser.add_argument("--no-nginx", action="store_true")
    parser.add_argument("--levers", help="a JSON file: the list of changes tried, with their "
                        "figures and verdicts, copied into the results as `levers`")
    parser.add_argument("--out")
    args = parser.parse_args()
    bins = {}
    for b in args.bin or [str(ROOT / "target/release/slowlab")]:
        name = Path(b).name if Path(b).name not in bins else b
        bins[name] = Path(b)
    n = args.count_n
    up_port = free_port()
    tmp = tempfile.mkdtemp(prefix="proxy-cpu-")
    contenders = {}
    for name, binary in bins.items():
        contenders[name] = (lambda port, b=binary: [
            str(b), "proxy", "--listen", f"127.0.0.1:{port}",
            "--upstream", f"http://127.0.0.1:{up_port}"], signal.SIGTERM)
    if not args.no_nginx and shutil.which("nginx"):
        def nginx(port):
            conf = Path(tmp) / f"nginx.{port}.conf"
            conf.write_text(NGINX_CONF.format(prefix=tmp, port=port, upstream=up_port))
            return [shutil.which("nginx"), "-p", tmp, "-c", str(conf), "-e",
                    f"{tmp}/error.log"]
        contenders["nginx"] = (nginx, signal.SIGQUIT)
    counts = {name: [] for name in contenders}
    by_function = {}
    try:
        with server([str(ROOT / "target/release/examples/bare_hyper"), str(up_port)], up_port,
                    cpu=0):
            for rnd in range(args.rounds):
                names = list(contenders)
                names = names[rnd % len(names):] + names[:rnd % len(names)]
                for name in names:
                    make, stop = contenders[name]
                    port = free_port()
                    small, (inc_s, self_s, alloc_s) = measured(make(port), port, args.client,
                                                               n, stop, tmp)
                    port = free_port()
                    large, (inc_l, self_l, alloc_l) = measured(make(port), port, args.client,
                                                               2 * n, stop, tmp)
                    counts[name].append({"n": small, "2n": large,
                                         "per_request": (large - small) / n,
                                         "allocations_per_request": (alloc_l - alloc_s) / n})
                    print(f"round {rnd}: {name}: {(large - small) / n:,.0f} instructions "
                          f"per request", flush=True)
                    by_function.setdefault(name, {
                        "inclusive": per_request(inc_s, inc_l, n, args.top),
                        "self": per_request(self_s, self_l, n, args.top)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    per = {name: statistics.median(r["per_request"] for r in v) for name, v in counts.items()}
    ratios = {name: per[name] / per["nginx"] for name in bins if "nginx" in per}
    write_results("proxy_cpu", n, {
        "count_n": n,
        "binaries": shown_binaries(bins),
        "instructions": counts,
        "instructions_per_request": per,
        "allocations_per_request": {
            name: statistics.median(r["allocations_per_request"] for r in v)
            for name, v in counts.items()},
        "over_nginx": ratios,
        "by_function_per_request": by_function,
        **({"levers": json.loads(Path(args.levers).read_text())} if args.levers else {}),
        "by_function_note": "callgrind_annotate's cost of each function in the 2N run minus the "
                            "N run, over N, from the first round (inclusive: with its callees; "
                            "self: its own instructions)"}, args.out)


if __name__ == "__main__":
    main()
