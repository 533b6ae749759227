"""Processes, ports, pinning and memory sampling for bench/run. Standard library only."""

import functools
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


class RssSampler:
    """Polls VmRSS of one process every few milliseconds and keeps the peak."""

    def __init__(self, pid, interval=0.01):
        self.pid, self.interval = pid, interval
        self.peak = vmrss_kb(pid) or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            rss = vmrss_kb(self.pid)
            if rss is not None and rss > self.peak:
                self.peak = rss
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class Server:
    """A server process, pinned, waited for until its port answers, stopped on exit."""

    def __init__(self, name, cmd, port, pinning, cwd=ROOT, env=None, ready_timeout=30):
        self.name, self.port = name, port
        self.cmd = pinning.server(cmd)
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


class Result:
    def __init__(self, cmd, rc, stdout, stderr, wall, maxrss_kb, timed_out, server_peak_kb=None):
        self.cmd, self.rc, self.stdout, self.stderr = cmd, rc, stdout, stderr
        self.wall, self.maxrss_kb, self.timed_out = wall, maxrss_kb, timed_out
        self.server_peak_kb = server_peak_kb

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


@functools.lru_cache(maxsize=None)
def gnu_time():
    """GNU time, which reports a child's peak RSS; None when it is not installed."""
    path = "/usr/bin/time"
    if os.access(path, os.X_OK) and "GNU" in (capture([path, "--version"]) or ""):
        return path
    return None


def time_output_kb(path):
    """The %M figure GNU time wrote: its last line (a line before it tells a non-zero exit)."""
    try:
        with open(path) as f:
            lines = [line.strip() for line in f if line.strip()]
        return int(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None


def run_client(cmd, pinning, timeout, sample_pid=None, cwd=ROOT, env=None, pin=True):
    """Runs a client to completion (or kills it at `timeout`). Its peak RSS comes from GNU time
    (`/usr/bin/time -f %M`) when installed, else from the last VmHWM (the kernel's high-water
    mark) read while it runs, which misses the last few milliseconds; the server's (sample_pid)
    from polling VmRSS while the client runs.

    Not our own wait4's ru_maxrss: a child started from this (large) Python process inherits the
    parent's resident size into ru_maxrss at exec, so every client smaller than the harness
    would report the harness's size. GNU time forks the client from its own small process."""
    full = pinning.client(cmd) if pin else list(cmd)
    timed = tempfile.NamedTemporaryFile(prefix="bench-rss-", delete=False) if gnu_time() else None
    if timed:
        timed.close()
        full = [gnu_time(), "-f", "%M", "-o", timed.name] + full
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    sampler = RssSampler(sample_pid) if sample_pid else None
    if sampler:
        sampler.__enter__()
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
    if sampler:
        sampler.__exit__()
    if timed:
        peak_kb = time_output_kb(timed.name)
        os.unlink(timed.name)
        full = full[5:]
        if peak_kb:
            hwm_kb = peak_kb
    out.seek(0)
    err.seek(0)
    return Result(full, proc.returncode, out.read().decode(errors="replace"),
                  err.read().decode(errors="replace"), wall, hwm_kb or None,
                  timed_out, sampler.peak if sampler else None)


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
