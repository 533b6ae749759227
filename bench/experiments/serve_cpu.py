#!/usr/bin/env python3
"""slowlab serve's user-space CPU per request for `GET /0` under keep-alive load, or per
connection with one connection per request: instructions (callgrind) per request, beside the bare
hyper server that bench/run measures it against.

    bench/experiments/serve_cpu.py [--bin PATH]... [--n 20000] [--rounds 2] [--connections 50]
                                   [--client limit|fetch] [--per-connection [--delay SECONDS]]
                                   [--parts] [--no-bare] [--out FILE.json]

Each `--bin` is a slowlab binary (e.g. before and after a change), served as `slowlab serve` with
its defaults; all of them, and bare_hyper (target/release/examples/bare_hyper), are measured in the
same rounds, one after another. The server runs under callgrind on CPU 1 (threads serialised, as
callgrind runs them), the client outside it on CPU 0: bench/limit's client by default (the least
client work, `slowlab-limit fetch URL N CONNECTIONS`), or `slowlab fetch --mode async
--concurrency CONNECTIONS` from the first `--bin`. With `--per-connection` (scenario 2's and 6's
shape), the client is `slowlab fetch --count N --delay SECONDS --mode async` from the first
`--bin`, all N requests at once, each on a connection of its own that closes after its answer:
the figure is then a connection's whole cost (accept, the connection's task, one request, the
close), `GET /0` by default or `GET /1` with `--delay 1` (a wait on the timer, as in scenario 6).

Method: the server is started under callgrind, the client sends N requests over a fixed number of
keep-alive connections, and the server is stopped with SIGTERM (slowlab serve drains, with nothing
in flight, and exits; bare_hyper dies of the signal, and valgrind still writes its totals). The
same is done with 2N requests. Start-up, the connections' accepts and set-up, and the shutdown are
the same in both runs, so the difference of the two totals over N is the cost of one more request
on an open connection. What does depend on the run's length rather than on its requests (worker
threads parking and waking) is small beside a request and is in the figure.

Allocations per request are counted the same way, from the calls to jemalloc's malloc in the two
runs. With `--parts`, the 2N run of each binary is also split by function: the inclusive cost of a
few functions (callgrind_annotate --inclusive=yes) over 2N, where slowlab's per-request work goes.
`--no-bare` leaves bare_hyper out (to race slowlab binaries alone). Needs valgrind, the release
build, the bare_hyper example and bench/limit built into target/limit. Standard library only."""

import argparse
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from common import (ROOT, attribute, count_rounds, free_port, medians, shown_binaries,
                    wait_listening, write_results)

LIMIT = ROOT / "target/limit/release/slowlab-limit"
BARE = ROOT / "target/release/examples/bare_hyper"

# Where a request's instructions go in the server: functions whose inclusive cost callgrind_annotate
# reports (the largest entry of each name; inlined copies are reported under the caller's name).
PARTS = {
    "hyper HTTP/1.1 connection (read, parse, call, write)":
        "hyper::proto::h1::dispatch::Dispatcher<D,Bs,I,T>::poll_catch",
    "  of it: reading and parsing the request head":
        "hyper::proto::h1::conn::Conn<I,B,T>::poll_read_head",
    "    of it: hyper's header read timer (--header-read-timeout)":
        "<hyper_util::rt::tokio::TokioSleep as core::future::future::Future>::poll",
    "  of it: the service's call (limits, Host, routing, plan)":
        "<slowlab_server::service::App as slowlab_server::server::Handler>::handle",
    "  of it: writing the response (the service's future included)":
        "hyper::proto::h1::dispatch::Dispatcher<D,Bs,I,T>::poll_write",
    "    of it: the service's future":
        "<slowlab_server::server::ConnFuture<F> as core::future::future::Future>::poll",
    "      of it: the delay future (record, wait, answer)":
        "slowlab_server::routes::serve::{{closure}}",
    "        of it: the answer (body, headers)": "slowlab_server::respond::answer_with",
    "        of it: the Server-Timing header": "slowlab_server::respond::server_timing",
    "the connection's watchdog": "slowlab_server::watch::watchdog::{{closure}}",
    "reading the socket": "<hyper_util::rt::tokio::TokioIo<T> as hyper::rt::io::Read>::poll_read",
    "allocation (jemalloc)": "_rjem_malloc",
    "deallocation (jemalloc)": "_rjem_sdallocx",
    "jemalloc's thread events (tcache GC, by bytes allocated)": "_rjem_je_te_event_trigger",
    "tokio worker: epoll and wake-ups": "tokio::runtime::io::driver::Driver::turn",
    # What a connection costs besides its requests (--per-connection).
    "the accept loop (accept, connection state, spawn, the drain's JoinSet)":
        "slowlab_server::server::run::{{closure}}",
    "  of it: spawning the connection's task": "tokio::task::spawn::spawn",
    "  of it: forgetting ended connections (JoinSet::try_join_next)":
        "tokio::task::join_set::JoinSet<T>::try_join_next",
    "hyper's HTTP/1.1 connection set-up (its read and write buffers)":
        "hyper::server::conn::http1::Builder::serve_connection",
}


def client_cmd(kind, fetch_bin, base, n, connections, delay=None):
    if delay is not None:
        return [str(fetch_bin), "fetch", "--count", str(n), "--delay", delay, "--mode", "async",
                "--output", "json", "--quiet", "--no-outcomes", "--base-url", base]
    if kind == "limit":
        return [str(LIMIT), "fetch", base + "/0", str(n), str(connections)]
    return [str(fetch_bin), "fetch", "--count", str(n), "--delay", "0", "--mode", "async",
            "--output", "json", "--quiet", "--base-url", base, "--concurrency", str(connections)]


def allocations(text):
    """Calls to jemalloc's malloc in a callgrind file (its callers' `calls=` lines)."""
    names, total, target = {}, 0, False
    for line in text.splitlines():
        if line.startswith("cfn="):
            m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line)
            if m and m.group(2):
                names[m.group(1)] = m.group(2)
            name = names.get(m.group(1), "") if m else line[4:]
            target = name.startswith("_rjem_malloc")
        elif line.startswith("fn="):
            m = re.match(r"fn=\((\d+)\) (.*)", line)
            if m:
                names[m.group(1)] = m.group(2)
        elif line.startswith("calls=") and target:
            total += int(line[6:].split()[0])
    return total


def server_instructions(server, client, n, parts):
    """Instructions of `server` while `client(port, n)` sends n requests; with `parts`, also
    the inclusive cost of each of PARTS over n."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        port = free_port()
        proc = subprocess.Popen(
            ["taskset", "-c", "1", "valgrind", "--tool=callgrind", "--trace-children=no",
             "--dump-instr=no", f"--callgrind-out-file={out}", *server(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_listening(port, proc)
            # The probe connection above is the same in both runs; let the server see it close.
            time.sleep(0.5)
            subprocess.run(["taskset", "-c", "0", *client(port, n)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True, timeout=1800)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=300)
        text = out.read_text() if out.exists() else ""
        total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if not total:
            raise SystemExit(f"callgrind wrote no summary for {server(port)}:\n{err[-2000:]}")
        split = attribute(out, n, PARTS) if parts else None
        return int(total.group(1)), allocations(text), split


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", action="append", default=[])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--client", choices=["limit", "fetch"], default="limit")
    parser.add_argument("--per-connection", action="store_true",
                        help="one connection per request, all at once (scenario 2's shape)")
    parser.add_argument("--delay", default="0", help="with --per-connection: the delay asked for")
    parser.add_argument("--parts", action="store_true")
    parser.add_argument("--no-bare", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()
    bins = {Path(b).name: Path(b) for b in (args.bin or [ROOT / "target/release/slowlab"])}
    fetch_bin = next(iter(bins.values()))
    servers = {name: (lambda port, b=b: [str(b), "serve", "--port", str(port)])
               for name, b in bins.items()}
    if not args.no_bare:
        servers["bare_hyper"] = lambda port: [str(BARE), str(port)]
    delay = args.delay if args.per_connection else None
    client = lambda port, n: client_cmd(args.client, fetch_bin, f"http://127.0.0.1:{port}", n,
                                        args.connections, delay)
    runs = {name: (lambda n, parts, server=server:
                   server_instructions(server, client, n, parts is not None))
            for name, server in servers.items()}
    counts, parts = count_rounds(runs, args.rounds, args.n, "request",
                                 PARTS if args.parts else None)
    per_request = medians(counts, "per_request")
    figures = {
        "client": "fetch, a connection per request" if args.per_connection else args.client,
        "connections": "n" if args.per_connection else args.connections,
        "delay": delay,
        "binaries": shown_binaries(bins),
        "instructions": counts,
        "instructions_per_request": per_request,
        "allocations_per_request": medians(counts, "allocations_per_request"),
    }
    if "bare_hyper" in per_request:
        figures["over_bare_hyper"] = {name: v - per_request["bare_hyper"]
                                      for name, v in per_request.items() if name != "bare_hyper"}
    if parts:
        figures["parts_per_request"] = parts
        figures["parts_note"] = ("inclusive instructions of each part over the 2N-request run, "
                                 "divided by 2N (start-up included in none; indented parts nest)")
    write_results("serve_cpu", args.n, figures, args.out)


if __name__ == "__main__":
    main()
