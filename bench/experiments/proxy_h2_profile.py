#!/usr/bin/env python3
"""Where a waiting HTTP/2 stream's heap bytes go behind `slowlab proxy`: a heaptrack profile of
the proxy holding N streams behind a `when = "before"` rule, its live bytes grouped by the
component that allocated them.

    bench/experiments/proxy_h2_profile.py --slowlab PATH [--n 10000] [--connections 2]
                                          [--top 40] [--out FILE.json]

PATH must be a build with the system allocator (the `#[global_allocator]` lines of `main.rs`
taken out, a local change for profiling only), as for waiting_profile.py: heaptrack hooks malloc,
not jemalloc's entry points. The streams come as in proxy_waiting_memory.py --http2 (bench 9c's
rule, `slowlab fetch --http2 --urls`), but the rule waits 60 s, and once the proxy's admin
/healthz shows all N in flight (and a second more, for stragglers) the proxy is killed: what it
had not freed then ("leaked", in heaptrack's words) is what the N waiting streams held, plus the
start-up's few hundred KB, which the per-stream figures carry as well (less than 50 bytes
per stream at N = 10,000): `live_bytes_per_stream`. `peak_bytes_per_stream` is what each
component held when the heap was at its largest (heaptrack's `peak` cost): the same figures
say that the waiting state is the peak, and no burst before it (such as request headers decoded
before the proxy took them) held more. Sizes are bytes asked of the allocator, not resident
bytes under jemalloc. Needs heaptrack and heaptrack_print."""

import argparse
import collections
import json
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from common import free_port, server, shown_binaries, wait_listening, write_results

RULES = ('[[rule]]\nname = "wait"\npath = "/wait"\ndelay = 60\nstatus = 202\n'
         'when = "before"\n')

# (component, substrings every frame list of it contains), first match wins. heaptrack names a
# frame by its function (generic parameters left out) and its file: `insert_at<> (lib.rs)`.
COMPONENTS = [
    ("proxy: the held request's fields (Held::new)", ["(held.rs)"]),
    ("proxy: the request body, Incoming boxed into axum's Body (Proxy::handle)",
     ["handle (mod.rs)", "box_body.rs"]),
    ("proxy: the rule's name (LiveRules::draw)", ["handle (mod.rs)", "draw"]),
    ("proxy: the waiting future, boxed (Proxy::handle)", ["handle (mod.rs)", "pin<> (boxed.rs)"]),
    ("proxy: other", ["handle (mod.rs)"]),
    ("h2: the stream's record (Store's Slab<Stream>, grown by doubling)",
     ["insert (store.rs)", "insert_at"]),
    ("h2: stream ids (Store's IndexMap)", ["insert (store.rs)"]),
    ("h2: received frames waiting for accept (Recv's Slab<Slot<Event>>, grown by doubling)",
     ["recv_headers (recv.rs)", "push_back"]),
    ("request HeaderMap (h2's hpack decoder appends: room for 6 fields at the first)",
     ["load_hpack", "try_append"]),
    ("h2: hpack decoding (strings, table)", ["load_hpack"]),
    ("tokio task cell of hyper's per-stream task (H2Stream)", ["bind_new_task", "poll_server"]),
    ("tokio task cells (other)", ["bind_new_task"]),
    ("h2 connection (other)", ["(connection.rs)"]),
]


def component(stack):
    for name, parts in COMPONENTS:
        if all(p in stack for p in parts):
            return name
    return "other"


def short(stack, frames=14):
    """The innermost `frames` frames of a flamegraph stack, without generic parameters."""
    out = []
    for frame in stack.split(";")[-frames:]:
        depth, cut = 0, []
        for ch in frame:
            if ch == "<":
                depth += 1
            elif ch == ">":
                depth -= 1
            elif depth == 0:
                cut.append(ch)
        out.append("".join(cut))
    return " ; ".join(out)


def in_flight(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
        return json.loads(r.read()).get("in_flight", 0)


def profile(binary, n, connections, tmp):
    rules, urls, data = tmp / "wait.toml", tmp / "wait.urls", tmp / "heaptrack"
    rules.write_text(RULES)
    urls.write_text("/wait\n" * n)
    upstream, listen, admin = free_port(), free_port(), free_port()
    with server([binary, "serve", "--port", str(upstream)], upstream, cpu=0):
        proxy = subprocess.Popen(
            ["taskset", "-c", "1", "heaptrack", "-o", str(data), binary, "proxy", "--listen",
             f"127.0.0.1:{listen}", "--upstream", f"http://127.0.0.1:{upstream}", "--rules",
             str(rules), "--admin", f"127.0.0.1:{admin}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(listen, proxy)
        client = subprocess.Popen(
            ["taskset", "-c", "0", binary, "fetch", "--urls", str(urls), "--mode", "async",
             "--http2", "--connections", str(connections), "--output", "json", "--no-outcomes",
             "--quiet", "--base-url", f"http://127.0.0.1:{listen}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 50
        waiting = 0
        while time.monotonic() < deadline:
            try:
                waiting = in_flight(admin)
            except OSError:
                pass
            if waiting >= n:
                break
            time.sleep(0.1)
        time.sleep(1)
        # heaptrack runs the proxy as its child: kill the proxy itself, at once, so that what
        # it holds now is what heaptrack reports as never freed.
        child = subprocess.run(["pgrep", "-f", f"{binary} proxy --listen 127.0.0.1:{listen}"],
                               capture_output=True, text=True).stdout.split()
        for pid in child:
            subprocess.run(["kill", "-KILL", pid])
        proxy.wait()
        client.kill()
        client.wait()
    if waiting < n:
        raise SystemExit(f"only {waiting} of {n} streams were ever in flight")
    return Path(str(data) + ".zst")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slowlab", required=True, help="a build with the system allocator")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--top", type=int, default=40, help="allocation sites listed")
    parser.add_argument("--out")
    parser.add_argument("--keep", help="a directory to keep heaptrack's stacks in")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = profile(args.slowlab, args.n, args.connections, Path(tmp))
        costs = {}
        for cost_type in ("leaked", "peak"):
            stacks = Path(tmp) / f"{cost_type}.txt"
            subprocess.run(["heaptrack_print", "-f", str(data), "--flamegraph-cost-type",
                            cost_type, "-F", str(stacks)], stdout=subprocess.DEVNULL, check=True)
            by_component, sites = collections.Counter(), collections.Counter()
            for line in stacks.read_text().splitlines():
                stack, _, cost = line.rpartition(" ")
                if cost.isdigit():  # a stack split over lines is too small to matter
                    by_component[component(stack)] += int(cost)
                    sites[short(stack)] += int(cost)
            costs[cost_type] = (by_component, sites)
            if args.keep:
                (Path(args.keep) / f"{cost_type}.txt").write_text(stacks.read_text())
    live, sites = costs["leaked"]
    peak = costs["peak"][0]
    per_stream = {name: round(b / args.n, 1) for name, b in live.most_common()}
    peak_per_stream = {name: round(b / args.n, 1) for name, b in peak.most_common()}
    top = [{"bytes_per_stream": round(b / args.n, 1), "innermost_frames": s}
           for s, b in sites.most_common(args.top)]
    write_results("proxy_h2_profile", args.n, {
        "slowlab": shown_binaries({"slowlab": Path(args.slowlab).resolve()})["slowlab"],
        "connections": args.connections, "rules": RULES,
        "live_bytes_per_stream": per_stream,
        "total_per_stream": round(sum(live.values()) / args.n, 1),
        "peak_bytes_per_stream": peak_per_stream,
        "top_sites": top}, args.out)


if __name__ == "__main__":
    main()
