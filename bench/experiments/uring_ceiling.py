#!/usr/bin/env python3
"""What io_uring gains for the least work a server can do (issue 23): the ceiling's epoll server
(bench/limit `serve PORT`) against the same server on io_uring (`serve PORT --io uring`), on
scenario 3's shape and, unless --no-s2, scenario 2's.

    bench/experiments/uring_ceiling.py [--rounds 5] [--seconds 3] [--n 100000] [--n2 10000]
                                       [--no-s2] [--out FILE.json]

Scenario 3's shape: GET /0 over 50 keep-alive connections, driven by wrk (-t1 -c50, as bench/run
runs it) and by the ceiling's client (N requests), client on CPU 0, servers on CPU 1. Both servers
run for the whole experiment; each round runs every (server, client) pair once, the servers'
order alternating round by round (ABAB, BAAB...), after one warm-up round that is not counted.
Per run: requests/s; the server's user and kernel CPU per request (/proc/PID/stat), its context
switches per request (/proc/PID/status) and, when perf can count tracepoints, its system calls
per request (raw_syscalls:sys_enter, counted in a separate run so the counting costs the timed
run nothing). Scenario 2's shape: N2 connections each sending one GET /1 (the ceiling's client,
a connection a request): wall time and server CPU.

The machine may be busy: the load average is recorded with every run. Requests/s moves with the
load; CPU per request and system calls per request move much less, so the verdict is given on
all three. Medians over the rounds, and the round-by-round ratio uring/epoll. Needs bench/limit's
release build (target/limit), wrk, taskset; perf optional. Standard library only."""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import time
from pathlib import Path

from common import ROOT, free_port, proc_cpu, server, write_results

LIMIT = str(ROOT / "target" / "limit" / "release" / "slowlab-limit")
SERVERS = {"epoll": [], "io_uring": ["--io", "uring"]}
BAR = 1.15


def ctx_switches(pid):
    text = Path(f"/proc/{pid}/status").read_text()
    return sum(int(m) for m in re.findall(r"ctxt_switches:\s+(\d+)", text))


def parse_wrk(text):
    m = re.search(r"(\d+) requests in", text)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    return int(m.group(1)), float(rate.group(1))


def parse_limit(text):
    import json
    s = json.loads(text.strip().splitlines()[-1])["summary"]
    return s["ok"], s["ok"] / s["wall"], s["wall"]


def client_cmd(kind, port, args):
    if kind == "wrk":
        return ["wrk", "-t1", "-c50", f"-d{args.seconds}s", f"http://127.0.0.1:{port}/0"]
    return [LIMIT, "fetch", f"http://127.0.0.1:{port}/0", str(args.n), "50"]


def run_client(kind, port, args):
    """Runs one load; (requests done, requests/s)."""
    out = subprocess.run(["taskset", "-c", "0", *client_cmd(kind, port, args)],
                         capture_output=True, text=True, timeout=300).stdout
    if kind == "wrk":
        return parse_wrk(out)
    done, rate, _ = parse_limit(out)
    return done, rate


def perf_works():
    if not shutil.which("perf"):
        return False
    r = subprocess.run(["perf", "stat", "-e", "raw_syscalls:sys_enter", "-x,", "true"],
                       capture_output=True, text=True)
    return r.returncode == 0


def counted_syscalls(pid, load):
    """System calls the process makes while `load()` runs: (calls, load's result)."""
    perf = subprocess.Popen(["perf", "stat", "-e", "raw_syscalls:sys_enter", "-x,", "-p",
                             str(pid)], stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    result = load()
    perf.send_signal(signal.SIGINT)
    err = perf.communicate(timeout=30)[1]
    m = re.search(r"^(\d+),[^,]*,raw_syscalls:sys_enter", err, re.M)
    return (int(m.group(1)) if m else None), result


def scenario_3(args, procs, ports, use_perf):
    pairs = [(s, c) for s in SERVERS for c in ("wrk", "limit client")]
    runs = {f"{s} / {c}": [] for s, c in pairs}
    for rnd in range(args.rounds + 1):
        order = list(SERVERS) if rnd % 2 == 0 else list(reversed(SERVERS))
        for c in ("wrk", "limit client"):
            for s in order:
                pid = procs[s].pid
                cpu0, cs0, load = proc_cpu(pid), ctx_switches(pid), os.getloadavg()[0]
                done, rate = run_client(c, ports[s], args)
                cpu1, cs1 = proc_cpu(pid), ctx_switches(pid)
                row = {"round": rnd, "loadavg_1m": load, "requests": done, "rps": rate,
                       "user_us_per_req": (cpu1[0] - cpu0[0]) / done * 1e6,
                       "kernel_us_per_req": (cpu1[1] - cpu0[1]) / done * 1e6,
                       "ctx_switches_per_req": (cs1 - cs0) / done}
                if use_perf:
                    calls, (pdone, _) = counted_syscalls(pid, lambda: run_client(c, ports[s], args))
                    row["syscalls_per_req"] = calls / pdone if calls is not None else None
                row["cpu_us_per_req"] = row["user_us_per_req"] + row["kernel_us_per_req"]
                print(f"round {rnd} {s:8} {c:12} {rate:10,.0f} req/s  "
                      f"cpu {row['cpu_us_per_req']:.2f} us/req  "
                      f"syscalls {row.get('syscalls_per_req') or 0:.3f}/req  load {load:.1f}",
                      flush=True)
                if rnd:  # round 0 is the warm-up
                    runs[f"{s} / {c}"].append(row)
    return runs


def scenario_2(args, procs, ports):
    runs = {s: [] for s in SERVERS}
    for rnd in range(args.rounds + 1):
        order = list(SERVERS) if rnd % 2 == 0 else list(reversed(SERVERS))
        for s in order:
            pid = procs[s].pid
            cpu0, load = proc_cpu(pid), os.getloadavg()[0]
            out = subprocess.run(["taskset", "-c", "0", LIMIT, "fetch",
                                  f"http://127.0.0.1:{ports[s]}/1", str(args.n2), str(args.n2)],
                                 capture_output=True, text=True, timeout=300).stdout
            done, _, wall = parse_limit(out)
            cpu1 = proc_cpu(pid)
            row = {"round": rnd, "loadavg_1m": load, "ok": done, "wall": wall,
                   "server_user_s": cpu1[0] - cpu0[0], "server_kernel_s": cpu1[1] - cpu0[1]}
            print(f"round {rnd} {s:8} s2 ok {done} wall {wall:.3f} s  "
                  f"server cpu {row['server_user_s'] + row['server_kernel_s']:.2f} s  "
                  f"load {load:.1f}", flush=True)
            if rnd:
                runs[s].append(row)
            time.sleep(1)  # let the closed connections' TIME_WAIT settle a little
    return runs


def medians(rows, keys):
    return {k: statistics.median(r[k] for r in rows) for k in keys
            if all(r.get(k) is not None for r in rows)}


def paired(a, b, key):
    """Median over rounds of a[key] / b[key], rounds paired in order."""
    return statistics.median(x[key] / y[key] for x, y in zip(a, b) if y[key])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--n2", type=int, default=10000)
    ap.add_argument("--no-s2", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()
    check = subprocess.run([LIMIT, "check-uring"], capture_output=True, text=True)
    if check.returncode:
        raise SystemExit(f"io_uring unavailable: {check.stderr.strip()}")
    use_perf = perf_works()
    ports = {s: free_port() for s in SERVERS}
    procs = {}
    with server([LIMIT, "serve", str(ports["epoll"])], ports["epoll"]) as procs["epoll"], \
            server([LIMIT, "serve", str(ports["io_uring"]), "--io", "uring"],
                   ports["io_uring"]) as procs["io_uring"]:
        s3 = scenario_3(args, procs, ports, use_perf)
        s2 = None if args.no_s2 else scenario_2(args, procs, ports)
    keys3 = ["rps", "user_us_per_req", "kernel_us_per_req", "cpu_us_per_req",
             "ctx_switches_per_req", "syscalls_per_req", "loadavg_1m"]
    summary3 = {}
    for c in ("wrk", "limit client"):
        e, u = s3[f"epoll / {c}"], s3[f"io_uring / {c}"]
        summary3[c] = {"epoll": medians(e, keys3), "io_uring": medians(u, keys3),
                       "rps_uring_over_epoll": paired(u, e, "rps"),
                       "cpu_per_req_epoll_over_uring": paired(e, u, "cpu_us_per_req")}
    figures = {"bar": BAR, "syscalls_counted": use_perf, "scenario_3": {"runs": s3,
                                                                         "medians": summary3}}
    if s2:
        keys2 = ["wall", "server_user_s", "server_kernel_s", "loadavg_1m"]
        figures["scenario_2"] = {
            "runs": s2, "n": args.n2,
            "medians": {s: medians(rows, keys2) for s, rows in s2.items()},
            "wall_epoll_over_uring": paired(s2["epoll"], s2["io_uring"], "wall")}
    write_results("uring-ceiling", args.n, figures, args.out)


if __name__ == "__main__":
    main()
