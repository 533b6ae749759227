#!/usr/bin/env python3
"""The proxy's TCP mode: is `bps=` exact, and what does copying cost with no effect?

    cargo build --release -p slowlab-proxy --example tcp_proxy
    bench/experiments/tcp_proxy.py [--rounds 5] [--seconds 3] [--pace-rounds 2] [--out FILE.json]
        [--compare "target/release/slowlab proxy --tcp --listen {listen} --upstream {upstream}"]

Pacing: a server sends 10,000,000 bytes in one go through the proxy with
`direction=downstream&bps=1000000`; the client times connect to EOF, so the ideal is 10 s and the
target is within 5%. Throughput: iperf3 (`-t SECONDS`, one stream) straight to an iperf3 server,
through socat (`TCP-LISTEN,fork` to the server, a plain user-space copy, with its default 8 KiB
buffer, with `-b 65536` and with `-b 1048576`) and through the proxy with no effect (splice(2) on
Linux), in interleaved rounds after a discarded warm-up round; the target is the proxy at 0.9x a
reference or better, ratios taken round by round and judged on their median, for each reference.
Also records the proxy's CPU time per GB moved (user and system, from /proc), and the load average
before and after: on a shared 2-core machine every process here competes for the same cores."""

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import threading
import time

from pathlib import Path

from common import ROOT, free_port, server, write_results

PACE_BYTES = 10_000_000
PACE_BPS = 1_000_000


def block_server(port, size):
    """Sends `size` bytes to every connection on `port`, then closes it; runs on threads. (The
    readiness probe's connection, closed at once, just ends its own thread.)"""
    listener = socket.create_server(("127.0.0.1", port))
    block = bytes(size)

    def send(conn):
        with conn:
            try:
                conn.sendall(block)
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(65536):
                    pass
            except OSError:
                pass

    def serve():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=send, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()


def paced_read(port):
    """Connects, reads to EOF; returns (bytes, seconds)."""
    start = time.perf_counter()
    got = 0
    with socket.create_connection(("127.0.0.1", port)) as s:
        while chunk := s.recv(1 << 20):
            got += len(chunk)
    return got, time.perf_counter() - start


def iperf(port, seconds):
    """One iperf3 run to `port`; returns received bits per second."""
    out = subprocess.run(
        ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds), "-J"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)["end"]["sum_received"]["bits_per_second"]


def cpu_seconds(pid):
    """User plus system CPU seconds `pid` has used (Linux /proc)."""
    fields = (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1]).split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--pace-rounds", type=int, default=2)
    ap.add_argument("--proxy", default=str(ROOT / "target/release/examples/tcp_proxy"))
    ap.add_argument("--proxy-command",
                    help="the proxy without effect as a command, with {listen} and {upstream}, "
                         "e.g. 'target/release/slowlab proxy --tcp --listen {listen} "
                         "--upstream {upstream}' to measure another build (default: --proxy)")
    ap.add_argument("--compare", metavar="COMMAND",
                    help="another proxy (a command as for --proxy-command), measured in the same "
                         "rounds as `slowlab_other`, e.g. the build before a change")
    ap.add_argument("--skip-pace", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()
    load_before = os.getloadavg()

    # Pacing.
    source = free_port()
    block_server(source, PACE_BYTES)
    proxy_port = free_port()
    pace = []
    with server([args.proxy, f"127.0.0.1:{proxy_port}", f"127.0.0.1:{source}",
                 f"direction=downstream&bps={PACE_BPS}"], proxy_port, cpu=None):
        for _ in range(0 if args.skip_pace else args.pace_rounds):
            got, took = paced_read(proxy_port)
            assert got == PACE_BYTES, got
            pace.append({"seconds": took, "bytes_per_second": got / took,
                         "error": got / took / PACE_BPS - 1})
    pace_errors = [r["error"] for r in pace]
    worst_pace_error = max(pace_errors, key=abs, default=None)

    # Throughput with no effect.
    target = free_port()
    socat_port, socat_64k_port, socat_1m_port = free_port(), free_port(), free_port()
    proxy_port = free_port()
    proxy_cmd = [args.proxy, f"127.0.0.1:{proxy_port}", f"127.0.0.1:{target}"]
    if args.proxy_command:
        proxy_cmd = args.proxy_command.format(listen=f"127.0.0.1:{proxy_port}",
                                              upstream=f"127.0.0.1:{target}").split()
    contenders = {"direct": target, "socat": socat_port, "socat_64k": socat_64k_port,
                  "socat_1m": socat_1m_port, "slowlab": proxy_port}
    other_port = free_port()
    other_cmd = None
    if args.compare:
        contenders["slowlab_other"] = other_port
        other_cmd = args.compare.format(listen=f"127.0.0.1:{other_port}",
                                        upstream=f"127.0.0.1:{target}").split()
    runs = {name: [] for name in contenders}
    proxy_cpu_per_gb = []
    other_cpu_per_gb = []
    with server(["iperf3", "-s", "-p", str(target)], target, cpu=None), \
         server(["socat", f"TCP-LISTEN:{socat_port},reuseaddr,fork",
                 f"TCP:127.0.0.1:{target}"], socat_port, cpu=None), \
         server(["socat", "-b", "65536", f"TCP-LISTEN:{socat_64k_port},reuseaddr,fork",
                 f"TCP:127.0.0.1:{target}"], socat_64k_port, cpu=None), \
         server(["socat", "-b", "1048576", f"TCP-LISTEN:{socat_1m_port},reuseaddr,fork",
                 f"TCP:127.0.0.1:{target}"], socat_1m_port, cpu=None), \
         server(proxy_cmd, proxy_port, cpu=None) as proxy, \
         (server(other_cmd, other_port, cpu=None) if other_cmd
          else contextlib.nullcontext()) as other:
        # The servers above were probed by a bare connect; iperf3 needs a moment after one.
        time.sleep(0.5)
        names = list(contenders)
        for round_no in range(args.rounds + 1):
            order = names[round_no % len(names):] + names[:round_no % len(names)]
            for name in order:
                watched = {"slowlab": (proxy, proxy_cpu_per_gb),
                           "slowlab_other": (other, other_cpu_per_gb)}.get(name)
                cpu_before = cpu_seconds(watched[0].pid) if watched else 0
                bps = iperf(contenders[name], args.seconds)
                if round_no > 0:
                    runs[name].append(bps)
                    if watched:
                        gb = bps * args.seconds / 8 / 1e9
                        watched[1].append((cpu_seconds(watched[0].pid) - cpu_before) / gb)
                time.sleep(0.2)
    ratios = [p / s for p, s in zip(runs["slowlab"], runs["socat"])]
    ratios_64k = [p / s for p, s in zip(runs["slowlab"], runs["socat_64k"])]
    ratios_1m = [p / s for p, s in zip(runs["slowlab"], runs["socat_1m"])]
    ratios_direct = [p / d for p, d in zip(runs["slowlab"], runs["direct"])]

    figures = {
        "machine": {"cpus": os.cpu_count()},
        "loadavg_before": load_before,
        "pace": {"bytes": PACE_BYTES, "bps": PACE_BPS, "runs": pace,
                 "worst_error": worst_pace_error, "target": "within 5%",
                 "met": None if worst_pace_error is None else abs(worst_pace_error) <= 0.05},
        "throughput": {
            "tool": f"iperf3 -t {args.seconds}, one stream",
            "reference": "socat TCP-LISTEN,fork (a user-space copy), with its default 8 KiB "
                         "buffer, with -b 65536 and with -b 1048576; the proxy splices",
            "gbit_per_second": {name: [b / 1e9 for b in bps] for name, bps in runs.items()},
            "median_gbit_per_second": {name: statistics.median(bps) / 1e9
                                       for name, bps in runs.items()},
            "ratio_to_socat": ratios,
            "median_ratio_to_socat": statistics.median(ratios),
            "ratio_to_socat_64k": ratios_64k,
            "median_ratio_to_socat_64k": statistics.median(ratios_64k),
            "ratio_to_socat_1m": ratios_1m,
            "median_ratio_to_socat_1m": statistics.median(ratios_1m),
            "ratio_to_direct": ratios_direct,
            "median_ratio_to_direct": statistics.median(ratios_direct),
            "target": "median ratio >= 0.9 to each reference",
            "met": {"socat": statistics.median(ratios) >= 0.9,
                    "socat_64k": statistics.median(ratios_64k) >= 0.9,
                    "socat_1m": statistics.median(ratios_1m) >= 0.9,
                    "direct": statistics.median(ratios_direct) >= 0.9},
            "proxy_cpu_seconds_per_gb": proxy_cpu_per_gb,
            "median_proxy_cpu_seconds_per_gb": statistics.median(proxy_cpu_per_gb),
        },
    }
    if args.compare:
        other = runs["slowlab_other"]
        figures["compare"] = {
            "command": args.compare,
            "ratio_to_other": [p / o for p, o in zip(runs["slowlab"], other)],
            "median_ratio_to_other": statistics.median(
                [p / o for p, o in zip(runs["slowlab"], other)]),
            "median_ratio_other_to_direct": statistics.median(
                [o / d for o, d in zip(other, runs["direct"])]),
            "other_cpu_seconds_per_gb": other_cpu_per_gb,
            "median_other_cpu_seconds_per_gb": statistics.median(other_cpu_per_gb),
        }
    write_results("tcp-proxy", args.rounds, figures, args.out)


if __name__ == "__main__":
    main()
