"""Runs every command shown in the exercises' walkthroughs and checks the output shown with it.

The walkthroughs (echo_split/README.md, udp_pingpong/README.md, conn_counter/README.md,
chat/README.md) are read by students who type their commands; this test types them too, so the
docs cannot rot. One test per walkthrough. The convention, also stated in the README:

  * Commands live in fenced blocks tagged `console`. A line that starts with `$ ` is a command,
    typed into one bash shell per block, from the repository root, in order; the lines after it,
    up to the next `$ `, are what the terminal shows (stdout and stderr together, and the output
    of servers running in the background, in the order it arrives). A block may hold any number
    of commands; the shell keeps its state between them (`exec 3<>/dev/tcp/...` opens a
    connection that later commands use). Lines that start with `> ` right after a command
    continue it (a here-document, as bash prompts for it).
  * `build/release/bin/` in a command is the build this test checks ($NETLAB_BIN_DIR).
  * In the output, placeholders stand for what changes from run to run:
        {port}  a port number          {n}     any whole number
        {ms}    a time like 0.052      {time}  a log timestamp (12:27:33.467, 12:27:33.467120)
        {*}     any text, to the end of the line or up to what follows it
    and a line holding only `...` stands for any number of lines (none included).
  * `cmd &` starts a server in the background; the block must stop it itself
    (`kill -INT %1; wait %1`: the same signal as Ctrl-C, and `wait` returns its exit status).
  * Every command must exit with status 0 (a block shows a failure with `; echo "exit $?"`).
  * bash's job notices (`[1]+  Done ...`) are left out of the output, here and in the docs.

Every command has a time limit; whatever a block leaves running is killed. The fixed ports that
the walkthroughs use (8080, 8081, 8082, 4000) are a resource: ctest never runs two of these
tests at once (RESOURCE_LOCK), and a port taken by something else is reported as such.
"""
import ctypes
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import unittest
from pathlib import Path

import netlab_testing

ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = str(netlab_testing.BIN_DIR)

COMMAND_TIMEOUT = 60.0  # one command, until the shell has its prompt back
OUTPUT_TIMEOUT = 15.0   # after that, until the output shown has arrived
QUIET_TIMEOUT = 5.0     # ... or until nothing new arrived for this long (a mismatch, then)
PORT_WAIT = 30.0        # how long a taken port may take to become free (another run ending)

# The servers a walkthrough starts without --port listen on the contract's defaults.
DEFAULT_PORTS = {"echo_split": ("tcp", 8080), "conn_counter": ("tcp", 8081),
                 "chat": ("tcp", 8082), "udp_pingpong": ("udp", 4000)}

PLACEHOLDERS = {
    "{port}": r"\d{1,5}",
    "{n}": r"\d+",
    "{ms}": r"\d+\.\d+",
    "{time}": r"\d\d:\d\d:\d\d\.\d{3,9}",
    "{*}": r".*?",
}
PLACEHOLDER_RE = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))
JOB_NOTICE_RE = re.compile(r"^\[\d+\][+-]? +(Done|Exit \d+|Killed|Terminated|Interrupt)\b")
MARK = "\x1e"  # the shell prints MARK + exit status after each command

# The shell: reads one command at a time from descriptor 63 (NUL-terminated, so that a command
# may span lines) and runs it in this shell, so that its state carries over, with job control on
# as in a terminal. Commands read stdin from /dev/null. Descriptors 3 to 9 are the student's
# (bash itself takes 10 and up to save descriptors during a redirection).
DRIVER = r"""
set -m
while IFS= read -r -d '' -u 63 __walkthrough_command; do
  eval "$__walkthrough_command"
  printf '\036%d\n' "$?"
done
"""


def become_subreaper():
    """Orphans of this process's children (a server the shell started in the background, when
    the shell ends first) are reparented to this process instead of init, so they can be found
    and killed."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass  # not Linux: a leftover is then only killed by ctest's timeout


class Block:
    def __init__(self, path, line_number):
        self.path = path
        self.line_number = line_number  # of the opening fence
        self.steps = []                 # [command, [expected line, ...]]

    def where(self):
        return f"{shown(self.path)}:{self.line_number}"


def shown(path):
    """A path as the failure messages show it: from the repository root."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def read_blocks(path):
    """The ```console blocks of a walkthrough. Fails on commands in any other kind of block."""
    blocks, current, fence_tag = [], None, None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if fence_tag is None:
            m = re.match(r"^```(\S*)\s*$", line)
            if m:
                fence_tag = m.group(1)
                if fence_tag == "console":
                    current = Block(path, number)
            continue
        if line.startswith("```"):
            if current is not None:
                blocks.append(current)
            current, fence_tag = None, None
            continue
        if current is None:
            if fence_tag in ("", "sh", "bash", "shell") and line.startswith("$ "):
                raise AssertionError(f"{shown(path)}:{number}: a command outside a "
                                     "```console block would not be tested")
            continue
        if line.startswith("$ "):
            current.steps.append([line[2:], []])
        elif line.startswith("> ") and current.steps and not current.steps[-1][1]:
            current.steps[-1][0] += "\n" + line[2:]  # a continuation line, as bash prompts it
        elif not current.steps:
            raise AssertionError(f"{current.where()}: output before the first `$ ` command")
        else:
            current.steps[-1][1].append(line)
    if fence_tag is not None:
        raise AssertionError(f"{shown(path)}: a code block is never closed")
    return blocks


def pattern_for(expected_lines):
    """One regular expression for a command's whole output (each line ends with '\n')."""
    parts = []
    for line in expected_lines:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
            continue
        pieces, last = [], 0
        for m in PLACEHOLDER_RE.finditer(line):
            pieces.append(re.escape(line[last:m.start()]))
            pieces.append(PLACEHOLDERS[m.group(0)])
            last = m.end()
        pieces.append(re.escape(line[last:]))
        parts.append("".join(pieces) + r"[ \t]*\n")  # trailing blanks are invisible in the docs
    return re.compile("".join(parts))


def ports_needed(command):
    """(protocol, port) for a server started in the background without --port 0."""
    if not command.rstrip().endswith("&"):
        return []
    words = command.rstrip("& ").split()
    # The program may follow a wrapper (prlimit, taskset) or an assignment.
    names = [Path(w).name for w in words if Path(w).name in DEFAULT_PORTS and "/" in w]
    if not names or "--demo" in words:
        return []
    name = names[0]
    protocol, port = DEFAULT_PORTS[name]
    if name == "udp_pingpong" and "serve" not in words:
        return []
    m = re.search(r"--port[ =](\d+)", command)
    if m:
        port = int(m.group(1))
    return [] if port == 0 else [(protocol, port)]


def port_is_free(protocol, port):
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        # As the servers do: a port whose old connections sit in TIME_WAIT is free for them.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_for_port(protocol, port, where):
    deadline = time.monotonic() + PORT_WAIT
    while not port_is_free(protocol, port):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{where}: {protocol} port {port} on 127.0.0.1 has been taken for {PORT_WAIT:.0f} s "
                f"by another program, and this walkthrough's server needs it. Stop whatever holds "
                f"it (`ss -lnp 'sport = :{port}'` names it) and run the test again.")
        time.sleep(0.2)


def first_difference(expected_lines, lines):
    """Where the output first departs from what is shown (up to the first `...`), for the message."""
    for number, (want, got) in enumerate(zip(expected_lines, lines), 1):
        if want.strip() == "...":
            return ""
        if not pattern_for([want]).fullmatch(got + "\n"):
            return f"\nfirst difference, line {number}:\n    shown: {want}\n    got:   {got}"
    if len(lines) != len(expected_lines) and "..." not in (l.strip() for l in expected_lines):
        return f"\n{len(lines)} lines, where the walkthrough shows {len(expected_lines)}"
    return ""


def descendants(pid):
    """Every process below `pid` (by parent links in /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class Shell:
    """One bash for one block, its output read line by line by a thread."""

    def __init__(self):
        read_end, self._commands = os.pipe()
        env = {k: v for k, v in os.environ.items() if k not in ("SPDLOG_LEVEL", "PROMPT_COMMAND")}
        env.update(TERM="dumb", LC_ALL="C.UTF-8")
        self.proc = subprocess.Popen(
            ["bash", "--norc", "--noprofile", "-c", f"exec 63<&{read_end} {read_end}<&-; {DRIVER}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=ROOT, env=env, pass_fds=(read_end,), start_new_session=True)
        os.close(read_end)
        self._lines = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            self._lines.put(raw.decode(errors="replace").rstrip("\n"))
        self._lines.put(None)

    def send(self, command):
        os.write(self._commands, (command + "\0").encode())

    def next_line(self, timeout):
        """The next output line (job notices dropped), None at EOF; raises queue.Empty."""
        while True:
            line = self._lines.get(timeout=max(timeout, 0.001))
            if line is None:
                self._lines.put(None)
                return None
            if not JOB_NOTICE_RE.match(line):
                return line

    def close(self):
        """Ends the shell and kills whatever it left running."""
        try:
            os.close(self._commands)  # the shell's read loop ends
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        # What the shell left behind was reparented to this process (a subreaper, see below),
        # so it is still found here after the shell has gone.
        for pid in descendants(os.getpid()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        # Once every writer of the pipe is gone the reader sees EOF; closing the pipe while it
        # still reads would block on the reader's lock.
        self._reader.join(5)
        if not self._reader.is_alive():
            self.proc.stdout.close()


def show(lines):
    return "\n".join(f"    {line}" for line in lines) or "    (nothing)"


class WalkthroughTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        become_subreaper()

    def run_walkthrough(self, relative_path):
        path = ROOT / relative_path  # an absolute path stays as it is
        blocks = read_blocks(path)
        self.assertTrue(blocks, f"{relative_path} has no ```console block: nothing is tested")
        for block in blocks:
            with self.subTest(block=block.where()):
                self.run_block(block)

    def run_block(self, block):
        for command, _ in block.steps:
            for protocol, port in ports_needed(command):
                wait_for_port(protocol, port, block.where())
        shell = Shell()
        try:
            for command, expected in block.steps:
                self.run_step(shell, block, command, expected)
            # A block stops what it started: a walkthrough that leaves a server running would
            # leave the student's terminal in a state the next section does not expect.
            shell.send("jobs -p")
            left, _ = self.collect(shell, block, "jobs -p", [])
            self.assertEqual(left, [], f"{block.where()}: the block leaves background jobs "
                                       f"running; stop them in the walkthrough (kill -INT %1; wait %1)")
        finally:
            shell.close()

    def collect(self, shell, block, command, expected):
        """Runs nothing: waits for `command`'s end and its output; returns the output lines."""
        lines, status = [], None
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while status is None:
            try:
                line = shell.next_line(deadline - time.monotonic())
            except queue.Empty:
                self.fail(f"{block.where()}: `{command}` still running after {COMMAND_TIMEOUT:.0f} s;"
                          f" output so far:\n{show(lines)}")
            if line is None:
                self.fail(f"{block.where()}: the shell ended during `{command}`:\n{show(lines)}")
            if line.startswith(MARK):
                status = int(line[1:])
            else:
                lines.append(line)
        return lines, status

    def run_step(self, shell, block, command, expected):
        typed = command.replace("build/release/bin/", BIN_DIR.rstrip("/") + "/")
        shell.send(typed)
        lines, status = self.collect(shell, block, command, expected)
        pattern = pattern_for(expected)

        def matches():
            return pattern.fullmatch("".join(line + "\n" for line in lines)) is not None

        # Background servers may still be printing (a `Disconnected` line after the client's
        # close): wait for the output shown, or for silence.
        deadline = time.monotonic() + OUTPUT_TIMEOUT
        last_arrival = time.monotonic()
        while not matches():
            now = time.monotonic()
            if now > deadline or now - last_arrival > QUIET_TIMEOUT:
                break
            try:
                line = shell.next_line(min(deadline, last_arrival + QUIET_TIMEOUT) - now)
            except queue.Empty:
                continue
            if line is None:
                break
            if line.startswith(MARK):
                self.fail(f"{block.where()}: unexpected prompt after `{command}`")
            lines.append(line)
            last_arrival = time.monotonic()
        if not matches():
            self.fail(f"{block.where()}: the output of\n    $ {command}\nwas\n{show(lines)}\n"
                      f"but the walkthrough shows\n{show(expected)}"
                      f"{first_difference(expected, lines)}")
        self.assertEqual(status, 0, f"{block.where()}: `{command}` exited with status {status}")

    def test_echo_split(self):
        self.run_walkthrough("echo_split/README.md")

    def test_udp_pingpong(self):
        self.run_walkthrough("udp_pingpong/README.md")

    def test_conn_counter(self):
        self.run_walkthrough("conn_counter/README.md")

    def test_chat(self):
        self.run_walkthrough("chat/README.md")


if __name__ == "__main__":
    unittest.main()
