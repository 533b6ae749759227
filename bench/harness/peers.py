"""What each load generator printed, read into one shape: {"requests", "ok", "seconds", "rate",
"errors"}, where `ok` counts 2xx answers, `rate` is ok / seconds (successes per second, the
figure every throughput table shows) and `errors` says what failed ("" when nothing did).

A parser raises ValueError when the output is not what that tool prints after a run: an output
that does not parse is a broken run, never a figure of 0."""

import json
import re


def _result(requests, ok, seconds, errors):
    if seconds is None or seconds <= 0:
        raise ValueError("no duration in the output")
    return {"requests": requests, "ok": ok, "seconds": seconds, "rate": ok / seconds,
            "errors": "; ".join(e for e in errors if e)}


def parse_json(text):
    """The first JSON object in `text` (tools may print a line before it)."""
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object in output")
    return json.JSONDecoder().raw_decode(text[start:])[0]


def fetch(text, expected=None):
    """`slowlab fetch --output json`: its summary. Successes per second are computed here as
    ok / wall, whatever the binary's own `throughput` counts (before the schema said it counts
    successes, it counted failed requests too)."""
    s = parse_json(text)["summary"]
    errors = [f"{e['count']} {e['kind']}" for e in s.get("errors", [])]
    if expected is not None and s["requests"] != expected:
        errors.append(f"{s['requests']} requests of {expected} asked")
    return _result(s["requests"], s["ok"], s["wall"], errors)


_DURATION = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "m": 60.0}


def wrk(text):
    """wrk's text report: "N requests in 3.00s", socket errors, non-2xx/3xx responses."""
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", text)
    if not m or "Requests/sec:" not in text:
        raise ValueError("no 'N requests in T' and 'Requests/sec:' lines")
    requests, seconds = int(m.group(1)), float(m.group(2)) * _DURATION[m.group(3)]
    errors = []
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sock and any(int(x) for x in sock.groups()):
        errors.append("socket errors: connect {}, read {}, write {}, timeout {}".format(
            *sock.groups()))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    bad = int(bad.group(1)) if bad else 0
    if bad:
        errors.append(f"{bad} non-2xx/3xx responses")
    return _result(requests, requests - bad, seconds, errors)


def oha(text):
    """oha's JSON (`--output-format json` or `-j`): status code and error distributions.
    Requests still in flight when a `-z` duration ends are reported as "aborted due to
    deadline": they are the window closing, not failures, and are left out."""
    doc = parse_json(text)
    codes = {int(k): v for k, v in (doc.get("statusCodeDistribution") or {}).items()}
    ok = sum(v for k, v in codes.items() if 200 <= k < 300)
    errors = [f"{v} answered {k}" for k, v in sorted(codes.items()) if not 200 <= k < 300]
    for message, count in (doc.get("errorDistribution") or {}).items():
        if "aborted due to deadline" not in message:
            errors.append(f"{count} x {message}")
    return _result(sum(codes.values()), ok, doc["summary"]["total"], errors)


def hey(text):
    """hey's text report: "Total: T secs", the status code and error distributions."""
    total = re.search(r"Total:\s*([\d.]+) secs", text)
    if not total or "Status code distribution:" not in text:
        raise ValueError("no 'Total:' line or status code distribution")
    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", text)}
    ok = sum(v for k, v in codes.items() if 200 <= k < 300)
    errors = [f"{v} answered {k}" for k, v in sorted(codes.items()) if not 200 <= k < 300]
    if "Error distribution:" in text:
        tail = text.split("Error distribution:", 1)[1]
        failed = sum(int(n) for n in re.findall(r"^\s*\[(\d+)\]", tail, re.M))
        if failed:
            errors.append(f"{failed} failed ({tail.strip().splitlines()[0].strip()[:120]})")
    return _result(sum(codes.values()), ok, float(total.group(1)), errors)


def h2load(text):
    """h2load's report: "finished in T", the requests line and the status codes line."""
    fin = re.search(r"finished in ([\d.]+)(us|µs|ms|s|m),", text)
    req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if not (fin and req and codes):
        raise ValueError("no 'finished in', 'requests:' or 'status codes:' line")
    total, _, done, _, failed, errored, timeout = (int(x) for x in req.groups())
    ok = int(codes.group(1))
    errors = []
    if failed or errored or timeout:
        errors.append(f"{failed} failed, {errored} errored, {timeout} timed out")
    if done < total:
        errors.append(f"{total - done} of {total} not done")
    non2xx = sum(int(x) for x in codes.groups()[1:])
    if non2xx:
        errors.append(f"{non2xx} non-2xx answers")
    return _result(total, ok, float(fin.group(1)) * _DURATION[fin.group(2)], errors)


def aiohttp_driver(text, expected):
    """bench/python/aiohttp_driver.py's JSON line."""
    doc = parse_json(text)
    errors = [f"{doc['failed']} failed"] if doc.get("failed") else []
    if doc["requests"] != expected:
        errors.append(f"{doc['requests']} requests of {expected} asked")
    return _result(doc["requests"], doc["ok"], doc["wall"], errors)


def iperf3(text):
    """iperf3's JSON (`-J`): what the receiving end counted over the test (`end.sum_received`),
    as {"bytes", "seconds", "bits_per_second"}. Not the request shape above: iperf3 moves one
    stream of bytes. A test that failed prints its "error" (and an empty "end"), which is raised
    as a ValueError naming it: a failed transfer is a broken run, never a figure of 0."""
    doc = parse_json(text)
    if doc.get("error"):
        raise ValueError(f"iperf3: {doc['error']}")
    received = doc["end"]["sum_received"]
    if not received.get("seconds") or received["seconds"] <= 0:
        raise ValueError("no duration in the output")
    return {"bytes": received["bytes"], "seconds": received["seconds"],
            "bits_per_second": received["bits_per_second"]}
