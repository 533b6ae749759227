"""docs/benchmarks.md and its SVG charts, generated from one results file of bench/run."""

import html
import json
import math
from pathlib import Path

from .stats import value_of
from .util import ROOT, rel

# Labels of results files written before they were corrected: the article's async client draws
# its own random delays, it never sent "the article's list".
LEGACY_LABELS = {
    "article's async client (aiohttp)":
        "article's async client (aiohttp; 10 random delays, randrange)",
    "article's sync client (requests)":
        "article's sync client (requests; the list 7 2 6 4 0 9 4 2 5 5)",
    "Article's list 7 2 6 4 0 9 4 2 5 5":
        "slowlab race and the article's sync client: the list 7 2 6 4 0 9 4 2 5 5; the "
        "article's async client: its own random delays",
}


def fmt(value, kind=None):
    """One figure as the page shows it. A spread of several runs is "median (min–max)"."""
    if isinstance(value, dict) and "median" in value:
        if len(value.get("runs", [])) > 1:
            return f"{fmt(value['median'], kind)} ({fmt(value['min'], kind)}–" \
                   f"{fmt(value['max'], kind)})"
        return fmt(value["median"], kind)
    if value is None or value == "":
        return "–"
    if isinstance(value, str) and value in LEGACY_LABELS:
        return LEGACY_LABELS[value]
    if isinstance(value, str) or kind is None:
        return str(value).replace("|", "\\|")
    if isinstance(value, float) and math.isinf(value):
        return "> top bucket"
    try:
        if kind == "s":
            return f"{value:.3f}"
        if kind == "x2":
            return f"{value:.2f}x"
        if kind == "x3":
            return f"{value:.3f}"
        if kind == "f2":
            return f"{value:.2f}"
        if kind == "mb":
            return f"{value / 1024:.1f}"
        if kind == "kb":
            return f"{value:.1f}"
        if kind == "int":
            return f"{int(round(value)):,}"
        if kind == "rps":
            return f"{value:,.0f}"
        if kind == "ms":
            return f"{value * 1000:.2f}"
    except (TypeError, ValueError):
        pass
    return str(value)


def md_table(table):
    cols = table["columns"]
    lines = ["| " + " | ".join(c[1] for c in cols) + " |",
             "|" + "|".join("---" if len(c) < 3 else "---:" for c in cols) + "|"]
    for row in table["rows"]:
        lines.append("| " + " | ".join(fmt(row.get(c[0]), c[2] if len(c) > 2 else None)
                                       for c in cols) + " |")
    return "\n".join(lines)


def verdict_mark(met, quick=False, noise=False):
    """A verdict's word. "within noise": the runs fell on both sides of the threshold, so the
    median decided a verdict that more runs could turn."""
    if quick and met is not None:
        return "met (quick sizes)" if met else "missed (quick sizes)"
    word = {True: "met", False: "**MISSED**", None: "(no target)"}[met]
    return word + (" (within noise)" if noise and met is not None else "")


# --- SVG: horizontal bars, hand-written ---------------------------------------------------------

def hbar_svg(title, items, unit, log_scale=False, target=None, target_label=""):
    """items: (label, value, ours) -> a standalone SVG document."""
    items = [(label, v, ours) for label, v, ours in items if isinstance(v, (int, float)) and v > 0]
    left, right, bar_h, gap, top = 330, 90, 18, 6, 44
    width = 900
    plot_w = width - left - right
    height = top + len(items) * (bar_h + gap) + 40
    vmax = max([v for _, v, _ in items] + ([target] if target else []) + [1e-9])
    vmin = min([v for _, v, _ in items] + [vmax]) if items else 1

    if log_scale:
        lo = 10 ** math.floor(math.log10(min(vmin, target or vmin)))
        decade = 10 ** math.floor(math.log10(vmax))
        hi = next(decade * m for m in (1, 2, 5, 10) if decade * m >= vmax * 0.999)
        if hi <= lo:
            hi = lo * 10

        def x(v):
            return left + plot_w * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        ticks = []
        t = lo
        while t <= hi * 1.0001:
            ticks += [t * m for m in (1, 2, 5) if t * m <= hi * 1.0001]
            t *= 10
    else:
        step = 10 ** math.floor(math.log10(vmax)) if vmax > 0 else 1
        hi = math.ceil(vmax / step) * step

        def x(v):
            return left + plot_w * v / hi
        ticks = [i * step for i in range(int(hi / step) + 1)]
        if len(ticks) < 4:
            ticks = [hi * i / 4 for i in range(5)]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14" '
           f'font-weight="bold">{html.escape(title)}</text>']
    axis_y = top + len(items) * (bar_h + gap)
    for t in ticks:
        tx = x(t)
        out.append(f'<line x1="{tx:.1f}" y1="{top - 6}" x2="{tx:.1f}" y2="{axis_y}" stroke="#ddd"/>')
        label = f"{t:g}" if t < 1000 else f"{t / 1000:g}k"
        out.append(f'<text x="{tx:.1f}" y="{axis_y + 14}" text-anchor="middle" fill="#555">'
                   f'{label}</text>')
    out.append(f'<text x="{left + plot_w / 2}" y="{axis_y + 32}" text-anchor="middle" '
               f'fill="#333">{html.escape(unit)}{" (log scale)" if log_scale else ""}</text>')
    for i, (label, v, ours) in enumerate(items):
        y = top + i * (bar_h + gap)
        x0 = x(lo) if log_scale else left
        color = "#d9730d" if ours else "#6b8fb5"
        out.append(f'<text x="{left - 8}" y="{y + bar_h - 5}" text-anchor="end">'
                   f'{html.escape(label)}</text>')
        out.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(1.0, x(v) - x0):.1f}" '
                   f'height="{bar_h}" fill="{color}"/>')
        out.append(f'<text x="{x(v) + 4:.1f}" y="{y + bar_h - 5}" fill="#333">{v:,.0f}</text>' if v >= 100 else
                   f'<text x="{x(v) + 4:.1f}" y="{y + bar_h - 5}" fill="#333">{v:.3g}</text>')
    if target:
        tx = x(target)
        out.append(f'<line x1="{tx:.1f}" y1="{top - 10}" x2="{tx:.1f}" y2="{axis_y}" '
                   f'stroke="#c00" stroke-dasharray="4 3"/>')
        out.append(f'<text x="{tx + 3:.1f}" y="{top - 12}" fill="#c00">'
                   f'{html.escape(target_label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def line_svg(title, series, x_label, y_label, notes=()):
    """series: (label, colour, [(x, y)]) -> a standalone SVG line chart, axes from 0."""
    width, height, left, right, top, bottom = 900, 380, 70, 190, 40, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    points = [pt for _, _, pts in series for pt in pts if pt[1] is not None]
    x_hi = nice_ceiling(max([x for x, _ in points] + [1e-9]))
    y_hi = nice_ceiling(max([y for _, y in points] + [1e-9]))

    def px(x):
        return left + plot_w * x / x_hi

    def py(y):
        return top + plot_h * (1 - y / y_hi)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left + plot_w / 2}" y="20" text-anchor="middle" font-size="14" '
           f'font-weight="bold">{html.escape(title)}</text>']
    for i in range(6):
        yv, xv = y_hi * i / 5, x_hi * i / 5
        out.append(f'<line x1="{left}" y1="{py(yv):.1f}" x2="{left + plot_w}" y2="{py(yv):.1f}" '
                   f'stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{py(yv) + 4:.1f}" text-anchor="end" fill="#555">'
                   f'{yv:g}</text>')
        out.append(f'<text x="{px(xv):.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                   f'fill="#555">{xv:g}</text>')
    out.append(f'<text x="{left + plot_w / 2}" y="{height - 18}" text-anchor="middle" '
               f'fill="#333">{html.escape(x_label)}</text>')
    out.append(f'<text x="16" y="{top + plot_h / 2}" text-anchor="middle" fill="#333" '
               f'transform="rotate(-90 16 {top + plot_h / 2})">{html.escape(y_label)}</text>')
    for i, (label, colour, pts) in enumerate(series):
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts if y is not None)
        if path:
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                       f'stroke-width="2"/>')
        ly = top + 10 + i * 20
        out.append(f'<line x1="{left + plot_w + 14}" y1="{ly}" x2="{left + plot_w + 34}" '
                   f'y2="{ly}" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{left + plot_w + 40}" y="{ly + 4}">{html.escape(label)}</text>')
    for i, note in enumerate(notes):
        out.append(f'<text x="{left + plot_w + 14}" y="{top + 20 + 20 * len(series) + i * 16}" '
                   f'fill="#555" font-size="11">{html.escape(note)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def nice_ceiling(v):
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above v."""
    decade = 10 ** math.floor(math.log10(v))
    return next(decade * m for m in (1, 2, 2.5, 5, 10) if decade * m >= v * 0.999)


def pileup_svg(pileup):
    """Scenario 7's pile-up: latency from schedule and service time by when requests were due."""
    bins = pileup["bins"]
    timed_out = sum(b["failed"] for b in bins)
    return line_svg(
        f"Open loop, {pileup['rate']}/s of /{pileup['delay']:g} against {pileup['threads']} "
        "server threads", [
            ("latency from schedule", "#d9730d",
             [(b["t"], b["from_schedule"]) for b in bins]),
            ("service time (from send)", "#6b8fb5", [(b["t"], b["service"]) for b in bins]),
            ("requested delay", "#999", [(0, pileup["delay"]), (pileup["seconds"],
                                                                 pileup["delay"])])],
        "when the request was due (s into the run)", "seconds (median per bin)",
        notes=[f"{timed_out:,} timed out (not drawn)",
               f"capacity {pileup['threads'] / pileup['delay']:g}/s"])


def charts(doc, docs_path):
    """Writes the SVG charts for scenarios 2, 4 and 7 next to the Markdown; returns id -> [paths].
    Bars show medians (results files from before --repeat: the single run)."""
    made = {}
    by_id = {s["id"]: s for s in doc["scenarios"]}
    stem = docs_path.stem
    if "2" in by_id and by_id["2"]["tables"] and by_id["2"]["tables"][0]["rows"]:
        rows = by_id["2"]["tables"][0]["rows"]

        def ours(r):
            return r["client"] == "slowlab fetch" and "(async)" in r["server"]

        def per_request_kb(r):
            if "bytes_waiting" in r:  # bytes, from VmHWM with all N waiting
                value = value_of(r["bytes_waiting"])
                return value / 1000 if value is not None else None
            return r.get("kb_per_req")  # older files: KiB, from the VmRSS peak

        wall = [(f"N={r['n']:,} {r['server']} <- {r['client']}", value_of(r.get("wall")), ours(r))
                for r in rows]
        mem = [(f"N={r['n']:,} {r['server']} <- {r['client']}", per_request_kb(r), ours(r))
               for r in rows]
        mem_title = ("Scenario 2: server memory per waiting request (median)"
                     if any("bytes_waiting" in r for r in rows)
                     else "Scenario 2: server memory per waiting request")
        paths = []
        for name, svg in [
                ("2-wall", hbar_svg("Scenario 2: N concurrent 1 s requests, wall time", wall,
                                    "seconds (ideal: 1)", log_scale=True, target=1.3,
                                    target_label="target 1.3 s at N=10,000")),
                ("2-memory", hbar_svg(mem_title, mem, "KB",
                                      target=10, target_label="target 10 KB"))]:
            p = docs_path.parent / f"{stem}-{name}.svg"
            p.write_text(svg)
            paths.append(p)
        made["2"] = paths
    if "4" in by_id and by_id["4"]["tables"] and by_id["4"]["tables"][0]["rows"]:
        rows = by_id["4"]["tables"][0]["rows"]
        rps = [(r["client"], value_of(r.get("rps")), r["client"] == "slowlab fetch") for r in rows]
        rss = [(r["client"], (value_of(r.get("client_kb", r.get("rss_kb"))) or 0) / 1024,
                r["client"] == "slowlab fetch") for r in rows]
        paths = []
        for name, svg in [
                ("4-throughput", hbar_svg("Scenario 4: client throughput against bare hyper "
                                          "(median)", rps, "requests per second")),
                ("4-memory", hbar_svg("Scenario 4: client peak RSS", rss, "MB"))]:
            p = docs_path.parent / f"{stem}-{name}.svg"
            p.write_text(svg)
            paths.append(p)
        made["4"] = paths
    if "7" in by_id and by_id["7"].get("pileup"):
        p = docs_path.parent / f"{stem}-7-pileup.svg"
        p.write_text(pileup_svg(by_id["7"]["pileup"]))
        made["7"] = [p]
    return made


ANALYSIS_START = "<!-- analysis: written by hand, kept when bench/run regenerates this page -->"
ANALYSIS_END = "<!-- /analysis -->"


def kept_analysis(docs_path):
    """The hand-written block of the page being replaced (explanations of missed targets,
    profiles), carried over verbatim; a placeholder the first time."""
    try:
        old = docs_path.read_text()
        start, end = old.index(ANALYSIS_START), old.index(ANALYSIS_END)
        return old[start:end + len(ANALYSIS_END)]
    except (OSError, ValueError):
        return (f"{ANALYSIS_START}\nNo analysis yet: for each missed target, say why (measured: "
                f"a profile, a counter) and what was tried.\n{ANALYSIS_END}")


SYSCALLS_GLOB = "*-syscalls.json"
# The kinds the table shows a column for; the rest are summed under "other".
SYSCALL_KINDS = ["read", "recvfrom", "write", "writev", "sendto", "epoll_wait", "epoll_ctl",
                 "accept4", "connect", "setsockopt", "getsockopt", "futex"]
# How bench/experiments/syscalls.py takes its figures, said under each table of them.
SYSCALL_METHOD = (
    "System calls are counted under `strace -c -f`, which slows the program, so calls whose "
    "number depends on timing (epoll_wait, reads ending in EAGAIN, futex) are those of a slowed "
    "run; CPU and context switches come from a second run without strace. A server is measured "
    "under the ceiling's client, a client against the server named. \"failed\": calls that "
    "returned an error, nearly all EAGAIN from a read that found nothing or EINPROGRESS from a "
    "non-blocking connect. CPU figures come from clock ticks (10 ms), so scenario 2's are good to "
    "5 µs and the rest to 0.5 µs.")


# The table's columns, for `md_table`: calls per request by kind, then CPU and switches.
SYSCALL_COLUMNS = [["case", "case"], ["total", "total", "f2"],
                   *[[k, k, "f2"] for k in SYSCALL_KINDS], ["other", "other", "f2"],
                   ["failed", "failed", "f2"], ["user_us", "user µs", "kb"],
                   ["system_us", "kernel µs", "kb"], ["switches", "switches", "x3"]]


def syscall_rows(cases):
    """bench/experiments/syscalls.py's cases as rows of SYSCALL_COLUMNS; a kind never called
    shows as "·"."""
    rows = []
    for case, r in cases.items():
        calls = r.get("calls", {})
        kinds = {k: calls.get(k, {}).get("calls", 0.0) for k in SYSCALL_KINDS}
        total = calls.get("total", {}).get("calls", 0.0)
        rows.append({"case": case, "total": total,
                     **{k: v if v else "·" for k, v in kinds.items()},
                     "other": total - sum(kinds.values()),
                     "failed": calls.get("total", {}).get("errors", 0.0),
                     "user_us": r.get("user_us"), "system_us": r.get("system_us"),
                     "switches": r.get("switches")})
    return rows


def syscall_section():
    """The per-request table of the newest bench/experiments/syscalls.py results file, or
    nothing when none is committed."""
    files = sorted((ROOT / "bench" / "results" / "experiments").glob(SYSCALLS_GLOB))
    if not files:
        return []
    path = files[-1]
    doc = json.loads(path.read_text())
    load = ", ".join(f"{x:.2f}" for x in doc["loadavg"])
    lines = ["", "## Where the time goes, per request", "",
             f"From `{path.relative_to(ROOT)}` (`cases`), written by "
             f"`bench/experiments/syscalls.py` ({doc['n2']:,} requests of 1 s for scenario 2, "
             f"{doc['n']:,} of `/0` for scenarios 3 and 4; load average at the end {load}). "
             + SYSCALL_METHOD, ""]
    if doc.get("not_installed"):
        lines += [f"Not installed on the measuring machine, so not measured: "
                  f"{', '.join(doc['not_installed'])}.", ""]
    lines.append(md_table({"columns": SYSCALL_COLUMNS, "rows": syscall_rows(doc["cases"])}))
    return lines


def verdicts_of(scenario):
    """A scenario's verdicts as the page states them. Results files written before the rules
    were corrected are re-judged here, saying so: "1.5 KB" is checked as 1,500 bytes (they
    checked 1,536), and "20x uvicorn" is judged against the stronger of the `def` and `async def`
    endpoints (they judged `def` alone)."""
    out = []
    for v in scenario["verdicts"]:
        if "op" in v or v.get("met") is None:
            out.append(v)
            continue
        target = v["target"]
        if target.startswith("server <= 1.5 KB per HTTP/2 stream"):
            value = float(str(v["value"]).split()[0].replace(",", ""))
            met = value <= 1500
            out.append({**v, "target": "server <= 1.5 KB (1,500 bytes) per HTTP/2 stream",
                        "met": met, "why": "re-judged: the run checked <= 1,536 bytes"
                        if met != v["met"] else v.get("why", "")})
        elif target.startswith("server memory <= 10 KB per waiting HTTP/1.1 request"):
            kib, _, rest = str(v["value"]).partition(" KB")
            rows = scenario["tables"][0]["rows"] if scenario["tables"] else []
            exact = [r["kb_per_req"] for r in rows if r.get("client") == "slowlab fetch"
                     and r.get("server") == "slowlab serve (async)" and r.get("kb_per_req")
                     and f"N={r.get('n')})" in rest]
            value = (exact[0] if exact else float(kib)) * 1024
            out.append({**v, "target": "server memory <= 10 KB (10,000 bytes) per waiting "
                        "HTTP/1.1 request", "value": f"{value:,.0f} bytes{rest}",
                        "met": value <= 10000, "why": "the run's KB were KiB, and its figure "
                        "the VmRSS peak after the answers"})
        elif target.startswith("slowlab serve >= 20x uvicorn def ("):
            lg = target[target.index("(") + 1:-1]
            rows = scenario["tables"][0]["rows"] if scenario["tables"] else []
            both = {r["server"]: r for r in rows if r.get("loadgen") == lg
                    and str(r.get("server", "")).startswith("uvicorn")}
            if len(both) < 2:
                out.append(v)
                continue
            server, row = max(both.items(), key=lambda kv: value_of(kv[1].get("rps")) or 0)
            endpoint = "async def" if server.endswith("async def") else "def"
            ratio = value_of(row.get("ours_over"))
            out.append({**v, "target": f"slowlab serve >= 20x uvicorn ({lg}; against {endpoint}, "
                        "the stronger)", "value": f"{ratio:.1f}x", "met": ratio >= 20,
                        "why": f"re-judged: the run judged `def` alone ({v['value']})"
                        if endpoint != "def" else v.get("why", "")})
        else:
            out.append(v)
    return out


def lacks(doc):
    """What a results file does not record, said on the page instead of guessed: files from
    before --repeat hold single runs, no load figures, no SMT topology, no memory methods."""
    out = []
    scenarios = doc["scenarios"]
    if not any("repeat" in s for s in scenarios):
        out.append("repeated runs: every figure is a single run, taken in a fixed order without "
                   "a warm-up, so no spread can be shown and a verdict can be noise")
    if not any("load" in s for s in scenarios):
        out.append("load average and CPU use before and after each scenario, so a run started "
                   "under load cannot be flagged")
    if "smt" not in doc["machine"]:
        out.append("the machine's SMT topology")
    measured = [s for s in scenarios if s["id"] in ("2", "4", "5") and s.get("tables")]
    if measured and not any("memory_methods" in s for s in measured):
        out.append("how each memory figure was measured: the server figures are peaks of VmRSS "
                   "polled every 10 ms, the client figures came from GNU time's %M or, where it "
                   "was missing, from VmHWM; the file does not say which")
    return out


def smt_line(m):
    smt = m.get("smt")
    if not smt:
        return []
    shared = smt.get("siblings_shared") or []
    where = ("some allowed CPUs are SMT siblings (" + ", ".join(shared) + "): client and server "
             "may share one core's execution units" if shared
             else "no two allowed CPUs are SMT siblings")
    return [f"- SMT: {smt.get('active') or '?'} active (control: {smt.get('control') or '?'}); "
            f"{where}"]


def load_text(load):
    if not load:
        return ""
    before = " ".join(f"{x:.2f}" for x in load.get("before") or [])
    after = " ".join(f"{x:.2f}" for x in load.get("after") or [])
    busy = load.get("busy_before")
    text = (f"load average {before or '?'} before, {after or '?'} after; CPUs "
            f"{'?' if busy is None else f'{busy:.0%}'} busy in the second before it")
    if load.get("under_load"):
        text = "**started under load** (something else was running): " + text
    return text


def write(doc, docs_path, results_path):
    docs_path = Path(docs_path)
    docs_path.parent.mkdir(parents=True, exist_ok=True)
    made = charts(doc, docs_path)
    m = doc["machine"]
    pin = doc["pinning"]
    quick = doc["mode"] == "quick"
    lines = [
        "# Benchmarks",
        "",
        f"<!-- Generated by bench/run from {rel(results_path)}; do not edit by hand: change "
        "bench/harness/report.py and run `bench/run --report FILE`. -->",
        "",
        "slowlab measured side by side with the article's Python stack (FastAPI + uvicorn, aiohttp, "
        "requests), a bare tokio + hyper server, oha, hey, wrk and h2load, on one machine. "
        "Each contender runs R times, interleaved with the others (A B C, then B C A, ...) after "
        "a discarded warm-up round; a figure is shown as its median with the lowest and highest "
        "run in brackets, a target is met only when the median meets it, and \"within noise\" "
        "marks a verdict whose runs fell on both sides of the threshold. On these shared 2-core "
        "machines absolute numbers move from run to run; ratios taken within one round are the "
        "result. Nothing here is asserted by tests.",
        "",
        "## This run",
        "",
        *([f"> {doc['note']}", ""] if doc.get("note") else []),
        *([f"> **Superseded** by `bench/results/{doc['superseded_by']}`: "
           f"{doc.get('superseded_why', '')}", ""] if doc.get("superseded_by") else []),
        f"- date: {doc['started']} (UTC), {doc['mode']} mode"
        f"{', ours only' if doc['ours_only'] else ''}, took {doc['seconds']:.0f} s",
        f"- command: `{doc['command'].strip()}`; raw results: `{rel(results_path)}`",
        f"- machine: {m['cores']} cores ({m['cpus_allowed']} allowed), {m['cpu_model']}, "
        f"{m['memory_gib']} GiB, Linux {m['kernel']}, {m.get('os') or ''}; "
        f"open files {m['open_files']}, somaxconn {m['somaxconn']}, "
        f"ephemeral ports {'-'.join((m['ip_local_port_range'] or '?').split())}",
        *smt_line(m),
        ("- pinning: every client on CPU {client_cpu} (`taskset -c {client_cpu}`), every server "
         "on CPU {server_cpu} (`taskset -c {server_cpu}`)".format(**pin)) if "client_cpu" in pin
        else f"- pinning: none ({pin.get('disabled')})",
    ]
    loaded = [s["id"] for s in doc["scenarios"] if (s.get("load") or {}).get("under_load")]
    if loaded:
        lines.append(f"- **started under load**: scenario {', '.join(loaded)} (another process "
                     "kept the CPUs busy just before it); treat its figures with suspicion")
    missing = lacks(doc)
    if missing:
        lines += ["", "This results file predates parts of the harness; it does not record:", ""]
        lines += [f"- {x}" for x in missing]
    lines += [
        "",
        "| component | version |",
        "|---|---|",
    ]
    for name, version in doc["versions"].items():
        lines.append(f"| {name} | {fmt(version)} |")
    if doc.get("skipped_tools"):
        lines += ["", "Peers not available in this run:", ""]
        for name, why in doc["skipped_tools"].items():
            lines.append(f"- {name}: {fmt(why)}")

    own_runs = [] if quick else runs_of_their_own(doc)
    lines += ["", "## Targets", "", "| scenario | target | measured | |", "|---|---|---|---|"]
    for s in doc["scenarios"] + [s for _, _, s in own_runs]:
        for v in verdicts_of(s):
            lines.append(f"| {s['id']} | {fmt(v['target'])} | {fmt(v['value'])} | "
                         f"{verdict_mark(v['met'], quick, v.get('noise'))} |")
    verdicts = [v for s in doc["scenarios"] for v in verdicts_of(s)]
    missed = [v for v in verdicts if v["met"] is False]
    noisy = [v for v in verdicts if v.get("noise")]
    if quick:
        lines += ["", "Quick mode: tiny sizes that prove the harness works. The targets are set "
                  "for the full sizes, so these verdicts judge nothing."]
    else:
        lines += ["", f"{len(missed)} target(s) missed in this run, said plainly below." if missed
                  else "No target missed in this run (of those measured)."]
        if noisy:
            lines += ["", f"{len(noisy)} verdict(s) within noise: their runs fell on both sides "
                      "of the threshold."]

    lines += ["", "## Why, and what was tried", "", kept_analysis(docs_path)]
    # A run with scenario 10 has its own table; older runs cite the newest experiment's.
    if not any(s["id"] == "10" for s in doc["scenarios"]):
        lines += syscall_section()

    for s in doc["scenarios"] + [s for _, _, s in own_runs]:
        lines += ["", f"## Scenario {s['id']}: {s['title']}", ""]
        for path, other, own in own_runs:
            if own is s:
                lines += [f"Measured in a run of its own, not in this page's run: "
                          f"{other['started']} (UTC), `{other['command'].strip()}`, "
                          f"slowlab {other['versions'].get('slowlab_commit', '?')}; raw results: "
                          f"`{rel(path)}`.", ""]
        if s.get("targets"):
            lines += [f"Target: {s['targets']}.", ""]
        if "repeat" in s and s["repeat"] == 1 and not s.get("warmup"):
            lines += ["Runs: one.", ""]
        elif "repeat" in s:
            lines += [f"Runs: {s['repeat']} measured round(s), contenders interleaved and the "
                      f"order rotated each round{', after a discarded warm-up round' if s.get('warmup') else ''}"
                      "; figures are median (min–max).", ""]
        if s.get("load"):
            lines += [f"Conditions: {load_text(s['load'])}"
                      + (f"; then a {s['settle_after']:g} s pause before the next scenario"
                         if s.get("settle_after") else "") + ".", ""]
        for t in s["tables"]:
            lines += [f"**{fmt(t['title'])}**", "", md_table(t) if t["rows"] else "(no rows)", ""]
        for p in made.get(s["id"], []):
            lines += [f"![{p.stem}]({p.name})", ""]
        for v in verdicts_of(s):
            lines.append(f"- {fmt(v['target'])}: {fmt(v['value'])}, "
                         f"{verdict_mark(v['met'], quick, v.get('noise'))}"
                         + (f" ({v['why']})" if v.get("why") else ""))
        for sk in s["skipped"]:
            lines.append(f"- skipped {sk['row']}: {fmt(sk['reason'])}")
        for e in s["errors"]:
            lines.append(f"- ERROR {e['row']}: {fmt(e['message'])}")
        for n in s["notes"]:
            lines.append(f"- {n}")
        for what, method in (s.get("memory_methods") or {}).items():
            lines.append(f"- {what} memory measured by: {method}")
        for c in s.get("configs") or []:
            lines += ["", f"{c['label']}:", "", "```", c["text"].rstrip("\n"), "```"]
        if s["commands"]:
            lines += ["", "Commands:", "", "```sh"]
            lines += [f"{c['cmd']}    # {c['label']}" for c in s["commands"]]
            lines.append("```")
        if "seconds" in s:
            lines += ["", f"({s['seconds']:.0f} s)"]

    lines += ["", "## How to run", "", "```sh",
              "bench/run                      # full suite (under 30 min); regenerates this page",
              "bench/run --quick              # every scenario at tiny sizes",
              "bench/run --quick --ours-only  # what CI runs: no peers",
              "bench/run --report bench/results/FILE.json   # this page from a results file",
              "```", "",
              "The harness builds `cargo build --release` and the `bare_hyper` example itself, "
              "puts the Python peers in `bench/.venv`, installs wrk, hey and h2load "
              "(nghttp2-client), and for scenario 9 nginx (nginx-light), haproxy, iperf3 and "
              "socat, with apt-get and oha with "
              "`cargo install oha --locked --root bench/.work/oha`; any peer it cannot "
              "install is skipped with a line saying why. uvicorn runs with `--no-access-log` "
              "(the article's `uvicorn.run(app)` logs every request), so the Python figures are "
              "the peer's best case. bench/README.md says how to make a full run count.", ""]
    docs_path.write_text("\n".join(lines))
    if docs_path.resolve() == (ROOT / "docs" / "benchmarks.md").resolve() and not quick:
        write_readme_block(doc, results_path)


def runs_of_their_own(doc):
    """Scenarios the page's results file does not hold, from results files of their own
    (`bench/run --only N`, committed as bench/results/DATE-scenarioN.json): the newest file for
    each such scenario, as (path, results, scenario)."""
    have = {s["id"] for s in doc["scenarios"]}
    newest = {}
    for path in sorted((ROOT / "bench" / "results").glob("*-scenario*.json")):
        try:
            other = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for s in other.get("scenarios", []):
            if s["id"] not in have:
                newest[s["id"]] = (path, other, s)
    return [newest[sid] for sid in sorted(newest)]


README_START = "<!-- benchmarks: generated by bench/run from a results file; do not edit by hand -->"
README_END = "<!-- /benchmarks -->"


def readme_block(doc, results_path):
    """The README's benchmark paragraph: every target of the run, met and missed alike."""
    single = not any("repeat" in s for s in doc["scenarios"])
    lines = [README_START,
             f"Measured side by side in one run of `bench/run` ([docs/benchmarks.md]"
             f"(docs/benchmarks.md), from `{rel(results_path)}`, {doc['started'][:10]}"
             + ("; every figure is a single run, as that file predates repeated runs" if single
                else "; medians, with the lowest and highest run") + "):", ""]
    for label, want in [("Met", True), ("Missed", False)]:
        items = [(s["id"], v) for s in doc["scenarios"] for v in verdicts_of(s)
                 if v["met"] is want]
        lines.append(f"- {label} ({len(items)}){':' if items else ': none'}")
        lines += [f"  - {v['target']}: {v['value']}" + (" (within noise)" if v.get("noise") else "")
                  + f" (scenario {sid})" for sid, v in items]
    lines.append(README_END)
    return "\n".join(lines)


def write_readme_block(doc, results_path):
    """Replaces the README's generated block, when it has one."""
    readme = ROOT / "README.md"
    try:
        text = readme.read_text()
        start, end = text.index(README_START), text.index(README_END) + len(README_END)
    except (OSError, ValueError):
        return
    readme.write_text(text[:start] + readme_block(doc, results_path) + text[end:])
