"""What the benchmark runs: the servers (netlab's and the peers') and the workloads.

Every server runs with its own defaults (threads = cores for netlab, tokio and Go), as a user
would start it. `{netlab}`, `{peers}` and `{port}` in a command are filled in by bench.py.
"""
import socket
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Server:
    name: str
    argv: tuple
    role: str                      # "netlab" (the one judged), "variant", "peer" or "ceiling"
    prints_port: bool = True       # prints `listening on ...:PORT` when given --port 0
    cpu_visible: bool = True       # its /proc CPU covers its work (not so for socat's forks)
    socket_kind: int = socket.SOCK_STREAM


def netlab(program, *extra, role="netlab", name=None):
    return Server(name or f"netlab {program}",
                  (f"{{netlab}}/{program}", "--port", "0", "--log-level", "warn") + extra, role)


def peer(name, binary, role="peer"):
    return Server(name, (f"{{peers}}/{binary}", "--port", "0"), role)


TOKIO_ECHO = peer("tokio echo_split", "tokio_echo_split")
GO_ECHO = peer("go echo", "go_echo")
EPOLL_ECHO = peer("C epoll echo", "epoll_echo", role="ceiling")
# socat forks a process per connection (and its CPU is in those children, not in the pid we
# watch): a peer for lines/s and latency, not for CPU or large connection counts.
SOCAT_ECHO = Server("socat echo", ("socat", "TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,nodelay",
                                   "PIPE"), "peer", prints_port=False, cpu_visible=False)
# With 64 connections × 16 in flight, socat's children end the run with every in-flight line
# lost (netbench: "multiple exceptions", 1024 lost), which 1 or 8 connections never show; not
# yet understood, so socat runs only in the one-connection latency workload.
ECHO_SERVERS = (netlab("echo_split"), TOKIO_ECHO, GO_ECHO, EPOLL_ECHO)
LATENCY_SERVERS = (netlab("echo_split"), TOKIO_ECHO, GO_ECHO, SOCAT_ECHO, EPOLL_ECHO)

CONN_SERVERS = (netlab("conn_counter"), peer("tokio conn_counter", "tokio_conn_counter"),
                GO_ECHO, EPOLL_ECHO)
TOKIO_COUNTER = peer("tokio conn_counter", "tokio_conn_counter")
HOLD_ECHO_SERVERS = (netlab("echo_split"), TOKIO_ECHO, GO_ECHO, EPOLL_ECHO)
HOLD_COUNTER_SERVERS = (netlab("conn_counter"), TOKIO_COUNTER)

CHAT_SERVERS = (
    netlab("chat"),
    netlab("chat", "--design", "lesson", role="variant", name="netlab chat --design lesson"),
    peer("tokio chat", "tokio_chat"),
    peer("go chat", "go_chat"),
    # ncat's broker: select()-based, single process; --max-conns lifts its default of 100.
    # ncat's broker runs in a child process, so the pid we start shows none of its CPU.
    Server("ncat --chat", ("ncat", "--chat", "--listen", "127.0.0.1", "{port}", "--max-conns", "1000"),
           "peer", prints_port=False, cpu_visible=False),
)

UDP_SERVERS = (
    Server("netlab udp_pingpong", ("{netlab}/udp_pingpong", "serve", "--port", "0", "--threads", "1",
                                   "--log-level", "warn"), "netlab", socket_kind=socket.SOCK_DGRAM),
    Server("tokio udp_pingpong", ("{peers}/tokio_udp_pingpong", "serve", "--port", "0"), "peer",
           socket_kind=socket.SOCK_DGRAM),
    Server("sockperf", ("sockperf", "server", "-i", "127.0.0.1", "-p", "{port}"), "peer",
           prints_port=False, cpu_visible=False, socket_kind=socket.SOCK_DGRAM),
)


@dataclass(frozen=True)
class Figure:
    key: str            # key in netbench's JSON summary
    label: str
    better: str         # "higher" or "lower"


@dataclass(frozen=True)
class Target:
    key: str
    against: str        # "best peer" or a server name
    relation: str       # ">=" or "<="
    ratio: float


@dataclass
class Workload:
    id: str
    section: str
    title: str
    servers: tuple
    args: list = field(default_factory=list)   # netbench arguments
    figures: tuple = ()
    targets: tuple = ()
    seconds: float = 5
    pin: str | None = None                      # taskset core list for server and client
    kind: str = "tcp"
    single_run: bool = False                    # for a plot: one run, not repeated
    # A paired run: the same netbench command without these trailing arguments first, on a
    # fresh server, then with them; the figure `ratio` is the second rate over the first, so
    # the comparison never spans minutes of a noisy machine.
    paired_extra: tuple = ()

    def netbench_args(self, server):
        return [str(a) for a in self.args]


LINES = Figure("lines_per_s", "lines/s", "higher")
CPU_LINE = Figure("server_cpu_us_per_line", "server CPU µs/line", "lower")
P50 = Figure("p50_us", "p50 µs", "lower")
P99 = Figure("p99_us", "p99 µs", "lower")
ERRORS = Figure("errors", "errors", "lower")
DELIVERIES = Figure("deliveries_per_s", "deliveries/s", "higher")
HOLD_FIGURES = (Figure("kib_per_conn", "resident KiB/connection", "lower"),
                Figure("held", "held", "higher"), Figure("errors", "errors", "lower"))
CPU_DELIVERY = Figure("server_cpu_us_per_delivery", "server CPU µs/delivery", "lower")


def all_workloads(quick):
    # Seconds measured per run. --quick is a smoke test that must stay under 3 minutes whole.
    s = 1.5 if quick else 5
    udp_s = 2 if quick else 5                   # sockperf takes whole seconds
    warm = ["--warmup", "0.5" if quick else "1"]
    echo = lambda conns, inflight: ["echo", "--conns", conns, "--inflight", inflight, "--size", 64,
                                    "--duration", s] + warm
    chat = lambda clients, *more: ["chat", "--clients", clients, "--senders", 10, "--duration", s,
                                   *more]
    total, held = (4000, 2000) if quick else (20000, 10000)
    workloads = [
        Workload("echo_64x16", "echo", "echo: 64 connections × 16 lines in flight × 64 B",
                 ECHO_SERVERS, echo(64, 16), (LINES, CPU_LINE, P50, P99, ERRORS),
                 (Target("lines_per_s", "best peer", ">=", 1.0),
                  Target("server_cpu_us_per_line", "best peer", "<=", 0.8)), s),
        Workload("echo_1000x1", "echo", "echo: 1000 connections × 1 line in flight × 64 B",
                 ECHO_SERVERS, echo(1000, 1),
                 (LINES, CPU_LINE, P50, P99, ERRORS),
                 (Target("lines_per_s", "best peer", ">=", 1.0),
                  Target("server_cpu_us_per_line", "best peer", "<=", 0.9)), s),
        Workload("echo_1x1_pinned", "echo",
                 "echo: 1 connection × 1 line, server and client on core 0",
                 LATENCY_SERVERS, echo(1, 1), (P50, P99, LINES, ERRORS),
                 (Target("p50_us", "best peer", "<=", 1.0),), s, pin="0"),
        Workload("conns_20000", "conns",
                 f"conn_counter: {total} connections, 64 at a time (connect, one line, close)",
                 CONN_SERVERS, ["conns", "--total", total, "--concurrency", 64,
                                "--duration", 120],
                 (Figure("conns_per_s", "connections/s", "higher"),
                  Figure("server_cpu_us_per_conn", "server CPU µs/connection", "lower"),
                  P50, P99, ERRORS),
                 (Target("conns_per_s", "tokio conn_counter", ">=", 1.0),
                  Target("server_cpu_us_per_conn", "tokio conn_counter", "<=", 0.8)), 10),
        Workload("hold_echo_split", "hold", f"echo_split: {held} idle connections, server memory",
                 HOLD_ECHO_SERVERS, ["hold", "--conns", held, "--seconds", 2], HOLD_FIGURES,
                 (Target("kib_per_conn", "tokio echo_split", "<=", 0.8),), 5),
        Workload("hold_conn_counter", "hold",
                 f"conn_counter: {held} idle connections, server memory",
                 HOLD_COUNTER_SERVERS, ["hold", "--conns", held, "--seconds", 2], HOLD_FIGURES,
                 (Target("kib_per_conn", "tokio conn_counter", "<=", 0.8),), 5),
        Workload("chat_10", "chat", "chat: 10 clients, 10 senders, full speed", CHAT_SERVERS,
                 chat(10, "--rate", 0), (DELIVERIES, CPU_DELIVERY, P50, P99, ERRORS),
                 (Target("deliveries_per_s", "best peer", ">=", 1.0),
                  Target("server_cpu_us_per_delivery", "best peer", "<=", 0.8)), s),
        Workload("chat_100", "chat", "chat: 100 clients, 10 senders, full speed", CHAT_SERVERS,
                 chat(100, "--rate", 0), (DELIVERIES, CPU_DELIVERY, P50, P99, ERRORS),
                 (Target("deliveries_per_s", "best peer", ">=", 1.0),
                  Target("server_cpu_us_per_delivery", "best peer", "<=", 0.8)), s),
        Workload("chat_rate", "chat", "chat: 10 clients, 10 senders × 100 lines/s", CHAT_SERVERS,
                 chat(10, "--rate", 100), (P50, P99, DELIVERIES, ERRORS),
                 (Target("p50_us", "best peer", "<=", 1.0),), s),
        Workload("chat_slow", "chat",
                 "chat: 10 clients, 10 senders, full speed, plus 1 client that never reads",
                 CHAT_SERVERS, chat(10, "--rate", 0, "--slow", 1),
                 (Figure("ratio", "deliveries/s with ÷ without it", "higher"),
                  Figure("baseline_deliveries_per_s", "deliveries/s without it", "higher"),
                  DELIVERIES, Figure("slow_disconnected", "slow client dropped", "higher"),
                  ERRORS),
                 (Target("ratio", "absolute", ">=", 0.9),), s, paired_extra=("--slow", "1")),
        Workload("udp", "udp", "udp: ping-pong, 64 B, one in flight, both ends on core 0",
                 UDP_SERVERS, [], (P50, P99), (Target("p50_us", "sockperf", "<=", 1.25),),
                 udp_s, pin="0", kind="udp"),
    ]
    workloads += sweep_workloads(quick)
    workloads.append(slow_timeline_workload(quick))
    return workloads


SWEEP_SERVERS = (netlab("echo_split"), TOKIO_ECHO, GO_ECHO, EPOLL_ECHO)


def sweep_workloads(quick):
    """Echo throughput per connection count, for the plot (one run per point)."""
    counts = (1, 16, 256) if quick else (1, 4, 16, 64, 256, 1000)
    s = 1 if quick else 2
    return [Workload(f"sweep_{n}", "sweep", f"echo sweep: {n} connections × 4 in flight",
                     SWEEP_SERVERS, ["echo", "--conns", n, "--inflight", 4, "--size", 64,
                                     "--duration", s, "--warmup", 0.5],
                     (LINES, CPU_LINE), (), s, single_run=True)
            for n in counts]


def slow_timeline_workload(quick):
    """Deliveries over time while a client that never reads joins a third of the way in."""
    s = 3 if quick else 9

    class Timeline(Workload):
        def netbench_args(self, server):
            slug = server.name.replace(" ", "_").replace("-", "")
            return super().netbench_args(server) + ["--timeline", f"{{plots}}/timeline_{slug}.dat"]

    return Timeline("chat_slow_timeline", "chat",
                    "chat: a client that never reads joins after a third of the run",
                    CHAT_SERVERS, ["chat", "--clients", 10, "--senders", 10, "--rate", 0,
                                   "--duration", s, "--slow", 1, "--slow-join-at", s / 3],
                    (DELIVERIES, ERRORS), (), s, single_run=True)
