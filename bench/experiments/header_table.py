#!/usr/bin/env python3
"""What hyper's header table costs slowlab serve per request: instructions spent allocating and
freeing it, counted by valgrind's callgrind while the ceiling's client (bench/limit) sends N x
GET /0 over 50 keep-alive connections.

    bench/experiments/header_table.py [--n 20000] [--out FILE.json]

slowlab serve sets hyper's `max_headers` above its own `--max-headers` (4x, so its JSON 431
answers first), and hyper then allocates two tables of that many entries for every request it
parses instead of using the 100 it keeps inline. The figure is the cost callgrind books to
jemalloc's malloc and sdallocx when called from hyper's request parser, per request, against all
the instructions the server ran (start-up included). Counts, not times: they do not depend on
the machine's load. Needs valgrind, the release build and bench/limit's build. Standard library
only."""

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

from common import ROOT, free_port, write_results

SLOWLAB = str(ROOT / "target" / "release" / "slowlab")
LIMIT = str(ROOT / "target" / "limit" / "release" / "slowlab-limit")
PARSER = "<hyper::proto::h1::role::Server as hyper::proto::h1::Http1Transaction>::parse"


def callers_of(tree, callee):
    """{caller: (instructions, calls)} of a function in callgrind_annotate's caller tree."""
    lines = tree.splitlines()
    for i, line in enumerate(lines):
        if re.search(r"\*\s+\S*:" + re.escape(callee) + r" \[", line):
            out = {}
            j = i - 1
            while j >= 0 and "  < " in lines[j]:
                m = re.match(r"\s*([\d,]+) \(.*?\)\s+< \S*?:(.*) \(([\d,]+)x\)", lines[j])
                if m:
                    out[m.group(2).strip()] = (int(m.group(1).replace(",", "")),
                                               int(m.group(3).replace(",", "")))
                j -= 1
            return out
    return {}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--out")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        server = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                                   SLOWLAB, "serve", "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                if subprocess.run(["curl", "-sf", "-o", "/dev/null",
                                   f"http://127.0.0.1:{port}/healthz"]).returncode == 0:
                    break
                time.sleep(0.1)
            client = subprocess.run([LIMIT, "fetch", f"http://127.0.0.1:{port}/0", str(args.n),
                                     "50"], capture_output=True, text=True, check=True)
            if f'"ok":{args.n}' not in client.stdout:
                raise SystemExit(f"not every request succeeded: {client.stdout}")
        finally:
            server.send_signal(2)  # SIGINT: slowlab serve drains and exits, callgrind writes
            server.wait()
        total = int(re.search(r"^summary: (\d+)", out.read_text(), re.M).group(1))
        tree = subprocess.run(["callgrind_annotate", "--tree=caller", "--inclusive=yes",
                               str(out)], capture_output=True, text=True, check=True).stdout
    figures = {}
    for callee in ("_rjem_malloc", "_rjem_sdallocx"):
        cost, calls = next((v for k, v in callers_of(tree, callee).items() if PARSER in k),
                           (0, 0))
        figures[callee] = {"instructions": cost, "calls": calls}
    table = sum(f["instructions"] for f in figures.values())
    write_results("header_table", args.n, {
        "from_the_parser": figures,
        "parser_allocations_per_request": sum(f["calls"] for f in figures.values()) / args.n,
        "table_instructions_per_request": table / args.n,
        "server_instructions_per_request": total / args.n,
        "share": table / total}, args.out)


if __name__ == "__main__":
    main()
