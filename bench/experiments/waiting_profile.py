#!/usr/bin/env python3
"""Where a waiting HTTP/1.1 connection's heap bytes go: a heaptrack profile of `slowlab serve`
at the peak of N waiting requests, its live bytes grouped by the component that allocated them.

    bench/experiments/waiting_profile.py --slowlab PATH [--n 10000] [--out FILE.json]

heaptrack hooks malloc, and the slowlab binary's global allocator is jemalloc, whose entry points
it does not see: PATH must be a build whose `main.rs` has the `#[global_allocator]` lines taken
out (a local change, for profiling only). The N requests (a connection each, `GET /8`) come from
the ceiling's client (bench/limit), as in waiting_memory.py; the server is stopped once they are
answered, and heaptrack's peak is the moment all N were waiting. Sizes are the bytes asked of the
allocator; the resident bytes under jemalloc follow from its size classes and from which pages
are written (see the results file's `resident` notes). Needs heaptrack and heaptrack_print."""

import argparse
import collections
import json
import os
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from common import ROOT, free_port, write_results

LIMIT = str(ROOT / "target" / "limit" / "release" / "slowlab-limit")

# (component, pattern every frame list of it contains), first match wins. The patterns are
# function names in the allocating stack.
COMPONENTS = [
    ("hyper write buffer (WriteBuf headers, Vec::with_capacity(8192))", ["WriteBuf", "::new"]),
    ("hyper read buffer (BytesMut reserve(8192))", ["poll_read_from_io"]),
    ("bytes Shared header (read buffer split by the parser)", ["promote_to_shared"]),
    ("connection future, boxed by tokio::spawn in debug builds",
     ["tokio::task::spawn::spawn", "Box$LT$T$GT$::pin"]),
    ("tokio task cell", ["RawTask::new"]),
    ("boxed GET /{seconds} future (Routes::call)", ["Routes::call"]),
    ("hyper in-flight box (dispatch::Server::new)", ["dispatch::Server"]),
    ("hyper dispatcher body box (Dispatcher::new)", ["Dispatcher$LT$D$C$Bs$C$I$C$T$GT$::new"]),
    ("tokio socket registration (ScheduledIo)", ["RegistrationSet::allocate"]),
    ("connection Activity (watchdog notes)", ["ConnState::new"]),
    ("JoinSet entry", ["idle_notified_set"]),
    ("Arc<ConnState>", ["Arc$LT$T$GT$::new", "run_with"]),
]


def component(stack):
    for name, parts in COMPONENTS:
        if all(p in stack for p in parts):
            return name
    return "other"


def in_flight(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
        return json.loads(r.read()).get("in_flight", 0)


def profile(binary, n, data):
    port = free_port()
    server = subprocess.Popen(["taskset", "-c", "1", "heaptrack", "-o", str(data), binary, "serve",
                               "--port", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            in_flight(port)
            break
        except OSError:
            time.sleep(0.1)
    out = subprocess.run(["taskset", "-c", "0", LIMIT, "fetch", f"http://127.0.0.1:{port}/8",
                          str(n), str(n)], capture_output=True, text=True, check=True).stdout
    if f'"ok":{n}' not in out:
        raise RuntimeError(f"not every request succeeded: {out}")
    # heaptrack runs the server as its child: stop the server itself, so heaptrack writes out.
    child = subprocess.run(["pgrep", "-f", f"{binary} serve --port {port}"], capture_output=True,
                           text=True).stdout.split()
    for pid in child:
        subprocess.run(["kill", "-INT", pid])
    server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slowlab", required=True, help="a build with the system allocator")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "heaptrack"
        profile(args.slowlab, args.n, data)
        stacks = Path(tmp) / "stacks.txt"
        subprocess.run(["heaptrack_print", "-f", str(data) + ".zst", "--flamegraph-cost-type",
                        "peak", "-F", str(stacks)], stdout=subprocess.DEVNULL, check=True)
        peak = collections.Counter()
        for line in stacks.read_text().splitlines():
            stack, _, cost = line.rpartition(" ")
            if cost.isdigit():  # a stack heaptrack_print split over lines is too small to matter
                peak[component(stack)] += int(cost)
    per_request = {name: round(b / args.n, 1) for name, b in peak.most_common()}
    write_results("waiting_profile", args.n, {
        "slowlab": os.path.relpath(args.slowlab, ROOT) if args.slowlab.startswith(str(ROOT))
        else Path(args.slowlab).name,
        "peak_bytes_per_request": per_request,
        "total_per_request": round(sum(peak.values()) / args.n, 1)}, args.out)


if __name__ == "__main__":
    main()
