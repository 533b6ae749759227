#!/usr/bin/env python3
"""Scenario 5's cost per HTTP/2 stream in user-space instructions (callgrind): slowlab serve's
beside the bare hyper server's, and, with `--side client`, slowlab fetch --http2's against bare
hyper.

    bench/experiments/h2_stream_cpu.py [--side server|client] [--bin PATH]... [--n 20000]
                                       [--rounds 2] [--connections 10] [--delay 0]
                                       [--max-streams 10100] [--parts] [--no-bare]
                                       [--out FILE.json]

The shape is scenario 5's: `slowlab fetch --http2 --connections 10 --count N --delay D --mode
async`, every stream sent at once (the server allows `--max-streams` per connection, scenario 5's
`--h2-max-streams 10100`; bare_hyper is given the same limit). `--delay 0` (the default) answers
at once; `--delay 1` adds each stream's wait on the timer, as in scenario 5's `GET /5`. bare_hyper
answers every path at once with `{"time_elapsed": 0}`, so it is always sent `GET /0`, which the
client then finds right.

Server side (the default): the server runs under callgrind on CPU 1, the client outside it on CPU
0 (slowlab fetch of the first `--bin`). Each `--bin` is a slowlab binary served as `slowlab serve
--h2-max-streams M` (e.g. before and after a change); they and bare_hyper
(target/release/examples/bare_hyper PORT M) are measured in the same rounds. Client side: each
`--bin`'s `slowlab fetch --http2` runs under callgrind on CPU 0 against bare_hyper on CPU 1
(`GET /0`, whatever `--delay`).

Method as in serve_cpu.py: two runs of N and 2N streams; start-up, the connections' set-up and
the shutdown (SIGTERM for the server) are the same in both, so the difference of the totals over N
is the cost of one more stream. Allocations (calls to jemalloc's malloc) are counted the same way.
With `--parts`, the 2N run of each program is split by function: inclusive instructions of a few
functions (callgrind_annotate --inclusive=yes) over 2N. Needs valgrind, the release build and the
bare_hyper example. Standard library only."""

import argparse
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from common import (ROOT, attribute, count_rounds, free_port, medians, server, shown_binaries,
                    wait_listening, write_results)
from serve_cpu import allocations

BARE = ROOT / "target/release/examples/bare_hyper"

# Where a stream's instructions go in the server (the largest inclusive entry of each name).
SERVER_PARTS = {
    "h2's connection (frames read and written, streams accepted)":
        "h2::proto::connection::Connection<T,P,B>::poll",
    "  of it: reading and handling frames": "h2::proto::connection::DynConnection<B>::recv_frame",
    "    of it: a request's HEADERS (decoding, the stream's state)":
        "h2::proto::streams::streams::DynStreams<B>::recv_headers",
    "  of it: writing frames (queued frames encoded into the write buffer)":
        "h2::proto::streams::prioritize::Prioritize::buffer_pending",
    "    of it: the response's HEADERS frame (HPACK encoding)":
        "h2::frame::headers::Headers::encode",
    "spawning a stream's task": "<E as hyper::rt::bounds::h2_server::Http2ServerConnExec<F,B>>"
                                "::execute_h2stream",
    "a stream's task (hyper's H2Stream)":
        "<hyper::proto::h2::server::H2Stream<F,B,Ex> as core::future::future::Future>::poll",
    "  of it: the service's call (limits, Host, routing, plan)":
        "<slowlab_server::service::App as slowlab_server::server::Handler>::handle",
    "  of it: the service's future": "<slowlab_server::server::ConnFuture<F> as core::future::"
                                     "future::Future>::poll",
    "    of it: the delay future (record, wait, answer)": "slowlab_server::routes::serve::{{closure}}",
    "      of it: the answer (body, headers)": "slowlab_server::respond::answer_with",
    "      of it: the Server-Timing header": "slowlab_server::respond::server_timing",
    "  of it: hyper stripping connection headers": "hyper::proto::h2::strip_connection_headers",
    "  of it: handing the response to h2 (send_response)":
        "h2::server::SendResponse<B>::send_response",
    "  of it: sending the body (hyper's PipeToSendStream)":
        "<hyper::proto::h2::PipeToSendStream<S> as core::future::future::Future>::poll",
    "the connection's watchdog": "slowlab_server::watch::watchdog::{{closure}}",
    "following the frames read (H2Frames)": "slowlab_server::watch::H2Frames::follow",
    "growing the stream slab (slab insert)": "slab::Slab<T>::insert_at",
    "header maps growing (HeaderMap::try_grow)": "http::header::map::HeaderMap<T>::try_grow",
    "allocation (jemalloc)": "_rjem_malloc",
    "reallocation (jemalloc)": "_rjem_realloc",
    "deallocation (jemalloc)": "_rjem_sdallocx",
    "memcpy": "__memcpy_avx_unaligned_erms",
    "tokio worker: epoll and wake-ups": "tokio::runtime::io::driver::Driver::turn",
}

CLIENT_PARTS = {
    "h2's connection (frames read and written)": "h2::proto::connection::Connection<T,P,B>::poll",
    "  of it: reading and handling frames": "h2::proto::connection::DynConnection<B>::recv_frame",
    "  of it: writing frames": "h2::proto::streams::prioritize::Prioritize::buffer_pending",
    "    of it: a request's HEADERS frame (HPACK encoding)": "h2::frame::headers::Headers::encode",
    "opening a stream (SendRequest::send_request)":
        "h2::client::SendRequest<B>::send_request",
    "allocation (jemalloc)": "_rjem_malloc",
    "reallocation (jemalloc)": "_rjem_realloc",
    "deallocation (jemalloc)": "_rjem_sdallocx",
    "memcpy": "__memcpy_avx_unaligned_erms",
    "tokio worker: epoll and wake-ups": "tokio::runtime::io::driver::Driver::turn",
}


def fetch_cmd(binary, base, n, args, delay=None):
    return [str(binary), "fetch", "--count", str(n), "--delay", delay or args.delay, "--mode",
            "async",
            "--output", "json", "--quiet", "--base-url", base, "--http2", "--connections",
            str(args.connections)]


def summary_of(out, n, parts):
    text = out.read_text() if out.exists() else ""
    total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    if not total:
        return None
    return int(total.group(1)), allocations(text), (attribute(out, n, parts) if parts else None)


def server_run(server_cmd, fetch_bin, n, args, parts, delay=None):
    """Instructions of the server `server_cmd(port)` while the client sends n streams (asking
    for `delay`, by default --delay)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        port = free_port()
        proc = subprocess.Popen(
            ["taskset", "-c", "1", "valgrind", "--tool=callgrind", "--trace-children=no",
             "--dump-instr=no", f"--callgrind-out-file={out}", *server_cmd(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_listening(port, proc)
            time.sleep(0.5)  # the probe connection's close, the same in both runs
            subprocess.run(["taskset", "-c", "0",
                            *fetch_cmd(fetch_bin, f"http://127.0.0.1:{port}", n, args, delay)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                           timeout=900)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=300)
        got = summary_of(out, n, parts)
        if got is None:
            raise SystemExit(f"callgrind wrote no summary for the server:\n{err[-2000:]}")
        return got


def client_run(fetch_bin, n, args, parts):
    """Instructions of `slowlab fetch --http2` (fetch_bin) sending n streams to bare_hyper."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, \
            server([str(BARE), str(port), str(args.max_streams)], port, cpu=1):
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(
            ["taskset", "-c", "0", "valgrind", "--tool=callgrind", "--trace-children=no",
             "--dump-instr=no", f"--callgrind-out-file={out}",
             *fetch_cmd(fetch_bin, f"http://127.0.0.1:{port}", n, args, "0")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=1800)
        got = summary_of(out, n, parts)
        if done.returncode != 0 or got is None:
            raise SystemExit(f"the client failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return got


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", choices=["server", "client"], default="server")
    parser.add_argument("--bin", action="append", default=[])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--delay", default="0")
    parser.add_argument("--max-streams", type=int, default=10100)
    parser.add_argument("--parts", action="store_true")
    parser.add_argument("--no-bare", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()
    bins = {Path(b).name: Path(b).resolve() for b in (args.bin or [ROOT / "target/release/slowlab"])}
    fetch_bin = next(iter(bins.values()))
    if args.side == "server":
        part_names = SERVER_PARTS
        runs = {name: (lambda n, p, b=b: server_run(
            lambda port: [str(b), "serve", "--port", str(port), "--h2-max-streams",
                          str(args.max_streams)], fetch_bin, n, args, p))
            for name, b in bins.items()}
        if not args.no_bare:
            runs["bare_hyper"] = lambda n, p: server_run(
                lambda port: [str(BARE), str(port), str(args.max_streams)], fetch_bin, n, args, p,
                "0")
    else:
        part_names = CLIENT_PARTS
        runs = {name: (lambda n, p, b=b: client_run(b, n, args, p)) for name, b in bins.items()}
    counts, parts = count_rounds(runs, args.rounds, args.n, "stream",
                                 part_names if args.parts else None)
    per_stream = medians(counts, "per_stream")
    figures = {
        "side": args.side,
        "client": "slowlab fetch --http2 (of the first binary)" if args.side == "server"
                  else "each binary's slowlab fetch --http2, against bare_hyper",
        "connections": args.connections,
        "delay": args.delay,
        "max_streams": args.max_streams,
        "binaries": shown_binaries(bins),
        "instructions": counts,
        "instructions_per_stream": per_stream,
        "allocations_per_stream": medians(counts, "allocations_per_stream"),
    }
    if "bare_hyper" in per_stream:
        figures["over_bare_hyper"] = {name: v - per_stream["bare_hyper"]
                                      for name, v in per_stream.items() if name != "bare_hyper"}
    if parts:
        figures["parts_per_stream"] = parts
        figures["parts_note"] = ("inclusive instructions of each part over the 2N-stream run, "
                                 "divided by 2N (start-up included; indented parts nest)")
    write_results("h2_stream_cpu", args.n, figures, args.out)


if __name__ == "__main__":
    main()
