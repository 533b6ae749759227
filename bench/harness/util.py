"""Processes, ports, pinning and memory sampling for bench/run. Standard library only."""

import json
import os
import shlex
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
WORK = ROOT / "bench" / ".work"


def log(message):
    print(f"bench: {message}", flush=True)


def rel(path):
    """A path as written in commands and reports: relative to the repository root."""
    try:
        return str(Path(os.path.abspath(path)).relative_to(ROOT))
    except ValueError:
        return str(path)


def show(cmd):
    return " ".join(shlex.quote(rel(c) if os.path.isabs(str(c)) else str(c)) for c in cmd)


class Pinning:
    """Client on one core, server on another, when the machine lets us (`taskset -c`)."""

    def __init__(self):
        cpus = sorted(os.sched_getaffinity(0))
        have_taskset = subprocess.run(["sh", "-c", "command -v taskset"],
                                      capture_output=True).returncode == 0
        self.enabled = have_taskset and len(cpus) >= 2
        self.client_cpu = cpus[0]
        self.server_cpu = cpus[1] if len(cpus) >= 2 else cpus[0]
        self.reason = None if self.enabled else (
            "taskset not found" if not have_taskset else "only one CPU available")

    def client(self, cmd):
        return ["taskset", "-c", str(self.client_cpu), *cmd] if self.enabled else list(cmd)

    def server(self, cmd):
        return ["taskset", "-c", str(self.server_cpu), *cmd] if self.enabled else list(cmd)

    def describe(self):
        if self.enabled:
            return {"client_cpu": self.client_cpu, "server_cpu": self.server_cpu}
        return {"disabled": self.reason}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def vmrss_kb(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


class InFlightWatch:
    """Reads a slowlab server's VmHWM at the moment its /healthz first shows `n` requests in
    flight: all of them are waiting and none is answered yet, so that high-water mark is the
    memory of n waiting requests (plus the server's floor). Polls /healthz every 20 ms from a
    thread of the harness, while the client runs; /healthz itself is not counted in flight.
    `healthz` is the URL to poll when it is not the server's own (`slowlab proxy` serves it on
    its admin port, so that the proxied service keeps every path)."""

    def __init__(self, server, n, interval=0.02, healthz=None):
        self.server, self.n, self.interval = server, n, interval
        self.healthz = healthz or server.base_url + "/healthz"
        self.hwm_kb = None
        self.seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                _, body = http_get(self.healthz, timeout=2)
                in_flight = json.loads(body).get("in_flight", 0)
            except (OSError, ValueError):
                in_flight = 0
            self.seen = max(self.seen, in_flight)
            if in_flight >= self.n:
                self.hwm_kb = self.server.hwm_kb()
                return
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class Server:
    """A server process, pinned, waited for until its port answers, stopped on exit. `core` says
    where it runs: "server" (the server's core, as every server so far), "client" (beside the
    client, for a process that is not the one measured, such as the upstream behind a proxy) or
    None (unpinned)."""

    def __init__(self, name, cmd, port, pinning, cwd=ROOT, env=None, ready_timeout=30,
                 core="server"):
        self.name, self.port = name, port
        self.cmd = {"server": pinning.server, "client": pinning.client,
                    None: list}[core](cmd)
        self.out = tempfile.TemporaryFile()
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.cmd, cwd=cwd, env=env, stdout=self.out,
                                     stderr=self.err, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + ready_timeout
        while not port_in_use(port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                detail = self.stderr()[-600:].strip()
                self.stop()
                raise RuntimeError(f"{name} did not start on port {port}: {detail}")
            time.sleep(0.05)
        self.base_url = f"http://127.0.0.1:{port}"

    @property
    def pid(self):
        return self.proc.pid

    def rss_kb(self):
        return vmrss_kb(self.proc.pid)

    def hwm_kb(self):
        """The server's VmHWM: the most resident memory it has had since it started."""
        return vmrss_kb(self.proc.pid, "VmHWM")

    def stdout(self):
        self.out.seek(0)
        return self.out.read().decode(errors="replace")

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# How a client's peak memory is measured, recorded with every figure.
CLIENT_MEMORY_METHOD = "VmHWM of the client process, read every 5 ms until it exits"


class Result:
    def __init__(self, cmd, rc, stdout, stderr, wall, maxrss_kb, timed_out):
        self.cmd, self.rc, self.stdout, self.stderr = cmd, rc, stdout, stderr
        self.wall, self.maxrss_kb, self.timed_out = wall, maxrss_kb, timed_out
        self.memory_method = CLIENT_MEMORY_METHOD

    @property
    def ok(self):
        return self.rc == 0 and not self.timed_out

    def usage_error(self):
        """clap reports an unknown flag or value with exit 2 and 'error:' on stderr."""
        return self.rc == 2 and ("error:" in self.stderr or "Usage:" in self.stderr)

    def brief_error(self):
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        tail = " | ".join(text[-3:]) if text else ""
        return f"exit {self.rc}{' (timed out)' if self.timed_out else ''}: {tail}"[:400]


def run_client(cmd, pinning, timeout, cwd=ROOT, env=None, pin=True):
    """Runs a client to completion (or kills it at `timeout`). Its peak memory is its VmHWM (the
    kernel's high-water mark of its resident memory), read every 5 ms until it exits: an exited
    process has none, so the growth of its last few milliseconds can be missed.

    taskset execs the client in the same process, so the pid polled is the client's. Not our own
    wait4's ru_maxrss: a child started from this (large) Python process inherits the parent's
    resident size into ru_maxrss at exec, so every client smaller than the harness would report
    the harness's size."""
    full = pinning.client(cmd) if pin else list(cmd)
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    start = time.perf_counter()
    proc = subprocess.Popen(full, cwd=cwd, env=env, stdout=out, stderr=err,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    timed_out, status, hwm_kb = False, 0, 0
    deadline = time.monotonic() + timeout
    while True:
        # Read before reaping: VmHWM only grows, and an exited process has none.
        hwm_kb = max(hwm_kb, vmrss_kb(proc.pid, "VmHWM") or 0)
        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        if time.monotonic() > deadline:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, _ = os.wait4(proc.pid, 0)
            break
        time.sleep(0.005)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    return Result(full, proc.returncode, out.read().decode(errors="replace"),
                  err.read().decode(errors="replace"), wall, hwm_kb or None, timed_out)


def loadavg():
    """The 1, 5 and 15 minute load averages."""
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except (OSError, ValueError):
        return None


def cpu_busy(seconds=1.0):
    """The share of all CPUs' time spent busy (not idle, not waiting for I/O) over `seconds`,
    from /proc/stat: with nothing else running it is near 0."""
    def sample():
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle
    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    return round(1 - (idle1 - idle0) / total, 3) if total > 0 else None


def capture(cmd, timeout=60, cwd=ROOT):
    """Output of a short command, or None when it cannot run."""
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        return (p.stdout + p.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


def http_get(url, timeout=10):
    import urllib.request
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, resp.read().decode(errors="replace")
