#include "echo_load.hpp"

#include "line_buffer.hpp"
#include "load_support.hpp"
#include "proc.hpp"
#include "sequence_tracker.hpp"
#include "wire.hpp"

#include "common/line_reader.hpp"
#include "common/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <unistd.h>

#include <algorithm>
#include <vector>

namespace netlab::bench {

namespace asio = boost::asio;
using asio::use_awaitable;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

// One connection's view of its stream of lines. Touched only on the connection's strand while
// the load runs, read by the main thread after it.
struct echo_connection {
  std::uint32_t id = 0;
  sequence_tracker replies;
  std::uint64_t next_to_send = 0;
  // When each line in flight was sent, at seq % K: the sender never gets more than K ahead of
  // replies.next_expected(), so a slot is reused only once its line is done.
  std::vector<load_clock::time_point> send_times;
  std::uint64_t corrupted = 0;
  bool disconnected = false;  // by the server: what was in flight is not counted lost
  bool gave_up = false;       // on an unreadable stream: likewise
  std::uint64_t lines_in_window = 0;
  latency_histogram latency;
};

// What every connection reads and nobody changes once they run (stop aside).
struct echo_run {
  explicit echo_run(const echo_options& opts) : options(opts), cpu(opts.pid), own_cpu(getpid()) {}

  const echo_options& options;
  std::atomic<bool> stop{false};  // set by SIGINT: stop sending, drain, report
  // Sized once before the connections start (each holds a reference to its own element).
  std::vector<echo_connection> connections;
  std::uint64_t failed_connects = 0;
  load_clock::time_point window_start;
  load_clock::time_point window_end;
  std::optional<load_clock::time_point> measured_end;  // the window as it really ended
  cpu_meter cpu;                                       // the server's
  cpu_meter own_cpu;                                   // netbench's
};

// Queues new lines until K are in flight. Lines counted lost leave the window too: a server that
// drops lines does not stall the connection.
void refill(echo_connection& c, std::string& out, const echo_options& options,
            load_clock::time_point now) {
  while (c.next_to_send < c.replies.next_expected() + options.inflight) {
    c.send_times[c.next_to_send % options.inflight] = now;
    append_echo_line(out, c.id, c.next_to_send, options.size);
    ++c.next_to_send;
  }
}

void check_reply(echo_connection& c, std::string_view line, load_clock::time_point now,
                 const echo_run& run, std::string& expected) {
  const auto header = parse_echo_header(line);
  if (!header || header->conn != c.id || header->seq >= c.next_to_send) {
    ++c.corrupted;
    // Taken as the reply that was due, damaged: counting it as that one keeps the rest of the
    // stream in step, so one bad byte is one error, not a cascade.
    if (c.replies.next_expected() < c.next_to_send) c.replies.record(c.replies.next_expected());
    return;
  }
  expected.clear();
  append_echo_line(expected, c.id, header->seq, run.options.size);
  const bool intact = line == expected;
  if (!intact) ++c.corrupted;
  const auto verdict = c.replies.record(header->seq);
  const bool fresh = verdict == sequence_tracker::verdict::in_order ||
                     verdict == sequence_tracker::verdict::after_gap;
  if (intact && fresh && now >= run.window_start && now < run.window_end) {
    ++c.lines_in_window;
    c.latency.add(now - c.send_times[header->seq % run.options.inflight]);
  }
}

// The closed loop: write what is due in one write, read what came, check it, repeat; after the
// window, only read until every line in flight is back.
asio::awaitable<void> exchange_lines(tcp::socket& socket, echo_connection& c, const echo_run& run) {
  // Room for a read of a few lines at least, and for one line of any allowed size.
  line_buffer in(std::max(read_chunk, 2 * run.options.size));
  std::string out;
  std::string expected;
  for (;;) {
    const auto now = load_clock::now();
    const bool sending = !run.stop && now < run.window_end;
    if (sending) refill(c, out, run.options, now);
    if (!out.empty()) {
      // K initial lines, or every line the last read made due: one write, many lines.
      auto [error, written] =
          co_await asio::async_write(socket, asio::buffer(out), asio::as_tuple(use_awaitable));
      if (error) {
        c.disconnected = !cancelled(error);
        co_return;
      }
      out.clear();
    }
    if (!sending && c.replies.next_expected() == c.next_to_send) co_return;  // all back

    if (in.full()) {  // a "line" longer than any netbench sends: nothing after it can be read
      ++c.corrupted;
      c.gave_up = true;
      co_return;
    }
    auto [error, bytes] =
        co_await socket.async_read_some(to_buffer(in.free_space()), asio::as_tuple(use_awaitable));
    if (error) {
      // Before the end, every end of file or reset is the server's doing.
      c.disconnected = !cancelled(error);
      co_return;
    }
    in.commit(bytes);
    const auto received = load_clock::now();
    while (const auto line = in.next_line()) check_reply(c, *line, received, run, expected);
  }
}

asio::awaitable<void> echo_connection_task(tcp::socket socket, echo_connection& c,
                                           const echo_run& run) {
  // Lines still in flight when this gives up count as lost, in run_echo(). One plain timer per
  // connection, not a poll of the stop flag: after a SIGINT a healthy server has answered within
  // microseconds, and a stalled one is cut off by the runtime's graceful stop limit.
  co_await (exchange_lines(socket, c, run) || sleep_until(run.window_end + echo_drain_limit));
  // netbench closes first, so TIME_WAIT stays on this side and not on the server's.
}

asio::awaitable<void> run_connections(std::vector<tcp::socket> sockets, echo_run& run) {
  std::vector<spawnable> tasks;
  for (std::size_t i = 0; i < sockets.size(); ++i) {
    // Each on the strand its socket was opened on: with --threads > 1 a connection's state is
    // still touched by one thread at a time, with no lock.
    auto executor = sockets[i].get_executor();
    tasks.push_back(make_spawnable(
        executor, echo_connection_task(std::move(sockets[i]), run.connections[i], run)));
  }
  co_await wait_for_all(std::move(tasks));
}

// The server's CPU over exactly the window the lines are counted in.
asio::awaitable<void> measure_window(echo_run& run) {
  co_await sleep_until(run.window_start, run.stop);
  run.cpu.start();
  run.own_cpu.start();
  co_await sleep_until(run.window_end, run.stop);
  run.cpu.stop();
  run.own_cpu.stop();
  run.measured_end = std::min(load_clock::now(), run.window_end);
}

asio::awaitable<void> drive_echo(echo_run& run, asio::io_context& io) {
  // Every connection is up before the clock starts. One connect after another: on loopback each
  // takes tens of microseconds, and the server's listen backlog can never overflow.
  std::vector<tcp::socket> sockets;
  for (std::size_t i = 0; i < run.options.conns && !run.stop; ++i) {
    tcp::socket socket(asio::make_strand(io));
    if (const auto error = co_await connect_no_delay(socket, run.options.target)) {
      spdlog::warn("connect to {}: {}", run.options.target, error.message());
      ++run.failed_connects;
      continue;
    }
    sockets.push_back(std::move(socket));
  }
  run.connections.resize(sockets.size());
  for (std::size_t i = 0; i < sockets.size(); ++i) {
    run.connections[i].id = static_cast<std::uint32_t>(i);
    run.connections[i].send_times.resize(run.options.inflight);
  }
  run.window_start = load_clock::now() + run.options.warmup;
  run.window_end = run.window_start + run.options.duration;
  co_await (run_connections(std::move(sockets), run) && measure_window(run));
}

}  // namespace

std::uint64_t echo_result::errors() const {
  return corrupted + lost + duplicated + reordered + disconnected + (cut_off ? 1 : 0);
}

echo_result run_echo(const echo_options& options) {
  echo_run run(options);  // outlives the runtime: coroutines a forced stop leaves refer to it
  runtime rt(options.threads);
  const auto hard_limit = options.warmup + options.duration + hard_limit_margin;
  echo_result result;
  result.options = options;
  result.cut_off = run_load(rt, run.stop, hard_limit, drive_echo(run, rt.context()));

  // Whatever ended the run (its natural end, a SIGINT, the hard limit), the accounting is done
  // here, once: lines still in flight on a connection that was not dropped never came back.
  run.cpu.stop();
  run.own_cpu.stop();
  if (!run.measured_end) run.measured_end = std::min(load_clock::now(), run.window_end);
  result.disconnected = run.failed_connects;
  for (auto& c : run.connections) {
    if (!c.disconnected && !c.gave_up) c.replies.close(c.next_to_send);
    result.lines += c.lines_in_window;
    result.latency.merge(c.latency);
    result.corrupted += c.corrupted;
    result.lost += c.replies.lost();
    result.duplicated += c.replies.duplicated();
    result.reordered += c.replies.reordered();
    result.disconnected += c.disconnected ? 1 : 0;
  }
  if (run.measured_end && *run.measured_end > run.window_start) {
    result.duration_s = seconds_between(run.window_start, *run.measured_end);
  }
  result.server_cpu_s = run.cpu.consumed();
  result.client_cpu_s = run.own_cpu.consumed();
  return result;
}

}  // namespace netlab::bench
