#!/usr/bin/env bash
# Draws the handlers of one echo conversation, and what started what, from Asio's own record.
#
#   bash scripts/handler_graph.sh [--log FILE] [OUTPUT.png]   (default: echo_split/handlers.png)
#
# Builds echo_split in the `trace` preset (BOOST_ASIO_ENABLE_HANDLER_TRACKING: Asio writes one
# `@asio|...` line to stderr for every handler it creates, runs and destroys), runs it with one
# thread on a free port, and has one client send "hello\n", read it back and close. Then SIGINT
# stops the server, scripts/handler_graph.py turns the `@asio` lines into a graphviz graph
# (OUTPUT with .dot instead of .png, kept next to it) and `dot` draws it. --log keeps the raw
# lines (tests/data/handler_tracking_sample.txt is one such capture).
#
# What the graph keeps: the handlers whose operation is on the client's socket, the chain that
# led to them (the accept loop's co_spawn, the accept), and the rest of the session below the
# accept: the writer's channel receives. The signal_set, the shutdown's timers and posts and the
# accept loop's later accepts are left out (the next accept is drawn greyed, as the branch the
# accept loop takes while the session starts). The coroutine machinery is collapsed so that the
# picture shows operations, not plumbing:
#   - an executor hop (io_context or strand `execute`) that only resumes a coroutine after its
#     operation completed is folded into the handler of that operation: the arrow that leaves it
#     says "resumes via post"/"via strand", and what the hop did (a close) is listed in that box;
#   - a co_spawn that started inline (the session, then `reader() && writer()`) has no handler of
#     its own; Asio only tags the operations it started with "in co_spawn_entry_point": those
#     operations hang from one yellow box that stands for the spawn.
# `python3 scripts/handler_graph.py --no-collapse` or `--all` on a --log capture shows it all.
set -euo pipefail

log=""
if [[ ${1:-} == --log ]]; then
  [[ -n ${2:-} ]] || { echo "error: --log needs a file" >&2; exit 2; }
  log=$(realpath -m "$2")
  shift 2
fi
[[ $# -le 1 ]] || { echo "usage: $0 [--log FILE] [OUTPUT.png]" >&2; exit 2; }
output=${1:-}
[[ -z $output ]] || output=$(realpath -m "$output")  # relative to where it was called from
cd "$(dirname "$0")/.."
output=${output:-$PWD/echo_split/handlers.png}
[[ $output == *.png ]] || { echo "error: the output must end in .png: $output" >&2; exit 2; }
dot_file=${output%.png}.dot
mkdir -p "$(dirname "$output")"

work=$(mktemp -d)
server=""
cleanup() {
  [[ -n $server ]] && kill -TERM "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# graphviz (for `dot`) is installed the way every other package is: through setup.sh.
command -v dot >/dev/null || bash scripts/setup.sh graphviz
if ! { [[ -f build/trace/CMakeCache.txt ]] || cmake --preset trace; } >"$work/build.log" 2>&1 ||
   ! cmake --build --preset trace --target echo_split >>"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  echo "error: building echo_split in the trace preset failed" >&2
  exit 1
fi

build/trace/bin/echo_split --threads 1 --port 0 >"$work/stdout" 2>"$work/stderr" &
server=$!
port=""
for _ in $(seq 100); do  # up to 5 s for `listening on 127.0.0.1:PORT`
  port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/stdout")
  [[ -n $port ]] && break
  if ! kill -0 "$server" 2>/dev/null; then
    grep -v '^@asio|' "$work/stderr" >&2 || true
    echo "error: echo_split exited before listening" >&2
    exit 1
  fi
  sleep 0.05
done
[[ -n $port ]] || { echo "error: echo_split printed no 'listening on' line" >&2; exit 1; }

# The conversation: one line out, the same line back, close (bash's /dev/tcp: loopback only).
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'hello\n' >&3
IFS= read -r -t 5 reply <&3 || { echo "error: no echo within 5 s" >&2; exit 1; }
exec 3<&-
[[ $reply == hello ]] || { echo "error: echoed '$reply' instead of 'hello'" >&2; exit 1; }

# The session closes its socket once it has seen the client's EOF; wait for that close (the
# listening socket is only closed by the stop), so that the record holds the whole conversation.
for _ in $(seq 100); do
  grep -q '|socket@0x[0-9a-f]*\.close$' "$work/stderr" && break
  sleep 0.02
done
kill -INT "$server"
status=0
wait "$server" || status=$?
server=""
((status == 0)) || { echo "error: echo_split exited with $status after SIGINT" >&2; exit 1; }

grep '^@asio|' "$work/stderr" >"$work/tracking" || true
[[ -n $log ]] && cp "$work/tracking" "$log"

python3 scripts/handler_graph.py "$work/tracking" -o "$dot_file" \
  --role 'listening socket=accept loop' --role 'client socket=reader' --role 'channel=writer' \
  --spawn-label $'session spawned: co_spawn(run), and run()\nstarts reader() && writer() (inline)' \
  --caption "$(cat <<'EOF'
One echo conversation in echo_split --threads 1: a client sends "hello\n", reads it back, closes.
Each box is a handler: Asio's number (#), the operation, what it got, when it ran (from the accept).
Solid arrow: the handler started that operation. Green dashed: it completed a waiting operation in
passing (the reader's try_send hands the line to the writer's pending channel receive).
The writer sends each batch with write_all: a synchronous write_some inside its receive's handler,
so a write has no handler of its own unless the socket's buffer is full. The writer's last receive
is the end-of-input message: it half-closes, the session ends, the socket is closed.
Blue: the client's socket; green: the channel; orange: the listening socket.
EOF
)"
dot -Tpng "$dot_file" -o "$output"
echo "$output ($(stat -c %s "$output") bytes), source $dot_file"
