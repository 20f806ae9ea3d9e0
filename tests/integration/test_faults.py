"""Fault injection against the real servers (issue 7): what a hostile or broken network does to
echo_split, conn_counter, chat (both designs) and `udp_pingpong serve`, over loopback only.

Every fault, and the policy the servers follow (/work/shared/CONTRACT.md):

- Peer reset (SO_LINGER 0, then close) in the middle of a line, and in the middle of the server's
  write (the client sent a lot, read a little, then reset): the connection is dropped and its
  resources freed (the server's descriptor count goes back to what it was); a partial line is
  never handed on (chat: the others see `* NAME left`, never the fragment); the server stays up
  and serves the next client byte for byte. conn_counter prints its `Disconnected` line.
- Half-close from the client with data still in flight: end of input is not the end of the
  conversation. Every byte read is still written back (echo_split, conn_counter) and then the
  server closes its side (EOF); in chat every line sent before the half-close still reaches the
  others, in order, then the sender is closed.
- The client goes away while the server is blocked writing to it (it never read, so its receive
  buffer and the server's send buffer are full: the blocked state is checked on the kernel's own
  queues in /proc/net/tcp, which stop moving): the reset fails the pending write, the server
  frees the connection and carries on. In chat's queued design the others never waited; in the
  lesson's design the room stalls while the write is blocked (that is the design being taught)
  and flows again, losing nothing, once the write fails.
- Running out of descriptors (the server started under `prlimit --nofile=N:N`, more clients
  than N): no crash, no spinning (CPU time from /proc/PID/stat stays low), the connections it
  holds are still served, waiting clients are accepted once others close.
- SIGINT while many clients are mid-conversation: stop accepting and reading, write back or
  deliver what was read, close, exit 0 within 2 s. A client gets a byte-exact prefix of what it
  sent (echo) or of each sender's lines (chat), made of complete lines only, then EOF, never a
  reset. A second SIGINT during a stop held up by a client that does not read stops at once.
  The clients here close once they read EOF, as real ones do (one that keeps its socket open
  makes a server linger up to 1 s for it; the per-server tests cover that). A slow stop's
  failure message names the CPU time the server used meanwhile and the machine's load, which
  tells a server that is busy from one that is starved.
- SIGTERM: the same as SIGINT. A port in use, or an address that is not on this machine
  (192.0.2.1, TEST-NET-1; 2001:db8::1, the IPv6 documentation prefix): exit status 1, one line
  naming the address and the reason. A bad value for any option (`--port ''` is not `--port 0`,
  `--idle-timeout nan` is not a time): exit status 2, one stderr line naming the option, nothing
  on stdout.
- UDP: a burst of 100000 garbage datagrams (random bytes, empty, 65507 bytes, `pin`, `PING`,
  `pong 1`, ` ping`) gets no reply at all; real pings sent during the burst get exact pongs or
  none (datagrams may be dropped, never mangled); after it, pings get exact pongs, and the
  server is idle again.

Run one case by hand with:

    NETLAB_BIN_DIR=build/debug/bin python3 -m unittest -v test_faults.FaultTest.test_...
"""
import os
import random
import re
import selectors
import signal
import socket
import struct
import subprocess
import threading
import time
import unittest

from netlab_testing import (Client, ServerTestCase, Swarm, binary, connect, free_port_in_use,
                            ipv6_loopback_available, random_garbage, run_program, served_within,
                            time_limit, wait_until)

STOP_LIMIT = 2.0  # the contract: SIGINT/SIGTERM -> exit 0 within 2 s

# Every TCP server as (label, binary, extra arguments).
TCP_SERVERS = [
    ("echo_split", "echo_split", ()),
    ("conn_counter", "conn_counter", ()),
    ("chat queued", "chat", ("--design", "queued")),
    ("chat lesson", "chat", ("--design", "lesson")),
]
ECHO_SERVERS = TCP_SERVERS[:2]
CHAT_DESIGNS = ("queued", "lesson")

DISCONNECTION = re.compile(
    r"Disconnected #(\d+) from 127\.0\.0\.1:(\d+) \(active (\d+), closed (\d+)\)")


# --- sockets and the kernel's view of them ---

def reset(client):
    """Closes `client` with SO_LINGER 0: the kernel sends RST instead of FIN, dropping whatever
    is unsent or unread."""
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.sock.close()


def local_port(client):
    return client.sock.getsockname()[1]


def address_of(client):
    """chat's default name for a client: its address as the server sees it."""
    host, port = client.sock.getsockname()[:2]
    return b"%s:%d" % (host.encode(), port)


def tcp_queues(local, remote):
    """(send queue, receive queue) in bytes of the loopback TCP socket with local port `local`
    and remote port `remote`, from /proc/net/tcp{,6}; None if there is no such socket.

    The send queue is what the socket holds unacknowledged (written by the program, not yet
    taken by the peer's receive buffer); the receive queue is what the program has not read."""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as table:
            next(table)
            for row in table:
                fields = row.split()
                if (int(fields[1].rsplit(":", 1)[1], 16) == local
                        and int(fields[2].rsplit(":", 1)[1], 16) == remote):
                    tx, rx = fields[4].split(":")
                    return int(tx, 16), int(rx, 16)
    return None


def listening_on(port):
    """Whether a TCP socket listens on 127.0.0.1:`port` (state 0A in /proc/net/tcp)."""
    with open("/proc/net/tcp") as table:
        next(table)
        return any(row.split()[1] == "0100007F:%04X" % port and row.split()[3] == "0A"
                   for row in table)


def fill_until_stuck(client, chunk, quiet=1.0, limit=64 << 20, timeout=20.0):
    """Sends `chunk` over and over without reading until the socket has taken nothing for
    `quiet` seconds (or `limit` bytes went in); returns the bytes the kernel accepted."""
    block = memoryview(chunk * max(1, (1 << 16) // len(chunk)))
    accepted, last_progress, started = 0, time.monotonic(), time.monotonic()
    while accepted < limit and time.monotonic() - last_progress < quiet:
        if time.monotonic() - started > timeout:
            raise AssertionError(f"the socket still takes data after {timeout} s "
                                 f"({accepted} bytes): not flow-controlled")
        count = client.send_some(block[accepted % len(block):], timeout=0.05)
        if count:
            accepted += count
            last_progress = time.monotonic()
    return accepted


class Background:
    """Runs fn() on a daemon thread; join() re-raises what it raised and returns its result."""

    def __init__(self, fn):
        self.result, self.error = None, None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn):
        try:
            self.result = fn()
        except BaseException as error:  # re-raised by join()
            self.error = error

    def join(self, timeout):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise TimeoutError(f"background work still running after {timeout} s")
        if self.error is not None:
            raise self.error
        return self.result


def split_lines(data):
    """Complete lines (without '\\n') and the unterminated rest."""
    *lines, rest = bytes(data).split(b"\n")
    return lines, rest


def messages_by_sender(data):
    """A chat stream's `NAME: text` lines grouped by NAME, notices (`* `) left out; asserts that
    the stream holds complete lines only and no `error:` line."""
    lines, rest = split_lines(data)
    assert rest == b"", f"the stream ends in a partial line: {rest[-80:]!r}"
    by_sender = {}
    for line in lines:
        if line.startswith(b"* "):
            continue
        assert not line.startswith(b"error: "), line
        name, sep, text = line.partition(b": ")
        assert sep, f"not a chat line: {line[:80]!r}"
        by_sender.setdefault(name, []).append(text)
    return by_sender


class ClosingSwarm(Swarm):
    """A Swarm whose clients close their sending side as soon as they read EOF, as a real client
    does when the server says goodbye (a plain Swarm keeps it open, so the server lingers for it
    up to its close_linger)."""

    def _receive(self, client, selector):
        super()._receive(client, selector)
        if client.end == "eof":
            try:
                client.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass


class Conversation:
    """Many chat clients talking at a steady pace, driven by one thread with a selector.

    Client i sends its line k as two fragments, `period` / 2 apart (so that at any moment some
    lines are half sent), line k + 1 `period` after line k, starting at an offset of its own; it
    reads everything it is sent, and closes its side when the server closes its side. `sent[i]`
    counts the complete lines the kernel accepted from client i.
    """

    def __init__(self, clients, period, max_lines=1000):
        self.clients = clients
        self.period = period
        self.max_lines = max_lines
        self.received = [bytearray() for _ in clients]
        self.sent = [0] * len(clients)
        self.ends = [None] * len(clients)

    @staticmethod
    def line(index, number):
        return b"c%d line %d %s\n" % (index, number, b"x" * (7 * number % 23))

    def run(self, timeout):
        count = len(self.clients)
        start = time.monotonic()
        deadline = start + timeout
        # The next fragment of each client: (when, line number, fragment 0 or 1); and what of it
        # the kernel has not taken yet.
        schedule = [[start + self.period * i / count, 0, 0] for i in range(count)]
        outgoing = [b""] * count
        selector = selectors.DefaultSelector()
        for index, client in enumerate(self.clients):
            client.sock.setblocking(False)
            selector.register(client.sock, selectors.EVENT_READ, index)
        try:
            while any(end is None for end in self.ends):
                now = time.monotonic()
                if now > deadline:
                    raise TimeoutError(f"streams still open after {timeout} s: "
                                       f"{[i for i, e in enumerate(self.ends) if e is None][:5]}")
                for index in range(count):
                    self._send(index, schedule[index], outgoing, now)
                for key, _ in selector.select(0.01):
                    index = key.data
                    try:
                        data = key.fileobj.recv(1 << 16)
                    except BlockingIOError:
                        continue
                    except ConnectionResetError:
                        data, self.ends[index] = None, "reset"
                    if data:
                        self.received[index] += data
                        continue
                    self.ends[index] = self.ends[index] or "eof"
                    selector.unregister(key.fileobj)
                    try:  # a real client closes when the server says goodbye
                        key.fileobj.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
        finally:
            selector.close()
        return self

    def _send(self, index, slot, outgoing, now):
        if self.ends[index] is not None:
            return
        sock = self.clients[index].sock
        if not outgoing[index] and slot[1] < self.max_lines and now >= slot[0]:
            line = self.line(index, slot[1])
            half = len(line) // 2
            outgoing[index] = line[:half] if slot[2] == 0 else line[half:]
            if slot[2] == 0:
                slot[0], slot[2] = slot[0] + self.period / 2, 1
            else:
                slot[0], slot[1], slot[2] = slot[0] + self.period / 2, slot[1] + 1, 0
        if outgoing[index]:
            try:
                taken = sock.send(outgoing[index])
            except BlockingIOError:
                return
            except OSError:
                outgoing[index] = b""
                return
            outgoing[index] = outgoing[index][taken:]
            if not outgoing[index] and slot[2] == 0:  # the second half went: a whole line
                self.sent[index] = slot[1]


class FaultTest(ServerTestCase):

    # --- helpers ---

    def start(self, name, *args, **kwargs):
        return self.start_server(name, "--port", "0", *args, **kwargs)

    def stop_measured(self, server, sig):
        """Sends `sig` and reaps the server: (exit status, seconds from the signal to the exit,
        a diagnosis naming the CPU time the server used meanwhile and the machine's load, so
        that a slow stop tells a busy server from a starved one)."""
        cpu_before = server.cpu_seconds()
        started = time.monotonic()
        server.signal(sig)
        deadline = started + 10
        while True:
            pid, status, usage = os.wait4(server.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                server.kill()
                self.fail(f"{server.name} still running 10 s after {sig!r}; stderr: "
                          f"{server.stderr_text()[-2000:]}")
            time.sleep(0.005)
        seconds = time.monotonic() - started
        code = os.waitstatus_to_exitcode(status)
        server.proc.returncode = code  # reaped here: Popen must not wait for it again
        with open("/proc/loadavg") as load:
            loadavg = load.read().split()[0]
        cpu = usage.ru_utime + usage.ru_stime - cpu_before
        diagnosis = (f"exit {code} {seconds:.2f} s after {sig!r}, having used {cpu:.2f} s of CPU "
                     f"meanwhile (load average {loadavg} on {os.cpu_count()} CPUs); stderr: "
                     f"{server.stderr_text()[-2000:]}")
        return code, seconds, diagnosis

    def assert_exits_0(self, server):
        """SIGINT ends the server with status 0 (how fast is the business of the signal tests):
        nothing crashed, and a sanitizer found nothing to report."""
        code, _, diagnosis = self.stop_measured(server, signal.SIGINT)
        self.assertEqual(code, 0, diagnosis)

    def assert_exits_0_in_time(self, server, sig=signal.SIGINT):
        """`sig` ends the server with status 0 within the contract's 2 s; returns the seconds
        and stop_measured's diagnosis."""
        code, seconds, diagnosis = self.stop_measured(server, sig)
        self.assertEqual(code, 0, diagnosis)
        self.assertLess(seconds, STOP_LIMIT, diagnosis)
        return seconds, diagnosis

    def assert_descriptors_back(self, server, baseline, what):
        self.assertTrue(wait_until(lambda: server.open_descriptors() <= baseline, 5),
                        f"{what}: the server holds {server.open_descriptors()} descriptors, "
                        f"{baseline} before: the connection was not freed")

    def assert_echo_serves(self, server, tag):
        """A new client gets a multi-line payload (with odd bytes) back exactly."""
        with connect(server) as client:
            payload = b"".join(b"%s %d \x00\r\xff\n" % (tag, n) for n in range(50))
            self.assertEqual(client.roundtrip(payload), payload)

    def assert_chat_serves(self, server, witness):
        """A new chat client joins `witness`'s room; each gets the other's line exactly."""
        after = self.connect(server)
        self.assertEqual(witness.recv_line(), b"* %s joined\n" % address_of(after))
        after.send(b"after the reset \x00\n")
        self.assertEqual(witness.recv_line(), b"%s: after the reset \\x00\n" % address_of(after))
        witness.send(b"to the new one\n")
        self.assertEqual(self.next_message(after), b"%s: to the new one\n" % address_of(witness))

    def assert_write_blocked(self, server, client, seconds=0.5):
        """The server's send queue to `client` is non-empty and does not move for `seconds`,
        nor does the client's receive queue: the server's write to it is stuck. Returns the
        server's send queue in bytes."""
        port = local_port(client)
        server_side = tcp_queues(server.port, port)
        client_side = tcp_queues(port, server.port)
        time.sleep(seconds)
        server_after = tcp_queues(server.port, port)
        client_after = tcp_queues(port, server.port)
        report = (f"server socket (send, receive) {server_side} -> {server_after}; client "
                  f"socket {client_side} -> {client_after}")
        self.assertIsNotNone(server_side, report)
        self.assertGreater(server_side[0], 0, f"nothing waits to be sent: {report}")
        self.assertEqual(server_side[0], server_after[0], f"the write moves: {report}")
        self.assertEqual(client_side[1], client_after[1], report)
        return server_side[0]

    def wait_write_blocked(self, server, client, steady=1.0, timeout=20.0, while_waiting=None):
        """Waits until the server's write to `client` is stuck: its socket's send queue is
        non-empty and neither it nor the client's receive queue moves for `steady` seconds
        (long enough that a server merely slowed down by a busy machine does not pass for a
        blocked one). `while_waiting()` runs between two looks (it must return within ~0.1 s).
        Returns the bytes stuck in the server's socket."""
        port = local_port(client)
        previous, since = None, time.monotonic()
        deadline = since + timeout
        while time.monotonic() < deadline:
            if while_waiting is None:
                time.sleep(0.05)
            else:
                while_waiting()
            state = (tcp_queues(server.port, port), tcp_queues(port, server.port))
            self.assertIsNotNone(state[0], "the server's socket to the client is gone")
            if state != previous:
                previous, since = state, time.monotonic()
            elif state[0][0] > 0 and time.monotonic() - since >= steady:
                return state[0][0]
        self.fail(f"the server's write to the client never got stuck: (server socket, client "
                  f"socket) (send, receive) queues {previous}")

    def chat_room(self, server, count, **connect_kwargs):
        """`count` chat clients, returned once the room holds every one of them and each has
        read past the notices about the others (so any line sent now reaches them all)."""
        clients = [self.connect(server, **connect_kwargs) for _ in range(count)]
        names = {address_of(c) for c in clients}

        def everyone_in():
            clients[0].send(b"/who\n")
            while True:
                line = clients[0].recv_line()
                if line.startswith(b"* connected: "):
                    return names <= set(line[len(b"* connected: "):-1].split(b" "))
        self.assertTrue(wait_until(everyone_in, 15), "the room never held every client")
        for client in clients:
            client.send(b"/who\n")
            while not client.recv_line().startswith(b"* connected: "):
                pass
        return clients

    def next_message(self, client, timeout=10.0):
        """The next line that is not a notice."""
        while True:
            line = client.recv_line(timeout=timeout)
            if not line.startswith(b"* "):
                return line

    # --- peer reset ---

    @time_limit(60)
    def test_reset_mid_line_every_tcp_server(self):
        """A client sends a complete line (it comes back / reaches the others), then half of the
        next one, then resets: the fragment goes nowhere, the connection is freed, the server
        serves the next client exactly."""
        for label, name, extra in TCP_SERVERS:
            with self.subTest(server=label):
                server = self.start(name, "--threads", "2", *extra)
                if name == "chat":
                    witness, victim = self.chat_room(server, 2)
                    baseline = server.open_descriptors()
                    victim.send(b"complete line\n")
                    self.assertEqual(self.next_message(witness),
                                     b"%s: complete line\n" % address_of(victim))
                    victim.send(b"half a li")
                    time.sleep(0.1)
                    victim_name = address_of(victim)
                    reset(victim)
                    self.assertEqual(witness.recv_line(), b"* %s left\n" % victim_name)
                    self.assert_descriptors_back(server, baseline - 1, label)
                    self.assert_chat_serves(server, witness)
                else:
                    baseline = server.open_descriptors()
                    victim = connect(server)
                    self.assertEqual(victim.roundtrip(b"complete line\n"), b"complete line\n")
                    victim.send(b"half a li")
                    if name == "conn_counter":  # bytes, not lines: this comes back at once
                        self.assertEqual(victim.recv_exact(9), b"half a li")
                    time.sleep(0.1)
                    port = local_port(victim)
                    reset(victim)
                    if name == "conn_counter":
                        self.assertEqual(server.next_line(),
                                         f"Connection #1 from 127.0.0.1:{port}")
                        self.assertEqual(server.next_line(), f"Disconnected #1 from "
                                         f"127.0.0.1:{port} (active 0, closed 1)")
                    self.assert_descriptors_back(server, baseline, label)
                    self.assert_echo_serves(server, b"after the reset")
                self.assertTrue(server.alive())
                self.assert_exits_0(server)

    @time_limit(60)
    def test_reset_arriving_with_the_last_bytes_every_tcp_server(self):
        """The bytes and the reset reach the server together (it is stopped with SIGSTOP while
        the client sends half a line and resets, so one wake-up reports both): once for a
        connection the server has not accepted yet, once for one it is already reading. A read
        that drains the bytes must not be taken as the last word: the next one reports the reset,
        the connection is freed (chat: the others see `* NAME left`, with the client's own
        address), and the server serves the next client exactly."""
        for label, name, extra in TCP_SERVERS:
            with self.subTest(server=label):
                server = self.start(name, "--threads", "1", *extra)
                witness = self.chat_room(server, 1)[0] if name == "chat" else None
                baseline = server.open_descriptors()
                reading = connect(server)
                if witness is None:
                    self.assertEqual(reading.roundtrip(b"complete line\n"), b"complete line\n")
                else:
                    self.assertEqual(witness.recv_line(), b"* %s joined\n" % address_of(reading))
                server.signal(signal.SIGSTOP)
                try:
                    not_yet_accepted = connect(server)
                    victims = [reading, not_yet_accepted]
                    names = [address_of(victim) for victim in victims]
                    for victim in victims:
                        victim.send(b"half a li")
                        reset(victim)
                finally:
                    server.signal(signal.SIGCONT)
                self.assert_descriptors_back(server, baseline, label)
                if witness is not None:
                    notices = {witness.recv_line() for _ in range(3)}
                    self.assertEqual(notices, {b"* %s joined\n" % names[1],
                                               b"* %s left\n" % names[0],
                                               b"* %s left\n" % names[1]})
                    self.assert_chat_serves(server, witness)
                else:
                    self.assert_echo_serves(server, b"after the reset")
                self.assertTrue(server.alive())
                self.assert_exits_0(server)

    @time_limit(90)
    def test_reset_mid_write_every_tcp_server(self):
        """A client with a small receive buffer sends a lot, reads a little (exactly what it
        should), then resets while the server is still writing to it: the server frees the
        connection and serves the next client exactly; in chat the others get every line."""
        line = b"0123456789abcdef" * 62 + b"\n"  # 993 bytes
        for label, name, extra in TCP_SERVERS:
            with self.subTest(server=label):
                if name == "chat":
                    self.reset_mid_write_chat(label, extra, line)
                    continue
                server = self.start(name, "--threads", "2", *extra)
                baseline = server.open_descriptors()
                victim = connect(server, rcvbuf=8192)
                # Sent from a duplicate of the socket, so that the reads below keep their own
                # timeout: as much as goes in, until the path is full (0.5 s without progress).
                sending = Client(victim.sock.dup())
                sender = Background(lambda: fill_until_stuck(sending, line, quiet=0.5))
                head = victim.recv_exact(20 * len(line), timeout=10)
                self.assertEqual(head, line * 20)  # it reads a little: exactly its first lines
                sent = sender.join(30)
                self.assertGreater(sent, 100 * len(line), "too little in flight to test")
                self.wait_write_blocked(server, victim, steady=0.5)  # mid-write, for sure
                sending.close()
                reset(victim)
                self.assert_descriptors_back(server, baseline, label)
                self.assert_echo_serves(server, b"after the reset")
                self.assertTrue(server.alive())
                self.assert_exits_0(server)

    def reset_mid_write_chat(self, label, extra, line):
        # The queued design's outbox holds the whole burst: the reset, not the --outbox rule,
        # ends the victim here.
        server = self.start("chat", "--threads", "2", "--outbox", "100000", *extra)
        witness, sender = self.chat_room(server, 2)
        victim = connect(server, rcvbuf=4096)
        self.addCleanup(victim.close)
        self.assertEqual(witness.recv_line(), b"* %s joined\n" % address_of(victim))
        victim.send(b"/who\n")  # in the room once its reply comes back
        self.assertTrue(victim.recv_line().startswith(b"* connected: "))
        count = 2000
        lines = [b"%d " % n + line for n in range(count)]
        pushing = Background(lambda: sender.send(b"".join(lines), timeout=30))
        prefix = address_of(sender) + b": "
        for n in range(5):  # the victim reads a little: exactly the first lines
            self.assertEqual(self.next_message(victim), prefix + lines[n])
        victim_name = address_of(victim)
        reset(victim)
        got, left = [], False
        while len(got) < count:
            received = witness.recv_line(timeout=20)
            if received == b"* %s left\n" % victim_name:
                left = True
            elif not received.startswith(b"* "):
                got.append(received)
        self.assertEqual(got, [prefix + text for text in lines], label)
        pushing.join(20)
        if not left:
            self.assertEqual(witness.recv_line(), b"* %s left\n" % victim_name)
        sender.send(b"still here\n")
        self.assertEqual(self.next_message(witness), prefix + b"still here\n")
        self.assert_exits_0(server)

    # --- half-close with data in flight ---

    @time_limit(90)
    def test_half_close_with_data_in_flight_echo_servers(self):
        """4 MiB sent while reading, then a half-close before the echo has caught up: every byte
        comes back, in order, then EOF. conn_counter as it runs by default; echo_split with
        the smallest queue on one thread (the existing test covers its defaults)."""
        payload = b"".join(b"half-close %d %s\n" % (n, b"q" * (n % 97)) for n in range(60000))
        payload = payload[:4 << 20] + b"unterminated tail \x00\xff"
        for label, name, extra in (("conn_counter", "conn_counter", ()),
                                   ("echo_split --queue 1", "echo_split",
                                    ("--queue", "1", "--threads", "1"))):
            with self.subTest(server=label):
                server = self.start(name, *extra)
                swarm = Swarm(server, [[payload]] * 3)
                self.addCleanup(swarm.close)
                for client in swarm.run(timeout=60):
                    self.assertIsNone(client.send_error, client)
                    self.assertEqual(client.end, "eof", client)
                    self.assertEqual(len(client.received), len(payload), client)
                    self.assertEqual(bytes(client.received), payload, client)
                self.assert_exits_0(server)

    @time_limit(90)
    def test_half_close_chat_lines_still_reach_the_others(self):
        """A chat client sends 3000 lines (and an unterminated last one) and half-closes at once:
        the two others get every line in order, then `* NAME left`; the sender gets EOF."""
        count = 3000
        lines = [b"%d %s" % (n, b"h" * (n % 300)) for n in range(count)]
        for design in CHAT_DESIGNS:
            with self.subTest(design=design):
                server = self.start("chat", "--threads", "2", "--design", design,
                                    "--outbox", "100000")
                sender, first, second = self.chat_room(server, 3)
                name = address_of(sender)
                sender.send(b"\n".join(lines) + b"\n" + b"last, unterminated")
                sender.half_close()
                expected = [b"%s: %s\n" % (name, text) for text in lines] + \
                           [b"%s: last, unterminated\n" % name, b"* %s left\n" % name]
                for receiver in (first, second):
                    got = [receiver.recv_line(timeout=20) for _ in expected]
                    self.assertEqual(got, expected)
                self.assertEqual(sender.recv_until_eof(), b"")
                first.send(b"after\n")
                self.assertEqual(second.recv_line(), b"%s: after\n" % address_of(first))
                self.assert_exits_0(server)

    # --- the client goes away while the server is blocked writing to it ---

    def block_an_echo_server(self, server):
        """A client that sends and never reads until the server's write to it is stuck; returns
        (the client, bytes the kernel took from it, the server's send queue)."""
        hog = self.connect(server, rcvbuf=16384)
        taken = fill_until_stuck(hog, b"never read " * 90 + b"\n")
        queued = self.wait_write_blocked(server, hog)
        return hog, taken, queued

    @time_limit(60)
    def test_client_gone_while_blocked_on_write_echo_split(self):
        """echo_split: the writer is stuck on a client that never reads (the reader then stops
        at the full channel): meanwhile another client gets prompt echoes; the reset frees the
        connection, and the server serves the next client exactly."""
        server = self.start("echo_split", "--threads", "2", "--queue", "4")
        other = self.connect(server)
        self.assertEqual(other.roundtrip(b"before\n"), b"before\n")
        baseline = server.open_descriptors()
        hog, taken, queued = self.block_an_echo_server(server)
        print(f"\n  echo_split blocked: took {taken} bytes, {queued} bytes stuck in its socket")
        for n in range(20):
            started = time.monotonic()
            self.assertEqual(other.roundtrip(b"meanwhile %d\n" % n), b"meanwhile %d\n" % n)
            self.assertLess(time.monotonic() - started, 1.0)
        reset(hog)
        self.assert_descriptors_back(server, baseline, "echo_split")
        self.assertEqual(other.roundtrip(b"after\n"), b"after\n")
        self.assert_echo_serves(server, b"next client")
        self.assert_exits_0(server)

    @time_limit(60)
    def test_client_gone_while_blocked_on_write_conn_counter(self):
        """conn_counter: the echo is stuck writing to a client that never reads; the reset ends
        it with the `Disconnected` line and exact counters, another client is served all along,
        and the next one gets the next number."""
        server = self.start("conn_counter", "--threads", "2")
        other = self.connect(server)
        self.assertEqual(server.next_line(), f"Connection #1 from 127.0.0.1:{local_port(other)}")
        baseline = server.open_descriptors()
        hog, taken, queued = self.block_an_echo_server(server)
        hog_port = local_port(hog)
        self.assertEqual(server.next_line(), f"Connection #2 from 127.0.0.1:{hog_port}")
        print(f"\n  conn_counter blocked: took {taken} bytes, {queued} bytes stuck in its socket")
        self.assertEqual(other.roundtrip(b"meanwhile"), b"meanwhile")
        reset(hog)
        self.assertEqual(server.next_line(),
                         f"Disconnected #2 from 127.0.0.1:{hog_port} (active 1, closed 1)")
        self.assert_descriptors_back(server, baseline, "conn_counter")
        self.assertEqual(other.roundtrip(b"after"), b"after")
        with connect(server) as third:
            self.assertEqual(third.roundtrip(b"third \x00\xff"), b"third \x00\xff")
            self.assertEqual(server.next_line(),
                             f"Connection #3 from 127.0.0.1:{local_port(third)}")
            server.signal(signal.SIGUSR1)
            self.assertEqual(server.next_line(), "status: 3 accepted, 2 active, 1 closed")
        self.assertRegex(server.next_line(),
                         r"^Disconnected #3 from 127\.0\.0\.1:\d+ \(active 1, closed 2\)$")
        self.assert_exits_0(server)
        self.assertRegex(server.next_line(),
                         r"^Disconnected #1 from 127\.0\.0\.1:\d+ \(active 0, closed 3\)$")
        self.assertEqual(server.next_line(), "total: 3 accepted, 3 closed")

    CHAT_LINES = 6000  # 1000-byte lines the sender pushes: half before the block, half after

    def block_a_chat_receiver(self, server, design):
        """A chat room of a sender, a witness and a client that never reads (`slow`). The sender
        pushes the first half of its 1000-byte lines (in the background) until the server's
        write to `slow` is stuck. Returns (sender, witness, slow, every line, the prefix of the
        sender's lines, what the witness read so far, the background push)."""
        sender, witness = self.chat_room(server, 2)
        self.descriptors_before_slow = server.open_descriptors()
        slow = connect(server, rcvbuf=4096)
        self.addCleanup(slow.close)
        self.assertEqual(witness.recv_line(), b"* %s joined\n" % address_of(slow))
        slow.send(b"/who\n")  # in the room once the reply is written (it stays unread)
        self.assertTrue(wait_until(lambda: tcp_queues(local_port(slow), server.port)[1] > 0, 5))
        lines = [b"%d %s\n" % (n, b"b" * 1000) for n in range(self.CHAT_LINES)]
        first_half = b"".join(lines[:len(lines) // 2])
        pushing = Background(lambda: sender.send(first_half, timeout=60))
        prefix = address_of(sender) + b": "
        got = []

        def read_witness():  # the witness keeps reading (so only the slow one holds anything up)
            try:
                got.append(witness.recv_line(timeout=0.05))
            except TimeoutError:
                pass
        queued = self.wait_write_blocked(server, slow, while_waiting=read_witness)
        print(f"\n  chat {design} blocked: {queued} bytes stuck in the socket to the slow client, "
              f"the witness has {len(got)} lines")
        return sender, witness, slow, lines, prefix, got, pushing

    @staticmethod
    def messages(lines):
        return [line for line in lines if not line.startswith(b"* ")]

    def read_messages_until(self, client, got, count):
        """Appends `client`'s lines to `got` until it holds `count` that are not notices."""
        have = len(self.messages(got))
        while have < count:
            line = client.recv_line(timeout=20)
            got.append(line)
            have += not line.startswith(b"* ")

    @time_limit(90)
    def test_client_gone_while_blocked_on_write_chat_queued(self):
        """Queued chat: while the write to a client that never reads is stuck, the witness gets
        every line the sender sends (3000 of them after the block began; it does not wait for
        the slow one, whose write stays stuck); the slow one's reset frees it, the witness sees
        it leave, and the room carries on."""
        server = self.start("chat", "--threads", "2", "--outbox", "100000")
        sender, witness, slow, lines, prefix, got, pushing = \
            self.block_a_chat_receiver(server, "queued")
        baseline = self.descriptors_before_slow
        pushing.join(30)
        sender.send(b"".join(lines[len(lines) // 2:]), timeout=30)
        self.read_messages_until(witness, got, len(lines))
        self.assertEqual(self.messages(got), [prefix + line for line in lines])
        self.assert_write_blocked(server, slow, seconds=0.2)  # still stuck all along
        slow_name = address_of(slow)
        reset(slow)
        self.assertEqual(witness.recv_line(), b"* %s left\n" % slow_name)
        self.assert_descriptors_back(server, baseline, "chat queued")
        sender.send(b"after\n")
        self.assertEqual(self.next_message(witness), prefix + b"after\n")
        self.assert_exits_0(server)

    @time_limit(90)
    def test_client_gone_while_blocked_on_write_chat_lesson(self):
        """Lesson chat: while the write to a client that never reads is stuck, the whole room
        stalls (the design being taught: the witness gets nothing more); the slow one's reset
        fails that write, and the room flows again: the witness gets every line, in order,
        none lost, and sees the slow one leave."""
        server = self.start("chat", "--threads", "2", "--design", "lesson")
        sender, witness, slow, lines, prefix, got, pushing = \
            self.block_a_chat_receiver(server, "lesson")
        baseline = self.descriptors_before_slow
        while True:  # drain what was delivered before the stall; then nothing comes for 0.5 s
            try:
                got.append(witness.recv_line(timeout=0.5))
            except TimeoutError:
                break
        stalled_at = len(self.messages(got))
        self.assertLess(stalled_at, len(lines) // 2, "the room did not stall")
        self.assert_write_blocked(server, slow, seconds=0.2)
        slow_name = address_of(slow)
        reset(slow)
        self.read_messages_until(witness, got, len(lines) // 2)
        pushing.join(30)
        sender.send(b"".join(lines[len(lines) // 2:]), timeout=30)
        self.read_messages_until(witness, got, len(lines))
        self.assertEqual(self.messages(got), [prefix + line for line in lines])
        if b"* %s left\n" % slow_name not in got:
            self.assertEqual(witness.recv_line(), b"* %s left\n" % slow_name)
        self.assert_descriptors_back(server, baseline, "chat lesson")
        sender.send(b"after\n")
        self.assertEqual(self.next_message(witness), prefix + b"after\n")
        self.assert_exits_0(server)

    # --- out of descriptors ---

    def out_of_descriptors_chat(self, design):
        """chat under a 40-descriptor limit with 60 clients: it stays up without spinning, the
        clients it holds still chat, and waiting clients get in when others leave."""
        limit, count = 40, 60
        server = self.start("chat", "--threads", "2", "--design", design,
                            prefix=["prlimit", f"--nofile={limit}:{limit}", "--"])
        # Warm-up while descriptors are to spare (UBSan's first type checks need a pipe()).
        idle_descriptors = server.open_descriptors()
        for _ in range(3):
            a, b = self.chat_room(server, 2)
            a.send(b"warm-up\n")
            self.assertEqual(self.next_message(b), b"%s: warm-up\n" % address_of(a))
            a.close()
            b.close()
        self.assertTrue(wait_until(lambda: server.open_descriptors() == idle_descriptors, 5))

        clients = [self.connect(server) for _ in range(count)]  # the kernel's backlog takes all
        for client in clients:
            client.send(b"/who\n")
        served = answered_within(clients, 3.0)
        waiting = [i for i in range(count) if i not in served]
        print(f"\n  chat {design} under {limit} descriptors: {len(served)} of {count} served")
        self.assertGreater(len(served), 10, "too few clients served")
        self.assertTrue(waiting, "no client left waiting: the limit did not bite")
        self.assertTrue(server.alive())

        cpu_before, started = server.cpu_seconds(), time.monotonic()
        time.sleep(1.5)
        cpu = server.cpu_seconds() - cpu_before
        self.assertLess(cpu, 0.3, f"{cpu:.2f} s of CPU in {time.monotonic() - started:.1f} s "
                                  f"out of descriptors: spinning?")
        self.assertTrue(server.alive())

        # The clients it holds still chat: a line from one reaches another.
        speaker, listener = clients[served[0]], clients[served[-1]]
        speaker.send(b"while out of descriptors\n")
        self.assertEqual(self.next_message(listener),
                         b"%s: while out of descriptors\n" % address_of(speaker))

        for i in served[:10]:  # ten leave: ten waiting clients get in
            clients[i].close()
        late = answered_within([clients[i] for i in waiting], 10.0, expected=10)
        self.assertEqual(len(late), 10, f"{len(late)} of the waiting clients were accepted")
        newcomer = clients[waiting[late[0]]]
        newcomer.send(b"accepted late\n")
        self.assertEqual(self.next_message(listener),
                         b"%s: accepted late\n" % address_of(newcomer))
        self.assertTrue(server.alive())
        for client in clients:
            client.close()
        self.assert_exits_0(server)

    @time_limit(90)
    def test_out_of_descriptors_chat_queued(self):
        self.out_of_descriptors_chat("queued")

    @time_limit(90)
    def test_out_of_descriptors_chat_lesson(self):
        self.out_of_descriptors_chat("lesson")

    # --- SIGINT and SIGTERM mid-conversation ---

    @time_limit(120)
    def test_sigint_100_streaming_clients_echo_servers(self):
        """SIGINT while 100 clients stream and read their echoes: exit 0 within 2 s; each client
        got a byte-exact prefix of what it sent, then EOF (not a reset): for echo_split a prefix
        of whole lines; for conn_counter (bytes as they come) every byte it read, and every
        connection is counted closed before the total."""
        count = 100
        for label, name, extra in ECHO_SERVERS:
            with self.subTest(server=label):
                server = self.start(name, "--threads", "2", *extra)
                streams = [(b"stream %03d line %d %s\n" % (i, n, b"s" * (n % 61))
                            for n in range(200000)) for i in range(count)]
                swarm = ClosingSwarm(server, streams)
                self.addCleanup(swarm.close)
                driver = Background(lambda: swarm.run(timeout=40))
                streaming = wait_until(
                    lambda: all(len(c.received) > 100000 for c in swarm.clients), 20)
                seconds, diagnosis = self.assert_exits_0_in_time(server)
                clients = driver.join(45)
                self.assertTrue(streaming, f"not every client was streaming yet: {clients[:3]}")
                ends = [c.index for c in clients if c.end != "eof"]
                self.assertEqual(ends, [], f"{len(ends)} streams not ended by EOF: {diagnosis}")
                for client in clients:
                    received = bytes(client.received)
                    self.assertTrue(received, client)
                    self.assertEqual(received, bytes(client.sent[:len(received)]), client)
                    if name == "echo_split":
                        self.assertTrue(received.endswith(b"\n"),
                                        f"{client}: a torn line {received[-60:]!r}")
                print(f"\n  {label}: {sum(len(c.sent) for c in clients) >> 10} KiB sent, "
                      f"{sum(len(c.received) for c in clients) >> 10} KiB echoed, stopped in "
                      f"{seconds:.3f} s")
                if name == "conn_counter":
                    lines = []
                    while (line := server.next_line()) is not None:
                        lines.append(line)
                    closed = [int(m.group(1)) for m in map(DISCONNECTION.fullmatch, lines) if m]
                    self.assertEqual(sorted(closed), list(range(1, count + 1)))
                    self.assertEqual(lines[-1], f"total: {count} accepted, {count} closed")

    def sigint_chat_mid_conversation(self, design, period):
        """SIGINT while 100 chat clients each send a line every `period` seconds (in two
        fragments) and read everything: exit 0 within 2 s; every client's stream is complete
        lines only, then EOF; from each sender it holds a prefix of that sender's lines."""
        count = 100
        server = self.start("chat", "--threads", "2", "--design", design, "--outbox", "100000")
        clients = self.chat_room(server, count)
        names = [address_of(c) for c in clients]
        talk = Conversation(clients, period)
        driver = Background(lambda: talk.run(timeout=40))
        talking = wait_until(lambda: all(n >= 3 for n in talk.sent) and
                             all(r.count(b"\n") > 100 for r in talk.received), 20)
        seconds, diagnosis = self.assert_exits_0_in_time(server)
        driver.join(45)
        self.assertTrue(talking, f"the conversation never got going: sent {talk.sent[:10]}")
        ends = [i for i, end in enumerate(talk.ends) if end != "eof"]
        self.assertEqual(ends, [], f"{len(ends)} streams not ended by EOF: {diagnosis}")
        delivered = 0
        for receiver, data in enumerate(talk.received):
            by_sender = messages_by_sender(data)
            self.assertNotIn(names[receiver], by_sender, "a sender got its own line back")
            for name, texts in by_sender.items():
                sender = names.index(name)
                expected = [Conversation.line(sender, n)[:-1] for n in range(len(texts))]
                self.assertEqual(texts, expected, f"receiver {receiver}, sender {sender}")
                delivered += len(texts)
        print(f"\n  chat {design}: {sum(talk.sent)} lines sent, {delivered} delivered, "
              f"stopped in {seconds:.2f} s")
        self.assertGreater(delivered, count * (count - 1))

    @time_limit(90)
    def test_sigint_chat_queued_100_clients_mid_conversation(self):
        self.sigint_chat_mid_conversation("queued", period=0.25)

    @time_limit(90)
    def test_sigint_chat_lesson_100_clients_mid_conversation(self):
        self.sigint_chat_mid_conversation("lesson", period=0.5)

    @time_limit(90)
    def test_second_sigint_stops_at_once_conn_counter_and_chat(self):
        """A client that never reads holds up the graceful stop (its write is stuck); a second
        SIGINT, sent as soon as the first is handled, stops the server at once, exit status 0."""
        for label, name, extra in TCP_SERVERS[1:]:
            with self.subTest(server=label):
                if name == "chat":  # the outbox rule would otherwise drop the slow one
                    extra = (*extra, "--outbox", "100000")
                server = self.start(name, "--threads", "2", *extra)
                if name == "chat":
                    sender, witness, slow, *_ = self.block_a_chat_receiver(server, extra[1])
                else:
                    self.block_an_echo_server(server)
                first = time.monotonic()
                server.signal(signal.SIGINT)
                # The second signal goes once the first has been handled: two signals sent
                # before the process runs would arrive as one.
                self.assertTrue(wait_until(lambda: "SIGINT: shutting down" in
                                           server.stderr_text(), 5), server.stderr_text())
                self.assertTrue(server.alive(), "stopped at once: nothing held the stop up")
                code, seconds, diagnosis = self.stop_measured(server, signal.SIGINT)
                since_first = time.monotonic() - first
                diagnosis = f"{since_first:.2f} s after the first signal; {diagnosis}"
                self.assertEqual(code, 0, diagnosis)
                # At once: well before the graceful stop's own limit (1.5 s after the first).
                self.assertLess(seconds, 1.0, diagnosis)
                self.assertIn("second signal", server.stderr_text())

    @time_limit(90)
    def test_idle_clients_that_keep_their_socket_open_do_not_hold_the_stop_for_the_linger(self):
        """At a stop, a session lingers (up to close_linger, 1 s) until its client has everything:
        its kernel has acknowledged the last bytes and the FIN. Idle clients that stay open
        acknowledge within milliseconds, so the stop ends well before the linger would (it took
        1.02 s on every server when the check came only before a read that never returned).
        Their data still arrives in full: each client gets EOF after its last echo."""
        for label, name, extra in TCP_SERVERS:
            with self.subTest(server=label):
                server = self.start(name, "--threads", "2", *extra)
                clients = [self.connect(server) for _ in range(4)]
                if name == "chat":
                    for client in clients:  # everyone in the room, every notice read
                        client.send(b"/who\n")
                        while not client.recv_line().startswith(b"* connected: "):
                            pass
                else:
                    for n, client in enumerate(clients):
                        self.assertEqual(client.roundtrip(b"idle %d\n" % n), b"idle %d\n" % n)
                # The clients read nothing more and never close until the server has stopped.
                seconds, diagnosis = self.assert_exits_0_in_time(server)
                # The linger is 1 s; a stop that waited for it would take that long at least.
                self.assertLess(seconds, 0.8, diagnosis)
                for client in clients:
                    rest = client.recv_until_eof()
                    if name != "chat":
                        self.assertEqual(rest, b"")  # every echo was read before the stop
                        continue
                    lines, partial = split_lines(rest)  # chat: notices at most
                    self.assertEqual(partial, b"")
                    self.assertTrue(all(line.startswith(b"* ") for line in lines), rest)

    @time_limit(60)
    def test_sigterm_mid_conversation_every_server(self):
        """SIGTERM is a graceful stop like SIGINT, for every server: exit 0 within 2 s; what was
        sent before it comes back or is delivered, then EOF."""
        for label, name, extra in TCP_SERVERS:
            with self.subTest(server=label):
                server = self.start(name, "--threads", "2", *extra)
                if name == "chat":
                    a, b, c = self.chat_room(server, 3)
                    a.send(b"before the signal\n")
                    for other in (b, c):
                        self.assertEqual(self.next_message(other),
                                         b"%s: before the signal\n" % address_of(a))
                    b.send(b"one more\n")
                    self.assertEqual(self.next_message(a), b"%s: one more\n" % address_of(b))
                    watcher = Background(lambda: read_to_eof_then_close([a, b, c], 20))
                    self.assert_exits_0_in_time(server, signal.SIGTERM)
                    # What is left: c's copy of b's line, notices of the others leaving, EOF.
                    rests = watcher.join(25)
                    for rest, left in zip(rests, ([], [], [address_of(b) + b": one more"])):
                        lines, partial = split_lines(rest)
                        self.assertEqual(partial, b"")
                        self.assertEqual([line for line in lines if not line.startswith(b"* ")],
                                         left)
                else:
                    clients = [self.connect(server) for _ in range(3)]
                    for n, client in enumerate(clients):
                        self.assertEqual(client.roundtrip(b"hello %d\n" % n), b"hello %d\n" % n)
                    clients[0].send(b"in flight at the signal\n")
                    watcher = Background(lambda: read_to_eof_then_close(clients, 20))
                    self.assert_exits_0_in_time(server, signal.SIGTERM)
                    self.assertEqual(watcher.join(25), [b"in flight at the signal\n", b"", b""])
                    if name == "conn_counter":
                        lines = []
                        while (line := server.next_line()) is not None:
                            lines.append(line)
                        self.assertEqual(lines[-1], "total: 3 accepted, 3 closed")
        with self.subTest(server="udp_pingpong serve"):
            server = self.start_server("udp_pingpong", "serve", "--port", "0")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.settimeout(5)
                client.connect(server.address)
                client.send(b"ping 1 before SIGTERM")
                self.assertEqual(client.recv(100), b"pong 1 before SIGTERM")
            self.assert_exits_0_in_time(server, signal.SIGTERM)

    # --- the command line: addresses and options ---

    @time_limit(30)
    def test_chat_port_in_use_exits_1_naming_the_address(self):
        holder, port = free_port_in_use()
        self.addCleanup(holder.close)
        for design in CHAT_DESIGNS:
            with self.subTest(design=design):
                result = run_program("chat", "--port", str(port), "--design", design)
                self.assertEqual(result.returncode, 1, result)
                self.assertEqual(result.stdout, b"")
                self.assertEqual(result.stderr.count(b"\n"), 1, result.stderr)
                self.assertIn(b"127.0.0.1:%d" % port, result.stderr)
                self.assertRegex(result.stderr.decode(), r"(?i)address already in use")

    @time_limit(60)
    def test_bind_to_an_address_not_on_this_machine_exits_1(self):
        """--bind to an address no interface has: exit 1, one stderr line naming the address
        and the reason (EADDRNOTAVAIL), nothing on stdout. Nothing is sent anywhere: bind()
        fails before any packet could leave."""
        addresses = [("192.0.2.1", "192.0.2.1:")]
        if ipv6_loopback_available():
            addresses.append(("2001:db8::1", "[2001:db8::1]:"))
        programs = [("echo_split",), ("conn_counter",), ("chat",), ("udp_pingpong", "serve")]
        for address, shown in addresses:
            for program in programs:
                with self.subTest(program=program, address=address):
                    result = run_program(*program, "--bind", address, "--port", "0")
                    stderr = result.stderr.decode()
                    self.assertEqual(result.returncode, 1, result)
                    self.assertEqual(result.stdout, b"")
                    self.assertEqual(stderr.count("\n"), 1, stderr)
                    self.assertIn(shown, stderr)
                    self.assertRegex(stderr, r"(?i)cannot assign requested address")

    @time_limit(60)
    def test_started_with_stdout_closed_every_server_serves_and_writes_nothing_astray(self):
        """`server >&-`: descriptor 1 would go to whatever the program opens first (its
        reactor's eventfd, before /dev/null took it) and the output lines there. The server
        serves, its descriptor 1 is /dev/null, and it stops with status 0."""
        for label, name, extra in TCP_SERVERS + [("udp_pingpong serve", "udp_pingpong", ())]:
            with self.subTest(server=label):
                kind = socket.SOCK_DGRAM if name == "udp_pingpong" else socket.SOCK_STREAM
                with socket.socket(socket.AF_INET, kind) as probe:
                    probe.bind(("127.0.0.1", 0))
                    port = probe.getsockname()[1]
                command = [binary(name)] + (["serve"] if name == "udp_pingpong" else [])
                command += ["--port", str(port), *extra]
                process = subprocess.Popen(["sh", "-c", 'exec "$0" "$@" >&-', *command],
                                           stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
                self.addCleanup(process.kill)
                self.addCleanup(process.stderr.close)
                if name == "udp_pingpong":
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                        client.settimeout(0.2)
                        client.connect(("127.0.0.1", port))

                        def answered():
                            client.send(b"ping 1")
                            try:
                                return client.recv(100) == b"pong 1"
                            except (TimeoutError, ConnectionRefusedError):
                                return False
                        self.assertTrue(wait_until(answered, 10))
                else:
                    self.assertTrue(wait_until(lambda: listening_on(port), 10))
                    with connect(("127.0.0.1", port)) as client:
                        if name == "chat":
                            client.send(b"/who\n")
                            self.assertTrue(client.recv_line().startswith(b"* connected: "))
                        else:
                            self.assertEqual(client.roundtrip(b"closed stdout\n"),
                                             b"closed stdout\n")
                self.assertEqual(os.readlink(f"/proc/{process.pid}/fd/1"), "/dev/null")
                process.send_signal(signal.SIGINT)
                self.assertEqual(process.wait(STOP_LIMIT + 3), 0, process.stderr.read())

    @time_limit(120)
    def test_bad_option_values_every_executable(self):
        """A bad value for each option of each executable that the per-program tests leave out:
        exit 2, one line on stderr naming the option, nothing on stdout."""
        target = ("--target", "127.0.0.1:9")
        cases = {
            ("echo_split",): [
                ("--port", "-1"), ("--port", "65536"), ("--port", ""), ("--threads", "abc"),
                ("--threads", "257"), ("--threads", "-1"), ("--queue", "abc"),
                ("--queue", "-1"), ("--queue", "1048577"), ("--max-line", "abc"),
                ("--max-line", "1073741825"), ("--bind", ""), ("--bind", "127.0.0.256"),
                ("--bind", "127.0.0.1:80"), ("--log-level", ""), ("--log-level", "INFO"),
                ("--port",), ("--queue",), ("--outbox", "5"), ("--demo=maybe",),
                ("--idle-timeout", "nan"), ("--idle-timeout",), ("--trace=maybe",)],
            ("conn_counter",): [
                ("--port", "abc"), ("--port", "-1"), ("--threads", "abc"), ("--threads", "257"),
                ("--port", ""), ("--max-connections", "-5"), ("--max-connections", ""),
                ("--bind", "::g"),
                ("--log-level", "verbose"), ("--max-line", "10"), ("--max-connections",),
                ("--idle-timeout", "nan"), ("--trace=maybe",)],
            ("chat",): [
                ("--port", "70000"), ("--port", "-1"), ("--port", ""), ("--bind", "not-an-ip"),
                ("--bind", "localhost"), ("--threads", "abc"), ("--threads", "1000"),
                ("--design", "Queued"), ("--design", ""), ("--outbox", "abc"),
                ("--outbox", "-1"), ("--outbox", "1048577"), ("--max-line", "abc"),
                ("--max-line", "-1"), ("--log-level", "loud"), ("--queue", "4"),
                ("--design",), ("--idle-timeout", "nan"), ("--trace=maybe",)],
            ("udp_pingpong", "serve"): [
                ("--port", "abc"), ("--port", "-1"), ("--port", "65536"), ("--port", ""),
                ("--bind", ""),
                ("--bind", "1.2.3"), ("--threads", "abc"), ("--threads", "-2"),
                ("--log-level", "chatty"), ("--interval", "5"), ("--max-line", "9"),
                ("--target", "127.0.0.1:4000"), ("--idle-timeout", "5")],
            ("udp_pingpong", "ping", *target): [
                ("--count", "abc"), ("--count", "1.5"), ("--interval", "-1"),
                ("--interval", "abc"), ("--interval", "3600001"), ("--interval", ""),
                ("--timeout", "-1"),
                ("--timeout", "abc"), ("--size", "65508"), ("--size", "abc"),
                ("--inflight", "0"), ("--inflight", "abc"), ("--port", "4000"),
                ("--log-level", "x")],
            ("udp_pingpong", "ping"): [
                ("--target", "127.0.0.1:65536"), ("--target", "127.0.0.1:abc"),
                ("--target", "[::1]"), ("--target", "")],
            ("udp_pingpong",): [
                ("--count", "-5"), ("--size", "1"), ("--inflight", "0"), ("--port", "4000"),
                ("--target", "127.0.0.1:4000"), ("--timeout", "3600001"), ("--trace=maybe",)],
        }
        for program, options in cases.items():
            for args in options:
                with self.subTest(program=program, args=args):
                    # --port 0 for the servers where the port is not the point: were the bad
                    # value taken, the server would not take a well-known port from anyone
                    # (it is killed as soon as it says `listening on`).
                    tail = ()
                    if program[-1] in ("echo_split", "conn_counter", "chat", "serve") and \
                            args[0] != "--port":
                        tail = ("--port", "0")
                    code, stdout, stderr = run_until_exit_or_listening(*program, *args, *tail)
                    self.assertEqual(code, 2, f"{program} {args}: stdout {stdout!r}, stderr "
                                              f"{stderr!r}")
                    self.assertEqual(stdout, b"")
                    self.assertEqual(stderr.count("\n"), 1, stderr)
                    option = args[0].split("=")[0]
                    self.assertIn(option, stderr)

    # --- UDP: a garbage burst ---

    @time_limit(60)
    def test_udp_burst_of_100000_garbage_datagrams_then_exact_pongs(self):
        """100000 datagrams that are not pings (random bytes, empty, 65507 bytes, `pin`,
        `PING`, `pong 1`, ` ping`) at `udp_pingpong serve`, with 100 real pings mixed in from
        another socket: no garbage gets a reply, a pong that comes is the exact mirror of its
        ping, the server does not spin afterwards, and then pings get exact pongs again."""
        server = self.start_server("udp_pingpong", "serve", "--port", "0")
        rng = random.Random(7)
        fixed = [b"", b"pin", b"PING", b"pong 1", b" ping", b"Ping 1", b"pong", b"\x00ping"]
        garbage = [random_garbage(rng, rng.randrange(1, 1400)) for _ in range(64)]
        oversize = random_garbage(rng, 65507)
        noise = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        pinger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(noise.close)
        self.addCleanup(pinger.close)
        noise.connect(server.address)
        pinger.connect(server.address)
        noise.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        count, sent_pings, refused = 100000, {}, 0
        started = time.monotonic()
        for n in range(count):
            if n % 1000 == 999:
                datagram = oversize
            elif n % 3 == 0:
                datagram = fixed[n // 3 % len(fixed)]
            else:
                datagram = garbage[n % len(garbage)]
            try:
                noise.send(datagram)
            except (BlockingIOError, ConnectionRefusedError):
                refused += 1
            if n % 1000 == 500:
                ping = b"ping %d burst \x00\xff%s" % (n, b"p" * (n % 300))
                sent_pings[ping[5:]] = ping
                pinger.send(ping)
        burst_seconds = time.monotonic() - started
        self.assertEqual(refused, 0, "the server's port refused datagrams: did it die?")
        self.assertTrue(server.alive())

        # Every reply that came is an exact pong of one of the pings; garbage got none.
        pongs = []
        pinger.settimeout(1.0)
        while True:
            try:
                pongs.append(pinger.recv(70000))
            except TimeoutError:
                break
        for pong in pongs:
            self.assertTrue(pong.startswith(b"pong "), pong[:40])
            self.assertIn(pong[5:], sent_pings, pong[:40])
        self.assertEqual(len(set(pongs)), len(pongs), "a ping answered twice")
        noise.settimeout(0.5)
        self.assertRaises(TimeoutError, noise.recv, 70000)

        cpu = server.cpu_seconds()
        time.sleep(1.0)
        self.assertLess(server.cpu_seconds() - cpu, 0.1, "busy after the burst: spinning?")
        print(f"\n  {count} datagrams in {burst_seconds:.2f} s; {len(pongs)} of "
              f"{len(sent_pings)} pings in the burst answered")

        result = run_program("udp_pingpong", "ping", "--target", f"127.0.0.1:{server.port}",
                             "--count", "5", "--interval", "0", timeout=20)
        out = result.stdout.decode()
        self.assertEqual(result.returncode, 0, result)
        self.assertEqual(re.findall(r"^pong from 127\.0\.0\.1:\d+: seq=(\d+) ", out, re.M),
                         ["1", "2", "3", "4", "5"], out)
        self.assertIn("5 sent, 5 received, 0% loss\n", out)
        pinger.settimeout(5)
        for request in (b"ping after the burst \x00\r\n\xff", b"ping", b"ping" + b"z" * 65503):
            pinger.send(request)
            self.assertEqual(pinger.recv(70000), b"pong" + request[4:])
        self.assert_exits_0(server)


def run_until_exit_or_listening(*args, timeout=10.0):
    """Runs a netlab program (`args`: its name and arguments) until it exits: (exit status,
    stdout bytes, stderr text). Should it print `listening on` instead (it took the arguments
    and runs), it is killed at once and the status is None."""
    proc = subprocess.Popen([binary(args[0]), *args[1:]], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout = bytearray()
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + timeout
            while b"listening on" not in stdout and time.monotonic() < deadline:
                if not selector.select(max(0.0, deadline - time.monotonic())):
                    continue
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    break  # EOF: it exited (or closed stdout)
                stdout += chunk
        if b"listening on" in stdout:
            proc.kill()
            code = None
        else:
            code = proc.wait(timeout)
        stderr = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    return code, bytes(stdout), stderr.decode(errors="replace")


def read_to_eof_then_close(clients, timeout):
    """Reads every client (all at once) until the server closes its side, then closes ours, as
    a real client does; returns what each one read. TimeoutError after `timeout` seconds."""
    received = [bytearray(client.pending) for client in clients]
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        for index, client in enumerate(clients):
            client.sock.setblocking(False)
            selector.register(client.sock, selectors.EVENT_READ, index)
        while selector.get_map():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no EOF within {timeout} s")
            for key, _ in selector.select(0.1):
                try:
                    data = key.fileobj.recv(1 << 16)
                except BlockingIOError:
                    continue
                if data:
                    received[key.data] += data
                    continue
                selector.unregister(key.fileobj)
                key.fileobj.shutdown(socket.SHUT_WR)
    return [bytes(data) for data in received]


def answered_within(clients, timeout, expected=None):
    """Indices of the chat clients that got their `/who` reply within `timeout`: the ones the
    server has accepted (see served_within)."""
    def check(index, client):
        while True:
            line = client.recv_line(timeout=2.0)
            assert line, f"client {index}: EOF instead of the /who reply"
            if line.startswith(b"* connected: "):
                return
    return served_within(clients, check, timeout, expected)


if __name__ == "__main__":
    unittest.main()
