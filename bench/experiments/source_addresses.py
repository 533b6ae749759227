#!/usr/bin/env python3
"""Does spreading loopback connections over several source addresses make connecting cheaper?

    bench/experiments/source_addresses.py [--n 10000] [--rounds 4] [--out FILE.json]

Starts `slowlab serve` on CPU 1 and, on CPU 0, opens N non-blocking connections to it as fast as
it can, from 1, 4 or 16 source addresses (127.0.0.1 to 127.0.0.K), in interleaved rounds after a
discarded warm-up round, until all are established; then resets them (no TIME_WAIT left to hold
ports). Records the wall time and this process's system (kernel) CPU time per round. The idea
under test (recorded as untried for scenario 2): whether the kernel's search for a free local port
gets costly as one source address fills up. Standard library only."""

import argparse
import os
import resource
import selectors
import socket
import statistics
import struct
import time

from common import ROOT, free_port, server, write_results

SOURCES = (1, 4, 16)


def connect_all(port, n, sources):
    sel = selectors.DefaultSelector()
    socks = []
    cpu0, start = os.times().system, time.perf_counter()
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        if sources > 1:
            s.bind((f"127.0.0.{1 + i % sources}", 0))
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        sel.register(s, selectors.EVENT_WRITE)
        socks.append(s)
    pending = n
    while pending:
        ready = sel.select(timeout=10)
        if not ready:
            raise SystemExit(f"{pending} connections never completed")
        for key, _ in ready:
            sel.unregister(key.fileobj)
            err = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise SystemExit(f"connect failed: {os.strerror(err)}")
            pending -= 1
    wall, system = time.perf_counter() - start, os.times().system - cpu0
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    return {"wall": wall, "system": system}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "slowlab"))
    parser.add_argument("--out")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.n + 1000), hard))
    os.sched_setaffinity(0, {0})
    port = free_port()
    runs = {k: [] for k in SOURCES}
    with server([args.binary, "serve", "--port", str(port)], port):
        for rnd in range(args.rounds + 1):
            order = SOURCES[rnd % 3:] + SOURCES[:rnd % 3]
            for k in order:
                result = connect_all(port, args.n, k)
                if rnd:
                    runs[k].append(result)
                time.sleep(1)
    write_results("source_addresses", args.n, {
        "runs": {str(k): v for k, v in runs.items()},
        "medians": {str(k): {f: statistics.median(r[f] for r in v) for f in ("wall", "system")}
                    for k, v in runs.items()}}, args.out)


if __name__ == "__main__":
    main()
