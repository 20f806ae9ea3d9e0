#!/usr/bin/env python3
"""Soak: netlab's four servers under mixed load for minutes, watched for leaks.

Called by bench/soak; runs on Python's standard library alone, and reuses bench.py's way of
starting a server (`--port 0`, the `listening on` line) and of running netbench.

One echo_split, conn_counter, chat and `udp_pingpong serve` (release build, default threads,
--log-level warn) run for the whole soak. Four loops, one per server, load them at the same
time, round after round, until the time is up; every netbench run is bounded by its --duration
or --total, every loop by a count and the deadline, everything on loopback:

  echo_split    netbench echo (16 connections x 4 lines in flight, 64 B lines, then 1000 B),
                alternating with netbench conns (2000 connect-line-close, 32 at a time)
  conn_counter  netbench conns (2000, 32 at a time), alternating with netbench echo
                (8 connections x 4 in flight, 256 B)
  chat          netbench chat (10 clients, 5 senders, full speed); every third run adds
                --slow 1, a client that never reads (the server must drop it)
  udp_pingpong  udp_pingpong ping --interval 0 --count 50000 (one ping in flight)

Every second, for each server: VmRSS (and its anonymous and file-backed parts) from
/proc/PID/status, the entries of /proc/PID/fd, the CPU time from /proc/PID/stat. And once after
every load run, at the server's quiescent point (its client gone, its descriptors back to their
count before the load, 0.5 s later), its VmRSS again: the samples the memory verdict uses.
"""
import argparse
import csv
import json
import math
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import bench
import report
from workloads import Server, netlab

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGETS = ("echo_split", "conn_counter", "chat", "udp_pingpong", "netbench")
SOURCES = ("common", "echo_split", "conn_counter", "chat", "udp_pingpong", "bench/netbench",
           "CMakeLists.txt", "CMakePresets.json")

FDS = ("fds_before", "fds_max", "fds_after")
COLUMNS = ("t_s", "phase", "server", "pid", "rss_kib", "rss_anon_kib", "rss_file_kib", "fds",
           "cpu_s")
T, PHASE, NAME, PID, RSS, ANON, FILE, NFD, CPU = range(len(COLUMNS))
RSS_LIMIT = 0.05           # growth allowed from the baseline to the end
FULL_WARMUP_S = 60.0       # the warm-up of a run of 4 minutes or more
QUIET_WAIT_S = 5.0         # at most this long for a server's descriptors to come back
QUIET_SETTLE_S = 0.5       # then this long before its quiescent sample (also the pause)

CRITERIA = f"""\
verdict, per server (any one fails the soak, exit status 1):
  memory       Measured at the same state every time: the quiescent point after each load run.
               When one of the server's runs has ended (its load client gone), the soak waits
               (at most {QUIET_WAIT_S:g} s) for the server's count of /proc/PID/fd to come back to
               its count before the load, then {QUIET_SETTLE_S:g} s more, then samples VmRSS once
               (phase "quiet" in samples.csv; if the descriptors do not come back in time, no
               sample for that run). Baseline: the median of the quiescent samples in the second
               minute of the load (the first minute is warm-up). Final: the median of those in
               the last minute (with the quiescent points just after it). For soaks shorter than
               4 minutes, quarters instead: baseline from the second quarter, final from the
               last. It fails when final > baseline x {1 + RSS_LIMIT:g}, or when either window
               holds no quiescent sample. A leak raises the memory the server keeps at rest; a
               peak sampled during the load mostly shows which runs overlapped (each
               connection's 16 KiB read buffer, the lines in flight), so the peaks are reported
               for information only (not in the verdict).
  descriptors  "before" is the count of /proc/PID/fd once the server is up and before any load;
               after the load, the clients are gone and the soak waits (up to --settle seconds)
               for the count to come back; "after" is the count it settles at. It fails when
               after > before.
  alive        the server must live through the soak, then exit 0 within 2 s of SIGTERM.
  data         any netbench run that exits non-zero (a lost, duplicated, reordered or
               corrupted line, a failed connection, a client disconnected; its whole output is
               kept in OUT/failed-*.txt and printed with the verdict), any ping without its
               pong, and conn_counter's "total: N accepted, C closed" at exit not matching the
               connections netbench made.
"""


def memory_kib(pid):
    """VmRSS, and its anonymous (heap, stacks) and file-backed (code, libraries) parts."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "RssAnon", "RssFile"):
            found[key] = int(line.split()[1])
    return found["VmRSS"], found.get("RssAnon"), found.get("RssFile")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid):
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SoakServer(bench.RunningServer):
    """bench.py's server, keeping its exit status and its output (conn_counter's total)."""

    def stop(self):
        self.stop_s = None
        if self.process.poll() is None:
            asked = time.monotonic()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
                self.stop_s = time.monotonic() - asked
            except subprocess.TimeoutExpired:
                pass
        self.output = Path(self.log.name).read_text(errors="replace")
        self.exit = self.process.poll()
        super().stop()


@dataclass
class Tally:
    """What one server's loop did."""
    runs: int = 0
    conns: int = 0
    lines: int = 0
    slow_dropped: int = 0
    slow_runs: int = 0
    failures: list = field(default_factory=list)


class Soak:
    def __init__(self, options, bin_dir, workdir, out):
        self.options = options
        self.bin_dir = bin_dir
        self.netbench = str(bin_dir / "netbench")
        self.load_s = options.minutes * 60
        self.warmup_s, self.baseline_window, self.final_window = memory_windows(self.load_s)
        self.stop_load = threading.Event()
        self.lock = threading.Lock()
        self.samples = []               # rows of COLUMNS
        self.deaths = {}
        self.tally = {}
        self.runs_log = open(workdir / "runs.jsonl", "w")
        self.out = out                  # failed netbench runs' whole output goes here at once
        self.failed_outputs = {}        # server -> [(path, text)] of its failed netbench runs
        self.fds_before = {}            # server -> descriptors before the load (set by run)
        self.quiet_missed = {}          # server -> runs whose descriptors did not come back
        bins = {"netlab": str(bin_dir)}
        specs = [netlab("echo_split", name="echo_split"),
                 netlab("conn_counter", name="conn_counter"),
                 netlab("chat", name="chat"),
                 Server("udp_pingpong", ("{netlab}/udp_pingpong", "serve", "--port", "0",
                                         "--log-level", "warn"), "netlab",
                        socket_kind=socket.SOCK_DGRAM)]
        self.servers = {}
        try:
            for spec in specs:
                self.servers[spec.name] = SoakServer(spec, bins, None, workdir)
                self.tally[spec.name] = Tally()
        except Exception:
            self.stop_servers()
            raise
        self.t0 = time.monotonic()      # the clock of the samples; the load starts later

    # --- sampling -------------------------------------------------------------------------
    def sample(self, phase):
        t = round(time.monotonic() - self.t0, 2)
        for name, server in self.servers.items():
            pid = server.process.pid
            if server.process.poll() is not None:
                if name not in self.deaths:
                    self.deaths[name] = (t, server.process.returncode)
                    self.stop_load.set()
                continue
            try:
                row = (t, phase, name, pid, *memory_kib(pid), fd_count(pid), cpu_seconds(pid))
            except (OSError, ValueError, KeyError):
                continue                     # exiting right now: the next poll() sees it
            with self.lock:
                self.samples.append(row)

    def sampler(self, phase_of, done):
        """Samples every second on the second of the soak's clock, until `done` is set."""
        k = 1
        while not done.is_set():
            done.wait(max(0.0, self.t0 + k - time.monotonic()))
            k = int(time.monotonic() - self.t0) + 1
            self.sample(phase_of())

    # --- the load ---------------------------------------------------------------------------
    def record(self, name, kind, argv, result, failure=None):
        tally = self.tally[name]
        with self.lock:
            tally.runs += 1
            if failure:
                tally.failures.append(f"{kind}: {failure}")
            self.runs_log.write(json.dumps({"t": round(time.monotonic() - self.t0, 2),
                                            "server": name, "kind": kind, "argv": argv,
                                            "result": result, "failure": failure}) + "\n")
            self.runs_log.flush()

    def netbench_run(self, name, args, seconds):
        """One netbench run, bounded: its own limits, then a hard timeout."""
        server = self.servers[name]
        args = [str(a) for a in args]
        try:
            result, whole = run_netbench_whole(self.netbench, args, server.port, seconds + 60)
        except OSError as error:
            self.record(name, args[0], args, None, str(error)[:400])
            return None
        failure = None
        if result is None or result["exit"] != 0 or result.get("errors"):
            path = self.keep_failed_output(name, args, whole)
            failure = describe_failure(args, result, whole) + f" (whole output: {path})"
        if result is None:
            self.record(name, args[0], args, None, failure)
            return None
        tally = self.tally[name]
        with self.lock:
            if args[0] == "echo":
                tally.conns += result["conns"]
                tally.lines += result["lines"]
            elif args[0] == "conns":
                tally.conns += result["completed"] + result["failed"]
                tally.lines += result["completed"]
            elif args[0] == "chat":
                tally.conns += result["clients"] + result["slow"]
                tally.lines += result["deliveries"]
                if result["slow"]:
                    tally.slow_runs += 1
                    tally.slow_dropped += result["slow_disconnected"]
        self.record(name, args[0], args, result, failure)
        return result

    def keep_failed_output(self, name, args, whole):
        """Writes a failed run's whole output to OUT at once (a later crash cannot lose it)."""
        with self.lock:
            runs = self.failed_outputs.setdefault(name, [])
            path = self.out / f"failed-{name}-{len(runs) + 1}-{args[0]}.txt"
            t = time.monotonic() - self.load_started
            text = (f"{t:.1f} s into the load: netbench {' '.join(args)} "
                    f"--target 127.0.0.1:{self.servers[name].port}\n{whole}")
            path.write_text(text)
            runs.append((path, text))
        return path

    def ping_run(self, name, count):
        server = self.servers[name]
        argv = [str(self.bin_dir / "udp_pingpong"), "ping", "--target",
                f"127.0.0.1:{server.port}", "--interval", "0", "--count", str(count),
                "--timeout", "2000", "--quiet", "--log-level", "warn"]
        ping = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        failure = None
        try:
            out, err = ping.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            ping.send_signal(signal.SIGINT)          # it prints its summary and exits
            try:
                out, err = ping.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                ping.kill()
                out, err = ping.communicate()
            failure = f"{count} pings not done in 60 s"
        match = re.search(r"(\d+) sent, (\d+) received, ([^\n]*)", out)
        result = None
        if not match:
            failure = failure or f"no summary (exit {ping.returncode}): {(out + err)[-300:]}"
        else:
            sent, received = int(match.group(1)), int(match.group(2))
            result = {"sent": sent, "received": received, "exit": ping.returncode,
                      "summary": match.group(0)}
            with self.lock:
                self.tally[name].lines += received
            if received < sent or ping.returncode != 0:
                failure = failure or f"udp_pingpong ping exit {ping.returncode}: {match.group(0)}"
        self.record(name, "ping", argv[1:], result, failure)

    def loop(self, name, steps):
        """Runs `steps` in turn until the deadline; at most a bounded number of runs."""
        deadline = self.load_started + self.load_s
        for i in range(int(self.load_s / QUIET_SETTLE_S) + 10):
            remaining = deadline - time.monotonic()
            if self.stop_load.is_set() or remaining < 0.5:
                return
            steps[i % len(steps)](remaining)
            self.quiet_sample(name)

    def quiet_sample(self, name):
        """The server's quiescent point after one of its runs: its client has exited; wait
        (bounded) for its descriptors to come back to the count before the load, settle, and
        sample VmRSS once. Every such sample is the same state, so they compare across the soak
        where peaks during the load do not. Other servers' loads go on meanwhile: they are other
        processes and do not touch this one's memory."""
        server = self.servers[name]
        wanted = self.fds_before.get(name)
        if wanted is None:
            return                                   # no count before the load to return to
        deadline = time.monotonic() + QUIET_WAIT_S
        while not self.stop_load.is_set():
            try:
                back = fd_count(server.process.pid) <= wanted
            except OSError:
                return                               # it died: the sampler reports it
            if back or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        self.stop_load.wait(QUIET_SETTLE_S)
        if self.stop_load.is_set() or server.process.poll() is not None:
            return
        try:
            if fd_count(server.process.pid) > wanted:
                with self.lock:
                    self.quiet_missed[name] = self.quiet_missed.get(name, 0) + 1
                return
            row = (round(time.monotonic() - self.t0, 2), "quiet", name, server.process.pid,
                   *memory_kib(server.process.pid), fd_count(server.process.pid),
                   cpu_seconds(server.process.pid))
        except (OSError, ValueError, KeyError):
            return
        with self.lock:
            self.samples.append(row)

    def loads(self):
        nb = self.netbench_run
        echo = lambda conns, inflight, size, server: lambda left: nb(
            server, ["echo", "--conns", conns, "--inflight", inflight, "--size", size,
                     "--duration", round(min(5, left), 2), "--warmup", 0], min(5, left))
        conns = lambda server: lambda left: nb(
            server, ["conns", "--total", 2000, "--concurrency", 32, "--duration",
                     round(min(20, max(left, 1)), 2)], min(20, left))
        chat = lambda *extra: lambda left: nb(
            "chat", ["chat", "--clients", 10, "--senders", 5, "--duration",
                     round(min(4, left), 2), *extra], min(4, left))
        return {
            "echo_split": [echo(16, 4, 64, "echo_split"), conns("echo_split"),
                           echo(16, 4, 1000, "echo_split"), conns("echo_split")],
            "conn_counter": [conns("conn_counter"), echo(8, 4, 256, "conn_counter")],
            "chat": [chat(), chat(), chat("--slow", 1)],
            "udp_pingpong": [lambda left: self.ping_run("udp_pingpong", 50000)],
        }

    def progress(self):
        """One line a minute on stderr: what each server holds and how its load went."""
        with self.lock:
            latest = {}
            for row in self.samples:
                latest[row[NAME]] = row
            t = time.monotonic() - self.load_started
            parts = [f"{n} {latest[n][RSS] / 1024:.1f} MiB {latest[n][NFD]} fds "
                     f"{self.tally[n].runs} runs {len(self.tally[n].failures)} failed"
                     for n in self.servers if n in latest]
        print(f"  {t / 60:4.1f} min: " + "; ".join(parts), file=sys.stderr, flush=True)

    # --- the soak ---------------------------------------------------------------------------
    def run(self):
        phase = ["before"]
        done = threading.Event()
        sampler = threading.Thread(target=self.sampler, args=(lambda: phase[0], done))
        sampler.start()
        try:
            time.sleep(2.2)                      # two idle samples: the "before" figures
            self.sample("before")
            self.fds_before = self.before_fds()      # the quiescent points return to these
            phase[0] = "load"
            self.load_started = time.monotonic()
            self.load_offset = self.load_started - self.t0
            threads = [threading.Thread(target=self.loop, args=(name, steps), name=name)
                       for name, steps in self.loads().items()]
            for thread in threads:
                thread.start()
            next_report = 60
            while any(t.is_alive() for t in threads):
                for thread in threads:
                    thread.join(timeout=1)
                if time.monotonic() - self.load_started >= next_report:
                    self.progress()
                    next_report += 60
            self.load_ended = time.monotonic() - self.t0
            phase[0] = "settle"
            self.settle()
        finally:
            done.set()
            sampler.join()
            self.stop_servers()
            self.runs_log.close()

    def settle(self):
        """Waits (bounded) until every server holds no more descriptors than before the load."""
        before = self.before_fds()
        deadline = time.monotonic() + self.options.settle
        time.sleep(1.0)
        while time.monotonic() < deadline:
            now = {}
            for name, server in self.servers.items():
                if server.process.poll() is None:
                    try:
                        now[name] = fd_count(server.process.pid)
                    except OSError:
                        pass
            if all(now.get(n, 0) <= before.get(n, 0) for n in self.servers):
                break
            time.sleep(0.2)
        time.sleep(2.1)                          # two more samples at rest: the "after" figures
        self.sample("settle")

    def before_fds(self):
        with self.lock:
            rows = [r for r in self.samples if r[PHASE] == "before"]
        return {name: rows_of[-1][NFD] for name in self.servers
                if (rows_of := [r for r in rows if r[NAME] == name])}

    def stop_servers(self):
        for server in self.servers.values():
            server.stop()


def memory_windows(load_s):
    """The warm-up, and the spans of the load (seconds from its start) whose quiescent samples
    make the baseline and the final figure: minute 2 and the last minute; quarters (the second,
    the last) when the load is shorter than 4 minutes, so that the two never overlap. The final
    span runs to the end: the quiescent point after each loop's last run comes just after it."""
    if load_s >= 4 * FULL_WARMUP_S:
        minute = FULL_WARMUP_S
        return minute, (minute, 2 * minute), (load_s - minute, math.inf)
    q = load_s / 4
    return q, (q, 2 * q), (3 * q, math.inf)


def run_netbench_whole(netbench, args, port, timeout):
    """bench.run_netbench, keeping netbench's whole output (stdout, then stderr) besides its
    JSON summary: when a run fails, every line it printed is what explains it."""
    argv = [netbench] + args + ["--target", f"127.0.0.1:{port}"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as late:     # killed: keep what it had printed
        text = lambda b: b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        return None, (f"killed after {timeout:g} s\n--- stdout\n{text(late.stdout)}"
                      f"--- stderr\n{text(late.stderr)}")
    whole = f"exit status {done.returncode}\n--- stdout\n{done.stdout}--- stderr\n{done.stderr}"
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return None, whole
    result["exit"] = done.returncode
    if done.returncode != 0:
        result["output"] = ("\n".join(lines[:-1]) + "\n" + done.stderr).strip()
    return result, whole


def describe_failure(args, result, whole):
    """One line on a failed netbench run: its counts, and its own words on a cut-off run or a
    sender the server stopped reading."""
    if result is None:
        return f"netbench {' '.join(args)} gave no summary: {whole.splitlines()[0]}"
    keys = ("corrupted", "lost", "duplicated", "reordered", "disconnected", "self_echo", "failed")
    failure = f"netbench {' '.join(args)} exit {result['exit']}: " + ", ".join(
        f"{k} {result[k]}" for k in keys if result.get(k))
    return failure + "".join(
        f"; {line.strip()}" for line in result.get("output", "").splitlines()
        if "blocked" in line or "cut off" in line or "error" in line.lower()
        and not line.startswith("errors:"))


def kib(value):
    return "–" if value is None else f"{value / 1024:.2f} MiB"


def quiet_median(soak, mine, window, column=RSS):
    """The median VmRSS (or `column`) of a server's quiescent samples in `window` (seconds into
    the load), and how many there were."""
    lo, hi = (soak.load_offset + w for w in window)
    values = [r[column] for r in mine if r[PHASE] == "quiet" and lo <= r[T] <= hi]
    return (statistics.median(values) if values else None), len(values)


def memory_figures(soak, mine):
    """The verdict's quiescent baseline and final figure, and the peaks during the load, which
    are reported for information only."""
    fig = {}
    fig["rss_base"], fig["n_base"] = quiet_median(soak, mine, soak.baseline_window)
    fig["rss_final"], fig["n_final"] = quiet_median(soak, mine, soak.final_window)
    fig["growth"] = fig["rss_final"] / fig["rss_base"] - 1 \
        if fig["rss_base"] and fig["rss_final"] else None
    warm_to = soak.load_offset + soak.warmup_s
    load = [r for r in mine if r[PHASE] == "load"]
    warm = [r[RSS] for r in load if r[T] <= warm_to]
    later = [r[RSS] for r in load if r[T] > warm_to]
    fig["peak_warm"] = max(warm) if warm else None
    fig["peak_after"] = max(later) if later else None
    # The old rule's figure: the peak after the warm-up over the warm-up's peak.
    fig["excursion"] = fig["peak_after"] / fig["peak_warm"] - 1 \
        if fig["peak_warm"] and fig["peak_after"] else None
    # Where quiescent memory changed: anonymous (heap, stacks) or file-backed (code, libraries).
    for part, column in (("anon", ANON), ("file", FILE)):
        base, _ = quiet_median(soak, mine, soak.baseline_window, column)
        final, _ = quiet_median(soak, mine, soak.final_window, column)
        fig[part] = (base, final) if base is not None and final is not None else None
    return fig


def memory_reasons(soak, name, fig):
    if fig["rss_base"] is None or fig["rss_final"] is None:
        return [f"too few quiescent samples to judge memory ({fig['n_base']} in the baseline "
                f"window, {fig['n_final']} in the final one; "
                f"{soak.quiet_missed.get(name, 0)} runs whose descriptors did not come back)"]
    if fig["growth"] > RSS_LIMIT:
        return [f"quiescent resident memory grew {fig['growth']:+.1%} "
                f"({kib(fig['rss_base'])} -> {kib(fig['rss_final'])}; limit {RSS_LIMIT:.0%})"]
    return []


def lifecycle_reasons(soak, name, fig, server):
    """Descriptors kept after the load, and how the server ended."""
    if name in soak.deaths:
        t, status = soak.deaths[name]
        return [f"died {t - soak.load_offset:.0f} s into the load (status {status})"]
    reasons = []
    if fig["fds_after"] is None or fig["fds_before"] is None:
        reasons.append("no descriptor count before or after the load")
    elif fig["fds_after"] > fig["fds_before"]:
        reasons.append(f"descriptors leaked: {fig['fds_before']} before the load, "
                       f"{fig['fds_after']} after it settled ({soak.options.settle:g} s allowed)")
    if server.exit != 0:
        reasons.append(f"exit status {server.exit} on SIGTERM (0 expected within 2 s)")
    elif server.stop_s is not None and server.stop_s > 2:
        reasons.append(f"took {server.stop_s:.1f} s to exit on SIGTERM (2 s at most)")
    return reasons


def load_reasons(soak, name, fig, server):
    """The load's own failures, and conn_counter's count at exit against netbench's."""
    tally = soak.tally[name]
    reasons = []
    if name == "conn_counter":
        match = re.search(r"total: (\d+) accepted, (\d+) closed", server.output)
        fig["conns_reported"] = match and int(match.group(1))
        if not match:
            reasons.append("no `total: N accepted, C closed` line at exit")
        elif not tally.failures and (int(match.group(1)) != tally.conns or
                                     match.group(1) != match.group(2)):
            reasons.append(f"`{match.group(0)}` at exit, netbench made {tally.conns}")
    if tally.failures:
        reasons.append(f"{len(tally.failures)} load run(s) failed, first: {tally.failures[0]}")
    return reasons


def verdicts(soak):
    """Per server: its figures and the reasons it fails (none: it passes)."""
    rows = {}
    for name, server in soak.servers.items():
        mine = [r for r in soak.samples if r[NAME] == name]
        before = [r for r in mine if r[PHASE] == "before"]
        settle = [r for r in mine if r[PHASE] == "settle"]
        fig = {"rss_before": before[-1][RSS] if before else None,
               "rss_end": mine[-1][RSS] if mine else None,
               "fds_before": before[-1][NFD] if before else None,
               "fds_max": max(r[NFD] for r in mine) if mine else None,
               "fds_after": settle[-1][NFD] if settle else None,
               "cpu_s": mine[-1][CPU] if mine else None,
               "idle_cpu_s": None,
               "quiet": sum(r[PHASE] == "quiet" for r in mine),
               "samples": len(mine)}
        fig.update(memory_figures(soak, mine))
        # CPU at rest: from the first settled sample 1.5 s or more before the last one.
        rest = [r for r in settle if r[T] <= settle[-1][T] - 1.5] if settle else []
        if rest:
            fig["idle_cpu_s"] = settle[-1][CPU] - rest[-1][CPU]
            fig["idle_span_s"] = settle[-1][T] - rest[-1][T]
        reasons = [] if name in soak.deaths else memory_reasons(soak, name, fig)
        reasons += lifecycle_reasons(soak, name, fig, server)
        reasons += load_reasons(soak, name, fig, server)
        tally = soak.tally[name]
        fig["conns"], fig["lines"], fig["runs"] = tally.conns, tally.lines, tally.runs
        fig["slow"] = f"{tally.slow_dropped}/{tally.slow_runs}" if tally.slow_runs else None
        rows[name] = (fig, reasons)
    return rows


def shape_table(soak, phase, reduce, title, parts=10):
    """VmRSS in each tenth of the load (the peak of the load samples, or the median of the
    quiescent ones): a leak climbs to the end, a warm-up levels off."""
    span = (soak.load_ended - soak.load_offset) / parts
    if span <= 0:
        return []
    unit = f"{span / 60:.2g} min" if span >= 60 else f"{span:.0f} s"
    lines = [f"{title} (MiB) in each tenth of the load ({unit} each):", "",
             "| server | " + " | ".join(str(i + 1) for i in range(parts)) + " |",
             "|---|" + "---|" * parts]
    for name in soak.servers:
        cells = []
        for i in range(parts):
            lo, hi = soak.load_offset + i * span, soak.load_offset + (i + 1) * span
            values = [r[RSS] for r in soak.samples
                      if r[NAME] == name and r[PHASE] == phase and lo <= r[T] < hi]
            cells.append(f"{reduce(values) / 1024:.2f}" if values else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def window_text(soak, window):
    lo, hi = window
    if hi == math.inf:
        return f"the last {(soak.load_s - lo) / 60:g} min" if lo >= 60 else \
            f"the last {soak.load_s - lo:g} s"
    if soak.load_s >= 4 * FULL_WARMUP_S:
        return f"{lo / 60:g}–{hi / 60:g} min"
    return f"{lo:g}–{hi:g} s"


def pct(value):
    return "–" if value is None else f"{value:+.1%}"


def summary_table(rows):
    what = {"echo_split": "echoed", "conn_counter": "echoed", "chat": "delivered",
            "udp_pingpong": "pongs"}
    lines = ["| server | RSS before load | quiescent baseline (n) | quiescent final (n) | growth "
             "(verdict) | peak during load, warm-up / after (info) | peak excursion (info) | "
             "fds before / max / after | connections | lines | runs | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, (fig, reasons) in rows.items():
        conns = "–" if name == "udp_pingpong" else report.fmt(fig["conns"])
        lines.append(
            f"| {name} | {kib(fig['rss_before'])} | {kib(fig['rss_base'])} ({fig['n_base']}) | "
            f"{kib(fig['rss_final'])} ({fig['n_final']}) | {pct(fig['growth'])} | "
            f"{kib(fig['peak_warm'])} / {kib(fig['peak_after'])} | {pct(fig['excursion'])} | "
            f"{' / '.join('–' if fig[k] is None else str(fig[k]) for k in FDS)} | {conns} | "
            f"{report.fmt(fig['lines'])} {what[name]} | {fig['runs']} | "
            f"{'pass' if not reasons else '**FAIL**'} |")
    return lines


def server_notes(soak, rows):
    notes = []
    for name, (fig, reasons) in rows.items():
        extra = [f"{fig['quiet']} quiescent samples"]
        if missed := soak.quiet_missed.get(name):
            extra[0] += f" ({missed} runs without one: descriptors not back in time)"
        if fig["anon"] and fig["file"]:
            extra.append("quiescent baseline -> final: anonymous "
                         + " -> ".join(kib(v) for v in fig["anon"]) + ", file-backed "
                         + " -> ".join(kib(v) for v in fig["file"]))
        extra.append(f"RSS at the end (idle) {kib(fig['rss_end'])}")
        if fig["cpu_s"] is not None:
            extra.append(f"{fig['cpu_s']:.1f} s CPU in all")
        if server_stop := soak.servers[name].stop_s:
            extra.append(f"exit {soak.servers[name].exit} {server_stop:.2f} s after SIGTERM")
        if fig["idle_cpu_s"] is not None:
            extra.append(f"{fig['idle_cpu_s']:.2f} s CPU in the last {fig['idle_span_s']:.0f} s "
                         "at rest")
        if fig["slow"]:
            extra.append(f"slow client dropped in {fig['slow']} runs with --slow 1")
        if fig.get("conns_reported") is not None:
            extra.append(f"its own count at exit: {fig['conns_reported']} accepted")
        notes.append(f"- {name}: " + "; ".join(extra) + "." +
                     "".join(f" **{r}.**" for r in reasons))
    return notes


SHOWN_FAILURES = 3          # failed runs per server whose whole output the summary shows


def failed_outputs_markdown(soak):
    """The first failed netbench runs' whole output, as kept in OUT/failed-*.txt (every one is
    there; a soak where every run fails would otherwise bury the table)."""
    lines = []
    for name, runs in soak.failed_outputs.items():
        for path, text in runs[:SHOWN_FAILURES]:
            lines += ["", f"Failed load run on {name} ({path.name}), netbench's whole output:", "",
                      "```", text.rstrip("\n"), "```"]
        if len(runs) > SHOWN_FAILURES:
            lines += ["", f"{len(runs) - SHOWN_FAILURES} more failed runs on {name}: "
                      f"{path.parent}/failed-{name}-*.txt"]
    return lines


def summary_markdown(soak, rows, command, started, wall_s, build_note, out):
    shown_out = os.path.relpath(out, ROOT) if out.is_relative_to(ROOT) else str(out)
    passed = all(not reasons for _, reasons in rows.values())
    o = soak.options
    lines = [
        f"Command: `{command}`, started {started}, {wall_s:.0f} s wall time "
        f"({o.minutes:g} min of load, warm-up {soak.warmup_s:g} s). "
        f"Machine: {report.machine()}, shared with other work (load average "
        f"{soak.loadavg[0]:.2f} at the start). {build_note}", ""]
    lines += summary_table(rows) + [""] + server_notes(soak, rows)
    lines += [""] + shape_table(soak, "quiet", statistics.median,
                                "Median quiescent VmRSS (the verdict's samples)")
    lines += [""] + shape_table(soak, "load", max, "Peak VmRSS during the load (information)")
    lines += ["",
              "Memory (the verdict): after each load run, once the server's descriptors are back "
              f"to their count before the load and {QUIET_SETTLE_S:g} s later, one VmRSS sample "
              "(the quiescent point). Baseline: the median of those from "
              f"{window_text(soak, soak.baseline_window)} into the load; final: the median of "
              f"those in {window_text(soak, soak.final_window)} of the load (with the quiescent "
              "points just after it); final more than "
              f"{RSS_LIMIT:.0%} above the baseline fails. The peaks during the load (the 1 s "
              "samples; excursion = peak after the warm-up over the warm-up's peak, the earlier "
              "rule) depend on which runs overlapped and are information only. Descriptors: the "
              "count of /proc/PID/fd after the load, once settled, must not exceed the count "
              f"before it. Samples: {shown_out}/samples.csv (phase quiet = the quiescent "
              f"samples; the load ran from t = {soak.load_offset:.1f} s to "
              f"{soak.load_ended:.1f} s); every load run: {shown_out}/runs.jsonl."]
    lines += failed_outputs_markdown(soak)
    lines += ["", f"**Verdict: {'pass' if passed else 'FAIL'}.**"]
    return "\n".join(lines) + "\n", passed


def update_results(section_body):
    """Replaces the `## Soak` section of bench/RESULTS.md (or appends one)."""
    path = HERE / "RESULTS.md"
    text = path.read_text() if path.exists() else "# netlab benchmark results\n"
    section = "## Soak\n\n" + section_body
    match = re.search(r"^## Soak\n.*?(?=^## |\Z)", text, re.M | re.S)
    if match:
        text = text[:match.start()] + section + ("\n" if match.end() < len(text) else "") + \
            text[match.end():]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
    print(f"updated the Soak section of {path}", file=sys.stderr)


def build(bin_dir):
    build_dir = bin_dir.parent
    print(f"building netlab (release preset) into {build_dir}...", file=sys.stderr, flush=True)
    subprocess.run(["cmake", "--preset", "release", "-B", str(build_dir)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(build_dir), "--target", *TARGETS], cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL)


def build_note(bin_dir):
    try:
        git = lambda *args: subprocess.run(["git", *args], cwd=ROOT, capture_output=True,
                                           text=True, timeout=10).stdout
        commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
        changed = git("status", "--porcelain", "--", *SOURCES).splitlines()
        if changed:
            commit += f" with {len(changed)} uncommitted change(s) in the servers' sources"
    except (OSError, subprocess.TimeoutExpired):
        commit = "unknown"
    shown = os.path.relpath(bin_dir, ROOT) if bin_dir.is_relative_to(ROOT) else str(bin_dir)
    try:
        cache = (bin_dir.parent / "CMakeCache.txt").read_text()
        source = re.search(r"^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$", cache, re.M).group(1)
    except (OSError, AttributeError):
        source = None
    if source and Path(source).resolve() != ROOT:
        return f"Binaries: {shown}/, built from the sources in {source}, not this tree."
    return f"Binaries: {shown}/ (release preset); the source tree is now at {commit}."


def parse(argv):
    parser = argparse.ArgumentParser(
        prog="bench/soak", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n", 2)[2].strip(),
        epilog=CRITERIA + """
output:
  A table per server on stdout, also in OUT/soak.md (OUT: --out, default build/soak): resident
  memory before the load; the quiescent baseline and final figures (medians, with the number of
  samples) and the growth between them (the verdict); for information only, the peak VmRSS
  during the load in the warm-up and after it, and the excursion between the two (the earlier
  peak-against-peak figure, which follows the overlap of the runs, not leaks); descriptors
  before / max / after; connections made; lines echoed (echo_split, conn_counter), delivered
  (chat, one per receiver) or pongs (udp_pingpong); load runs; the verdict and the reasons.
  Under it: the median quiescent VmRSS and the peak VmRSS during the load in each tenth of the
  load, and the whole output of the first failed netbench runs. OUT/samples.csv holds every
  sample (t_s on the soak's clock; phase before/load/settle for the 1 s samples, quiet for the
  quiescent ones; server, pid, rss_kib = VmRSS and its parts rss_anon_kib (heap, stacks: where
  a leak shows) and rss_file_kib (code and libraries paged in), fds, cpu_s).
  OUT/runs.jsonl holds every load run and its JSON summary; OUT/failed-SERVER-N-KIND.txt the
  whole output (stdout and stderr) of each failed netbench run, written when it ends; on a
  failure the reasons and those outputs are printed on stderr too. Exit status 0 when every
  server passes, 1 otherwise, 2 for a bad option.

examples:
  bench/soak                          # build (release preset), then 10 minutes
  bench/soak --minutes 0.5            # a quick check (quarters of 7.5 s)
  bench/soak --update-results         # 10 minutes, then the `## Soak` section of RESULTS.md
  bench/soak --no-build --bin-dir build/other/bin --minutes 1""")
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="minutes of load (fractions allowed, at least 0.1; default 10)")
    parser.add_argument("--bin-dir",
                        help="where the servers and netbench are (default build/release/bin); "
                        "without --no-build it is built there: cmake --preset release -B "
                        "BIN_DIR/.. and cmake --build BIN_DIR/..")
    parser.add_argument("--no-build", action="store_true",
                        help="use the binaries in --bin-dir as they are")
    parser.add_argument("--settle", type=float, default=20.0,
                        help="seconds at most to wait, after the load, for the descriptor counts "
                        "to come back (default 20)")
    parser.add_argument("--out",
                        help="where soak.md, samples.csv and runs.jsonl go (default build/soak)")
    parser.add_argument("--update-results", action="store_true",
                        help="after the run, replace the `## Soak` section of bench/RESULTS.md "
                        "with its summary (added at the end when there is none), pass or fail")
    options = parser.parse_args(argv)
    if not 0.1 <= options.minutes <= 24 * 60:
        parser.error(f"--minutes {options.minutes:g}: between 0.1 and 1440")
    if not 0 <= options.settle <= 600:
        parser.error(f"--settle {options.settle:g}: between 0 and 600")
    return options


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    options = parse(argv)
    bin_dir = Path(options.bin_dir).resolve() if options.bin_dir else ROOT / "build/release/bin"
    out = Path(options.out).resolve() if options.out else ROOT / "build/soak"
    if not options.no_build:
        build(bin_dir)
    missing = [t for t in TARGETS if not (bin_dir / t).is_file()]
    if missing:
        sys.exit(f"bench/soak: {', '.join(missing)} not in {bin_dir} (build it, or --bin-dir)")
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("failed-*.txt"):      # an earlier soak's
        stale.unlink()
    # Servers and netbench inherit this, as in bench.py.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    command = "bench/soak" + "".join(f" {a}" for a in argv)
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    wall0 = time.monotonic()
    print(f"soak: {options.minutes:g} min of load on echo_split, conn_counter, chat, "
          f"udp_pingpong from {bin_dir}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="soak-") as workdir:
        soak = Soak(options, bin_dir, Path(workdir), out)
        soak.loadavg = os.getloadavg()
        for name, server in soak.servers.items():
            print(f"  {name}: pid {server.process.pid}, port {server.port}", file=sys.stderr)
        interrupted = False
        try:
            soak.run()
        except KeyboardInterrupt:
            interrupted = True
        (out / "runs.jsonl").write_text((Path(workdir) / "runs.jsonl").read_text())
    with open(out / "samples.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(soak.samples)
    if interrupted:
        sys.exit(f"bench/soak: interrupted; samples in {out / 'samples.csv'}, no verdict")
    rows = verdicts(soak)
    text, passed = summary_markdown(soak, rows, command, started, time.monotonic() - wall0,
                                    build_note(bin_dir), out)
    (out / "soak.md").write_text("# netlab soak\n\n" + text)
    print(text)
    if options.update_results:
        update_results(text)
    if not passed:
        failing = [n for n, (_, reasons) in rows.items() if reasons]
        print(f"bench/soak: FAIL ({', '.join(failing)}): see above and {out / 'soak.md'}",
              file=sys.stderr)
        for name in failing:
            print("".join(f"  {name}: {r}\n" for r in rows[name][1]), end="", file=sys.stderr)
        failed = failed_outputs_markdown(soak)
        print("\n".join(failed[1:]), file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
