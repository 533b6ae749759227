"""Scenario 8: rules files at scale. How long `slowlab serve --rules` takes to load 10, 1,000 and
100,000 rules and how much memory it then holds, and how long one lookup takes among them.

Load time is from starting the server until /healthz answers; memory is the server's VmHWM then,
beside that of a server without rules. Match time comes from the rules_match example
(crates/slowlab-server/examples/rules_match.rs), which loads the same file with the server's
loader and times one lookup at a time."""

import json
import time

from . import stats
from .scenarios import Scenario, figures
from .setup import run_logged
from .util import ROOT, WORK, Server, free_port, http_get, log, run_client

EXAMPLE = ROOT / "target" / "release" / "examples" / "rules_match"
MEMORY_METHOD = ("VmHWM of the server process once /healthz first answers (all rules loaded), "
                 "and of a server started without rules (the floor)")


def rules_file(count):
    """A rules file of `count` rules, a quarter of each kind rules_match tries: exact paths,
    prefixes, `{param}` patterns, and POST-only exact paths (a GET looks past them)."""
    path = WORK / f"rules-{count}.toml"
    lines = []
    for i in range(count):
        kind = i % 4
        lines.append(f'[[rule]]\nname = "rule {i}"')
        if kind == 0:
            lines.append(f'path = "/api/item/{i}"\ndelay = 0.01')
        elif kind == 1:
            lines.append(f'prefix = "/files/{i}/"\nmix = "503:0.1"')
        elif kind == 2:
            lines.append(f'path = "/api/{i}/{{id}}"\nbody = "order {i}"')
        else:
            lines.append(f'method = "POST"\npath = "/api/item/{i - 3}"\nstatus = 201')
        lines.append("")
    WORK.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def load_once(ctx, sc, rules):
    """Starts `slowlab serve` on `rules` (None: without rules); returns (seconds until /healthz
    answered, VmHWM in KiB)."""
    port = free_port()
    extra = [] if rules is None else ["--rules", str(rules)]
    started = time.monotonic()
    with Server("slowlab serve", ctx.serve_cmd(port, None, extra), port, ctx.pin,
                ready_timeout=300) as srv:
        sc.command("slowlab serve" + (f" ({rules.stem})" if rules else " (no rules)"), srv.cmd)
        while True:
            try:
                if http_get(srv.base_url + "/healthz", timeout=5)[0] == 200:
                    break
            except OSError:
                time.sleep(0.01)
        return time.monotonic() - started, srv.hwm_kb()


def scenario_8(ctx):
    sizes = [10, 1000, 10000] if ctx.quick else [10, 1000, 100000]
    lookups = 2000 if ctx.quick else 100000
    sc = Scenario("8", "Rules at scale: load time, memory and match time at "
                  + ", ".join(f"{n:,}" for n in sizes) + " rules",
                  "100,000 rules load in <= 2 s and <= 200 MB; a lookup takes p99 <= 20 us at "
                  "100,000 rules for exact and prefix paths", ctx.repeats(3))
    if ctx.serve_missing(["--rules", "--max-rules"]):
        sc.skip("rules at scale", "needs --rules and --max-rules")
        return sc.done()
    ok, out = run_logged(["cargo", "build", "--release", "--locked", "-p", "slowlab-server",
                          "--example", "rules_match"], 1800)
    if not ok:
        sc.error("rules_match", "cargo build --example rules_match failed: " + out[-300:])
        return sc.done()
    files = {n: rules_file(n) for n in sizes}
    load_rows = sc.table("Loading: `slowlab serve --rules FILE` until /healthz answers", [
        ["rules", "rules", "int"], ["seconds", "load time (s)", "s"],
        ["hwm_kb", "server VmHWM (MB)", "mb"], ["floor_kb", "without rules (MB)", "mb"],
        ["per_rule", "bytes per rule", "int"]])
    match_rows = sc.table(f"Matching: {lookups:,} lookups of each kind, one timed at a time "
                          "(rules_match)", [
                              ["rules", "rules", "int"], ["kind", "path"],
                              ["p50", "p50 (µs)", "x3"], ["p99", "p99 (µs)", "x3"],
                              ["matched", "matched", "int"]])
    loads = {n: {} for n in sizes}
    matches = {n: {} for n in sizes}
    for rnd, n in stats.rounds(sizes, sc.data["repeat"]):
        _, floor = load_once(ctx, sc, None)
        seconds, hwm = load_once(ctx, sc, files[n])
        cmd = [str(EXAMPLE), str(files[n]), str(lookups)]
        sc.command(f"rules_match ({n} rules)", ctx.pin.client(cmd))
        r = run_client(cmd, ctx.pin, 600)
        try:
            doc = json.loads(r.stdout)
        except ValueError as e:
            sc.error(f"rules_match ({n} rules)", f"output did not parse ({e}); {r.brief_error()}")
            continue
        if not rnd:
            continue
        loads[n][rnd] = {"seconds": seconds, "hwm_kb": hwm, "floor_kb": floor,
                         "per_rule": (hwm - floor) * 1024 / n if hwm and floor else None}
        matches[n][rnd] = doc
        log(f"{n} rules: loaded in {seconds:.3f} s, VmHWM {hwm} KiB; lookups {json.dumps(doc)}")
    for n in sizes:
        if not loads[n]:
            continue
        load_rows.append({"rules": n, **{k: figures(loads[n], k) for k in
                                         ("seconds", "hwm_kb", "floor_kb", "per_rule")}})
        for kind in ("exact", "prefix", "pattern", "miss"):
            by = {rnd: doc[kind] for rnd, doc in matches[n].items()}
            match_rows.append({"rules": n, "kind": kind, "p50": figures(by, "p50_us"),
                               "p99": figures(by, "p99_us"), "matched": figures(by, "matched")})
    big = sizes[-1]
    if loads[big] and not ctx.quick:
        sc.verdict(f"{big:,} rules load in <= 2 s", figures(loads[big], "seconds"), "<=", 2.0,
                   lambda v: f"{v:.3f} s")
        sc.verdict(f"{big:,} rules: server VmHWM <= 200 MB", figures(loads[big], "hwm_kb"), "<=",
                   200 * 1024, lambda v: f"{v / 1024:.1f} MB")
        for kind in ("exact", "prefix"):
            by = {rnd: doc[kind] for rnd, doc in matches[big].items()}
            sc.verdict(f"{kind} path lookup p99 <= 20 µs at {big:,} rules",
                       figures(by, "p99_us"), "<=", 20.0, lambda v: f"{v:.2f} µs")
    sc.note("Each rule kind is a quarter of the file: exact paths (/api/item/N), prefixes "
            "(/files/N/), {param} patterns (/api/N/{id}) and POST-only exact paths that a GET "
            "looks past. The miss row is a path no rule matches.")
    sc.note("A lookup is timed alone (one clock read before and after), so its figure includes "
            "the clock's own cost, some tens of nanoseconds.")
    sc.data["memory_methods"] = {"server": MEMORY_METHOD}
    return sc.done()
