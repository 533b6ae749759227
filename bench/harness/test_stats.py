"""bench/run --self-test: the statistics and the report's wording, on fixed inputs.

Run as `bench/run --self-test` (what CI does) or `python3 -m unittest bench.harness.test_stats`
from the repository root."""

import unittest

from . import peers, report, stats


class Rounds(unittest.TestCase):
    def test_warmup_then_rotated_rounds(self):
        order = stats.rounds(["A", "B", "C"], 3)
        self.assertEqual(order, [
            (0, "A"), (0, "B"), (0, "C"),  # warm-up, discarded
            (1, "A"), (1, "B"), (1, "C"),
            (2, "B"), (2, "C"), (2, "A"),
            (3, "C"), (3, "A"), (3, "B"),
        ])

    def test_rotation_wraps_past_the_number_of_contenders(self):
        order = [c for r, c in stats.rounds(["A", "B"], 3, warmup=False)]
        self.assertEqual(order, ["A", "B", "B", "A", "A", "B"])

    def test_every_contender_runs_once_per_round(self):
        order = stats.rounds(["A", "B", "C", "D"], 5)
        for r in range(6):
            self.assertEqual(sorted(c for rr, c in order if rr == r), ["A", "B", "C", "D"])

    def test_no_warmup(self):
        self.assertEqual(stats.rounds(["A"], 2, warmup=False), [(1, "A"), (2, "A")])


class Spread(unittest.TestCase):
    def test_odd_and_even_medians(self):
        self.assertEqual(stats.median([3, 1, 2]), 2)
        self.assertEqual(stats.median([4, 1, 3, 2]), 2.5)

    def test_missing_figures_are_left_out(self):
        self.assertEqual(stats.spread([5, None, 1, 3]),
                         {"median": 3, "min": 1, "max": 5, "runs": [5, 1, 3]})
        self.assertIsNone(stats.spread([None, None]))
        self.assertIsNone(stats.median([]))

    def test_value_of_old_plain_figures(self):
        self.assertEqual(stats.value_of(1.5), 1.5)
        self.assertEqual(stats.value_of({"median": 2, "min": 1, "max": 3, "runs": [1, 2, 3]}), 2)
        self.assertIsNone(stats.value_of(None))


class Judge(unittest.TestCase):
    def test_median_decides(self):
        # Two of three runs miss 1.3 s, so the median misses, and the spread straddles it.
        self.assertEqual(stats.judge(stats.spread([1.2, 1.4, 1.5]), "<=", 1.3), (False, True))
        self.assertEqual(stats.judge(stats.spread([1.2, 1.25, 1.4]), "<=", 1.3), (True, True))

    def test_clear_verdicts_are_not_noise(self):
        self.assertEqual(stats.judge(stats.spread([0.95, 0.97, 1.02]), ">=", 0.9), (True, False))
        self.assertEqual(stats.judge(stats.spread([0.5, 0.6]), ">=", 0.9), (False, False))

    def test_threshold_itself_meets(self):
        self.assertEqual(stats.judge(1500, "<=", 1500), (True, False))
        self.assertEqual(stats.judge(1501, "<=", 1500), (False, False))

    def test_strictly_below_excludes_the_threshold(self):
        # "Faster than h2load": a ratio of exactly 1.0 is a tie, not a win.
        self.assertEqual(stats.judge(1.0, "<", 1.0), (False, False))
        self.assertEqual(stats.judge(stats.spread([0.97, 0.99, 1.01]), "<", 1.0), (True, True))

    def test_no_figure_no_verdict(self):
        self.assertEqual(stats.judge(None, "<=", 1), (None, False))


class PairedRatio(unittest.TestCase):
    def test_ratio_per_round_over_common_rounds(self):
        ours = {1: 100.0, 2: 90.0, 3: 120.0}
        base = {1: 100.0, 2: 100.0, 4: 50.0}
        r = stats.paired_ratio(ours, base)
        self.assertEqual(r["runs"], [1.0, 0.9])
        self.assertAlmostEqual(r["median"], 0.95)

    def test_missing_side(self):
        self.assertIsNone(stats.paired_ratio({}, {1: 1.0}))
        self.assertIsNone(stats.paired_ratio({1: 1.0}, {2: 1.0}))


class Wording(unittest.TestCase):
    def test_spread_is_shown_with_its_median(self):
        s = stats.spread([104681.0, 117808.0, 81599.0])
        self.assertEqual(report.fmt(s, "rps"), "104,681 (81,599–117,808)")
        self.assertEqual(report.fmt(stats.spread([1.5]), "s"), "1.500")
        self.assertEqual(report.fmt(1.5, "s"), "1.500")

    def test_plain_number_has_no_ratio_mark(self):
        self.assertEqual(report.fmt(stats.spread([4.76, 4.41, 5.1]), "f2"), "4.76 (4.41–5.10)")

    def test_verdict_marks(self):
        self.assertEqual(report.verdict_mark(True), "met")
        self.assertEqual(report.verdict_mark(False), "**MISSED**")
        self.assertEqual(report.verdict_mark(True, noise=True), "met (within noise)")
        self.assertEqual(report.verdict_mark(False, noise=True), "**MISSED** (within noise)")
        self.assertEqual(report.verdict_mark(None), "(no target)")
        self.assertEqual(report.verdict_mark(False, quick=True), "missed (quick sizes)")

    def test_bytes_threshold_unit(self):
        # "1.5 KB" is checked as 1,500 bytes: 1,523 is a miss.
        self.assertEqual(stats.judge(1523, "<=", 1500), (False, False))


WRK = """Running 3s test @ http://127.0.0.1:8080/0
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   295.83us   48.13us   2.12ms   85.65%
    Req/Sec   169.45k     5.21k  175.32k    80.00%
  506183 requests in 3.00s, 58.89MB read
  Socket errors: connect 0, read 0, write 0, timeout 2
  Non-2xx or 3xx responses: 183
Requests/sec: 168629.41
Transfer/sec:     19.63MB
"""

HEY = """
Summary:
  Total:\t2.7257 secs
  Slowest:\t0.0210 secs
  Requests/sec:\t36688.1234

Status code distribution:
  [200]\t99990 responses
  [503]\t5 responses

Error distribution:
  [5]\tGet "http://127.0.0.1:8080/0": dial tcp 127.0.0.1:8080: connect: connection refused
"""

H2LOAD = """starting benchmark...
finished in 6.12s, 16339.87 req/s, 1.25MB/s
requests: 100000 total, 100000 started, 99990 done, 99980 succeeded, 10 failed, 10 errored, 0 timeout
status codes: 99980 2xx, 0 3xx, 0 4xx, 0 5xx
"""

OHA = """{"summary": {"successRate": 1.0, "total": 2.5, "requestsPerSec": 40000.0},
 "statusCodeDistribution": {"200": 99950, "500": 50},
 "errorDistribution": {"aborted due to deadline": 12, "connection refused": 3}}"""


# iperf3 -J, trimmed to what the parser reads (a loopback test of 1 s) and the shape of a failure.
IPERF3 = """{"start": {"version": "iperf 3.12"}, "intervals": [],
 "end": {"sum_sent": {"start": 0, "end": 1.001319, "seconds": 1.001319, "bytes": 1517813760,
                      "bits_per_second": 12126515206.4427, "retransmits": 1, "sender": true},
         "sum_received": {"start": 0, "end": 1.007347, "seconds": 1.007347, "bytes": 1516503040,
                          "bits_per_second": 12043540428.472015, "sender": true}}}"""
IPERF3_FAILED = """{"start": {"connected": [], "version": "iperf 3.12"}, "intervals": [],
 "end": {}, "error": "unable to connect to server: Connection refused"}"""


class Parsers(unittest.TestCase):
    """Every peer's output read for successes and errors: a rate counts 2xx answers only."""

    def test_wrk(self):
        r = peers.wrk(WRK)
        self.assertEqual((r["requests"], r["ok"], r["seconds"]), (506183, 506000, 3.0))
        self.assertAlmostEqual(r["rate"], 506000 / 3.0)
        self.assertIn("timeout 2", r["errors"])
        self.assertIn("183 non-2xx", r["errors"])

    def test_wrk_clean(self):
        clean = WRK.replace("  Socket errors: connect 0, read 0, write 0, timeout 2\n", "")
        clean = clean.replace("  Non-2xx or 3xx responses: 183\n", "")
        self.assertEqual(peers.wrk(clean)["errors"], "")

    def test_hey(self):
        r = peers.hey(HEY)
        self.assertEqual((r["requests"], r["ok"]), (99995, 99990))
        self.assertAlmostEqual(r["rate"], 99990 / 2.7257)
        self.assertIn("5 answered 503", r["errors"])
        self.assertIn("5 failed", r["errors"])

    def test_h2load(self):
        r = peers.h2load(H2LOAD)
        self.assertEqual((r["requests"], r["ok"], r["seconds"]), (100000, 99980, 6.12))
        self.assertIn("10 failed, 10 errored", r["errors"])
        self.assertIn("10 of 100000 not done", r["errors"])
        self.assertEqual(peers.h2load(H2LOAD.replace("6.12s", "612.5ms"))["seconds"], 0.6125)

    def test_oha_ignores_the_deadline_cut(self):
        r = peers.oha(OHA)
        self.assertEqual((r["ok"], r["seconds"]), (99950, 2.5))
        self.assertIn("50 answered 500", r["errors"])
        self.assertIn("3 x connection refused", r["errors"])
        self.assertNotIn("deadline", r["errors"])

    def test_fetch_counts_successes_and_short_counts(self):
        text = ('{"summary": {"requests": 90, "ok": 80, "failed": 10, "wall": 2.0, "errors": '
                '[{"kind": "refused", "count": 10, "example": "x"}]}}')
        r = peers.fetch(text, expected=100)
        self.assertEqual(r["rate"], 40.0)
        self.assertIn("10 refused", r["errors"])
        self.assertIn("90 requests of 100 asked", r["errors"])

    def test_unparsable_output_is_an_error_not_a_zero(self):
        for parse in (peers.wrk, peers.hey, peers.h2load, peers.oha):
            with self.assertRaises(ValueError):
                parse("connection refused\n")

    def test_iperf3_reads_the_receiving_end(self):
        r = peers.iperf3(IPERF3)
        self.assertEqual((r["bytes"], r["seconds"]), (1516503040, 1.007347))
        self.assertAlmostEqual(r["bits_per_second"], 12043540428.472015)

    def test_iperf3_failure_is_an_error_naming_it(self):
        with self.assertRaisesRegex(ValueError, "unable to connect"):
            peers.iperf3(IPERF3_FAILED)
        with self.assertRaises(ValueError):
            peers.iperf3("iperf3: error - unable to connect\n")


class LegacyFiles(unittest.TestCase):
    """Results files from before the rules were corrected are re-judged on the page."""

    def test_one_and_a_half_kb_is_1500_bytes(self):
        sc = {"tables": [], "verdicts": [{"target": "server <= 1.5 KB per HTTP/2 stream",
                                          "value": "1,523 bytes", "met": True, "why": ""}]}
        (v,) = report.verdicts_of(sc)
        self.assertIs(v["met"], False)
        self.assertIn("1,500 bytes", v["target"])
        self.assertIn("1,536", v["why"])

    def test_uvicorn_ratio_against_the_stronger_endpoint(self):
        rows = [{"server": "uvicorn + FastAPI def", "loadgen": "wrk", "rps": 3905.0,
                 "ours_over": 34.55},
                {"server": "uvicorn + FastAPI async def", "loadgen": "wrk", "rps": 6388.0,
                 "ours_over": 21.12},
                {"server": "uvicorn + FastAPI async def", "loadgen": "oha", "rps": 6949.0,
                 "ours_over": 16.26}]
        sc = {"tables": [{"rows": rows}], "verdicts": [
            {"target": "slowlab serve >= 20x uvicorn def (wrk)", "value": "34.6x", "met": True}]}
        (v,) = report.verdicts_of(sc)
        self.assertEqual((v["value"], v["met"]), ("21.1x", True))
        self.assertIn("against async def", v["target"])

    def test_new_verdicts_are_kept(self):
        v = {"target": "x", "value": "1", "met": False, "noise": True, "op": "<=",
             "threshold": 1, "figure": 2}
        self.assertEqual(report.verdicts_of({"tables": [], "verdicts": [v]}), [v])

    def test_what_an_old_file_lacks_is_said(self):
        doc = {"machine": {}, "scenarios": [{"id": "2", "tables": [{}], "verdicts": []}]}
        said = " ".join(report.lacks(doc))
        for what in ("repeated runs", "load average", "SMT", "memory"):
            self.assertIn(what, said)
        doc = {"machine": {"smt": {}}, "scenarios": [
            {"id": "2", "tables": [{}], "repeat": 3, "load": {}, "memory_methods": {},
             "verdicts": []},
            {"id": "1c", "tables": [{}], "repeat": 1, "load": {}, "verdicts": []}]}
        self.assertEqual(report.lacks(doc), [])

    def test_readme_block_lists_misses_too(self):
        doc = {"started": "2026-11-26T13:17:46+00:00", "scenarios": [{"id": "2", "tables": [],
               "repeat": 3, "verdicts": [
                   {"target": "a", "value": "1", "met": True, "noise": False, "op": "<="},
                   {"target": "b", "value": "2", "met": False, "noise": True, "op": "<="}]}]}
        block = report.readme_block(doc, "bench/results/X.json")
        self.assertIn("- Met (1):\n  - a: 1 (scenario 2)", block)
        self.assertIn("- Missed (1):\n  - b: 2 (within noise) (scenario 2)", block)


if __name__ == "__main__":
    unittest.main()
