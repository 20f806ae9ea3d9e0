"""Integration tests of the netbench binary as bench/run uses it: its command line, and short
real loads against netlab's own servers on loopback (its checkers have unit tests of their own,
against deliberately faulty servers: tests/unit/netbench_test.cpp)."""
import json
import unittest

from netlab_testing import ServerTestCase, run_program

SUBCOMMANDS = ("echo", "chat", "conns", "hold")


def summary(result):
    """The one-line JSON summary that ends netbench's stdout."""
    return json.loads(result.stdout.strip().splitlines()[-1])


class NetbenchTest(ServerTestCase):
    def test_every_subcommand_lists_log_level_in_its_help(self):
        # --log-level is taken before or after the subcommand, so each --help must show it.
        for mode in ("", *SUBCOMMANDS):
            with self.subTest(mode=mode):
                result = run_program("netbench", *filter(None, [mode]), "--help", text=True)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertRegex(result.stdout, r"--log-level\b")
        result = run_program("netbench", "echo", "--log-level", "loud", text=True)
        self.assertEqual(result.returncode, 2, result.stdout)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertIn("--log-level", result.stderr)

    def test_echo_and_conns_loads_against_echo_split_count_their_work(self):
        server = self.start_server("echo_split", "--port", "0", "--log-level", "warn")
        target = f"127.0.0.1:{server.port}"
        pid = str(server.proc.pid)
        echo = run_program("netbench", "echo", "--target", target, "--pid", pid, "--conns", "4",
                           "--inflight", "2", "--size", "32", "--duration", "0.3",
                           "--log-level", "warn", text=True, timeout=30)
        self.assertEqual(echo.returncode, 0, echo.stdout + echo.stderr)
        result = summary(echo)
        self.assertGreater(result["lines"], 0, result)
        for error in ("corrupted", "lost", "duplicated", "reordered", "disconnected", "errors"):
            self.assertEqual(result[error], 0, result)
        self.assertIn("server_cpu_us_per_line", result)
        conns = run_program("netbench", "conns", "--target", target, "--pid", pid, "--total",
                            "200", "--concurrency", "8", "--duration", "20", text=True, timeout=30)
        self.assertEqual(conns.returncode, 0, conns.stdout + conns.stderr)
        result = summary(conns)
        self.assertEqual((result["completed"], result["failed"], result["errors"]), (200, 0, 0),
                         result)


if __name__ == "__main__":
    unittest.main()
