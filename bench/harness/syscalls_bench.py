"""Scenario 10: where the time goes, per request. System calls by kind, user and kernel CPU and
context switches for the servers and clients of scenarios 2-4, measured in the same run as the
scenarios they explain (issue 23 asks for this table from a full run).

The measuring is bench/experiments/syscalls.py's, run as a program so that there is one way to take
these figures: this module runs it on the binaries this run built and turns its cases into a
table."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .report import SYSCALL_COLUMNS, SYSCALL_METHOD, syscall_rows
from .scenarios import Scenario
from .util import ROOT, log

SCRIPT = ROOT / "bench" / "experiments" / "syscalls.py"


def scenario_10(ctx):
    n2, n = (200, 2000) if ctx.quick else (2000, 20000)
    sc = Scenario("10", "Where the time goes, per request: system calls, CPU, context switches",
                  "no target: the evidence the levers of scenarios 2-4 are judged by")
    if not shutil.which("strace"):
        sc.skip("the system-call table", "needs strace (Debian package strace)")
        return sc.done()
    missing = [t for t in ("bare_hyper", "limit") if not ctx.tools.have(t)]
    if missing:
        sc.skip("the system-call table", "needs " + " and ".join(missing))
        return sc.done()
    env = dict(os.environ)
    oha = ctx.tools.paths.get("oha")
    if oha:  # syscalls.py finds its peers on PATH
        env["PATH"] = f"{Path(oha).parent}{os.pathsep}{env.get('PATH', '')}"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "syscalls.json"
        args = ["--n2", str(n2), "--n", str(n), "--slowlab", str(ctx.tools.paths["slowlab"])]
        cmd = [sys.executable, str(SCRIPT), *args, "--out", str(out)]
        sc.command("bench/experiments/syscalls.py",
                   [c.replace(str(ROOT) + "/", "") for c in [str(SCRIPT), *args]])
        log(f"  syscalls.py: {n2:,} connections of 1 s, {n:,} x GET /0 per case")
        try:
            p = subprocess.run(cmd, cwd=SCRIPT.parent, env=env, capture_output=True, text=True,
                               timeout=900)
        except subprocess.TimeoutExpired:
            sc.error("the system-call table", "syscalls.py took more than 900 s")
            return sc.done()
        if p.returncode != 0 or not out.exists():
            sc.error("the system-call table", f"syscalls.py exited {p.returncode}: "
                     + (p.stderr or p.stdout)[-400:])
            return sc.done()
        doc = json.loads(out.read_text())
    rows = sc.table(f"Per request: {n2:,} requests of 1 s, a connection each, for scenario 2; "
                    f"{n:,} x GET /0 over 50 connections for scenarios 3 and 4", SYSCALL_COLUMNS)
    rows += syscall_rows(doc["cases"])
    sc.data["loadavg_after"] = doc["loadavg"]
    sc.note(SYSCALL_METHOD)
    if doc.get("not_installed"):
        sc.note("Not installed on the measuring machine, so not measured: "
                + ", ".join(doc["not_installed"]) + ".")
    return sc.done()
