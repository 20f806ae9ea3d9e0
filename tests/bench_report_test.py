"""bench/report.py's verdicts on made-up runs (ctest label unit; Python's standard library).

The figures are invented so that each answer is known by hand: medians, the ratio a target is
judged on, and the ratios repetition by repetition that show how far noise moves it.
"""
import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "bench"))

import report  # noqa: E402  (bench/ is not a package)
from workloads import all_workloads  # noqa: E402

ECHO = next(w for w in all_workloads(False) if w.id == "echo_64x16")
SLOW_READER = next(w for w in all_workloads(False) if w.id == "chat_slow")


def runs(*cpu_per_line):
    return [{"lines_per_s": 1000.0, "server_cpu_us_per_line": cpu} for cpu in cpu_per_line]


def results(workload, by_server):
    return {"workloads": {workload.id: by_server}}


def cpu_target(workload):
    return next(t for t in workload.targets if t.key == "server_cpu_us_per_line")


class RatiosByRepetitionTest(unittest.TestCase):
    def echo_results(self):
        # netlab is ahead in the median, behind in repetition 2: the noise the column shows.
        return results(ECHO, {
            "netlab echo_split": runs(1.0, 1.5, 0.9),
            "tokio echo_split": runs(1.25, 1.2, 1.5),
            "go echo": runs(2.0, 2.0, 2.0),
            "C epoll echo": runs(0.5, 0.5, 0.5),
        })

    def test_the_target_is_judged_on_the_best_peers_median(self):
        _, verdicts = report.evaluate(ECHO, self.echo_results())
        target, mine, value, name, ratio, met = next(v for v in verdicts
                                                     if v[0] is cpu_target(ECHO))
        # The ceiling is not a peer: tokio is the best peer (median 1.25), netlab's median 1.0.
        self.assertEqual((mine, value, name), (1.0, 1.25, "tokio echo_split"))
        self.assertAlmostEqual(ratio, 0.8)
        self.assertTrue(met)  # <= 0.8x

    def test_each_repetition_pairs_netlab_with_the_same_peers_run_of_that_round(self):
        ratios = report.ratios_by_repetition(ECHO, cpu_target(ECHO), "tokio echo_split",
                                             self.echo_results())
        for got, want in zip(ratios, (0.8, 1.25, 0.6), strict=True):
            self.assertAlmostEqual(got, want)
        self.assertEqual(report.spread(ratios), "0.60–1.25×")

    def test_a_failed_run_drops_its_pair_only(self):
        data = self.echo_results()
        data["workloads"][ECHO.id]["tokio echo_split"][1] = {"bench_error": "server died"}
        ratios = report.ratios_by_repetition(ECHO, cpu_target(ECHO), "tokio echo_split", data)
        self.assertEqual(len(ratios), 2)
        self.assertEqual(report.spread(ratios), "0.60–0.80×")

    def test_a_figure_that_is_a_ratio_already_is_its_own_spread(self):
        target = SLOW_READER.targets[0]
        data = results(SLOW_READER, {
            name: [{target.key: r} for r in (1.05, 0.92, 1.0)]
            for name in (s.name for s in SLOW_READER.servers)})
        ratios = report.ratios_by_repetition(SLOW_READER, target, "itself", data)
        self.assertEqual(report.spread(ratios), "0.92–1.05×")

    def test_equal_ratios_show_once_and_none_show_a_dash(self):
        self.assertEqual(report.spread([0.41, 0.4123]), "0.41×")
        self.assertEqual(report.spread([]), "–")


if __name__ == "__main__":
    unittest.main()
