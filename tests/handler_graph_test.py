"""scripts/handler_graph.py on a committed capture (ctest label unit; Python's standard library).

tests/data/handler_tracking_sample.txt is the `@asio` output of one real run of
`bash scripts/handler_graph.sh --log ...`: echo_split --threads 1, one client that sends "hello\n",
reads it back and closes, then SIGINT. In it (the numbers are Asio's handler ids):
  1 co_spawn of the accept loop (strand), 5 its async_accept, 7 the strand hop that resumes it,
  in which the session is spawned inline: 8 the reader's async_wait, 9 the writer's channel
  receive; 10 the next async_accept; 11 the reader's read (6 bytes), whose try_send completes 9;
  12 the writer's resumption; 13 the reader's read that gets EOF, which completes 14, the
  writer's last receive; 15 resumes the writer, and the session closes the socket. 6, 16-25:
  the signal_set, the shutdown's timer and posts, the accept loop's end.
"""
import pathlib
import re
import subprocess
import sys
import unittest

SOURCE = pathlib.Path(__file__).resolve().parent.parent
CONVERTER = SOURCE / "scripts" / "handler_graph.py"
SAMPLE = SOURCE / "tests" / "data" / "handler_tracking_sample.txt"


def convert(*options, input_text=None):
    args = [sys.executable, str(CONVERTER), *options]
    if input_text is None:
        args.append(str(SAMPLE))
    return subprocess.run(args, input=input_text, capture_output=True, text=True, timeout=30)


def edges(dot):
    """{(from, to): attributes} of every `a -> b [...]` line."""
    found = {}
    for m in re.finditer(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?;$", dot, re.M):
        found[(m[1], m[2])] = m[3] or ""
    return found


def label(dot, node):
    m = re.search(rf'^\s*{node} \[label="((?:[^"\\]|\\.)*)"', dot, re.M)
    return m[1].replace("\\n", "\n") if m else None


class HandlerGraphTest(unittest.TestCase):
    def setUp(self):
        result = convert("--role", "client socket=reader", "--role", "channel=writer")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.dot = result.stdout
        self.edges = edges(self.dot)

    def test_the_causal_chain_of_the_conversation(self):
        # Creation edges, with the coroutine hops (7, 12, 15) folded away and the inline co_spawn
        # drawn as one box between the accept and the session's first operations.
        solid = {(a, b) for (a, b), attrs in self.edges.items() if "dashed" not in attrs}
        self.assertEqual(solid, {("h1", "h5"), ("h5", "s5_2"), ("s5_2", "h8"), ("s5_2", "h9"),
                                 ("h8", "h11"), ("h11", "h13"), ("h9", "h14")})
        self.assertIn("resumes via strand", self.edges[("h5", "s5_2")])
        self.assertIn("resumes via post", self.edges[("h9", "h14")])

    def test_a_channel_send_wakes_the_waiting_receive(self):
        # 9 and 14 started while 11 and 13 ran: the reader's try_send completed them.
        self.assertIn("during #11", self.edges[("h11", "h9")])
        self.assertIn("during #13", self.edges[("h13", "h14")])
        self.assertIn("dashed", self.edges[("h11", "h9")])

    def test_labels_say_what_each_operation_got(self):
        self.assertIn("async_accept", label(self.dot, "h5"))
        self.assertIn("→ accepted", label(self.dot, "h5"))
        self.assertIn("reader: async_wait", label(self.dot, "h8"))
        self.assertIn("→ 6 bytes", label(self.dot, "h11"))
        self.assertIn("done at once", label(self.dot, "h11"))
        self.assertIn("→ EOF", label(self.dot, "h13"))
        self.assertIn("would block", label(self.dot, "h13"))
        self.assertIn("writer: async_receive", label(self.dot, "h9"))
        # The close happened in the folded hop 15: it is listed in 14's box.
        self.assertIn("then client socket.close()", label(self.dot, "h14"))

    def test_the_rest_of_the_program_is_left_out(self):
        nodes = set(re.findall(r"^\s*(\w+) \[label=", self.dot, re.M))
        self.assertEqual(nodes, {"h1", "h5", "h8", "h9", "h11", "h13", "h14", "s5_2", "c10"})
        self.assertNotIn("signal_set", self.dot)
        self.assertNotIn("timer", self.dot)
        self.assertIn("not this connection", label(self.dot, "c10"))  # the next accept, greyed

    def test_without_collapsing_the_hops_are_boxes(self):
        result = convert("--no-collapse")
        self.assertEqual(result.returncode, 0, result.stderr)
        found = edges(result.stdout)
        for edge in [("h5", "h7"), ("h9", "h12"), ("h12", "h14"), ("h14", "h15")]:
            self.assertIn(edge, found)
        self.assertIn("client socket.close()", label(result.stdout, "h15"))

    def test_all_keeps_every_handler(self):
        result = convert("--all")
        self.assertEqual(result.returncode, 0, result.stderr)
        nodes = set(re.findall(r"^\s*h(\d+) \[label=", result.stdout, re.M))
        # All 25, less the executor hops folded into the handler before them (7, 12, 15, 16,
        # 18, 19, 21-25); 1-4 are executor handlers too, but started outside any handler: kept.
        self.assertEqual({int(n) for n in nodes}, {1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 17, 20})
        self.assertIn("signal_set", result.stdout)

    def test_a_capture_without_a_connection_is_an_error(self):
        lines = SAMPLE.read_text().splitlines()
        before_accept = "\n".join(lines[:lines.index(next(
            l for l in lines if ".5|non_blocking_accept,ec=system:0" in l))])
        result = convert("-", input_text=before_accept + "\nnot a tracking line\n")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("no connected socket", result.stderr)


if __name__ == "__main__":
    unittest.main()
