"""docs/benchmarks.md and its SVG charts, generated from one results file of bench/run."""

import html
import math
from pathlib import Path

from .util import rel


def fmt(value, kind=None):
    if value is None or value == "":
        return "–"
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


def verdict_mark(met, quick=False):
    if quick and met is not None:
        return "met (quick sizes)" if met else "missed (quick sizes)"
    return {True: "met", False: "**MISSED**", None: "(no target)"}[met]


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


def charts(doc, docs_path):
    """Writes the SVG charts for scenarios 2 and 4 next to the Markdown; returns id -> [paths]."""
    made = {}
    by_id = {s["id"]: s for s in doc["scenarios"]}
    stem = docs_path.stem
    if "2" in by_id and by_id["2"]["tables"] and by_id["2"]["tables"][0]["rows"]:
        rows = by_id["2"]["tables"][0]["rows"]
        wall = [(f"N={r['n']:,} {r['server']} <- {r['client']}", r.get("wall"),
                 r["client"] == "slowlab fetch" and "(async)" in r["server"]) for r in rows]
        mem = [(f"N={r['n']:,} {r['server']} <- {r['client']}", r.get("kb_per_req"),
                r["client"] == "slowlab fetch" and "(async)" in r["server"]) for r in rows]
        paths = []
        for name, svg in [
                ("2-wall", hbar_svg("Scenario 2: N concurrent 1 s requests, wall time", wall,
                                    "seconds (ideal: 1)", log_scale=True, target=1.3,
                                    target_label="target 1.3 s at N=10,000")),
                ("2-memory", hbar_svg("Scenario 2: server memory per waiting request", mem, "KB",
                                      target=10, target_label="target 10 KB"))]:
            p = docs_path.parent / f"{stem}-{name}.svg"
            p.write_text(svg)
            paths.append(p)
        made["2"] = paths
    if "4" in by_id and by_id["4"]["tables"] and by_id["4"]["tables"][0]["rows"]:
        rows = by_id["4"]["tables"][0]["rows"]
        rps = [(r["client"], r.get("rps"), r["client"] == "slowlab fetch") for r in rows]
        rss = [(r["client"], (r.get("rss_kb") or 0) / 1024, r["client"] == "slowlab fetch")
               for r in rows]
        paths = []
        for name, svg in [
                ("4-throughput", hbar_svg("Scenario 4: client throughput against bare hyper "
                                          "(median)", rps, "requests per second")),
                ("4-memory", hbar_svg("Scenario 4: client peak RSS", rss, "MB"))]:
            p = docs_path.parent / f"{stem}-{name}.svg"
            p.write_text(svg)
            paths.append(p)
        made["4"] = paths
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
        "requests), a bare tokio + hyper server, oha, hey and wrk, in one run on one machine. "
        "On these shared 2-core machines absolute numbers are noise from run to run; the ratios, "
        "taken within the run, are the result. Nothing here is asserted by tests.",
        "",
        "## This run",
        "",
        *([f"> {doc['note']}", ""] if doc.get("note") else []),
        f"- date: {doc['started']} (UTC), {doc['mode']} mode"
        f"{', ours only' if doc['ours_only'] else ''}, took {doc['seconds']:.0f} s",
        f"- command: `{doc['command'].strip()}`; raw results: `{rel(results_path)}`",
        f"- machine: {m['cores']} cores ({m['cpus_allowed']} allowed), {m['cpu_model']}, "
        f"{m['memory_gib']} GiB, Linux {m['kernel']}, {m.get('os') or ''}; "
        f"open files {m['open_files']}, somaxconn {m['somaxconn']}, "
        f"ephemeral ports {'-'.join((m['ip_local_port_range'] or '?').split())}",
        ("- pinning: every client on CPU {client_cpu} (`taskset -c {client_cpu}`), every server "
         "on CPU {server_cpu} (`taskset -c {server_cpu}`)".format(**pin)) if "client_cpu" in pin
        else f"- pinning: none ({pin.get('disabled')})",
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

    lines += ["", "## Targets", "", "| scenario | target | measured | |", "|---|---|---|---|"]
    for s in doc["scenarios"]:
        for v in s["verdicts"]:
            lines.append(f"| {s['id']} | {fmt(v['target'])} | {fmt(v['value'])} | "
                         f"{verdict_mark(v['met'], quick)} |")
    missed = [v for s in doc["scenarios"] for v in s["verdicts"] if v["met"] is False]
    if quick:
        lines += ["", "Quick mode: tiny sizes that prove the harness works. The targets are set "
                  "for the full sizes, so these verdicts judge nothing."]
    else:
        lines += ["", f"{len(missed)} target(s) missed in this run, said plainly below." if missed
                  else "No target missed in this run (of those measured)."]

    lines += ["", "## Why, and what was tried", "", kept_analysis(docs_path)]

    for s in doc["scenarios"]:
        lines += ["", f"## Scenario {s['id']}: {s['title']}", ""]
        if s.get("targets"):
            lines += [f"Target: {s['targets']}.", ""]
        for t in s["tables"]:
            lines += [f"**{t['title']}**", "", md_table(t) if t["rows"] else "(no rows)", ""]
        for p in made.get(s["id"], []):
            lines += [f"![{p.stem}]({p.name})", ""]
        for v in s["verdicts"]:
            lines.append(f"- {fmt(v['target'])}: {fmt(v['value'])}, {verdict_mark(v['met'], quick)}"
                         + (f" ({v['why']})" if v.get("why") else ""))
        for sk in s["skipped"]:
            lines.append(f"- skipped {sk['row']}: {fmt(sk['reason'])}")
        for e in s["errors"]:
            lines.append(f"- ERROR {e['row']}: {fmt(e['message'])}")
        for n in s["notes"]:
            lines.append(f"- {n}")
        if s["commands"]:
            lines += ["", "Commands:", "", "```sh"]
            lines += [f"{c['cmd']}    # {c['label']}" for c in s["commands"]]
            lines.append("```")
        if "seconds" in s:
            lines += ["", f"({s['seconds']:.0f} s)"]

    lines += ["", "## How to run", "", "```sh",
              "bench/run                      # full suite, < 15 min; regenerates this page",
              "bench/run --quick              # every scenario at tiny sizes, < 2 min",
              "bench/run --quick --ours-only  # what CI runs: no peers",
              "bench/run --report bench/results/FILE.json   # this page from a results file",
              "```", "",
              "The harness builds `cargo build --release` and the `bare_hyper` example itself, "
              "puts the Python peers in `bench/.venv`, installs wrk and hey with apt-get and oha "
              "with `cargo install oha --locked --root bench/.work/oha`; any peer it cannot "
              "install is skipped with a line saying why. uvicorn runs with `--no-access-log` "
              "(the article's `uvicorn.run(app)` logs every request), so the Python figures are "
              "the peer's best case.", ""]
    docs_path.write_text("\n".join(lines))
