"""Integration tests of the udp_pingpong binary: the real program, its three modes, over loopback.

B (`serve`) is spoken to with plain UDP sockets, byte for byte; A (`ping`) is run against B, against
a closed port, against a silent peer, and against a scripted fake B that misbehaves on purpose.
"""
import errno
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

import netlab_testing
from netlab_testing import ServerTestCase, binary, random_garbage, time_limit

BIN = "udp_pingpong"
REPLY = re.compile(r"^pong from (\S+): seq=(\d+) time=(\d+\.\d{3}) ms$")
SUMMARY = [
    re.compile(r"^--- (\S+) udp_pingpong statistics ---$"),
    re.compile(r"^(\d+) sent, (\d+) received, ([\d.]+)% loss(, .*)?$"),
    re.compile(r"^rtt min/avg/max/mdev = (\d+\.\d{3})/(\d+\.\d{3})/(\d+\.\d{3})/(\d+\.\d{3}) ms$"),
    re.compile(r"^rtt p50/p90/p99 = (\d+\.\d{3})/(\d+\.\d{3})/(\d+\.\d{3}) ms$"),
]
MAX_DATAGRAM = 65507  # the largest UDP payload over IPv4
IPV6_MAX_DATAGRAM = 65527  # over IPv6 (65535 less the UDP header; no jumbograms on UDP)
RECV_SIZE = 1 << 16  # more than any datagram: a reply longer than its request would show
LOOPBACK = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}
IGNORED = re.compile(r"ignored (\d+) bytes from (\S+): not a ping$", re.M)  # B's debug line
COUNTS = re.compile(r"answered (\d+) pings, ignored (\d+) other datagrams")  # B's last line


def run(*args, timeout=netlab_testing.IO_TIMEOUT):
    return netlab_testing.run_program(BIN, *args, timeout=timeout, text=True)


def replies(stdout):
    """The `pong from` lines, as (address, seq, milliseconds) tuples."""
    found = []
    for line in stdout.splitlines():
        match = REPLY.match(line)
        if match:
            found.append((match[1], int(match[2]), float(match[3])))
    return found


def summary(stdout):
    """The summary block parsed: (target, sent, received, loss text, extras text, rtt lines)."""
    lines = stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if SUMMARY[0].match(line)]
    assert len(starts) == 1, f"expected one summary block in {stdout!r}"
    block = lines[starts[0]:]
    head, counts = SUMMARY[0].match(block[0]), SUMMARY[1].match(block[1])
    assert counts, f"bad counts line {block[1]!r}"
    return head[1], int(counts[1]), int(counts[2]), counts[3], counts[4] or "", block[2:]


def udp_socket(family=socket.AF_INET, timeout=netlab_testing.IO_TIMEOUT):
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    return sock


def closed_udp_port():
    """A port where nothing listens (just released by the kernel)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ipv6_udp_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def accepts_ipv4_on_ipv6_any():
    """Whether a `::` socket takes IPv4 too: B does not set IPV6_V6ONLY, so the system's default
    (net.ipv6.bindv6only) decides, and a fresh socket shows it."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
        return not probe.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)


def bad_datagrams(rng):
    """Datagrams that do not start with `ping`, which B must ignore: empty, binary (0x00 and
    0xff included), near misses, a 64-byte ping as A sends it cut before its `ping` is whole, and
    garbage up to 65507 bytes, the largest datagram IPv4 carries."""
    ping = b"ping 1 " + b"x" * 57
    return [b"", b"\x00", b"\xff", b"\x00" * 1000, b"\xff" * 1000, bytes(range(256)),
            bytes(range(255, -1, -1)), b"\x00ping 1", b"\xffping 1", b"PING 1", b"Ping 1",
            b" ping", b"pong 1 x", b"garbage", *(ping[:n] for n in range(1, 4)),
            random_garbage(rng, 1400), random_garbage(rng, MAX_DATAGRAM)]


def truncated_pings():
    """A 64-byte ping cut after its `ping`: the contract answers any datagram that starts with
    `ping`, these included, with the same bytes starting with `pong`."""
    ping = b"ping 12 " + b"x" * 56
    return [ping[:n] for n in (4, 5, 6, 7, 8, 9, 63)]


def as_b_logs(b, client):
    """How B's log names the sender `client`: a `::` socket sees IPv4 peers v4-mapped."""
    host, port = client.getsockname()[:2]
    if b.family == socket.AF_INET6 and client.family == socket.AF_INET:
        host = "::ffff:" + host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class UdpPingpongTest(ServerTestCase):
    def start_b(self, *args):
        return self.start_server(BIN, "serve", "--port", "0", *args)

    def assert_no_datagram(self, sock, within=0.3):
        sock.settimeout(within)
        try:
            data = sock.recv(MAX_DATAGRAM + 1)
        except TimeoutError:
            return
        self.fail(f"unexpected reply {data[:40]!r} ({len(data)} bytes)")

    def assert_summary(self, stdout, sent, received, with_rtt=True):
        target, got_sent, got_received, loss, extras, rest = summary(stdout)
        self.assertEqual((got_sent, got_received), (sent, received), stdout)
        if with_rtt:
            self.assertEqual(len(rest), 2, stdout)
            self.assertRegex(rest[0], SUMMARY[2])
            self.assertRegex(rest[1], SUMMARY[3])
            low, avg, high, _ = (float(x) for x in SUMMARY[2].match(rest[0]).groups())
            self.assertTrue(low <= avg <= high, rest[0])
        else:
            self.assertEqual(rest, [], "no rtt lines without a reply")
        return target, loss, extras

    # --- the exercise as posed: A and B in one process ------------------------------------------

    @time_limit(30)
    def test_default_mode_prints_count_replies_and_the_summary(self):
        result = run()
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        self.assertTrue(lines[0].startswith("listening on 127.0.0.1:"), lines[0])
        got = replies(result.stdout)
        self.assertEqual([seq for _, seq, _ in got], [1, 2, 3, 4, 5])  # --count defaults to 5
        self.assertEqual(len(lines), 1 + 5 + 4, result.stdout)       # and nothing else
        target, loss, extras = self.assert_summary(result.stdout, 5, 5)
        self.assertEqual(target, got[0][0])
        self.assertEqual((loss, extras), ("0", ""))

    @time_limit(30)
    def test_default_mode_takes_count_and_demo(self):
        result = run("--demo", "--count", "3", "--interval", "10")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual([seq for _, seq, _ in replies(result.stdout)], [1, 2, 3])
        self.assert_summary(result.stdout, 3, 3)

    # --- B and A as two processes ---------------------------------------------------------------

    @time_limit(30)
    def test_serve_and_ping_across_two_processes(self):
        b = self.start_b("--threads", "2")
        target = f"{b.host}:{b.port}"
        result = run("ping", "--target", target, "--count", "3", "--interval", "50")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(replies(result.stdout)[0][0], target)
        self.assertEqual([seq for _, seq, _ in replies(result.stdout)], [1, 2, 3])
        self.assertEqual(self.assert_summary(result.stdout, 3, 3)[0], target)
        code, seconds = b.stop(signal.SIGTERM)
        self.assertEqual(code, 0)
        self.assertLess(seconds, 2.0)

    @time_limit(30)
    def test_flood_mode_with_several_pings_in_flight(self):
        b = self.start_b()
        result = run("ping", "--target", f"{b.host}:{b.port}", "--interval", "0", "--count", "2000",
                     "--inflight", "4", "--quiet")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(replies(result.stdout), [], "--quiet prints the summary only")
        self.assertEqual(len(result.stdout.splitlines()), 4, result.stdout)
        self.assertEqual(self.assert_summary(result.stdout, 2000, 2000)[1], "0")

    @time_limit(30)
    def test_ping_to_a_closed_port_is_full_loss_and_exit_1(self):
        port = closed_udp_port()
        count, timeout_ms = 3, 500
        start = time.monotonic()
        result = run("ping", "--target", f"127.0.0.1:{port}", "--count", str(count),
                     "--interval", "100", "--timeout", str(timeout_ms))
        elapsed = time.monotonic() - start
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertLess(elapsed, count * timeout_ms / 1000 + 2.0)
        self.assertEqual(replies(result.stdout), [])
        _, loss, extras = self.assert_summary(result.stdout, count, 0, with_rtt=False)
        self.assertEqual(loss, "100")
        self.assertIn("refused", extras)
        self.assertRegex(result.stderr,
                         rf"error: no reply from 127\.0\.0\.1:{port}: port unreachable")

    @time_limit(30)
    def test_ping_to_a_silent_peer_times_out_each_ping(self):
        with udp_socket() as silent:
            silent.bind(("127.0.0.1", 0))
            port = silent.getsockname()[1]
            start = time.monotonic()
            result = run("ping", "--target", f"127.0.0.1:{port}", "--count", "2", "--interval",
                         "0", "--timeout", "300")
            elapsed = time.monotonic() - start
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertLess(elapsed, 2 * 0.3 + 2.0)
        self.assertEqual(result.stdout.count("timed out after 300 ms"), 2, result.stdout)
        self.assertEqual(self.assert_summary(result.stdout, 2, 0, with_rtt=False)[1], "100")
        self.assertIn("within 300 ms", result.stderr)

    @time_limit(30)
    def test_late_duplicate_and_foreign_pongs_are_not_replies(self):
        # A fake B: seq 1 answered twice plus garbage and a pong for a seq never sent; seq 2
        # answered after its timeout; seq 3 answered normally.
        with udp_socket() as fake:
            fake.bind(("127.0.0.1", 0))
            port = fake.getsockname()[1]

            def misbehave():
                for _ in range(3):
                    ping, sender = fake.recvfrom(MAX_DATAGRAM)
                    pong = b"pong" + ping[4:]
                    seq = int(ping.split(b" ")[1])
                    if seq == 1:
                        fake.sendto(pong, sender)
                        fake.sendto(pong, sender)
                        fake.sendto(b"garbage", sender)
                        fake.sendto(b"pong 99 " + b"x" * (len(ping) - 8), sender)
                    elif seq == 2:
                        threading.Timer(0.3, fake.sendto, (pong, sender)).start()
                    else:
                        fake.sendto(pong, sender)

            thread = threading.Thread(target=misbehave, daemon=True)
            thread.start()
            result = run("ping", "--target", f"127.0.0.1:{port}", "--count", "3",
                         "--interval", "500", "--timeout", "200")
            thread.join(5)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual([seq for _, seq, _ in replies(result.stdout)], [1, 3])
        _, loss, extras = self.assert_summary(result.stdout, 3, 2)
        self.assertEqual(loss, "33.3333")
        self.assertEqual(extras, ", 1 late, 1 duplicate, 2 foreign")
        self.assertIn("late pong from", result.stdout)
        self.assertIn("duplicate pong from", result.stdout)

    # --- B on the wire ---------------------------------------------------------------------------

    @time_limit(30)
    def test_garbage_and_oversize_datagrams_get_no_reply_and_b_keeps_serving(self):
        b = self.start_b("--log-level", "debug")
        with udp_socket() as client:
            client.connect(b.address)
            for junk in [b"", b"garbage", b"PING 1", b" ping", b"pin", b"pong 1 x",
                         bytes(range(256)), b"x" * MAX_DATAGRAM]:
                client.send(junk)
            self.assert_no_datagram(client)
            client.settimeout(netlab_testing.IO_TIMEOUT)
            client.send(b"ping 1 still there?")
            self.assertEqual(client.recv(MAX_DATAGRAM), b"pong 1 still there?")
        self.assertTrue(b.alive())
        self.assertIn("not a ping", b.stderr_text())
        code, seconds = b.stop(signal.SIGINT)
        self.assertEqual(code, 0)
        self.assertLess(seconds, 2.0)

    @time_limit(30)
    def test_a_reply_is_never_larger_than_its_request(self):
        b = self.start_b()
        with udp_socket() as client:
            client.connect(b.address)
            for request in [b"ping", b"ping ", b"ping 17 xyz", b"pingpong", b"ping\0\r\n\xff",
                            b"ping" + b"\0" * 1000, b"ping" + b"z" * (MAX_DATAGRAM - 4)]:
                client.send(request)
                reply = client.recv(MAX_DATAGRAM + 1)
                self.assertEqual(len(reply), len(request))
                self.assertEqual(reply, b"pong" + request[4:])

    @time_limit(30)
    @unittest.skipUnless(ipv6_udp_available(), "no IPv6 loopback")
    def test_ipv6_loopback(self):
        b = self.start_b("--bind", "::1")
        self.assertEqual(b.stdout_lines[0], f"listening on [::1]:{b.port}")
        target = f"[::1]:{b.port}"
        result = run("ping", "--target", target, "--count", "2", "--interval", "20")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual([(addr, seq) for addr, seq, _ in replies(result.stdout)],
                         [(target, 1), (target, 2)])
        self.assertEqual(self.assert_summary(result.stdout, 2, 2)[0], target)

    # B bound to every address: a reply must come from the address its ping was sent to, or a
    # client that checks (A's connected socket does) drops it. 127.0.0.2 is an address of lo that
    # the kernel would not choose itself as the source of a reply to 127.0.0.1.

    def assert_answered_from(self, family, address):
        with udp_socket(family) as client:
            client.sendto(b"ping 7 from where?", address)
            self.assertEqual(client.recvfrom(MAX_DATAGRAM)[:2],
                             (b"pong 7 from where?", address))

    def assert_pings_answered(self, target):
        result = run("ping", "--target", target, "--count", "3", "--interval", "10",
                     "--timeout", "500")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual([(addr, seq) for addr, seq, _ in replies(result.stdout)],
                         [(target, 1), (target, 2), (target, 3)])
        self.assertEqual(self.assert_summary(result.stdout, 3, 3)[1], "0")

    @time_limit(30)
    def test_bound_to_0_0_0_0_b_replies_from_the_address_pinged(self):
        b = self.start_b("--bind", "0.0.0.0")
        self.assertEqual(b.stdout_lines[0], f"listening on 0.0.0.0:{b.port}")
        for host in ("127.0.0.2", "127.0.0.1"):
            with self.subTest(host=host):
                self.assert_answered_from(socket.AF_INET, (host, b.port))
                self.assert_pings_answered(f"{host}:{b.port}")

    @time_limit(30)
    @unittest.skipUnless(netlab_testing.ipv6_loopback_available(), "no IPv6 loopback")
    def test_bound_to_ipv6_any_b_replies_from_the_address_pinged(self):
        b = self.start_b("--bind", "::")
        self.assertEqual(b.stdout_lines[0], f"listening on [::]:{b.port}")
        self.assert_answered_from(socket.AF_INET6, ("::1", b.port, 0, 0))
        self.assert_pings_answered(f"[::1]:{b.port}")
        # B does not set IPV6_V6ONLY, so its `::` socket takes IPv4 too unless the system's
        # default (net.ipv6.bindv6only) says otherwise; a fresh socket shows that default.
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            if probe.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY):
                self.skipTest("IPv6 sockets are IPv6-only here: no IPv4 on `::`")
        self.assert_answered_from(socket.AF_INET, ("127.0.0.2", b.port))
        self.assert_pings_answered(f"127.0.0.2:{b.port}")

    # B bound to every address receives with recvmsg (reply_from.cpp), not with Asio's receive.
    # Bad datagrams must fare there as on the one-address path (test_garbage_and_oversize_...):
    # no reply, one debug line each, counted in B's last line; and B goes on answering, from the
    # address pinged.

    def assert_ignored_one_by_one(self, b, family, address, datagrams):
        """Sends each datagram to `address`, then a ping: the first reply must be that ping's
        pong, from `address`, so the datagram got none (B reads one queue, in order). B's log
        must then hold one `ignored` line per datagram, in order."""
        before = len(IGNORED.findall(b.stderr_text()))
        with udp_socket(family) as client:
            client.bind((LOOPBACK[family], 0))
            for n, datagram in enumerate(datagrams, 1):
                client.sendto(datagram, address)
                ping = b"ping %d after %d bytes" % (n, len(datagram))
                client.sendto(ping, address)
                self.assertEqual(client.recvfrom(RECV_SIZE)[:2], (b"pong" + ping[4:], address),
                                 f"after {datagram[:16]!r} ({len(datagram)} bytes)")
            sender = as_b_logs(b, client)
        self.assertEqual(IGNORED.findall(b.stderr_text())[before:],
                         [(str(len(datagram)), sender) for datagram in datagrams])

    def assert_mirrored(self, family, address, requests):
        """Each request gets its exact pong, from `address`."""
        with udp_socket(family) as client:
            for request in requests:
                client.sendto(request, address)
                reply, source = client.recvfrom(RECV_SIZE)[:2]
                what = f"reply to {request[:16]!r} ({len(request)} bytes)"
                self.assertEqual((len(reply), source), (len(request), address), what)
                self.assertEqual(reply, b"pong" + request[4:], what)

    def assert_stops_having_counted(self, b, answered, ignored):
        """B exits 0 within 2 s, its last line counting `answered` and `ignored` datagrams."""
        code, seconds = b.stop(signal.SIGINT)
        self.assertEqual(code, 0, b.stderr_text()[-2000:])
        self.assertLess(seconds, 2.0)
        self.assertEqual([line[0] for line in COUNTS.finditer(b.stderr_text())],
                         [f"answered {answered} pings, ignored {ignored} other datagrams"])

    @time_limit(60)
    def test_bound_to_0_0_0_0_bad_datagrams_are_ignored_and_logged_and_b_keeps_answering(self):
        b = self.start_b("--bind", "0.0.0.0", "--log-level", "debug")
        rng = random.Random(7)
        ignored = answered = 0
        for host in ("127.0.0.2", "127.0.0.1"):
            with self.subTest(host=host):
                address, bad, truncated = (host, b.port), bad_datagrams(rng), truncated_pings()
                ignored += len(bad)
                answered += len(bad) + len(truncated)  # a ping after each bad datagram
                self.assert_ignored_one_by_one(b, socket.AF_INET, address, bad)
                self.assert_mirrored(socket.AF_INET, address, truncated)
        # Nothing larger than 65507 bytes can reach B over IPv4: the kernel refuses to send it.
        with udp_socket() as client, self.assertRaises(OSError) as refused:
            client.sendto(b"ping" + b"x" * (MAX_DATAGRAM - 3), ("127.0.0.2", b.port))
        self.assertEqual(refused.exception.errno, errno.EMSGSIZE)
        self.assertTrue(b.alive())
        self.assert_answered_from(socket.AF_INET, ("127.0.0.2", b.port))
        self.assert_pings_answered(f"127.0.0.2:{b.port}")
        self.assert_stops_having_counted(b, answered + 1 + 3, ignored)

    @time_limit(60)
    @unittest.skipUnless(ipv6_udp_available(), "no IPv6 loopback")
    def test_bound_to_ipv6_any_bad_datagrams_are_ignored_and_logged_and_b_keeps_answering(self):
        b = self.start_b("--bind", "::", "--log-level", "debug")
        rng = random.Random(8)
        targets = [(socket.AF_INET6, ("::1", b.port, 0, 0))]
        if accepts_ipv4_on_ipv6_any():
            targets.append((socket.AF_INET, ("127.0.0.2", b.port)))  # IPv4 on the `::` socket
        ignored = answered = 0
        for family, address in targets:
            with self.subTest(address=address[0]):
                bad = bad_datagrams(rng)
                if family == socket.AF_INET6:
                    # IPv6 carries datagrams larger than the largest ping A sends, up to 65527.
                    bad += [random_garbage(rng, MAX_DATAGRAM + 1),
                            random_garbage(rng, IPV6_MAX_DATAGRAM)]
                truncated = truncated_pings()
                ignored += len(bad)
                answered += len(bad) + len(truncated)  # a ping after each bad datagram
                self.assert_ignored_one_by_one(b, family, address, bad)
                self.assert_mirrored(family, address, truncated)
        self.assertTrue(b.alive())
        self.assert_answered_from(socket.AF_INET6, ("::1", b.port, 0, 0))
        self.assert_pings_answered(f"[::1]:{b.port}")
        self.assert_stops_having_counted(b, answered + 1 + 3, ignored)

    @time_limit(60)
    def test_bound_to_every_address_the_largest_datagrams_arrive_whole_never_truncated(self):
        # recvmsg cuts a datagram longer than its buffer (MSG_TRUNC, no error), and B would take
        # the cut ping for a whole one and answer it with a shorter pong, on either path: neither
        # Asio's receive nor reply_from.cpp looks at MSG_TRUNC. B's buffer (65536 bytes) is
        # larger than any UDP payload, so the largest of each family must arrive whole: a pong
        # of the same length, an `ignored` line with the full size.
        rng = random.Random(9)
        cases = [("0.0.0.0", socket.AF_INET, ("127.0.0.2",), MAX_DATAGRAM)]
        if ipv6_udp_available():
            cases.append(("::", socket.AF_INET6, ("::1", 0, 0), IPV6_MAX_DATAGRAM))
        for bind, family, host, largest in cases:
            with self.subTest(bind=bind):
                b = self.start_b("--bind", bind, "--log-level", "debug")
                address = (host[0], b.port, *host[1:])
                largest_pings = [b"ping 1 " + b"\xff" * (largest - 7),
                                 b"ping 2 " + b"\x00" * (largest - 7),
                                 b"ping" + rng.randbytes(largest - 4)]
                self.assert_mirrored(family, address, largest_pings)
                self.assert_ignored_one_by_one(b, family, address, [random_garbage(rng, largest)])
                self.assert_stops_having_counted(b, len(largest_pings) + 1, 1)

    @time_limit(60)
    def test_bound_to_0_0_0_0_a_garbage_flood_gets_no_reply_and_pings_in_it_exact_pongs(self):
        b = self.start_b("--bind", "0.0.0.0")
        address = ("127.0.0.2", b.port)
        rng = random.Random(10)
        garbage = [b"", b"pin", b"\x00ping", b"PING 1", b"pong 1 x",
                   *(random_garbage(rng, rng.randrange(1, 1400)) for _ in range(32))]
        largest = random_garbage(rng, MAX_DATAGRAM)
        noise, pinger = udp_socket(), udp_socket()
        self.addCleanup(noise.close)
        self.addCleanup(pinger.close)
        noise.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        count, sent, pings = 20000, 0, set()
        deadline = time.monotonic() + 15
        for n in range(count):
            if time.monotonic() > deadline:
                break
            noise.sendto(largest if n % 1000 == 999 else garbage[n % len(garbage)], address)
            sent += 1
            if n % 200 == 100:
                ping = b"ping %d in the flood \x00\xff" % n
                pings.add(ping)
                pinger.sendto(ping, address)
        self.assertTrue(b.alive())
        # Every reply is the exact pong of one of the pings (some may have been dropped with the
        # garbage when B's receive buffer was full), each once, from the address pinged.
        pongs = []
        pinger.settimeout(1.0)
        for _ in range(len(pings) + 1):
            try:
                pongs.append(pinger.recvfrom(RECV_SIZE))
            except TimeoutError:
                break
        for pong, source in pongs:
            self.assertEqual(source, address)
            self.assertIn(b"ping" + pong[4:], pings)
            self.assertTrue(pong.startswith(b"pong "), pong)
        self.assertEqual(len(set(pongs)), len(pongs), "a ping answered twice")
        self.assert_no_datagram(noise, 0.5)
        self.assert_answered_from(socket.AF_INET, address)
        self.assert_pings_answered(f"127.0.0.2:{b.port}")
        code, seconds = b.stop(signal.SIGINT)
        self.assertEqual(code, 0)
        self.assertLess(seconds, 2.0)
        counts = COUNTS.search(b.stderr_text())
        self.assertIsNotNone(counts, b.stderr_text())
        self.assertEqual(int(counts[1]), len(pongs) + 1 + 3)
        self.assertLessEqual(int(counts[2]), sent)
        print(f"\n  {sent} datagrams, {int(counts[2])} ignored; {len(pongs)} of {len(pings)} "
              "pings in the flood answered")

    # --- stopping --------------------------------------------------------------------------------

    def ping_until_sigint(self, b, *extra, wait_for_reply=True):
        proc = subprocess.Popen([binary(BIN), "ping", "--target", f"{b.host}:{b.port}",
                                 "--count", "0", *extra], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(proc.kill)
        if wait_for_reply:
            self.assertRegex(proc.stdout.readline(), REPLY)
        else:
            time.sleep(0.5)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=netlab_testing.STOP_TIMEOUT)
        return proc.returncode, time.monotonic() - start, stdout, stderr

    @time_limit(30)
    def test_sigint_during_count_0_prints_the_summary_and_exits_0(self):
        b = self.start_b()
        code, seconds, stdout, stderr = self.ping_until_sigint(b, "--interval", "20")
        self.assertEqual(code, 0, stderr)
        self.assertLess(seconds, 2.0)
        target, sent, received, _, _, _ = summary(stdout)
        self.assertGreaterEqual(received, 1)
        self.assertEqual(sent, received, "loopback loses nothing; in-flight pings are drained")

    @time_limit(30)
    def test_sigint_during_a_flood_drains_the_ping_in_flight(self):
        b = self.start_b()
        code, seconds, stdout, stderr = self.ping_until_sigint(b, "--interval", "0", "--quiet",
                                                               wait_for_reply=False)
        self.assertEqual(code, 0, stderr)
        self.assertLess(seconds, 2.0)
        _, sent, received, loss, _, _ = summary(stdout)
        self.assertGreater(received, 100)
        self.assertEqual((sent, loss), (received, "0"))

    @time_limit(30)
    def test_sigint_in_the_one_process_mode_loses_nothing(self):
        # B in the same process stops after A, so the ping in flight at Ctrl-C is still answered.
        both = self.start_server(BIN, "--count", "0", "--interval", "0", "--quiet")
        time.sleep(0.5)
        code, seconds = both.stop(signal.SIGINT)
        self.assertEqual(code, 0, both.stderr_text())
        self.assertLess(seconds, 2.0)
        while both.next_line() is not None:
            pass
        _, sent, received, loss, _, _ = summary("\n".join(both.stdout_lines))
        self.assertGreater(received, 100)
        self.assertEqual((sent, loss), (received, "0"))

    @time_limit(30)
    def test_a_second_signal_during_the_drain_still_prints_the_summary(self):
        # Ctrl-C starts the drain (up to 500 ms for the pings in flight); a second Ctrl-C or a
        # SIGTERM within it stops at once, and the summary must still come, with the exit status
        # it gives: 0 when a reply came (B answers the first ping only), 1 when none did.
        for answer_first, second in ((True, signal.SIGINT), (False, signal.SIGTERM)):
            with self.subTest(answer_first=answer_first, second=second), udp_socket() as fake:
                fake.bind(("127.0.0.1", 0))
                proc = subprocess.Popen(
                    [binary(BIN), "ping", "--target", f"127.0.0.1:{fake.getsockname()[1]}",
                     "--count", "0", "--interval", "100"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True)
                self.addCleanup(proc.kill)
                ping, sender = fake.recvfrom(MAX_DATAGRAM)
                if answer_first:
                    fake.sendto(b"pong" + ping[4:], sender)
                    self.assertRegex(proc.stdout.readline(), REPLY)
                fake.recvfrom(MAX_DATAGRAM)  # a ping that will never be answered is in flight
                proc.send_signal(signal.SIGINT)
                time.sleep(0.1)
                proc.send_signal(second)
                stdout, stderr = proc.communicate(timeout=netlab_testing.STOP_TIMEOUT)
                _, sent, received, _, _, _ = summary(stdout)
                self.assertEqual(received, 1 if answer_first else 0, stdout)
                self.assertGreater(sent, received, stdout)
                if answer_first:
                    self.assertEqual(proc.returncode, 0, stderr)
                else:
                    self.assertEqual(proc.returncode, 1, stderr)
                    # Not "within the timeout": the signal cut the run short before it passed.
                    self.assertRegex(stderr, r"error: no reply from 127\.0\.0\.1:\d+ before the "
                                             r"run was stopped")

    @time_limit(30)
    def test_a_closed_stderr_pipe_costs_the_error_line_not_the_exit_status(self):
        # The reader of stderr has gone: the error line before exit 1 (and a bad option's line
        # before exit 2) cannot be written, and the program still exits with its own status,
        # killed neither by SIGPIPE nor by an exception from the failed write.
        for args, status in ((["ping", "--target", f"127.0.0.1:{closed_udp_port()}",
                               "--count", "1"], 1),
                             (["ping", "--target", "127.0.0.1:9", "--count", "x"], 2)):
            with self.subTest(args=args):
                read_end, write_end = os.pipe()
                os.close(read_end)
                try:
                    result = subprocess.run([binary(BIN), *args], stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=write_end,
                                            timeout=netlab_testing.IO_TIMEOUT)
                finally:
                    os.close(write_end)
                self.assertEqual(result.returncode, status, result.stdout)

    # --- the command line -------------------------------------------------------------------------

    def test_bad_options_exit_2_with_one_line_naming_them(self):
        cases = [
            (["ping"], "--target"),
            (["ping", "--target", "nohost"], "--target"),
            (["ping", "--target", "::1:4000"], "--target"),
            (["ping", "--target", "127.0.0.1:0"], "--target"),
            (["ping", "--target", "127.0.0.1:4000", "--size", "10"], "--size"),
            (["ping", "--target", "127.0.0.1:4000", "--count", "-1"], "--count"),
            (["ping", "--target", "127.0.0.1:4000", "--inflight", "2"], "--inflight"),
            (["--interval", "x"], "--interval"),
            (["--timeout", "0"], "--timeout"),
            (["serve", "--port", "70000"], "--port"),
            (["serve", "--bind", "nowhere"], "--bind"),
            (["serve", "--count", "3"], "--count"),
            (["serve", "--threads", "0"], "--threads"),
            (["--log-level", "loud"], "--log-level"),
            (["nonsense"], "nonsense"),
        ]
        for args, named in cases:
            with self.subTest(args=args):
                result = run(*args)
                self.assertEqual(result.returncode, 2, result.stdout)
                self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
                self.assertIn(named, result.stderr)

    def test_numbers_that_do_not_fit_are_refused_in_one_short_line(self):
        # CLI11 alone read a count too large for 64 bits as 2^64 - 1, and pinged "forever".
        target = ("--target", f"127.0.0.1:{closed_udp_port()}")
        cases = [
            (["ping", *target, "--count", "99999999999999999999999"], "--count"),
            (["ping", *target, "--count", "18446744073709551616"], "--count"),
            (["ping", *target, "--count", "0x10"], "--count"),
            (["--count", "18446744073709551616"], "--count"),
            (["ping", *target, "--interval", "4294967296"], "--interval"),
            (["ping", *target, "--timeout", "99999999999999999999"], "--timeout"),
            (["ping", *target, "--size", "18446744073709551680"], "--size"),
            (["ping", *target, "--inflight", "18446744073709551617", "--interval", "0"],
             "--inflight"),
            (["serve", "--port", "99999999999999999999"], "--port"),
            (["serve", "--threads", "4294967297"], "--threads"),
        ]
        for args, named in cases:
            with self.subTest(args=args):
                try:
                    result = run(*args, timeout=5)
                except subprocess.TimeoutExpired:
                    self.fail(f"{args} accepted: it ran")
                self.assertEqual(result.returncode, 2, result.stdout)
                self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
                self.assertLess(len(result.stderr), 160, result.stderr)
                self.assertIn(named, result.stderr)

    def test_every_mode_lists_every_option_it_takes_in_its_help(self):
        # What the main command takes in every mode (--log-level, --trace, --version) is taken
        # after a subcommand too, so the subcommand's --help must show it, with its default.
        for mode in ([], ["serve"], ["ping"]):
            with self.subTest(mode=mode):
                result = run(*mode, "--help")
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertRegex(result.stdout, r"--log-level\b.*\n?.*default: info")
                self.assertRegex(result.stdout, r"--trace\b")
                self.assertRegex(result.stdout, r"--version\b")
        b = self.start_b("--log-level", "debug", "--trace")
        with udp_socket() as client:
            client.connect(b.address)
            client.send(b"ping 1 traced")
            self.assertEqual(client.recv(MAX_DATAGRAM), b"pong 1 traced")
        self.assertRegex(b.stderr_text(), r"fd \d+ receive: ")  # --trace took effect
        self.assertEqual(run("ping", "--version").returncode, 0)

    @time_limit(30)
    def test_a_port_in_use_exits_1_naming_the_address(self):
        with udp_socket() as taken:
            taken.bind(("127.0.0.1", 0))
            port = taken.getsockname()[1]
            result = run("serve", "--port", str(port))
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"127.0.0.1:{port}", result.stderr)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)

    def test_help_and_version(self):
        result = run("--help")
        self.assertEqual(result.returncode, 0)
        self.assertIn("full round trip", result.stdout)
        for option, default in [("--count", "5"), ("--interval", "100"), ("--timeout", "1000"),
                                ("--size", "64"), ("--inflight", "1")]:
            self.assertRegex(result.stdout, rf"{option}\b.*={default}\b")
        ping = run("ping", "--help")
        self.assertEqual(ping.returncode, 0)
        self.assertIn("full round trips", ping.stdout)
        self.assertRegex(ping.stdout, r"--interval\b.*=1000\b")
        serve = run("serve", "--help")
        self.assertEqual(serve.returncode, 0)
        self.assertRegex(serve.stdout, r"--port\b.*=4000\b")
        self.assertRegex(serve.stdout, r"--bind\b.*=127\.0\.0\.1\b")
        version = run("--version")
        self.assertEqual(version.returncode, 0)
        self.assertRegex(version.stdout.strip(), r"^netlab \d+\.\d+\.\d+$")


if __name__ == "__main__":
    unittest.main()
