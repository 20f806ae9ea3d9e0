#include "conns_load.hpp"

#include "load_support.hpp"
#include "proc.hpp"

#include "common/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <unistd.h>

#include <vector>

namespace netlab::bench {

namespace asio = boost::asio;
using asio::use_awaitable;
using asio::ip::tcp;

namespace {

struct conns_run {
  explicit conns_run(const conns_options& opts) : options(opts), cpu(opts.pid), own_cpu(getpid()) {}

  const conns_options& options;
  std::atomic<bool> stop{false};  // set by SIGINT
  std::size_t next_index = 0;     // the next connection to make; workers take turns (one thread)
  load_clock::time_point start;
  load_clock::time_point end;
  std::uint64_t completed = 0;
  std::uint64_t failed = 0;
  latency_histogram latency;
  cpu_meter cpu;      // the server's
  cpu_meter own_cpu;  // netbench's
};

// One connection's whole life. Returns false on any failure; the reason goes to the debug log.
asio::awaitable<bool> connect_echo_close(const tcp::endpoint& target, std::size_t index) {
  tcp::socket socket(co_await asio::this_coro::executor);
  if (const auto error = co_await connect_no_delay(socket, target)) {
    spdlog::debug("connection {}: connect: {}", index, error.message());
    co_return false;
  }
  const std::string hello = fmt::format("hello {}\n", index);
  auto [write_error, written] =
      co_await asio::async_write(socket, asio::buffer(hello), asio::as_tuple(use_awaitable));
  if (write_error) {
    spdlog::debug("connection {}: write: {}", index, write_error.message());
    co_return false;
  }
  // Exactly as many bytes as were sent: a line echo and a byte echo both give them back.
  std::string reply(hello.size(), '\0');
  auto [read_error, read] =
      co_await asio::async_read(socket, asio::buffer(reply), asio::as_tuple(use_awaitable));
  if (read_error || reply != hello) {
    spdlog::debug("connection {}: {}", index, read_error ? read_error.message() : "echo differs");
    co_return false;
  }
  // netbench closes first, so TIME_WAIT lands on this side: it holds an ephemeral port for a
  // minute, and Linux has about 28000 of them, enough for any --total this tool allows.
  co_return true;
}

// One of C workers: takes the next connection number until there is none, or the cap passes.
asio::awaitable<void> worker(conns_run& run) {
  const auto cap = run.start + run.options.duration;
  while (!run.stop && run.next_index < run.options.total && load_clock::now() < cap) {
    const std::size_t index = run.next_index++;
    const auto started = load_clock::now();
    if (co_await connect_echo_close(run.options.target, index)) {
      ++run.completed;
      run.latency.add(load_clock::now() - started);
    } else {
      ++run.failed;
    }
  }
}

asio::awaitable<void> drive_conns(conns_run& run) {
  auto executor = co_await asio::this_coro::executor;
  run.start = load_clock::now();
  run.cpu.start();
  run.own_cpu.start();
  std::vector<spawnable> workers;
  for (std::size_t i = 0; i < std::min(run.options.concurrency, run.options.total); ++i) {
    workers.push_back(make_spawnable(executor, worker(run)));
  }
  co_await wait_for_all(std::move(workers));
  run.end = load_clock::now();
  run.cpu.stop();
  run.own_cpu.stop();
}

}  // namespace

conns_result run_conns(const conns_options& options) {
  conns_run run(options);
  runtime rt(1);  // one thread drives thousands of connections: the server is what is measured
  conns_result result;
  result.options = options;
  result.cut_off = run_load(rt, run.stop, options.duration + hard_limit_margin, drive_conns(run));
  run.cpu.stop();  // no-ops unless the run was cut short
  run.own_cpu.stop();
  if (run.end < run.start) run.end = load_clock::now();
  result.completed = run.completed;
  result.failed = run.failed;
  result.latency = run.latency;
  if (run.end > run.start) result.duration_s = seconds_between(run.start, run.end);
  result.server_cpu_s = run.cpu.consumed();
  result.client_cpu_s = run.own_cpu.consumed();
  return result;
}

}  // namespace netlab::bench
