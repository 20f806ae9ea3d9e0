#!/usr/bin/env python3
"""Runs every benchmark workload against netlab and its peers, writes RESULTS.md and plots.

Called by bench/run after the builds; runs on Python's standard library alone. Each workload
starts every server fresh, runs netbench (or the UDP tools) against it, and stops it; servers
take turns within a repetition (netlab, then each peer, then the next repetition), so that a
slow minute on this shared machine hits every server alike. Figures are medians over the
repetitions; ratios are netlab's median over the peer's median.
"""
import argparse
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workloads import Server, Workload, all_workloads
import report

HERE = Path(__file__).resolve().parent


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_connectable(port, deadline):
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class RunningServer:
    """One server process, started fresh for one measurement and stopped after it."""

    def __init__(self, server: Server, bins: dict, pin: str | None, workdir: Path):
        self.server = server
        self.log = tempfile.NamedTemporaryFile(dir=workdir, prefix="server-", delete=False)
        port = 0 if server.prints_port else free_port(server.socket_kind)
        argv = [part.format(port=port, **bins) for part in server.argv]
        if pin is not None:
            argv = ["taskset", "-c", pin] + argv
        # stdout goes to a file, never a pipe: a server that prints a line per connection
        # (conn_counter) would block once a pipe nobody reads is full.
        self.process = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        self.port = self._wait_ready(port)

    def _wait_ready(self, port):
        deadline = time.monotonic() + 10
        if not self.server.prints_port:
            if self.server.socket_kind == socket.SOCK_DGRAM:
                time.sleep(0.3)  # nothing to connect to: give it a moment to bind
                return port
            if wait_connectable(port, deadline):
                return port
            raise RuntimeError(f"{self.server.name}: not accepting on port {port}")
        while time.monotonic() < deadline:
            text = Path(self.log.name).read_text(errors="replace")
            match = re.search(r"^listening on .*:(\d+)$", text, re.M)
            if match:
                return int(match.group(1))
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"{self.server.name} did not start: {Path(self.log.name).read_text()}")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        os.unlink(self.log.name)


def run_netbench(netbench, args, port, pid, pin, timeout):
    argv = [netbench] + args + ["--target", f"127.0.0.1:{port}"]
    if pid is not None:
        argv += ["--pid", str(pid)]
    if pin is not None:
        argv = ["taskset", "-c", pin] + argv
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(f"netbench gave no summary (exit {done.returncode}): "
                           f"{done.stdout[-500:]} {done.stderr[-500:]}")
    result["exit"] = done.returncode
    if done.returncode != 0:                   # what netbench said about it, for the reader
        result["output"] = ("\n".join(lines[:-1])[-2000:] + "\n" + done.stderr[-1000:]).strip()
    return result


def run_udp(server: RunningServer, workload: Workload, pin, seconds, bins):
    """The UDP workload: udp_pingpong's own ping against a pong server, or sockperf's pair."""
    if server.server.name == "sockperf":
        done = subprocess.run(
            ["taskset", "-c", pin, "sockperf", "ping-pong", "-i", "127.0.0.1", "-p",
             str(server.port), "-m", "64", "-t", str(seconds), "--full-rtt"],
            capture_output=True, text=True, timeout=seconds + 30)
        text = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)
        p50 = re.search(r"percentile 50\.000 =\s*([0-9.]+)", text)
        p99 = re.search(r"percentile 99\.000 =\s*([0-9.]+)", text)
        if not p50:
            raise RuntimeError(f"no sockperf summary: {text[-400:]}")
        return {"p50_us": float(p50.group(1)), "p99_us": float(p99.group(1)) if p99 else None}
    # --count 0 and SIGINT after the duration: the summary covers exactly that time.
    ping = subprocess.Popen(
        ["taskset", "-c", pin, f"{bins['netlab']}/udp_pingpong", "ping", "--target",
         f"127.0.0.1:{server.port}", "--interval", "0", "--count", "0", "--size", "64",
         "--quiet", "--log-level", "warn"], stdout=subprocess.PIPE, text=True)
    time.sleep(seconds)
    ping.send_signal(signal.SIGINT)
    out, _ = ping.communicate(timeout=10)
    match = re.search(r"rtt p50/p90/p99 = ([0-9.]+)/([0-9.]+)/([0-9.]+) ms", out)
    if not match:
        raise RuntimeError(f"no udp_pingpong summary: {out[-400:]}")
    return {"p50_us": float(match.group(1)) * 1000, "p99_us": float(match.group(3)) * 1000}


def netbench_on_fresh_server(workload: Workload, server: Server, args, bins, workdir):
    """Starts `server`, runs netbench with `args` against it, stops it."""
    running = RunningServer(server, bins, workload.pin, workdir)
    try:
        pid = running.process.pid if server.cpu_visible else None
        return run_netbench(f"{bins['netlab']}/netbench", args, running.port, pid, workload.pin,
                            timeout=workload.seconds + 120)
    finally:
        running.stop()


def measure(workload: Workload, server: Server, options, bins, workdir):
    args = [a.format(**bins) for a in workload.netbench_args(server)]
    if workload.paired_extra:
        return measure_pair(workload, server, args, bins, workdir)
    if workload.kind == "udp":
        running = RunningServer(server, bins, workload.pin, workdir)
        try:
            return run_udp(running, workload, workload.pin, workload.seconds, bins)
        finally:
            running.stop()
    return netbench_on_fresh_server(workload, server, args, bins, workdir)


def measure_pair(workload: Workload, server: Server, full, bins, workdir):
    """The workload without its paired_extra arguments, then with them, each on a fresh server."""
    extra = [str(a) for a in workload.paired_extra]
    base = full[:len(full) - len(extra)] if full[-len(extra):] == extra else full
    without, with_extra = (netbench_on_fresh_server(workload, server, args, bins, workdir)
                           for args in (base, full))
    with_extra["baseline_deliveries_per_s"] = without["deliveries_per_s"]
    with_extra["ratio"] = with_extra["deliveries_per_s"] / max(without["deliveries_per_s"], 1e-9)
    return with_extra


def loopback_ceiling(seconds):
    """iperf3 over loopback: the bytes/s no TCP server here can exceed."""
    port = free_port()
    server = subprocess.Popen(["iperf3", "-s", "-B", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)  # not a test connection: iperf3 would take it for a client
        done = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds),
                               "-J"], capture_output=True, text=True, timeout=seconds + 30)
        summary = json.loads(done.stdout)["end"]["sum_received"]
        return summary["bits_per_second"] / 1e9
    finally:
        server.kill()
        server.wait()


def main():
    # Named after bench/run, which installs and builds, then calls this with the two bin folders.
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    parser.add_argument("--netlab-bin", default=str(HERE.parent / "build" / "release" / "bin"),
                        help="netlab's bin/ (default: build/release/bin)")
    parser.add_argument("--peer-bin", default=str(HERE.parent / "build" / "peers"),
                        help="where bench/peers/*/build.sh put the peers (default: build/peers)")
    parser.add_argument("--quick", action="store_true",
                        help="one repetition, shorter runs, smaller counts (~3 min)")
    parser.add_argument("--repetitions", type=int, help="default 3 (1 with --quick)")
    parser.add_argument("--only", help="comma-separated sections: echo,conns,hold,chat,udp,sweep")
    parser.add_argument("--out", help="where RESULTS.md and plots/ go (default: bench/, or "
                        "build/bench-quick/ with --quick, so a smoke test never overwrites the "
                        "committed results of a full run)")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: write RESULTS.md and plots from OUT/results.json")
    # bench/run checks its options with this before it installs or builds anything.
    parser.add_argument("--parse-only", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    known = sorted({w.section for w in all_workloads(False)})
    unknown = set(options.only.split(",")) - set(known) if options.only else set()
    if unknown:
        parser.error(f"--only: no section {', '.join(sorted(unknown))} (sections: {','.join(known)})")
    if options.repetitions is not None and options.repetitions < 1:
        parser.error("--repetitions: at least 1")
    if options.parse_only:
        return

    # Servers inherit this: 10000 held connections need more than the usual 1024 descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    default_out = HERE.parent / "build" / "bench-quick" if options.quick else HERE
    out = Path(options.out or default_out).resolve()
    bins = {"netlab": str(Path(options.netlab_bin).resolve()),
            "peers": str(Path(options.peer_bin).resolve()), "plots": str(out / "plots")}
    (out / "plots").mkdir(parents=True, exist_ok=True)
    repetitions = options.repetitions or (1 if options.quick else 3)
    sections = set(options.only.split(",")) if options.only else None
    workloads = [w for w in all_workloads(options.quick)
                 if sections is None or w.section in sections]

    if options.report_only:
        results = json.loads((out / "results.json").read_text())
        quick = results["quick"]
        workloads = [w for w in all_workloads(quick) if w.id in results["workloads"]]
        report.write(out, workloads, results, bins)
        return

    results = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "quick": options.quick,
               "repetitions": repetitions, "workloads": {}}
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as workdir:
        for workload in workloads:
            reps = 1 if workload.single_run else repetitions
            runs = {server.name: [] for server in workload.servers}
            print(f"== {workload.title}", file=sys.stderr, flush=True)
            for rep in range(reps):
                for server in workload.servers:
                    try:
                        result = measure(workload, server, options, bins, Path(workdir))
                    except (RuntimeError, subprocess.TimeoutExpired, OSError) as error:
                        result = {"bench_error": str(error)[:300]}
                    runs[server.name].append(result)
                    print(f"   {rep + 1}/{reps} {server.name}: {report.one_line(workload, result)}",
                          file=sys.stderr, flush=True)
            results["workloads"][workload.id] = runs
        results["iperf3_gbit_s"] = loopback_ceiling(2 if options.quick else 5)
    results["elapsed_s"] = round(time.monotonic() - started)

    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    report.write(out, workloads, results, bins)
    print(f"wrote {out / 'RESULTS.md'} and {out / 'plots'} in {results['elapsed_s']} s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
