#!/usr/bin/env python3
"""Scenario 4's clients, user-space instructions per request: slowlab fetch and oha under
valgrind's callgrind, each sending the same requests to the bare hyper server.

    bench/experiments/client_instructions.py [--n 20000] [--rounds 2] [--out FILE.json]

Instruction counts do not depend on what else runs on the machine, unlike times. They count
user space only (start-up included, which 20,000 requests make small): the kernel's share is
client_cpu.py's system time. Needs valgrind, the release build, the bare_hyper example and oha.
Standard library only."""

import argparse
import re
import subprocess
import tempfile
from pathlib import Path

from client_cpu import client_cmd
from common import ROOT, free_port, server, write_results


def count(name, n, url):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        *client_cmd(name, n, url)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        total = re.search(r"^summary: (\d+)", out.read_text(), re.M)
    return int(total.group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()
    port = free_port()
    runs = {"slowlab fetch": [], "oha": []}
    # Unpinned: valgrind runs the client on one thread anyway, and counts do not depend on it.
    with server([str(ROOT / "target/release/examples/bare_hyper"), str(port)], port, cpu=None):
        for _ in range(args.rounds):
            for name in runs:
                runs[name].append(count(name, args.n, f"http://127.0.0.1:{port}"))
    write_results("client_instructions", args.n, {
        "instructions": runs,
        "per_request": {name: min(v) / args.n for name, v in runs.items()}}, args.out)


if __name__ == "__main__":
    main()
