"""What the experiments share: a free port, a server pinned to its own core, the results file.
Standard library only."""

import contextlib
import datetime
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(cmd, port, cpu=1, env=None):
    """Runs `cmd` (a server listening on `port`) on CPU `cpu` (None: unpinned), with `env` (None:
    this process's), until the block ends; yields its process once it accepts connections."""
    pinned = ["taskset", "-c", str(cpu), *cmd] if cpu is not None else list(cmd)
    proc = subprocess.Popen(pinned, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        proc.wait()


def attribute(out, n, parts, source=r"\S+?"):
    """The inclusive cost over `n` of each of `parts` ({name: function}) in callgrind file `out`,
    as callgrind_annotate reports it on lines whose source file matches `source`; a function
    named on several lines takes its highest cost."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out)],
                          capture_output=True, text=True, check=True).stdout
    best = {}
    for line in text.splitlines():
        m = re.match(rf"^\s*([\d,]+) \(\s*[\d.]+%\)\s+{source}:(.*?)(?: \[.*\])?$", line)
        if m:
            cost, function = int(m.group(1).replace(",", "")), m.group(2)
            best[function] = max(best.get(function, 0), cost)
    return {part: best[f] / n for part, f in parts.items() if f in best}


def proc_cpu(pid):
    """(user, system) seconds of a running process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def wait_listening(port, proc, timeout=120.0):
    """Returns once something accepts connections on `port`; exits with a message if `proc`
    (the process meant to listen there) ends first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the process for port {port} exited early ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on port {port}")


def count_rounds(runs, rounds, n, unit, parts_names=None):
    """Counts each of `runs` ({name: run(n, parts) -> (instructions, allocations, split)}) at n
    and at 2n, `rounds` times in turn; the difference over n is the cost of one more `unit`
    (start-up and shutdown cancel out). The 2n run of each name's first round is split into
    `parts_names` if given. Returns (counts by name, one entry per round; parts by name)."""
    counts = {name: [] for name in runs}
    parts = {}
    for _ in range(rounds):
        for name, run in runs.items():
            small, small_allocs, _ = run(n, None)
            wanted = parts_names if parts_names and name not in parts else None
            large, large_allocs, split = run(2 * n, wanted)
            if split is not None:
                parts[name] = split
            counts[name].append({"n": small, "2n": large,
                                 f"per_{unit}": (large - small) / n,
                                 f"allocations_per_{unit}": (large_allocs - small_allocs) / n})
            print(f"{name}: {(large - small) / n:.0f} instructions/{unit}", flush=True)
    return counts, parts


def medians(counts, field):
    """The median of `field` over each name's rounds."""
    return {name: statistics.median(r[field] for r in v) for name, v in counts.items()}


def shown_binaries(bins):
    """{name: path} of the binaries raced, as a results file shows them: relative to the
    project, or by file name alone (no machine paths in committed results)."""
    return {name: str(b.relative_to(ROOT)) if b.is_relative_to(ROOT) else b.name
            for name, b in bins.items()}


def write_results(experiment, n, figures, out):
    """Prints the experiment's results as JSON, and writes them to `out` when given: its name,
    when, the command, the load average at the end, and `figures`."""
    doc = {"experiment": experiment, "started": datetime.datetime.now(
        datetime.timezone.utc).isoformat(timespec="seconds"), "n": n,
        "command": " ".join(sys.argv), "loadavg": os.getloadavg(), **figures}
    text = json.dumps(doc, indent=2)
    if out:
        Path(out).write_text(text + "\n")
    print(text)
