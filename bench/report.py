"""Turns the runs into bench/RESULTS.md and the plots (gnuplot, PNG and SVG)."""
import os
import platform
import re
import shlex
import statistics
import subprocess
from pathlib import Path


def figure(run, key):
    """One repetition's figure, or None when that run failed or has no such figure."""
    return None if "bench_error" in run else run.get(key)


def median(runs, key):
    values = [v for v in (figure(r, key) for r in runs) if v is not None]
    return statistics.median(values) if values else None


def fmt(value):
    if value is None:
        return "–"
    if isinstance(value, float) and value < 100:
        return f"{value:.2f}" if value < 10 else f"{value:.1f}"
    return f"{round(value):,}".replace(",", " ")


def one_line(workload, result):
    if "bench_error" in result:
        return "FAILED " + result["bench_error"]
    shown = " ".join(f"{f.key}={fmt(result.get(f.key))}" for f in workload.figures)
    return shown + ("" if result.get("exit", 0) == 0 else f" (exit {result['exit']})")


def reference(workload, target, medians, results):
    """The value netlab is held against, and its name."""
    if target.against == "best peer":
        peers = [(medians[s.name][target.key], s.name) for s in workload.servers
                 if s.role == "peer" and medians[s.name].get(target.key) is not None]
        if not peers:
            return None, "no peer"
        pick = max if next(f for f in workload.figures if f.key == target.key).better == "higher" \
            else min
        return pick(peers)
    if target.against == "absolute":                  # the figure is a ratio already
        return 1.0, "itself"
    return medians.get(target.against, {}).get(target.key), target.against


def ratios_by_repetition(workload, target, name, results):
    """netlab's figure ÷ the reference's, repetition by repetition: in each repetition every
    server runs once, in turn, so the two figures of a pair share the machine's state of the
    moment. Their spread shows how much of the median ratio is noise."""
    runs = results["workloads"][workload.id]
    ours = runs[netlab_server(workload).name]
    if target.against == "absolute":  # the figure is a ratio already
        theirs = [{target.key: 1.0}] * len(ours)
    elif name in runs:
        theirs = runs[name]
    else:
        return []
    pairs = ((figure(a, target.key), figure(b, target.key)) for a, b in zip(ours, theirs))
    return [a / b for a, b in pairs if a is not None and b]


def spread(ratios):
    if not ratios:
        return "–"
    low, high = min(ratios), max(ratios)
    return f"{low:.2f}×" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}–{high:.2f}×"


def netlab_server(workload):
    return next(s for s in workload.servers if s.role == "netlab")


def evaluate(workload, results):
    runs = results["workloads"][workload.id]
    medians = {s.name: {f.key: median(runs[s.name], f.key) for f in workload.figures}
               for s in workload.servers}
    ours = medians[netlab_server(workload).name]
    verdicts = []
    for target in workload.targets:
        value, name = reference(workload, target, medians, results)
        mine = ours.get(target.key)
        ratio = mine / value if mine is not None and value else None
        met = ratio is not None and (ratio >= target.ratio if target.relation == ">="
                                     else ratio <= target.ratio)
        verdicts.append((target, mine, value, name, ratio, met))
    return medians, verdicts


def table(workload, results, medians):
    ours = medians[netlab_server(workload).name]
    ratio_keys = [t.key for t in workload.targets if t.key in ours] or \
        [workload.figures[0].key]
    labels = {f.key: f.label for f in workload.figures}
    head = ["server"] + [f.label for f in workload.figures] + \
        [f"netlab ÷ it ({labels[k]})" for k in ratio_keys] + ["runs"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    runs = results["workloads"][workload.id]
    for server in workload.servers:
        mine = medians[server.name]
        ratios = []
        for key in ratio_keys:
            ratio = ours.get(key) / mine[key] if ours.get(key) is not None and mine.get(key) \
                else None
            ratios.append("–" if ratio is None or server.role == "netlab" else f"{ratio:.2f}×")
        failed = sum("bench_error" in r or r.get("exit", 0) != 0 for r in runs[server.name])
        count = f"{len(runs[server.name])}" + (f" ({failed} with errors)" if failed else "")
        name = f"**{server.name}**" if server.role == "netlab" else server.name
        if server.role == "ceiling":
            name += " (ceiling)"
        rows.append("| " + " | ".join([name] + [fmt(mine[f.key]) for f in workload.figures] +
                                      ratios + [count]) + " |")
    return rows


def command_lines(workload, bins):
    lines = []
    for server in workload.servers:
        shown = [a.format(netlab="build/release/bin", peers="build/peers", port="PORT")
                 for a in server.argv]
        argv = " ".join(shlex.quote(a) for a in shown)
        lines.append(f"- {server.name}: `{argv}`")
    if workload.kind == "udp":
        lines.append("- client: `udp_pingpong ping --interval 0 --count 0 --size 64` (SIGINT after "
                     f"{workload.seconds} s); sockperf: `sockperf ping-pong -m 64 --full-rtt -t "
                     f"{workload.seconds}`, both under `taskset -c {workload.pin}`")
    else:
        pin = f"taskset -c {workload.pin} " if workload.pin else ""
        lines.append(f"- load: `{pin}netbench {' '.join(map(str, workload.args))} --target "
                     "127.0.0.1:PORT --pid SERVER_PID`")
    return lines


def versions():
    def first_line(argv):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (done.stdout or done.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "not found"

    tokio = first_line(["dpkg-query", "-W", "-f=${Version}", "librust-tokio-dev"])
    return [
        ("g++", first_line(["g++", "--version"])),
        ("Boost", first_line(["dpkg-query", "-W", "-f=${Version}", "libboost1.81-dev"])),
        ("rustc", first_line(["/usr/bin/rustc", "--version"])),
        ("tokio (librust-tokio-dev)", tokio),
        ("go", first_line(["go", "version"])),
        ("ncat", first_line(["ncat", "--version"])),
        ("socat", first_line(["dpkg-query", "-W", "-f=${Version}", "socat"])),
        ("sockperf", first_line(["dpkg-query", "-W", "-f=${Version}", "sockperf"])),
        ("iperf3", first_line(["iperf3", "--version"])),
    ]


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               "unknown")
    mem = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    return (f"{os.cpu_count()} cores ({cpu}), {int(mem) // 1048576} GiB, Linux "
            f"{platform.release()}")


def write(out: Path, workloads, results, bins):
    lines = ["# netlab benchmark results", "",
             f"Made by `bash bench/run{' --quick' if results['quick'] else ''}` on "
             f"{results['started']} in {results['elapsed_s']} s; figures are medians of "
             f"{results['repetitions']} repetition(s), servers started fresh for every run and "
             "interleaved. The load client (netbench) shares the 2 cores with the server, so the "
             "server CPU per unit of work separates servers better than the rate does.", "",
             f"Machine: {machine()}; loopback ceiling (iperf3, one stream): "
             f"{results['iperf3_gbit_s']:.1f} Gbit/s.", "",
             "Versions: " + "; ".join(f"{k} {v}" for k, v in versions()) + ".", ""]
    summary = ["## Targets", "",
               "The ratio is the medians' ratio; next to it, the lowest and highest of the ratios "
               "repetition by repetition (each repetition runs every server once, in turn), which "
               "shows how far the machine's noise moves it.", "",
               "| workload | figure | target | netlab | against | ratio | by repetition | met "
               "| netlab ÷ C epoll |",
               "|---|---|---|---|---|---|---|---|---|"]
    body = []
    for workload in workloads:
        if workload.id not in results["workloads"]:
            continue
        medians, verdicts = evaluate(workload, results)
        ceiling = next((s for s in workload.servers if s.role == "ceiling"), None)
        for target, mine, value, name, ratio, met in verdicts:
            label = next(f.label for f in workload.figures if f.key == target.key)
            to_ceiling = "–"
            if ceiling and mine is not None and medians[ceiling.name].get(target.key):
                to_ceiling = f"{mine / medians[ceiling.name][target.key]:.2f}×"
            summary.append(
                f"| {workload.title} | {label} | {target.relation} {target.ratio}× | {fmt(mine)} | "
                f"{name}: {fmt(value)} | {'–' if ratio is None else f'{ratio:.2f}×'} | "
                f"{spread(ratios_by_repetition(workload, target, name, results))} | "
                f"{'yes' if met else '**no**'} | {to_ceiling} |")
        body += [f"### {workload.title}", ""] + table(workload, results, medians) + [""] + \
            command_lines(workload, bins) + [""]
    plots = draw(out / "plots", workloads, results)
    lines += summary + ["", "## Plots", ""] + \
        [f"![{title}](plots/{name}.png)" for name, title in plots] + ["", "## Every workload", ""] \
        + body
    (out / "RESULTS.md").write_text("\n".join(lines) + "\n" + kept_soak_section(out))


def kept_soak_section(out: Path):
    """The `## Soak` section bench/soak --update-results wrote: a bench run keeps it."""
    try:
        text = (out / "RESULTS.md").read_text()
    except OSError:
        return ""
    match = re.search(r"^## Soak\n.*?(?=^## |\Z)", text, re.M | re.S)
    return "\n" + match.group(0).rstrip("\n") + "\n" if match else ""


def gnuplot(script, plots_dir):
    for terminal, ext in (("pngcairo size 900,520 font ',10'", "png"),
                          ("svg size 900,520 dynamic font ',10'", "svg")):
        text = f"set terminal {terminal}\n" + script.replace("OUTPUT", f"{ext}")
        subprocess.run(["gnuplot"], input=text, text=True, check=True, cwd=plots_dir)


def draw(plots_dir: Path, workloads, results):
    drawn = []
    sweep = [w for w in workloads if w.section == "sweep" and w.id in results["workloads"]]
    if sweep:
        names = [s.name for s in sweep[0].servers]
        rows = []
        for w in sweep:
            runs = results["workloads"][w.id]
            conns = w.args[w.args.index("--conns") + 1]
            rows.append(f"{conns} " + " ".join(fmt_raw(median(runs[n], "lines_per_s"))
                                               for n in names))
        (plots_dir / "echo_sweep.dat").write_text("\n".join(rows) + "\n")
        curves = ", ".join(f"'echo_sweep.dat' using 1:{i + 2} with linespoints title '{n}'"
                           for i, n in enumerate(names))
        gnuplot("set output 'echo_sweep.OUTPUT'\nset logscale x 2\nset key left bottom\n"
                "set title 'echo: lines/s by connection count (4 lines in flight, 64 B)'\n"
                "set xlabel 'connections'\nset ylabel 'lines/s'\nset grid\nset key noenhanced\n"
                f"plot {curves}\n", plots_dir)
        drawn.append(("echo_sweep", "echo throughput by connection count"))
    for wid, name in (("echo_1x1_pinned", "latency_1x1"), ("echo_64x16", "latency_64x16"),
                      ("udp", "latency_udp")):
        workload = next((w for w in workloads if w.id == wid), None)
        if workload is None or wid not in results["workloads"]:
            continue
        runs = results["workloads"][wid]
        rows = [f"\"{s.name}\" {fmt_raw(median(runs[s.name], 'p50_us'))} "
                f"{fmt_raw(median(runs[s.name], 'p99_us'))}" for s in workload.servers]
        (plots_dir / f"{name}.dat").write_text("\n".join(rows) + "\n")
        gnuplot(f"set output '{name}.OUTPUT'\nset style data histogram\n"
                "set style histogram clustered gap 1\nset style fill solid 0.8 border -1\n"
                f"set title '{workload.title}: latency percentiles'\nset ylabel 'µs'\n"
                "set logscale y\nset grid ytics\nset xtics noenhanced\nset key noenhanced\n"
                f"plot '{name}.dat' using 2:xtic(1) title 'p50', '' using 3 title 'p99'\n",
                plots_dir)
        drawn.append((name, f"{workload.title}: p50 and p99"))
    timeline = next((w for w in workloads if w.id == "chat_slow_timeline"), None)
    if timeline and timeline.id in results["workloads"]:
        curves = []
        for server in timeline.servers:
            slug = server.name.replace(" ", "_").replace("-", "")
            if (plots_dir / f"timeline_{slug}.dat").exists():
                curves.append(f"'timeline_{slug}.dat' using 1:2 with lines lw 2 "
                              f"title '{server.name}'")
        join = timeline.args[timeline.args.index("--slow-join-at") + 1]
        gnuplot(f"set output 'chat_slow.OUTPUT'\nset title '{timeline.title}'\n"
                f"set xrange [0:{timeline.seconds + 1}]\n"
                f"set arrow from {join}, graph 0 to {join}, graph 1 nohead dt 2\n"
                "set xlabel 'seconds'\nset ylabel 'deliveries/s'\nset grid\nset key noenhanced\n"
                f"plot {', '.join(curves)}\n", plots_dir)
        drawn.append(("chat_slow", "chat delivery rate, a client that never reads joins"))
    return drawn


def fmt_raw(value):
    return "NaN" if value is None else f"{value:.3f}"
