#include "load_support.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>

namespace netlab::bench {

namespace asio = boost::asio;
using asio::use_awaitable;
using namespace asio::experimental::awaitable_operators;

double seconds_between(load_clock::time_point from, load_clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

asio::awaitable<void> sleep_until(load_clock::time_point when, const std::atomic<bool>& stop) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  // Short naps rather than one long wait, so that nobody has to reach into this coroutine to
  // cancel its timer when the stop flag is set.
  while (!stop && load_clock::now() < when) {
    timer.expires_at(std::min(when, load_clock::now() + stop_poll_interval));
    co_await timer.async_wait(use_awaitable);
  }
}

asio::awaitable<void> sleep_until(load_clock::time_point when) {
  asio::steady_timer timer(co_await asio::this_coro::executor, when);
  co_await timer.async_wait(use_awaitable);
}

load_clock::time_point drain_limit(load_clock::time_point when, const std::atomic<bool>& stop,
                                   std::optional<load_clock::time_point>& stop_seen) {
  if (stop && !stop_seen) stop_seen = load_clock::now();
  return stop_seen ? std::min(when, *stop_seen + stop_drain_grace) : when;
}

asio::awaitable<void> drain_until(load_clock::time_point when, const std::atomic<bool>& stop) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::optional<load_clock::time_point> stop_seen;
  for (auto limit = drain_limit(when, stop, stop_seen); load_clock::now() < limit;
       limit = drain_limit(when, stop, stop_seen)) {
    timer.expires_at(std::min(limit, load_clock::now() + stop_poll_interval));
    co_await timer.async_wait(use_awaitable);
  }
}

asio::awaitable<boost::system::error_code> connect_no_delay(asio::ip::tcp::socket& socket,
                                                            const asio::ip::tcp::endpoint& target) {
  auto [error] = co_await socket.async_connect(target, asio::as_tuple(use_awaitable));
  if (!error) socket.set_option(asio::ip::tcp::no_delay(true), error);
  co_return error;
}

bool cancelled(const boost::system::error_code& error) {
  return error == asio::error::operation_aborted;
}

spawnable make_spawnable(asio::any_io_executor executor, asio::awaitable<void> body) {
  return asio::co_spawn(std::move(executor), std::move(body), asio::deferred);
}

asio::awaitable<void> wait_for_all(std::vector<spawnable> tasks) {
  if (tasks.empty()) co_return;  // a group of none would never complete
  auto [order, failures] = co_await asio::experimental::make_parallel_group(std::move(tasks))
                               .async_wait(asio::experimental::wait_for_all(), use_awaitable);
  // Tasks report through the state they update; what one throws is a bug, logged, never lost.
  for (const auto& failure : failures) {
    if (!failure) continue;
    try {
      std::rethrow_exception(failure);
    } catch (const boost::system::system_error& e) {
      if (e.code() != asio::error::operation_aborted) spdlog::error("load task: {}", e.what());
    } catch (const std::exception& e) {
      spdlog::error("load task: {}", e.what());
    }
  }
}

namespace {

// The load raced against the hard limit; `cut_off` says which finished first. A free function,
// not a capturing lambda: its arguments live in its own frame (Core Guidelines CP.51).
asio::awaitable<void> race_hard_limit(asio::awaitable<void> load, load_clock::duration limit,
                                      bool& cut_off) {
  const auto winner = co_await (std::move(load) || sleep_until(load_clock::now() + limit));
  cut_off = winner.index() == 1;
}

}  // namespace

bool run_load(runtime& rt, std::atomic<bool>& stop, load_clock::duration hard_limit,
              asio::awaitable<void> load) {
  // A member of the runtime's shutdown, so that SIGINT reaches the load: the flag is all it
  // needs, and setting it is safe from the signal's thread.
  auto membership = rt.shutdown().join([&stop] { stop = true; });
  bool cut_off = false;
  std::exception_ptr failure;
  asio::co_spawn(rt.context(), race_hard_limit(std::move(load), hard_limit, cut_off),
                 [&](std::exception_ptr e) {
                   failure = e;
                   membership = {};    // the load is over: nothing left to tell
                   rt.request_stop();  // lets run() return (it waits for signals until then)
                 });
  rt.run();
  if (failure) std::rethrow_exception(failure);
  return cut_off;
}

}  // namespace netlab::bench
