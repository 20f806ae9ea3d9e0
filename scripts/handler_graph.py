#!/usr/bin/env python3
"""Turns Asio's handler-tracking output into a graphviz graph of one connection's handlers.

Reads the `@asio|...` lines a program built with BOOST_ASIO_ENABLE_HANDLER_TRACKING writes to
stderr (the `trace` preset) and writes a dot graph: one box per handler, an arrow from the
handler that started an operation to the operation's handler, and a dashed arrow from a handler
to another it completed in passing (a channel send handing a value to a waiting receiver). Only
the handlers of one connection are kept: see `conversation()`. scripts/handler_graph.sh runs
echo_split, captures the lines and calls this; `--help` lists the options.

The lines (Boost 1.81, boost/asio/detail/impl/handler_tracking.ipp), after `@asio|<time>|`:
  P*C|obj@addr.op    handler C created for operation `op` on object `obj`, while P ran (0: none)
  P^C|in 'f' (file:line)   where C was created (Asio records this inside co_spawn's entry point)
  >C|ec=...          C starts running (with the operation's result); <C| it returns;
  !C|                it threw; ~C| it was destroyed without ever running
  .C|non_blocking_recv,ec=...   the reactor tried C's operation (ec=system:11: would block)
  P|obj@addr.op      P performed a synchronous operation (close, cancel, ...)
Lines that do not start with `@asio|` are ignored.
"""
import argparse
import re
import sys
from dataclasses import dataclass, field

LINE = re.compile(r"^@asio\|(?P<time>\d+\.\d+)\|(?P<spec>[^|]*)\|(?P<rest>.*)$")
OBJECT_OP = re.compile(r"^(?P<obj>[A-Za-z_]+)@(?P<addr>0x[0-9a-fA-F]+|\(nil\))\.(?P<op>\w+)$")
EXECUTORS = {"io_context", "strand_executor", "strand", "system_executor", "thread_pool"}

# What Asio's internal operation names are called in the API a reader knows.
SOCKET_OPS = {"async_receive": "async_read_some", "async_send": "async_write_some",
              "async_receive_from": "async_receive_from", "async_send_to": "async_send_to"}


@dataclass
class Handler:
    id: int
    parent: int
    obj: str
    addr: str
    op: str
    created: float
    where: list = field(default_factory=list)     # the `^` lines: innermost first
    attempts: list = field(default_factory=list)  # the `.` lines: the reactor's tries
    result: str | None = None                     # the arguments of the `>` line
    started: float | None = None
    fate: str = "pending"                         # ran, threw, destroyed, pending
    actions: list = field(default_factory=list)   # (obj, addr, op) done while it ran
    woken_by: int | None = None                   # the handler running when this one started

    @property
    def spawn_depth(self):
        return sum("co_spawn_entry_point" in w for w in self.where)


def parse(lines):
    """Returns {id: Handler} in creation order."""
    handlers = {}
    pending_where = {}
    running = []  # entered handlers, innermost last (one thread: --threads 1)
    for raw in lines:
        m = LINE.match(raw.rstrip("\n"))
        if not m:
            continue
        time, spec, rest = float(m["time"]), m["spec"], m["rest"]
        if "*" in spec:
            parent, child = (int(x) for x in spec.split("*"))
            o = OBJECT_OP.match(rest)
            if not o:
                continue
            handlers[child] = Handler(child, parent, o["obj"], o["addr"], o["op"], time,
                                      pending_where.pop(child, []))
        elif "^" in spec:
            child = int(spec.split("^")[1])
            pending_where.setdefault(child, []).append(rest)
        elif spec[0] in "><!~.":
            h = handlers.get(int(spec[1:]))
            if h is None:
                continue  # created before the capture began
            if spec[0] == ">":
                h.result, h.started, h.fate = rest, time, "ran"
                if running and running[-1] != h.parent:
                    h.woken_by = running[-1]
                running.append(h.id)
            elif spec[0] == "<":
                if h.id in running:
                    running.remove(h.id)
            elif spec[0] == "!":
                h.fate = "threw"
                if h.id in running:
                    running.remove(h.id)
            elif spec[0] == "~":
                h.fate = "destroyed"
            else:
                h.attempts.append(rest)
        elif spec.isdigit():
            o = OBJECT_OP.match(rest)
            if o and int(spec) in handlers:
                handlers[int(spec)].actions.append((o["obj"], o["addr"], o["op"]))
    return handlers


def client_socket(handlers, wanted=None):
    """The connection's socket: the first one read from (or written to), unless given."""
    if wanted:
        return wanted
    listeners = {h.addr for h in handlers.values() if h.op == "async_accept"}
    for h in handlers.values():
        if h.obj == "socket" and h.addr not in listeners and h.op != "async_accept":
            return h.addr
    sys.exit("handler_graph: no connected socket in the input (did a client connect?)")


def touches(h, socket):
    return h.addr == socket or any(addr == socket for _, addr, _ in h.actions)


def conversation(handlers, socket):
    """The handlers of one connection, and the grey context around them.

    Kept: every handler whose operation (or a synchronous close, cancel...) is on the socket;
    their ancestors, back to the first handler (how the connection came to be: the accept loop);
    and, below the closest common ancestor of those, each whole subtree that touches the socket or
    is woken by a kept handler (the session's other coroutines: the writer's channel receives).
    The common ancestor's other children (the accept loop accepting again) are context: greyed.
    """
    def ancestors(i):
        chain = []
        while i in handlers:
            chain.append(i)
            i = handlers[i].parent
        return chain

    core = [h.id for h in handlers.values() if touches(h, socket)]
    if not core:
        sys.exit(f"handler_graph: no handler uses socket {socket}")
    chains = [ancestors(i) for i in core]
    common = set(chains[0]).intersection(*map(set, chains[1:]))
    top = max(common) if common else None  # ids grow down a chain: the deepest common one
    kept = set().union(*map(set, chains))

    children = {}
    for h in handlers.values():
        children.setdefault(h.parent, []).append(h.id)

    def subtree(i):
        out, todo = [], [i]
        while todo:
            j = todo.pop()
            out.append(j)
            todo.extend(children.get(j, []))
        return out

    branches = [subtree(c) for c in children.get(top, [])] if top else []
    changed = True
    while changed:
        changed = False
        for branch in branches:
            if branch[0] in kept and all(j in kept for j in branch):
                continue
            if any(touches(handlers[j], socket) or handlers[j].woken_by in kept for j in branch):
                kept.update(branch)
                changed = True
    context = {c for c in children.get(top, [])} - kept if top else set()
    return kept, context


def is_hop(h):
    """An executor hop that only resumes a coroutine (posted or dispatched), not a co_spawn."""
    return h.obj in EXECUTORS and h.spawn_depth == 0 and h.parent != 0


def outcome(h):
    """What the operation's handler was given, in words."""
    if h.fate == "destroyed":
        return "never ran (destroyed)"
    if h.fate == "pending":
        return "still pending at exit"
    r = h.result or ""
    ec = re.search(r"ec=([\w.]+):(\d+)", r)
    nbytes = re.search(r"bytes_transferred=(\d+)", r)
    signal = re.search(r"signal_number=(\d+)", r)
    text = "ran"
    if ec:
        category, value = ec[1], int(ec[2])
        if value == 0:
            done = {"async_wait": "ready", "async_accept": "accepted"}
            text = (f"{nbytes[1]} bytes" if nbytes else f"signal {signal[1]}" if signal
                    else done.get(h.op, "ok"))
        elif category.endswith("misc") and value == 2:
            text = "EOF"
        elif value == 125:
            text = "cancelled"
        else:
            text = f"error {category}:{value}"
    elif h.obj == "channel" and h.op == "async_receive":
        text = "value received"
    elif h.obj == "channel" and h.op == "async_send":
        text = "value taken"
    if h.fate == "threw":
        text += ", threw"
    return text


def reactor_story(h):
    """The reactor's tries: done at once, or would block first (then epoll woke it)."""
    if not h.attempts:
        return ""
    first = h.attempts[0]
    if "ec=system:11" in first:
        return "would block: waited for epoll"
    return "done at once, no wait"


def build_dot(handlers, socket, kept, context, roles, spawn_label, caption, collapse):
    obj_name = {}
    listeners = {h.addr for h in handlers.values() if h.op == "async_accept"}
    for h in handlers.values():
        if h.obj == "socket":
            obj_name[h.addr] = ("client socket" if h.addr == socket else
                                "listening socket" if h.addr in listeners else "socket")
        elif h.obj == "deadline_timer":
            obj_name[h.addr] = "timer"
        else:
            obj_name[h.addr] = h.obj

    # Collapse: an executor hop is folded into the handler that posted it; its children hang
    # from that handler, its synchronous actions are listed there.
    owner = {i: i for i in kept}
    order = sorted(kept)
    if collapse:
        for i in order:
            h = handlers[i]
            if is_hop(h) and h.parent in owner:
                owner[i] = owner[h.parent]

    colours = {"client socket": "#dbe9ff", "channel": "#dff5df", "listening socket": "#ffe9cc"}
    # Times are when each handler ran, from the first that ran on behalf of the connection: the
    # accept's completion (the wait for a client before it says nothing about the conversation).
    accepts = [i for i in kept if handlers[i].op == "async_accept" and handlers[i].started]
    t0 = (handlers[accepts[0]].started if accepts else
          min(handlers[i].started or handlers[i].created for i in kept))
    out = ["digraph handlers {",
           '  graph [rankdir=TB, fontname="Helvetica", fontsize=11, nodesep=0.3, ranksep=0.35,'
           ' labelloc=b, labeljust=l];',
           '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10,'
           ' fillcolor="#f2f2f2"];',
           '  edge [fontname="Helvetica", fontsize=9];']
    if caption:  # left-aligned lines (dot's \l)
        out.append('  label="' + "".join(esc(line) + "\\l" for line in caption.split("\n")) + '";')

    spawn_nodes = {}
    for i in order:
        if owner[i] != i:
            continue
        h = handlers[i]
        name = obj_name.get(h.addr, h.obj)
        role = roles.get(name)
        if h.obj in EXECUTORS:
            # Named after what it starts: the role of the first operation it begins.
            first = next((roles.get(obj_name.get(handlers[j].addr)) for j in order
                          if handlers[j].parent == i and handlers[j].obj not in EXECUTORS), None)
            what = "co_spawn: coroutine starts" if h.spawn_depth else "resume (posted)"
            head = f"{what}\n({first}, on {h.obj})" if first else f"{what}\n(on {h.obj})"
        else:
            op = SOCKET_OPS.get(h.op, h.op) if h.obj == "socket" else h.op
            head = f"{role}: {op}" if role else f"{name}: {op}"
            if role:
                head += f"\n({name})"
        lines = [head]
        if h.obj not in EXECUTORS or h.fate != "ran":
            lines.append("→ " + outcome(h))
        story = reactor_story(h)
        if story:
            lines.append(story)
        folded = [j for j in order if owner[j] == i and j != i]
        for j in [i] + folded:
            for obj, addr, op in handlers[j].actions:
                lines.append(f"then {obj_name.get(addr, obj)}.{op}()")
        when = ("never ran" if h.started is None else "ran before the connection"
                if h.started < t0 else f"ran at +{(h.started - t0) * 1000:.3f} ms")
        lines.append(f"#{i}   {when}")
        attrs = [f'label="{esc(chr(10).join(lines))}"']
        if name in colours and h.obj not in EXECUTORS:
            attrs.append(f'fillcolor="{colours[name]}"')
        if h.fate in ("destroyed", "pending"):
            attrs.append('style="rounded,dashed"')
        out.append(f"  h{i} [{', '.join(attrs)}];")

    for i in order:
        h = handlers[i]
        if owner[i] != i or h.parent not in owner:
            continue
        src = owner[h.parent]
        hop = handlers[h.parent] if owner[h.parent] != h.parent else None
        label = "" if hop is None else ("resumes via strand" if "strand" in hop.obj
                                        else "resumes via post")
        if h.spawn_depth and h.obj not in EXECUTORS:
            key = (src, h.spawn_depth)
            if key not in spawn_nodes:
                node = f"s{src}_{h.spawn_depth}"
                spawn_nodes[key] = node
                text = spawn_label or (f"co_spawn ×{h.spawn_depth}\n(coroutines start inline:"
                                       " no handler of their own)")
                out.append(f'  {node} [label="{esc(text)}", shape=box, style="filled",'
                           ' fillcolor="#fff6bf"];')
                out.append(f'  h{src} -> {node} [label="{esc(label)}"];')
            out.append(f"  {spawn_nodes[key]} -> h{i};")
        else:
            out.append(f'  h{src} -> h{i} [label="{esc(label)}"];')

    for i in order:
        h = handlers[i]
        if owner[i] != i or h.woken_by is None or h.woken_by not in owner:
            continue
        src = owner[h.woken_by]
        if src == owner.get(h.parent):
            continue
        out.append(f'  h{src} -> h{i} [style=dashed, color="#2a7a2a", fontcolor="#2a7a2a",'
                   f' label="wakes it\\n(completed\\nduring #{h.woken_by})", constraint=false];')

    for c in sorted(context):
        h = handlers[c]
        name = obj_name.get(h.addr, h.obj)
        role = roles.get(name)
        op = SOCKET_OPS.get(h.op, h.op) if h.obj == "socket" else h.op
        text = f"{role or name}: {op}\n(not this connection)"
        out.append(f'  c{c} [label="{esc(text)}", style="rounded,dashed", color="#999999",'
                   ' fontcolor="#999999", fillcolor=white];')
        if h.parent in owner:
            out.append(f'  h{owner[h.parent]} -> c{c} [style=dashed, color="#999999"];')
    out.append("}")
    return "\n".join(out) + "\n"


def esc(text):
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("input", nargs="?", default="-", help="handler-tracking lines (default: stdin)")
    p.add_argument("-o", "--output", default="-", help="the dot file (default: stdout)")
    p.add_argument("--socket", help="the connection's socket address (default: the first one "
                   "that reads or writes)")
    p.add_argument("--role", action="append", default=[], metavar="OBJECT=NAME",
                   help="name what an object's handlers are, e.g. 'channel=writer' (objects: "
                   "client socket, listening socket, channel, timer, signal_set)")
    p.add_argument("--spawn-label", help="the text of the box that stands for a co_spawn")
    p.add_argument("--caption", help="a note under the graph")
    p.add_argument("--no-collapse", action="store_true",
                   help="keep every executor hop as a box of its own")
    p.add_argument("--all", action="store_true", help="every handler, not one connection's")
    args = p.parse_args(argv)

    source = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
    with source:
        handlers = parse(source)
    socket = client_socket(handlers, args.socket)
    if args.all:
        kept, context = set(handlers), set()
    else:
        kept, context = conversation(handlers, socket)
    roles = dict(r.split("=", 1) for r in args.role)
    dot = build_dot(handlers, socket, kept, context, roles, args.spawn_label, args.caption,
                    not args.no_collapse)
    if args.output == "-":
        sys.stdout.write(dot)
    else:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(dot)


if __name__ == "__main__":
    main()
