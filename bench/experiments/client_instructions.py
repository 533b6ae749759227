#!/usr/bin/env python3
"""Scenario 4's clients, user-space instructions per request: slowlab fetch and oha under
valgrind's callgrind, each sending the same requests to the bare hyper server.

    bench/experiments/client_instructions.py [--n 20000] [--rounds 2] [--out FILE.json]

Instruction counts do not depend on what else runs on the machine, unlike times. They count
user space only (start-up included, which 20,000 requests make small): the kernel's share is
client_cpu.py's system time. Needs valgrind, the release build, the bare_hyper example and oha.
Standard library only."""

import argparse
import datetime
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from client_cpu import ROOT, client_cmd  # noqa: E402


def count(name, n, url):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                               *client_cmd(name, n, url)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, check=True)
        del proc
        total = re.search(r"^summary: (\d+)", out.read_text(), re.M)
    return int(total.group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([str(ROOT / "target/release/examples/bare_hyper"), str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = {"slowlab fetch": [], "oha": []}
    try:
        time.sleep(1)
        for _ in range(args.rounds):
            for name in runs:
                runs[name].append(count(name, args.n, f"http://127.0.0.1:{port}"))
    finally:
        server.terminate()
        server.wait()
    doc = {"experiment": "client_instructions", "started": datetime.datetime.now(
        datetime.timezone.utc).isoformat(timespec="seconds"), "n": args.n,
        "command": " ".join(sys.argv), "loadavg": os.getloadavg(), "instructions": runs,
        "per_request": {name: min(v) / args.n for name, v in runs.items()}}
    text = json.dumps(doc, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
