#!/usr/bin/env python3
"""Where a server's CPU goes per connection in scenario 6's shape (10,000 concurrent `GET /1`, a
connection each), slowlab serve against the ceiling: each system call's share, page faults, user
space; in the phase that reads the requests and in the phase that answers them; and which of the
server's threads gave up the CPU, on their own or not.

    bench/experiments/connection_profile.py [--rounds 3] [--n 10000] [--slowlab BINARY]
                                            [--variant NAME=BINARY ...] [--limit BINARY]
                                            [--out FILE.json]

Each run starts a fresh server on CPU 1 (slowlab serve, the ceiling, or a --variant: another
slowlab binary, a lever) and samples it with `perf record -e cpu-clock -g -k CLOCK_MONOTONIC`
(a software event: no hardware counters needed; kernel and user stacks) while `slowlab fetch
--count N --delay 1 --mode async` runs on CPU 0. A sample belongs to the outermost way into the
kernel on its stack: a system call (the function `do_syscall_64` called, its `__x64_sys_` or
`do_` prefix dropped; or, when that function is `exit_to_user_mode_loop`, the switch to another
thread on the way back to user space), a page fault, an interrupt, or none (user space). Its
phase is the time it was taken: before the first wait can have ended (the start of the client
plus the 1 s asked for) is reading, from then on answering (the waits end, the answers are
written, the connections close). Figures per connection are each part's share of the
samples times the server's CPU time over the run (/proc/PID/stat), over N: microseconds, the
same unit for both servers. Per thread: voluntary and involuntary context switches over the run
(/proc/PID/task/*/status), by thread name.

Shares and counts barely move with the machine's load; times do (the load average is
recorded with every run). Medians over the rounds, contenders in turn within each round.
Needs perf (perf_event_paranoid at most 1, or root), taskset and the release builds. Standard
library only."""

import argparse
import collections
import os
import re
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import ROOT, free_port, proc_cpu, server, shown_binaries, write_results

LIMIT = ROOT / "target" / "limit" / "release" / "slowlab-limit"
SLOWLAB = ROOT / "target" / "release" / "slowlab"
CEILING = "ceiling"
ENTRY = re.compile(r"\b(do_syscall_64|asm_exc_page_fault|asm_(?:sysvec|common)_\w+)\b")
SYSCALL_PREFIXES = ("__x64_sys_", "__do_sys_", "__sys_", "do_", "ksys_")


# What `do_syscall_64` calls besides a system call's handler.
NOT_A_HANDLER = {"x64_sys_call"}
# The way back to user space, where the kernel switches to another thread that is due: its
# samples are that switch's cost, not the call's.
SWITCH_ON_RETURN = "exit_to_user_mode_loop"


def syscall_part(frames):
    """The part a sample inside a system call belongs to, from the frames `do_syscall_64`
    called (outermost first): `syscall NAME`, or the thread switch on the way out."""
    for frame in frames:
        words = frame.split()
        name = words[1] if len(words) > 1 else "?"
        if name in NOT_A_HANDLER:
            continue
        if name == SWITCH_ON_RETURN:
            return "switching threads on return from a system call"
        for prefix in SYSCALL_PREFIXES:
            if name.startswith(prefix):
                return f"syscall {name[len(prefix):]}"
        return f"syscall {name}"
    return "syscall (entry)"


def threads(pid):
    """{thread name: [voluntary, involuntary]} context switches, threads of a name summed."""
    out = collections.defaultdict(lambda: [0, 0])
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            status = (task / "status").read_text()
        except OSError:
            continue
        vol = re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M)
        inv = re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", status, re.M)
        out[name][0] += int(vol.group(1)) if vol else 0
        out[name][1] += int(inv.group(1)) if inv else 0
    return dict(out)


def classify(perf_data, answers_from):
    """perf samples -> {phase: Counter(part)}: the outermost kernel entry on each stack."""
    text = subprocess.run(["perf", "script", "-i", perf_data, "-F", "time,ip,sym"],
                          capture_output=True, text=True).stdout
    phases = {"reading": collections.Counter(), "answering": collections.Counter()}
    for sample in text.split("\n\n"):
        lines = sample.strip().splitlines()
        if not lines:
            continue
        m = re.match(r"\s*([\d.]+):", lines[0])
        if not m:
            continue
        part = "user space"
        frames = lines[1:][::-1]  # outermost first
        for i, frame in enumerate(frames):
            e = ENTRY.search(frame)
            if e:
                entry = e.group(1)
                part = (syscall_part(frames[i + 1:]) if entry == "do_syscall_64" else
                        "page fault" if entry == "asm_exc_page_fault" else "interrupt")
                break
        phase = "answering" if float(m.group(1)) >= answers_from else "reading"
        phases[phase][part] += 1
    return phases


def run_once(who, argv, client, n):
    port = free_port()
    ceiling = who == CEILING
    cmd = [argv, "serve", str(port)] if ceiling else [argv, "serve", "--port", str(port)]
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, server(cmd, port) as proc:
        data = str(Path(tmp) / "perf.data")
        perf = subprocess.Popen(["perf", "record", "-q", "-F", "4999", "-e", "cpu-clock", "-g",
                                 "-k", "CLOCK_MONOTONIC", "-p", str(proc.pid), "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # perf attached
        cpu0, switches0 = sum(proc_cpu(proc.pid)), threads(proc.pid)
        start = time.monotonic()
        out = subprocess.run(["taskset", "-c", "0", client, "fetch", "--count", str(n),
                              "--delay", "1", "--mode", "async", "--output", "json", "--quiet",
                              "--no-outcomes", "--base-url", f"http://127.0.0.1:{port}"],
                             capture_output=True, text=True, timeout=120).stdout
        cpu = sum(proc_cpu(proc.pid)) - cpu0
        switches = {name: [v - switches0.get(name, [0, 0])[0], i - switches0.get(name, [0, 0])[1]]
                    for name, (v, i) in threads(proc.pid).items()}
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=60)
        ok = f'"ok":{n}' in out.replace(" ", "")
        phases = classify(data, start + 1.0)
    total = sum(sum(c.values()) for c in phases.values())
    per_conn = {phase: {part: count / total * cpu / n * 1e6
                        for part, count in counts.most_common()}
                for phase, counts in phases.items()} if total else {}
    return {"loadavg_1m": load, "all_ok": ok, "server_cpu_s": cpu, "samples": total,
            "cpu_us_per_connection": {phase: sum(parts.values())
                                      for phase, parts in per_conn.items()},
            "parts_us_per_connection": per_conn,
            "context_switches_by_thread": switches}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--slowlab", default=str(SLOWLAB), help="slowlab serve, and the client")
    ap.add_argument("--variant", action="append", default=[], help="NAME=BINARY: a lever")
    ap.add_argument("--limit", default=str(LIMIT), help="the ceiling (bench/limit)")
    ap.add_argument("--out")
    args = ap.parse_args()
    contenders = {"slowlab serve": args.slowlab, CEILING: args.limit}
    for spec in args.variant:
        name, _, binary = spec.partition("=")
        contenders[name] = binary
    runs = {who: [] for who in contenders}
    for rnd in range(args.rounds):
        for who, argv in contenders.items():
            run = run_once(who, argv, args.slowlab, args.n)
            runs[who].append({"round": rnd, **run})
            cpu = run["cpu_us_per_connection"]
            print(f"round {rnd} {who:28} cpu {run['server_cpu_s']:.2f} s  reading "
                  f"{cpu.get('reading', 0):5.1f} us  answering {cpu.get('answering', 0):5.1f} us"
                  f"  per connection  load {run['loadavg_1m']:.1f}", flush=True)
            time.sleep(1)
    medians = {}
    for who, rows in runs.items():
        parts = {}
        for phase in ("reading", "answering"):
            names = {p for r in rows for p in r["parts_us_per_connection"].get(phase, {})}
            parts[phase] = dict(sorted(
                ((p, statistics.median(r["parts_us_per_connection"].get(phase, {}).get(p, 0)
                                       for r in rows)) for p in names),
                key=lambda kv: -kv[1]))
        names = {t for r in rows for t in r["context_switches_by_thread"]}
        medians[who] = {
            "server_cpu_s": statistics.median(r["server_cpu_s"] for r in rows),
            "cpu_us_per_connection": {
                phase: statistics.median(r["cpu_us_per_connection"].get(phase, 0) for r in rows)
                for phase in ("reading", "answering")},
            "parts_us_per_connection": parts,
            "context_switches_by_thread": {
                t: {"voluntary": statistics.median(r["context_switches_by_thread"].get(
                        t, [0, 0])[0] for r in rows),
                    "involuntary": statistics.median(r["context_switches_by_thread"].get(
                        t, [0, 0])[1] for r in rows)}
                for t in sorted(names)},
            "loadavg_1m": statistics.median(r["loadavg_1m"] for r in rows),
        }
    write_results("connection_profile", args.n, {
        "method": "perf record -e cpu-clock -g on the server (CPU 1) during slowlab fetch "
                  "--count N --delay 1 --mode async (CPU 0); each sample booked to the "
                  "outermost kernel entry on its stack, to 'reading' before the client's start "
                  "+ 1 s and 'answering' after; microseconds per connection = share of "
                  "samples x server CPU time / N; context switches per thread name from /proc",
        "contenders": shown_binaries({who: Path(b) for who, b in contenders.items()}),
        "rounds": args.rounds, "medians": medians, "runs": runs,
    }, args.out)


if __name__ == "__main__":
    main()
