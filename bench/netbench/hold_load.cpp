#include "hold_load.hpp"

#include "load_support.hpp"
#include "proc.hpp"

#include "common/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>

#include <cerrno>
#include <vector>

namespace netlab::bench {

namespace asio = boost::asio;
using asio::use_awaitable;
using asio::ip::tcp;

namespace {

struct hold_run {
  explicit hold_run(const hold_options& opts) : options(opts) {}

  const hold_options& options;
  std::atomic<bool> stop{false};  // set by SIGINT
  std::size_t next_index = 0;     // the next connection to open; connectors take turns
  std::uint64_t failed = 0;
  std::uint64_t held = 0;
  std::uint64_t closed_by_server = 0;
  std::optional<std::uint64_t> rss_before;
  std::optional<std::uint64_t> rss_settled;
  std::optional<std::uint64_t> rss_after;
};

asio::awaitable<bool> touch(tcp::socket& socket, std::size_t index) {
  const std::string line = fmt::format("touch {}\n", index);
  auto [write_error, written] =
      co_await asio::async_write(socket, asio::buffer(line), asio::as_tuple(use_awaitable));
  if (write_error) co_return false;
  std::string reply(line.size(), '\0');
  auto [read_error, read] =
      co_await asio::async_read(socket, asio::buffer(reply), asio::as_tuple(use_awaitable));
  co_return !read_error && reply == line;
}

// One of hold_connect_concurrency connectors: opens connections until N are open (or failed).
asio::awaitable<void> connector(hold_run& run, std::vector<tcp::socket>& open) {
  auto executor = co_await asio::this_coro::executor;
  while (!run.stop && run.next_index < run.options.conns) {
    const std::size_t index = run.next_index++;
    tcp::socket socket(executor);
    if (const auto error = co_await connect_no_delay(socket, run.options.target)) {
      spdlog::debug("connection {}: {}", index, error.message());
      ++run.failed;
      continue;
    }
    if (run.options.touch && !(co_await touch(socket, index))) {
      spdlog::debug("connection {}: the touch line did not come back", index);
      ++run.failed;
      continue;
    }
    open.push_back(std::move(socket));
  }
}

// Whether the server closed (or reset) `socket` while it sat idle. A non-blocking peek: an idle
// connection has nothing to read, so "would block" means open and 0 means end of file.
bool closed_by_peer(tcp::socket& socket) {
  char byte = 0;
  const auto n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return false;
  return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

asio::awaitable<void> drive_hold(hold_run& run) {
  auto executor = co_await asio::this_coro::executor;
  run.rss_before = resident_kib(run.options.pid);
  std::vector<tcp::socket> open;  // this frame owns every connection, for the whole hold
  open.reserve(run.options.conns);
  std::vector<spawnable> connectors;
  for (std::size_t i = 0; i < std::min(hold_connect_concurrency, run.options.conns); ++i) {
    connectors.push_back(make_spawnable(executor, connector(run, open)));
  }
  co_await wait_for_all(std::move(connectors));

  const auto connected = load_clock::now();
  co_await sleep_until(connected + run.options.settle, run.stop);
  run.rss_settled = resident_kib(run.options.pid);
  co_await sleep_until(connected + run.options.hold, run.stop);
  run.rss_after = resident_kib(run.options.pid);
  for (auto& socket : open) {
    if (closed_by_peer(socket)) {
      ++run.closed_by_server;
    } else {
      ++run.held;
    }
  }
}

}  // namespace

std::optional<double> hold_result::kib_per_conn() const {
  if (!rss_before_kib || !rss_after_kib || held == 0) return std::nullopt;
  return (static_cast<double>(*rss_after_kib) - static_cast<double>(*rss_before_kib)) /
         static_cast<double>(held);
}

hold_result run_hold(const hold_options& options) {
  hold_run run(options);
  runtime rt(1);
  hold_result result;
  result.options = options;
  const auto hard_limit = std::max(options.hold, options.settle) + hard_limit_margin;
  result.cut_off = run_load(rt, run.stop, hard_limit, drive_hold(run));
  result.held = run.held;
  result.failed = run.failed;
  result.closed_by_server = run.closed_by_server;
  result.rss_before_kib = run.rss_before;
  result.rss_settled_kib = run.rss_settled;
  result.rss_after_kib = run.rss_after;
  return result;
}

}  // namespace netlab::bench
