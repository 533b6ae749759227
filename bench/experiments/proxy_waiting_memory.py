#!/usr/bin/env python3
"""Proxy bytes per waiting HTTP/1.1 request: waiting_memory.py's method for `slowlab proxy`, with
a rule `when = "before"` that holds every request before it goes upstream. VmHWM of the proxy
when its admin /healthz first shows all N requests in flight, minus VmHWM after start-up, over N.
The N requests (a connection each) come from the ceiling's client (bench/limit); the upstream is
a `slowlab serve` answering `/0`. The rule waits 5 s rather than 1 s, for the reason
waiting_memory.py gives: all N must be in flight at once on a busy machine.

With --http2, the N requests are HTTP/2 streams instead, on --connections connections (2 unless
told), sent by `slowlab fetch --http2 --urls` as bench scenario 9c sends them, behind 9c's rule
(`path = "/wait"`, answered 202 by the proxy itself after the wait): bytes per waiting stream.

    bench/experiments/proxy_waiting_memory.py [--n 10000] [--rounds 3] [--slowlab PATH]
                                              [--race PATH]... [--http2 [--connections 2]]
                                              [--out FILE.json]

Each `--race` is another slowlab binary (e.g. before and after a change) measured in the same
rounds, one run of each in turn per round, so that a busy spell of the machine falls on all of
them alike: `by_binary` then holds each one's runs and median, by file name.

Standard library only."""

import argparse
import json
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from common import ROOT, free_port, server, shown_binaries, write_results
from waiting_memory import LIMIT, hwm_kb

RULES = '[[rule]]\nname = "hold"\nprefix = "/"\ndelay = 5\nwhen = "before"\n'
# --http2: 9c's rule (bench/harness/proxy_bench.py, WAIT_RULE), with this script's 5 s wait. The
# proxy answers 202 itself, so slowlab fetch, which checks the echo of a delay path it asked
# for, counts every stream a success.
RULES_H2 = ('[[rule]]\nname = "wait"\npath = "/wait"\ndelay = 5\nstatus = 202\n'
            'when = "before"\n')


def in_flight(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
        return json.loads(r.read()).get("in_flight", 0)


def one_run(binary, n, rules, h2=None):
    """Bytes per waiting request, or None when /healthz never showed all `n` in flight. `h2`:
    (the --urls file, connections) for HTTP/2 streams; None for HTTP/1.1, a connection each."""
    upstream, listen, admin = free_port(), free_port(), free_port()
    with server([binary, "serve", "--port", str(upstream)], upstream, cpu=0):
        with server([binary, "proxy", "--listen", f"127.0.0.1:{listen}", "--upstream",
                     f"http://127.0.0.1:{upstream}", "--rules", str(rules), "--admin",
                     f"127.0.0.1:{admin}"], listen) as proxy:
            time.sleep(0.2)
            before = hwm_kb(proxy.pid)
            waiting = {}

            def watch():
                while "kb" not in waiting and not waiting.get("stop"):
                    try:
                        if in_flight(admin) >= n:
                            waiting["kb"] = hwm_kb(proxy.pid)
                            return
                    except OSError:
                        pass
                    time.sleep(0.02)

            watcher = threading.Thread(target=watch)
            watcher.start()
            if h2 is None:
                client = [LIMIT, "fetch", f"http://127.0.0.1:{listen}/0", str(n), str(n)]
            else:
                urls, connections = h2
                client = [binary, "fetch", "--urls", str(urls), "--mode", "async", "--http2",
                          "--connections", str(connections), "--output", "json",
                          "--no-outcomes", "--quiet", "--base-url", f"http://127.0.0.1:{listen}"]
            out = subprocess.run(["taskset", "-c", "0", *client],
                                 capture_output=True, text=True, check=True).stdout
            waiting["stop"] = True
            watcher.join()
            ok = (f'"ok":{n}' in out if h2 is None
                  else json.loads(out)["summary"]["ok"] == n)
            if not ok:
                raise RuntimeError(f"not every request succeeded: {out[:2000]}")
            if "kb" not in waiting:
                return None
            return (waiting["kb"] - before) * 1000 / n


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slowlab", default=str(ROOT / "target" / "release" / "slowlab"))
    parser.add_argument("--http2", action="store_true",
                        help="HTTP/2 streams on --connections connections, as bench 9c sends")
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--race", action="append", default=[],
                        help="another slowlab binary, measured in the same rounds")
    parser.add_argument("--out")
    args = parser.parse_args()
    text = RULES_H2 if args.http2 else RULES
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "hold.toml"
        rules.write_text(text)
        h2 = None
        if args.http2:
            urls = Path(tmp) / "wait.urls"
            urls.write_text("/wait\n" * args.n)
            h2 = (urls, args.connections)
        bins = {}
        for b in [args.slowlab, *args.race]:
            bins[Path(b).name if Path(b).name not in bins else b] = Path(b).resolve()
        runs = {name: [] for name in bins}
        for _ in range(args.rounds):
            for name, binary in bins.items():
                runs[name].append(one_run(str(binary), args.n, rules, h2))

    def median(values):
        return statistics.median([r for r in values if r is not None] or [0])

    first = next(iter(bins))
    figures = {
        "slowlab": shown_binaries({first: bins[first]})[first], "rules": text,
        "protocol": f"HTTP/2, {args.connections} connection(s)" if args.http2 else "HTTP/1.1",
        "bytes_per_waiting_request": runs[first], "median": median(runs[first])}
    if args.race:
        figures["by_binary"] = {name: {"binary": shown, "bytes_per_waiting_request": runs[name],
                                       "median": median(runs[name])}
                                for name, shown in shown_binaries(bins).items()}
    write_results("proxy_waiting_memory", args.n, figures, args.out)


if __name__ == "__main__":
    main()
