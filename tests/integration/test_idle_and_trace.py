"""Integration tests of two options every exercise shares: --idle-timeout and --trace.

--idle-timeout SECONDS (TCP servers; common/idle.hpp): a connection with nothing read from the
client and no write to it completed for that long is closed like at shutdown: what was read is
written back, then the server closes; a write stuck on a client that reads nothing is cancelled.
chat says why first (`error: idle too long, disconnected`), and the others see `* NAME left`.
Default: off.

--trace (every exercise; common/trace.hpp): each socket operation told step by step on stderr:
attempted, would block (EAGAIN), waiting for readiness, woken, completed with N bytes.

    NETLAB_BIN_DIR=build/debug/bin python3 -m unittest -v test_idle_and_trace
"""
import re
import select
import signal
import socket
import struct
import subprocess
import threading
import time

from netlab_testing import ServerTestCase, run_program, time_limit, wait_until

IDLE = 2.0           # the --idle-timeout the tests give
BUSY_EVERY = IDLE / 10  # how often a busy client does something: a wide margin on a loaded machine
BUSY_ROUNDS = 20        # so a busy client stays busy for two idle periods
MARGIN = 4.0         # how late after IDLE a close may come (sanitizer builds, a busy machine)
TCP_SERVERS = (("echo_split",), ("conn_counter",), ("chat",), ("chat", "--design", "lesson"))
ECHO_SERVERS = (("echo_split",), ("conn_counter",))


def send_while_accepted(client, data, seconds=10):
    """Sends `data` until done, or until the server takes nothing for half a second (it stopped
    reading), or `seconds` pass. Returns the number of bytes sent."""
    view = memoryview(data)
    sent = 0
    deadline = time.monotonic() + seconds
    while sent < len(view) and time.monotonic() < deadline:
        try:
            count = client.send_some(view[sent:sent + (1 << 20)], timeout=0.5)
        except (BrokenPipeError, ConnectionResetError):
            break  # the server closed first (the idle timeout, which counts only its own reads)
        if count == 0:
            break
        sent += count
    return sent


def next_chat_line(client):
    """The next chat line, skipping server notices (`* ...`) such as joins and renames."""
    while True:
        line = client.recv_line()
        if not line.startswith(b"* "):
            return line


def keep_busy_until(clients, notice, seconds):
    """Each client asks /who in turn, every BUSY_EVERY, until one of them reads `notice`:
    the time it did, or None after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for client in clients:
            client.send(b"/who\n")
            while True:
                line = client.recv_line()
                if line == notice:
                    return time.monotonic()
                if line.startswith(b"* connected: "):
                    break
        time.sleep(BUSY_EVERY)
    return None


def idle_option(seconds=IDLE):
    return ("--idle-timeout", str(seconds))


class IdleTraceTest(ServerTestCase):

    def start(self, command, *args):
        return self.start_server(command[0], *command[1:], "--port", "0", *args)

    def assert_closed_after_idle(self, client, since, closed_at=None):
        """The server closes `client` (EOF) no sooner than IDLE after `since`, and not much
        later; `closed_at`: when the close was seen, if it was before this call."""
        self.assertEqual(client.recv_until_eof(timeout=IDLE + MARGIN + 2), b"")
        idle_for = (closed_at or time.monotonic()) - since
        self.assertGreaterEqual(idle_for, IDLE * 0.9, "closed before the idle timeout")
        self.assertLess(idle_for, IDLE + MARGIN, "not closed within the idle timeout")

    # --- --idle-timeout ---

    @time_limit(60)
    def test_idle_timeout_closes_a_silent_echo_client_but_not_a_busy_one(self):
        for command in ECHO_SERVERS:
            with self.subTest(server=command[0]):
                server = self.start(command, *idle_option())
                busy = self.connect(server)
                self.assertEqual(busy.roundtrip(b"first\n"), b"first\n")
                silent = self.connect(server)
                self.assertEqual(silent.roundtrip(b"one\n"), b"one\n")
                last_activity = time.monotonic()
                # The busy client keeps talking for two idle periods and is never closed; the
                # silent one is, and the time it is (EOF makes its socket readable) is noted.
                closed_at = None
                for number in range(BUSY_ROUNDS):
                    line = b"busy %d\n" % number
                    self.assertEqual(busy.roundtrip(line), line)
                    if closed_at is None and select.select([silent.sock], [], [], 0)[0]:
                        closed_at = time.monotonic()
                    time.sleep(BUSY_EVERY)
                self.assert_closed_after_idle(silent, last_activity, closed_at)
                self.assertEqual(busy.roundtrip(b"still here\n"), b"still here\n")
                if command[0] == "conn_counter":
                    lines = [server.next_line() for _ in range(3)]
                    self.assertRegex(lines[2], r"^Disconnected #2 from 127\.0\.0\.1:\d+ "
                                               r"\(active 1, closed 1\)$")
                code, _ = server.stop(signal.SIGINT)
                self.assertEqual(code, 0)

    @time_limit(60)
    def test_idle_timeout_reaps_a_client_that_neither_reads_nor_sends(self):
        # The client fills the server's write (it sends a lot and reads nothing): nothing moves
        # for the server. It cancels its stuck write and closes the connection. (When exactly
        # depends on when the server stopped reading, which the kernel's buffers hide: the
        # timing is checked by the other tests.)
        for command in TCP_SERVERS:
            with self.subTest(server=" ".join(command)):
                server = self.start(command, *idle_option())
                baseline = server.open_descriptors()
                client = self.connect(server, rcvbuf=4096, sndbuf=4096)
                self.assertTrue(wait_until(lambda: server.open_descriptors() == baseline + 1, 5))
                if command[0] == "chat":
                    # A talker sends the stuck client 6.4 MB, more than the kernel's buffers
                    # hold, in fewer lines than --outbox (so it is not dropped as too slow).
                    talker = self.connect(server)
                    send_while_accepted(talker, (b"x" * 31999 + b"\n") * 200)
                    talker.close()
                else:
                    sent = send_while_accepted(client, b"y" * (64 << 20))
                    self.assertLess(sent, 64 << 20, "the server never stopped reading")
                # Without reading (a read would be activity), watch the connection go away.
                self.assertTrue(
                    wait_until(lambda: server.open_descriptors() == baseline, IDLE + MARGIN + 2),
                    f"{server.open_descriptors()} descriptors open, expected {baseline}")
                self.assertTrue(server.alive())
                code, _ = server.stop(signal.SIGINT)
                self.assertEqual(code, 0)

    @time_limit(90)
    def test_idle_timeout_spares_a_client_that_reads_a_large_backlog_slowly(self):
        # A client that reads steadily (8 KiB every 8 ms: 1 MB/s, never a pause near the limit)
        # while megabytes are queued for it: the server's write waits for room in the kernel's
        # send buffer for longer than the limit, but the client is reading, not idle. Every
        # byte must arrive. (Closed as idle before: 4/4 runs at 1 MB/s, --idle-timeout 1.)
        for command in ECHO_SERVERS + (("chat",),):
            with self.subTest(server=command[0]):
                outbox = ("--outbox", "100000") if command[0] == "chat" else ()  # not too slow
                server = self.start(command, *idle_option(1.0), *outbox)
                reader = self.connect(server, rcvbuf=16384)
                line = b"q" * 999 + b"\n"
                if command[0] == "chat":
                    sender = self.connect(server)
                    self.assertEqual(reader.recv_line(), b"* %s:%d joined\n"
                                     % (b"127.0.0.1", sender.sock.getsockname()[1]))
                    expected = len(line) + len(b"127.0.0.1:%d: " % sender.sock.getsockname()[1])
                    expected *= 4200
                else:
                    sender = reader
                    expected = len(line) * 4200
                writer = threading.Thread(target=sender.sock.sendall, args=(line * 4200,))
                writer.start()
                received = 0
                reader.sock.settimeout(IDLE + MARGIN)
                while received < expected:
                    data = reader.sock.recv(8192)
                    if not data:
                        break
                    received += len(data)
                    time.sleep(0.008)
                writer.join()
                # (chat: the sender is idle once sent, and its departure's notice may come too)
                self.assertGreaterEqual(received, expected, server.stderr_text()[-500:])
                code, _ = server.stop(signal.SIGINT)
                self.assertEqual(code, 0)

    @time_limit(60)
    def test_idle_timeout_in_chat_says_why_and_the_room_carries_on(self):
        for design in ("queued", "lesson"):
            with self.subTest(design=design):
                server = self.start(("chat", "--design", design), *idle_option())
                sleepy = self.connect(server)
                sleepy.send(b"/nick sleepy\n")
                talker = self.connect(server)
                talker.send(b"/nick talker\n")
                listener = self.connect(server)
                # A session joins the room on its own thread: the /who reply says the listener
                # is in, so the talker's first line cannot be broadcast before it joined.
                listener.send(b"/who\n")
                while not listener.recv_line().startswith(b"* connected: "):
                    pass
                # sleepy sends nothing for two idle periods, but the talker's lines are written
                # to it: that is activity too, so it stays.
                for number in range(BUSY_ROUNDS):
                    if number:
                        time.sleep(BUSY_EVERY)
                    talker.send(b"line %d\n" % number)
                    self.assertEqual(next_chat_line(listener), b"talker: line %d\n" % number)
                last_write = time.monotonic()
                # From now on nothing is written to sleepy; the other two keep busy with /who
                # (answered to the asker only) until the room hears that sleepy left.
                left_at = keep_busy_until(
                    [talker, listener], b"* sleepy left\n", IDLE + MARGIN)
                self.assertIsNotNone(left_at, "sleepy was not disconnected")
                self.assertGreaterEqual(left_at - last_write, IDLE * 0.9)
                rest = sleepy.recv_until_eof()
                self.assertTrue(
                    rest.endswith(b"talker: line %d\nerror: idle too long, disconnected\n"
                                 % (BUSY_ROUNDS - 1)),
                    rest[-200:])
                talker.send(b"after\n")
                self.assertEqual(next_chat_line(listener), b"talker: after\n")
                code, _ = server.stop(signal.SIGINT)
                self.assertEqual(code, 0)

    @time_limit(30)
    def test_idle_timeout_is_off_by_default(self):
        for command in TCP_SERVERS:
            with self.subTest(server=" ".join(command)):
                server = self.start(command)
                client = self.connect(server)
                client.send(b"/who\n" if command[0] == "chat" else b"hi\n")
                first = client.recv_line()
                time.sleep(2 * IDLE)
                self.assertTrue(first.endswith(b"\n"))
                if command[0] == "chat":
                    client.send(b"/who\n")
                    self.assertTrue(client.recv_line().startswith(b"* connected: "))
                else:
                    self.assertEqual(client.roundtrip(b"still open\n"), b"still open\n")
                server.stop(signal.SIGINT)

    def test_idle_timeout_bad_values_exit_2_naming_the_option(self):
        for command in TCP_SERVERS:
            # 1e-400 is not 0 ("never") but out of range; 0x10 is not decimal.
            for value in ("-1", "abc", "1e9", "", "1e-400", "0x10", "nan", "inf"):
                with self.subTest(server=" ".join(command), value=value):
                    result = run_program(command[0], *command[1:], "--idle-timeout", value)
                    self.assertEqual(result.returncode, 2, result)
                    lines = result.stderr.decode().splitlines()
                    self.assertEqual(len(lines), 1, lines)
                    self.assertIn("--idle-timeout", lines[0])

    @time_limit(60)
    def test_idle_timeout_below_a_millisecond_is_refused_and_one_millisecond_works(self):
        # The timeout is kept in whole milliseconds: 0.0004 s would round to 0, "never". It is
        # refused, and --help says where the range starts.
        for command in TCP_SERVERS:
            with self.subTest(server=" ".join(command)):
                try:
                    result = run_program(command[0], *command[1:], "--port", "0",
                                         "--idle-timeout", "0.0004", timeout=5)
                except subprocess.TimeoutExpired:
                    self.fail("--idle-timeout 0.0004 accepted: the server ran")
                self.assertEqual(result.returncode, 2, result)
                lines = result.stderr.decode().splitlines()
                self.assertEqual(len(lines), 1, lines)
                self.assertIn("--idle-timeout", lines[0])
                self.assertIn("0.001", lines[0])
                self.assertIn("from 0.001, one millisecond, to 604800",
                              run_program(command[0], "--help").stdout.decode())
        # The smallest value accepted is one millisecond, not "never".
        server = self.start(("echo_split",), *idle_option(0.001))
        client = self.connect(server)
        self.assertEqual(client.recv_until_eof(timeout=5), b"")

    # --- --trace ---

    @time_limit(30)
    def test_trace_tells_the_lesson_story_of_one_echo(self):
        server = self.start(("echo_split",), "--trace", "--threads", "1")
        client = self.connect(server)
        time.sleep(0.3)  # the server's first read finds nothing: it would block
        client.send(b"hello\n")
        self.assertEqual(client.recv_line(), b"hello\n")
        client.half_close()
        self.assertEqual(client.recv_until_eof(), b"")
        self.assertTrue(wait_until(lambda: "end of stream" in server.stderr_text(), 5))
        server.stop(signal.SIGINT)
        log = server.stderr_text()
        accepted = re.search(r"accept: a connection from 127\.0\.0\.1:(\d+): fd (\d+)", log)
        self.assertIsNotNone(accepted, log)
        self.assertEqual(int(accepted.group(1)), client.sock.getsockname()[1])
        fd = accepted.group(2)
        steps = [m.group(1) for m in re.finditer(rf"trace fd {fd} (.*)", log)]
        expected = ["read: attempted", "read: would block (EAGAIN)",
                    "read: waiting for readiness", "read: woken: readable", "read: attempted",
                    "read: completed with 6 bytes", "write: attempted",
                    "write: completed with 6 bytes", "read: end of stream (the peer closed its side)"]
        position = 0
        for step in steps:  # `expected`, in this order, with other steps allowed between
            if position < len(expected) and step == expected[position]:
                position += 1
        self.assertEqual(position, len(expected),
                         f"missing {expected[position:]!r} in order; steps: {steps!r}")

    @time_limit(60)
    def test_trace_on_every_exercise_and_nothing_else_changes(self):
        for command in TCP_SERVERS:
            with self.subTest(server=" ".join(command)):
                server = self.start(command, "--trace")
                a = self.connect(server)
                b = self.connect(server)
                if command[0] == "chat":
                    b.send(b"/who\n")
                    self.assertTrue(b.recv_line().startswith(b"* connected: "))
                    a.send(b"traced\n")
                    self.assertTrue(b.recv_line().endswith(b": traced\n"))
                else:
                    self.assertEqual(a.roundtrip(b"traced\n"), b"traced\n")
                server.stop(signal.SIGINT)
                log = server.stderr_text()
                self.assertRegex(log, r"trace fd \d+ read: completed with 7 bytes")
                self.assertRegex(log, r"trace fd \d+ write: completed with \d+ bytes")
        result = run_program("udp_pingpong", "--trace", "--count", "2", "--interval", "0")
        self.assertEqual(result.returncode, 0, result)
        out = result.stdout.decode()
        self.assertEqual(len(re.findall(r"^pong from .*: seq=\d+ time=", out, re.M)), 2, out)
        err = result.stderr.decode()
        self.assertRegex(err, r"trace fd \d+ send: completed with \d+ bytes")
        self.assertRegex(err, r"trace fd \d+ receive: completed with \d+ bytes")
        self.assertRegex(err, r"trace fd \d+ receive: would block \(EAGAIN\)")

    @time_limit(60)
    def test_trace_mode_takes_bad_input_like_the_normal_path(self):
        # The traced path reads with its own system calls: binary bytes, an overlong line and a
        # reset in the middle of a line must get exactly what they get without --trace.
        for command in TCP_SERVERS:
            with self.subTest(server=" ".join(command)):
                limit = () if command[0] == "conn_counter" else ("--max-line", "100")
                server = self.start(command, "--trace", *limit)
                witness = self.connect(server)
                if command[0] == "chat":
                    witness.send(b"/who\n")
                    self.assertTrue(witness.recv_line().startswith(b"* connected: "))
                binary = self.connect(server)
                weird = b"\x00\x01\r\xff\x1b[31m\n"
                binary.send(weird)
                if command[0] == "chat":
                    self.assertTrue(next_chat_line(witness).endswith(
                        b": \\x00\\x01\\x0d\xff\\x1b[31m\n"))
                else:
                    self.assertEqual(binary.recv_exact(len(weird)), weird)
                if command[0] != "conn_counter":  # bytes, not lines: no --max-line there
                    overlong = self.connect(server)
                    overlong.send(b"x" * 200 + b"\n")
                    self.assertTrue(overlong.recv_until_eof(allow_reset=True).endswith(
                        b"error: line longer than 100 bytes\n"))
                reset = self.connect(server)
                reset.send(b"half a li")
                reset.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      struct.pack("ii", 1, 0))
                reset.close()
                if command[0] == "chat":
                    witness.send(b"/who\n")
                    while not witness.recv_line().startswith(b"* connected: "):
                        pass
                else:
                    self.assertEqual(witness.roundtrip(b"still here\n"), b"still here\n")
                self.assertTrue(server.alive())
                code, _ = server.stop(signal.SIGINT)
                self.assertEqual(code, 0)
                # Where the reset surfaces depends on the server: conn_counter echoes the half
                # line first, and its write is what fails.
                self.assertRegex(server.stderr_text(),
                                 r"trace fd \d+ (read|write): failed: Connection reset by peer")

    @time_limit(30)
    def test_trace_mode_udp_ignores_garbage_and_answers_pings(self):
        server = self.start(("udp_pingpong", "serve"), "--trace")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(5)
            for garbage in (b"", b"PING 1", b"pong 1", b"\x00\xff" * 100, b"y" * 65507):
                client.sendto(garbage, server.address)
            client.sendto(b"ping 7 payload", server.address)
            self.assertEqual(client.recvfrom(65536)[0], b"pong 7 payload")
        code, _ = server.stop(signal.SIGINT)
        self.assertEqual(code, 0)
        log = server.stderr_text()
        self.assertEqual(len(re.findall(r"trace fd \d+ receive: completed with \d+ bytes", log)), 6,
                         log)
        self.assertEqual(len(re.findall(r"trace fd \d+ send: completed with 14 bytes", log)), 1, log)
