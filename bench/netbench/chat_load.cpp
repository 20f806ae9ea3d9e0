#include "chat_load.hpp"

#include "chat_check.hpp"
#include "line_buffer.hpp"
#include "load_support.hpp"
#include "proc.hpp"
#include "wire.hpp"

#include "common/line_reader.hpp"
#include "common/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace netlab::bench {

namespace asio = boost::asio;
using asio::use_awaitable;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;

namespace {

// Rate mode: after a stall, at most this many overdue lines go out in one write.
constexpr std::uint64_t max_rate_batch = 1024;

// How long a slow client must stay silent, once its backlog is read, to count as still
// connected; and how long reading one may take in all. Well above the chat server's own 200 ms
// grace for its last line (too_slow_grace): with 200 ms here, one bench/soak run in 19 counted a
// client the server had dropped as still connected (under the soak's load, most likely a pause
// of that length before its end of stream; not reproduced in isolation).
constexpr std::chrono::milliseconds slow_quiet_time{1000};
constexpr std::chrono::seconds slow_check_limit{3};

// Room for the longest line the server relays (its --max-line default) and a read beside it.
constexpr std::size_t chat_read_buffer = default_max_line + read_chunk;

struct reading_client {
  reading_client(std::uint32_t index, std::size_t senders) : receiver(index, senders) {}
  chat_receiver receiver;
  bool disconnected = false;  // never connected, or dropped by the server: out of the loop
};

// Everything here runs on one thread: the closed loop couples every sender to every reader, and
// one thread keeps that shared state free of locks.
struct chat_run {
  explicit chat_run(const chat_options& opts)
      : options(opts),
        sent(opts.senders, 0),
        waiting_sender(opts.senders),
        cpu(opts.pid),
        own_cpu(getpid()) {}

  const chat_options& options;
  std::atomic<bool> stop{false};  // set by SIGINT
  // Client r is reading client r; clients 0..M-1 also send. Built before any coroutine starts.
  std::vector<reading_client> clients;
  std::vector<std::uint64_t> sent;  // per sender: lines handed to a write so far
  // A sender's timer while it waits for its readers to catch up; a reader cancels it to wake it.
  std::vector<asio::steady_timer*> waiting_sender;
  std::uint64_t failed_slow_connects = 0;  // failed normal ones are marked disconnected
  load_clock::time_point epoch;  // the first send; lines carry their send time relative to it
  load_clock::time_point send_end;
  load_clock::time_point senders_stopped;
  load_clock::time_point last_delivery;
  std::uint64_t deliveries = 0;  // running total, for the timeline
  latency_histogram latency;
  std::vector<std::pair<double, double>> timeline;
  bool drained = false;
  std::uint64_t senders_blocked = 0;
  std::uint64_t slow_disconnected = 0;
  cpu_meter cpu;      // the server's
  cpu_meter own_cpu;  // netbench's
};

void mark_disconnected(chat_run& run, std::uint32_t client) {
  run.clients[client].disconnected = true;
  // A sender waiting for this client would wait in vain: let every waiting one look again.
  for (auto*& timer : run.waiting_sender) {
    if (timer) timer->cancel();
    timer = nullptr;
  }
}

// The closed loop's rule: sender s may run W lines ahead of the slowest client still reading.
std::uint64_t closed_loop_limit(const chat_run& run, std::uint32_t s) {
  // Simple rather than clever: O(clients) per look, and a look happens once per batch of lines,
  // not per line.
  std::optional<std::uint64_t> slowest;
  for (std::uint32_t r = 0; r < run.clients.size(); ++r) {
    if (r == s || run.clients[r].disconnected) continue;
    const auto progress = run.clients[r].receiver.from(s).next_expected();
    slowest = std::min(slowest.value_or(progress), progress);
  }
  return slowest ? *slowest + run.options.window : run.sent[s];  // nobody reads: send nothing
}

std::uint64_t lines_due(const chat_run& run, std::uint32_t s, load_clock::time_point now) {
  if (run.options.rate == 0) return closed_loop_limit(run, s);
  // Line n is due at epoch + n / rate: an open loop, whatever the readers do.
  const double elapsed = seconds_between(run.epoch, now);
  const auto due = static_cast<std::uint64_t>(std::floor(elapsed * run.options.rate)) + 1;
  return std::min(due, run.sent[s] + max_rate_batch);
}

load_clock::time_point next_wake(const chat_run& run, std::uint32_t s, load_clock::time_point now) {
  auto wake = std::min(run.send_end, now + stop_poll_interval);
  if (run.options.rate > 0) {
    const auto due =
        run.epoch + std::chrono::duration_cast<load_clock::duration>(std::chrono::duration<double>(
                        static_cast<double>(run.sent[s]) / run.options.rate));
    wake = std::min(wake, due);
  }
  return wake;
}

asio::awaitable<void> send_lines(chat_run& run, tcp::socket& socket, std::uint32_t s) {
  asio::steady_timer wake(co_await asio::this_coro::executor);
  std::string out;
  for (;;) {
    const auto now = load_clock::now();
    if (run.stop || now >= run.send_end || run.clients[s].disconnected) co_return;
    out.clear();
    const std::uint64_t send_ns = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - run.epoch).count());
    for (const auto limit = lines_due(run, s, now); run.sent[s] < limit; ++run.sent[s]) {
      append_chat_line(out, s, run.sent[s], send_ns);
    }
    if (out.empty()) {
      // Nothing may go yet: wait for a reader to catch up (it cancels this wait), or for the
      // next line to fall due.
      wake.expires_at(next_wake(run, s, now));
      run.waiting_sender[s] = &wake;
      co_await wake.async_wait(asio::as_tuple(use_awaitable));
      run.waiting_sender[s] = nullptr;
      continue;
    }
    // Every line that may go, in one write.
    auto [error, written] =
        co_await asio::async_write(socket, asio::buffer(out), asio::as_tuple(use_awaitable));
    if (error) {
      if (!cancelled(error)) mark_disconnected(run, s);
      co_return;
    }
  }
}

asio::awaitable<void> sender_task(chat_run& run, tcp::socket& socket, std::uint32_t s) {
  const auto outcome = co_await (send_lines(run, socket, s) ||
                                 drain_until(run.send_end + sender_write_grace, run.stop));
  if (outcome.index() == 1) ++run.senders_blocked;
}

asio::awaitable<void> receive_lines(chat_run& run, tcp::socket& socket, std::uint32_t r) {
  line_buffer in(chat_read_buffer);
  auto& client = run.clients[r];
  for (;;) {
    if (in.full()) {  // longer than any line the server relays: the stream is broken
      mark_disconnected(run, r);
      co_return;
    }
    auto [error, bytes] =
        co_await socket.async_read_some(to_buffer(in.free_space()), asio::as_tuple(use_awaitable));
    if (error) {
      if (!cancelled(error)) mark_disconnected(run, r);
      co_return;
    }
    in.commit(bytes);
    const auto now = load_clock::now();
    while (const auto line = in.next_line()) {
      const auto delivery = client.receiver.receive(*line, run.sent);
      if (!delivery) continue;
      ++run.deliveries;
      run.last_delivery = now;
      run.latency.add(now - (run.epoch + std::chrono::nanoseconds(delivery->send_ns)));
      if (auto*& waiting = run.waiting_sender[delivery->sender]) {
        waiting->cancel();
        waiting = nullptr;  // one wake per batch is enough: the sender looks at everything
      }
    }
  }
}

bool all_delivered(const chat_run& run) {
  for (std::uint32_t r = 0; r < run.clients.size(); ++r) {
    if (run.clients[r].disconnected) continue;
    for (std::uint32_t s = 0; s < run.sent.size(); ++s) {
      if (s != r && run.clients[r].receiver.from(s).next_expected() < run.sent[s]) return false;
    }
  }
  return true;
}

// Every reading client has every line, or the drain limit has passed.
asio::awaitable<void> drain(chat_run& run) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::optional<load_clock::time_point> stop_seen;
  const auto limit = run.senders_stopped + chat_drain_limit;
  while (!all_delivered(run) && load_clock::now() < drain_limit(limit, run.stop, stop_seen)) {
    timer.expires_after(10ms);  // a check costs O(clients x senders): not after every line
    co_await timer.async_wait(use_awaitable);
  }
}

asio::awaitable<void> connect_slow_clients(chat_run& run, std::vector<tcp::socket>& slow) {
  auto executor = co_await asio::this_coro::executor;
  for (std::size_t i = 0; i < run.options.slow; ++i) {
    tcp::socket socket(executor);
    if (const auto error = co_await connect_no_delay(socket, run.options.target)) {
      spdlog::warn("slow client: connect to {}: {}", run.options.target, error.message());
      ++run.failed_slow_connects;
      continue;
    }
    slow.push_back(std::move(socket));
  }
}

asio::awaitable<void> join_slow_clients_later(chat_run& run, std::vector<tcp::socket>& slow) {
  if (run.options.slow == 0 || !run.options.slow_join_at) co_return;
  co_await sleep_until(std::min(run.epoch + *run.options.slow_join_at, run.send_end), run.stop);
  if (!run.stop && load_clock::now() < run.send_end) co_await connect_slow_clients(run, slow);
}

asio::awaitable<void> send_then_drain(chat_run& run, std::vector<tcp::socket>& sockets,
                                      std::vector<tcp::socket>& slow) {
  std::vector<spawnable> senders;
  for (std::uint32_t s = 0; s < run.sent.size(); ++s) {
    if (!run.clients[s].disconnected) {
      senders.push_back(make_spawnable(sockets[s].get_executor(), sender_task(run, sockets[s], s)));
    }
  }
  co_await (wait_for_all(std::move(senders)) && join_slow_clients_later(run, slow));
  run.senders_stopped = load_clock::now();
  co_await drain(run);
  run.cpu.stop();  // the server's work is done: every line is in, or never will be
  run.own_cpu.stop();
  run.drained = true;
}

asio::awaitable<void> receive_all(chat_run& run, std::vector<tcp::socket>& sockets) {
  std::vector<spawnable> readers;
  for (std::uint32_t r = 0; r < run.clients.size(); ++r) {
    if (!run.clients[r].disconnected) {
      readers.push_back(
          make_spawnable(sockets[r].get_executor(), receive_lines(run, sockets[r], r)));
    }
  }
  co_await wait_for_all(std::move(readers));
}

// Deliveries per second over each interval, until the drain is over.
asio::awaitable<void> sample_timeline(chat_run& run) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto limit = run.send_end + sender_write_grace + chat_drain_limit;
  auto tick = run.epoch;
  std::uint64_t before = 0;
  const double interval_s = std::chrono::duration<double>(timeline_interval).count();
  while (!run.drained && tick < limit) {
    tick += timeline_interval;
    timer.expires_at(tick);
    co_await timer.async_wait(use_awaitable);
    run.timeline.emplace_back(seconds_between(run.epoch, tick),
                              static_cast<double>(run.deliveries - before) / interval_s);
    before = run.deliveries;
  }
}

// A slow client the server dropped reads its backlog, then end of file (or a reset); one the
// server still holds goes quiet once its backlog is read.
asio::awaitable<void> check_slow_client(chat_run& run, tcp::socket& socket) {
  std::vector<char> sink(read_chunk);
  const auto limit = load_clock::now() + slow_check_limit;
  while (load_clock::now() < limit) {
    auto outcome =
        co_await (socket.async_read_some(asio::buffer(sink), asio::as_tuple(use_awaitable)) ||
                  sleep_until(load_clock::now() + slow_quiet_time));
    if (outcome.index() == 1) co_return;  // quiet: still connected
    if (std::get<0>(std::get<0>(outcome))) {
      ++run.slow_disconnected;
      co_return;
    }
  }
}

asio::awaitable<void> check_slow_clients(chat_run& run, std::vector<tcp::socket>& slow) {
  std::vector<spawnable> checks;
  for (auto& socket : slow) {
    checks.push_back(make_spawnable(socket.get_executor(), check_slow_client(run, socket)));
  }
  co_await wait_for_all(std::move(checks));
}

asio::awaitable<void> drive_chat(chat_run& run) {
  const auto& options = run.options;
  auto executor = co_await asio::this_coro::executor;
  // The sockets live in this frame, the figures in `run`: every coroutine that borrows a socket
  // is awaited here, and the figures outlive the runtime for the report.
  std::vector<tcp::socket> sockets;
  std::vector<tcp::socket> slow;
  for (std::uint32_t i = 0; i < options.clients; ++i) {
    sockets.emplace_back(executor);
    run.clients.emplace_back(i, options.senders);
    if (run.stop) {
      run.clients.back().disconnected = true;
    } else if (const auto error = co_await connect_no_delay(sockets.back(), options.target)) {
      spdlog::warn("connect to {}: {}", options.target, error.message());
      run.clients.back().disconnected = true;
    }
  }
  if (options.slow > 0 && !options.slow_join_at) co_await connect_slow_clients(run, slow);
  co_await sleep_until(load_clock::now() + chat_settle_time, run.stop);

  run.epoch = load_clock::now();
  run.send_end = run.epoch + options.duration;
  run.senders_stopped = run.send_end;
  run.cpu.start();
  run.own_cpu.start();
  // Readers read until the senders have stopped and every line is in (or the drain gave up);
  // they end sooner only if the server drops them all.
  co_await (receive_all(run, sockets) ||
            (send_then_drain(run, sockets, slow) && sample_timeline(run)));
  co_await check_slow_clients(run, slow);
}

}  // namespace

std::uint64_t chat_result::errors() const {
  return lost + duplicated + reordered + corrupted + self_echo + disconnected + (cut_off ? 1 : 0);
}

chat_result run_chat(const chat_options& options) {
  if (options.senders > options.clients) {
    throw std::invalid_argument("chat: more senders than clients");
  }
  chat_run run(options);  // outlives the runtime: coroutines a forced stop leaves refer to it
  runtime rt(1);
  const auto hard_limit = chat_settle_time + options.duration + sender_write_grace +
                          chat_drain_limit + slow_check_limit + hard_limit_margin;
  chat_result result;
  result.options = options;
  result.cut_off = run_load(rt, run.stop, hard_limit, drive_chat(run));

  // Whatever ended the run (its natural end, a SIGINT, the hard limit), the accounting is done
  // here, once: what a client still reading has not received by now is lost.
  run.cpu.stop();
  run.own_cpu.stop();
  // A normal client that never connected is marked disconnected too; a slow one is counted apart.
  result.disconnected = run.failed_slow_connects;
  for (auto& client : run.clients) {
    if (!client.disconnected) client.receiver.close(run.sent);
    result.deliveries += client.receiver.deliveries();
    result.lost += client.receiver.lost();
    result.duplicated += client.receiver.duplicated();
    result.reordered += client.receiver.reordered();
    result.corrupted += client.receiver.corrupted();
    result.self_echo += client.receiver.self_echo();
    if (client.disconnected) ++result.disconnected;
  }
  for (const auto lines : run.sent) result.sent += lines;
  result.latency = run.latency;
  const auto end = std::max(run.senders_stopped, run.last_delivery);
  if (end > run.epoch) result.duration_s = seconds_between(run.epoch, end);
  result.senders_blocked = run.senders_blocked;
  result.slow_disconnected = run.slow_disconnected;
  result.server_cpu_s = run.cpu.consumed();
  result.client_cpu_s = run.own_cpu.consumed();
  result.timeline = std::move(run.timeline);
  return result;
}

}  // namespace netlab::bench
