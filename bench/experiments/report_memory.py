"""Peak memory (VmHWM, from /usr/bin/time's %M) and time of `slowlab report show`, `html` and
`merge` on a report of about 60 MB whose summary holds 1,000,000 latency_buckets: the shape of a
forged report that used to take gigabytes. Memory is a count and holds on a busy machine; the
seconds do not.

    python3 bench/experiments/report_memory.py --binary after=target/debug/slowlab \\
        [--binary before=/path/to/an/older/slowlab] [--out results.json]

The report is a real shard (`fetch --shard 0/2 --no-outcomes`) against a local `slowlab serve`,
with the buckets added; `merge` merges it with the real shard 1/2. Standard library only."""

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from common import free_port, server, write_results

BUCKETS = 1_000_000


def fetch_shard(binary, base_url, index):
    out = subprocess.run(
        [binary, "fetch", "--base-url", base_url, "--count", "10", "--delay", "0",
         "--no-outcomes", "--shard", f"{index}/2", "--output", "json", "--quiet"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def peak(binary, args):
    """(peak resident kB, elapsed seconds) of `binary args`, which must succeed."""
    done = subprocess.run(["/usr/bin/time", "-f", "%M %e", binary, *args],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{binary} {args}: exit {done.returncode}: {done.stderr}")
    kb, secs = done.stderr.strip().splitlines()[-1].split()
    return int(kb), float(secs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", action="append", required=True, metavar="LABEL=PATH")
    parser.add_argument("--note", default="", help="what the binaries are, for the record")
    parser.add_argument("--out")
    args = parser.parse_args()
    binaries = dict(b.split("=", 1) for b in args.binary)
    serving = list(binaries.values())[-1]
    port = free_port()
    with server([serving, "serve", "--port", str(port)], port, cpu=None), \
            tempfile.TemporaryDirectory() as tmp:
        base_url = f"http://127.0.0.1:{port}"
        big = fetch_shard(serving, base_url, 0)
        big["summary"]["latency_buckets"] = [
            {"upper": 0.012756123456789123 + i * 1e-9, "count": 10**15 + i}
            for i in range(BUCKETS)]
        big_path = Path(tmp, "big.json")
        big_path.write_text(json.dumps(big))
        other_path = Path(tmp, "other.json")
        other_path.write_text(json.dumps(fetch_shard(serving, base_url, 1)))
        runs = {}
        for label, binary in binaries.items():
            for command in (["show", big_path], ["html", big_path],
                            ["merge", big_path, other_path]):
                kb, secs = peak(binary, ["report", *map(str, command)])
                runs[f"{label} {command[0]}"] = {"peak_kb": kb, "seconds": secs}
                print(f"{label} {command[0]}: {kb} kB, {secs} s", flush=True)
        figures = {"report_bytes": big_path.stat().st_size, "latency_buckets": BUCKETS,
                   "note": args.note, "runs": runs}
    write_results("report_memory", 1, figures, args.out)


if __name__ == "__main__":
    main()
