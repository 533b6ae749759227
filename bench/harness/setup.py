"""Builds our binaries, installs the peers (skipping, with a clear line, any that will not install),
and records the machine and the versions of everything."""

import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .util import ROOT, WORK, capture, log, rel

VENV = ROOT / "bench" / ".venv"
PYTHON_PACKAGES = ["fastapi", "uvicorn[standard]", "aiohttp", "requests"]
OHA_ROOT = WORK / "oha"


class Tools:
    """Where each tool is, or why it is missing."""

    def __init__(self):
        self.paths = {}
        self.skipped = {}
        self.versions = {}

    def have(self, name):
        return name in self.paths

    def skip(self, name, reason):
        self.skipped[name] = reason
        log(f"skipped {name}: {reason}")


def run_logged(cmd, timeout, env=None):
    log("$ " + " ".join(rel(c) for c in cmd))
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    return p.returncode == 0, (p.stdout + p.stderr)[-1500:]


def build_ours(tools, slowlab=None):
    target = ROOT / "target" / "release"
    ok, out = run_logged(["cargo", "build", "--release", "--locked"], 1800)
    if not ok:
        raise SystemExit(f"bench: cargo build --release failed:\n{out}")
    tools.paths["slowlab"] = Path(slowlab).resolve() if slowlab else target / "slowlab"
    ok, out = run_logged(["cargo", "build", "--release", "--locked", "--example", "bare_hyper",
                          "-p", "slowlab-server"], 1800)
    if ok:
        tools.paths["bare_hyper"] = target / "examples" / "bare_hyper"
    else:
        tools.skip("bare_hyper", "cargo build --example bare_hyper failed: " + out[-300:])
    # The ceiling (bench/limit): its own workspace, built into target/limit.
    ok, out = run_logged(["cargo", "build", "--release", "--locked", "--manifest-path",
                          str(ROOT / "bench" / "limit" / "Cargo.toml"), "--target-dir",
                          str(ROOT / "target" / "limit")], 1800)
    if ok:
        tools.paths["limit"] = ROOT / "target" / "limit" / "release" / "slowlab-limit"
        # The same ceiling on io_uring (`serve --io uring`, issue 23), where the kernel allows it.
        ok, out = run_logged([str(tools.paths["limit"]), "check-uring"], 30)
        if ok:
            tools.paths["limit_uring"] = tools.paths["limit"]
        else:
            tools.skip("limit_uring", out.strip()[-300:] or "check-uring failed")
    else:
        tools.skip("limit", "cargo build of bench/limit failed: " + out[-300:])
    tools.versions["slowlab"] = capture([str(tools.paths["slowlab"]), "--version"])
    rev = capture(["git", "rev-parse", "--short", "HEAD"])
    dirty = capture(["git", "status", "--porcelain", "--untracked-files=no"])
    tools.versions["slowlab_commit"] = (rev or "?") + ("-dirty" if dirty else "")
    tools.versions["rustc"] = capture(["rustc", "--version"])
    tools.versions["cargo"] = capture(["cargo", "--version"])


def install_python(tools):
    python = VENV / "bin" / "python"
    if not python.exists():
        ok, out = run_logged([sys.executable, "-m", "venv", str(VENV)], 300)
        if not ok:
            return tools.skip("python", "python3 -m venv failed (apt-get install python3-venv?): "
                              + out[-300:])
    probe = [str(python), "-c", "import fastapi, uvicorn, uvloop, httptools, aiohttp, requests"]
    if subprocess.run(probe, capture_output=True).returncode != 0:
        ok, out = run_logged([str(python), "-m", "pip", "install", "--quiet", *PYTHON_PACKAGES], 900)
        if not ok:
            return tools.skip("python", "pip install failed: " + out[-300:])
    tools.paths["python"] = python
    versions = capture([str(python), "-c", (
        "import importlib.metadata as m, platform; print('python', platform.python_version());"
        "[print(p, m.version(p)) for p in "
        "('fastapi','uvicorn','uvloop','httptools','aiohttp','requests')]")])
    for line in (versions or "").splitlines():
        name, _, version = line.partition(" ")
        tools.versions[name] = version


def install_apt(tools, packages):
    """packages: {command: Debian package}, e.g. {"h2load": "nghttp2-client"}."""
    missing = {n: p for n, p in packages.items() if not shutil.which(n)}
    if missing:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            for n, p in missing.items():
                tools.skip(n, "not installed, and apt-get needs root (apt-get install " + p + ")")
        else:
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            run_logged(["apt-get", "update", "-qq"], 600, env)
            for n, p in missing.items():
                ok, out = run_logged(["apt-get", "install", "-y", "-qq", p], 600, env)
                if not ok:
                    tools.skip(n, "apt-get install failed: " + out[-300:])
    for n, p in packages.items():
        if n in tools.skipped:
            continue
        path = shutil.which(n)
        if path:
            tools.paths[n] = path
            tools.versions[n] = (capture(["dpkg-query", "-W", "-f", "${Version}", p])
                                 or capture([n, "-v"]) or "?").splitlines()[0]
        else:
            tools.skip(n, "not found after install")


def install_oha(tools, allow_install):
    binary = OHA_ROOT / "bin" / "oha"
    if not binary.exists() and shutil.which("oha"):
        binary = shutil.which("oha")
    elif not binary.exists():
        if not allow_install:
            return tools.skip("oha", "not built yet: quick mode does not compile it "
                              f"(full mode runs cargo install oha --locked --root {rel(OHA_ROOT)})")
        ok, out = run_logged(["cargo", "install", "oha", "--locked", "--root", str(OHA_ROOT)], 1800)
        if not ok:
            return tools.skip("oha", "cargo install oha --locked failed: " + out[-300:])
    tools.paths["oha"] = binary
    tools.versions["oha"] = capture([str(binary), "--version"])
    help_text = capture([str(binary), "--help"]) or ""
    tools.oha_json = ["--output-format", "json"] if "--output-format" in help_text else ["-j"]


def machine():
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    def read(path):
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            return None

    import resource
    return {
        "cores": os.cpu_count(),
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": (re.search(r'PRETTY_NAME="([^"]*)"', read("/etc/os-release") or "") or [None, None])[1],
        "open_files": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "somaxconn": read("/proc/sys/net/core/somaxconn"),
        "ip_local_port_range": read("/proc/sys/net/ipv4/ip_local_port_range"),
        "smt": smt_topology(read),
    }


def smt_topology(read):
    """Whether the CPUs the benchmarks pin to are SMT siblings (two hardware threads of one core
    share its execution units, so "client on one CPU, server on another" would not separate
    them): the kernel's SMT switch and each allowed CPU's sibling list."""
    cpus = sorted(os.sched_getaffinity(0))
    siblings = {str(c): read(f"/sys/devices/system/cpu/cpu{c}/topology/thread_siblings_list")
                for c in cpus}
    shared = sorted({s for s in siblings.values() if s and ("," in s or "-" in s)})
    return {"active": read("/sys/devices/system/cpu/smt/active"),
            "control": read("/sys/devices/system/cpu/smt/control"),
            "thread_siblings": siblings,
            "siblings_shared": shared}


def raise_fd_limit():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
