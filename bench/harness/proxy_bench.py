"""Scenario 9: what `slowlab proxy` adds. The same open-loop load (`slowlab fetch --rate`) on the
same upstream (`slowlab serve`), directly and through the proxy with no rule, interleaved round by
round; the proxy's added latency is the paired difference of the two, per round."""

from . import stats
from .scenarios import Scenario, fetch_json, figures, needs
from .util import Server, free_port, log


def scenario_9(ctx):
    sc = Scenario("9", "slowlab proxy: added latency with no rule",
                  "added latency (through the proxy minus directly, same upstream, same "
                  "open-loop load) p99 <= 150 us at 1,000 and 10,000 req/s",
                  ctx.repeats(3), warmup=True)
    missing = ctx.fetch_missing(["--rate", "--duration", "--connections", "--no-outcomes"])
    if missing:
        sc.skip("added latency", needs(missing))
        return sc.done()
    rates, seconds, conns = ((500, 1000), 1, 8) if ctx.quick else ((1000, 10000), 10, 32)
    rows = sc.table(f"GET /0 for {seconds} s on {conns} keep-alive connections, open loop; "
                    "latency per request (service time, from send to answer)", [
                        ["rate", "rate (req/s)", "int"], ["path", "path"],
                        ["ok", "ok (fewest)", "int"], ["p50", "latency p50 (ms)", "ms"],
                        ["p99", "latency p99 (ms)", "ms"],
                        ["added_p50", "added p50 (ms)", "ms"],
                        ["added_p99", "added p99 (ms)", "ms"]])
    up_port, proxy_port = free_port(), free_port()
    with Server("slowlab serve", ctx.serve_cmd(up_port), up_port, ctx.pin) as upstream:
        sc.command("slowlab serve (the upstream)", upstream.cmd)
        proxy_cmd = [ctx.bin, "proxy", "--listen", f"127.0.0.1:{proxy_port}", "--upstream",
                     upstream.base_url]
        with Server("slowlab proxy", proxy_cmd, proxy_port, ctx.pin) as proxy:
            sc.command("slowlab proxy", proxy.cmd)
            for rate in rates:
                paths = {"direct": upstream.base_url, "through the proxy": proxy.base_url}
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
                    runs[path][rnd] = {"ok": s["ok"], "p50": latency.get("p50"),
                                       "p99": latency.get("p99")}
                    log(f"  round {rnd}: {path} at {rate}/s: p99 "
                        f"{(latency.get('p99') or 0) * 1000:.3f} ms")
                direct, through = runs["direct"], runs["through the proxy"]
                added = {rnd: {k: through[rnd][k] - direct[rnd][k] for k in ("p50", "p99")
                               if through[rnd].get(k) is not None
                               and direct[rnd].get(k) is not None}
                         for rnd in through if rnd in direct}
                for path, by in runs.items():
                    if by:
                        row = {"rate": rate, "path": path,
                               "ok": min(r["ok"] for r in by.values()),
                               "p50": figures(by, "p50"), "p99": figures(by, "p99")}
                        if path != "direct" and added:
                            row["added_p50"] = figures(added, "p50")
                            row["added_p99"] = figures(added, "p99")
                        rows.append(row)
                if added:
                    sc.verdict(f"added latency p99 <= 150 us at {rate:,} req/s",
                               figures(added, "p99"), "<=", 0.000150,
                               lambda v: f"{v * 1e6:.0f} us")
    sc.note("Each round runs the same client, rate, duration and connections against the upstream "
            "directly and through the proxy, in rotating order; the added latency is the "
            "difference of the two runs' percentiles within a round, and the page shows the "
            "median over rounds. Throughput against nginx and haproxy as reverse proxies, and "
            "memory per request waiting behind a `before` rule, are not measured yet.")
    return sc.done()
