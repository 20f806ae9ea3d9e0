"""Shared helpers for netlab's integration tests: start a real binary, talk to it over loopback.

Python's standard library only. Every wait has a deadline and every loop a bound, so a broken
server makes a test fail with a message instead of hanging; every process a test starts is
killed when the test ends, whatever happened.

    class MyTest(netlab_testing.ServerTestCase):
        def test_echo(self):
            server = self.start_server("echo_split", "--port", "0")
            with connect(server) as client:
                client.send(b"hi\\n")
                self.assertEqual(client.recv_exact(3), b"hi\\n")
            code, seconds = server.stop(signal.SIGINT)
"""
import atexit
import errno
import functools
import os
import queue
import selectors
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

# Where the binaries are: set by CMake for ctest; by hand otherwise (defaults to the debug build).
BIN_DIR = Path(os.environ.get("NETLAB_BIN_DIR",
                              Path(__file__).resolve().parents[2] / "build" / "debug" / "bin"))

# Time limits. Generous: the same tests run against AddressSanitizer builds, several at a time.
STARTUP_TIMEOUT = 15.0  # until the `listening on` line
IO_TIMEOUT = 10.0       # one client operation (connect, a read, a send)
STOP_TIMEOUT = 10.0     # how long stop() waits before killing (the contract's 2 s is asserted
                        # by the tests, on the measured time, not by this safety net)

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_live_processes = set()  # killed at exit too, should a test runner bypass the cleanups


def binary(name):
    """The path of a netlab executable, failing clearly when it has not been built."""
    path = BIN_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not built (build it, or set NETLAB_BIN_DIR)")
    return str(path)


def run_program(name, *args, timeout=IO_TIMEOUT, **popen_kwargs):
    """Runs `name args` to completion: a CompletedProcess, stdout and stderr as bytes (as str
    with text=True). subprocess.TimeoutExpired if it runs longer than `timeout`."""
    return subprocess.run([binary(name), *args], capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, **popen_kwargs)


class Server:
    """A running netlab server: its process, the address it announced, its output.

    stdout is read line by line by a thread (so the pipe never fills and blocks the server);
    stderr goes to a temporary file, read with `stderr_text()`.
    """

    def __init__(self, name, args, prefix=(), startup_timeout=STARTUP_TIMEOUT, **popen_kwargs):
        self.name = name
        self._stderr_file = tempfile.TemporaryFile()
        self._lines = queue.Queue()
        self.stdout_lines = []  # every stdout line seen so far, without '\n'
        self.proc = subprocess.Popen([*prefix, binary(name), *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self._stderr_file,
                                     **popen_kwargs)
        _live_processes.add(self.proc)
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        self.host, self.port = self._read_listening_line(startup_timeout)

    def _read_stdout(self):
        for raw in self.proc.stdout:  # ends at EOF, when the process exits
            self._lines.put(raw.decode(errors="replace").rstrip("\n"))
        self._lines.put(None)

    def _read_listening_line(self, timeout):
        line = self.next_line(timeout)
        prefix = "listening on "
        if line is None or not line.startswith(prefix):
            self.kill()
            raise AssertionError(f"{self.name}: expected `listening on ADDR:PORT` first, got "
                                 f"{line!r}; stderr: {self.stderr_text()!r}")
        address = line[len(prefix):]
        host, _, port = address.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def family(self):
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    @property
    def address(self):
        return (self.host, self.port)

    def next_line(self, timeout=IO_TIMEOUT):
        """The next stdout line, or None at EOF; raises TimeoutError after `timeout` seconds."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"{self.name}: no stdout line within {timeout} s") from None
        if line is not None:
            self.stdout_lines.append(line)
        else:
            self._lines.put(None)  # EOF stays EOF for the next caller
        return line

    def stderr_text(self):
        """Everything the process wrote on stderr so far."""
        self._stderr_file.seek(0)
        return self._stderr_file.read().decode(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGINT, timeout=STOP_TIMEOUT):
        """Sends `sig` and waits for the exit: (exit status, seconds from signal to exit).

        If the process is still running after `timeout`, kills it and raises AssertionError.
        """
        start = time.monotonic()
        if self.alive():
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} still running {timeout} s after signal {sig!r}; "
                                 f"stderr: {self.stderr_text()!r}") from None
        return code, time.monotonic() - start

    def signal(self, sig):
        """Sends `sig` without waiting."""
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout=STOP_TIMEOUT):
        """Waits for the exit and returns the status (raises subprocess.TimeoutExpired)."""
        return self.proc.wait(timeout)

    def kill(self):
        """Kills the process if it still runs and reaps it. Safe to call any number of times."""
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        _live_processes.discard(self.proc)
        self._reader.join(STOP_TIMEOUT)
        if self.proc.stdout:
            self.proc.stdout.close()
        # stderr stays readable after the kill, for failure messages; close() discards it.

    def close(self):
        """kill(), then discard the captured stderr."""
        self.kill()
        self._stderr_file.close()

    def rss_kib(self):
        """Resident memory (VmRSS) in KiB, from /proc/PID/status."""
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc status")

    def cpu_seconds(self):
        """User + system CPU time of the process (all threads), from /proc/PID/stat."""
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            # The command name (field 2) may hold spaces: count fields after its ')'.
            fields = stat.read().rpartition(")")[2].split()
        utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
        return (utime + stime) / _CLK_TCK

    def open_descriptors(self):
        """How many file descriptors the process has open."""
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def is_sanitized(self):
        """True when the binary runs with AddressSanitizer (memory figures differ then)."""
        with open(f"/proc/{self.proc.pid}/maps") as maps:
            return "libasan" in maps.read()


def start_server(name, *args, **kwargs):
    """Starts `$NETLAB_BIN_DIR/name args` and waits for its `listening on` line.

    `prefix` (a list) runs it under a wrapper such as prlimit. The caller must close() it; a
    ServerTestCase does that itself.
    """
    return Server(name, args, **kwargs)


@atexit.register
def _kill_leftovers():
    for proc in list(_live_processes):
        if proc.poll() is None:
            proc.kill()


class ServerTestCase(unittest.TestCase):
    """A TestCase whose servers are killed at the end of each test, pass or fail."""

    def start_server(self, name, *args, **kwargs):
        server = start_server(name, *args, **kwargs)
        self.addCleanup(server.close)
        return server

    def connect(self, server_or_address, **kwargs):
        client = connect(server_or_address, **kwargs)
        self.addCleanup(client.close)
        return client


class Client:
    """A TCP client with a deadline on every operation. Works on bytes, never on text."""

    def __init__(self, sock):
        self.sock = sock
        self.pending = b""  # read from the socket but not yet returned (recv_line)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data, timeout=IO_TIMEOUT):
        """Sends every byte of `data`, or raises TimeoutError after `timeout` seconds."""
        self.sock.settimeout(timeout)
        self.sock.sendall(data)

    def send_some(self, data, timeout):
        """Sends as much of `data` as the socket accepts within `timeout`; returns the count.

        Never blocks longer than `timeout`: the way to probe TCP flow control.
        """
        self.sock.settimeout(timeout)
        try:
            return self.sock.send(data)
        except (TimeoutError, BlockingIOError):
            return 0

    def half_close(self):
        """shutdown(SHUT_WR): the server reads EOF after our last byte; we can still read."""
        self.sock.shutdown(socket.SHUT_WR)

    def _recv(self, limit, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        return self.sock.recv(limit)

    def recv_exact(self, count, timeout=IO_TIMEOUT):
        """Exactly `count` bytes. AssertionError if EOF comes first, TimeoutError if time runs out.
        """
        deadline = time.monotonic() + timeout
        data = bytearray(self.pending[:count])
        self.pending = self.pending[count:]
        while len(data) < count:
            try:
                chunk = self._recv(min(count - len(data), 1 << 20), deadline)
            except TimeoutError:
                raise TimeoutError(f"{len(data)} of {count} bytes within {timeout} s; "
                                   f"last bytes {bytes(data[-80:])!r}") from None
            if not chunk:
                raise AssertionError(f"EOF after {len(data)} of {count} bytes; "
                                     f"last bytes {bytes(data[-80:])!r}")
            data += chunk
        return bytes(data)

    def recv_line(self, timeout=IO_TIMEOUT, limit=1 << 20):
        """One line including its '\\n' (or what came before EOF, possibly b"")."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending and len(self.pending) <= limit:
            try:
                chunk = self._recv(65536, deadline)
            except TimeoutError:
                raise TimeoutError(f"no complete line within {timeout} s; got "
                                   f"{self.pending[-80:]!r}") from None
            if not chunk:
                line, self.pending = self.pending, b""
                return line
            self.pending += chunk
        line, newline, self.pending = self.pending.partition(b"\n")
        return line + newline

    def recv_until_eof(self, timeout=IO_TIMEOUT, limit=64 << 20, allow_reset=False):
        """Everything until the server closes its side. AssertionError past `limit` bytes.

        With `allow_reset`, a connection reset ends the data like EOF does (returned as is).
        """
        deadline = time.monotonic() + timeout
        data = bytearray(self.pending)
        self.pending = b""
        while len(data) <= limit:
            try:
                chunk = self._recv(1 << 20, deadline)
            except TimeoutError:
                raise TimeoutError(f"no EOF within {timeout} s; got {len(data)} bytes, "
                                   f"ending {bytes(data[-80:])!r}") from None
            except ConnectionResetError:
                if not allow_reset:
                    raise
                break
            if not chunk:
                break
            data += chunk
        else:
            raise AssertionError(f"more than {limit} bytes before EOF")
        return bytes(data)

    def expect_eof(self, timeout=IO_TIMEOUT):
        """Asserts that the server closes its side with nothing more to read."""
        deadline = time.monotonic() + timeout
        try:
            rest = self.pending or self._recv(4096, deadline)
        except TimeoutError:
            raise TimeoutError(f"no EOF within {timeout} s") from None
        if rest:
            raise AssertionError(f"expected EOF, got {rest[:80]!r}")

    def roundtrip(self, line, timeout=IO_TIMEOUT):
        """Sends one line and reads as many bytes back: what an echo server returns."""
        self.send(line, timeout)
        return self.recv_exact(len(line), timeout)


def connect(server_or_address, timeout=IO_TIMEOUT, family=None, rcvbuf=None, sndbuf=None):
    """A Client connected to a Server (or a (host, port) pair) over loopback.

    `rcvbuf`/`sndbuf` set SO_RCVBUF/SO_SNDBUF before connecting (small buffers make flow
    control bite sooner).
    """
    if isinstance(server_or_address, Server):
        address, family = server_or_address.address, server_or_address.family
    else:
        address = server_or_address
        family = family or (socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(timeout)
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return Client(sock)


def run_threads(target, count, timeout, *args):
    """Runs target(index, *args) on `count` threads; returns their results in index order.

    Re-raises the first exception a thread raised; raises TimeoutError if any thread is still
    running after `timeout` seconds (threads are daemons, so a stuck one cannot hang the run).
    """
    results = [None] * count
    errors = []

    def body(index):
        try:
            results[index] = target(index, *args)
        except BaseException as error:  # reported to the caller below
            errors.append((index, error))

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = sum(thread.is_alive() for thread in threads)
    if errors:
        index, error = errors[0]
        raise AssertionError(f"thread {index} (of {len(errors)} failing): {error!r}") from error
    if stuck:
        raise TimeoutError(f"{stuck} of {count} threads still running after {timeout} s")
    return results


def wait_until(predicate, timeout, interval=0.02):
    """Polls `predicate` until it is true (returns True) or `timeout` passes (returns False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def served_within(clients, check, timeout, expected=None):
    """Indices of the clients that the server answered within `timeout`, all watched at once:
    when one becomes readable, `check(index, client)` reads and asserts its answer. Returns early
    once `expected` of them have been answered. (How a test tells which clients a server at its
    descriptor limit has accepted: the others wait in the listen backlog.)"""
    pending = dict(enumerate(clients))
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        for index, client in pending.items():
            selector.register(client.sock, selectors.EVENT_READ, index)
        while pending and time.monotonic() < deadline:
            if expected is not None and len(clients) - len(pending) >= expected:
                break
            for key, _ in selector.select(max(0.0, deadline - time.monotonic())):
                index = key.data
                check(index, pending.pop(index))
                selector.unregister(key.fileobj)
    return sorted(set(range(len(clients))) - set(pending))


def random_garbage(rng, size):
    """`size` random bytes from `rng` that do not start with `ping` (not a ping, for udp)."""
    while True:
        data = rng.randbytes(size)
        if not data.startswith(b"ping"):
            return data


def free_port_in_use():
    """A listening socket on 127.0.0.1 with a kernel-chosen port: (socket, port). Close it after.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def ipv6_loopback_available():
    """True when this machine can bind TCP on ::1."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def time_limit(seconds):
    """Decorator: the test fails with TimeoutError once it has run for `seconds`.

    Uses SIGALRM, so it interrupts the main thread wherever it blocks (a recv, a wait, a join);
    the cleanups then kill the servers. Unittest runs tests on the main thread, as this needs.
    """
    def decorate(test):
        @functools.wraps(test)
        def run(*args, **kwargs):
            def expire(signum, frame):
                raise TimeoutError(f"{test.__name__} exceeded its time limit of {seconds} s")
            previous = signal.signal(signal.SIGALRM, expire)
            signal.setitimer(signal.ITIMER_REAL, seconds)
            try:
                return test(*args, **kwargs)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
        return run
    return decorate


class SwarmClient:
    """One client of a Swarm: what it sent, what it received, how its stream ended."""

    def __init__(self, index, sock, lines):
        self.index = index
        self.sock = sock
        self.lines = lines          # iterator of byte strings still to send
        self.outgoing = bytearray()  # taken from `lines`, not yet accepted by the kernel
        self.sent = bytearray()      # every byte the kernel accepted, in order
        self.received = bytearray()
        self.sending = True
        self.end = None              # "eof", "reset", or an error description
        self.send_error = None       # why sending stopped early, if it did

    def __repr__(self):
        return (f"<client {self.index}: sent {len(self.sent)}, received {len(self.received)}, "
                f"end {self.end}, send error {self.send_error}>")


class Swarm:
    """Many clients driven by one thread with a selector: all send and read at the same time.

    Each client sends the lines of its iterator as fast as the server takes them (never blocking
    on one client), then half-closes (`half_close=True`), and reads until the server closes. A
    client that sees EOF stops sending, as a well-behaved client does. One thread and no GIL
    contention: the load it generates does not depend on Python's thread scheduling.
    """

    CHUNK = 1 << 16

    def __init__(self, server_or_address, line_iterators, half_close=True, timeout=IO_TIMEOUT):
        self.half_close = half_close
        self.clients = []
        try:
            for index, lines in enumerate(line_iterators):
                client = connect(server_or_address, timeout=timeout)
                client.sock.setblocking(False)
                self.clients.append(SwarmClient(index, client.sock, iter(lines)))
        except BaseException:
            self.close()
            raise
        self.stop_sending = threading.Event()  # set by another thread: every client stops

    def close(self):
        for client in self.clients:
            client.sock.close()

    def run(self, timeout):
        """Drives every client until each stream has ended; TimeoutError after `timeout`."""
        deadline = time.monotonic() + timeout
        selector = selectors.DefaultSelector()
        try:
            for client in self.clients:
                selector.register(client.sock, selectors.EVENT_READ | selectors.EVENT_WRITE,
                                  client)
            open_count = len(self.clients)
            while open_count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    stuck = [c for c in self.clients if c.end is None]
                    raise TimeoutError(f"{len(stuck)} streams still open after {timeout} s: "
                                       f"{stuck[:3]}")
                if self.stop_sending.is_set():
                    for client in self.clients:
                        if client.sending:
                            self._finish_sending(client, selector)
                for key, events in selector.select(min(remaining, 0.1)):
                    client = key.data
                    if events & selectors.EVENT_READ:
                        self._receive(client, selector)
                        if client.end is not None:
                            open_count -= 1
                            continue
                    if events & selectors.EVENT_WRITE and client.sending:
                        self._send(client, selector)
        finally:
            selector.close()
        return self.clients

    def _send(self, client, selector):
        while len(client.outgoing) < self.CHUNK:
            line = next(client.lines, None)
            if line is None:
                break
            client.outgoing += line
        if not client.outgoing:
            self._finish_sending(client, selector)
            return
        try:
            count = client.sock.send(client.outgoing)
        except BlockingIOError:
            return
        except OSError as error:  # EPIPE or ECONNRESET: the server closed
            client.send_error = errno.errorcode.get(error.errno, str(error))
            self._finish_sending(client, selector, shutdown=False)
            return
        client.sent += client.outgoing[:count]
        del client.outgoing[:count]

    def _finish_sending(self, client, selector, shutdown=True):
        client.sending = False
        if client.end is None:
            selector.modify(client.sock, selectors.EVENT_READ, client)
        if shutdown and self.half_close:
            try:
                client.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _receive(self, client, selector):
        try:
            data = client.sock.recv(self.CHUNK)
        except BlockingIOError:
            return
        except ConnectionResetError:
            client.end = "reset"
        except OSError as error:
            client.end = f"error {error!r}"
        else:
            if data:
                client.received += data
                return
            client.end = "eof"
        client.sending = False
        selector.unregister(client.sock)
