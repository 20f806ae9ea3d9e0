"""Integration tests of echo_split: the real binary, spoken to over loopback.

Each test names the contract point it checks (/work/shared/CONTRACT.md: "Every executable",
"Every server", "echo_split"), compares exact bytes, and runs under a time limit generous enough
for an AddressSanitizer build; the contract's own limits (2 s to stop) are asserted on measured
times. Run one file by hand with:

    NETLAB_BIN_DIR=build/debug/bin python3 -m unittest -v test_echo_split
"""
import os
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

from netlab_testing import (STOP_TIMEOUT, ServerTestCase, Swarm, binary, connect,
                            free_port_in_use, served_within,
                            ipv6_loopback_available, run_program, time_limit, wait_until)

NAME = "echo_split"
STOP_LIMIT = 2.0  # the contract: SIGINT/SIGTERM -> exit 0 within 2 s
DEFAULT_MAX_LINE = 65536


def numbered_lines(tag, count, width=40):
    """`count` distinct lines for client `tag`, of varying lengths (so reads split them)."""
    for number in range(count):
        filler = b"%c" % (97 + number % 26) * (number * 7 % width)
        yield b"%s line %d %s\n" % (tag, number, filler)


def refusal(max_line):
    return b"error: line longer than %d bytes\n" % max_line


class EchoSplitTest(ServerTestCase):

    def start(self, *args, **kwargs):
        """echo_split on a free loopback port, killed when the test ends."""
        return self.start_server(NAME, "--port", "0", *args, **kwargs)

    def assert_echoes(self, client, line):
        self.assertEqual(client.roundtrip(line), line)

    def assert_all_echoed(self, swarm_clients):
        """Every client got back exactly the bytes it sent, then EOF."""
        for client in swarm_clients:
            self.assertIsNone(client.send_error, client)
            self.assertEqual(client.end, "eof", client)
            self.assertEqual(bytes(client.received), bytes(client.sent), client)

    # --- echo_split: bytes and framing ---

    @time_limit(30)
    def test_any_bytes_come_back_byte_for_byte(self):
        """A line with \\r, NUL and non-UTF-8 bytes comes back unchanged, on its own and among
        others; several lines in one send come back in order."""
        server = self.start()
        client = self.connect(server)
        odd = b"a\rb\x00c\xff\xfe\x80 \x1b[31m\r\r\x00\x00\n"
        self.assert_echoes(client, odd)
        self.assert_echoes(client, b"\n")  # an empty line is a line too
        batch = b"one\ntwo\r\n\x00three\n" + odd + bytes(range(256)).replace(b"\n", b"") + b"\n"
        self.assert_echoes(client, batch)

    @time_limit(30)
    def test_lines_split_across_tiny_sends(self):
        """Lines that arrive a byte or three at a time are reassembled and echoed whole."""
        server = self.start()
        client = self.connect(server)
        payload = b"".join(numbered_lines(b"tiny", 20)) + b"\xff\x00\r\n"
        for start in range(0, len(payload), 3):
            client.send(payload[start:start + 3])
            if start % 30 == 0:
                time.sleep(0.002)  # let the server read a fragment on its own now and then
        self.assertEqual(client.recv_exact(len(payload)), payload)

    @time_limit(30)
    def test_unterminated_last_line_then_half_close(self):
        """An unterminated last line before EOF comes back, then the server closes its side."""
        server = self.start()
        client = self.connect(server)
        client.send(b"first\nno newline at the end \x00\xff")
        client.half_close()
        self.assertEqual(client.recv_until_eof(), b"first\nno newline at the end \x00\xff")

    @time_limit(60)
    def test_half_close_with_5_mib_in_flight(self):
        """5 MiB of lines sent while reading, then a half-close: every byte comes back, in
        order, then EOF (nothing queued in the channel is dropped at the end of input)."""
        server = self.start()
        payload = bytearray()
        for line in numbered_lines(b"bulk", 10**6, width=200):  # ~110 bytes a line
            payload += line
            if len(payload) >= 5 << 20:
                break
        payload += b"and a last line without newline"
        swarm = Swarm(server, [[bytes(payload)]])
        self.addCleanup(swarm.close)
        [client] = swarm.run(timeout=45)
        self.assertEqual(len(client.sent), len(payload))
        self.assert_all_echoed([client])

    @time_limit(60)
    def test_200_concurrent_clients_each_get_their_own_lines(self):
        """200 clients at once, each with its own lines: each gets exactly its own back."""
        server = self.start()
        swarm = Swarm(server, [numbered_lines(b"client %03d" % i, 50) for i in range(200)])
        self.addCleanup(swarm.close)
        self.assert_all_echoed(swarm.run(timeout=45))

    # --- echo_split: --max-line ---

    @time_limit(30)
    def test_line_of_1_mib_is_refused_and_others_carry_on(self):
        """A 1 MiB line without '\\n' (default --max-line 65536): that client gets exactly the
        refusal line, then the server closes; clients connected before and after keep echoing.
        """
        server = self.start()
        before = self.connect(server)
        self.assert_echoes(before, b"before\n")
        swarm = Swarm(server, [[b"fine\n", b"x" * (1 << 20)]])
        self.addCleanup(swarm.close)
        [flooder] = swarm.run(timeout=20)
        # The server lingers after the refusal so that the line is not destroyed by a reset; a
        # reset after it (the rest of the 1 MiB unread) is allowed.
        self.assertIn(flooder.end, ("eof", "reset"), flooder)
        self.assertEqual(bytes(flooder.received), b"fine\n" + refusal(DEFAULT_MAX_LINE))
        self.assert_echoes(before, b"still here\n")
        after = self.connect(server)
        self.assert_echoes(after, b"after\n")

    @time_limit(30)
    def test_max_line_boundary(self):
        """A line of exactly --max-line bytes plus '\\n' is echoed; one byte more is refused
        with the error line naming the limit, then EOF. Checked at 100 and at the default."""
        for args, limit in ((["--max-line", "100"], 100), ([], DEFAULT_MAX_LINE)):
            with self.subTest(max_line=limit):
                server = self.start(*args)
                client = self.connect(server)
                longest = b"L" * (limit - 1) + b"\xff" + b"\n"
                self.assert_echoes(client, longest)
                self.assert_echoes(client, longest)  # and the buffer is reusable after it
                client.send(b"M" * (limit + 1) + b"\n")
                self.assertEqual(client.recv_until_eof(allow_reset=True), refusal(limit))
                server.kill()

    # --- echo_split: backpressure and bounded memory ---

    @time_limit(60)
    def test_client_that_never_reads_is_flow_controlled(self):
        """A client that sends 50 MiB of ~60 KB lines and never reads is stopped by TCP flow
        control: the kernel accepts far less than 50 MiB, the server's RSS grows by less than
        the design bound allows, and another client keeps getting prompt echoes meanwhile."""
        queue, max_line = 16, 65536
        # Two io threads whatever the machine: each thread's malloc arena may keep its own
        # freed lines, so the slack below depends on the thread count.
        server = self.start("--queue", str(queue), "--max-line", str(max_line), "--threads", "2")
        other = self.connect(server)
        for number in range(50):  # warm up: threads, buffers, allocator arenas
            self.assert_echoes(other, b"warm-up %d\n" % number)
        time.sleep(0.2)
        rss_before = server.rss_kib()

        hog = self.connect(server)
        line = b"y" * 59999 + b"\n"
        block = memoryview(line * 16)
        accepted, peak, latencies = 0, rss_before, []
        last_progress = time.monotonic()
        # Send until the socket accepts nothing for 1 s, or 50 MiB went in, whichever first.
        while accepted < 50 << 20 and time.monotonic() - last_progress < 1.0:
            count = hog.send_some(block[accepted % len(block):], timeout=0.05)
            if count:
                accepted += count
                last_progress = time.monotonic()
            peak = max(peak, server.rss_kib())
            started = time.monotonic()
            self.assert_echoes(other, b"ping %d\n" % len(latencies))
            latencies.append(time.monotonic() - started)
        for _ in range(10):  # stuck now: the memory must stay where it is
            time.sleep(0.05)
            peak = max(peak, server.rss_kib())
        hog.close()
        self.assert_echoes(other, b"after the hog\n")
        rss_after = server.rss_kib()

        # The design bound: the reader's buffer (max_line + 1), the group in the channel and the
        # one waiting to enter it (queue lines together: a group holds at most queue / 2), the
        # writer's batch (two groups, queue lines): (2 * queue + 1) * (max_line + 1) bytes,
        # ~2.1 MiB.
        design_bound_kib = (2 * queue + 1) * (max_line + 1) // 1024
        # Allowance, glibc: the bound plus 1 MiB of allocator slack (a 60 KB line is below the
        # mmap threshold, so freed lines are reused from the heap; what remains is partly used
        # pages and the other client's buffers). Measured on 2 vCPUs: +1.15 MiB at --queue 16
        # (the channel full, the blocked batch small), +3.9 MiB at --queue 64, +15 MiB at 256:
        # so a server that ignored --queue 16 for the default 64 already fails.
        # AddressSanitizer quarantines freed memory instead of reusing it and adds redzones, so
        # there RSS follows the bytes read so far (+6.4 MiB measured at --queue 16, +9.7 MiB at
        # 64): the check is coarser, 3x the bound plus 4 MiB, still far below an unbounded
        # server's 50 MiB.
        if server.is_sanitized():
            allowance_kib = 3 * design_bound_kib + 4 * 1024
        else:
            allowance_kib = design_bound_kib + 1024
        report = (f"kernel+server accepted {accepted / 2**20:.2f} MiB; RSS before {rss_before} "
                  f"KiB, peak {peak} (+{peak - rss_before}), after {rss_after} "
                  f"(+{rss_after - rss_before}); allowance {allowance_kib} KiB; echo latency "
                  f"max {max(latencies) * 1000:.1f} ms over {len(latencies)} pings")
        print(f"\n  {report}")
        # Loopback buffers (client send buffer, server receive buffer, both autotuned) took
        # 6-9 MiB here; half of the 50 MiB would mean the server kept reading.
        self.assertLess(accepted, 25 << 20, report)
        self.assertLess(peak - rss_before, allowance_kib, report)
        # "Promptly": typically a millisecond or two; 1 s leaves room for a loaded sanitizer run.
        self.assertLess(max(latencies), 1.0, report)

    # --- Every executable: signals ---

    def streaming_swarm(self, server, count):
        """`count` clients that each stream numbered lines (bounded: 10^6 lines) until the
        server closes their connection."""
        streams = [numbered_lines(b"stream %02d" % i, 10**6) for i in range(count)]
        swarm = Swarm(server, streams)
        self.addCleanup(swarm.close)
        return swarm

    def interrupt_under_load(self, count=20):
        """Starts `count` streaming clients, sends SIGINT while they stream, and returns
        (exit status, seconds to exit, the clients once every stream has ended)."""
        server = self.start()
        swarm = self.streaming_swarm(server, count)
        outcome = {}

        def drive():
            try:
                outcome["clients"] = swarm.run(timeout=30)
            except BaseException as error:  # re-raised on the test's thread
                outcome["error"] = error

        driver = threading.Thread(target=drive, daemon=True)
        driver.start()
        streaming = wait_until(lambda: all(len(c.received) > 10000 for c in swarm.clients),
                               timeout=10)
        code, seconds = server.stop(signal.SIGINT)
        driver.join(40)
        self.assertFalse(driver.is_alive(), "clients still running")
        if "error" in outcome:
            raise outcome["error"]
        self.assertTrue(streaming, f"not every client was streaming yet: {swarm.clients}")
        return code, seconds, outcome["clients"], server

    @time_limit(90)
    def test_sigint_under_load_exits_0_within_2s_and_echoes_are_line_prefixes(self):
        """SIGINT while 20 clients stream: exit 0 within 2 s, and what each client received is
        a byte-exact prefix of what it sent, ending at a line boundary (no torn line)."""
        code, seconds, clients, server = self.interrupt_under_load()
        self.assertEqual(code, 0, server.stderr_text())
        self.assertLess(seconds, STOP_LIMIT, server.stderr_text())
        for client in clients:
            received = bytes(client.received)
            self.assertTrue(received, client)
            self.assertTrue(bytes(client.sent).startswith(received), client)
            self.assertTrue(received.endswith(b"\n"),
                            f"{client}: the stream ends mid-line, a line was torn: "
                            f"{received[-60:]!r}; stopped in {seconds:.2f} s; "
                            f"stderr: {server.stderr_text()}")

    @time_limit(90)
    def test_sigint_under_load_ends_every_stream_with_eof(self):
        """SIGINT while 20 clients stream (and read everything): the server stops reading,
        writes back what it has read, and closes, so every client sees its echoes followed by
        EOF, not a reset; the clients stop sending as soon as they see EOF.

        A stop that only ends when the server's forced-stop deadline (graceful_stop_limit,
        1.5 s) expires has not drained its sessions: it drops the lines still queued, and the
        kernel resets every socket with unread input ("nothing accepted lost silently")."""
        forced_stop_deadline = 1.5
        code, seconds, clients, server = self.interrupt_under_load()
        ends = {client.index: client.end for client in clients}
        diagnosis = (f"ends: {ends}; stopped in {seconds:.2f} s; "
                     f"stderr: {server.stderr_text()}")
        self.assertEqual([i for i, end in ends.items() if end != "eof"], [], diagnosis)
        self.assertLess(seconds, forced_stop_deadline, diagnosis)
        for client in clients:
            self.assertTrue(bytes(client.sent).startswith(bytes(client.received)), client)
        self.assertEqual(code, 0)

    @time_limit(30)
    def test_sigterm_on_idle_server_exits_0_at_once(self):
        """SIGTERM with one idle client connected: exit 0 within 2 s, the client sees EOF."""
        server = self.start()
        client = self.connect(server)
        self.assert_echoes(client, b"hello\n")
        code, seconds = server.stop(signal.SIGTERM)
        self.assertEqual(code, 0, server.stderr_text())
        self.assertLess(seconds, STOP_LIMIT)
        client.expect_eof()

    @time_limit(90)
    def test_a_stderr_pipe_nobody_reads_costs_log_lines_not_the_server(self):
        """stderr on a pipe nobody reads, and 1500 clients that each cause an info line (a line
        over --max-line): once the pipe is full (~800 lines), log lines are dropped, but every
        client still gets its refusal, a well-behaved client its echo, and SIGTERM a prompt exit.
        """
        read_end, write_end = os.pipe()
        self.addCleanup(os.close, read_end)
        proc = subprocess.Popen([binary(NAME), "--port", "0", "--threads", "2", "--max-line", "10"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=write_end)
        os.close(write_end)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        self.addCleanup(proc.stdout.close)
        listening = proc.stdout.readline()
        self.assertRegex(listening, rb"^listening on 127\.0\.0\.1:\d+\n$")
        address = ("127.0.0.1", int(listening.rpartition(b":")[2]))

        overlong = 1500
        for number in range(1, overlong + 1):
            with connect(address, timeout=5) as client:
                client.send(b"x" * 20 + b"\n")
                try:
                    self.assertEqual(client.recv_until_eof(timeout=5, allow_reset=True),
                                     refusal(10))
                except TimeoutError as error:
                    raise AssertionError(f"client {number} of {overlong}: {error}") from None
        with connect(address, timeout=5) as client:
            self.assert_echoes(client, b"still here\n")

        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(STOP_TIMEOUT)
        self.assertEqual(code, 0)
        self.assertLess(time.monotonic() - start, STOP_LIMIT)
        # The pipe holds the first lines, whole: each one a client sent a line too long.
        logged = os.read(read_end, 1 << 20).decode().splitlines()
        self.assertGreater(len(logged), 100)
        for line in logged:
            self.assertRegex(line, r"^[\d:.]+ info  127\.0\.0\.1:\d+ sent a line longer than 10 "
                                   r"bytes: closing$")

    @time_limit(30)
    def test_an_unfinished_line_at_a_stop_is_not_echoed_but_logged(self):
        """A stop that finds part of a line read and no newline yet: every complete line comes
        back, the part does not (it is not a line), and the log says so."""
        server = self.start()
        client = self.connect(server)
        client.send(b"done\npartial")  # one segment: the server reads both parts together
        self.assertEqual(client.recv_exact(5), b"done\n")
        code, _ = server.stop(signal.SIGINT)
        self.assertEqual(code, 0, server.stderr_text())
        self.assertEqual(client.recv_until_eof(), b"")
        host, port = client.sock.getsockname()[:2]
        self.assertIn(f"{host}:{port}: stopped reading; 7 bytes of an unfinished line not echoed",
                      server.stderr_text())

    @time_limit(30)
    def test_second_sigint_stops_at_once(self):
        """A connection that cannot drain (its client never reads) holds up the graceful stop;
        a second SIGINT stops the server at once, with exit status 0."""
        server = self.start("--queue", "4")
        hog = self.connect(server)
        chunk = b"z" * 65535 + b"\n"
        quiet_since = time.monotonic()
        for _ in range(2000):  # fill the path until the server stops taking data for 0.3 s
            if hog.send_some(chunk, timeout=0.05):
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 0.3:
                break
        first_signal = time.monotonic()
        server.signal(signal.SIGINT)
        # The first signal was handled once the listener is closed ("stop accepting").
        self.assertTrue(wait_until(lambda: not self.accepts(server), timeout=1.0),
                        "still accepting after SIGINT")
        if not server.alive():
            self.skipTest("the first SIGINT already stopped the server: the client that never "
                          "reads did not hold the graceful stop up, so there is nothing to cut")
        code, seconds = server.stop(signal.SIGINT)
        since_first = time.monotonic() - first_signal
        diagnosis = (f"{seconds:.2f} s after the second signal, {since_first:.2f} s after the "
                     f"first; stderr: {server.stderr_text()}")
        self.assertEqual(code, 0, diagnosis)
        # At once, and before the graceful stop's own deadline (1.5 s) could have ended it.
        self.assertLess(seconds, 1.0, diagnosis)
        self.assertLess(since_first, 1.4, diagnosis)

    @staticmethod
    def accepts(server):
        try:
            with connect(server, timeout=1.0):
                return True
        except ConnectionRefusedError:
            return False

    # --- Every executable: command line ---

    @time_limit(30)
    def test_port_in_use_exits_1_naming_the_address(self):
        """--port of a port already in use: exit status 1, one line on stderr that names
        127.0.0.1:PORT, nothing on stdout."""
        holder, port = free_port_in_use()
        self.addCleanup(holder.close)
        result = run_program(NAME, "--port", str(port))
        self.assertEqual(result.returncode, 1, result)
        self.assertEqual(result.stdout, b"")
        self.assert_one_line(result.stderr)
        self.assertIn(b"127.0.0.1:%d" % port, result.stderr)

    def assert_one_line(self, text):
        self.assertTrue(text.endswith(b"\n") and text.count(b"\n") == 1, text)

    @time_limit(60)
    def test_bad_options_exit_2_naming_the_option(self):
        """Bad options and values: exit status 2, a one-line error on stderr naming the option,
        nothing on stdout (in particular, no `listening on`)."""
        cases = [("--port", "70000"), ("--port", "abc"), ("--threads", "0"), ("--queue", "0"),
                 ("--max-line", "0"), ("--bind", "not-an-ip"), ("--log-level", "loud"),
                 ("--no-such-option",)]
        for args in cases:
            with self.subTest(args=args):
                # --port 0 where the port is not the point: were the bad value accepted, the
                # server would not take 8080 from someone else (and run_program times out).
                port = () if args[0] == "--port" else ("--port", "0")
                result = run_program(NAME, *args, *port)
                self.assertEqual(result.returncode, 2, result)
                self.assertEqual(result.stdout, b"")
                self.assert_one_line(result.stderr)
                self.assertIn(args[0].encode(), result.stderr)

    @time_limit(30)
    def test_log_level_option_and_spdlog_level_environment(self):
        """Diagnostics go to stderr at the level asked: --log-level wins, SPDLOG_LEVEL applies
        when the option is absent, the default (info) hides debug lines; stdout is untouched."""
        import os
        debug_line = re.compile(r"\bdebug\b.*127\.0\.0\.1:\d+ connected")

        def connection_logged(*args, env_level=None):
            env = dict(os.environ)
            env.pop("SPDLOG_LEVEL", None)
            if env_level:
                env["SPDLOG_LEVEL"] = env_level
            server = self.start(*args, env=env)
            self.assert_echoes(self.connect(server), b"logged?\n")
            code, _ = server.stop(signal.SIGINT)
            self.assertEqual(code, 0)
            self.assertEqual(server.stdout_lines, [f"listening on 127.0.0.1:{server.port}"])
            return bool(debug_line.search(server.stderr_text()))

        self.assertTrue(connection_logged("--log-level", "debug"))
        self.assertTrue(connection_logged(env_level="debug"))
        self.assertFalse(connection_logged())
        self.assertFalse(connection_logged("--log-level", "warn", env_level="debug"))

    @time_limit(30)
    def test_help_lists_every_option_with_its_default(self):
        """--help exits 0 and explains every option, with the default where there is one."""
        result = run_program(NAME, "--help")
        self.assertEqual(result.returncode, 0, result)
        entries = help_entries(result.stdout.decode())
        # The default as CLI11 shows it (`=64`) or in words (`default: info`); --threads
        # defaults to the number of cores, shown as a number or said in words.
        defaults = {"--bind": "127.0.0.1", "--port": "8080", "--threads": r"\d+|cores",
                    "--queue": "64", "--max-line": "65536", "--log-level": "info",
                    "--demo": None, "--version": None}
        for option, default in defaults.items():
            with self.subTest(option=option):
                self.assertIn(option, entries, result.stdout.decode())
                if default is not None:
                    pattern = default if option == "--threads" else re.escape(default)
                    self.assertRegex(entries[option], rf"(=|default: )({pattern})\b")

    @time_limit(30)
    def test_version_exits_0(self):
        """--version exits 0 and prints a version number on stdout."""
        result = run_program(NAME, "--version")
        self.assertEqual(result.returncode, 0, result)
        self.assertRegex(result.stdout.decode(), r"^\S.*\b\d+\.\d+\.\d+\b.*\n$")

    @time_limit(30)
    def test_demo_prints_the_scripted_conversation(self):
        """--demo runs server and scripted clients in one process, prints the conversation
        (a line comes back, the refusal, `demo done`), and exits 0 quickly."""
        started = time.monotonic()
        result = run_program(NAME, "--demo", timeout=20)
        seconds = time.monotonic() - started
        self.assertEqual(result.returncode, 0, result)
        lines = result.stdout.decode(errors="replace").splitlines()
        self.assertRegex(lines[0], r"^listening on 127\.0\.0\.1:\d+$")
        for expected in ['client 1 receives "hello, echo\\n"',
                         'client 3 receives "error: line longer than 65536 bytes\\n"',
                         'client 1 receives "client 1 was not disturbed\\n"']:
            self.assertIn(expected, lines)
        self.assertTrue(lines[-1].startswith("demo done"), lines[-1])
        self.assertLess(seconds, 10)

    # --- Every server: addresses, threads, descriptors ---

    @time_limit(30)
    def test_listening_line_ipv4(self):
        """The first stdout line is exactly `listening on 127.0.0.1:PORT`, the real port."""
        server = self.start()
        self.assertEqual(server.stdout_lines[0], f"listening on 127.0.0.1:{server.port}")
        self.assertNotEqual(server.port, 0)

    @time_limit(30)
    def test_ipv6_loopback(self):
        """--bind ::1 --port 0 prints `listening on [::1]:PORT` and echoes over IPv6."""
        if not ipv6_loopback_available():
            self.skipTest("no IPv6 loopback on this machine")
        server = self.start("--bind", "::1")
        self.assertEqual(server.stdout_lines[0], f"listening on [::1]:{server.port}")
        client = self.connect(server)
        self.assertEqual(client.sock.family, socket.AF_INET6)
        self.assert_echoes(client, b"over IPv6 \x00\xff\n")

    @time_limit(90)
    def test_threads_1_and_4_under_50_clients(self):
        """--threads 1 (a single-threaded reactor) and --threads 4 give identical results:
        50 concurrent clients each get exactly their own lines back."""
        for threads in ("1", "4"):
            with self.subTest(threads=threads):
                server = self.start("--threads", threads)
                swarm = Swarm(server, [numbered_lines(b"t%s c%02d" % (threads.encode(), i), 200)
                                       for i in range(50)])
                self.addCleanup(swarm.close)
                self.assert_all_echoed(swarm.run(timeout=40))
                server.kill()

    @time_limit(90)
    def test_out_of_descriptors_keeps_serving_without_spinning(self):
        """Under a 40-descriptor limit with 60 clients: the server stays up, the first clients
        echo, the condition is logged once (not once per retry), the server does not spin while
        clients wait, and waiting clients are accepted and echo once others have closed.

        Whether the server lets accept() fail with EMFILE and backs off, or stops accepting
        at a cap below its descriptor limit, is its choice; both pass."""
        limit, count = 40, 60
        server = self.start("--threads", "2", "--log-level", "info",
                            prefix=["prlimit", f"--nofile={limit}:{limit}", "--"])
        # Warm-up: a few whole connections before the limit is reached. Harmless, and needed
        # under UBSan: its vptr check calls pipe() the first time it meets a type at a call
        # site; at the descriptor limit pipe() fails and UBSan reports a false "invalid vptr"
        # (seen in ~cancellation_signal when the first session ends at the limit). The first
        # sightings must happen while descriptors are to spare.
        idle_descriptors = server.open_descriptors()
        for number in range(3):
            with connect(server) as client:
                self.assert_echoes(client, b"warm-up %d\n" % number)
        self.assertTrue(wait_until(lambda: server.open_descriptors() == idle_descriptors, 5))
        stderr_before = server.stderr_text()

        clients = [self.connect(server) for _ in range(count)]  # the kernel's backlog takes all
        lines = [b"hello %d\n" % i for i in range(count)]
        for client, line in zip(clients, lines):
            client.send(line)
        served = echoed_within(clients, lines, timeout=3.0)
        waiting = [i for i in range(count) if i not in served]
        self.assertGreater(len(served), 10, "too few clients served under a limit of 40")
        self.assertTrue(waiting, "no client left waiting: the limit did not bite")
        self.assertTrue(server.alive())

        cpu_before, wait_started = server.cpu_seconds(), time.monotonic()
        time.sleep(1.5)
        cpu_used = server.cpu_seconds() - cpu_before
        waited = time.monotonic() - wait_started
        self.assertLess(cpu_used, 0.3, f"{cpu_used:.2f} s of CPU in {waited:.1f} s: spinning?")
        logged = warnings(server.stderr_text()[len(stderr_before):])
        self.assertEqual(len(logged), 1, f"expected the condition logged once: {logged}")
        for i in served[:5]:  # the served ones are still served
            self.assert_echoes(clients[i], b"still served %d\n" % i)

        for i in served[:10]:  # free ten descriptors: ten waiting clients get in
            clients[i].close()
        late = echoed_within([clients[i] for i in waiting], [lines[i] for i in waiting], 5.0,
                             expected=10)
        self.assertEqual(len(late), 10, f"{len(late)} of the waiting clients were accepted")
        for position in late:
            i = waiting[position]
            self.assert_echoes(clients[i], b"accepted late %d\n" % i)
        self.assertTrue(server.alive())


def echoed_within(clients, lines, timeout, expected=None):
    """Indices of the clients whose `lines[i]` came back within `timeout` (see served_within)."""
    def check(index, client):
        echo = client.recv_exact(len(lines[index]), timeout=1.0)
        assert echo == lines[index], (index, echo)
    return served_within(clients, check, timeout, expected)


def help_entries(text):
    """--help output as {option: its whole entry}, entries possibly spanning several lines."""
    entries, current = {}, None
    for line in text.splitlines():
        match = re.match(r"^\s+(?:-\w,)?(--[\w-]+)", line)
        if match:
            current = match.group(1)
            entries[current] = line
        elif current and line.startswith("    "):
            entries[current] += " " + line.strip()
        else:
            current = None
    return entries


def warnings(stderr):
    """The log lines at level warning or above (spdlog's pattern: `HH:MM:SS.mmm level text`)."""
    return [line for line in stderr.splitlines()
            if line.split()[1:2] and line.split()[1] in ("warning", "error", "critical")]


if __name__ == "__main__":
    unittest.main()
