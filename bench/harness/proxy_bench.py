"""Scenario 9: what `slowlab proxy` adds, and what it holds. Six parts, the comparisons in
interleaved rounds after a discarded warm-up round:

- 9a, added latency with no rule: the same open-loop load (`slowlab fetch --rate`) on the same
  upstream (`slowlab serve`), directly, through the proxy, and through nginx and haproxy in the
  proxy's place; the added latency is the paired difference with the direct run, per round;
- 9b, throughput with no rule against nginx and haproxy as reverse proxies: the same upstream,
  load generator, connections, worker count and core for each;
- 9c, memory per request waiting behind a `when = "before"` rule, over HTTP/1.1 and HTTP/2, read
  when the proxy's admin /healthz first shows them all in flight, with the upstream's count of
  requests (none may reach it);
- 9d, a 1 GB upload streamed through the proxy: its VmHWM;
- 9e, the TCP mode's pacing: `bps=1000000` over 10 MB against the 10 s it should take;
- 9f, the TCP mode with no effect: iperf3 through the proxy against iperf3 directly, through
  socat and through the ceiling's relay (bench/limit), the least work any proxy can do here."""

import math
import os
import shutil
import tempfile
import time
from pathlib import Path

from . import peers, sockets, stats
from .proxy_configs import HAPROXY_CONF, NGINX_CONF
from .scenarios import (Scenario, by_round, errors_of, fetch_json, figures, fmt_delay, needs,
                        per_kb, run_loadgen, wrk_cmd)
from .util import InFlightWatch, Server, free_port, http_get, log, run_client


def scenario_9(ctx):
    sc = Scenario("9", "slowlab proxy: added latency, throughput against nginx and haproxy, "
                  "memory per waiting request, a streamed upload, the TCP mode",
                  "added latency p99 <= 150 us at 1,000 and 10,000 req/s; throughput >= 1.0x "
                  "nginx; <= 12 KB (12,000 bytes) per HTTP/1.1 request and <= 2 KB (2,000 "
                  "bytes) per h2 stream waiting behind a before rule, none reaching the upstream; "
                  "VmHWM <= 64 MB through a 1 GB upload; TCP bps=1000000 over 10 MB within 5% "
                  "of 10 s, and >= 0.9x iperf3 directly with no effect",
                  ctx.repeats(3), warmup=True)
    missing = ctx.proxy_missing(["--listen", "--upstream"])
    if missing:
        sc.skip("slowlab proxy", needs(missing))
        return sc.done()
    for part in (added_latency, throughput, waiting_memory, upload, tcp_pacing, tcp_throughput):
        part(ctx, sc)
    return sc.done()


def proxy_cmd(ctx, port, upstream, extra=()):
    return [ctx.bin, "proxy", "--listen", f"127.0.0.1:{port}", "--upstream", upstream,
            *extra]


def masked(cmd, folder):
    """A command as the results record it: the run's temporary folder shown as $PREFIX (no
    machine paths in committed results)."""
    return [str(c).replace(str(folder), "$PREFIX") for c in cmd]


# ---------------------------------------------------------------------------------------------
# 9a. Added latency with no rule
# ---------------------------------------------------------------------------------------------

def added_latency(ctx, sc):
    """Open-loop GET /0 at two rates, directly and through the proxy, interleaved."""
    missing = ctx.fetch_missing(["--rate", "--duration", "--connections", "--no-outcomes"])
    if missing:
        sc.skip("added latency", needs(missing))
        return
    # 5 s a run: 5,000 requests at the lower rate, so its p99 rests on the 50 slowest.
    rates, seconds, conns = ((500, 1000), 1, 8) if ctx.quick else ((1000, 10000), 5, 32)
    rows = sc.table(f"Added latency: GET /0 for {seconds} s on {conns} keep-alive connections, "
                    "open loop; latency per request (service time, from send to answer)", [
                        ["rate", "rate (req/s)", "int"], ["path", "path"],
                        ["ok", "ok (fewest)", "int"], ["p50", "latency p50 (ms)", "ms"],
                        ["p99", "latency p99 (ms)", "ms"],
                        ["added_p50", "added p50 (ms)", "ms"],
                        ["added_p99", "added p99 (ms)", "ms"]])
    up_port, proxy_port = free_port(), free_port()
    folder = tempfile.mkdtemp(prefix="slowlab-bench-")
    started = {}
    try:
        started["upstream"] = upstream = Server("slowlab serve", ctx.serve_cmd(up_port),
                                                up_port, ctx.pin)
        sc.command("slowlab serve (the upstream, 9a)", upstream.cmd)
        started["slowlab proxy"] = proxy = Server(
            "slowlab proxy", proxy_cmd(ctx, proxy_port, upstream.base_url), proxy_port, ctx.pin)
        sc.command("slowlab proxy (9a)", proxy.cmd)
        # The same places for nginx and haproxy: what any proxy on this machine adds.
        peers_started = start_peers(ctx, sc, folder, up_port, proxy_workers(ctx), started, "9a")
        paths = {"direct": upstream.base_url, "through the proxy": proxy.base_url,
                 **{f"through {name}": started[name].base_url for name in peers_started}}
        for rate in rates:
            added_latency_at(ctx, sc, rows, rate, seconds, conns, paths)
    finally:
        for srv in started.values():
            srv.stop()
        shutil.rmtree(folder, ignore_errors=True)
    sc.note("Added latency: each round runs the same client, rate, duration and connections "
            "against the upstream directly, through the proxy and through nginx and haproxy "
            "(9b's configurations and workers, in the proxy's place on the server's core), in "
            "rotating order; the added latency is the difference of a path's percentiles and "
            "the direct run's within a round, and the page shows the median over rounds.")


def added_latency_at(ctx, sc, rows, rate, seconds, conns, paths):
    """9a at one rate: each path in rotating rounds; the added latency of each proxy is its
    percentile minus the direct run's, within a round."""
    runs = {p: {} for p in paths}
    for rnd, path in stats.rounds(list(paths), sc.data["repeat"]):
        cmd = [ctx.bin, "fetch", "--rate", str(rate), "--duration", f"{seconds}s",
               "--connections", str(conns), "--output", "json", "--no-outcomes",
               "--quiet", "--base-url", paths[path], "0"]
        doc, _ = fetch_json(ctx, sc, f"{path} at {rate}/s", cmd, seconds + 60)
        if doc is None or not rnd:
            continue
        s = doc["summary"]
        latency = s.get("latency") or {}
        runs[path][rnd] = {"ok": s["ok"], "p50": latency.get("p50"), "p99": latency.get("p99")}
        log(f"  round {rnd}: {path} at {rate}/s: p99 {(latency.get('p99') or 0) * 1000:.3f} ms")
    direct = runs["direct"]
    added = {}
    for path, through in runs.items():
        if path == "direct":
            continue
        added[path] = {rnd: {k: through[rnd][k] - direct[rnd][k] for k in ("p50", "p99")
                             if through[rnd].get(k) is not None
                             and direct[rnd].get(k) is not None}
                       for rnd in through if rnd in direct}
    for path, by in runs.items():
        if by:
            row = {"rate": rate, "path": path, "ok": min(r["ok"] for r in by.values()),
                   "p50": figures(by, "p50"), "p99": figures(by, "p99")}
            if added.get(path):
                row["added_p50"] = figures(added[path], "p50")
                row["added_p99"] = figures(added[path], "p99")
            rows.append(row)
    ours = added.get("through the proxy")
    if ours:
        sc.verdict(f"added latency p99 <= 150 us at {rate:,} req/s", figures(ours, "p99"),
                   "<=", 0.000150, lambda v: f"{v * 1e6:.0f} us")
    for path, theirs in added.items():
        if path != "through the proxy" and theirs:
            p99 = figures(theirs, "p99")
            sc.info(f"added latency p99 {path} at {rate:,} req/s (the same place; no target)",
                    f"{p99['median'] * 1e6:.0f} us ({p99['min'] * 1e6:.0f} to "
                    f"{p99['max'] * 1e6:.0f} us)")


# ---------------------------------------------------------------------------------------------
# 9b. Throughput with no rule, against nginx and haproxy
# ---------------------------------------------------------------------------------------------

def proxy_workers(ctx):
    """How many threads slowlab proxy works with where the harness runs servers: tokio's
    multi-thread runtime, one worker per CPU the process may use and at least two
    (crates/slowlab/src/lib.rs, `run`). Pinned to the server's core, that is two. nginx gets as
    many worker processes and haproxy as many threads, on the same core."""
    cpus = 1 if ctx.pin.enabled else len(os.sched_getaffinity(0))
    return max(2, cpus)


def peer_proxy(ctx, sc, name, folder, port, upstream_port, workers):
    """nginx or haproxy as a reverse proxy to `upstream_port`, configured in `folder`; returns its
    command, or None (with the reason recorded) when the configuration is refused."""
    template = NGINX_CONF if name == "nginx" else HAPROXY_CONF
    text = template.format(prefix=folder, port=port, upstream=upstream_port, workers=workers)
    path = Path(folder) / f"{name}.conf"
    path.write_text(text)
    binary = str(ctx.tools.paths[name])
    if name == "nginx":
        check = [binary, "-t", "-q", "-p", folder, "-c", str(path), "-e", f"{folder}/error.log"]
        cmd = [binary, "-p", folder, "-c", str(path), "-e", f"{folder}/error.log"]
    else:
        check = [binary, "-c", "-q", "-f", str(path)]
        cmd = [binary, "-db", "-f", str(path)]
    r = run_client(check, ctx.pin, 30, pin=False)
    if not r.ok:
        sc.skip(f"{name} as a reverse proxy", f"{name} refuses its configuration: "
                f"{r.brief_error()}")
        return None
    shown = template.format(prefix="$PREFIX", port="PORT", upstream="UPSTREAM_PORT",
                            workers=workers)
    configs = sc.data.setdefault("configs", [])
    label = f"{name}.conf (9a, 9b)"
    if not any(c["label"] == label for c in configs):
        configs.append({"label": label, "text": shown})
    return cmd


def start_peers(ctx, sc, folder, up_port, workers, started, part):
    """Starts nginx and haproxy (each that is installed and not left out by --ours-only) as
    reverse proxies to `up_port` on the server's core, configured in `folder`, into `started`
    (label: Server); returns the labels started."""
    labels = []
    for name in ("nginx", "haproxy"):
        if not ctx.peers(name):
            sc.skip(f"{name} as a reverse proxy ({part})",
                    ctx.tools.skipped.get(name, "--ours-only"))
            continue
        port = free_port()
        cmd = peer_proxy(ctx, sc, name, folder, port, up_port, workers)
        if not cmd:
            continue
        try:
            started[name] = Server(name, cmd, port, ctx.pin)
        except RuntimeError as e:
            sc.skip(f"{name} ({part})", str(e))
            continue
        sc.command(f"{name} ({part})", masked(started[name].cmd, folder))
        labels.append(name)
    return labels


def throughput(ctx, sc):
    """9b: GET /0 over 50 keep-alive connections through each reverse proxy to one upstream,
    successes per second; the proxy is judged against nginx, round by round."""
    seconds, count = (1, 5000) if ctx.quick else (3, 100000)
    use_wrk = ctx.peers("wrk")
    loadgen = "wrk" if use_wrk else "slowlab fetch"
    work = f"{seconds} s" if use_wrk else f"{count:,} requests"
    if not use_wrk:
        missing = ctx.fetch_missing(["--count", "--concurrency", "--output", "--quiet"])
        if missing:
            sc.skip("throughput", needs(missing))
            return
    workers = proxy_workers(ctx)
    rows = sc.table(f"Throughput: GET /0 through each reverse proxy, 50 keep-alive connections "
                    f"({loadgen}, {work} a run); successes per second", [
                        ["proxy", "path"], ["workers", "workers"], ["rps", "requests/s", "rps"],
                        ["ours_over", "slowlab proxy / this", "x2"],
                        ["of_direct", "of direct", "x2"], ["errors", "errors (not ranked)"]])
    # The upstream shares the client's core, so that the proxy measured has the server's core to
    # itself; bare hyper is the cheapest upstream there is, so it takes the least from that core.
    if ctx.tools.have("bare_hyper"):
        upstream_label = "bare hyper"
        upstream_of = lambda p: [str(ctx.tools.paths["bare_hyper"]), str(p)]  # noqa: E731
    else:
        upstream_label = "slowlab serve"
        upstream_of = lambda p: ctx.serve_cmd(p)  # noqa: E731
        sc.note("9b: bare hyper was not built, so the upstream is slowlab serve.")
    folder = tempfile.mkdtemp(prefix="slowlab-bench-")
    started = {}
    try:
        up_port = free_port()
        started["upstream"] = upstream = Server(upstream_label, upstream_of(up_port), up_port,
                                                ctx.pin, core="client")
        sc.command(f"{upstream_label} (the upstream, 9b; on the client's core)", upstream.cmd)
        port = free_port()
        cmd = proxy_cmd(ctx, port, upstream.base_url)
        try:
            started["slowlab proxy"] = Server("slowlab proxy", cmd, port, ctx.pin)
            sc.command("slowlab proxy (9b)", started["slowlab proxy"].cmd)
        except RuntimeError as e:
            sc.error("slowlab proxy", str(e))
        start_peers(ctx, sc, folder, up_port, workers, started, "9b")
        names = ["direct (no proxy)"] + [c for c in ("slowlab proxy", "nginx", "haproxy")
                                         if c in started]
        runs = {c: {} for c in names}
        for rnd, label in stats.rounds(names, sc.data["repeat"]):
            base = (started[label] if label in started else upstream).base_url
            if use_wrk:
                cmd = wrk_cmd(ctx, base + "/0", seconds)
            else:
                cmd, _ = ctx.fetch_count_cmd(base, count, 0, concurrency=50)
            sc.command(f"{loadgen} -> {label} (9b)", ctx.pin.client(cmd))
            parsed, r = run_loadgen(ctx, loadgen, cmd, seconds + 60 if use_wrk else 120,
                                    expected=count)
            if parsed is None:
                sc.error(f"{loadgen} -> {label}", f"output did not parse; {r.brief_error()}")
                continue
            if parsed["errors"] and label in ("slowlab proxy", "direct (no proxy)"):
                sc.error(f"{loadgen} -> {label}", parsed["errors"])
            if rnd:
                runs[label][rnd] = {"rps": parsed["rate"], "errors": parsed["errors"]}
                log(f"  round {rnd}: {loadgen} -> {label}: {parsed['rate']:,.0f} req/s")
    finally:
        for srv in started.values():
            srv.stop()
        shutil.rmtree(folder, ignore_errors=True)
    ours = runs.get("slowlab proxy", {})
    direct = runs.get("direct (no proxy)", {})
    for label, by in runs.items():
        if not by:
            continue
        errors = errors_of(by)
        rows.append({"proxy": label, "workers": "–" if label.startswith("direct") else workers,
                     "rps": figures(by, "rps"),
                     "ours_over": None if errors or errors_of(ours) or label == "slowlab proxy"
                     or label.startswith("direct") else stats.paired_ratio(
                         by_round(ours, "rps"), by_round(by, "rps")),
                     "of_direct": None if errors or errors_of(direct) or label.startswith("direct")
                     else stats.paired_ratio(by_round(by, "rps"), by_round(direct, "rps")),
                     "errors": errors})
    if ours and not errors_of(ours):
        for peer, target in (("nginx", 1.0), ("haproxy", None)):
            theirs = runs.get(peer)
            if not theirs:
                continue
            if errors_of(theirs):
                sc.info(f"slowlab proxy against {peer} ({loadgen})", "not ranked",
                        f"{peer} had errors")
                continue
            ratio = stats.paired_ratio(by_round(ours, "rps"), by_round(theirs, "rps"))
            if target:
                sc.verdict(f"proxy throughput >= {target}x {peer} ({loadgen}, no rule)", ratio,
                           ">=", target, lambda v: f"{v:.2f}x")
            elif ratio:
                sc.info(f"proxy throughput against {peer} (no target)",
                        f"{ratio['median']:.2f}x ({ratio['min']:.2f}x to {ratio['max']:.2f}x)")
    sc.note(f"Throughput: every reverse proxy runs on the server's core with {workers} workers "
            f"(slowlab proxy: tokio's worker threads, at least two; nginx: worker_processes "
            f"{workers}; haproxy: nbthread {workers}), in front of the same {upstream_label} "
            "upstream, which runs on the client's core beside the load generator so that the "
            "proxy measured has a core to itself. \"direct\" is the load generator straight to "
            "the upstream, both on one core: what that core serves without a proxy. Every "
            "proxy keeps its connections to the upstream open and reuses them (nginx: an "
            "`upstream` block with `keepalive 64`, `proxy_http_version 1.1`, `proxy_set_header "
            "Connection \"\"`; haproxy: `http-reuse always`, keep-alive on both sides), and "
            "none logs requests (`access_log off`; haproxy has no `log` line)"
            + (". Their configurations are below" if "nginx" in runs or "haproxy" in runs
               else "") + ". Ratios are taken round by round.")


# ---------------------------------------------------------------------------------------------
# 9c. Memory per request waiting behind a before rule
# ---------------------------------------------------------------------------------------------

# How the proxy's memory per waiting request is read, recorded next to the figures.
WAITING_METHOD = ("VmHWM of the proxy process after start-up (idle), and when its admin port's "
                  "/healthz first shows all N requests in flight (all waiting behind the rule, "
                  "none answered); bytes per request = (waiting - idle) / N")

# The rule the waiting requests match: the wait, then a 202 answered by the proxy itself (a
# status other than 200 is the proxy's own answer, so nothing reaches the upstream; a 2xx, so
# that slowlab fetch counts every request a success). The path is not a delay path: slowlab
# fetch checks the echo of a delay it asked for, and the proxy's own answer has none, while the
# paths of a --urls file are sent as they are.
WAIT_RULE = """[[rule]]
name = "wait"
path = "/wait"
delay = {delay}
status = 202
when = "before"
"""


def upstream_requests(metrics):
    """Requests a slowlab serve answered, from its /metrics text (its own paths are not
    counted)."""
    total = 0
    for line in metrics.splitlines():
        if line.startswith("slowlab_requests_total{"):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def waiting_memory(ctx, sc):
    """9c: N requests each waiting behind a before rule, over HTTP/1.1 (one connection each) and
    over HTTP/2 (N streams on a few connections); a fresh proxy and upstream each run."""
    # Each waits 2 s, not the 1 s: the figure per waiting request does not depend on the
    # wait, and 10,000 HTTP/1.1 connects can take longer than 1 s on 2 cores (in trial runs on a
    # busy machine the first requests were answered before 6,500 were in flight), which leaves
    # no moment with all of them waiting.
    count, delay = (200, 0.3) if ctx.quick else (10000, 2)
    missing = ctx.proxy_missing(["--rules", "--admin"])
    missing += ctx.fetch_missing(["--urls", "--http2", "--connections", "--no-outcomes"])
    if missing:
        sc.skip("memory behind a before rule", needs(missing))
        return
    # At most 5,000 streams a connection: under the 8,192 concurrent streams serve's connection
    # settings (the proxy's) allow.
    h2_conns = max(1, math.ceil(count / 5000))
    kinds = {f"HTTP/1.1, {count:,} connections": [],
             f"HTTP/2, {count:,} streams on {h2_conns} connection(s)":
                 ["--http2", "--connections", str(h2_conns)]}
    rows = sc.table(f"Memory behind a before rule: {count:,} requests each waiting {delay:g} s "
                    "in the proxy, answered 202 by it", [
                        ["kind", "requests"], ["ok", "ok (fewest)", "int"],
                        ["peak", "client's peak in flight (fewest)", "int"],
                        ["idle_kb", "proxy idle (MB)", "mb"],
                        ["waiting_kb", "proxy, all waiting (MB)", "mb"],
                        ["bytes", "proxy bytes / waiting request", "int"],
                        ["upstream", "upstream saw (most)", "int"], ["errors", "errors"]])
    sc.data.setdefault("memory_methods", {})["proxy (9c)"] = WAITING_METHOD
    folder = tempfile.mkdtemp(prefix="slowlab-bench-")
    rules = Path(folder) / "wait.toml"
    rules.write_text(WAIT_RULE.format(delay=fmt_delay(delay)))
    urls = Path(folder) / "wait.urls"
    urls.write_text("/wait\n" * count)
    sc.data.setdefault("configs", []).append({"label": "rules file of 9c (wait.toml)",
                                              "text": rules.read_text()})
    runs = {k: {} for k in kinds}
    upstream_seen = []
    try:
        for rnd, kind in stats.rounds(list(kinds), sc.data["repeat"]):
            run = waiting_run(ctx, sc, kind, kinds[kind], rules, urls, count)
            if run is None:
                continue
            upstream_seen.append(run["upstream"])
            if rnd:
                runs[kind][rnd] = run
                log(f"  round {rnd}: {kind}: {run['bytes'] or 0:,.0f} bytes per waiting request")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for kind, by in runs.items():
        if by:
            rows.append({"kind": kind, "ok": min(r["ok"] for r in by.values()),
                         "peak": min((r["peak"] or 0) for r in by.values()),
                         **{k: figures(by, k) for k in ("idle_kb", "waiting_kb", "bytes")},
                         "upstream": max(r["upstream"] for r in by.values()),
                         "errors": errors_of(by)})
    for (kind, by), (limit, what) in zip(runs.items(), ((12000, "12 KB (12,000 bytes) per "
                                                         "waiting HTTP/1.1 request"),
                                                        (2000, "2 KB (2,000 bytes) per waiting "
                                                         "HTTP/2 stream"))):
        if by:
            sc.verdict(f"proxy memory <= {what}, behind a before rule", figures(by, "bytes"),
                       "<=", limit, lambda v: f"{v:,.0f} bytes", why=f"N={count:,}")
    if upstream_seen:
        sc.verdict("before-rule requests never reach the upstream", max(upstream_seen), "==", 0,
                   lambda v: f"{int(v):,} requests seen upstream (most in one run, "
                             f"{len(upstream_seen)} runs)")
    sc.note("Memory behind a before rule: " + WAITING_METHOD + ". The upstream is a slowlab "
            "serve; its count is the sum of slowlab_requests_total on its /metrics after the "
            "run. The client (slowlab fetch) has descriptors enough: bench/run raises its "
            "open-file limit to the hard limit, which clients inherit. Each run starts its own "
            "proxy and upstream.")


def waiting_run(ctx, sc, kind, fetch_args, rules, urls, count):
    """One run of 9c: `slowlab fetch --urls` sends the `count` lines of `urls` at once (async,
    unbounded: over HTTP/1.1 one connection each). None when it broke (recorded as an error)."""
    up_port, port, admin = free_port(), free_port(), free_port()
    with Server("slowlab serve", ctx.serve_cmd(up_port), up_port, ctx.pin) as upstream:
        sc.command("slowlab serve (the upstream, 9c)", upstream.cmd)
        cmd = proxy_cmd(ctx, port, upstream.base_url,
                        ["--rules", str(rules), "--admin", f"127.0.0.1:{admin}"])
        with Server("slowlab proxy", cmd, port, ctx.pin) as proxy:
            sc.command("slowlab proxy (9c)", masked(proxy.cmd, rules.parent))
            time.sleep(0.2)
            idle = proxy.hwm_kb()
            fetch = [ctx.bin, "fetch", "--urls", str(urls), "--mode", "async", *fetch_args,
                     "--output", "json", "--no-outcomes", "--quiet", "--base-url",
                     proxy.base_url]
            row = f"slowlab fetch ({kind}) -> proxy"
            # Recorded first with the temporary folder masked; fetch_json's own record of the
            # same label is then a no-op.
            sc.command(row, masked(ctx.pin.client(fetch), rules.parent))
            with InFlightWatch(proxy, count, healthz=f"http://127.0.0.1:{admin}/healthz") as w:
                doc, r = fetch_json(ctx, sc, row, fetch, 120)
            try:
                seen = upstream_requests(http_get(upstream.base_url + "/metrics")[1])
            except (OSError, ValueError, IndexError) as e:
                sc.error(f"upstream /metrics (9c, {kind})", str(e))
                return None
    if doc is None:
        return None
    summary = doc["summary"]
    if summary["ok"] != count:
        sc.error(row, f"{summary['ok']}/{count} ok")
    if w.hwm_kb is None:
        sc.note(f"9c, {kind}: /healthz never showed all {count:,} in flight (most seen: "
                f"{w.seen:,}), so that run has no waiting figure.")
    return {"ok": summary["ok"], "idle_kb": idle, "waiting_kb": w.hwm_kb,
            "bytes": per_kb(w.hwm_kb, idle, count), "upstream": seen,
            "peak": summary.get("peak_concurrency"), "client_kb": r.maxrss_kb,
            "errors": "; ".join(f"{e['count']} {e['kind']}" for e in summary.get("errors", []))}


# ---------------------------------------------------------------------------------------------
# 9d. A streamed upload
# ---------------------------------------------------------------------------------------------

def upload(ctx, sc):
    """9d: one upload of 1 GB (quick: 16 MB) with Content-Length through the proxy to a sink
    that reads and counts it; the proxy's VmHWM after it. One proxy per run, no warm-up: the
    figure is a high-water mark, not a speed."""
    size = 16_000_000 if ctx.quick else 1_000_000_000
    limit = 64_000_000
    amount = (f"{size / 1e9:g} GB" if size >= 1e9 else f"{size / 1e6:g} MB") + f" ({size:,} bytes)"
    rows = sc.table(f"A streamed upload: POST of {amount} with Content-Length "
                    "through the proxy, 1 MiB writes, to a sink that counts and drops it", [
                        ["size", "bytes", "int"], ["seconds", "took (s)", "s"],
                        ["rate", "MB/s", "int"], ["idle_kb", "proxy idle (MB)", "mb"],
                        ["hwm_kb", "proxy VmHWM after (MB)", "mb"], ["errors", "errors"]])
    sc.data.setdefault("memory_methods", {})["proxy (9d)"] = (
        "VmHWM of the proxy process after start-up (idle) and after the upload's answer; "
        "1 MB = 1,000,000 bytes")
    runs = {}
    with sockets.CountingSink() as sink:
        for rnd, _ in stats.rounds(["upload"], sc.data["repeat"], warmup=False):
            port = free_port()
            cmd = proxy_cmd(ctx, port, f"http://127.0.0.1:{sink.port}")
            with Server("slowlab proxy", cmd, port, ctx.pin) as proxy:
                sc.command("slowlab proxy (9d)", proxy.cmd)
                time.sleep(0.2)
                idle = proxy.hwm_kb()
                try:
                    status, body, seconds = sockets.upload(port, size)
                except OSError as e:
                    sc.error("upload (9d)", f"{type(e).__name__}: {e}")
                    continue
                hwm = proxy.hwm_kb()
            errors = "" if status == 200 and body.strip() == str(size) else (
                f"answered {status} {body[:80]!r}; the sink counted {sink.counted}")
            if errors:
                sc.error("upload (9d)", errors)
            runs[rnd] = {"size": size, "seconds": seconds, "rate": size / seconds / 1e6,
                         "idle_kb": idle, "hwm_kb": hwm, "hwm_bytes": hwm * 1024 if hwm else None,
                         "errors": errors}
            log(f"  round {rnd}: {amount} in {seconds:.2f} s, proxy VmHWM "
                f"{(hwm or 0) / 1024:.1f} MiB")
    if runs:
        rows.append({"size": size, **{k: figures(runs, k) for k in ("seconds", "rate",
                                                                    "idle_kb", "hwm_kb")},
                     "errors": errors_of(runs)})
        sc.verdict(f"proxy VmHWM <= 64 MB (64,000,000 bytes) through an upload of {amount}",
                   figures(runs, "hwm_bytes"), "<=", limit,
                   lambda v: f"{v / 1e6:.1f} MB")
    sc.note("Upload: the client and the sink (bench/harness/sockets.py) are threads of the "
            "harness that write and read 1 MiB at a time from one buffer, so only the proxy "
            "could hold the body; the sink answers the count it read, which must equal the size "
            "sent. The proxy runs a release build on the server's core.")


# ---------------------------------------------------------------------------------------------
# 9e. TCP mode: pacing
# ---------------------------------------------------------------------------------------------

PACE_BPS = 1_000_000


def tcp_pacing(ctx, sc):
    """9e: a server sends a block in one go through `slowlab proxy --tcp` with
    `direction=downstream&bps=1000000`; the client times connect to end of stream against
    size / rate."""
    size = 500_000 if ctx.quick else 10_000_000
    missing = ctx.proxy_missing(["--tcp", "--tcp-effect"])
    if missing:
        sc.skip("TCP pacing", needs(missing))
        return
    ideal = size / PACE_BPS
    rows = sc.table(f"TCP mode, pacing: {size:,} bytes sent at once through `--tcp-effect "
                    f"'direction=downstream&bps={PACE_BPS}'` (ideal {ideal:g} s), timed from "
                    "connect to end of stream", [
                        ["bytes", "bytes", "int"], ["seconds", "took (s)", "s"],
                        ["ideal", "ideal (s)", "s"],
                        ["error", "off by (took / ideal - 1, either way)", "x3"]])
    runs = {}
    with sockets.BlockServer(size) as source:
        port = free_port()
        cmd = [ctx.bin, "proxy", "--tcp", "--listen", f"127.0.0.1:{port}", "--upstream",
               f"127.0.0.1:{source.port}", "--tcp-effect", f"direction=downstream&bps={PACE_BPS}"]
        with Server("slowlab proxy --tcp", cmd, port, ctx.pin) as proxy:
            sc.command("slowlab proxy --tcp (9e)", proxy.cmd)
            for rnd, _ in stats.rounds(["pace"], sc.data["repeat"], warmup=False):
                try:
                    got, took = sockets.timed_read(port, timeout=ideal * 3 + 30)
                except OSError as e:
                    sc.error("TCP pacing (9e)", f"{type(e).__name__}: {e}")
                    continue
                if got != size:
                    sc.error("TCP pacing (9e)", f"read {got:,} bytes of {size:,}")
                    continue
                runs[rnd] = {"seconds": took, "error": abs(took / ideal - 1)}
                log(f"  round {rnd}: {size:,} bytes at bps={PACE_BPS} in {took:.3f} s")
    if runs:
        rows.append({"bytes": size, "seconds": figures(runs, "seconds"), "ideal": ideal,
                     "error": figures(runs, "error")})
        sc.verdict(f"TCP bps={PACE_BPS} over {size:,} bytes within 5% of {ideal:g} s",
                   figures(runs, "error"), "<=", 0.05, lambda v: f"{v:.2%} off")
    sc.note("TCP pacing: the sending server and the reading client are threads of the harness "
            "(bench/harness/sockets.py); the server writes the whole block at once, so the time "
            "is the proxy's pacing. Runs are sequential, through one proxy.")


# ---------------------------------------------------------------------------------------------
# 9f. TCP mode with no effect: iperf3
# ---------------------------------------------------------------------------------------------

# socat's copy buffer here: 64 KiB, the size the TCP proxy reads at a time (docs/proxy-tcp.md);
# socat's default of 8 KiB would measure its small buffer rather than the copy.
SOCAT_BUFFER = 65536

# The least work a TCP proxy can do here (bench/limit's `relay`), the copier 9f measures the
# proxy against besides iperf3 directly.
CEILING_RELAY = "through the ceiling's relay (bench/limit)"


def tcp_throughput(ctx, sc):
    """9f: iperf3 (one stream) straight to its server, through socat, through the ceiling's
    relay and through `slowlab proxy --tcp` with no effect, interleaved; judged against iperf3
    directly."""
    seconds = 1 if ctx.quick else 3
    if not ctx.peers("iperf3"):
        sc.skip("TCP throughput (iperf3)", ctx.tools.skipped.get("iperf3", "--ours-only"))
        return
    if ctx.proxy_missing(["--tcp"]):
        sc.skip("TCP throughput (iperf3)", needs(["--tcp"]))
        return
    rows = sc.table(f"TCP mode, no effect: iperf3 -t {seconds}, one stream, over loopback", [
        ["path", "path"], ["gbps", "Gbit/s (received)", "f2"],
        ["of_direct", "of iperf3 directly", "x2"], ["ours_over", "slowlab proxy / this", "x2"]])
    iperf3 = str(ctx.tools.paths["iperf3"])
    started = {}
    try:
        target = free_port()
        try:
            started["iperf3 directly"] = Server("iperf3 -s", [iperf3, "-s", "-p", str(target)],
                                                target, ctx.pin)
        except RuntimeError as e:
            sc.skip("TCP throughput (iperf3)", str(e))
            return
        sc.command("iperf3 -s (9f)", started["iperf3 directly"].cmd)
        middles = {}
        port = free_port()
        middles["through slowlab proxy --tcp"] = (
            port, [ctx.bin, "proxy", "--tcp", "--listen", f"127.0.0.1:{port}", "--upstream",
                   f"127.0.0.1:{target}"])
        if ctx.peers("socat"):
            port = free_port()
            middles[f"through socat -b {SOCAT_BUFFER}"] = (
                port, [str(ctx.tools.paths["socat"]), "-b", str(SOCAT_BUFFER),
                       f"TCP4-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork",
                       f"TCP4:127.0.0.1:{target}"])
        else:
            sc.skip("iperf3 through socat", ctx.tools.skipped.get("socat", "not installed"))
        if "limit" in ctx.tools.paths:
            port = free_port()
            middles[CEILING_RELAY] = (
                port, [str(ctx.tools.paths["limit"]), "relay", str(port), f"127.0.0.1:{target}"])
        else:
            sc.skip(f"iperf3 {CEILING_RELAY}", ctx.tools.skipped.get("limit", "not built"))
        for label, (port, cmd) in middles.items():
            # The copier runs unpinned: iperf3's two ends already hold one core each, and
            # socat and the proxy get the same freedom.
            try:
                started[label] = Server(label, cmd, port, ctx.pin, core=None)
            except RuntimeError as e:
                (sc.error if "slowlab" in label else sc.skip)(label, str(e))
                continue
            sc.command(f"{label.removeprefix('through ')} (9f; unpinned)", started[label].cmd)
        # Each readiness probe above reached iperf3's server as a connection that closed at
        # once; it needs a moment to drop it before it takes a test.
        time.sleep(0.5)
        runs = {label: {} for label in started}
        for rnd, label in stats.rounds(list(runs), sc.data["repeat"]):
            cmd = [iperf3, "-c", "127.0.0.1", "-p", str(started[label].port), "-t", str(seconds),
                   "-J"]
            sc.command(f"iperf3 -> {label.removeprefix('through ')} (9f)", ctx.pin.client(cmd))
            r = run_client(cmd, ctx.pin, seconds + 30)
            try:
                parsed = peers.iperf3(r.stdout)
            except (ValueError, KeyError, TypeError) as e:
                sc.error(f"iperf3 -> {label}", f"{e}; {r.brief_error()}")
                continue
            if rnd:
                runs[label][rnd] = {"gbps": parsed["bits_per_second"] / 1e9}
                log(f"  round {rnd}: {label}: {runs[label][rnd]['gbps']:.2f} Gbit/s")
            time.sleep(0.2)  # iperf3's server settles between tests
    finally:
        for srv in started.values():
            srv.stop()
    ours = runs.get("through slowlab proxy --tcp", {})
    direct = runs.get("iperf3 directly", {})
    for label, by in runs.items():
        if by:
            rows.append({"path": label, "gbps": figures(by, "gbps"),
                         "of_direct": None if label == "iperf3 directly" else
                         stats.paired_ratio(by_round(by, "gbps"), by_round(direct, "gbps")),
                         "ours_over": None if by is ours else
                         stats.paired_ratio(by_round(ours, "gbps"), by_round(by, "gbps"))})
    if ours and direct:
        sc.verdict("TCP, no effect: >= 0.9x iperf3 directly over loopback (the reference)",
                   stats.paired_ratio(by_round(ours, "gbps"), by_round(direct, "gbps")), ">=",
                   0.9, lambda v: f"{v:.2f}x")
    socat = runs.get(f"through socat -b {SOCAT_BUFFER}")
    relay = runs.get(CEILING_RELAY)
    for what, top, bottom in (
            (f"against socat -b {SOCAT_BUFFER} (a user-space copy; no target)", ours, socat),
            ("of the ceiling's relay (the least any proxy does here; no target)", ours, relay),
            ("the ceiling's relay against iperf3 directly (what a second connection costs any "
             "proxy here)", relay, direct)):
        ratio = top and bottom and stats.paired_ratio(by_round(top, "gbps"),
                                                      by_round(bottom, "gbps"))
        if ratio:
            sc.info(f"TCP, no effect: {what}", f"{ratio['median']:.2f}x "
                    f"({ratio['min']:.2f}x to {ratio['max']:.2f}x)")
    sc.note(f"TCP, no effect: the reference is iperf3's client straight to its server over "
            f"loopback (client on the client's core, server on the server's). The copiers in "
            f"between, `slowlab proxy --tcp` and socat (`TCP4-LISTEN,fork` to `TCP4:`, buffer "
            f"`-b {SOCAT_BUFFER}`, the proxy's read size), run unpinned, as a third process on "
            "two cores. The ceiling's relay (bench/limit `relay`) moves each direction with "
            "splice(2) through a 1 MiB pipe on a blocking thread of its own: no epoll, no "
            "runtime, no copy, no effect to check; it runs unpinned too. Ratios are taken round "
            "by round.")
