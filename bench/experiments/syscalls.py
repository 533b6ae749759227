#!/usr/bin/env python3
"""Where the time goes, per request: system calls by kind (strace -c -f), user and kernel CPU
(rusage or /proc/PID/stat) and context switches (rusage or /proc/PID/task/*/status), for the
servers and the clients of bench/run's scenarios 2-4.

    bench/experiments/syscalls.py [--n2 2000] [--n 20000] [--only CASE,...] [--slowlab BINARY]
                                  [--out FILE.json]

Each case measures one program (the "measured" side) while a fixed partner does the other side:
  2 server: N2 connections each sending one GET /1 (partner: the ceiling's client)
  2 client: N2 x GET /1, a connection each, against slowlab serve
  3 server: N x GET /0 over 50 keep-alive connections (partner: the ceiling's client)
  4 client: N x GET /0 over 50 connections against the bare hyper server
Two runs per case: one under strace for the calls (strace slows the program, so calls that
depend on timing, such as epoll_wait per request, come out lower than at full speed), one
without it for CPU and context switches. Counts, unlike times, barely move with the machine's
load; the load average is recorded. wrk has no request count: its figures are divided by the
requests it reports. `--slowlab` names the slowlab binary measured (and used as a client),
target/release/slowlab by default, so that two builds can be compared. Needs strace, the
release build, the bare_hyper example and bench/limit's build; wrk and oha are measured when
installed. Standard library only."""

import argparse
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from common import ROOT, free_port, proc_cpu, write_results

RELEASE = ROOT / "target" / "release"
SLOWLAB = str(RELEASE / "slowlab")
BARE = str(RELEASE / "examples" / "bare_hyper")
LIMIT = str(ROOT / "target" / "limit" / "release" / "slowlab-limit")


def servers(port):
    return {"slowlab serve": [SLOWLAB, "serve", "--port", str(port)],
            "bare hyper": [BARE, str(port)],
            "ceiling (bench/limit)": [LIMIT, "serve", str(port)]}


def clients(url, n, connections, delay):
    out = {"slowlab fetch": [SLOWLAB, "fetch", "--count", str(n), "--delay", delay, "--mode",
                             "async", "--concurrency", str(connections), "--output", "json",
                             "--no-outcomes", "--quiet", "--base-url", url],
           "ceiling (bench/limit)": [LIMIT, "fetch", f"{url}/{delay}", str(n), str(connections)]}
    if shutil.which("wrk") and delay == "0":
        out["wrk"] = ["wrk", "-t1", f"-c{connections}", "-d1s", f"{url}/0"]
    if shutil.which("oha"):
        out["oha"] = ["oha", "-n", str(n), "-c", str(connections), "--no-tui", f"{url}/{delay}"]
    return out


def parse_strace(text):
    """strace -c's table as {syscall: {"calls": c, "errors": e}}."""
    calls = {}
    for line in text.splitlines():
        tokens = line.split()
        if len(tokens) in (5, 6) and re.fullmatch(r"[\d.]+", tokens[0]) and tokens[-1] != "total":
            calls[tokens[-1]] = {"calls": int(tokens[3]),
                                 "errors": int(tokens[4]) if len(tokens) == 6 else 0}
    return calls


def wait_port(port):
    import socket
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def proc_switches(pid):
    """Voluntary plus involuntary context switches of all of a process's threads."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:
            continue
        total += sum(int(v) for v in re.findall(r"ctxt_switches:\s+(\d+)", text))
    return total


def run_client(cmd, traced, out):
    """Runs a client to its end on CPU 0: (stdout, user s, system s, context switches)."""
    if traced:
        cmd = ["strace", "-f", "-c", "-o", out, *cmd]
    proc = subprocess.Popen(["taskset", "-c", "0", *cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    stdout = proc.stdout.read()
    _, _, usage = os.wait4(proc.pid, 0)
    return stdout, usage.ru_utime, usage.ru_stime, usage.ru_nvcsw + usage.ru_nivcsw


def requests_done(name, stdout, n):
    if name == "wrk":
        m = re.search(r"(\d+) requests in", stdout)
        return int(m.group(1)) if m else None
    return n


class Serving:
    """A server on CPU 1, under strace when traced; its summary is read after SIGTERM.

    Not SIGINT: a program started in the background by a non-interactive shell (as bench/run is
    in CI, or under nohup) inherits SIGINT ignored, so bare hyper and the ceiling, which install
    no handler for it, did not exit, and every stop waited out the 30 s timeout."""

    def __init__(self, cmd, port, traced, out):
        self.traced, self.out = traced, out
        full = ["strace", "-f", "-c", "-o", out, *cmd] if traced else cmd
        self.proc = subprocess.Popen(["taskset", "-c", "1", *full], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(port)
        self.pid = self.proc.pid
        if traced:  # the server is strace's child
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
            self.pid = int(children[0])
        time.sleep(0.2)  # the readiness probe's connection closed
        self.idle_fds = self.open_fds()

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def stop(self):
        # Every server gets to close its connections inside the count (the reads that find the
        # client's FIN, the closes), so that each connection's calls are counted whole.
        deadline = time.monotonic() + 10
        while self.open_fds() > self.idle_fds and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()


def measure_server(name, n, connections, delay):
    """One server under the ceiling's client: calls per request, and CPU and switches."""
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for traced in (True, False):
            port = free_port()
            out = str(Path(tmp) / "strace.txt")
            srv = Serving(servers(port)[name], port, traced, out)
            try:
                before_cpu, before_sw = proc_cpu(srv.pid), proc_switches(srv.pid)
                url = f"http://127.0.0.1:{port}"
                stdout, *_ = run_client(clients(url, n, connections, delay)
                                        ["ceiling (bench/limit)"], False, None)
                if f'"ok":{n}' not in stdout:
                    raise RuntimeError(f"{name}: not every request succeeded: {stdout}")
                if not traced:
                    user, system = (a - b for a, b in zip(proc_cpu(srv.pid), before_cpu))
                    result.update(user_us=user / n * 1e6, system_us=system / n * 1e6,
                                  switches=(proc_switches(srv.pid) - before_sw) / n)
            finally:
                srv.stop()
            if traced:
                result["calls"] = per_request(parse_strace(Path(out).read_text()), n)
    return result


def measure_client(name, n, connections, delay, server_name):
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        srv = Serving(servers(port)[server_name], port, False, None)
        try:
            for traced in (True, False):
                out = str(Path(tmp) / "strace.txt")
                cmd = clients(f"http://127.0.0.1:{port}", n, connections, delay)[name]
                stdout, user, system, switches = run_client(cmd, traced, out)
                done = requests_done(name, stdout, n)
                if not done:
                    raise RuntimeError(f"{name}: no request count in its output: {stdout[-300:]}")
                if traced:
                    result["calls"] = per_request(parse_strace(Path(out).read_text()), done)
                    result["requests_traced"] = done
                else:
                    result.update(user_us=user / done * 1e6, system_us=system / done * 1e6,
                                  switches=switches / done, requests=done)
        finally:
            srv.stop()
    return result


def per_request(calls, n):
    table = {k: {"calls": v["calls"] / n, "errors": v["errors"] / n} for k, v in calls.items()}
    table["total"] = {"calls": sum(v["calls"] for v in calls.values()) / n,
                      "errors": sum(v["errors"] for v in calls.values()) / n}
    return dict(sorted(table.items(), key=lambda kv: -kv[1]["calls"]))


def main():
    global SLOWLAB
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n2", type=int, default=2000)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--only", help="comma-separated case names, e.g. '3 server: bare hyper'")
    parser.add_argument("--slowlab", default=SLOWLAB, help="the slowlab binary to measure")
    parser.add_argument("--out")
    args = parser.parse_args()
    SLOWLAB = args.slowlab
    cases = {}
    for name in ("slowlab serve", "bare hyper", "ceiling (bench/limit)"):
        cases[f"2 server: {name}"] = lambda name=name: measure_server(name, args.n2, args.n2, "1")
        cases[f"3 server: {name}"] = lambda name=name: measure_server(name, args.n, 50, "0")
    for name in ("slowlab fetch", "ceiling (bench/limit)"):
        cases[f"2 client: {name}"] = lambda name=name: measure_client(
            name, args.n2, args.n2, "1", "slowlab serve")
    for name in clients("http://x", 1, 1, "0"):
        cases[f"4 client: {name}"] = lambda name=name: measure_client(
            name, args.n, 50, "0", "bare hyper")
    wanted = set(args.only.split(",")) if args.only else set(cases)
    results = {}
    for case, run in cases.items():
        if case in wanted:
            print(f"{case} ...", flush=True)
            started = time.monotonic()
            results[case] = run()
            results[case]["seconds"] = round(time.monotonic() - started, 1)
    missing = [t for t in ("wrk", "oha") if not shutil.which(t)]
    write_results("syscalls", args.n, {"n2": args.n2, "not_installed": missing,
                                       "cases": results}, args.out)


if __name__ == "__main__":
    main()
